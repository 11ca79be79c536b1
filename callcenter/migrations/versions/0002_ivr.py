"""IVR: flows and their versions, calendars, traces, voicemail; numbers point at a flow version.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _tenant(nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "flows",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        sa.Column("name", sa.String(64), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_flows_tenant_name"),
    )
    op.create_index("ix_flows_tenant_id", "flows", ["tenant_id"])
    op.create_table(
        "flow_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("flow_id", sa.Integer(), sa.ForeignKey("flows.id", ondelete="CASCADE"), nullable=False),
        _tenant(),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.Column("created_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.UniqueConstraint("flow_id", "version", name="uq_flow_versions_flow_version"),
    )
    op.create_index("ix_flow_versions_flow_id", "flow_versions", ["flow_id"])
    op.create_index("ix_flow_versions_tenant_id", "flow_versions", ["tenant_id"])
    op.create_table(
        "business_calendars",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.UniqueConstraint("tenant_id", "name", name="uq_business_calendars_tenant_name"),
    )
    op.create_index("ix_business_calendars_tenant_id", "business_calendars", ["tenant_id"])
    op.create_table(
        "ivr_traces",
        sa.Column("call_id", sa.String(36), sa.ForeignKey("call_records.id", ondelete="CASCADE"), primary_key=True),
        _tenant(nullable=True),
        sa.Column("flow_version_id", sa.Integer(), sa.ForeignKey("flow_versions.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("result", sa.String(255), nullable=True),
        sa.Column("trace", sa.JSON(), nullable=False),
        _ts("updated_at"),
    )
    op.create_index("ix_ivr_traces_tenant_id", "ivr_traces", ["tenant_id"])
    op.create_table(
        "voicemails",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(nullable=True),
        sa.Column("call_id", sa.String(36), sa.ForeignKey("call_records.id", ondelete="CASCADE"), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        _ts("created_at"),
    )
    op.create_index("ix_voicemails_tenant_id", "voicemails", ["tenant_id"])
    op.create_index("ix_voicemails_call_id", "voicemails", ["call_id"])
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("http_allow_hosts", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("asr_model", sa.String(500), nullable=True))
    with op.batch_alter_table("numbers") as batch:
        batch.drop_column("entry")
        batch.add_column(sa.Column("flow_version_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_numbers_flow_version_id", "flow_versions", ["flow_version_id"], ["id"],
                                 ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("numbers") as batch:
        batch.drop_constraint("fk_numbers_flow_version_id", type_="foreignkey")
        batch.drop_column("flow_version_id")
        batch.add_column(sa.Column("entry", sa.String(255), nullable=True))
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("asr_model")
        batch.drop_column("http_allow_hosts")
    for table in ("voicemails", "ivr_traces", "business_calendars", "flow_versions", "flows"):
        op.drop_table(table)
