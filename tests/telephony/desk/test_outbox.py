"""The outbox's spool and its waiting: a call record is on disk before it is queued, whatever the store does."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from telephony.calls.records import CallRecord
from telephony.desk.outbox import Outbox
from tests.telephony.store.conftest import make_record


async def test_a_record_is_spooled_before_it_is_stored_and_the_spool_empties_once_it_is(tmp_path: Path) -> None:
    stored: list[CallRecord] = []
    release = threading.Event()

    def store_call(record: CallRecord) -> None:
        release.wait(5)
        stored.append(record)

    outbox = Outbox(tmp_path, deadline_s=0.05)
    record = make_record("CA" + "1" * 32, turns=1)
    assert not await outbox.save_record(record, store_call)  # the store is slow: the deadline passes
    record.note(5000, "caller_said", text="one more thing")
    await outbox.save_record(record, store_call, wait=False)
    assert outbox.spool is not None and outbox.spool.path is not None
    assert os.listdir(tmp_path) == [outbox.spool.path.name]  # one journal, no temporary
    newest = outbox.spool.path.read_text().splitlines()[-1]
    assert CallRecord.model_validate_json(newest) == record  # the newest snapshot, whole
    assert Outbox(tmp_path).recover() == []  # this process is running: nobody else takes its records
    release.set()
    assert await outbox.flush(5)
    assert stored[-1] == record
    assert outbox.spool.path.stat().st_size == 0  # stored: nothing left to recover
    await outbox.aclose()
    assert os.listdir(tmp_path) == []


async def test_a_save_that_does_not_wait_returns_before_the_store_answers(tmp_path: Path) -> None:
    release = threading.Event()
    outbox = Outbox(tmp_path, deadline_s=5.0)
    record = make_record("CA" + "2" * 32, turns=1)
    saving = asyncio.ensure_future(outbox.save_record(record, lambda _: release.wait(5), wait=False))
    assert await asyncio.wait_for(saving, 0.5) is False  # queued and spooled, not yet stored
    assert outbox.pending(f"call:{record.call_sid}")
    release.set()
    assert await outbox.flush(5)
    await outbox.aclose()


async def test_a_spool_that_cannot_be_written_is_logged_and_the_record_is_still_stored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stored: list[CallRecord] = []
    spool = tmp_path / "spool"
    outbox = Outbox(spool)
    spool.rmdir()
    spool.write_text("not a folder")  # every write into it fails, as on a broken disk
    record = make_record("CA" + "3" * 32, turns=1)
    assert await outbox.save_record(record, stored.append)
    assert stored == [record]
    assert f"could not spool call {record.call_sid}" in caplog.text
    await outbox.aclose()


async def test_pending_for_counts_one_calls_writes_still_queued(tmp_path: Path) -> None:
    release = threading.Event()
    outbox = Outbox(tmp_path, deadline_s=0.01)
    mine, other = "CA" + "4" * 32, "CA" + "5" * 32
    await outbox.put(f"call:{mine}", lambda: release.wait(5), wait=False)  # the writer is held on this one
    await outbox.put(f"set_handoff_status:{mine}:1", lambda: None, wait=False)
    await outbox.put(f"log_event:{other}:2", lambda: None, wait=False)
    assert (outbox.pending_for(mine), outbox.pending_for(other), outbox.pending_for("CA" + "6" * 32)) == (2, 1, 0)
    release.set()
    assert await outbox.flush(5)
    assert outbox.pending_for(mine) == 0
    await outbox.aclose()
