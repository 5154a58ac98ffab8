"""Store fixtures: a migrated store on a real SQLite file and on PostgreSQL (a throwaway cluster the session starts,
tests/postgres.py), a clock the tests control, and a call record and handoff package built by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from dialogs.package import AttemptedAction, EscalationReason, HandoffPackage, KeyFact, TranscriptTurn
from dialogs.routing import RoutingDecision
from telephony.calls.records import (
    CallDecision,
    CallRecord,
    PromptRecord,
    TransferProgress,
    TurnLatency,
    TurnRecord,
)
from telephony.store import Store

CALL_SID = "CA" + "a" * 32
ACCOUNT_SID = "AC" + "b" * 32
STREAM_SID = "MZ" + "c" * 32
HANDOFF_ID = f"{CALL_SID}-h1"
START = datetime(2025, 6, 2, 9, 35, tzinfo=UTC)  # five minutes into the call below


class FakeClock:
    """Aware UTC time that moves one millisecond per reading, so rows written in turn have distinct times."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[Store]:
    store = Store(store_url, clock=clock)
    store.migrate()
    yield store
    store.close()


def make_package(call_sid: str = CALL_SID, handoff_id: str = HANDOFF_ID, **overrides: object) -> HandoffPackage:
    fields: dict[str, object] = {
        "handoff_id": handoff_id,
        "call_sid": call_sid,
        "primary_issue": "Charged twice for one order; wants a refund.",
        "user_goal": "Get the duplicate charge refunded.",
        "key_facts": (KeyFact(kind="order_number", value="481523"),),
        "actions_attempted": (AttemptedAction(action="order_lookup", result="found, shipped Monday"),),
        "reason": EscalationReason(
            category="risk_compliance", trigger="refund_dispute", detail="Refund disputes need a person."
        ),
        "recommended_queue": "billing_disputes",
        "urgency": "high",
        "frustrated": True,
        "caller": "+15551230003",
        "transcript": (
            TranscriptTurn(speaker="bot", text="Hi, how can I help?", start_ms=0, end_ms=1800),
            TranscriptTurn(
                speaker="caller", text="I was charged twice for order 481523.", start_ms=2500, end_ms=5200,
                confidence=0.91,
            ),
        ),
    }  # fmt: skip
    fields.update(overrides)
    return HandoffPackage.model_validate(fields)


ROUTING: dict[str, object] = {
    "queue": "billing_disputes",
    "mode": "transfer",
    "targets": [{"kind": "phone", "number": "+15550001111"}],
    "expected_wait_s": 45,
    "reasons": ["rule refund_dispute -> billing_disputes", "billing_disputes is open (schedule)"],
    "availability": {"open": True, "available_agents": 2, "expected_wait_s": 45, "source": "schedule", "detail": ""},
    "checked": {"billing_disputes": "open"},
}


def make_record(call_sid: str = CALL_SID, *, turns: int = 2, with_decision: bool = True) -> CallRecord:
    """A call as the server keeps it after the stream closed with a handoff; `turns` caller turns."""
    record = CallRecord(
        call_sid=call_sid,
        account_sid=ACCOUNT_SID,
        stream_sid=STREAM_SID,
        caller="+15551230003",
        called="+15550000000",
        parameters={"caller": "+15551230003", "tier": "gold"},
        created_at=1_748_856_600.25,  # exact in binary, so it survives the round trip through a datetime
        status="stream_ended",
        stream_end="server_closed",
        asr_engine="vosk",
    )
    record.turns.append(TurnRecord(speaker="bot", text="Hi, how can I help?", start_ms=0, end_ms=1800))
    for n in range(turns):
        record.add_caller_turn(f"caller turn {n}", 2_000 + 3_000 * n, 4_000 + 3_000 * n, 0.9, "vosk")
    record.prompts.append(
        PromptRecord(
            prompt_id="greeting", mark="m1", text="Hi, how can I help?", cached=True, play_start_ms=0,
            duration_ms=1800, played=True,
        )
    )  # fmt: skip
    record.prompts.append(
        PromptRecord(
            prompt_id="transfer", mark="m2", text="Let me get you to someone.", cached=False, play_start_ms=9_000,
            duration_ms=2100, cut_off=True, heard_ms=700,
        )
    )  # fmt: skip
    record.note(0, "stream_started", stream_sid=STREAM_SID)
    record.note(2_000, "heard", confidence=0.9)
    record.note(9_000, "routed", queue="billing_disputes", mode="transfer", expected_wait_s=45)
    record.latencies.append(
        TurnLatency(last_voiced_ms=4_000, window_closed_ms=4_600, after_window_ms=120.5, prompt_id="x", cached=True)
    )
    record.protocol_errors["bad_json"] = 1
    record.progress = TransferProgress(kind="transfer", target="+15550001111")
    if with_decision:
        record.decision = CallDecision(
            kind="handoff",
            reason="refund_dispute",
            decided_ms=9_000,
            package=make_package(call_sid, handoff_id=f"{call_sid}-h1"),
            routing=RoutingDecision.model_validate(ROUTING),
        )
    return record
