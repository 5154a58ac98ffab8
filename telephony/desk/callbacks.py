"""Callbacks: a promise to call the caller back, kept with the package, at a time their queue is open.

A callback is asked for by the caller (routing found nobody free), chosen after a failed transfer, or made
for a caller who hung up before a person took the call, so the package is never lost with them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dialogs.pack import BotPack
from dialogs.package import HandoffPackage
from dialogs.routing import QueueConfig
from telephony.calls.records import CallbackPromise, CallRecord
from telephony.desk.ledger import Ledger

SOON_MINUTES = 15


def due_at(window: tuple[int, int] | None, queue: QueueConfig | None, now: datetime) -> datetime:
    """The first hour in the caller's window (local hours) when the queue is open, within a week; "soon"
    (no window) is in a quarter of an hour when the queue is open now. Otherwise in an hour."""
    if window is None and (queue is None or queue.hours.open_at(now)):
        return now + timedelta(minutes=SOON_MINUTES)
    start, end = window or (0, 24)
    zone = ZoneInfo(queue.hours.tz if queue is not None else "UTC")
    moment = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    for _ in range(24 * 8):
        local_hour = moment.astimezone(zone).hour
        if start <= local_hour < end and (queue is None or queue.hours.open_at(moment)):
            return moment
        moment += timedelta(hours=1)
    return now + timedelta(hours=1)


class Callbacks:
    """Promises to call callers back, stored with their package."""

    def __init__(self, ledger: Ledger, pack: BotPack, clock: Callable[[], datetime]) -> None:
        self.ledger = ledger
        self.pack = pack
        self.queues = {q.name: q for q in pack.queues}
        self.clock = clock

    def queue_of(self, record: CallRecord) -> QueueConfig | None:
        """The queue the call's handoff was routed to (or recommended for)."""
        decision = record.decision
        if decision is None:
            return None
        name = (
            decision.routing.queue
            if decision.routing
            else (decision.package.recommended_queue if decision.package else "")
        )
        return self.queues.get(name)

    async def request(
        self, record: CallRecord, number: str | None, window: str | None, package: HandoffPackage | None, *, note: str
    ) -> None:
        """Promise a callback to `number` in `window` (a pack window's name, or None for "soon")."""
        chosen = self.pack.window(window) if window else None
        when = due_at(chosen.hours if chosen else None, self.queue_of(record), self.clock())
        record.progress.callback = CallbackPromise(
            number=number or "", window=chosen.name if chosen else "soon", due_at=when, note=note
        )
        store = self.ledger.store
        if store is not None and number:
            handoff_id = package.handoff_id if package else None
            await self.ledger.write(
                record.call_sid,
                store.add_callback,
                record.call_sid,
                handoff_id,
                number,
                record.progress.callback.window,
                when,
            )
            await self.ledger.set_handoff_status(handoff_id, "callback")

    async def caller_gone(self, record: CallRecord, note: str) -> None:
        """The caller left before a person took the call: keep the package and call them back."""
        decision = record.decision
        if decision is None or decision.package is None or record.progress.callback is not None:
            return
        record.progress.caller_gone = True
        await self.request(record, record.caller, None, decision.package, note=note)
        await self.ledger.set_handoff_status(decision.package.handoff_id, "caller_hung_up")
