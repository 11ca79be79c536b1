"""Bans after failed authentication (SIP digest, HTTP sign-in).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_bans",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("account", sa.String(200), nullable=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(100), nullable=True),
    )
    op.create_index("ix_auth_bans_until", "auth_bans", ["until"])
    op.create_index("ix_auth_bans_tenant_id", "auth_bans", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("auth_bans")
