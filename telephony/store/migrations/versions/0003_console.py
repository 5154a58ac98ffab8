"""The console: accounts and their signed-in sessions, failed sign-ins for throttling, the agents' wrap-ups with
feedback on the summary, and an index on the caller's number for their history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        _when("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        _when("created_at"),
        _when("expires_at"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_console_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_console_sessions")),
    )
    op.create_index(op.f("ix_console_sessions_user_id"), "console_sessions", ["user_id"])
    op.create_index(op.f("ix_console_sessions_expires_at"), "console_sessions", ["expires_at"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("client", sa.String(length=128), nullable=False),
        _when("at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index("ix_login_failures_name_at", "login_failures", ["name", "at"])
    op.create_index("ix_login_failures_client_at", "login_failures", ["client", "at"])
    op.create_table(
        "wrapups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handoff_id", sa.String(length=128), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("agent", sa.String(length=128), nullable=False),
        sa.Column("disposition", sa.String(length=128), nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("summary_rating", sa.Integer(), nullable=False),
        sa.Column("missing_facts", sa.Text(), nullable=True),
        sa.Column("wrong_facts", sa.Text(), nullable=True),
        sa.Column("had_to_repeat", sa.Boolean(), nullable=False),
        sa.Column("repeated_fact", sa.String(length=255), nullable=True),
        sa.Column("wrong_queue", sa.Boolean(), nullable=False),
        sa.Column("right_queue", sa.String(length=128), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.ForeignKeyConstraint(
            ["handoff_id"], ["handoffs.handoff_id"], name=op.f("fk_wrapups_handoff_id_handoffs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_wrapups_user_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wrapups")),
        sa.UniqueConstraint("handoff_id", name=op.f("uq_wrapups_handoff_id")),
    )
    op.create_index(op.f("ix_wrapups_call_sid"), "wrapups", ["call_sid"])
    op.create_index(op.f("ix_wrapups_created_at"), "wrapups", ["created_at"])
    op.create_index(op.f("ix_calls_caller"), "calls", ["caller"])


def downgrade() -> None:
    op.drop_index(op.f("ix_calls_caller"), table_name="calls")
    op.drop_table("wrapups")
    op.drop_table("login_failures")
    op.drop_table("console_sessions")
    op.drop_table("users")
