"""Recordings, transcripts (with full-text search), QA forms, evaluations and disputes;
tenant recording policy, format, retention, key and transcription vocabulary.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of models.DEFAULT_RECORDING_POLICY as of this revision.
POLICY = {"mode": "all", "percent": 100, "ivr": False, "queues": {}}

_TENANT_COLUMNS: tuple[sa.Column[Any], ...] = (
    sa.Column("recording_policy", sa.JSON(), nullable=False, server_default=json.dumps(POLICY)),
    sa.Column("recording_format", sa.String(8), nullable=False, server_default="opus"),
    sa.Column("retention_days", sa.Integer(), nullable=True, server_default="365"),
    sa.Column("agents_hear_own_calls", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("recording_key", sa.LargeBinary(), nullable=True),
    sa.Column("transcription_mode", sa.String(16), nullable=False, server_default="vocabulary"),
    sa.Column("transcription_vocabulary", sa.JSON(), nullable=False, server_default="[]"),
)


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:  # ADD COLUMN only: no table rebuild on SQLite
        for column in _TENANT_COLUMNS:
            batch.add_column(column)
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("storage_key", sa.String(500), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agent_answered_s", sa.Float(), nullable=True),
        sa.Column("pauses", sa.JSON(), nullable=False),
        sa.Column("legal_hold", sa.Boolean(), nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_recordings_tenant_id", "recordings", ["tenant_id"])
    op.create_index("ix_recordings_call_id", "recordings", ["call_id"])
    op.create_index("ix_recordings_tenant_started", "recordings", ["tenant_id", "started_at"])
    op.create_table(
        "transcripts",
        sa.Column("recording_id", sa.String(36), sa.ForeignKey("recordings.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("words", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("analytics", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_transcripts_call_id", "transcripts", ["call_id"])
    op.create_index("ix_transcripts_tenant_status", "transcripts", ["tenant_id", "status"])
    if op.get_bind().dialect.name == "sqlite":
        # unicode61 splits on spaces; searches use prefix terms so "환불" finds "환불을"
        op.execute("CREATE VIRTUAL TABLE transcript_fts USING fts5(text, recording_id UNINDEXED, "
                   "tenant_id UNINDEXED, tokenize='unicode61')")
    else:
        op.execute("CREATE INDEX ix_transcripts_fts ON transcripts USING gin (to_tsvector('simple', text))")
    op.create_table(
        "qa_forms",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_qa_forms_tenant_id", "qa_forms", ["tenant_id"])
    op.create_table(
        "qa_evaluations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("form_id", sa.Integer(), sa.ForeignKey("qa_forms.id", ondelete="CASCADE"), nullable=False),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
        sa.Column("evaluator_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("section_scores", sa.JSON(), nullable=False),
        sa.Column("auto_failed", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_qa_evaluations_tenant_call", "qa_evaluations", ["tenant_id", "call_id"])
    op.create_index("ix_qa_evaluations_agent_id", "qa_evaluations", ["agent_id"])
    op.create_table(
        "qa_disputes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("evaluation_id", sa.Integer(), sa.ForeignKey("qa_evaluations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolution", sa.Text(), nullable=False),
        sa.Column("resolved_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_qa_disputes_tenant_id", "qa_disputes", ["tenant_id"])
    op.create_index("ix_qa_disputes_evaluation_id", "qa_disputes", ["evaluation_id"])


def downgrade() -> None:
    op.drop_table("qa_disputes")
    op.drop_table("qa_evaluations")
    op.drop_table("qa_forms")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE transcript_fts")
    op.drop_table("transcripts")
    op.drop_table("recordings")
    with op.batch_alter_table("tenants") as batch:
        for column in reversed(_TENANT_COLUMNS):
            batch.drop_column(column.name)
