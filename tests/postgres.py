"""A throwaway PostgreSQL cluster for the tests, started once per session and only when a test asks for it.

`postgres_url` runs initdb into a fresh temporary folder, starts the server on 127.0.0.1 alone at a free port
(its socket in that folder too, never the system's), creates a database and yields its SQLAlchemy URL; at the
end the server is stopped and the folder deleted. It never uses a server that happens to be running.
PostgreSQL refuses to run as root, so as root (this machine, CI) the cluster belongs to the `postgres` system
user that Debian's package creates, or to `nobody`.

`HANDOFF_TEST_POSTGRES_URL` names a scratch database of your own to use instead. Without PostgreSQL binaries
(`/usr/lib/postgresql/*/bin`, or on PATH) or the psycopg driver the tests skip with the reason, unless
`HANDOFF_REQUIRE_POSTGRES=1` (CI's `.ci/run` sets it): then they fail. `bash scripts/bootstrap.sh test`
installs both.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import Any, NoReturn

import pytest

URL_ENV = "HANDOFF_TEST_POSTGRES_URL"
REQUIRE_ENV = "HANDOFF_REQUIRE_POSTGRES"
DATABASE = "handoff_test"
SETTINGS = "listen_addresses = '127.0.0.1'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"


def find_bindir() -> Path | None:
    """The newest `/usr/lib/postgresql/N/bin` that has initdb and pg_ctl, else the folder of initdb on PATH."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if (p.parent / "pg_ctl").exists()]
    found.sort(key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else -1)
    if found:
        return found[-1]
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("pg_ctl", path=str(Path(on_path).parent)) else None


def _owner() -> pwd.struct_passwd | None:
    """Who runs the server: ourselves, or an unprivileged system user when we are root."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 requires PostgreSQL; `bash scripts/bootstrap.sh test` installs it)")
    pytest.skip(f"{reason}: run `bash scripts/bootstrap.sh test`, or set {URL_ENV} to a scratch database")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresUnavailable(RuntimeError):
    """This machine cannot start a throwaway cluster; the message says what is missing."""


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a cluster of our own in a temporary folder; yields a SQLAlchemy URL to an empty database, then stops
    the server and deletes the folder (also used by `bench/scale.py`)."""
    if find_spec("psycopg") is None:
        raise PostgresUnavailable("the psycopg driver is not installed (pip install -e '.[test]')")
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable("no PostgreSQL binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin or on PATH")
    owner = _owner()
    if owner is None:
        raise PostgresUnavailable(
            "running as root and no unprivileged user (postgres, nobody) to own the PostgreSQL cluster"
        )
    as_owner: dict[str, Any] = {}
    if os.geteuid() == 0:
        as_owner = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}

    root = Path(tempfile.mkdtemp(prefix="handoff-pg-"))
    os.chown(root, owner.pw_uid, owner.pw_gid)
    data, log, port = root / "data", root / "server.log", _free_port()

    def run(*args: str) -> None:
        result = subprocess.run(
            [str(bindir / args[0]), *args[1:]], capture_output=True, text=True, timeout=60, cwd=root, **as_owner
        )
        if result.returncode != 0:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}{result.stderr}{server_log}"
            )

    started = False
    try:
        run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"{SETTINGS}port = {port}\nunix_socket_directories = '{root}'\n")
        run("pg_ctl", "start", "-w", "-t", "30", "-D", str(data), "-l", str(log))
        started = True
        run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DATABASE)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/{DATABASE}"
    finally:
        if started:
            run("pg_ctl", "stop", "-D", str(data), "-m", "immediate", "-w")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL (postgresql+psycopg) to an empty database on a cluster of this session's own."""
    explicit = os.environ.get(URL_ENV)
    if explicit:
        yield explicit
        return
    try:
        cluster = throwaway_postgres()
        url = cluster.__enter__()
    except PostgresUnavailable as exc:
        _unavailable(str(exc))
    try:
        yield url
    finally:
        cluster.__exit__(None, None, None)


def reset_postgres(url: str) -> None:
    """Empty the database of everything: the store's tables, procrastinate's queue, their types and functions."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()
