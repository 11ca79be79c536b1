"""Kept chats: search the tenant's transcripts (Chinese and English words) and read one.

Supervisors, QA and admins search and read every chat of their tenant; an agent reads only the
chats they took part in (403 otherwise). Other tenants' chats are 404. Reading a transcript is
audited, as reading a call's is.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from callcenter import chat_store, desk
from callcenter.api.audit import record_audit
from callcenter.api.deps import get_db, require_roles
from callcenter.api.errors import forbidden, not_found
from callcenter.chat_search import search_conversations, snippet
from callcenter.models import ChatAttachment, ChatConversation, ChatMessage, Role
from callcenter.security import Principal

router = APIRouter(prefix="/api/chats", tags=["chat"])
reviewers = require_roles("supervisor", "qa", "admin")
readers = require_roles("supervisor", "qa", "admin", "agent")

ConversationId = Annotated[str, Field(min_length=1, max_length=36, description="a chat's id")]
MAX_QUERY = 200


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _conversation_out(row: ChatConversation, agents: dict[int, str]) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "phone": row.phone, "question": row.question, "page_url": row.page_url,
            "queue": row.queue, "status": row.status, "locale": row.locale,
            "agent": agents.get(row.agent_id) if row.agent_id is not None else None,
            "created_at": _when(row.created_at), "answered_at": _when(row.answered_at),
            "ended_at": _when(row.ended_at), "end_cause": row.end_cause}


@router.get("/search")
def search_chats(q: str = Query(min_length=1, max_length=MAX_QUERY, description="words every hit holds"),
                 limit: int = Query(20, ge=1, le=100), principal: Principal = Depends(reviewers),
                 db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    """The tenant's chats whose transcript holds every word of ``q``, newest first, each with the
    first message holding one of them (``snippet``)."""
    agents = chat_store.agent_names(db, principal.tenant_id)
    return [{"id": row.id, "name": row.name, "phone": row.phone, "queue": row.queue,
             "agent": agents.get(row.agent_id) if row.agent_id is not None else None,
             "status": row.status, "created_at": _when(row.created_at), "snippet": snippet(db, row, q)}
            for row in search_conversations(db, principal.tenant_id, q, limit)]


def _took_part(db: Session, principal: Principal, conversation: ChatConversation) -> bool:
    """The agent holds the chat, or wrote in it (a chat they transferred on)."""
    agent = desk.agent_for_user(db, principal.user_id)
    if agent is None:
        return False
    return conversation.agent_id == agent.id or bool(db.scalar(select(exists().where(
        ChatMessage.conversation_id == conversation.id, ChatMessage.agent_id == agent.id))))


@router.get("/{conversation_id}")
def get_chat(conversation_id: ConversationId, principal: Principal = Depends(readers),
             db: Session = Depends(get_db)) -> dict[str, Any]:
    """The chat and its whole transcript (messages oldest first, as the agent's page shows them)."""
    row = db.get(ChatConversation, conversation_id)
    if row is None or row.tenant_id != principal.tenant_id:
        raise not_found("chat")
    if principal.role == Role.AGENT and not _took_part(db, principal, row):
        raise forbidden()
    agents = chat_store.agent_names(db, principal.tenant_id)
    files = {a.id: {"id": a.id, "filename": a.filename, "content_type": a.content_type, "size": a.size,
                    "url": f"/api/chat/attachments/{a.id}"}
             for a in db.scalars(select(ChatAttachment).where(ChatAttachment.conversation_id == row.id))}
    messages = [{"seq": m.seq, "sender": m.sender, "text": m.text,
                 "attachment": files.get(m.attachment_id) if m.attachment_id else None,
                 "agent": agents.get(m.agent_id) if m.agent_id is not None else None,
                 "created_at": _when(m.created_at), "client_id": m.client_id}
                for m in chat_store.messages(db, row.id)]
    record_audit(db, principal, "chat.read", f"chat:{row.id}", {})
    db.commit()
    return {"conversation": _conversation_out(row, agents), "messages": messages}
