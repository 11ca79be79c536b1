"""Initial schema: tenants, users, trunks, numbers, call records, audit log, API tokens.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("outbound_prefixes", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _ts("created_at"),
        sa.UniqueConstraint("tenant_id", "username", name="uq_users_tenant_username"),
        sa.CheckConstraint("role IN ('admin', 'supervisor', 'agent', 'qa')", name="ck_users_role"),
    )
    op.create_index("ix_users_tenant_id", "users", ["tenant_id"])
    op.create_table(
        "trunks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("inbound_ips", sa.JSON(), nullable=False),
        sa.Column("inbound_username", sa.String(100), nullable=True),
        sa.Column("inbound_password", sa.String(255), nullable=True),
        sa.Column("outbound_host", sa.String(255), nullable=True),
        sa.Column("outbound_port", sa.Integer(), nullable=False),
        sa.Column("outbound_transport", sa.String(8), nullable=False),
        sa.Column("register", sa.Boolean(), nullable=False),
        sa.Column("register_username", sa.String(100), nullable=True),
        sa.Column("register_password", sa.String(255), nullable=True),
        sa.Column("register_expires", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("tenant_id", "name", name="uq_trunks_tenant_name"),
        sa.CheckConstraint("outbound_transport IN ('udp', 'tcp')", name="ck_trunks_transport"),
    )
    op.create_index("ix_trunks_tenant_id", "trunks", ["tenant_id"])
    op.create_table(
        "numbers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.String(32), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("entry", sa.String(255), nullable=True),
        sa.UniqueConstraint("number"),
    )
    op.create_index("ix_numbers_tenant_id", "numbers", ["tenant_id"])
    op.create_table(
        "call_records",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("sip_call_id", sa.String(255), nullable=False),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="SET NULL"), nullable=True),
        sa.Column("trunk_id", sa.Integer(), sa.ForeignKey("trunks.id", ondelete="SET NULL"), nullable=True),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("caller", sa.String(255), nullable=False),
        sa.Column("dialed", sa.String(255), nullable=False),
        _ts("received_at"),
        _ts("answered_at", nullable=True),
        _ts("ended_at", nullable=True),
        sa.Column("end_cause", sa.String(64), nullable=True),
        sa.Column("hangup_side", sa.String(8), nullable=True),
        sa.Column("sip_status", sa.Integer(), nullable=True),
        sa.Column("codec", sa.String(32), nullable=True),
        sa.CheckConstraint("direction IN ('inbound', 'outbound')", name="ck_call_records_direction"),
        sa.CheckConstraint(
            "hangup_side IS NULL OR hangup_side IN ('caller', 'callee', 'platform')",
            name="ck_call_records_hangup_side",
        ),
    )
    op.create_index("ix_call_records_tenant_received", "call_records", ["tenant_id", "received_at"])
    op.create_index("ix_call_records_ended_at", "call_records", ["ended_at"])
    op.create_table(
        "audit_logs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        _ts("at"),
    )
    op.create_index("ix_audit_logs_tenant_at", "audit_logs", ["tenant_id", "at"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_index("ix_api_tokens_tenant_id", "api_tokens", ["tenant_id"])


def downgrade() -> None:
    for table in ("api_tokens", "audit_logs", "call_records", "numbers", "trunks", "users", "tenants"):
        op.drop_table(table)
