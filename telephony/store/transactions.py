"""The store's plumbing: one short transaction per operation, and the idempotent writes every part builds on.

A write is "insert, or do nothing / update on the row's unique key" (`INSERT ... ON CONFLICT`, which SQLite and
PostgreSQL both have), so two threads or two servers writing the same callback at once cannot both insert it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session, sessionmaker

from telephony.store.call_records import StoredRows
from telephony.store.database import READ_ONLY, insert_for, make_engine, redacted, upgrade
from telephony.store.driver import DriverConnection, DriverStatement, driver_transaction
from telephony.store.errors import StoreError
from telephony.store.jobs import ensure_job_schema
from telephony.store.models import Base, Call, Handoff, utcnow

Row = dict[str, object]
_CALLS = cast(Table, Call.__table__)  # the calls table itself, for Core statements that skip the ORM
_HANDOFFS = cast(Table, Handoff.__table__)


def column_defaults(table: Table) -> Row:
    """What a new row of `table` gets from its columns' Python-side defaults, fresh: SQLAlchemy fills them in for
    its own inserts, and an insert run on the driver (`DriverStatement`) must give them itself."""
    values: Row = {}
    for column in table.columns:
        default: Any = column.default
        if default is not None and (default.is_scalar or default.is_callable):
            values[column.key] = default.arg if default.is_scalar else default.arg(None)
    return values


class Transactions:
    """Engine, sessions and the write patterns shared by every part of the store."""

    def __init__(
        self, url: str, *, clock: Callable[[], datetime] = utcnow, writer: str | None = None, queue_jobs: bool = False
    ) -> None:
        self.display_url = redacted(url)  # never keep the password where a log could print it
        self.engine: Engine = make_engine(url)
        self._dialect_insert = insert_for(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._clock = clock
        # Who this process is, on the call rows it saves: another instance that finds a call last saved by
        # someone else reloads it instead of trusting its memory.
        self.writer = writer or uuid.uuid4().hex[:16]
        # PostgreSQL only: deliveries and callbacks carry their job (procrastinate) in the same transaction.
        self.queue_jobs = queue_jobs and self.engine.dialect.name == "postgresql"
        self.url = url
        self._stored_rows = StoredRows()  # what this process last stored of each call: saves write only changes
        # A call record's save runs its statements on the driver (`driver.py`), each compiled once per shape
        dialect = self.engine.dialect
        self._upserts: dict[tuple[str, tuple[str, ...], tuple[str, ...], bool], DriverStatement] = {}
        self._updates: dict[tuple[str, tuple[str, ...]], DriverStatement] = {}
        new_call = self._insert(Call).on_conflict_do_nothing(index_elements=["call_sid"])
        self._call_insert = DriverStatement.compile(new_call, dialect, ["call_sid", *column_defaults(_CALLS)])
        self._call_locked = DriverStatement.compile(
            select(_CALLS).where(_CALLS.c.call_sid == bindparam("locked_sid")).with_for_update(), dialect
        )
        # ... and the handoff's, for the save that carries the decision
        self._handoff_of_call = DriverStatement.compile(
            select(_HANDOFFS.c.handoff_id).where(_HANDOFFS.c.call_sid == bindparam("of_call")), dialect
        )
        new_handoff = self._insert(Handoff).on_conflict_do_nothing(index_elements=["handoff_id"])
        self._handoff_insert = DriverStatement.compile(new_handoff, dialect, [c.key for c in _HANDOFFS.columns])
        self._handoff_locked = DriverStatement.compile(
            select(_HANDOFFS.c.call_sid, _HANDOFFS.c.routing, _HANDOFFS.c.status)
            .where(_HANDOFFS.c.handoff_id == bindparam("locked_id"))
            .with_for_update(),
            dialect,
        )

    def migrate(self) -> None:
        """Bring the schema up to the newest migration (and the job queue's, when jobs are queued); harmless when
        it already is."""
        try:
            upgrade(self.engine)
            if self.queue_jobs:
                ensure_job_schema(self.engine, self.url)
        except SQLAlchemyError as exc:
            raise StoreError(f"migrating {self.display_url} failed: {cause(exc)}", retryable=transient(exc)) from exc

    def close(self) -> None:
        """Close the pooled connections; the store opens new ones if used again."""
        self.engine.dispose()

    def _insert(self, model: type[Base]) -> sqlite.Insert | postgresql.Insert:
        """The dialect's INSERT into the model's table, so that its rowcount says whether a row was written.

        Plain Core and `inline()`, or SQLAlchemy adds RETURNING to fetch the new key and PostgreSQL's driver then
        reports no rowcount; `preserve_rowcount`, or it is gone once the cursor closes.
        """
        return self._dialect_insert(model.__table__).inline().execution_options(preserve_rowcount=True)

    @contextmanager
    def _tx(self, what: str, call_sid: str | None = None, *, read_only: bool = False) -> Iterator[Session]:
        """One short transaction, committed on success; database failures become a `StoreError`."""
        with store_errors(what, call_sid), self._sessions.begin() as session:
            if read_only:  # SQLite: a shared read, not the write lock
                session.connection(execution_options={READ_ONLY: True})
            yield session

    @contextmanager
    def _driver_tx(self, what: str, call_sid: str | None = None) -> Iterator[DriverConnection]:
        """`_tx` on the driver's connection, for statements run on it (`DriverStatement`): a call record's save,
        made at every turn of every call, paid more for SQLAlchemy's sessions, connections and statement execution
        than for the database's work."""
        with store_errors(what, call_sid), driver_transaction(self.engine) as connection:
            yield connection

    def _claim_call_row(
        self, c: DriverConnection, call_sid: str, created_at: datetime, *, row_stored: bool = False
    ) -> dict[str, Any]:
        """The call's row as plain values, locked for this transaction; created bare if it does not exist yet.

        Its statements are built once, with the values bound at execution. A row this process has stored
        (`row_stored`) is only locked: the insert is tried only if it has gone since."""
        row = self._call_locked.first(c, {"locked_sid": call_sid}) if row_stored else None
        if row is None:
            now = self._clock()
            bare = {**column_defaults(_CALLS), "call_sid": call_sid, "created_at": created_at, "updated_at": now}
            self._call_insert.run(c, bare)
            row = self._call_locked.first(c, {"locked_sid": call_sid})
        if row is None:  # inserted or there already, a line up: only a concurrent delete could cause this
            raise StoreError(f"call {call_sid} vanished while it was being written")
        return row

    def _update_call(self, c: DriverConnection, call_sid: str, values: Row) -> None:
        """Write `values` (by column name) onto the call's row, claimed in this transaction."""
        self._update_by_key(c, Call, "call_sid", call_sid, values)

    def _update_by_key(self, c: DriverConnection, model: type[Base], key: str, at: str, values: Row) -> None:
        """Write `values` (by column name) onto the row whose `key` column is `at`: compiled once per shape."""
        table = cast(Table, model.__table__)
        shape = (table.name, tuple(values))
        statement = self._updates.get(shape)
        if statement is None:
            where = update(table).where(table.c[key] == bindparam("updated_key"))
            statement = self._updates[shape] = DriverStatement.compile(where, self.engine.dialect, shape[1])
        statement.run(c, {**values, "updated_key": at})

    def _insert_new(self, s: Session, model: type[Base], values: Row, keys: list[str] | None = None) -> bool:
        """Insert one row unless it conflicts with a stored one on `keys` (on any unique key when None)."""
        result = s.execute(self._insert(model).values(values).on_conflict_do_nothing(index_elements=keys))
        return rowcount(result) == 1

    def _upsert(
        self, c: DriverConnection, model: type[Base], keys: tuple[str, ...], rows: list[Row], *, overwrite: bool = True
    ) -> None:
        """Insert rows, or overwrite the row with the same `keys` (with `overwrite` False, leave it as it is): one
        statement, compiled once per shape, run for every row (executemany). A multi-row VALUES would be compiled
        afresh for each save, which cost more CPU than the write itself."""
        if not rows:
            return
        columns = tuple(rows[0])
        shape = (model.__tablename__, keys, columns, overwrite)
        upsert = self._upserts.get(shape)
        if upsert is None:
            statement = self._insert(model)
            changes = {name: statement.excluded[name] for name in columns if name not in keys}
            writing = (
                statement.on_conflict_do_update(index_elements=list(keys), set_=changes)
                if overwrite
                else statement.on_conflict_do_nothing(index_elements=list(keys))
            )
            upsert = self._upserts[shape] = DriverStatement.compile(writing, self.engine.dialect, columns)
        upsert.run_many(c, rows)


@contextmanager
def store_errors(what: str, call_sid: str | None) -> Iterator[None]:
    """Database failures inside become a `StoreError` naming the operation and the call, never its SQL."""
    try:
        yield
    except SQLAlchemyError as exc:
        where = f" for call {call_sid}" if call_sid else ""
        message = f"{what}{where} failed: {cause(exc)}"
        raise StoreError(message, call_sid=call_sid, retryable=transient(exc)) from exc


def as_rows(rows: Iterable[Base]) -> list[Row]:
    return [row.as_dict() for row in rows]


def rowcount(result: object) -> int:
    """Rows an INSERT wrote: 0 when ON CONFLICT DO NOTHING skipped it."""
    return int(getattr(result, "rowcount", 0))


def require(value: str, allowed: frozenset[str], what: str, call_sid: str | None = None) -> None:
    if value not in allowed:
        raise StoreError(f"unknown {what} {value!r}; expected one of {', '.join(sorted(allowed))}", call_sid=call_sid)


def require_aware(value: datetime, what: str, call_sid: str | None = None) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise StoreError(f"{what} must be timezone-aware (UTC), got {value.isoformat()}", call_sid=call_sid)


def transient(exc: SQLAlchemyError) -> bool:
    """Whether the same operation may succeed if tried again: a locked or lost database, a full pool."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | PoolTimeoutError)


def cause(exc: SQLAlchemyError) -> str:
    """The driver's own message without the SQL and its parameters, which may hold what the caller said."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{type(exc.orig).__name__}: {exc.orig}"
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"
