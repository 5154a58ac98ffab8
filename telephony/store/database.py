"""Connecting to the database: SQLite in a file by default, PostgreSQL by URL, and migrations in code.

SQLite is set up for a server that writes from several threads: WAL (readers never block the writer),
foreign keys on, and every write transaction opened with `BEGIN IMMEDIATE`. Python's sqlite3 driver would
otherwise start it lazily at the first INSERT, and a transaction that read first and then tries to write can
fail at once with "database is locked" instead of waiting its turn.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.pool import ConnectionPoolEntry

from telephony.store.errors import StoreError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DB_FILE = "handoff.db"
READ_ONLY = "handoff_read_only"  # execution option: open a deferred (shared) SQLite transaction
SUPPORTED = ("sqlite", "postgresql")
LOCK_WAIT_S = 30.0
MIGRATION_LOCK = 0x68616E646F6666  # "handoff": the advisory lock held while migrating PostgreSQL


def sqlite_url(data_dir: Path | str) -> str:
    """The default database: one SQLite file in the data folder (`Settings.data_dir`)."""
    return f"sqlite:///{Path(data_dir) / DB_FILE}"


def redacted(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def make_engine(url: str) -> Engine:
    """An engine for a SQLite or PostgreSQL URL; for a SQLite file, its folder is created."""
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
    except ArgumentError as exc:
        raise StoreError(f"cannot parse database URL {redacted(url)}: {exc}") from exc
    if backend not in SUPPORTED:
        raise StoreError(f"unsupported database {backend!r} in {redacted(url)}; use sqlite or postgresql")
    try:
        if backend == "sqlite":
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": LOCK_WAIT_S})
            _configure_sqlite(engine)
            return engine
        return create_engine(parsed, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError) as exc:
        raise StoreError(f"no driver for {redacted(url)}: {exc}; install handoff[postgres] for PostgreSQL") from exc
    except OSError as exc:
        raise StoreError(f"cannot create the folder for {redacted(url)}: {exc}") from exc


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):
            raise StoreError(f"expected a sqlite3 connection, got {type(dbapi_connection).__name__}")
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each checkpoint; safe with WAL
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(LOCK_WAIT_S * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _use_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the file to WAL once (the mode is stored in the file). SQLite does not wait for a lock to switch,
    so several workers opening a new database at once retry here instead of failing with "database is locked"."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode")
            if cursor.fetchone()[0].lower() in ("wal", "memory"):
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def insert_for(engine: Engine) -> Callable[..., sqlite.Insert | postgresql.Insert]:
    """The dialect's INSERT, which has `on_conflict_do_nothing` / `on_conflict_do_update` on both backends."""
    return sqlite.insert if engine.dialect.name == "sqlite" else postgresql.insert


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration built in code, so no alembic.ini has to exist where the server runs."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` in one transaction on the store's own engine; a no-op when already there.

    Several server workers may start at once. On SQLite, `BEGIN IMMEDIATE` already lets one migrate at a time;
    on PostgreSQL a transaction-scoped advisory lock does, and the others then find the schema up to date.
    """
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
