"""Agent softphone: tenant wrap-up codes and recording-pause switch, the answering agent,
queue and wrap-up on call records, and the call event list.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of models.DEFAULT_DISPOSITIONS as of this revision: a migration must not
# change meaning when the model's default changes later.
DISPOSITIONS = [
    {"code": "resolved", "label": "Resolved"},
    {"code": "follow_up", "label": "Follow-up needed"},
    {"code": "escalated", "label": "Escalated"},
    {"code": "wrong_number", "label": "Wrong number"},
]

_CALL_COLUMNS = (
    ("agent_id", sa.Integer()),
    ("queue", sa.String(64)),
    ("disposition", sa.String(64)),
    ("wrapup_notes", sa.Text()),
    ("wrapup_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:  # ADD COLUMN only: no table rebuild on SQLite
        batch.add_column(sa.Column("dispositions", sa.JSON(), nullable=False,
                                   server_default=json.dumps(DISPOSITIONS)))
        batch.add_column(sa.Column("recording_pause_allowed", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    # The foreign key makes SQLite rebuild call_records; db.migrate() runs SQLite
    # migrations with foreign keys off, so the rebuild's DROP TABLE does not cascade
    # into ivr_traces and voicemails.
    with op.batch_alter_table("call_records") as batch:
        for name, type_ in _CALL_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
        batch.create_foreign_key("fk_call_records_agent_id", "agents", ["agent_id"], ["id"], ondelete="SET NULL")
        batch.create_index("ix_call_records_tenant_agent", ["tenant_id", "agent_id"])
    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("call_id", sa.String(36), sa.ForeignKey("call_records.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
    )
    op.create_index("ix_call_events_call_id", "call_events", ["call_id"])
    op.create_index("ix_call_events_tenant_at", "call_events", ["tenant_id", "at"])
    op.create_index("ix_call_events_agent_id", "call_events", ["agent_id"])  # an agent's calls, SET NULL


def downgrade() -> None:
    op.drop_table("call_events")
    with op.batch_alter_table("call_records") as batch:
        batch.drop_index("ix_call_records_tenant_agent")
        batch.drop_constraint("fk_call_records_agent_id", type_="foreignkey")
        for name, _ in reversed(_CALL_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("recording_pause_allowed")
        batch.drop_column("dispositions")
