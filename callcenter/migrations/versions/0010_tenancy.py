"""Tenant lifecycle: status, kind (the operators' platform tenant), time zone, quotas, last export;
the ``operator`` role and each user's page language.

Revision ID: 0010_tenancy
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_tenancy"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES_BEFORE = "role IN ('admin', 'supervisor', 'agent', 'qa')"
ROLES_AFTER = "role IN ('admin', 'supervisor', 'agent', 'qa', 'operator')"
QUOTAS = ("quota_concurrent_calls", "quota_agents", "quota_recording_mb", "quota_transcription_minutes")


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:  # ADD COLUMN only: no table rebuild on SQLite
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="active"))
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="customer"))
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=False, server_default="Asia/Shanghai"))
        for name in QUOTAS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
        batch.add_column(sa.Column("exported_at", sa.DateTime(timezone=True), nullable=True))
    # The role CHECK changes: SQLite rebuilds the table (migrate() turns foreign keys off meanwhile).
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("locale", sa.String(8), nullable=True))
        batch.drop_constraint("ck_users_role", type_="check")
        batch.create_check_constraint("ck_users_role", sa.text(ROLES_AFTER))
        batch.create_check_constraint("ck_users_locale", sa.text("locale IS NULL OR locale IN ('zh-CN', 'en')"))


def downgrade() -> None:
    op.execute("DELETE FROM users WHERE role = 'operator'")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint("ck_users_locale", type_="check")
        batch.drop_constraint("ck_users_role", type_="check")
        batch.create_check_constraint("ck_users_role", sa.text(ROLES_BEFORE))
        batch.drop_column("locale")
    with op.batch_alter_table("tenants") as batch:
        for name in ("exported_at", *reversed(QUOTAS), "timezone", "kind", "status"):
            batch.drop_column(name)
