"""The schema comes from the migrations alone, matches the models exactly, and migrating is safe to repeat;
SQLite is set up for a threaded server (WAL, foreign keys) in a folder the store creates."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, inspect, text

from telephony.store import Store, StoreError, sqlite_url
from telephony.store.models import Base

TABLES = {
    "calls", "turns", "prompts", "events", "handoffs", "dial_attempts", "callbacks", "voicemails", "deliveries",
    "users", "console_sessions", "login_failures", "wrapups", "reviews",
}  # fmt: skip


def schema_diffs(store: Store, metadata: MetaData) -> list[object]:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_migrating_twice_is_harmless(store_url: str) -> None:
    store = Store(store_url)
    store.migrate()
    store.log_event(None, "boot", {"n": 1})
    store.migrate()
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == ["0005"]
        assert connection.execute(text("SELECT count(*) FROM events")).scalar_one() == 1
    store.close()


def test_server_workers_starting_together_all_migrate(store_url: str) -> None:
    stores = [Store(store_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))

    def start(store: Store) -> None:
        barrier.wait()
        store.migrate()

    with ThreadPoolExecutor(len(stores)) as pool:
        list(pool.map(start, stores))  # re-raises the first failure
    assert schema_diffs(stores[0], Base.metadata) == []
    for store in stores:
        store.close()


def test_the_migrated_schema_is_exactly_what_the_models_declare(store: Store) -> None:
    assert set(Base.metadata.tables) == TABLES
    assert set(inspect(store.engine).get_table_names()) == TABLES | {"alembic_version"}
    assert schema_diffs(store, Base.metadata) == []


def test_the_comparison_sees_a_model_the_migrations_lack(store: Store) -> None:
    metadata = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    metadata.tables["calls"].append_column(Column("extra", Integer))
    diffs = schema_diffs(store, metadata)
    assert [(d[0], d[3].name) for d in diffs if isinstance(d, tuple)] == [("add_column", "extra")]


def test_sqlite_gets_its_folder_wal_and_foreign_keys(tmp_path: Path) -> None:
    store = Store(sqlite_url(tmp_path / "not" / "there"))
    store.migrate()
    assert (tmp_path / "not" / "there" / "handoff.db").is_file()
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    store.close()


@pytest.mark.timeout(10)
def test_a_reader_does_not_wait_for_a_writer(store: Store) -> None:
    """Reads open a shared transaction; were they to queue for the write lock, this would wait 30 s and fail."""
    with store.engine.begin() as writer:
        writer.execute(text("INSERT INTO events (t_ms, kind, detail, created_at) VALUES (0, 'x', '{}', :now)"),
                       {"now": "2025-06-02 09:35:00"})  # fmt: skip
        assert store.events("CA-none") == []
        assert store.list_handoffs() == []


def test_a_migration_can_be_undone_and_redone(store: Store) -> None:
    from alembic import command

    from telephony.store.database import alembic_config

    config = alembic_config()
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(inspect(store.engine).get_table_names()) == {"alembic_version"}
    store.migrate()
    assert schema_diffs(store, Base.metadata) == []


@pytest.mark.parametrize(
    ("url", "message"),
    [("mysql://u@h/db", "unsupported database 'mysql'"), ("not a url", "cannot parse database URL")],
)
def test_an_unusable_url_is_a_store_error(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        Store(url)


def test_the_password_never_appears_in_the_url_the_store_shows(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        Store("mysql://user:s3cret@host/db")
    assert "s3cret" not in str(caught.value)
    store = Store(sqlite_url(tmp_path))
    assert store.display_url.endswith("handoff.db")
    store.close()
