"""Typed call state: whether each prompt could be talked over is a column, not a suffix on its mark name, and
a call's untyped `outcome` becomes its typed transfer `progress` (the same JSON column, renamed).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("prompts") as batch:
        batch.add_column(sa.Column("interruptible", sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table("calls") as batch:
        batch.alter_column("outcome", new_column_name="progress")


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.alter_column("progress", new_column_name="outcome")
    with op.batch_alter_table("prompts") as batch:
        batch.drop_column("interruptible")
