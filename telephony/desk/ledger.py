"""The desk's view of its calls: the live record first, the store behind it, and Twilio callbacks logged once.

Every webhook after the stream finds its call here, also after a restart (the stored record is loaded and
carries on). A Twilio callback that arrives twice is recognised by its idempotency key, so it is answered
the same way and stored once.

The store never holds a caller up: writes go through the `Outbox` (queued, retried until stored, call
records spooled to disk), and reads wait at most `read_deadline_s` before the desk carries on with what it
has in memory. A failure is logged with the call SID.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from telephony.calls.metrics import Metrics
from telephony.calls.records import CallRecord
from telephony.calls.registry import CallRegistry
from telephony.desk.outbox import Outbox
from telephony.store import Store
from telephony.store.notices import Notice, send_notice

log = logging.getLogger(__name__)

T = TypeVar("T")

READ_DEADLINE_S = 1.5  # a webhook reads at most this long before answering from memory
STUCK_READ_S = 0.2  # while writes are failing, a read gets this long
GLANCE_S = 0.5  # a look at what other instances logged: it only adds to what memory knows, so it waits less


class Ledger:
    """Call records for the desk: in memory, and in the store when there is one."""

    def __init__(
        self,
        registry: CallRegistry,
        store: Store | None,
        outbox: Outbox | None = None,
        read_deadline_s: float = READ_DEADLINE_S,
        metrics: Metrics | None = None,
        streaming_here: Callable[[str], bool] | None = None,
    ) -> None:
        self.registry = registry
        # Whether this process holds the call's live media stream; then its memory is the call's truth.
        # Without one, every call counts as here (a desk on its own, in tests).
        self.streaming_here = streaming_here or (lambda call_sid: True)
        self.store = store
        self.outbox = outbox or Outbox()
        self.read_deadline_s = read_deadline_s
        # The outbox's by default: the desk's parts count into it too, so one `Metrics` given to the outbox serves all.
        self.metrics = metrics if metrics is not None else self.outbox.metrics
        self._serial = itertools.count(1)

    async def read(self, fn: Callable[..., T], *args: Any, deadline_s: float | None = None, **kwargs: Any) -> T | None:
        """A store read off the event loop, given up after the deadline (None: carry on from memory)."""
        if self.store is None:
            return None
        deadline = min(deadline_s or self.read_deadline_s, self.read_deadline_s)
        if self.outbox.stuck:  # a stuck store gets a glance only
            deadline = min(deadline, STUCK_READ_S)
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args, **kwargs), deadline)
        except TimeoutError:
            log.error("store read %s timed out after %.1f s; answering from memory", fn.__name__, deadline)
        except Exception as exc:  # the store failed: the caller is still answered
            log.error("store read %s failed: %s; answering from memory", fn.__name__, exc)
        self.metrics.store_failed(fn.__name__, "read")
        return None

    async def write(self, call_sid: str, fn: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """A store write through the outbox: waited for a moment, and retried in the background until stored."""
        if self.store is None:
            return
        key = f"{fn.__name__}:{call_sid}:{next(self._serial)}"
        await self.outbox.put(key, lambda: fn(*args, **kwargs), operation=fn.__name__)

    def get(self, call_sid: str) -> CallRecord | None:
        return self.registry.get(call_sid)

    def open(self, call_sid: str) -> CallRecord:
        return self.registry.open(call_sid)

    async def find(self, call_sid: str) -> CallRecord | None:
        """The call's freshest record. Memory, while this process streams the call, has writes of it still to
        store, or saved it last; the stored record when another instance (or this one before a restart) saved it
        last, copied into the record held in memory so every handler of the call here sees the same state.
        A slow or failing store leaves the desk with what memory has."""
        record = self.registry.get(call_sid)
        if self.store is None:
            return record
        if record is not None:
            if self.streaming_here(call_sid) or self.outbox.pending(f"call:{call_sid}"):
                return record
            writer = await self.read(self.store.call_writer, call_sid)
            if writer is None or writer == self.store.writer:
                return record
        stored = await self.read(self.store.load_call, call_sid)
        if stored is None:
            return record
        if record is None:
            self.registry.adopt(stored)
            return stored
        for name in type(record).model_fields:  # in place: handlers holding this record see the fresh state
            setattr(record, name, getattr(stored, name))
        return record

    async def save(self, record: CallRecord, *, wait: bool = True) -> None:
        """Keep the record: a snapshot queued (and spooled) now, stored as soon as the store takes it; with
        `wait`, this returns once it is stored or the outbox's deadline has passed."""
        if self.store is not None:
            await self.outbox.save_record(record, self.store.save_call, wait=wait)

    def keep(self, record: CallRecord) -> None:
        """Keep the record now: its snapshot is spooled before this returns, and stored in the background."""
        if self.store is not None:
            self.outbox.keep_record(record, self.store.save_call)

    async def recover(self) -> int:
        """At start-up: queue the call records a previous run spooled but never stored."""
        records = self.outbox.recover()
        for record in records:
            log.warning("storing call %s, spooled by a previous run that could not store it", record.call_sid)
            await self.save(record)
        return len(records)

    async def first_time(self, call_sid: str, kind: str, key: str, detail: Mapping[str, object]) -> bool:
        """Log a Twilio callback; False when this exact callback was seen before (a repeat)."""
        record = self.registry.get(call_sid)
        if record is not None:
            at = record.timeline[-1].t_ms if record.timeline else 0
            record.note(at, kind, **{k: str(v) for k, v in detail.items()})
            new_here = key not in record.progress.seen
            record.progress.seen.add(key)
        else:
            new_here = True
        if self.store is None:
            return new_here
        seen = None
        if not self.outbox.stuck:  # logging is a write: while the store is stuck, decide from memory at once
            seen = await self.read(self.store.log_event, call_sid, kind, dict(detail), idempotency_key=key)
        if seen is None:  # the store did not answer: decide from memory, and log it once it is back
            await self.write(call_sid, self.store.log_event, call_sid, kind, dict(detail), idempotency_key=key)
            return new_here
        return bool(seen)

    async def logged(self, call_sid: str, kind: str) -> list[Mapping[str, object]]:
        """The details of the call's `kind` callbacks in the store: what another instance already logged (its
        memory here may be a moment behind). Empty without a store, or when it does not answer in time."""
        if self.store is None:
            return []
        rows = await self.read(self.store.events, call_sid, kind, deadline_s=GLANCE_S)
        return [detail for row in rows or [] if isinstance(detail := row.get("detail"), Mapping)]

    async def tell(self, notice: Notice) -> None:
        """Pass word about a live call to every instance (PostgreSQL); a failure only costs the call speed."""
        if self.store is None:
            return
        try:
            await asyncio.wait_for(asyncio.to_thread(send_notice, self.store.engine, notice), self.read_deadline_s)
        except Exception as exc:  # the state is stored; the notice only hurries it
            log.warning("could not pass on %s for %s: %s", notice.kind, notice.call_sid, exc)

    async def set_handoff_status(self, handoff_id: str | None, status: str) -> None:
        if self.store is not None and handoff_id:
            await self.write(handoff_id.split("-")[0], self.store.set_handoff_status, handoff_id, status)
