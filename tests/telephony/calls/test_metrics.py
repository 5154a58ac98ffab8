"""The Prometheus series: each one counts with its labels in a registry of its own, and a live call feeds them.

The session tests drive a real `CallSession` message by message (oracle ASR, a fixed voice), as
`test_session.py` does, with a `Metrics` in its deps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from telephony.calls.metrics import Metrics
from telephony.calls.ports import SessionConfig, SessionDeps
from telephony.calls.records import CallRecord
from telephony.calls.registry import CallRegistry
from telephony.calls.session import CallSession
from tests.telephony.conftest import CALL_SID, FixedSynthesizer, RecordingTransport, StreamScript, voiced_ulaw
from tests.telephony.first_dialog import FirstDialogFactory
from voice.oracle import OracleRecognizerFactory, OracleUtterance
from voice.recognition import CallRecognition, LocalRecognition, RecognitionService, RecognizerFailed
from voice.vad import VadConfig


def value(metrics: Metrics, name: str, **labels: str) -> float:
    """One sample's value; 0 for a series not yet touched."""
    found = metrics.registry.get_sample_value(name, labels)
    return found if found is not None else 0.0


# --- the series, one by one ------------------------------------------------------------------------------------


def test_calls_active_goes_up_and_down() -> None:
    metrics = Metrics()
    metrics.call_started()
    metrics.call_started()
    metrics.call_ended()
    assert value(metrics, "handoff_calls_active") == 1


def test_handoffs_count_by_category_trigger_and_queue() -> None:
    metrics = Metrics()
    metrics.handoff("distress", "distress_marker", "distress")
    metrics.handoff("risk_compliance", "billing_dispute", "billing")
    metrics.handoff("risk_compliance", "billing_dispute", "billing")
    billing = {"category": "risk_compliance", "trigger": "billing_dispute", "queue": "billing"}
    assert value(metrics, "handoff_handoffs_total", **billing) == 2
    distress = {"category": "distress", "trigger": "distress_marker", "queue": "distress"}
    assert value(metrics, "handoff_handoffs_total", **distress) == 1


def test_dial_outcomes_count_by_outcome() -> None:
    metrics = Metrics()
    for outcome in ("bridged", "no_answer", "no_answer", "caller_hung_up_before_bridge"):
        metrics.dial_outcome(outcome)
    assert value(metrics, "handoff_dial_outcomes_total", outcome="no_answer") == 2
    assert value(metrics, "handoff_dial_outcomes_total", outcome="bridged") == 1
    assert value(metrics, "handoff_dial_outcomes_total", outcome="caller_hung_up_before_bridge") == 1


def test_time_to_human_is_a_histogram_in_seconds_and_a_negative_span_counts_as_zero() -> None:
    metrics = Metrics()
    metrics.time_to_human(12.5)
    metrics.time_to_human(-3.0)  # the wall clock stepped back between the decision and the bridge
    assert value(metrics, "handoff_time_to_human_seconds_count") == 2
    assert value(metrics, "handoff_time_to_human_seconds_sum") == 12.5
    assert value(metrics, "handoff_time_to_human_seconds_bucket", le="5.0") == 1
    assert value(metrics, "handoff_time_to_human_seconds_bucket", le="15.0") == 2


def test_turn_latency_takes_milliseconds_and_observes_seconds_by_cached() -> None:
    metrics = Metrics()
    metrics.turn_latency(120.0, cached=True)
    metrics.turn_latency(480.0, cached=False)
    assert value(metrics, "handoff_turn_latency_seconds_sum", cached="true") == pytest.approx(0.12)
    assert value(metrics, "handoff_turn_latency_seconds_bucket", cached="true", le="0.15") == 1
    assert value(metrics, "handoff_turn_latency_seconds_bucket", cached="false", le="0.3") == 0
    assert value(metrics, "handoff_turn_latency_seconds_bucket", cached="false", le="0.5") == 1


def test_recognizer_and_store_failures_count() -> None:
    metrics = Metrics()
    metrics.recognizer_failed()
    metrics.store_failed("save_call")
    metrics.store_failed("save_call")
    metrics.store_failed("load_call", "read")
    assert value(metrics, "handoff_recognizer_failures_total") == 1
    assert value(metrics, "handoff_store_failures_total", operation="save_call", access="write") == 2
    assert value(metrics, "handoff_store_failures_total", operation="load_call", access="read") == 1


def test_the_exposition_is_prometheus_text_with_every_series_and_its_labels() -> None:
    metrics = Metrics()
    metrics.call_started()
    metrics.handoff("capability_gap", "explicit_request", "general")
    metrics.dial_outcome("busy")
    metrics.time_to_human(30)
    metrics.turn_latency(200, cached=False)
    metrics.recognizer_failed()
    metrics.store_failed("save_handoff")
    text = metrics.exposition().decode()
    assert "# TYPE handoff_calls_active gauge" in text
    assert "handoff_calls_active 1.0" in text
    assert "# TYPE handoff_handoffs_total counter" in text
    assert 'handoff_handoffs_total{category="capability_gap",queue="general",trigger="explicit_request"} 1.0' in text
    assert 'handoff_dial_outcomes_total{outcome="busy"} 1.0' in text
    assert "# TYPE handoff_time_to_human_seconds histogram" in text
    assert 'handoff_time_to_human_seconds_bucket{le="30.0"} 1.0' in text
    assert 'handoff_turn_latency_seconds_count{cached="false"} 1.0' in text
    assert "handoff_recognizer_failures_total 1.0" in text
    assert 'handoff_store_failures_total{access="write",operation="save_handoff"} 1.0' in text


def test_each_metrics_has_its_own_registry_and_leaves_the_default_one_alone() -> None:
    from prometheus_client import REGISTRY

    first, second = Metrics(), Metrics()  # two apps in one process: no "Duplicated timeseries"
    first.recognizer_failed()
    assert value(first, "handoff_recognizer_failures_total") == 1
    assert value(second, "handoff_recognizer_failures_total") == 0
    assert REGISTRY.get_sample_value("handoff_recognizer_failures_total") is None
    shared = CollectorRegistry()
    assert Metrics(shared).registry is shared


# --- a live call feeds them ------------------------------------------------------------------------------------


class DeadRecognition:
    """A recognition service whose engine is gone: every call's recogniser fails to open."""

    name = "dead"

    async def start(self) -> None:
        return None

    async def open(self, call_sid: str) -> CallRecognition:
        raise RecognizerFailed(f"no recogniser for call {call_sid}: the worker died")

    async def aclose(self) -> None:
        return None


class Call:
    """A session under test with a `Metrics` in its deps."""

    def __init__(self, said: list[str], recognition: RecognitionService | None = None) -> None:
        oracle = OracleRecognizerFactory()
        oracle.register(CALL_SID, [OracleUtterance(text, 0.9) for text in said])
        self.metrics = Metrics()
        self.registry = CallRegistry()
        self.transport = RecordingTransport()
        deps = SessionDeps(
            recognition=recognition or LocalRecognition(oracle),
            synthesizer=FixedSynthesizer(1000),
            dialogs=FirstDialogFactory(),
            registry=self.registry,
            metrics=self.metrics,
        )
        self.session = CallSession(deps, SessionConfig(vad=VadConfig()), self.transport)
        self.twilio = StreamScript()

    async def feed(self, *messages: str | list[str]) -> None:
        for message in messages:
            for text in [message] if isinstance(message, str) else message:
                await self.session.receive(text)

    async def until(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(5.0):
            while not condition():  # noqa: ASYNC110  (polling a session under test)
                await asyncio.sleep(0.002)

    async def echo_marks(self) -> None:
        for name in self.transport.marks():
            await self.feed(self.twilio.mark(name))

    @property
    def record(self) -> CallRecord:
        record = self.registry.get(CALL_SID)
        assert record is not None
        return record


async def test_a_call_is_live_from_its_start_to_its_end_and_counted_once_even_if_ended_twice() -> None:
    call = Call([])
    assert value(call.metrics, "handoff_calls_active") == 0
    await call.feed(call.twilio.connected(), call.twilio.start())
    assert value(call.metrics, "handoff_calls_active") == 1
    await call.session.end("caller_stop")
    await call.session.end("dropped")  # the websocket handler's `finally` ends it again
    assert value(call.metrics, "handoff_calls_active") == 0


async def test_a_refused_stream_is_never_a_live_call() -> None:
    call = Call([])
    await call.feed(call.twilio.connected(), call.twilio.start())
    second = CallSession(call.session.deps, call.session.config, RecordingTransport())
    await second.receive(StreamScript().start())  # a second stream for the same call is refused
    assert second.refused
    await second.end("dropped")
    assert value(call.metrics, "handoff_calls_active") == 1
    await call.session.end("dropped")


async def test_a_handoff_counts_its_labels_its_turn_latency_and_keeps_the_decision_wall_time() -> None:
    call = Call(["I want to speak to an agent"])
    await call.feed(call.twilio.connected(), call.twilio.start())
    await call.until(lambda: len(call.transport.marks()) == 1)
    await call.echo_marks()
    await call.feed(call.twilio.frames(voiced_ulaw(1200)), call.twilio.silence(800))
    await call.until(lambda: len(call.transport.marks()) == 2)
    await call.echo_marks()
    await call.until(lambda: call.transport.closed_with is not None)
    await call.session.end("dropped")

    decision = call.record.decision
    assert decision is not None and decision.package is not None
    assert decision.decided_at is not None
    reason = decision.package.reason
    queue = decision.routing.queue if decision.routing is not None else decision.package.recommended_queue
    labels = {"category": reason.category, "trigger": reason.trigger, "queue": queue}
    assert reason.trigger == "explicit_request"
    assert value(call.metrics, "handoff_handoffs_total", **labels) == 1
    [latency] = call.record.latencies
    cached = "true" if latency.cached else "false"
    assert value(call.metrics, "handoff_turn_latency_seconds_count", cached=cached) == 1
    assert value(call.metrics, "handoff_turn_latency_seconds_sum", cached=cached) == pytest.approx(
        latency.after_window_ms / 1000
    )
    assert value(call.metrics, "handoff_calls_active") == 0
    text = call.metrics.exposition().decode()
    assert CALL_SID not in text and "+1555" not in text  # no call SID or phone number ever becomes a label


async def test_a_recogniser_that_fails_is_counted_and_its_handoff_too() -> None:
    call = Call([], recognition=DeadRecognition())
    await call.feed(call.twilio.connected(), call.twilio.start())
    await call.until(lambda: value(call.metrics, "handoff_recognizer_failures_total") == 1)
    await call.until(lambda: call.record.decision is not None)
    await call.session.end("dropped")
    decision = call.record.decision
    assert decision is not None and decision.package is not None
    assert decision.package.reason.trigger == "recognizer_failed"
    handoffs = call.metrics.registry.get_sample_value(
        "handoff_handoffs_total",
        {
            "category": decision.package.reason.category,
            "trigger": "recognizer_failed",
            "queue": decision.package.recommended_queue,
        },
    )
    assert handoffs == 1
