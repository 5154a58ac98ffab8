"""Jobs are written with the rows that cause them (PostgreSQL, procrastinate): a callback carries its dial,
due when it is; a delivery carries its send; a repeat writes no second job; SQLite has no queue."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from telephony.store import Store
from tests.postgres import reset_postgres
from tests.telephony.store.conftest import make_record

DUE = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


@pytest.fixture
def queued(postgres_url: str) -> Iterator[Store]:
    reset_postgres(postgres_url)
    store = Store(postgres_url, queue_jobs=True)
    store.migrate()
    yield store
    store.close()
    reset_postgres(postgres_url)


def jobs(store: Store) -> list[tuple[str, str, dict[str, object], datetime | None]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT task_name, lock, args, scheduled_at FROM procrastinate_jobs ORDER BY id")
        ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def test_a_callback_is_written_with_its_dial_due_when_it_is_and_only_once(queued: Store) -> None:
    record = make_record()
    queued.save_call(record)
    callback_id, created = queued.add_callback(record.call_sid, None, "+15551230003", "soon", DUE)
    assert created and queued.add_callback(record.call_sid, None, "+15551230003", "soon", DUE) == (callback_id, False)
    assert jobs(queued) == [("dial_callback", f"callback:{callback_id}", {"callback_id": callback_id}, DUE)]
    assert queued.claim_callback(callback_id, "calling")["status"] == "dialing"  # type: ignore[index]
    assert queued.claim_callback(callback_id, "calling") is None  # a second worker gets nothing to dial
    with queued.engine.begin() as connection:  # the dial job ran (a worker took it)
        connection.execute(text("UPDATE procrastinate_jobs SET status = 'succeeded'"))
    later = DUE + timedelta(minutes=15)
    assert queued.retry_callback(callback_id, later, "not reached")
    assert jobs(queued)[-1] == ("dial_callback", f"callback:{callback_id}", {"callback_id": callback_id}, later)


def test_a_delivery_is_written_with_its_send(queued: Store) -> None:
    record = make_record()
    queued.save_call(record)
    queued.add_delivery("d1", "h1", "https://desk.example.com/hook", {"x": 1})
    queued.add_delivery("d1", "h1", "https://desk.example.com/hook", {"x": 1})  # a repeat: no second job
    assert [(task, lock, args) for task, lock, args, _ in jobs(queued)] == [
        ("deliver_handoff", "delivery:d1", {"delivery_id": "d1"})
    ]


def test_with_sqlite_nothing_is_queued(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'h.db'}", queue_jobs=True)
    assert store.queue_jobs is False
    store.migrate()
    record = make_record()
    store.save_call(record)
    assert store.add_callback(record.call_sid, None, "+15551230003", "soon", DUE)[1]
    store.close()


def test_a_ready_recording_is_written_with_its_transcription(queued: Store) -> None:
    record = make_record()
    queued.save_call(record)
    queued.save_voicemail(record.call_sid, None, recording_url="https://api.twilio.com/r/RE1")  # the Record action
    assert jobs(queued) == []  # no recording SID yet: the status callback says when it is ready
    queued.save_voicemail(record.call_sid, None, recording_sid="RE1", recording_url="https://api.twilio.com/r/RE1")
    queued.save_voicemail(record.call_sid, None, recording_sid="RE1", recording_url="https://api.twilio.com/r/RE1")
    assert [(task, lock) for task, lock, _, _ in jobs(queued)] == [
        ("transcribe_voicemail", f"voicemail:{record.call_sid}")
    ]
