"""Handoff analytics (issue 13, first part): each formula on small hand-computed data, the rows gathered the
same way on SQLite and PostgreSQL, and `/api/analytics` over a real replayed call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from telephony.store import Store
from telephony.store.analytics import CallFact, Facts, HandoffFact, figures
from tests.faults.conftest import running
from tests.telephony.server.harness import HEADERS
from tests.telephony.store.conftest import make_package, make_record

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
A, B, C, D = "+15550000001", "+15550000002", "+15550000003", "+15550000004"


def handoff(sid: str, caller: str, at: datetime, **kw: object) -> HandoffFact:
    fields: dict[str, object] = {
        "handoff_id": f"{sid}-h1", "call_sid": sid, "caller": caller, "at": at, "category": "distress",
        "trigger": "explicit_request", "queue": "orders", "status": "bridged", "decided_at": at,
        "bridged_at": None, "outcomes": (), "callback_status": None, "voicemail_recorded": None,
        "resolved_at": None, "had_to_repeat": None, "summary_rating": None, "wrong_queue": None, **kw,
    }  # fmt: skip
    return HandoffFact(**fields)  # type: ignore[arg-type]


def window() -> Facts:
    """Five calls on two days: two the bot ended (one caller rang back after 2 h, one after 3 days), three
    handed off (bridged in 8 s and 20 s; one abandoned)."""
    calls = [
        CallFact("c1", A, T0),  # bot only; A calls again 2 h later (c4): not contained at 24 h or 7 d
        CallFact("c2", B, T0 + timedelta(minutes=5)),  # bot only; B calls again in 3 days: contained at 24 h only
        CallFact("c3", C, T0 + timedelta(minutes=10)),  # handed off, bridged in 8 s
        CallFact("c4", A, T0 + timedelta(hours=2)),  # handed off, bridged in 20 s
        CallFact("c5", D, T0 + timedelta(days=1)),  # handed off, the caller hung up before the bridge
    ]
    later = [CallFact("c6", B, T0 + timedelta(days=3, minutes=5))]
    handoffs = [
        handoff("c3", C, calls[2].at, bridged_at=calls[2].at + timedelta(seconds=8), outcomes=("bridged",),
                resolved_at=calls[2].at + timedelta(seconds=308), had_to_repeat=False, summary_rating=5,
                wrong_queue=False),
        handoff("c4", A, calls[3].at, queue="billing", trigger="repeated_failure",
                bridged_at=calls[3].at + timedelta(seconds=20), outcomes=("declined", "bridged"),
                had_to_repeat=True, summary_rating=2, wrong_queue=True),
        handoff("c5", D, calls[4].at, status="caller_hung_up", outcomes=("caller_hung_up_before_bridge",),
                callback_status="done"),
    ]  # fmt: skip
    return Facts(T0, T0 + timedelta(days=2), calls, later, handoffs)


def test_each_formula_on_a_hand_computed_window() -> None:
    got = figures(window())
    assert (got.calls, got.handoffs, got.handoffs_per_100_calls) == (5, 3, 60.0)
    assert got.containment_24h == 0.2  # c2 only: c1's caller rang back within 2 h
    assert got.containment_7d == 0.0  # c2's caller rang back within 3 days
    assert got.by_queue == {"orders": 2, "billing": 1}
    assert got.by_trigger == {"explicit_request": 2, "repeated_failure": 1}
    assert got.per_day == {"2026-11-02": 50.0, "2026-11-03": 100.0}  # 2 of 4 calls, then 1 of 1
    assert got.completion == round(2 / 3, 4)  # two of the three attempted were bridged
    assert got.outcome_mix["declined"] == 1 and got.outcome_mix["bridged"] == 2
    assert got.outcome_mix["handoff_caller_hung_up"] == 1
    assert got.callback_completion == 1.0 and got.voicemail_completion is None
    assert (got.time_to_human_p50_s, got.time_to_human_p90_s) == (14.0, 18.8)  # of 8 s and 20 s
    assert got.abandonment == round(1 / 3, 4)
    assert got.transfer_to_resolution_p50_s == 300.0  # only c3 was marked resolved: 308 s - 8 s
    assert got.repeat_contact_7d == 0.0  # nobody handed off called again within the window's week
    assert (got.restatement_rate, got.summary_rating_mean, got.wrong_queue_rate) == (0.5, 3.5, 0.5)
    assert got.avoidable_rate is None  # no review verdicts are stored yet


def test_an_empty_window_has_no_rates_rather_than_zeros() -> None:
    got = figures(Facts(T0, T0 + timedelta(days=1), [], [], []))
    assert got.calls == 0 and got.handoffs_per_100_calls is None and got.containment_24h is None
    assert got.time_to_human_p50_s is None and got.completion is None


def test_the_rows_are_gathered_alike_on_each_database(store: Store) -> None:
    """Two calls from one number: the first handed off and bridged, the second the bot ended."""
    first = make_record("CA" + "1" * 32)
    first.created_at = T0.timestamp()
    assert first.decision is not None
    first.decision.decided_at = T0.timestamp() + 30
    store.save_call(first)
    store.log_event(first.call_sid, "whisper_accepted", {"attempt": 0}, f"{first.call_sid}:accepted:0")
    store.record_dial_attempt(first.call_sid, f"{first.call_sid}-h1", 0, "phone", "+15550001111", outcome="bridged")
    second = make_record("CA" + "2" * 32, with_decision=False)
    second.created_at = T0.timestamp() + 3600
    store.save_call(second)
    facts = store.analytics_facts(T0 - timedelta(days=1), T0 + timedelta(days=1))
    got = figures(facts)
    assert (got.calls, got.handoffs, got.completion) == (2, 1, 1.0)
    assert got.repeat_contact_7d == 1.0 and got.containment_24h == 0.5
    (fact,) = facts.handoffs
    assert fact.decided_at == T0 + timedelta(seconds=30) and fact.bridged_at is not None
    assert store.analytics_facts(T0 - timedelta(days=1), T0 + timedelta(days=1), "nowhere").handoffs == []
    assert make_package(first.call_sid).recommended_queue == fact.queue


async def test_the_api_serves_the_figures_of_a_window(tmp_path: Path) -> None:
    async with running(tmp_path / "data") as server:
        await server.replay("talk_to_a_person.yaml", tmp_path / "tts")
        assert await server.services.desk.ledger.outbox.flush(10)
        async with httpx.AsyncClient(base_url=server.base) as http:
            at = datetime(2026, 11, 24, 15, tzinfo=UTC)  # the server's clock: calls date from it, not the wall
            window = {"from": (at - timedelta(days=1)).isoformat(), "to": (at + timedelta(hours=1)).isoformat()}
            served = await http.get("/api/analytics", params=window, headers=HEADERS)
            backwards = await http.get("/api/analytics", params={"from": window["to"], "to": window["from"]},
                                       headers=HEADERS)  # fmt: skip
            unauthorised = await http.get("/api/analytics")
            by_default = await http.get("/api/analytics", headers=HEADERS)  # the 7 days through today
    body = served.json()
    assert served.status_code == 200 and body["calls"] == 1 and body["handoffs"] == 1
    assert body["by_queue"] == {"orders": 1} and body["completion"] == 1.0
    assert backwards.status_code == 422 and unauthorised.status_code == 401
    assert by_default.json()["calls"] == 1 and by_default.json()["to"].startswith("2026-11-25T00:00")
