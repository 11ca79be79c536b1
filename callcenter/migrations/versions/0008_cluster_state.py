"""Cluster state (issue 14): the node that held each call, wallboard thresholds in the database,
and the transcription queue's worker and lease.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_records") as batch:  # ADD COLUMN only: no table rebuild on SQLite
        batch.add_column(sa.Column("node_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("agent_node", sa.String(32), nullable=True))
    op.create_index("ix_call_records_node_open", "call_records", ["node_id", "ended_at"])
    with op.batch_alter_table("transcripts") as batch:
        batch.add_column(sa.Column("worker", sa.String(100), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_transcripts_queue", "transcripts", ["status", "created_at"])
    op.create_table(
        "wallboard_thresholds",
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("queue", sa.String(64), primary_key=True),
        sa.Column("oldest_contact_age", sa.Float(), nullable=True),
        sa.Column("service_level", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("wallboard_thresholds")
    op.drop_index("ix_transcripts_queue", "transcripts")
    with op.batch_alter_table("transcripts") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("worker")
    op.drop_index("ix_call_records_node_open", "call_records")
    with op.batch_alter_table("call_records") as batch:
        batch.drop_column("agent_node")
        batch.drop_column("node_id")
