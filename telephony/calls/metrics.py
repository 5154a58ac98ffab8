"""What the server counts for Prometheus: live calls, handoffs, dial outcomes, time to a person, turn latency,
and the recogniser and store failures a caller would feel.

`Metrics` owns its own `CollectorRegistry` (never the process-wide default), so two apps or two tests in one
process never collide. Labels take only names from the bot pack and the code (queues, categories, triggers,
outcomes, store operations): a call SID or a phone number in a label would grow the series without bound.
It lives in `calls/` because both the session and the desk record into it, and the desk may import `calls`.
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

StoreAccess = Literal["read", "write"]

# From the handoff decision to the caller bridged with a person: an announcement, ringing, the whisper.
TIME_TO_HUMAN_BUCKETS_S = (5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)
# From the caller's end-of-speech window closing to our first reply frame (`TurnLatency.after_window_ms`).
TURN_LATENCY_BUCKETS_S = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)


class Metrics:
    """The server's Prometheus series, in a registry of their own; one per server process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self._calls_active = Gauge("handoff_calls_active", "Media streams admitted and not yet ended.", registry=r)
        self._handoffs = Counter(
            "handoff_handoffs",
            "Calls handed to a person, by escalation category, trigger and routed queue.",
            ("category", "trigger", "queue"),
            registry=r,
        )
        self._dial_outcomes = Counter(
            "handoff_dial_outcomes", "Transfer attempts, by typed outcome.", ("outcome",), registry=r
        )
        self._time_to_human = Histogram(
            "handoff_time_to_human_seconds",
            "Seconds from the handoff decision to the caller bridged with a person.",
            buckets=TIME_TO_HUMAN_BUCKETS_S,
            registry=r,
        )
        self._turn_latency = Histogram(
            "handoff_turn_latency_seconds",
            "Seconds from the caller's end-of-speech window closing to the bot's first reply frame.",
            ("cached",),
            buckets=TURN_LATENCY_BUCKETS_S,
            registry=r,
        )
        self._recognizer_failures = Counter(
            "handoff_recognizer_failures", "Calls whose speech recogniser failed mid-call.", registry=r
        )
        self._store_failures = Counter(
            "handoff_store_failures",
            "Store reads and write attempts that failed or timed out (writes are retried until stored).",
            ("operation", "access"),
            registry=r,
        )

    def call_started(self) -> None:
        self._calls_active.inc()

    def call_ended(self) -> None:
        self._calls_active.dec()

    def handoff(self, category: str, trigger: str, queue: str) -> None:
        self._handoffs.labels(category=category, trigger=trigger, queue=queue).inc()

    def dial_outcome(self, outcome: str) -> None:
        self._dial_outcomes.labels(outcome=outcome).inc()

    def time_to_human(self, seconds: float) -> None:
        """A negative span (a clock stepped back) is kept as 0 rather than dropped: the bridge did happen."""
        self._time_to_human.observe(max(0.0, seconds))

    def turn_latency(self, ms: float, *, cached: bool) -> None:
        self._turn_latency.labels(cached="true" if cached else "false").observe(ms / 1000)

    def recognizer_failed(self) -> None:
        self._recognizer_failures.inc()

    def store_failed(self, operation: str, access: StoreAccess = "write") -> None:
        self._store_failures.labels(operation=operation, access=access).inc()

    def exposition(self) -> bytes:
        """Every series in Prometheus' text format."""
        return generate_latest(self.registry)


DISCARDED = Metrics()
"""The default for parts built without a `Metrics` (tests, tools): counted here, and served by nobody."""
