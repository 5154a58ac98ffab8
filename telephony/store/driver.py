"""Statements run on the database driver's own cursor: the writes of a call record's save, made at every turn.

SQLAlchemy executing one small statement (its execution context, events, parameter and result set-up) costs
several times what SQLite or PostgreSQL spends on it, and a save runs five or six of them on the store's writer
thread while calls stream (`bench/load.py`). Here a statement is still built and compiled by SQLAlchemy, once,
for the engine's dialect, and its parameters and results go through SQLAlchemy's own type conversions for that
dialect (JSON, dates, booleans); only the execution is the driver's, in a transaction on a connection from the
engine's pool (`driver_transaction`). A driver error is raised as SQLAlchemy would raise it (`DBAPIError`), so
callers handle both paths alike. SQLAlchemy's engine events (`begin`, `before_cursor_execute`) do not fire for
these statements: a tracer or SQL log hooked there does not see them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import ClauseElement

Processor = Callable[[Any], Any] | None
DriverConnection = Any  # the driver's own connection (sqlite3's, psycopg's): typed by neither library in common


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """One Core statement compiled for a dialect: its SQL, and how values become the driver's parameters."""

    sql: str
    binds: tuple[str, ...]  # the statement's parameters by name, in the order a positional driver takes them
    keys: tuple[str, ...]  # ... and the name the driver knows each by, for a driver that takes them by name
    processors: tuple[Processor, ...]  # SQLAlchemy's conversion of each to what the driver stores
    positional: bool
    columns: tuple[str, ...]  # what a SELECT returns, by name
    column_processors: tuple[Processor, ...]  # SQLAlchemy's conversion of each from what the driver returns
    dbapi_error: type[Exception]

    @classmethod
    def compile(
        cls, statement: ClauseElement, dialect: Dialect, column_keys: Iterable[str] | None = None
    ) -> DriverStatement:
        """Compile `statement` once (`column_keys`: the columns an INSERT or UPDATE sets). Each run must give every
        parameter the SQL takes: nothing is filled in, not even a column's default (a KeyError names what lacks)."""
        keys = list(column_keys) if column_keys is not None else None
        compiled: Any = statement.compile(dialect=dialect, column_keys=keys)
        binds = tuple(compiled.positiontup) if compiled.positional else tuple(compiled.binds)
        escaped = getattr(compiled, "escaped_bind_names", None) or {}
        selected = list(getattr(statement, "selected_columns", ()))
        return cls(
            sql=compiled.string,
            binds=binds,
            keys=tuple(escaped.get(name, name) for name in binds),
            processors=tuple(_bind_processor(compiled.binds[name].type, dialect) for name in binds),
            positional=bool(compiled.positional),
            columns=tuple(str(column.key) for column in selected),
            column_processors=tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None) for column in selected
            ),
            dbapi_error=dialect.loaded_dbapi.Error,
        )

    def parameters(self, values: Mapping[str, object]) -> Sequence[object] | dict[str, object]:
        """The driver's parameters for one run; a KeyError names a parameter `values` lacks."""
        converted = [
            value if process is None else process(value)
            for process, value in zip(self.processors, [values[name] for name in self.binds], strict=True)
        ]
        return converted if self.positional else dict(zip(self.keys, converted, strict=True))

    def run(self, connection: DriverConnection, values: Mapping[str, object]) -> int:
        """Run once with `values`, in `connection`'s transaction; the rows it wrote (0: a conflict skipped it)."""
        cursor = self._cursor(connection, [values], many=False)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def run_many(self, connection: DriverConnection, rows: Sequence[Mapping[str, object]]) -> None:
        """Run once for each of `rows` (the driver's executemany), in `connection`'s transaction."""
        if rows:
            self._cursor(connection, rows, many=True).close()

    def first(self, connection: DriverConnection, values: Mapping[str, object]) -> dict[str, object] | None:
        """The first row a SELECT returns, by column name, converted as SQLAlchemy would; None when there is none."""
        cursor = self._cursor(connection, [values], many=False)
        try:
            row = cursor.fetchone()
        except self.dbapi_error as exc:
            raise DBAPIError.instance(self.sql, None, exc, self.dbapi_error) from exc
        finally:
            cursor.close()
        if row is None:
            return None
        return {
            name: value if process is None else process(value)
            for name, process, value in zip(self.columns, self.column_processors, row, strict=True)
        }

    def _cursor(self, connection: DriverConnection, rows: Sequence[Mapping[str, object]], *, many: bool) -> Any:
        cursor = connection.cursor()
        try:
            if many:
                cursor.executemany(self.sql, [self.parameters(row) for row in rows])
            else:
                cursor.execute(self.sql, self.parameters(rows[0]))
        except self.dbapi_error as exc:
            cursor.close()
            raise DBAPIError.instance(self.sql, None, exc, self.dbapi_error) from exc
        return cursor


def _bind_processor(type_: Any, dialect: Dialect) -> Processor:
    processor: Processor = type_.dialect_impl(dialect).bind_processor(dialect)
    return processor


@contextmanager
def driver_transaction(engine: Engine) -> Iterator[DriverConnection]:
    """One write transaction on the driver's connection, checked out of the engine's pool: committed when the block
    ends, rolled back if it raises. SQLite's is opened with `BEGIN IMMEDIATE`, as every write of the store is
    (`database.py`); PostgreSQL's driver opens its own. A driver error is raised as a `DBAPIError`."""
    error: type[Exception] = engine.dialect.loaded_dbapi.Error
    pooled = engine.raw_connection()
    try:
        connection: DriverConnection = pooled.driver_connection
        try:
            if engine.dialect.name == "sqlite":
                connection.execute("BEGIN IMMEDIATE")
            yield connection
            pooled.commit()
        except error as exc:
            raise DBAPIError.instance("BEGIN / COMMIT", None, exc, error) from exc
    except BaseException:
        with suppress(Exception):  # a connection that cannot roll back is discarded by the pool on its return
            pooled.rollback()
        raise
    finally:
        pooled.close()
