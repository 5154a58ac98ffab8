"""The supervisor's analytics and review pages in headless chromium (issue 13), on a month of calls generated
through the real dialog and desk: the charts (server-side SVG) render, and a reviewer samples a handoff, marks
it avoidable with the layer at fault, and sees the report count it.

Screenshots go to `HANDOFF_SCREENSHOTS_DIR` when it is set (the README's come from
`HANDOFF_SCREENSHOTS_DIR=docs pytest tests/browser/test_insight.py`), else to the test's folder.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from playwright.async_api import Page, expect

from telephony.replay.month import make_month, plan_month
from telephony.server.console.accounts import hash_password
from telephony.server.settings import Settings
from telephony.store import sqlite_url
from tests.browser.test_console import PASSWORD, shots, sign_in
from tests.faults.conftest import running

SCENARIOS = Path(__file__).resolve().parents[2] / "audio_fixtures" / "scenarios"
OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}


async def a_month(data_dir: Path, tmp_path: Path) -> int:
    """October 2026: 40 calls replayed into the server's database, then wrap-ups and reviews; the handoffs."""
    plan = plan_month(SCENARIOS, datetime(2026, 10, 1, tzinfo=UTC), days=31, calls=40, seed=5, callers=12)
    settings = Settings(tts_cache_dir=tmp_path / "tts", data_dir=tmp_path / "scratch",
                        database_url=sqlite_url(data_dir), _env_file=None)  # type: ignore[call-arg]  # fmt: skip
    truth, broken = await make_month(plan, settings, seed=5)
    assert broken == []
    return truth.handoffs


async def test_the_analytics_charts_render_and_a_reviewer_marks_a_handoff(page: Page, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    handoffs = await a_month(data_dir, tmp_path)
    async with running(data_dir) as server:
        server.services.store.add_user("sam", hash_password(PASSWORD), "supervisor")
        await sign_in(page, server.base, "sam")
        await page.get_by_role("link", name="Analytics").click()
        await page.get_by_label("From").fill(OCTOBER["from"])
        await page.get_by_label("To").fill(OCTOBER["to"])
        await page.get_by_role("button", name="Show").click()
        await expect(page.get_by_role("heading", name="Handoff analytics")).to_be_visible()
        await expect(page.locator('[data-metric="calls"] b')).to_have_text("40")
        await expect(page.locator('[data-metric="handoffs"] b')).to_have_text(str(handoffs))
        charts = page.locator("figure.chart img")
        await expect(charts).to_have_count(5)
        drawn = await charts.evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
        assert drawn == [True] * 5  # every SVG decoded and drawn by the browser
        await page.screenshot(path=shots(tmp_path) / "console-analytics.png", full_page=True)

        await page.get_by_role("link", name="Review", exact=True).click()
        await page.get_by_label("From").fill(OCTOBER["from"])
        await page.get_by_label("To").fill(OCTOBER["to"])
        await page.get_by_role("button", name="Show").click()
        rows = page.locator("table.sample tbody tr[data-handoff]")
        await expect(rows.first).to_be_visible()
        before = await page.locator("p.report-head").inner_text()
        await page.screenshot(path=shots(tmp_path) / "console-review.png", full_page=True)
        handoff_id = await rows.first.get_attribute("data-handoff")
        await rows.first.get_by_role("link").click()
        await page.get_by_role("radio", name="avoidable").check()
        await page.get_by_label("Layer at fault").select_option("prompt")
        await page.get_by_label("Note").fill("asked for the order number twice")
        await page.screenshot(path=shots(tmp_path) / "console-review-verdict.png", full_page=True)
        await page.get_by_role("button", name="Save verdict").click()
        await expect(page.get_by_role("status")).to_have_text(f"Verdict saved for {handoff_id}.")
        assert server.services.store.review(str(handoff_id))["verdict"] == "avoidable"  # type: ignore[index]
        await page.goto(f"{server.base}/console/review?from={OCTOBER['from']}&to={OCTOBER['to']}&all=1")
        after = await page.locator("p.report-head").inner_text()
        assert avoidable(after) == avoidable(before) + 1
        await expect(page.locator("table.avoidable")).to_contain_text("asked for the order number twice")


def avoidable(report_head: str) -> int:
    """The avoidable count in the report's headline ("... reviewed: 3 avoidable, 5 necessary")."""
    return int(report_head.split(" avoidable")[0].rsplit(" ", 1)[-1])
