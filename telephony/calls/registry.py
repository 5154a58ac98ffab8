"""Where a server finds its calls: records by call SID, and the streams that are live right now."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

from telephony.calls.records import CallRecord

S = TypeVar("S")


class CallRegistry:
    """Call records by call SID, in memory; one per server process. Finished calls are let go (`evict`): the
    store has them, and a late webhook loads them again."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._calls: dict[str, CallRecord] = {}
        self._touched: dict[str, float] = {}
        self._clock = clock

    def get(self, call_sid: str) -> CallRecord | None:
        record = self._calls.get(call_sid)
        if record is not None:
            self._touched[call_sid] = self._clock()
        return record

    def open(self, call_sid: str) -> CallRecord:
        """The call's record, created on first sight (a stream may arrive before or without its webhook)."""
        record = self._calls.get(call_sid)
        if record is None:
            record = self._calls[call_sid] = CallRecord(call_sid=call_sid)
        self._touched[call_sid] = self._clock()
        return record

    def adopt(self, record: CallRecord) -> None:
        """Take over a record loaded from the store (after a restart)."""
        self._calls.setdefault(record.call_sid, record)
        self._touched[record.call_sid] = self._clock()

    def evict(self, idle_s: float, keep: Callable[[str], bool]) -> int:
        """Forget records untouched for `idle_s` that `keep` does not hold on to; returns how many went."""
        cutoff = self._clock() - idle_s
        gone = [sid for sid, at in self._touched.items() if at < cutoff and not keep(sid)]
        for sid in gone:
            self._calls.pop(sid, None)
            self._touched.pop(sid, None)
        return len(gone)

    def __len__(self) -> int:
        return len(self._calls)

    def all(self) -> list[CallRecord]:
        return list(self._calls.values())


class LiveStreams(Generic[S]):
    """The media streams open right now, by call SID: one per call."""

    def __init__(self) -> None:
        self._streams: dict[str, S] = {}

    def add(self, call_sid: str, stream: S) -> bool:
        """Register the call's stream; False when the call already has one open."""
        if call_sid in self._streams:
            return False
        self._streams[call_sid] = stream
        return True

    def remove(self, call_sid: str, stream: S) -> None:
        if self._streams.get(call_sid) is stream:
            del self._streams[call_sid]

    def get(self, call_sid: str) -> S | None:
        return self._streams.get(call_sid)

    def open_streams(self) -> list[S]:
        """Every stream open now (a copy: streams leave while the caller walks it)."""
        return list(self._streams.values())

    def __len__(self) -> int:
        return len(self._streams)
