"""The console over real HTTP: who may sign in and see what, CSRF on every form, throttled sign-in, cookies that
scripts cannot read, and a wrap-up that is stored and served by the API (issue 12)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from telephony.replay.in_process import serve_in_process
from telephony.server.app import create_app
from telephony.server.console.accounts import SESSION_COOKIE, THROTTLE_LIMIT, hash_password
from telephony.server.services import Services
from tests.faults.conftest import running
from tests.telephony.server.harness import HEADERS, Server, make_services

PASSWORD = "a long enough password"


def add_user(services: Services, name: str, role: str) -> None:
    services.store.add_user(name, hash_password(PASSWORD), role)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html[:500]
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    form = await http.get("/console/login")
    return await http.post("/console/login", data={"name": name, "password": password,
                                                    "csrf_token": csrf_of(form.text)})  # fmt: skip


@pytest.fixture
async def console() -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    services = make_services()
    add_user(services, "ada", "agent")
    add_user(services, "sam", "supervisor")
    async with serve_in_process(create_app(services)) as base, httpx.AsyncClient(base_url=base) as http:
        yield http, services


async def test_pages_need_a_signed_in_account(console: tuple[httpx.AsyncClient, Services]) -> None:
    http, _ = console
    for path in ("/console", "/console/queue", "/console/events", "/console/supervisor", "/console/handoffs/x"):
        response = await http.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/console/login", path


async def test_signing_in_sets_a_cookie_scripts_cannot_read(console: tuple[httpx.AsyncClient, Services]) -> None:
    http, _ = console
    response = await sign_in(http, "ada")
    assert response.status_code == 303 and response.headers["location"] == "/console"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(SESSION_COOKIE) and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http on loopback; https public URLs get Secure (below)
    page = await http.get("/console")
    assert page.status_code == 200 and "Live queue" in page.text and "ada" in page.text


async def test_cookies_are_secure_when_the_public_url_is_https() -> None:
    services = make_services(public_url="https://handoff.example.com")
    add_user(services, "ada", "agent")
    async with serve_in_process(create_app(services)) as base, httpx.AsyncClient(base_url=base) as http:
        response = await sign_in(http, "ada")
    assert "Secure" in response.headers["set-cookie"]


async def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(
    console: tuple[httpx.AsyncClient, Services],
) -> None:
    http, _ = console
    wrong = await sign_in(http, "ada", "not the password at all")
    unknown = await sign_in(http, "nobody-here")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong name or password." in wrong.text and "Wrong name or password." in unknown.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")


async def test_sign_in_is_throttled_after_repeated_failures(console: tuple[httpx.AsyncClient, Services]) -> None:
    http, _ = console
    for _ in range(THROTTLE_LIMIT):
        assert (await sign_in(http, "ada", "guess guess guess")).status_code == 401
    throttled = await sign_in(http, "ada")  # even the right password waits out the window
    assert throttled.status_code == 429 and "Too many failed sign-ins" in throttled.text


async def test_a_sign_in_without_its_csrf_token_is_refused(console: tuple[httpx.AsyncClient, Services]) -> None:
    http, _ = console
    await http.get("/console/login")
    response = await http.post("/console/login", data={"name": "ada", "password": PASSWORD, "csrf_token": "forged"})
    assert response.status_code == 403 and SESSION_COOKIE not in response.headers.get("set-cookie", "")


async def test_an_agent_is_refused_the_supervisor_view(console: tuple[httpx.AsyncClient, Services]) -> None:
    http, _ = console
    await sign_in(http, "ada")
    assert (await http.get("/console/supervisor")).status_code == 403
    http.cookies.clear()
    await sign_in(http, "sam")
    assert (await http.get("/console/supervisor")).status_code == 200


async def test_signing_out_ends_the_session_everywhere(console: tuple[httpx.AsyncClient, Services]) -> None:
    http, _ = console
    await sign_in(http, "ada")
    token = http.cookies[SESSION_COOKIE]
    page = await http.get("/console")
    assert (await http.post("/console/logout", data={"csrf_token": "wrong"})).status_code == 403
    assert (await http.post("/console/logout", data={"csrf_token": csrf_of(page.text)})).status_code == 303
    http.cookies.set(SESSION_COOKIE, token, path="/console")  # the old cookie, replayed
    assert (await http.get("/console")).status_code == 303


async def handed_off(server: Server, tmp_path: Path) -> str:
    result = await server.replay("talk_to_a_person.yaml", tmp_path / "tts")
    assert await server.services.desk.ledger.outbox.flush(10)
    assert result.handoff is not None
    return str(result.handoff["handoff_id"])


async def test_the_card_shows_the_package_and_a_wrap_up_is_stored_and_served(tmp_path: Path) -> None:
    async with running(tmp_path / "data") as server:
        add_user(server.services, "ada", "agent")
        handoff_id = await handed_off(server, tmp_path)
        async with httpx.AsyncClient(base_url=server.base) as http:
            await sign_in(http, "ada")
            queue = await http.get("/console")
            assert handoff_id in queue.text
            card = await http.get(f"/console/handoffs/{handoff_id}")
            assert card.status_code == 200
            package = server.services.store.get_handoff(handoff_id)["package"]  # type: ignore[index]
            assert package["primary_issue"].splitlines()[0] in card.text
            assert "Transcript" in card.text and "ASR" in card.text and "Caller history" in card.text
            form = {"csrf_token": csrf_of(card.text), "disposition": "resolved_first_contact", "resolved": "yes",
                    "summary_rating": "4", "had_to_repeat": "on", "repeated_fact": "order number",
                    "wrong_queue": "on", "right_queue": "billing", "missing_facts": "the card on file"}  # fmt: skip
            no_csrf = await http.post(f"/console/handoffs/{handoff_id}/wrapup", data={**form, "csrf_token": ""})
            assert no_csrf.status_code == 403
            bad = await http.post(f"/console/handoffs/{handoff_id}/wrapup", data={**form, "summary_rating": "9"})
            assert bad.status_code == 422 and "summary_rating" in bad.text
            saved = await http.post(f"/console/handoffs/{handoff_id}/wrapup", data=form)
            assert saved.status_code == 303
            served = await http.get(f"/api/handoffs/{handoff_id}/wrapup", headers=HEADERS)
        wrapup = served.json()
        assert (wrapup["agent"], wrapup["disposition"], wrapup["resolved"], wrapup["summary_rating"]) == (
            "ada", "resolved_first_contact", True, 4,
        )  # fmt: skip
        assert (wrapup["had_to_repeat"], wrapup["repeated_fact"]) == (True, "order number")
        assert (wrapup["wrong_queue"], wrapup["right_queue"]) == (True, "billing")


async def test_caller_history_lists_earlier_calls_from_the_same_number(tmp_path: Path) -> None:
    async with running(tmp_path / "data") as server:
        add_user(server.services, "ada", "agent")
        first = await handed_off(server, tmp_path)
        second = await handed_off(server, tmp_path)
        async with httpx.AsyncClient(base_url=server.base) as http:
            await sign_in(http, "ada")
            card = await http.get(f"/console/handoffs/{second}")
        assert f"/console/handoffs/{first}" in card.text
        assert "No earlier calls from this number." not in card.text


async def test_the_event_stream_announces_a_new_handoff(tmp_path: Path) -> None:
    async with running(tmp_path / "data") as server:
        add_user(server.services, "ada", "agent")
        async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
            await sign_in(http, "ada")
            async with http.stream("GET", "/console/events") as events:
                lines = events.aiter_lines()

                async def next_event() -> str:
                    async for line in lines:
                        if line.startswith("data:"):
                            return line
                    return ""

                first = await asyncio.wait_for(next_event(), 5)
                replay = asyncio.create_task(handed_off(server, tmp_path))
                second = await asyncio.wait_for(next_event(), 20)
                await replay
        assert first != second
