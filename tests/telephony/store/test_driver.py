"""DriverStatement: a Core statement run on the driver's cursor writes and reads exactly what SQLAlchemy would,
on SQLite and on PostgreSQL, and fails as SQLAlchemy would."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from telephony.store import Store
from telephony.store.driver import DriverStatement, driver_transaction
from telephony.store.models import Call, Event
from tests.telephony.store.conftest import CALL_SID

WHEN = datetime(2025, 6, 2, 9, 30, 15, 123456, tzinfo=UTC)
EVENT = {
    "call_sid": CALL_SID,
    "t_ms": 1200,
    "kind": "heard",
    "detail": {"confidence": 0.8, "words": ["one", "two"], "final": True, "none": None},
    "idempotency_key": f"{CALL_SID}:tl:0",
    "created_at": WHEN,
}


def event_insert(store: Store) -> DriverStatement:
    statement = store._insert(Event).on_conflict_do_nothing(index_elements=["idempotency_key"])
    return DriverStatement.compile(statement, store.engine.dialect, EVENT)


def stored_events(store: Store) -> list[dict[str, object]]:
    with store.engine.connect() as c:
        rows = c.execute(select(Event).order_by(Event.idempotency_key)).mappings().all()
    return [{name: row[name] for name in EVENT} for row in rows]


def test_rows_written_on_the_driver_read_back_as_sqlalchemy_wrote_them(store: Store) -> None:
    with driver_transaction(store.engine) as c:
        event_insert(store).run_many(c, [EVENT])
    with store.engine.begin() as c:
        c.execute(store._insert(Event), [{**EVENT, "idempotency_key": "by-sqlalchemy"}])
    on_driver, by_sqlalchemy = stored_events(store)
    assert on_driver == {**by_sqlalchemy, "idempotency_key": EVENT["idempotency_key"]}
    assert on_driver["detail"] == EVENT["detail"] and on_driver["t_ms"] == 1200


def test_a_repeat_is_skipped_by_the_statements_own_conflict_clause(store: Store) -> None:
    insert = event_insert(store)
    with driver_transaction(store.engine) as c:
        insert.run_many(c, [EVENT, {**EVENT, "kind": "a repeat"}])
        assert insert.run(c, {**EVENT, "kind": "another repeat"}) == 0
    assert [event["kind"] for event in stored_events(store)] == ["heard"]


def test_a_select_returns_values_converted_as_sqlalchemy_converts_them(store: Store) -> None:
    with store.engine.begin() as c:
        c.execute(
            store._insert(Call),
            {"call_sid": CALL_SID, "created_at": WHEN, "updated_at": WHEN, "progress": {"bridged": True}},
        )
    query = select(Call.__table__).where(Call.__table__.c.call_sid == bindparam("sid"))
    with driver_transaction(store.engine) as c:
        on_driver = DriverStatement.compile(query, store.engine.dialect).first(c, {"sid": CALL_SID})
        nothing = DriverStatement.compile(query, store.engine.dialect).first(c, {"sid": "CA-none"})
    with store.engine.begin() as c:
        by_sqlalchemy = c.execute(query, {"sid": CALL_SID}).mappings().first()
    assert by_sqlalchemy is not None and on_driver == dict(by_sqlalchemy)
    assert on_driver["progress"] == {"bridged": True} and isinstance(on_driver["created_at"], datetime)
    assert nothing is None


def test_a_driver_error_is_raised_as_sqlalchemy_raises_it(store: Store) -> None:
    """A second event with the same idempotency key, by a statement without the conflict clause, breaks the
    unique key: SQLAlchemy's IntegrityError (a DBAPIError) with the driver's error inside."""
    insert = DriverStatement.compile(store._insert(Event), store.engine.dialect, EVENT)
    with pytest.raises(IntegrityError) as raised, driver_transaction(store.engine) as c:
        assert insert.run(c, EVENT) == 1
        insert.run(c, EVENT)
    assert isinstance(raised.value, DBAPIError) and raised.value.orig is not None
    assert stored_events(store) == []  # the transaction was rolled back: the first insert is gone too


def test_a_transaction_commits_when_its_block_ends_and_its_connection_goes_back_to_the_pool(store: Store) -> None:
    with driver_transaction(store.engine) as c:
        event_insert(store).run(c, EVENT)
    assert [event["idempotency_key"] for event in stored_events(store)] == [EVENT["idempotency_key"]]
    with driver_transaction(store.engine) as c:  # the pooled connection is usable again, with no transaction open
        assert event_insert(store).run(c, {**EVENT, "idempotency_key": "second"}) == 1
    assert len(stored_events(store)) == 2


def test_a_missing_parameter_is_named_before_anything_runs(store: Store) -> None:
    insert = event_insert(store)
    with pytest.raises(KeyError, match="created_at"):
        insert.parameters({name: value for name, value in EVENT.items() if name != "created_at"})
