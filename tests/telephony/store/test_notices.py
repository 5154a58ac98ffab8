"""Word between instances over LISTEN/NOTIFY (PostgreSQL): a notice sent by one engine reaches a listener on
another connection; a malformed one is ignored and the listener goes on; SQLite has nobody to tell."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from sqlalchemy import create_engine, text

from telephony.store.notices import CHANNEL, Notice, listen, send_notice


async def test_a_notice_reaches_a_listener_and_a_malformed_one_is_ignored(postgres_url: str) -> None:
    heard: list[Notice] = []
    got = asyncio.Event()
    ready = asyncio.Event()

    def on_notice(notice: Notice) -> None:
        heard.append(notice)
        got.set()

    listening = asyncio.create_task(listen(postgres_url, on_notice, ready))
    engine = create_engine(postgres_url)
    try:
        await asyncio.wait_for(ready.wait(), 10)
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_notify(:c, 'not json')"), {"c": CHANNEL})
        assert await asyncio.to_thread(send_notice, engine, Notice("taken", "CA" + "1" * 32))
        await asyncio.wait_for(got.wait(), 5)
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        engine.dispose()
    assert heard == [Notice("taken", "CA" + "1" * 32)]


def test_with_sqlite_there_is_nobody_to_tell(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'h.db'}")
    assert send_notice(engine, Notice("taken", "CA1")) is False
