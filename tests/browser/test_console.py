"""The agent console in headless chromium (issue 12): sign in, watch a replayed call's handoff appear in the
live queue without reloading, open its card, wrap it up with feedback (then read it back from the API), and
be refused without the right role or without the form's CSRF token.

Screenshots of the queue and the card go to `HANDOFF_SCREENSHOTS_DIR` when it is set (the README's come
from `HANDOFF_SCREENSHOTS_DIR=docs pytest tests/browser/test_console.py`), else to the test's folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from playwright.async_api import Page, expect

from telephony.server.console.accounts import hash_password
from tests.faults.conftest import running
from tests.telephony.server.harness import HEADERS, Server

PASSWORD = "a long enough password"


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HANDOFF_SCREENSHOTS_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def sign_in(page: Page, base: str, name: str) -> None:
    await page.goto(base + "/console")  # not signed in: the sign-in page
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def test_a_handoff_appears_live_and_is_wrapped_up(page: Page, tmp_path: Path) -> None:
    async with running(tmp_path / "data") as server:
        server.services.store.add_user("ada", hash_password(PASSWORD), "agent")
        await sign_in(page, server.base, "ada")
        await expect(page.get_by_role("heading", name="Live queue")).to_be_visible()
        await expect(page.get_by_text("Nobody is waiting.")).to_be_visible()

        result = await server.replay("talk_to_a_person.yaml", tmp_path / "tts")  # the page stays open
        assert result.handoff is not None
        handoff_id = str(result.handoff["handoff_id"])
        row = page.locator(f'tr[data-handoff="{handoff_id}"]')
        await expect(row).to_be_visible()  # pushed over server-sent events: no reload
        await expect(row).to_contain_text(str(result.handoff["recommended_queue"]))
        await page.screenshot(path=shots(tmp_path) / "console-queue.png", full_page=True)

        await row.get_by_role("link").click()
        await expect(page.get_by_role("heading", name="Transcript")).to_be_visible()
        await expect(page.locator("ol.transcript")).to_contain_text("real person")
        await page.screenshot(path=shots(tmp_path) / "console-card.png", full_page=True)

        await page.get_by_label("Disposition").select_option("follow_up_needed")
        await page.get_by_label("no", exact=True).check()
        await page.get_by_label("3", exact=True).check()
        await page.get_by_label("The caller had to repeat").check()
        await page.get_by_label("Which fact").fill("their order number")
        await page.get_by_role("button", name="Save wrap-up").click()
        await expect(page.get_by_role("status")).to_have_text("Wrap-up saved.")

        wrapup = await api(server, f"/api/handoffs/{handoff_id}/wrapup")
        assert (wrapup["agent"], wrapup["disposition"], wrapup["resolved"]) == ("ada", "follow_up_needed", False)
        assert (wrapup["summary_rating"], wrapup["repeated_fact"]) == (3, "their order number")


async def test_an_agent_cannot_open_the_supervisor_view(page: Page, tmp_path: Path) -> None:
    async with running(tmp_path / "data") as server:
        server.services.store.add_user("ada", hash_password(PASSWORD), "agent")
        await sign_in(page, server.base, "ada")
        await expect(page.get_by_role("link", name="Supervisor")).to_have_count(0)
        response = await page.goto(server.base + "/console/supervisor")
        assert response is not None and response.status == 403


async def test_a_form_without_its_csrf_token_is_refused(page: Page, tmp_path: Path) -> None:
    async with running(tmp_path / "data") as server:
        server.services.store.add_user("sam", hash_password(PASSWORD), "supervisor")
        await sign_in(page, server.base, "sam")
        await expect(page.get_by_role("link", name="Supervisor")).to_be_visible()
        await page.evaluate("document.querySelector('form.signout input[name=csrf_token]').remove()")
        async with page.expect_response(lambda r: r.url.endswith("/console/logout")) as answer:
            await page.get_by_role("button", name="Sign out").click()
        assert (await answer.value).status == 403
        response = await page.goto(server.base + "/console")  # still signed in: nothing was done
        assert response is not None and response.status == 200


async def api(server: Server, path: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=server.base) as http:
        response = await http.get(path, headers=HEADERS)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data
