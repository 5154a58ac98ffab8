"""The database schema: one table per thing a call leaves behind, keyed so that a repeated write is a no-op.

Uniqueness is where idempotency lives. A Twilio callback carries SIDs (CallSid, DialCallSid, RecordingSid);
each table has a unique key on the SID or the position that identifies its row, and the store writes with
"insert, or update on that key". The schema itself is created only by the Alembic migrations in
`migrations/versions/`; a test checks that they produce exactly these tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy import JSON, DateTime, Dialect, ForeignKey, Index, MetaData, String, Text, UniqueConstraint, true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names: SQLite's batch migrations can only drop or alter a constraint by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

HANDOFF_STATUSES = frozenset(
    {"pending", "announced", "transferring", "bridged", "callback", "voicemail", "failed", "caller_hung_up", "ticket"}
)
DIAL_OUTCOMES = frozenset(
    {"bridged", "declined", "busy", "no_answer", "failed", "voicemail_reached", "caller_hung_up_before_bridge",
     "pending"}
)  # fmt: skip
ROLES = frozenset({"agent", "supervisor"})
CALLBACK_STATUSES = frozenset({"requested", "dialing", "done", "failed"})
DELIVERY_STATUSES = frozenset({"pending", "delivered", "failed"})
VERDICTS = frozenset({"avoidable", "necessary"})
LAYERS = frozenset({"prompt", "trigger", "routing", "summary_template", "tool_or_data", "asr"})
"""The layer a reviewer blames for an avoidable or badly handled transfer: tune one at a time."""

SID = 64  # Twilio SIDs are 34 characters; room for other carriers' identifiers
NAME = 128


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite keeps no offset, so values are stored as naive UTC there and given back their `UTC` on the way out;
    PostgreSQL stores `timestamptz`. A naive datetime is refused: guessing its zone is how times drift.
    """

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware (UTC) datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[object, object]] = {
        datetime: UTCDateTime(),
        dict[str, object]: JSON,
        list[dict[str, object]]: JSON,
    }

    def as_dict(self) -> dict[str, object]:
        """The row as JSON-ready data: column names as keys, datetimes as ISO 8601 strings."""
        out: dict[str, object] = {}
        for column in self.__table__.columns:
            value = getattr(self, column.key)
            out[column.key] = value.isoformat() if isinstance(value, datetime) else value
        return out


class Call(Base):
    """One phone call, by its CallSid. `decision`, `progress`, `latencies` and `protocol_errors` keep the rest
    of the in-memory `CallRecord` as validated JSON, so a server that restarts mid-call can load it and carry on."""

    __tablename__ = "calls"

    call_sid: Mapped[str] = mapped_column(String(SID), primary_key=True)
    account_sid: Mapped[str | None] = mapped_column(String(SID))
    stream_sid: Mapped[str | None] = mapped_column(String(SID))
    caller: Mapped[str | None] = mapped_column(String(SID), index=True)  # a caller's history
    called: Mapped[str | None] = mapped_column(String(SID))
    parameters: Mapped[dict[str, object]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(32), default="answered")
    stream_end: Mapped[str | None] = mapped_column(String(32))
    asr_engine: Mapped[str | None] = mapped_column(String(NAME))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    progress: Mapped[dict[str, object]] = mapped_column(default=dict)
    final_outcome: Mapped[str | None] = mapped_column(String(NAME))
    decision: Mapped[dict[str, object] | None] = mapped_column(JSON(none_as_null=True))
    latencies: Mapped[list[dict[str, object]]] = mapped_column(default=list)
    protocol_errors: Mapped[dict[str, object]] = mapped_column(default=dict)
    writer: Mapped[str | None] = mapped_column(String(64))  # the instance that saved the record last


class Turn(Base):
    """What the caller said or the bot spoke; `seq` is the turn's index in the call record."""

    __tablename__ = "turns"
    __table_args__ = (UniqueConstraint("call_sid", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(SID), ForeignKey("calls.call_sid", ondelete="CASCADE"))
    seq: Mapped[int]
    speaker: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    start_ms: Mapped[int]
    end_ms: Mapped[int]
    confidence: Mapped[float | None]
    engine: Mapped[str | None] = mapped_column(String(NAME))


class Prompt(Base):
    """A prompt sent to the caller and how much of it they heard; `seq` is its index in the call record."""

    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("call_sid", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(SID), ForeignKey("calls.call_sid", ondelete="CASCADE"))
    seq: Mapped[int]
    prompt_id: Mapped[str] = mapped_column(String(NAME))
    mark: Mapped[str] = mapped_column(String(NAME))
    text: Mapped[str] = mapped_column(Text)
    cached: Mapped[bool] = mapped_column(default=False)
    interruptible: Mapped[bool] = mapped_column(default=True, server_default=true())
    play_start_ms: Mapped[int]
    duration_ms: Mapped[int]
    played: Mapped[bool] = mapped_column(default=False)
    cut_off: Mapped[bool] = mapped_column(default=False)
    heard_ms: Mapped[int | None]


class Event(Base):
    """The event log: timeline entries and Twilio callbacks. A callback's idempotency key (built from its
    SIDs) is unique, so a repeat is recognised by the insert that does nothing."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str | None] = mapped_column(String(SID), index=True)
    t_ms: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(String(NAME))
    detail: Mapped[dict[str, object]] = mapped_column(default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Handoff(Base):
    """A call handed to a person: the package the agent gets, where it was routed and why, and how it went."""

    __tablename__ = "handoffs"

    handoff_id: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(SID), ForeignKey("calls.call_sid", ondelete="CASCADE"), unique=True)
    package: Mapped[dict[str, object]]
    category: Mapped[str] = mapped_column(String(32))
    trigger: Mapped[str] = mapped_column(String(NAME))
    queue: Mapped[str] = mapped_column(String(NAME), index=True)
    urgency: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32), default="pending", index=True)
    routing: Mapped[dict[str, object]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DialAttempt(Base):
    """One try at reaching a person: the `<Dial>` child call (DialCallSid) and how it ended."""

    __tablename__ = "dial_attempts"
    __table_args__ = (UniqueConstraint("call_sid", "attempt_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(SID))
    handoff_id: Mapped[str | None] = mapped_column(String(NAME), index=True)
    dial_call_sid: Mapped[str | None] = mapped_column(String(SID), unique=True)
    target_kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(255))
    attempt_no: Mapped[int]
    outcome: Mapped[str] = mapped_column(String(40), default="pending")
    dial_status: Mapped[str | None] = mapped_column(String(32))
    duration_s: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Callback(Base):
    """A promise to call the caller back; at most one per call."""

    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_status_due_at", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(SID), unique=True)
    handoff_id: Mapped[str | None] = mapped_column(String(NAME))
    number: Mapped[str] = mapped_column(String(SID))
    window: Mapped[str | None] = mapped_column(String(NAME))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="requested")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]
    notes: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(32))  # the customer leg's answering-machine verdict


class Voicemail(Base):
    """A message the caller left. The Record action callback and the recording status callback both
    describe it; unique keys on the call and the RecordingSid make them one row."""

    __tablename__ = "voicemails"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(SID), unique=True)
    handoff_id: Mapped[str | None] = mapped_column(String(NAME))
    recording_sid: Mapped[str | None] = mapped_column(String(SID), unique=True)
    recording_url: Mapped[str | None] = mapped_column(String(1024))
    duration_s: Mapped[int | None]
    transcript: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Delivery(Base):
    """One POST of a handoff package to a help desk or CRM webhook, kept until it is delivered."""

    __tablename__ = "deliveries"

    delivery_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    handoff_id: Mapped[str] = mapped_column(String(NAME), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, object]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A console account: an agent or a supervisor, with an argon2id password hash (never the password)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsoleSession(Base):
    """A signed-in browser: the SHA-256 of its cookie token (a stolen database holds no usable cookie), its
    CSRF token and when it expires. Kept in the database so any instance serves it and logout ends it."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class LoginFailure(Base):
    """A failed sign-in, by the name tried and the client's address: what login throttling counts."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_name_at", "name", "at"),
        Index("ix_login_failures_client_at", "client", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME))
    client: Mapped[str] = mapped_column(String(NAME))
    at: Mapped[datetime] = mapped_column(default=utcnow)


class WrapUp(Base):
    """The agent's wrap-up of a handoff: the disposition, whether it was resolved, and feedback on the summary
    (a 1-5 rating, missing or wrong facts, what the caller had to repeat, the queue it should have gone to)."""

    __tablename__ = "wrapups"

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[str] = mapped_column(
        String(NAME), ForeignKey("handoffs.handoff_id", ondelete="CASCADE"), unique=True
    )
    call_sid: Mapped[str] = mapped_column(String(SID), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    agent: Mapped[str] = mapped_column(String(NAME))
    disposition: Mapped[str] = mapped_column(String(NAME))
    resolved: Mapped[bool]
    summary_rating: Mapped[int]
    missing_facts: Mapped[str | None] = mapped_column(Text)
    wrong_facts: Mapped[str | None] = mapped_column(Text)
    had_to_repeat: Mapped[bool] = mapped_column(default=False)
    repeated_fact: Mapped[str | None] = mapped_column(String(255))
    wrong_queue: Mapped[bool] = mapped_column(default=False)
    right_queue: Mapped[str | None] = mapped_column(String(NAME))
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Review(Base):
    """A reviewer's verdict on a handoff: avoidable or necessary, the layer at fault, a note, and for an
    avoidable one the queue it should have reached (none: the bot should have finished the call)."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    handoff_id: Mapped[str] = mapped_column(
        String(NAME), ForeignKey("handoffs.handoff_id", ondelete="CASCADE"), unique=True
    )
    call_sid: Mapped[str] = mapped_column(String(SID), index=True)
    reviewer: Mapped[str] = mapped_column(String(NAME))
    verdict: Mapped[str] = mapped_column(String(16))
    layer: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    expected_queue: Mapped[str | None] = mapped_column(String(NAME))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
