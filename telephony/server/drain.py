"""A graceful stop: on SIGTERM an instance stops taking new media streams, lets its live calls go on for a
grace period, hands the rest to a person with what they said, waits for their streams to close, and only then
lets uvicorn shut down. Behind the load balancer, `/healthz` answers 503 from the first moment, and a refused
stream upgrade (503) is tried on the next instance; Twilio's `<Connect action>` for a handed-on call reaches
another instance, which reads the call from the shared store.
"""

from __future__ import annotations

import asyncio
import logging
import time

import uvicorn

from telephony.server.services import Services

log = logging.getLogger(__name__)

DRAIN_TRIGGER = "server_draining"
POLL_S = 0.1


async def drain(services: Services, grace_s: float, timeout_s: float) -> int:
    """Stop taking streams, hand on the calls still live after `grace_s`, wait up to `timeout_s` for their
    streams to close. Returns how many calls were handed on."""
    services.draining = True
    streams = services.streams
    log.warning("draining: %d live calls; no new streams are taken", len(streams))
    ends = time.monotonic() + grace_s
    while len(streams) and time.monotonic() < ends:  # noqa: ASYNC110 - the streams end on their own
        await asyncio.sleep(POLL_S)
    live = streams.open_streams()
    for session in live:
        await session.hand_on(DRAIN_TRIGGER)
    if live:
        log.warning("draining: handed %d live calls on", len(live))
    ends = time.monotonic() + timeout_s
    while len(streams) and time.monotonic() < ends:  # noqa: ASYNC110
        await asyncio.sleep(POLL_S)
    if len(streams):
        log.error("draining: %d streams still open after %.0f s; stopping anyway", len(streams), timeout_s)
    await services.desk.ledger.outbox.flush(5.0)  # what the handed-on calls left to store
    return len(live)


class DrainingServer(uvicorn.Server):
    """uvicorn that drains the calls before it stops (a second SIGINT still stops at once)."""

    def __init__(self, config: uvicorn.Config, services: Services) -> None:
        super().__init__(config)
        self.services = services
        self._drained: asyncio.Task[int] | None = None

    async def on_tick(self, counter: int) -> bool:
        if self.should_exit and not self.force_exit:
            if self._drained is None:
                settings = self.services.settings
                self._drained = asyncio.create_task(
                    drain(self.services, settings.drain_grace_s, settings.drain_timeout_s), name="drain"
                )
            if not self._drained.done():
                return False  # keep serving: webhooks and the calls being handed on still need us
        return await super().on_tick(counter)
