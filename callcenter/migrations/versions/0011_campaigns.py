"""Outbound campaigns: campaigns, their contacts and call attempts, the tenants' do-not-call lists.

Revision ID: 0011_campaigns
Revises: 0010_tenancy
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_campaigns"
down_revision: str | None = "0010_tenancy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant() -> sa.Column[int]:
    return sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False,
                     index=True)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("flow", sa.String(64), nullable=True),
        sa.Column("caller_id", sa.String(32), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("tenant_id", "name", name="uq_campaigns_tenant_name"),
    )
    op.create_table(
        "campaign_contacts",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_outcome", sa.String(16), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("campaign_id", "phone", name="uq_campaign_contacts_phone"),
    )
    op.create_index("ix_campaign_contacts_due", "campaign_contacts", ["campaign_id", "status", "next_attempt_at"])
    op.create_table(
        "campaign_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("contact_id", sa.Integer(), sa.ForeignKey("campaign_contacts.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("call_id", sa.String(36), nullable=True),
        sa.Column("caller_id", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("amd_seconds", sa.Float(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_campaign_attempts_campaign_started", "campaign_attempts", ["campaign_id", "started_at"])
    op.create_table(
        "do_not_call",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("note", sa.String(200), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "number", name="uq_do_not_call_number"),
    )


def downgrade() -> None:
    op.drop_table("do_not_call")
    op.drop_index("ix_campaign_attempts_campaign_started", "campaign_attempts")
    op.drop_table("campaign_attempts")
    op.drop_index("ix_campaign_contacts_due", "campaign_contacts")
    op.drop_table("campaign_contacts")
    op.drop_table("campaigns")
