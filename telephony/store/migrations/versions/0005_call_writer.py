"""Several instances on one database: which instance saved a call's record last (an instance that finds a call
last saved by another reloads it instead of trusting its own memory), and who answered a callback's customer
leg (the dial's result may reach another instance than the answer did).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("writer", sa.String(length=64), nullable=True))
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("answered_by", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("answered_by")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("writer")
