"""`handoff worker`: the desk's background work, run from PostgreSQL's job queue (procrastinate).

The jobs are written by the store in the same transaction as their rows (`telephony/store/jobs.py`); any
number of workers on any machines take them, each job by one worker at a time (its lock):
- `deliver_handoff`: POST a stored delivery to its help desk; retried with exponential backoff, and a delivery
  still failing after the last try stays "failed" (the dead letter), for `POST /api/deliveries/{id}/resend`;
- `dial_callback`: ring the agent for a due callback, then the caller; the callback is claimed in the store
  first, so a job that runs twice (a worker died mid-job) never dials twice;
- `transcribe_voicemail`: the caller's message as text, with the worker's vosk model;
- `retention_cleanup`: every hour, calls older than HANDOFF_RETENTION_DAYS go, with everything they left
  (procrastinate's periodic tasks run once per tick however many workers there are).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from procrastinate import App, PsycopgConnector, RetryStrategy

from telephony.desk.delivery import HandoffDeliverer
from telephony.desk.dialer import CallbackDialer
from telephony.desk.voicemail import Voicemails
from telephony.store import Store
from telephony.store.jobs import (
    DELIVER_HANDOFF,
    DIAL_CALLBACK,
    JOB_QUEUE,
    RETENTION_CLEANUP,
    TRANSCRIBE_VOICEMAIL,
    psycopg_conninfo,
)

log = logging.getLogger(__name__)

DELIVERY_RETRY = RetryStrategy(max_attempts=8, exponential_wait=2)  # 2 s, 4 s, ... about 8 minutes in all


class NotDeliveredYet(Exception):
    """The help desk did not take the delivery this time: the queue tries again later."""


@dataclass(frozen=True)
class WorkerParts:
    """What the jobs run with, from this process's services."""

    store: Store
    deliverer: HandoffDeliverer | None
    dialer: CallbackDialer | None
    voicemails: Voicemails | None
    retention_days: int | None


def job_app(parts: WorkerParts) -> App:
    """The worker's procrastinate app, its tasks bound to this process's store, deliverer, dialer and model."""
    store, deliverer, dialer = parts.store, parts.deliverer, parts.dialer
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

    @app.task(name=TRANSCRIBE_VOICEMAIL, queue=JOB_QUEUE, retry=RetryStrategy(max_attempts=3, exponential_wait=5))
    async def transcribe_voicemail(call_sid: str) -> None:
        row = await asyncio.to_thread(store.voicemail, call_sid)
        voicemails = parts.voicemails
        if row is None or row["transcript"] or not row["recording_url"]:
            return
        if voicemails is None or not voicemails.can_transcribe:
            log.info("voicemail of %s kept without text: this worker has no speech model", call_sid)
            return
        key = str(row["recording_sid"] or call_sid)
        text = await voicemails.transcribe_recording(str(row["recording_url"]), key)
        if text:
            await asyncio.to_thread(store.save_voicemail, call_sid, None, transcript=text)

    @app.periodic(cron="17 * * * *")
    @app.task(name=RETENTION_CLEANUP, queue=JOB_QUEUE)
    async def retention_cleanup(timestamp: int) -> None:
        if parts.retention_days is not None:
            await purge(store, parts.retention_days)

    return app


async def purge(store: Store, retention_days: int) -> int:
    """Delete the calls older than the retention period; how many went."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    gone = await asyncio.to_thread(store.purge_before, cutoff)
    if gone:
        log.info("retention: deleted %d calls older than %d days", gone, retention_days)
    return gone


async def run_worker(app: App, concurrency: int) -> None:
    """Take jobs until SIGTERM or SIGINT; a job running then finishes first (up to 30 s)."""
    async with app.open_async():
        await app.run_worker_async(
            queues=[JOB_QUEUE], concurrency=concurrency, install_signal_handlers=True, shutdown_graceful_timeout=30
        )
