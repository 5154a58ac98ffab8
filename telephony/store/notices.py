"""Word between instances about live calls, over PostgreSQL's LISTEN/NOTIFY: what one instance learns (an agent
pressed 1) reaches the instance that holds the call's media stream. With SQLite there is one instance and no
word to pass. A notice is a hint that makes a call go faster; nothing is lost when one is missed, because the
state itself is in the store.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, text

from telephony.store.jobs import psycopg_conninfo

log = logging.getLogger(__name__)

CHANNEL = "handoff_calls"
RECONNECT_S = 1.0


@dataclass(frozen=True)
class Notice:
    """Something that happened to a call: `kind` (taken, ...) and the call's SID."""

    kind: str
    call_sid: str


def send_notice(engine: Engine, notice: Notice) -> bool:
    """Tell every instance (PostgreSQL only); False with SQLite, where there is nobody else to tell."""
    if engine.dialect.name != "postgresql":
        return False
    payload = json.dumps({"kind": notice.kind, "call_sid": notice.call_sid})
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload})
    return True


def parse_notice(payload: str) -> Notice | None:
    """A notice from its payload; None for anything malformed (logged, never raised)."""
    try:
        data = json.loads(payload)
        return Notice(str(data["kind"]), str(data["call_sid"]))
    except (ValueError, KeyError, TypeError):
        log.warning("ignored a malformed notice on %s", CHANNEL)
        return None


async def listen(url: str, on_notice: Callable[[Notice], None], ready: asyncio.Event | None = None) -> None:
    """Receive notices until cancelled; a lost connection is opened again after a second."""
    import psycopg

    while True:
        try:
            async with await psycopg.AsyncConnection.connect(psycopg_conninfo(url), autocommit=True) as connection:
                await connection.execute(f"LISTEN {CHANNEL}")
                if ready is not None:
                    ready.set()
                async for message in connection.notifies():
                    notice = parse_notice(message.payload)
                    if notice is not None:
                        on_notice(notice)
        except (psycopg.Error, OSError) as exc:  # the database restarted or the network dropped: listen again
            log.warning("notices: the connection to the database failed (%s); listening again shortly", exc)
            await asyncio.sleep(RECONNECT_S)
