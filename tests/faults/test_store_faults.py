"""A locked database and an unwritable one: the caller is still handed on, with the summary, within Twilio's
timeouts; the help desk gets the package at once; nothing is lost once the store takes writes again.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from telephony.calls.records import CallRecord
from telephony.store import Store
from telephony.store.database import sqlite_url
from tests.faults.conftest import WEBHOOK_DEADLINE_S, running, time_webhooks
from tests.telephony.server.harness import Receiver

SCENARIO = "talk_to_a_person.yaml"


@contextmanager
def write_locked(database: Path) -> Iterator[None]:
    """Another process's view of the database: it holds the write lock until the block ends."""
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        connection.execute("BEGIN EXCLUSIVE")
        held.set()
        release.wait(60)
        connection.execute("ROLLBACK")
        connection.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join(10)


def stored_turns(data_dir: Path, call_sid: str) -> list[str]:
    """What the database holds of the caller's words (read as another process would, without waiting)."""
    database = sqlite_url(data_dir).removeprefix("sqlite:///")
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.1)
    try:
        rows = connection.execute(
            "SELECT text FROM turns WHERE call_sid = ? AND speaker = 'caller' ORDER BY seq", (call_sid,)
        ).fetchall()
    except sqlite3.OperationalError:  # locked: nothing can be read, so nothing was written
        return []
    finally:
        connection.close()
    return [row[0] for row in rows]


async def test_a_locked_database_holds_no_caller_up_and_loses_nothing(
    tmp_path: Path, receiver: tuple[Receiver, str]
) -> None:
    hook, hook_url = receiver
    data = tmp_path / "data"
    async with running(data, hook_url) as server:
        timings = time_webhooks(server.services)
        database = Path(sqlite_url(data).removeprefix("sqlite:///"))
        with write_locked(database):
            result = await server.replay(SCENARIO, tmp_path / "tts")
            # handed on: the transfer went ahead with the package, the help desk has it, while still locked
            assert result.outcome.get("kind") == "transfer", result.outcome
            assert result.handoff is not None and "talk to a real person" in str(result.handoff["transcript"])
            assert any(d["body"]["package"]["call_sid"] == result.call_sid for d in hook.received)
            assert stored_turns(data, result.call_sid) == []  # nothing could be written yet
            assert server.services.desk.ledger.outbox.waiting > 0
        assert timings and max(seconds for _, seconds in timings) < WEBHOOK_DEADLINE_S, timings
        assert await server.services.desk.ledger.outbox.flush(30)  # the lock is gone: everything lands
        turns = stored_turns(data, result.call_sid)
    assert "Hi. I'd like to talk to a real person, please." in turns and "It's about an order." in turns


async def test_an_unwritable_database_holds_no_caller_up_and_says_why(
    tmp_path: Path, receiver: tuple[Receiver, str], caplog: object
) -> None:
    import logging

    hook, hook_url = receiver
    data = tmp_path / "data"
    Store(sqlite_url(data)).migrate()  # the schema exists; from now on the server may only read
    database = Path(sqlite_url(data).removeprefix("sqlite:///"))
    read_only = f"sqlite:///file:{database}?mode=ro&uri=true"
    caplog.set_level(logging.ERROR)  # type: ignore[attr-defined]
    async with running(data, hook_url, database_url=read_only) as server:
        timings = time_webhooks(server.services)
        result = await server.replay(SCENARIO, tmp_path / "tts")
        assert result.outcome.get("kind") == "transfer", result.outcome
        assert any(d["body"]["package"]["call_sid"] == result.call_sid for d in hook.received)
        assert max(seconds for _, seconds in timings) < WEBHOOK_DEADLINE_S, timings
        messages = [r.getMessage() for r in caplog.records]  # type: ignore[attr-defined]
        assert any(result.call_sid in m and "failed" in m for m in messages), messages[-5:]
        assert not any("Task exception was never retrieved" in m for m in messages)
        journals = (data / "outbox").glob("journal-*.jsonl")
        lines = [line for journal in journals for line in journal.read_text().splitlines()]
        spooled = {CallRecord.model_validate_json(line).call_sid for line in lines}
        assert spooled == {result.call_sid}  # what the caller said waits on disk
