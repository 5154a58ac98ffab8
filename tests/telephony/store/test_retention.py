"""Retention: calls older than the cut-off go with everything they left, on SQLite and PostgreSQL; newer ones
stay whole. The in-process upkeep runs it (at most once an hour) when HANDOFF_RETENTION_DAYS is set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from telephony.calls.registry import CallRegistry
from telephony.desk.ledger import Ledger
from telephony.desk.upkeep import Upkeep
from telephony.store import Store
from telephony.store.models import Call, Callback, Delivery, DialAttempt, Event, Handoff, Prompt, Review, Turn, WrapUp
from telephony.store.review_records import Verdict
from tests.telephony.store.conftest import make_package, make_record

NOW = datetime.now(UTC)
TABLES = (Call, Turn, Prompt, Event, Handoff, DialAttempt, Callback, Delivery, WrapUp, Review)


def a_call(store: Store, n: int, days_ago: float) -> str:
    sid, hid = f"CA{n:032d}", f"CA{n:032d}-h1"
    record = make_record(sid)
    record.created_at = (NOW - timedelta(days=days_ago)).timestamp()
    assert record.decision is not None
    record.decision.package = make_package(sid, hid)
    store.save_call(record)
    store.record_dial_attempt(sid, hid, 0, "phone", "+15550001111", outcome="bridged")
    store.add_callback(sid, hid, "+15551230003", "soon", NOW)
    store.add_delivery(f"d{n}", hid, "https://desk.example.com/hook", {"n": n})
    store.save_wrapup(hid, None, "ada", {"disposition": "resolved", "resolved": True, "summary_rating": 4})
    store.save_review(hid, "rae", Verdict("necessary"))
    return sid


def counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as connection:
        return {m.__tablename__: connection.execute(select(func.count()).select_from(m)).scalar_one() for m in TABLES}


def test_old_calls_go_with_everything_they_left_and_new_ones_stay(store: Store) -> None:
    a_call(store, 1, days_ago=40)
    kept = a_call(store, 2, days_ago=5)
    whole = counts(store)
    assert store.purge_before(NOW - timedelta(days=30)) == 1
    left = counts(store)
    assert all(left[name] * 2 == whole[name] for name in left), (whole, left)  # each call left the same rows
    assert store.get_call(kept) is not None and store.get_call(f"CA{1:032d}") is None
    assert store.purge_before(NOW - timedelta(days=30)) == 0


async def test_the_upkeep_deletes_old_calls_once_an_hour(store: Store) -> None:
    a_call(store, 1, days_ago=40)
    upkeep = Upkeep(Ledger(CallRegistry(), store), None, live=lambda sid: False, retention_days=30)
    await upkeep.round()
    assert counts(store)["calls"] == 0
    a_call(store, 2, days_ago=40)
    await upkeep.round()  # within the hour: not again yet
    assert counts(store)["calls"] == 1
