"""SIP over TLS and SRTP: trunks may go out over TLS; trunks and agents' phones may require TLS
and SRTP (plain allowed by default, so existing trunks and phones work as before).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_POLICY = ("require_tls", "require_srtp")


def _policy_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false()) for name in _POLICY]


def upgrade() -> None:
    with op.batch_alter_table("trunks") as batch:
        batch.drop_constraint("ck_trunks_transport", type_="check")
        batch.create_check_constraint("ck_trunks_transport", "outbound_transport IN ('udp', 'tcp', 'tls')")
        for column in _policy_columns():
            batch.add_column(column)
    with op.batch_alter_table("agents") as batch:  # ADD COLUMN only: no table rebuild on SQLite
        for column in _policy_columns():
            batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        for name in _POLICY:
            batch.drop_column(name)
    op.execute("UPDATE trunks SET outbound_transport = 'tcp' WHERE outbound_transport = 'tls'")
    with op.batch_alter_table("trunks") as batch:
        for name in _POLICY:
            batch.drop_column(name)
        batch.drop_constraint("ck_trunks_transport", type_="check")
        batch.create_check_constraint("ck_trunks_transport", "outbound_transport IN ('udp', 'tcp')")
