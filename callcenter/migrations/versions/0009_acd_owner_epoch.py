"""The lease epoch of the cluster node that saved a tenant's ACD snapshot (fencing of late saves).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("acd_snapshots") as batch:
        batch.add_column(sa.Column("epoch", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("acd_snapshots") as batch:
        batch.drop_column("epoch")
