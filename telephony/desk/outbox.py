"""Writes that must reach the store, whatever the store is doing: queued, retried until stored, spooled to disk.

A webhook must answer Twilio within seconds, and a caller must be handed on, even while another process
holds the database's write lock or the disk is full. So nothing on a call's path waits on the store for long:
a write is queued here, and the caller waits at most `deadline_s` for it. One writer drains the queue in
order, retrying with backoff until each write lands, and logs each failure with its key (the call SID).

A call record's write is also spooled to disk first (appended to this process's journal, `spool.py`); the
journal empties once every record in it is stored. A server that dies while the store is down finds the
spooled records at its next start and stores them then (`recover`), so what the caller said is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from telephony.calls.metrics import DISCARDED, Metrics
from telephony.calls.records import CallRecord
from telephony.desk.spool import Spool

log = logging.getLogger(__name__)

DEADLINE_S = 1.0  # the most a call's path waits for a write; Twilio's webhooks must answer within 5 s
RETRY_INITIAL_S = 0.2
RETRY_MAX_S = 10.0


@dataclass
class _Pending:
    write: Callable[[], object]
    operation: str  # what the write does (`save_call`, `log_event`): its failures are counted by this name
    done: asyncio.Event = field(default_factory=asyncio.Event)
    failures: int = 0


class Outbox:
    """Queued store writes by key (a newer write for a key replaces one still waiting), drained in order."""

    def __init__(
        self,
        spool_dir: Path | None = None,
        *,
        deadline_s: float = DEADLINE_S,
        retry_initial_s: float = RETRY_INITIAL_S,
        retry_max_s: float = RETRY_MAX_S,
        metrics: Metrics = DISCARDED,
    ) -> None:
        self.metrics = metrics
        self.deadline_s = deadline_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self.spool = Spool(spool_dir) if spool_dir is not None else None
        self._stuck = False
        self._wakeup: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        if spool_dir is not None:
            spool_dir.mkdir(parents=True, exist_ok=True)

    @property
    def waiting(self) -> int:
        """Writes not yet stored."""
        return len(self._pending)

    @property
    def stuck(self) -> bool:
        """The store is not taking writes right now (one failed, or took over the deadline): nobody should wait."""
        return self._stuck

    def pending(self, key: str) -> bool:
        return key in self._pending

    def pending_for(self, call_sid: str) -> int:
        """Writes of one call not yet stored (its record's, and those keyed `<what>:<call_sid>:<n>`)."""
        return sum(1 for key in self._pending if key.split(":")[1:2] == [call_sid])

    async def put(self, key: str, write: Callable[[], object], *, wait: bool = True, operation: str = "write") -> bool:
        """Queue `write` under `key`; with `wait`, wait up to the deadline for it to land. True when stored.

        `operation` names the write in the failure count: a store method's name, never the key (it holds a SID).
        """
        return await self._landed(key, self._queue(key, write, operation), wait=wait)

    async def _landed(self, key: str, entry: _Pending, *, wait: bool) -> bool:
        """With `wait`, whether the queued `entry` lands within the deadline; without, False at once."""
        if not wait or self._stuck:  # a store that is stuck holds nobody up: the write is retried in the background
            return False
        try:
            await asyncio.wait_for(asyncio.shield(entry.done.wait()), self.deadline_s)
        except TimeoutError:
            self._stuck = True
            log.warning("store write %s takes over %.1f s; it stays queued and is retried", key, self.deadline_s)
            return False
        return True

    def _queue(self, key: str, write: Callable[[], object], operation: str) -> _Pending:
        self._start()
        entry = self._pending.get(key)
        if entry is None:
            entry = self._pending[key] = _Pending(write, operation)
        else:
            entry.write = write  # the newer snapshot wins; it keeps its place in the queue
        if self._wakeup is not None:
            self._wakeup.set()
        return entry

    async def save_record(
        self, record: CallRecord, store_call: Callable[[CallRecord], object], *, wait: bool = True
    ) -> bool:
        """Queue a call record's write (`keep_record`); with `wait`, wait up to the deadline for it to be stored."""
        key, entry = self._queue_record(record, store_call)
        return await self._landed(key, entry, wait=wait)

    def keep_record(self, record: CallRecord, store_call: Callable[[CallRecord], object]) -> None:
        """Queue a call record's write: a snapshot (the live record keeps changing), spooled to disk before this
        returns, so a crash at any later moment loses none of it; stored in the background."""
        self._queue_record(record, store_call)

    def _queue_record(self, record: CallRecord, store_call: Callable[[CallRecord], object]) -> tuple[str, _Pending]:
        """The snapshot, spooled and queued (see `keep_record`); its key and queue entry.

        The snapshot is the spooled JSON read back, which costs a fraction of a deep copy of the record."""
        text = record.model_dump_json()
        snapshot = CallRecord.model_validate_json(text)
        sid = snapshot.call_sid
        spool = self.spool
        version = spool.write(sid, text) if spool is not None else 0

        def write() -> None:
            store_call(snapshot)
            if spool is not None:
                spool.stored(sid, version)

        key = f"call:{sid}"
        return key, self._queue(key, write, getattr(store_call, "__name__", "save_call"))

    def recover(self) -> list[CallRecord]:
        """Call records a previous run spooled and never stored: to be queued again at start-up (they are in
        this process's spool from now on)."""
        return self.spool.adopt() if self.spool is not None else []

    async def flush(self, timeout_s: float) -> bool:
        """Wait until every queued write is stored, or `timeout_s` passes; True when none is left."""
        waits = [entry.done.wait() for entry in self._pending.values()]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), timeout_s)
        return not self._pending

    async def aclose(self, timeout_s: float = 2.0) -> None:
        """Store what can be stored in `timeout_s`; what cannot stays spooled for the next start."""
        await self.flush(timeout_s)
        self._closing = True
        if self._pending:
            log.error("%d store writes not done at shutdown (call records stay spooled)", len(self._pending))
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self.spool is not None:
            self.spool.close()

    # --- the writer ------------------------------------------------------------------------------------------

    def _start(self) -> None:
        if self._writer is None and not self._closing:
            self._wakeup = asyncio.Event()
            self._writer = asyncio.create_task(self._drain(), name="store-outbox")

    async def _drain(self) -> None:
        wakeup = self._wakeup
        if wakeup is None:
            return
        while True:
            if not self._pending:
                wakeup.clear()
                await wakeup.wait()
                continue
            key, entry = next(iter(self._pending.items()))
            write = entry.write
            try:
                await asyncio.to_thread(write)
            except Exception as exc:  # the store is locked, full, gone: keep it queued, try again later
                self._stuck = True
                entry.failures += 1
                self.metrics.store_failed(entry.operation, "write")
                delay = min(self.retry_max_s, self.retry_initial_s * 2 ** (entry.failures - 1))
                log.error("store write %s failed (%d times): %s; retrying in %.1f s", key, entry.failures, exc, delay)
                await asyncio.sleep(delay)
                continue
            self._stuck = False
            if self._pending.get(key) is entry and entry.write is write:  # not replaced while it was written
                del self._pending[key]
                entry.done.set()
