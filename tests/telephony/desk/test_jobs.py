"""The worker's jobs, called as procrastinate calls them: each does its work once and is harmless when run
again (a worker that died mid-job has its job run by another)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from telephony.desk.jobs import NotDeliveredYet, WorkerParts, job_app
from telephony.store import Store
from telephony.store.jobs import DELIVER_HANDOFF, RETENTION_CLEANUP, TRANSCRIBE_VOICEMAIL
from tests.telephony.store.conftest import make_record


class Transcriber:
    """Stands in for `Voicemails`: what a vosk model would hear in the recording."""

    can_transcribe = True

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def transcribe_recording(self, url: str, key: str) -> str | None:
        self.asked.append(key)
        return "please call me back about my order"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    store.migrate()
    return store


async def test_a_voicemail_is_transcribed_once(store: Store) -> None:
    record = make_record()
    store.save_call(record)
    store.save_voicemail(record.call_sid, None, recording_sid="RE1", recording_url="https://api.twilio.com/r/RE1")
    transcriber = Transcriber()
    app = job_app(WorkerParts(store, None, None, transcriber, None))  # type: ignore[arg-type]
    task = app.tasks[TRANSCRIBE_VOICEMAIL].func
    await task(call_sid=record.call_sid)
    await task(call_sid=record.call_sid)  # run again: the text is there, nothing to do
    assert transcriber.asked == ["RE1"]
    assert store.voicemail(record.call_sid)["transcript"] == "please call me back about my order"  # type: ignore[index]


async def test_a_delivery_already_delivered_is_not_sent_again_and_one_without_a_desk_waits(store: Store) -> None:
    record = make_record()
    store.save_call(record)
    store.add_delivery("d1", "h1", "https://desk.example.com/hook", {"x": 1})
    deliver = job_app(WorkerParts(store, None, None, None, None)).tasks[DELIVER_HANDOFF].func
    with pytest.raises(NotDeliveredYet):
        await deliver(delivery_id="d1")  # the queue retries it later
    store.update_delivery("d1", "delivered", 1)
    await deliver(delivery_id="d1")
    await deliver(delivery_id="unknown")


async def test_the_hourly_clean_up_keeps_calls_within_the_retention_period(store: Store) -> None:
    old, new = make_record("CA" + "1" * 32), make_record("CA" + "2" * 32)
    old.created_at = (datetime.now(UTC) - timedelta(days=100)).timestamp()
    new.created_at = datetime.now(UTC).timestamp()
    store.save_call(old)
    store.save_call(new)
    cleanup = job_app(WorkerParts(store, None, None, None, 90)).tasks[RETENTION_CLEANUP].func
    await cleanup(timestamp=0)
    assert store.get_call(old.call_sid) is None and store.get_call(new.call_sid) is not None
    keep_all = job_app(WorkerParts(store, None, None, None, None)).tasks[RETENTION_CLEANUP].func
    await keep_all(timestamp=0)
    assert store.get_call(new.call_sid) is not None
