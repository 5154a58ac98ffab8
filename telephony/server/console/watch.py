"""The console's cue that the queue changed: one poller per process, shared by every open console.

Handoffs are written by the call's session, by Twilio's callbacks and (behind a load balancer) by other
instances, so the database is the one place that sees every change. While at least one console listens, a
single task reads a cheap stamp (count and newest update of handoffs and wrap-ups) every `interval_s` and
wakes every listener when it moves: a new handoff reaches an agent's screen within about half a second of
being stored, whichever instance stored it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from telephony.store import Store, StoreError

log = logging.getLogger(__name__)


class QueueWatch:
    """Wakes listeners when the stored queue changes; polls only while someone listens."""

    def __init__(self, store: Store, interval_s: float = 0.4) -> None:
        self.store = store
        self.interval_s = interval_s
        self.version = 0
        self._changed = asyncio.Event()
        self._listeners = 0
        self._poller: asyncio.Task[None] | None = None

    async def changes(self, heartbeat_s: float = 15.0) -> AsyncIterator[int]:
        """Yield the queue's version at once, then on every change (or after `heartbeat_s` without one)."""
        self._listeners += 1
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll(), name="console-queue-watch")
        try:
            yield self.version
            while True:
                event = self._changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), heartbeat_s)
                yield self.version
        finally:
            self._listeners -= 1

    async def _poll(self) -> None:
        stamp: str | None = None
        while self._listeners > 0:
            try:
                now: str | None = await asyncio.to_thread(self.store.queue_stamp)
            except StoreError as exc:  # a slow or locked store: the console waits, nothing else does
                log.warning("console: could not read the queue: %s", exc)
                now = stamp
            if stamp is not None and now != stamp:
                self.version += 1
                changed, self._changed = self._changed, asyncio.Event()
                changed.set()
            stamp = now
            await asyncio.sleep(self.interval_s)
