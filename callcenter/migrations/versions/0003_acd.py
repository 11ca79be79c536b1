"""ACD: queues, agents with skills and SIP credentials, agent state history, restart snapshots.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "acd_queues",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.UniqueConstraint("tenant_id", "name", name="uq_acd_queues_tenant_name"),
    )
    op.create_index("ix_acd_queues_tenant_id", "acd_queues", ["tenant_id"])
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("sip_ha1", sa.String(64), nullable=True),
        sa.UniqueConstraint("user_id"),
    )
    op.create_index("ix_agents_tenant_id", "agents", ["tenant_id"])
    op.create_table(
        "agent_state_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("old_state", sa.String(16), nullable=False),
        sa.Column("new_state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("call_id", sa.String(36), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_agent_state_changes_tenant_at", "agent_state_changes", ["tenant_id", "at"])
    op.create_index("ix_agent_state_changes_agent_id", "agent_state_changes", ["agent_id"])
    op.create_table(
        "acd_snapshots",
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("break_reasons", sa.JSON(), nullable=False,
                                   server_default='["break", "lunch", "training", "meeting"]'))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("break_reasons")
    for table in ("acd_snapshots", "agent_state_changes", "agents", "acd_queues"):
        op.drop_table(table)
