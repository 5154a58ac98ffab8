"""The replayed call's own time, for the server's clock: the scenario's start, plus the caller's media so far,
plus the agents' simulated ringing and briefing. What the server stores (a handoff's time, the bridge) then
dates from when the scenario says the call happened and moves as the call does, even on the virtual clock."""

from __future__ import annotations

from datetime import datetime, timedelta

from telephony.replay.line import PhoneLine
from telephony.replay.result import ReplayResult


class SimulatedClock:
    """A server clock that follows one replayed call (set `watch` when the call starts)."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self._line: PhoneLine | None = None
        self._result: ReplayResult | None = None

    def watch(self, line: PhoneLine, result: ReplayResult) -> None:
        self._line, self._result = line, result

    def elapsed_ms(self) -> int:
        media = self._line.t_ms if self._line is not None else 0
        timing = self._result.outcome.get("timing") if self._result is not None else None
        legs = timing.get("legs", []) if isinstance(timing, dict) else []
        return media + sum(int(leg.get("ms", 0)) for leg in legs if isinstance(leg, dict))

    def __call__(self) -> datetime:
        return self.start + timedelta(milliseconds=self.elapsed_ms())
