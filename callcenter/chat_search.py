"""Search of chat transcripts: each conversation's words (``chat.search.terms``) as
``ChatSearchTerm`` rows; a query finds the tenant's conversations holding every one of its words.

A table of words rather than a full-text index: the same query runs on SQLite and PostgreSQL,
and Chinese needs jieba's segmentation anyway (SQLite's FTS5 trigram tokenizer cannot find a
two-character word such as 退款).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from chat.search import query_terms, terms

from .models import ChatConversation, ChatMessage, ChatSearchTerm

SNIPPET_BEFORE = 30
SNIPPET_AFTER = 60
"""Characters of a message shown around the first query word it holds."""


def index_conversation(db: Session, tenant_id: int, conversation_id: str, texts: Iterable[str]) -> None:
    """Add the words of ``texts`` (the transcript, the visitor's name and phone...) to the
    conversation's; words it already has are kept once, so it may be called again as the
    conversation grows. Adds to the session: the caller commits."""
    words = set().union(*(terms(text) for text in texts))
    known = set(db.scalars(select(ChatSearchTerm.term).where(ChatSearchTerm.conversation_id == conversation_id)))
    db.add_all(ChatSearchTerm(conversation_id=conversation_id, term=word, tenant_id=tenant_id)
               for word in sorted(words - known))
    db.flush()


def search_conversations(db: Session, tenant_id: int, query: str, limit: int) -> list[ChatConversation]:
    """The tenant's conversations holding every word of ``query``, newest first (none for a
    query without words)."""
    wanted = query_terms(query)
    if not wanted:
        return []
    holding = (select(ChatSearchTerm.conversation_id)
               .where(ChatSearchTerm.tenant_id == tenant_id, ChatSearchTerm.term.in_(wanted))
               .group_by(ChatSearchTerm.conversation_id)
               .having(func.count() == len(wanted)))
    return list(db.scalars(select(ChatConversation)
                           .where(ChatConversation.tenant_id == tenant_id, ChatConversation.id.in_(holding))
                           .order_by(ChatConversation.created_at.desc(), ChatConversation.id)
                           .limit(limit)))


def snippet(db: Session, conversation: ChatConversation, query: str) -> str:
    """The first message of ``conversation`` holding a word of ``query``, cut around that word
    (the conversation's opening question when no message does)."""
    words = query_terms(query)
    text = db.scalar(select(ChatMessage.text)
                     .where(ChatMessage.conversation_id == conversation.id,
                            or_(*(func.lower(ChatMessage.text).contains(word, autoescape=True) for word in words)))
                     .order_by(ChatMessage.seq).limit(1)) if words else None
    if text is None:
        return conversation.question[:SNIPPET_BEFORE + SNIPPET_AFTER]
    lowered = text.lower()
    at = min((found for found in (lowered.find(word) for word in words) if found >= 0), default=0)
    start, end = max(0, at - SNIPPET_BEFORE), min(len(text), at + SNIPPET_AFTER)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
