"""The chats' rows: conversations with their contact records, messages, attachments.

Plain functions on a SQLAlchemy session, run by ``ChatService`` in a worker thread (never on
the event loop). A conversation's contact record (``CallRecord``, channel ``chat``) shares its
id, so reports, QA and a customer's earlier contacts see chats next to calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from .db_health import OutageNotice, database_unavailable

from .models import Agent, CallEvent, CallRecord, ChatConversation, ChatMessage, FaqPair, User

logger = logging.getLogger(__name__)

OPEN_STATUSES = ("bot", "queued", "active")
WRITE_BATCH = 500
WRITE_RETRY = 1.0
"""Seconds between tries while the database is unavailable."""

Change = Callable[[Session], None]


class ChatWriter:
    """Writes the chats' changes behind the conversations, in order, from one task: each batch
    in one transaction in a worker thread. While the database is unavailable the batch waits and
    is written when it is back (the conversations go on in memory); a change the database refuses
    is logged and skipped, the others of its batch are written."""

    def __init__(self, db: Engine) -> None:
        self.db = db
        self._queue: asyncio.Queue[Change] = asyncio.Queue()
        self._outage = OutageNotice(logger, "database unavailable: chat messages kept in memory, written when "
                                            "it is back", "database available again: chat messages written")

    def put(self, change: Change) -> None:
        self._queue.put_nowait(change)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        work: list[Change] = []
        while True:
            if not work:
                work = [await self._queue.get()]
            while not self._queue.empty() and len(work) < WRITE_BATCH:
                work.append(self._queue.get_nowait())
            try:
                await loop.run_in_executor(None, self._write, work)
            except Exception as exc:
                if database_unavailable(exc):
                    self._outage.failed(exc)
                    await asyncio.sleep(WRITE_RETRY)
                    continue
                await loop.run_in_executor(None, self._write_each, work)
            else:
                self._outage.ok()
            work = []

    async def flush(self) -> None:
        """Write what is queued now (at stop: a clean shutdown loses no message)."""
        work = []
        while not self._queue.empty():
            work.append(self._queue.get_nowait())
        if work:
            await asyncio.get_running_loop().run_in_executor(None, self._write_each, work)

    def _write(self, work: list[Change]) -> None:
        with Session(self.db) as db, db.begin():
            for change in work:
                change(db)

    def _write_each(self, work: list[Change]) -> None:
        for change in work:
            try:
                self._write([change])
            except Exception:
                logger.exception("a chat change was refused by the database and skipped")


@dataclass(frozen=True)
class NewConversation:
    tenant_id: int
    visitor_id: str
    name: str
    phone: str
    question: str
    page_url: str
    locale: str
    queue: str
    status: str
    node_id: str | None


def create_conversation(db: Session, new: NewConversation, now: datetime) -> str:
    """The conversation and its contact record; returns its id."""
    conversation = ChatConversation(tenant_id=new.tenant_id, visitor_id=new.visitor_id, name=new.name,
                                    phone=new.phone, question=new.question, page_url=new.page_url,
                                    locale=new.locale, queue=new.queue, status=new.status, created_at=now)
    db.add(conversation)
    db.flush()
    db.add(CallRecord(id=conversation.id, sip_call_id=f"chat-{conversation.id}", tenant_id=new.tenant_id,
                      direction="inbound", caller=new.phone, dialed="web", received_at=now, channel="chat",
                      queue=new.queue, node_id=new.node_id))
    return conversation.id


def add_message(db: Session, conversation_id: str, tenant_id: int, message: dict[str, Any], agent_id: int | None,
                at: datetime) -> None:
    db.add(ChatMessage(conversation_id=conversation_id, tenant_id=tenant_id, seq=message["seq"],
                       sender=message["sender"], agent_id=agent_id, text=message["text"],
                       attachment_id=(message.get("attachment") or {}).get("id"),
                       client_id=message.get("client_id"), created_at=at))


def add_event(db: Session, conversation_id: str, tenant_id: int, kind: str, agent_id: int | None,
              detail: dict[str, Any], at: datetime) -> None:
    """One entry of the contact record's event list (``queued``, ``answered``, ``declined``,
    ``transfer``: what reports read of a chat, as of a call)."""
    db.add(CallEvent(call_id=conversation_id, tenant_id=tenant_id, at=at, kind=kind, agent_id=agent_id,
                     detail=detail))


def set_fields(db: Session, conversation_id: str, conversation: dict[str, Any], record: dict[str, Any]) -> None:
    """Change the conversation's and its contact record's columns."""
    if conversation:
        db.execute(update(ChatConversation).where(ChatConversation.id == conversation_id).values(**conversation))
    if record:
        db.execute(update(CallRecord).where(CallRecord.id == conversation_id).values(**record))


def open_conversations(db: Session, tenant_id: int | None = None) -> list[ChatConversation]:
    """Conversations not ended, of ``tenant_id`` (None: of every tenant), oldest first."""
    query = select(ChatConversation).where(ChatConversation.status.in_(OPEN_STATUSES))
    if tenant_id is not None:
        query = query.where(ChatConversation.tenant_id == tenant_id)
    return list(db.scalars(query.order_by(ChatConversation.created_at)))


def messages(db: Session, conversation_id: str) -> list[ChatMessage]:
    return list(db.scalars(select(ChatMessage).where(ChatMessage.conversation_id == conversation_id)
                           .order_by(ChatMessage.seq)))


def agent_names(db: Session, tenant_id: int) -> dict[int, str]:
    return {agent_id: username for agent_id, username in db.execute(
        select(Agent.id, User.username).join(User, User.id == Agent.user_id).where(Agent.tenant_id == tenant_id))}


def faq_pairs(db: Session, tenant_id: int, queue: str) -> list[FaqPair]:
    """The pairs the bot of ``queue`` answers from (the queue's own and the tenant-wide ones)."""
    return list(db.scalars(select(FaqPair).where(FaqPair.tenant_id == tenant_id)
                           .where((FaqPair.queue.is_(None)) | (FaqPair.queue == queue)).order_by(FaqPair.id)))
