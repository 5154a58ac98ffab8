"""The spool journal: what a process spooled and never stored is found by the next one to start, newest snapshot
per call, whatever the crash cut short; a running process's journal is its own; the journal stays small."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from telephony.calls.records import CallRecord
from telephony.desk.spool import Spool
from tests.telephony.store.conftest import make_record


def spool_twice(spool: Spool, record: CallRecord) -> CallRecord:
    """Spool the record, then a grown copy of it; the grown copy (the newest snapshot)."""
    spool.write(record.call_sid, record.model_dump_json())
    grown = record.model_copy(deep=True)
    grown.note(9_500, "heard", confidence=0.8)
    spool.write(grown.call_sid, grown.model_dump_json())
    return grown


def test_a_process_that_died_leaves_its_newest_snapshots_to_the_next_one(tmp_path: Path) -> None:
    dead = Spool(tmp_path)
    first = spool_twice(dead, make_record("CA" + "1" * 32, turns=1))
    second = spool_twice(dead, make_record("CA" + "2" * 32, turns=2))
    dead.close()  # the process is gone: its lock with it, its journal left behind
    starting = Spool(tmp_path)
    assert sorted(starting.adopt(), key=lambda r: r.call_sid) == [first, second]
    assert starting.path is not None and os.listdir(tmp_path) == [starting.path.name]  # the old journal is gone
    assert Spool(tmp_path).adopt() == []  # ... and the adopted records are the starting process's own now
    starting.close()
    assert sorted(Spool(tmp_path).adopt(), key=lambda r: r.call_sid) == [first, second]  # until stored


def test_a_journal_a_running_process_holds_is_left_to_it(tmp_path: Path) -> None:
    running = Spool(tmp_path)
    spool_twice(running, make_record("CA" + "3" * 32))
    assert Spool(tmp_path).adopt() == []
    assert running.path is not None and running.path.exists()


def test_a_line_cut_short_by_the_crash_is_skipped_and_the_snapshot_before_it_is_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = Spool(tmp_path)
    record = make_record("CA" + "4" * 32, turns=1)
    dead.write(record.call_sid, record.model_dump_json())
    assert dead.path is not None
    journal = dead.path
    dead.close()
    grown = record.model_copy(deep=True)
    grown.note(9_500, "heard", confidence=0.8)
    with journal.open("a") as torn:
        torn.write(grown.model_dump_json()[:-40])  # the crash came in the middle of this write
    assert Spool(tmp_path).adopt() == [record]
    assert "incomplete" in caplog.text


def test_a_record_spooled_in_its_own_file_by_an_older_version_is_adopted(tmp_path: Path) -> None:
    record = make_record("CA" + "5" * 32, turns=1)
    (tmp_path / f"{record.call_sid}.json").write_text(record.model_dump_json())
    (tmp_path / "CA-broken.json").write_text("{not json")
    assert Spool(tmp_path).adopt() == [record]
    assert (tmp_path / "CA-broken.json").exists()  # not understood: left in place, not deleted
    assert not (tmp_path / f"{record.call_sid}.json").exists()


def test_the_journal_empties_once_every_snapshot_in_it_is_stored(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    one, two = make_record("CA" + "6" * 32), make_record("CA" + "7" * 32)
    v1 = spool.write(one.call_sid, one.model_dump_json())
    v2 = spool.write(two.call_sid, two.model_dump_json())
    v1_newer = spool.write(one.call_sid, one.model_dump_json())
    assert spool.path is not None
    size = spool.path.stat().st_size
    spool.stored(one.call_sid, v1)  # an older snapshot stored: the newer one still waits
    spool.stored(two.call_sid, v2)
    assert spool.path.stat().st_size == size
    spool.stored(one.call_sid, v1_newer)
    assert spool.path.stat().st_size == 0
    spool.write(two.call_sid, two.model_dump_json())  # appends again from the start
    assert spool.path.read_text().count("\n") == 1


def test_a_journal_grown_large_keeps_only_the_newest_snapshot_of_each_call(tmp_path: Path) -> None:
    record = make_record("CA" + "8" * 32, turns=1)
    spool = Spool(tmp_path, compact_bytes=len(record.model_dump_json()) * 3)
    newest = record
    for n in range(10):  # the store is down: nothing is stored, every save is spooled
        newest = newest.model_copy(deep=True)
        newest.note(10_000 + n, "heard", confidence=0.8)
        spool.write(newest.call_sid, newest.model_dump_json())
    assert spool.path is not None
    assert os.listdir(tmp_path) == [spool.path.name]
    assert spool.path.stat().st_size <= len(newest.model_dump_json()) * 4
    spool.close()
    assert Spool(tmp_path).adopt() == [newest]


def test_a_disk_that_fails_is_logged_and_the_spool_carries_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "spool"
    folder.write_text("not a folder")
    spool = Spool(folder)
    record = make_record("CA" + "9" * 32)
    version = spool.write(record.call_sid, record.model_dump_json())
    assert f"could not spool call {record.call_sid}" in caplog.text
    spool.stored(record.call_sid, version)  # nothing to empty, nothing raised
