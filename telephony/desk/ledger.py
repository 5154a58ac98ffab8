"""The desk's view of its calls: the live record first, the store behind it, and Twilio callbacks logged once.

Every webhook after the stream finds its call here, also after a restart (the stored record is loaded and
carries on). A Twilio callback that arrives twice is recognised by its idempotency key, so it is answered
the same way and stored once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from telephony.calls.records import CallRecord
from telephony.calls.registry import CallRegistry
from telephony.store import Store

T = TypeVar("T")


class Ledger:
    """Call records for the desk: in memory, and in the store when there is one."""

    def __init__(self, registry: CallRegistry, store: Store | None) -> None:
        self.registry = registry
        self.store = store

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run a store method off the event loop; without a store, nothing is persisted (memory only)."""
        if self.store is None:
            return None
        return await asyncio.to_thread(fn, *args, **kwargs)

    def get(self, call_sid: str) -> CallRecord | None:
        return self.registry.get(call_sid)

    def open(self, call_sid: str) -> CallRecord:
        return self.registry.open(call_sid)

    async def find(self, call_sid: str) -> CallRecord | None:
        """The live record, or the stored one after a restart (which then carries on in memory)."""
        record = self.registry.get(call_sid)
        if record is None and self.store is not None:
            record = await self.db(self.store.load_call, call_sid)
            if record is not None:
                self.registry.adopt(record)
        return record

    async def save(self, record: CallRecord) -> None:
        if self.store is not None:
            await self.db(self.store.save_call, record)

    async def first_time(self, call_sid: str, kind: str, key: str, detail: Mapping[str, object]) -> bool:
        """Log a Twilio callback; False when this exact callback was seen before (a repeat)."""
        record = self.registry.get(call_sid)
        if record is not None:
            at = record.timeline[-1].t_ms if record.timeline else 0
            record.note(at, kind, **{k: str(v) for k, v in detail.items()})
        if self.store is None:
            if record is None:
                return True
            new = key not in record.progress.seen
            record.progress.seen.add(key)
            return new
        return bool(await self.db(self.store.log_event, call_sid, kind, dict(detail), idempotency_key=key))

    async def set_handoff_status(self, handoff_id: str | None, status: str) -> None:
        if self.store is not None and handoff_id:
            await self.db(self.store.set_handoff_status, handoff_id, status)
