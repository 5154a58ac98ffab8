"""Background work on PostgreSQL, with procrastinate: a job is written in the same transaction as the row that
causes it (a delivery, a callback), so there is never a row without its job nor a job without its row.

The store writes procrastinate's jobs with procrastinate's own SQL function (`procrastinate_defer_jobs_v1`) on
the store's connection; `handoff worker` processes run them (`telephony/desk/jobs.py`). With SQLite there is no
queue: one process runs the same work in-process.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

JOB_QUEUE = "handoff"
DELIVER_HANDOFF = "deliver_handoff"  # POST a stored delivery to its help desk
DIAL_CALLBACK = "dial_callback"  # ring an agent for a due callback, then the caller
TRANSCRIBE_VOICEMAIL = "transcribe_voicemail"  # the caller's message, as text for the agent
RETENTION_CLEANUP = "retention_cleanup"  # calls older than the retention period go, with all they left
DEFER = text(
    "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, :priority, :lock, :queueing_lock,"
    " CAST(:args AS jsonb), CAST(:scheduled_at AS timestamptz))]::procrastinate_job_to_defer_v1[]))"
)


def psycopg_conninfo(url: str) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL (procrastinate connects with psycopg)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_job_schema(engine: Engine, url: str) -> bool:
    """Create procrastinate's tables and functions once; True when they were created now."""
    from procrastinate import App, SyncPsycopgConnector

    with engine.connect() as connection:
        present = connection.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None
    if present:
        return False
    schema = App(connector=SyncPsycopgConnector(conninfo=psycopg_conninfo(url))).schema_manager.get_schema()
    with engine.begin() as connection:  # one instance creates it; the others wait here, then find it
        connection.execute(text("SELECT pg_advisory_xact_lock(4242)"))
        if connection.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
            return False
        with connection.connection.dbapi_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(schema)  # as written: the schema's % signs are not placeholders
    return True


def defer_job(
    s: Session, task: str, args: dict[str, object], *, lock: str, scheduled_at: datetime | None = None
) -> bool:
    """Queue `task(**args)` in the session's transaction; False when the same job (`lock`) is queued already."""
    values = {
        "queue": JOB_QUEUE, "task": task, "priority": 0, "lock": lock, "queueing_lock": lock,
        "args": json.dumps(args), "scheduled_at": scheduled_at,
    }  # fmt: skip
    try:
        with s.begin_nested():  # a duplicate aborts only this savepoint, not the row the job belongs to
            s.execute(DEFER, values)
    except IntegrityError:
        return False
    return True
