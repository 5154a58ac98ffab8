"""What runs beside the calls: spooled records stored, failed help-desk deliveries sent again, finished calls
let go of memory, and (with HANDOFF_RETENTION_DAYS, in-process mode) calls past their retention deleted.
Started with the server; each round is bounded, and a failing round is logged and the next one runs on time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from telephony.desk.delivery import HandoffDeliverer
from telephony.desk.jobs import purge
from telephony.desk.ledger import Ledger

log = logging.getLogger(__name__)

INTERVAL_S = 60.0  # between rounds
IDLE_S = 900.0
PURGE_EVERY_S = (
    3600.0  # retention clean-up  # a call's record untouched this long, with nothing left to store, leaves memory
)


class Upkeep:
    """Background care of the desk's records and deliveries."""

    def __init__(
        self,
        ledger: Ledger,
        deliverer: HandoffDeliverer | None,
        live: Callable[[str], bool],
        interval_s: float = INTERVAL_S,
        idle_s: float = IDLE_S,
        retention_days: int | None = None,
    ) -> None:
        self.ledger = ledger
        self.retention_days = retention_days  # in-process mode: old calls are deleted here, once an hour
        self._purged_at: float | None = None
        self.deliverer = deliverer
        self.live = live  # whether a call still has its stream open
        self.interval_s = interval_s
        self.idle_s = idle_s

    async def start(self) -> None:
        """At start-up: store what a previous run spooled, and send what it left unsent."""
        recovered = await self.ledger.recover()
        if recovered:
            log.warning("stored %d call records spooled by a previous run", recovered)
        if self.deliverer is not None:
            sent = await self._guarded(self.deliverer.resend_failed(include_pending=True))
            if sent:
                log.info("re-sent %d help-desk deliveries left unsent by a previous run", sent)

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.round()

    async def round(self) -> None:
        """One round: failed deliveries sent again, finished calls let go."""
        if self.deliverer is not None:
            sent = await self._guarded(self.deliverer.resend_failed())
            if sent:
                log.info("re-sent %d failed help-desk deliveries", sent)
        if self.retention_days is not None and self.ledger.store is not None and self._purge_due():
            await self._guarded(purge(self.ledger.store, self.retention_days))
        outbox = self.ledger.outbox
        gone = self.ledger.registry.evict(self.idle_s, keep=lambda sid: self.live(sid) or outbox.pending(f"call:{sid}"))
        if gone:
            log.debug("let go of %d finished calls' records", gone)

    def _purge_due(self) -> bool:
        now = time.monotonic()
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY_S:
            return False
        self._purged_at = now
        return True

    async def _guarded(self, work: Awaitable[int]) -> int:
        try:
            return await work
        except Exception as exc:  # the store or the help desk is down: next round
            log.error("upkeep could not finish: %s", exc)
            return 0
