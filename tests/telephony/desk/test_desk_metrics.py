"""The desk's series: store failures (writes retried, reads given up), dial outcomes, the time to a person, and
the handoff of a stream that broke. One `Metrics` given to the outbox reaches the ledger, transfers and desk."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from dialogs.pack import load_pack
from dialogs.package import EscalationReason, HandoffPackage
from dialogs.routing import RoutingDecision, Target
from telephony.calls.metrics import Metrics
from telephony.calls.records import CallDecision, CallRecord
from telephony.calls.registry import CallRegistry
from telephony.desk.callbacks import Callbacks
from telephony.desk.desk import HandoffDesk
from telephony.desk.ledger import Ledger
from telephony.desk.outbox import Outbox
from telephony.desk.targets import TransferConfig
from telephony.desk.transfers import Transfers
from telephony.desk.voicemail import Voicemails

PACK = load_pack()
BASE = "https://handoff.example.com"
CALL_SID = "CA" + "8" * 32
RING = TransferConfig("+15005550006", None, 20)
SIP = Target(kind="sip", uri="sip:billing@pbx.example")
TUESDAY = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return found if found is not None else 0.0


class FlakyStore:
    """The store methods the desk calls, failing the first `failures` times each is called."""

    def __init__(self, failures: int = 1) -> None:
        self.failures = failures
        self.calls: dict[str, int] = {}

    def _call(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1
        if self.calls[name] <= self.failures:
            raise OSError("database is locked")

    def save_call(self, record: CallRecord) -> None:
        self._call("save_call")

    def save_handoff(self, *args: object) -> None:
        self._call("save_handoff")

    def load_call(self, call_sid: str) -> CallRecord | None:
        self._call("load_call")
        return None


def ledger_with(metrics: Metrics, store: FlakyStore | None = None) -> Ledger:
    outbox = Outbox(retry_initial_s=0.001, retry_max_s=0.01, metrics=metrics)
    return Ledger(CallRegistry(), store, outbox)  # type: ignore[arg-type]  (the store's methods the test needs)


async def test_a_failed_store_write_is_counted_by_its_operation_each_time_it_is_retried() -> None:
    metrics = Metrics()
    ledger = ledger_with(metrics, FlakyStore(failures=2))
    await ledger.save(CallRecord(call_sid=CALL_SID))
    await ledger.write(CALL_SID, ledger.store.save_handoff, CALL_SID)  # type: ignore[union-attr]
    assert await ledger.outbox.flush(5)
    assert value(metrics, "handoff_store_failures_total", operation="save_call", access="write") == 2
    assert value(metrics, "handoff_store_failures_total", operation="save_handoff", access="write") == 2
    await ledger.outbox.aclose()


async def test_a_failed_store_read_is_counted_and_the_desk_answers_from_memory() -> None:
    metrics = Metrics()
    ledger = ledger_with(metrics, FlakyStore(failures=1))
    assert await ledger.find(CALL_SID) is None
    assert value(metrics, "handoff_store_failures_total", operation="load_call", access="read") == 1
    assert await ledger.find(CALL_SID) is None  # the store answers now: nothing more is counted
    assert value(metrics, "handoff_store_failures_total", operation="load_call", access="read") == 1


def make_package(queue: str) -> HandoffPackage:
    return HandoffPackage(
        handoff_id=f"{CALL_SID}-h1",
        call_sid=CALL_SID,
        primary_issue="Charged twice.",
        user_goal="A refund.",
        reason=EscalationReason(category="risk_compliance", trigger="billing_dispute", detail="Disputes: a person."),
        recommended_queue=queue,
        urgency="high",
        caller="+15551230003",
    )


def transfers_with(metrics: Metrics, decided_at: float, *, routing: RoutingDecision | None = None) -> Transfers:
    ledger = ledger_with(metrics)
    record = ledger.open(CALL_SID)
    queue = routing.queue if routing is not None else PACK.default_queue
    record.decision = CallDecision(
        kind="handoff",
        reason="billing_dispute",
        decided_ms=9_000,
        decided_at=decided_at,
        package=make_package(queue),
        routing=routing,
    )
    return Transfers(ledger, PACK, RING, Callbacks(ledger, PACK, clock=lambda: TUESDAY), None)


async def test_the_agent_pressing_1_is_the_bridge_counted_once_from_the_decision() -> None:
    metrics = Metrics()
    transfers = transfers_with(metrics, decided_at=time.time() - 42)
    await transfers.accept(CALL_SID, 0, {"Digits": "1"})
    await transfers.accept(CALL_SID, 0, {"Digits": "1"})  # Twilio sent the key press twice
    assert value(metrics, "handoff_time_to_human_seconds_count") == 1
    assert value(metrics, "handoff_time_to_human_seconds_sum") == pytest.approx(42, abs=2)
    await transfers.dial_status(CALL_SID, 0, {"DialCallStatus": "completed", "CallStatus": "in-progress"}, BASE)
    await transfers.dial_status(CALL_SID, 0, {"DialCallStatus": "completed", "CallStatus": "in-progress"}, BASE)
    assert value(metrics, "handoff_dial_outcomes_total", outcome="bridged") == 1
    assert value(metrics, "handoff_time_to_human_seconds_count") == 1  # the bridge was counted at the key press


async def test_a_key_other_than_1_is_no_bridge() -> None:
    metrics = Metrics()
    transfers = transfers_with(metrics, decided_at=time.time())
    await transfers.accept(CALL_SID, 0, {"Digits": "2"})
    assert value(metrics, "handoff_time_to_human_seconds_count") == 0


async def test_each_attempts_outcome_is_counted_once() -> None:
    metrics = Metrics()
    transfers = transfers_with(metrics, decided_at=time.time())
    await transfers.dial_status(CALL_SID, 0, {"DialCallStatus": "no-answer", "CallStatus": "in-progress"}, BASE)
    await transfers.dial_status(CALL_SID, 0, {"DialCallStatus": "no-answer", "CallStatus": "in-progress"}, BASE)
    assert value(metrics, "handoff_dial_outcomes_total", outcome="no_answer") == 1
    assert value(metrics, "handoff_time_to_human_seconds_count") == 0


async def test_a_sip_agent_who_never_presses_1_declined_and_is_not_timed() -> None:
    metrics = Metrics()
    routing = RoutingDecision(queue="pbx_only", mode="transfer", targets=(SIP,))
    transfers = transfers_with(metrics, decided_at=time.time() - 100, routing=routing)
    form = {"DialCallStatus": "completed", "CallStatus": "in-progress", "DialCallDuration": "40"}
    await transfers.dial_status(CALL_SID, 0, form, BASE)
    assert value(metrics, "handoff_dial_outcomes_total", outcome="declined") == 1
    assert value(metrics, "handoff_dial_outcomes_total", outcome="bridged") == 0
    assert value(metrics, "handoff_time_to_human_seconds_count") == 0


async def test_a_decision_without_a_wall_time_is_not_timed() -> None:
    metrics = Metrics()
    transfers = transfers_with(metrics, decided_at=time.time())
    record = transfers.ledger.get(CALL_SID)
    assert record is not None and record.decision is not None
    record.decision.decided_at = None  # stored by a server from before `decided_at`
    await transfers.accept(CALL_SID, 0, {"Digits": "1"})
    assert value(metrics, "handoff_time_to_human_seconds_count") == 0


async def test_a_stream_that_broke_before_deciding_is_a_counted_handoff_with_its_wall_time() -> None:
    metrics = Metrics()
    ledger = ledger_with(metrics)
    callbacks = Callbacks(ledger, PACK, clock=lambda: TUESDAY)
    transfers = Transfers(ledger, PACK, RING, callbacks, None)
    desk = HandoffDesk(ledger, PACK, transfers, callbacks, Voicemails(ledger, PACK, callbacks, None))
    before = time.time()
    await desk.stream_ended(CALL_SID, {"CallStatus": "in-progress", "From": "+15551230003"}, BASE)
    record = ledger.get(CALL_SID)
    assert record is not None and record.decision is not None and record.decision.package is not None
    assert (record.decision.decided_at or 0) >= before
    queue = record.decision.package.recommended_queue
    labels = {"category": "workflow_exception", "trigger": "stream_lost", "queue": queue}
    assert value(metrics, "handoff_handoffs_total", **labels) == 1


def test_the_outbox_metrics_reach_the_ledger_transfers_and_desk_unless_given_their_own() -> None:
    metrics, own = Metrics(), Metrics()
    ledger = ledger_with(metrics)
    callbacks = Callbacks(ledger, PACK, clock=lambda: TUESDAY)
    assert ledger.metrics is metrics
    assert Transfers(ledger, PACK, RING, callbacks, None).metrics is metrics
    assert Transfers(ledger, PACK, RING, callbacks, None, metrics=own).metrics is own
    transfers = Transfers(ledger, PACK, RING, callbacks, None)
    assert HandoffDesk(ledger, PACK, transfers, callbacks, Voicemails(ledger, PACK, callbacks, None)).metrics is metrics
