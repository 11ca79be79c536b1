"""Web chat and satisfaction: conversations, messages, attachments, search terms, offline messages,
FAQ pairs, canned replies, CSAT responses; a contact record's channel; tenants' chat settings and
survey flow; agents' chat capacity.

Revision ID: 0012_chat
Revises: 0011_campaigns
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_chat"
down_revision: str | None = "0011_campaigns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant(index: bool = True) -> sa.Column[int]:
    return sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False,
                     index=index)


def _conversation(primary_key: bool = False) -> sa.Column[str]:
    return sa.Column("conversation_id", sa.String(36), sa.ForeignKey("chat_conversations.id", ondelete="CASCADE"),
                     nullable=False, primary_key=primary_key)


def _agent() -> sa.Column[int]:
    return sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:  # ADD COLUMN only: no table rebuild on SQLite
        batch.add_column(sa.Column("chat_settings", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("survey_flow", sa.String(64), nullable=True))
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("chat_capacity", sa.Integer(), nullable=True))
    with op.batch_alter_table("call_records") as batch:
        batch.add_column(sa.Column("channel", sa.String(8), nullable=False, server_default="voice"))
    op.create_index("ix_call_records_tenant_caller", "call_records", ["tenant_id", "caller"])  # earlier contacts
    op.create_table(
        "chat_conversations",
        sa.Column("id", sa.String(36), primary_key=True),
        _tenant(index=False),
        sa.Column("visitor_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("page_url", sa.String(500), nullable=False),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        _agent(),
        sa.Column("visitor_read_seq", sa.Integer(), nullable=False),
        sa.Column("agent_read_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_cause", sa.String(32), nullable=True),
    )
    op.create_index("ix_chat_conversations_tenant_visitor", "chat_conversations", ["tenant_id", "visitor_id"])
    op.create_index("ix_chat_conversations_tenant_status", "chat_conversations", ["tenant_id", "status"])
    op.create_table(
        "chat_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        _conversation(),
        _tenant(),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(8), nullable=False),
        _agent(),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("attachment_id", sa.String(36), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("conversation_id", "seq", name="uq_chat_messages_seq"),
    )
    op.create_table(
        "chat_attachments",
        sa.Column("id", sa.String(36), primary_key=True),
        _tenant(),
        _conversation(),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "chat_search_terms",
        _conversation(primary_key=True),
        sa.Column("term", sa.String(64), primary_key=True),
        _tenant(index=False),
    )
    op.create_index("ix_chat_search_terms_tenant_term", "chat_search_terms", ["tenant_id", "term"])
    op.create_table(
        "chat_offline_messages",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("email", sa.String(200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("page_url", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("handled_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    )
    op.create_table(
        "faq_pairs",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("alternatives", sa.JSON(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "canned_replies",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.UniqueConstraint("tenant_id", "code", name="uq_canned_replies_code"),
    )
    op.create_table(
        "csat_responses",
        sa.Column("id", sa.Integer(), primary_key=True),
        _tenant(index=False),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("agent_id", sa.Integer(), sa.ForeignKey("agents.id", ondelete="SET NULL"), nullable=True,
                  index=True),
        sa.Column("queue", sa.String(64), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("contact_id", name="uq_csat_responses_contact"),
    )
    op.create_index("ix_csat_responses_tenant_created", "csat_responses", ["tenant_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_csat_responses_tenant_created", "csat_responses")
    op.drop_table("csat_responses")
    op.drop_table("canned_replies")
    op.drop_table("faq_pairs")
    op.drop_table("chat_offline_messages")
    op.drop_index("ix_chat_search_terms_tenant_term", "chat_search_terms")
    op.drop_table("chat_search_terms")
    op.drop_table("chat_attachments")
    op.drop_table("chat_messages")
    op.drop_index("ix_chat_conversations_tenant_status", "chat_conversations")
    op.drop_index("ix_chat_conversations_tenant_visitor", "chat_conversations")
    op.drop_table("chat_conversations")
    op.drop_index("ix_call_records_tenant_caller", "call_records")
    with op.batch_alter_table("call_records") as batch:
        batch.drop_column("channel")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("chat_capacity")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("survey_flow")
        batch.drop_column("chat_settings")
