"""`handoff worker`: the desk's background work, run from PostgreSQL's job queue (procrastinate).

The jobs are written by the store in the same transaction as their rows (`telephony/store/jobs.py`); any
number of workers on any machines take them, each job by one worker at a time (its lock):
- `deliver_handoff`: POST a stored delivery to its help desk; retried with exponential backoff, and a delivery
  still failing after the last try stays "failed" (the dead letter), for `POST /api/deliveries/{id}/resend`;
- `dial_callback`: ring the agent for a due callback, then the caller; the callback is claimed in the store
  first, so a job that runs twice (a worker died mid-job) never dials twice.
"""

from __future__ import annotations

import asyncio
import logging

from procrastinate import App, PsycopgConnector, RetryStrategy

from telephony.desk.delivery import HandoffDeliverer
from telephony.desk.dialer import CallbackDialer
from telephony.store import Store
from telephony.store.jobs import DELIVER_HANDOFF, DIAL_CALLBACK, JOB_QUEUE, psycopg_conninfo

log = logging.getLogger(__name__)

DELIVERY_RETRY = RetryStrategy(max_attempts=8, exponential_wait=2)  # 2 s, 4 s, ... about 8 minutes in all


class NotDeliveredYet(Exception):
    """The help desk did not take the delivery this time: the queue tries again later."""


def job_app(store: Store, deliverer: HandoffDeliverer | None, dialer: CallbackDialer | None) -> App:
    """The worker's procrastinate app, its tasks bound to this process's store, deliverer and dialer."""
    app = App(connector=PsycopgConnector(conninfo=psycopg_conninfo(store.url)))

    @app.task(name=DELIVER_HANDOFF, queue=JOB_QUEUE, retry=DELIVERY_RETRY)
    async def deliver_handoff(delivery_id: str) -> None:
        record = await asyncio.to_thread(store.get_delivery, delivery_id)
        if record is None or record["status"] == "delivered":
            return
        if deliverer is None:
            raise NotDeliveredYet("this worker has no help-desk webhook configured (HANDOFF_WEBHOOK_URLS)")
        if not await deliverer.resend(delivery_id):
            raise NotDeliveredYet(f"delivery {delivery_id} was not taken; it is tried again")

    @app.task(name=DIAL_CALLBACK, queue=JOB_QUEUE)
    async def dial_callback(callback_id: int) -> None:
        if dialer is None:
            log.warning("callback %s is due, but this worker has no callback dialer (HANDOFF_CALLBACK_DIALER)",
                        callback_id)  # fmt: skip
            return
        await dialer.dial(callback_id)

    return app


async def run_worker(app: App, concurrency: int) -> None:
    """Take jobs until SIGTERM or SIGINT; a job running then finishes first (up to 30 s)."""
    async with app.open_async():
        await app.run_worker_async(
            queues=[JOB_QUEUE], concurrency=concurrency, install_signal_handlers=True, shutdown_graceful_timeout=30
        )
