"""The supervisor's analytics and review pages over real HTTP: who may see them, charts drawn on the server as
SVG images, windows that cannot be read answered with a 422 that says why, and a verdict form with CSRF."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import httpx

from tests.faults.conftest import running
from tests.telephony.server.test_console import add_user, csrf_of, sign_in


async def test_the_analytics_page_draws_the_window_as_svg_and_only_for_supervisors(tmp_path: Path) -> None:
    async with running(tmp_path / "data") as server:
        add_user(server.services, "ada", "agent")
        add_user(server.services, "sam", "supervisor")
        await server.replay("talk_to_a_person.yaml", tmp_path / "tts")
        await server.replay("hours_resolved.yaml", tmp_path / "tts")
        assert await server.services.desk.ledger.outbox.flush(10)
        async with httpx.AsyncClient(base_url=server.base) as agent, httpx.AsyncClient(base_url=server.base) as sup:
            await sign_in(agent, "ada")
            assert (await agent.get("/console/analytics")).status_code == 403
            assert (await agent.get("/console/review")).status_code == 403
            await sign_in(sup, "sam")
            page = await sup.get("/console/analytics", params={"from": "2026-11-01", "to": "2026-11-30"})
            assert page.status_code == 200
            assert re.search(r'data-metric="calls"><b>2</b>', page.text)
            assert re.search(r'data-metric="handoffs"><b>1</b><span>handoffs \(50.0 per 100 calls\)', page.text)
            images = re.findall(r'<img src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]+)"', page.text)
            titles = [alt.split(":")[0] for _, alt in images]
            assert titles[:4] == ["Handoffs per 100 calls, by day", "Handoffs by category", "Handoffs by trigger",
                                  "Handoffs by queue"]  # fmt: skip
            svg = base64.b64decode(images[1][0]).decode()
            assert svg.startswith("<svg") and "distress" in svg
            assert "cdn" not in page.text.lower() and '<script src="http' not in page.text
            orders = await sup.get("/console/analytics", params={"from": "2026-11-01", "queue": "orders"})
            assert orders.status_code == 200 and 'data-metric="handoffs"><b>1</b>' in orders.text
            for params in ({"from": "yesterday"}, {"from": "2026-12-01", "to": "2026-11-01"}, {"queue": "nowhere"}):
                bad = await sup.get("/console/analytics", params=params)
                assert bad.status_code == 422 and 'class="error"' in bad.text, params
            empty = await sup.get("/console/analytics", params={"from": "2020-01-01", "to": "2020-01-31"})
            assert empty.status_code == 200 and "No calls in this window" in empty.text


async def test_a_reviewer_marks_a_sampled_handoff_and_the_report_counts_it(tmp_path: Path) -> None:
    async with running(tmp_path / "data") as server:
        add_user(server.services, "sam", "supervisor")
        result = await server.replay("talk_to_a_person.yaml", tmp_path / "tts")
        assert await server.services.desk.ledger.outbox.flush(10) and result.handoff is not None
        handoff_id = str(result.handoff["handoff_id"])
        async with httpx.AsyncClient(base_url=server.base) as http:
            await sign_in(http, "sam")
            listing = await http.get("/console/review")
            assert listing.status_code == 200 and f'data-handoff="{handoff_id}"' in listing.text
            assert "to review" in listing.text
            page = await http.get(f"/console/review/{handoff_id}")
            assert page.status_code == 200 and "Save verdict" in page.text
            token = csrf_of(page.text)
            url = f"/console/review/{handoff_id}"
            assert (await http.post(url, data={"verdict": "avoidable", "csrf_token": "x"})).status_code == 403
            bad = await http.post(url, data={"verdict": "perhaps", "csrf_token": token})
            assert bad.status_code == 422 and "verdict" in bad.text
            nowhere = await http.post(url, data={"verdict": "avoidable", "expected_queue": "moon", "csrf_token": token})
            assert nowhere.status_code == 422 and "no queue" in nowhere.text
            form = {"verdict": "avoidable", "layer": "trigger", "note": "could track it", "csrf_token": token}
            saved = await http.post(url, data=form)
            assert saved.status_code == 303 and saved.headers["location"] == f"/console/review?saved={handoff_id}"
            review = server.services.store.review(handoff_id)
            assert review is not None and (review["verdict"], review["layer"], review["reviewer"]) == (
                "avoidable", "trigger", "sam",
            )  # fmt: skip
            after = await http.get("/console/review", params={"all": "1"})
            assert "1 reviewed: 1 avoidable" in after.text and "could track it" in after.text
            assert (await http.get("/console/review/nope")).status_code == 404
            assert (await http.get("/console/review", params={"per_category": "lots"})).status_code == 422
