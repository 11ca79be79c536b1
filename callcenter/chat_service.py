"""Web chats on this node: visitors' conversations from the widget to an agent and back.

A conversation lives in memory on the node that hosts its tenant's ACD (its messages, who is
connected) and is written to the database behind it, in order, by one writer task. Every
message gets the next ``seq`` of its conversation here, before anyone sees it: the widget and
the agent's page resume after the last ``seq`` they hold, so a dropped connection loses and
duplicates nothing; a message sent again after a drop (same ``client_id``) is stored once and
answered with the stored one.

A visitor whose connection dropped keeps the conversation and its place in line for the
tenant's grace period. The FAQ bot (``chat.faq``) answers first in queues that have it, and
hands the visitor to the ACD with the transcript; chats wait in the ACD's queues with calls
(``AcdService.chat_*``), and the engine's offers reach the agent's page through the softphone
socket (``agent_connected``; its ``chat_*`` messages come to :meth:`handle_agent`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from acd import Action, CancelOffer, Offer, Overflow
from chat.attachments import check_attachment
from chat.faq import FaqBot, FaqEntry, FaqIndex
from chat.notices import notice
from sip_bridge.ratelimit import RateLimiter

from . import chat_store as store
from .acd_service import AcdService, direct_queue
from .agent_directory import AgentDirectory
from .chat_search import index_conversation
from .chat_settings import ChatSettings, tenant_by_widget_key
from .csat import record_rating
from .desk import save_wrapup, tenant_dispositions
from .models import ChatAttachment, Tenant, utcnow
from .qa import evaluate_chat
from .settings import Settings

logger = logging.getLogger(__name__)

PAGE = 100
"""Messages sent at once when a side (re)connects or asks for more."""
MAX_TEXT = 4000
HEARTBEAT_TIMEOUT = 30.0
"""Seconds without a message from the widget (it pings every 10 s) after which its socket is gone."""
KEEP_ENDED = 600.0
"""Seconds an ended conversation stays in memory (the rating card, the agent's disposition)."""
SEPARATORS = re.compile(r"[\s\-()]")
POSITIONS_EVERY = 1.0
"""Seconds between position updates to a tenant's waiting visitors."""
MOVED = {"type": "moved"}
"""Tells a widget its tenant moved to another node: it reconnects (and so reaches the new one)."""


class ChatError(Exception):
    """A request refused, with the HTTP status and stable error id the API answers with (and the
    ``params`` the pages word it with)."""

    def __init__(self, message: str, error_id: str, status: int = 422, **params: str) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.status = status
        self.params = params


@dataclass
class VisitorLink:
    """One open widget socket of a conversation."""

    outbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    def send(self, message: dict[str, Any]) -> None:
        self.outbox.put_nowait(message)


@dataclass
class LiveChat:
    id: str
    tenant_id: int
    visitor_id: str
    name: str
    phone: str
    question: str
    page_url: str
    locale: str
    queue: str
    status: str
    created_at: datetime
    answered_at: datetime | None = None
    agent_id: str | None = None
    """The engine's id of the agent who has the chat."""
    offered_to: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    client_ids: dict[str, dict[str, Any]] = field(default_factory=dict)
    attachments: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Files uploaded to the conversation, by id (a message may carry one of them)."""
    visitor_read_seq: int = 0
    agent_read_seq: int = 0
    visitors: list[VisitorLink] = field(default_factory=list)
    away: asyncio.TimerHandle | None = None
    bot: FaqBot | None = None
    responded: bool = False
    rated: bool = False
    position_told: int | None = None
    """The place in line the visitor was last told."""
    closed_by_agent: bool = True
    """Whether the agent's page is done with it (False from accept until they end it with a disposition)."""

    @property
    def last_seq(self) -> int:
        return self.messages[-1]["seq"] if self.messages else 0

    def after(self, seq: int) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``PAGE`` messages after ``seq`` (seqs run 1, 2, 3 ... so it is an index)."""
        start = max(0, seq)
        page = self.messages[start:start + PAGE]
        return page, start + PAGE < len(self.messages)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "phone": self.phone, "question": self.question,
                "page_url": self.page_url, "queue": self.queue, "status": self.status,
                "created_at": self.created_at.isoformat(),
                "answered_at": self.answered_at.isoformat() if self.answered_at else None,
                "visitor_online": bool(self.visitors), "visitor_read_seq": self.visitor_read_seq,
                "locale": self.locale}


class ChatService:
    """The conversations of the tenants hosted on this node."""

    def __init__(self, settings: Settings, db: Engine, acd: AcdService, directory: AgentDirectory,
                 actions: asyncio.Queue[tuple[int, Action]]) -> None:
        self.settings = settings
        self.db = db
        self.acd = acd
        self.directory = directory
        #: the ACD engine's decisions about chats (``AcdService.chat_actions``)
        self.actions = actions
        self.chats: dict[str, LiveChat] = {}
        self._secret = settings.effective_secret_key.encode()
        #: (tenant_id, agent_id) -> sends a message to the agent's page
        self._agents: dict[tuple[int, str], Callable[[dict[str, Any]], None]] = {}
        self._positions_due: set[int] = set()
        per_minute = settings.chat_opens_per_minute
        #: new chats and offline messages per source address (anyone may start one: a flood must not
        #: fill the queues)
        self._opens = RateLimiter(per_minute / 60, per_minute) if per_minute else None
        self._writes = store.ChatWriter(db)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._workers: list[asyncio.Task[None]] = []

    @property
    def attachments_dir(self) -> Path:
        return self.settings.data_dir / "chat"

    # -- start and stop; a cluster's tenants coming and going ---------------------------------------
    async def start(self) -> None:
        """Open conversations a previous run left: back in memory, waiting ones back in line (a
        cluster node takes its tenants' conversations over as it gains them: :meth:`tenant_gained`)."""
        loop = asyncio.get_running_loop()
        self._workers = [loop.create_task(self._writes.run()), loop.create_task(self._action_loop())]
        if not self.acd.owners.clustered:
            await self._adopt(None)

    async def _adopt(self, tenant_id: int | None) -> None:
        """The open conversations of ``tenant_id`` (None: every tenant) back in memory; those whose
        chat the ACD engine no longer holds (a restart) wait in line again. Their visitors have the
        grace period to reconnect."""
        loop = asyncio.get_running_loop()
        revived = await loop.run_in_executor(None, self._load_open, tenant_id)
        for chat in revived:
            if chat.id in self.chats or not self.acd.owners.local(chat.tenant_id):
                continue
            self.chats[chat.id] = chat
            chat.away = loop.call_later(self._grace(chat), self._visitor_gone, chat)
            held = self.acd.chat_held(chat.tenant_id, chat.id, chat.agent_id)
            if held and chat.status == "queued":  # an offer made before it was taken up here rings on
                chat.offered_to = self.acd.chat_offered_to(chat.tenant_id, chat.id)
                if chat.offered_to is not None:
                    self._to_agent_id(chat.tenant_id, chat.offered_to, self._offer_message(chat))
            if held and chat.status == "active":  # its agent's page, if already connected, gets it back
                self._to_agent(chat, {"type": "chat", **self._agent_view(chat)})
            if chat.status == "queued" and not held:
                self._enqueue(chat, chat.queue)
            elif chat.status == "active" and not held:
                chat.agent_id = None
                self._enqueue(chat, chat.queue)
        if revived:
            logger.info("open chats taken up: %d", len(revived), extra={"tenant_id": tenant_id})

    def tenant_gained(self, tenant_id: int, epoch: int) -> None:
        """This node hosts ``tenant_id`` now (``tenant_owners.OwnershipListener``): its chats are
        taken up once the tenant's ACD engine is (``acd_cluster.py`` restores it)."""
        task = asyncio.get_running_loop().create_task(self._adopt_when_hosted(tenant_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _adopt_when_hosted(self, tenant_id: int) -> None:
        while tenant_id not in self.acd.engines:
            if not self.acd.owners.local(tenant_id):
                return  # lost again meanwhile
            await asyncio.sleep(0.05)
        await self._adopt(tenant_id)

    def tenant_lost(self, tenant_id: int, reason: str) -> None:
        """Another node hosts ``tenant_id`` now: its conversations are forgotten here and their
        widgets told to reconnect (they reach the new owner through any node)."""
        for chat in [c for c in self.chats.values() if c.tenant_id == tenant_id]:
            del self.chats[chat.id]
            if chat.away is not None:
                chat.away.cancel()
            for link in chat.visitors:
                link.send(MOVED)

    def node_down(self, node: Any) -> None:
        """Another node died: nothing of this node's chats was there."""

    def reap(self, node: Any) -> None:
        """Cleaning up after a dead node is its tenants' new owners' (:meth:`tenant_gained`)."""

    def _load_open(self, tenant_id: int | None) -> list[LiveChat]:
        with Session(self.db) as db:
            out = []
            for row in store.open_conversations(db, tenant_id):
                names = store.agent_names(db, row.tenant_id)
                chat = LiveChat(row.id, row.tenant_id, row.visitor_id, row.name, row.phone, row.question,
                                row.page_url, row.locale, row.queue or "", row.status, row.created_at,
                                row.answered_at, visitor_read_seq=row.visitor_read_seq,
                                agent_read_seq=row.agent_read_seq,
                                agent_id=str(row.agent_id) if row.agent_id is not None else None,
                                closed_by_agent=row.status != "active")
                for m in store.messages(db, row.id):
                    message = self._message(m.seq, m.sender, m.text, m.created_at, m.client_id,
                                            names.get(m.agent_id) if m.agent_id is not None else None,
                                            self._attachment_of(db, m.attachment_id))
                    chat.messages.append(message)
                    if m.client_id:
                        chat.client_ids[m.client_id] = message
                    if message["attachment"] is not None:
                        chat.attachments[message["attachment"]["id"]] = message["attachment"]
                chat.responded = any(m["sender"] == "agent" for m in chat.messages)
                if chat.status == "bot":
                    chat.bot = self._bot(db, chat.tenant_id, chat.queue, chat.locale)
                out.append(chat)
            return out

    async def stop(self) -> None:
        for task in [*self._tasks, *self._workers]:
            task.cancel()
        await self._writes.flush()

    # -- the visitor's requests (callcenter/api/chat.py) -------------------------------------------
    def token(self, chat: LiveChat) -> str:
        signature = hmac.new(self._secret, f"{chat.id}:{chat.visitor_id}".encode(), hashlib.sha256).hexdigest()
        return f"{chat.id}.{signature[:40]}"

    def chat_of_token(self, token: str) -> LiveChat | None:
        chat = self.chats.get(token.partition(".")[0])
        if chat is None or not hmac.compare_digest(self.token(chat).encode(), token.encode()):
            return None
        return chat

    def admit(self, source: str) -> None:
        """``too-many-chats`` (429) when ``source`` started more chats than the node allows."""
        if self._opens is not None and not self._opens.allow(source, time.monotonic()):
            raise ChatError("too many chats started from this address; try again in a minute", "too-many-chats",
                            429)

    def widget(self, key: str) -> tuple[Tenant, ChatSettings]:
        with Session(self.db) as db:
            found = tenant_by_widget_key(db, key)
        if found is None:
            raise ChatError("no chat widget with this key", "no-such-widget", 404)
        return found

    def queue_of(self, tenant_id: int, settings: ChatSettings) -> str | None:
        queues = self.acd.queues.get(tenant_id, {})
        if settings.queue in queues:
            return settings.queue
        return next(iter(sorted(queues)), None)

    def widget_info(self, key: str) -> dict[str, Any]:
        tenant, settings = self.widget(key)
        queue = self.queue_of(tenant.id, settings)
        bot = queue is not None and self._bot_enabled(tenant.id, queue)
        online = queue is not None and (bot or self.acd.chat_staffed(tenant.id, queue))
        return {"tenant": tenant.name, "online": online, "bot": bot, "greeting": settings.greeting,
                "max_attachment_bytes": settings.max_attachment_mb * 1024 * 1024, "locale": "zh-CN"}

    def _bot_enabled(self, tenant_id: int, queue: str) -> bool:
        return queue in self.acd.faq_bots.get(tenant_id, frozenset())

    def find_open(self, tenant_id: int, visitor_id: str) -> dict[str, Any]:
        """The visitor's open conversation (a page reopened within the session), or ``no-open-conversation``."""
        chat = self._open_of(tenant_id, visitor_id)
        if chat is None:
            raise ChatError("no open conversation for this visitor", "no-open-conversation", 404)
        return {"conversation_id": chat.id, "visitor_id": chat.visitor_id, "token": self.token(chat)}

    def _open_of(self, tenant_id: int, visitor_id: str) -> LiveChat | None:
        return next((c for c in self.chats.values()
                     if c.tenant_id == tenant_id and c.visitor_id == visitor_id and c.status != "ended"), None)

    async def open(self, key: str, visitor_id: str | None, name: str, phone: str, question: str, page_url: str,
                   locale: str) -> dict[str, Any]:
        """A new conversation: the question is its first message; the bot answers it, or the chat
        waits for an agent. ``chat-offline`` (409) when nobody can take it."""
        loop = asyncio.get_running_loop()
        tenant, settings = await loop.run_in_executor(None, self.widget, key)
        if visitor_id is not None and self._open_of(tenant.id, visitor_id) is not None:
            return self.find_open(tenant.id, visitor_id)  # the form sent twice, or from a second tab
        queue = self.queue_of(tenant.id, settings)
        if queue is None:
            raise ChatError("no queue takes chats", "chat-offline", 409)
        bot = None
        if self._bot_enabled(tenant.id, queue):
            bot = await loop.run_in_executor(None, self._session_bot, tenant.id, queue, locale)
        if bot is None and not self.acd.chat_staffed(tenant.id, queue):
            raise ChatError("no agent can take a chat now; leave a message", "chat-offline", 409)
        visitor_id = visitor_id or uuid.uuid4().hex
        phone = SEPARATORS.sub("", phone)  # as callers' numbers are stored: earlier contacts match
        now = utcnow()
        new = store.NewConversation(tenant.id, visitor_id, name, phone, question, page_url, locale, queue,
                                    "bot" if bot is not None else "queued", self.settings.node_id)
        conversation_id = await loop.run_in_executor(None, self._create, new, now)
        chat = LiveChat(conversation_id, tenant.id, visitor_id, name, phone, question, page_url, locale, queue,
                        new.status, now, bot=bot)
        self.chats[chat.id] = chat
        chat.away = loop.call_later(self._grace(chat), self._visitor_gone, chat)
        logger.info("chat opened", extra={"conversation_id": chat.id, "tenant_id": tenant.id, "queue": queue})
        self._append(chat, "visitor", question)
        if bot is not None:
            self._bot_turn(chat, question)
        else:
            self._append(chat, "system", notice("queued", locale))
            self._enqueue(chat, queue)
        return {"conversation_id": chat.id, "visitor_id": visitor_id, "token": self.token(chat)}

    def _create(self, new: store.NewConversation, now: datetime) -> str:
        with Session(self.db) as db, db.begin():
            return store.create_conversation(db, new, now)

    def _session_bot(self, tenant_id: int, queue: str, locale: str) -> FaqBot | None:
        with Session(self.db) as db:
            return self._bot(db, tenant_id, queue, locale)

    @staticmethod
    def _bot(db: Session, tenant_id: int, queue: str, locale: str) -> FaqBot | None:
        pairs = store.faq_pairs(db, tenant_id, queue)
        if not pairs:
            return None
        index = FaqIndex.build([FaqEntry(p.id, p.question, tuple(p.alternatives or ()), p.answer) for p in pairs])
        return FaqBot(index, locale)

    # -- the visitor's socket ---------------------------------------------------------------------
    async def serve_visitor(self, ws: WebSocket, token: str, after: int) -> None:
        chat = self.chat_of_token(token)
        await ws.accept()
        if chat is None:
            await ws.close(code=4401, reason="this conversation is not known here (ended long ago or a bad token)")
            return
        link = VisitorLink()
        was_online = bool(chat.visitors)
        chat.visitors.append(link)
        if chat.away is not None:
            chat.away.cancel()
            chat.away = None
        if not was_online:
            self._to_agent(chat, {"type": "chat_visitor", "conversation_id": chat.id, "online": True})
        log = {"conversation_id": chat.id, "tenant_id": chat.tenant_id}
        logger.info("chat visitor connected", extra=log)
        page, more = chat.after(after)
        link.send({"type": "welcome", "conversation": self._visitor_status(chat), "messages": page, "more": more,
                   "agent_read_seq": chat.agent_read_seq})
        writer = asyncio.ensure_future(self._write_socket(ws, link.outbox))
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(ws.receive_text(), HEARTBEAT_TIMEOUT)
                except TimeoutError:
                    break
                try:
                    message = json.loads(raw)
                    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                        raise ValueError("a message is a JSON object with a type")
                    self._visitor_says(chat, link, message)
                except ChatError as exc:
                    link.send({"type": "error", "error_id": exc.error_id, "message": str(exc)})
                except (ValueError, TypeError, RecursionError) as exc:
                    link.send({"type": "error", "error_id": "bad-message", "message": f"bad message: {exc}"})
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            writer.cancel()
            if link in chat.visitors:
                chat.visitors.remove(link)
            if not chat.visitors and chat.status != "ended":
                chat.away = asyncio.get_running_loop().call_later(self._grace(chat), self._visitor_gone, chat)
                self._to_agent(chat, {"type": "chat_visitor", "conversation_id": chat.id, "online": False})
            logger.info("chat visitor disconnected", extra=log)

    @staticmethod
    async def _write_socket(ws: WebSocket, outbox: asyncio.Queue[dict[str, Any]]) -> None:
        with suppress(Exception):
            while True:
                message = await outbox.get()
                if message is MOVED:
                    await ws.close(code=1012, reason="your conversation moved to another node; reconnecting")
                    return
                await ws.send_text(json.dumps(message, ensure_ascii=False))

    def _visitor_says(self, chat: LiveChat, link: VisitorLink, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "ping":
            link.send({"type": "pong"})
        elif kind == "send":
            sent = self._send(chat, "visitor", message, None)
            if sent is not None and chat.status == "bot":
                self._bot_turn(chat, sent["text"])
        elif kind == "typing":
            self._to_agent(chat, {"type": "chat_typing", "conversation_id": chat.id,
                                  "typing": bool(message.get("typing"))})
        elif kind == "read":
            seq = _seq(message.get("seq"))
            if chat.visitor_read_seq < seq <= chat.last_seq:
                chat.visitor_read_seq = seq
                self._save(chat, {"visitor_read_seq": seq}, {})
                self._to_agent(chat, {"type": "chat_read", "conversation_id": chat.id, "seq": seq})
        elif kind == "history":
            page, more = chat.after(_seq(message.get("after")))
            link.send({"type": "history", "messages": page, "more": more})
        elif kind == "end":
            if chat.status != "ended":
                self._append(chat, "system", notice("visitor_ended", chat.locale))
                self._end(chat, "visitor_ended", side="caller")
        elif kind == "rate":
            self._rate(chat, message)
        else:
            raise ChatError(f"unknown message type {kind!r}", "bad-message")

    def _visitor_status(self, chat: LiveChat) -> dict[str, Any]:
        agent = self._agent_name(chat.tenant_id, chat.agent_id) if chat.agent_id else None
        chat.position_told = self._position(chat)
        return {"type": "status", "status": chat.status, "agent": agent, "position": chat.position_told,
                "rating_asked": chat.status == "ended" and chat.agent_id is not None and not chat.rated}

    def _position(self, chat: LiveChat) -> int | None:
        return self.acd.chat_position(chat.tenant_id, chat.id) if chat.status == "queued" else None

    def _to_visitor(self, chat: LiveChat, message: dict[str, Any]) -> None:
        for link in chat.visitors:
            link.send(message)

    def _visitor_gone(self, chat: LiveChat) -> None:
        """The grace period ran out with no widget connected."""
        chat.away = None
        if chat.status != "ended":
            logger.info("chat visitor did not come back", extra={"conversation_id": chat.id})
            self._append(chat, "system", notice("visitor_left", chat.locale))
            self._end(chat, "visitor_left", side="caller")

    def _grace(self, chat: LiveChat) -> float:
        return float(self._settings_of(chat.tenant_id).visitor_grace_seconds)

    def _settings_of(self, tenant_id: int) -> ChatSettings:
        return self.acd.chat_settings.get(tenant_id) or ChatSettings()

    def _rate(self, chat: LiveChat, message: dict[str, Any]) -> None:
        rating = message.get("rating")
        comment = message.get("comment") or ""
        if not isinstance(rating, int) or not 1 <= rating <= 5 or not isinstance(comment, str):
            raise ChatError("a rating is a whole number from 1 to 5, with an optional comment", "bad-rating")
        if chat.status != "ended" or chat.rated:
            raise ChatError("this chat cannot be rated now", "not-ratable", 409)
        chat.rated = True
        agent_id = int(chat.agent_id) if chat.agent_id else None

        def write(db: Session) -> None:
            record_rating(db, tenant_id=chat.tenant_id, contact_id=chat.id, channel="chat", rating=rating,
                          comment=comment[:MAX_TEXT], agent_id=agent_id, queue=chat.queue)

        self._writes.put(write)
        self._to_visitor(chat, {"type": "rated"})

    # -- the FAQ bot ------------------------------------------------------------------------------
    def _bot_turn(self, chat: LiveChat, text: str) -> None:
        assert chat.bot is not None
        reply = chat.bot.reply(text)
        self._append(chat, "bot", reply.text)
        if reply.kind == "handoff":
            logger.info("bot handed the chat over", extra={"conversation_id": chat.id, "reason": reply.reason})
            chat.bot = None
            chat.status = "queued"
            self._save(chat, {"status": "queued"}, {})
            self._enqueue(chat, chat.queue)

    # -- the ACD ------------------------------------------------------------------------------------
    def _enqueue(self, chat: LiveChat, queue: str) -> None:
        chat.status = "queued"
        self._event(chat, "queued", None, queue=queue)
        self.acd.chat_queued(chat.tenant_id, chat.id, queue, chat.phone,
                             {"name": chat.name, "question": chat.question, "channel": "chat"})
        self._to_visitor(chat, self._visitor_status(chat))

    async def _action_loop(self) -> None:
        while True:
            tenant_id, action = await self.actions.get()
            try:
                self._on_action(tenant_id, action)
            except Exception:
                logger.exception("chat action failed", extra={"conversation_id": action.call_id})

    def _on_action(self, tenant_id: int, action: Action) -> None:
        chat = self.chats.get(action.call_id)
        if chat is None:
            return
        if isinstance(action, Offer):
            chat.offered_to = action.agent_id
            self._to_agent_id(tenant_id, action.agent_id, self._offer_message(chat))
        elif isinstance(action, CancelOffer):
            if chat.offered_to == action.agent_id:
                chat.offered_to = None
            self._to_agent_id(tenant_id, action.agent_id, {"type": "chat_offer_cancelled", "conversation_id": chat.id,
                                                           "reason": "ended"})
        elif isinstance(action, Overflow):
            self._append(chat, "system", notice("no_agent", chat.locale))
            self._end(chat, "no_agent", side="platform")

    # -- the agent's page (through the softphone socket) -------------------------------------------------
    def agent_connected(self, tenant_id: int, agent_id: str, send: Callable[[dict[str, Any]], None]) -> None:
        self._agents[(tenant_id, agent_id)] = send

    def agent_gone(self, tenant_id: int, agent_id: str) -> None:
        """The agent's page stayed away beyond its grace period: their chats wait for another agent."""
        self._agents.pop((tenant_id, agent_id), None)
        for chat in [c for c in self.chats.values() if c.tenant_id == tenant_id and c.agent_id == agent_id]:
            if chat.status == "active":
                self._move(chat, chat.queue, "agent_gone")

    def agent_chats(self, tenant_id: int, agent_id: str) -> list[dict[str, Any]]:
        """The chats the agent's page shows (the welcome after a reload has them all)."""
        out = []
        for chat in self.chats.values():
            if chat.tenant_id == tenant_id and chat.agent_id == agent_id and not chat.closed_by_agent:
                out.append(self._agent_view(chat))
        return out

    def agent_offers(self, tenant_id: int, agent_id: str) -> list[dict[str, Any]]:
        """The chat offers ringing the agent now (the welcome after a reload shows them again)."""
        return [self._offer_message(chat) for chat in self.chats.values()
                if chat.tenant_id == tenant_id and chat.offered_to == agent_id and chat.status == "queued"]

    def _offer_message(self, chat: LiveChat) -> dict[str, Any]:
        settings = self.acd.queue_settings(chat.tenant_id, chat.queue)
        waited = (utcnow() - chat.created_at).total_seconds()
        return {"type": "chat_offer", "conversation_id": chat.id, "name": chat.name, "phone": chat.phone,
                "question": chat.question, "queue": chat.queue, "waited": round(waited, 1),
                "page_url": chat.page_url, "expires_in": settings.ring_timeout if settings else 15.0}

    def _agent_view(self, chat: LiveChat) -> dict[str, Any]:
        start = max(0, chat.last_seq - PAGE)
        return {"conversation": chat.summary(), "messages": chat.messages[start:], "more": start > 0,
                "agent_read_seq": chat.agent_read_seq}

    async def handle_agent(self, tenant_id: int, agent_id: str, message: dict[str, Any]) -> None:
        """A ``chat_*`` message of the agent's page; ``ChatError`` for one that does not fit."""
        kind = message["type"]
        conversation_id = message.get("conversation_id")
        chat = self.chats.get(conversation_id) if isinstance(conversation_id, str) else None
        if chat is None or chat.tenant_id != tenant_id:
            raise ChatError("no such chat", "no-such-chat", 404)
        if kind == "chat_accept":
            self._accept(chat, agent_id)
            return
        if kind == "chat_decline":
            if chat.offered_to == agent_id:
                chat.offered_to = None
                self.acd.chat_declined(tenant_id, chat.id, agent_id)
                self._event(chat, "declined", agent_id, queue=chat.queue, reason="declined")
            return
        if chat.agent_id != agent_id:
            raise ChatError("this chat is not yours", "not-your-chat", 403)
        if kind == "chat_send":
            if chat.status != "active":
                raise ChatError("the chat has ended", "chat-ended", 409)
            self._send(chat, "agent", message, agent_id)
        elif kind == "chat_typing":
            self._to_visitor(chat, {"type": "typing", "typing": bool(message.get("typing"))})
        elif kind == "chat_read":
            seq = _seq(message.get("seq"))
            if chat.agent_read_seq < seq <= chat.last_seq:
                chat.agent_read_seq = seq
                self._save(chat, {"agent_read_seq": seq}, {})
                self._to_visitor(chat, {"type": "read", "seq": seq})
        elif kind == "chat_history":
            page, more = chat.after(_seq(message.get("after")))
            self._to_agent(chat, {"type": "chat_history", "conversation_id": chat.id, "messages": page,
                                  "more": more})
        elif kind == "chat_transfer":
            self._transfer(chat, agent_id, str(message.get("kind")), str(message.get("target") or ""))
        elif kind == "chat_end":
            await self._agent_end(chat, agent_id, str(message.get("disposition") or ""),
                                  str(message.get("notes") or ""))
        else:
            raise ChatError(f"unknown message type {kind!r}", "bad-message")

    def _accept(self, chat: LiveChat, agent_id: str) -> None:
        if chat.offered_to != agent_id or not self.acd.chat_accepted(chat.tenant_id, chat.id, agent_id):
            self._to_agent_id(chat.tenant_id, agent_id, {"type": "chat_offer_cancelled", "conversation_id": chat.id,
                                                         "reason": "taken"})
            return
        chat.offered_to = None
        chat.status, chat.agent_id, chat.closed_by_agent = "active", agent_id, False
        first = chat.answered_at is None
        chat.answered_at = chat.answered_at or utcnow()
        self._save(chat, {"status": "active", "agent_id": int(agent_id), "answered_at": chat.answered_at},
                   {"agent_id": int(agent_id), "queue": chat.queue,
                    **({"answered_at": chat.answered_at} if first else {})})
        logger.info("chat accepted", extra={"conversation_id": chat.id, "agent_id": agent_id})
        self._event(chat, "answered", agent_id, queue=chat.queue)
        self._to_agent(chat, {"type": "chat", **self._agent_view(chat)})  # first: the page then takes what follows
        self._append(chat, "system", notice("joined", chat.locale,
                                            agent=self._agent_name(chat.tenant_id, agent_id) or ""))
        self._to_visitor(chat, self._visitor_status(chat))
        self._positions_changed(chat.tenant_id)

    def _transfer(self, chat: LiveChat, agent_id: str, kind: str, target: str) -> None:
        if chat.status != "active":
            raise ChatError("the chat has ended", "chat-ended", 409)
        if kind == "agent":
            other = self.directory.agent_id_of(chat.tenant_id, target)
            if other is None or other == agent_id:
                raise ChatError(f"no other agent {target}", "no-such-agent", 404, target=target)
            queue = direct_queue(other)
        elif kind == "queue":
            if target not in self.acd.queues.get(chat.tenant_id, {}):
                raise ChatError(f"no queue {target}", "no-such-queue", 404, target=target)
            queue = target
        else:
            raise ChatError(f"unknown transfer target kind {kind!r}", "bad-transfer-target")
        self._to_agent(chat, {"type": "chat_ended", "conversation_id": chat.id, "cause": "transferred"})
        self._event(chat, "transfer", agent_id, to=kind, target=target)
        chat.closed_by_agent = True
        self._move(chat, queue, "transferred")

    def _move(self, chat: LiveChat, queue: str, why: str) -> None:
        """The chat leaves its agent and waits in ``queue`` (a transfer, or the agent's page gone)."""
        logger.info("chat back in line", extra={"conversation_id": chat.id, "queue": queue, "reason": why})
        self.acd.chat_ended(chat.tenant_id, chat.id)
        chat.agent_id = None
        if not queue.startswith("agent:"):
            chat.queue = queue
        self._save(chat, {"status": "queued", "agent_id": None, "queue": chat.queue}, {})
        self._append(chat, "system", notice("transferred", chat.locale))
        self._enqueue(chat, queue)

    async def _agent_end(self, chat: LiveChat, agent_id: str, disposition: str, notes: str) -> None:
        """The agent ends the chat (or closes one the visitor ended) with a disposition: checked
        here, stored by the writer after the chat's earlier changes (the record names the agent)."""
        if disposition:
            codes = await asyncio.get_running_loop().run_in_executor(None, self._disposition_codes, chat.tenant_id)
            if disposition not in codes:
                raise ChatError(f"unknown disposition {disposition!r}; allowed: {', '.join(codes)}",
                                "bad-disposition")

            def store_wrapup(db: Session) -> None:
                save_wrapup(db, chat.tenant_id, int(agent_id), chat.id, disposition, notes[:MAX_TEXT])

            self._writes.put(store_wrapup)
        if chat.status == "active":
            self._append(chat, "system", notice("agent_ended", chat.locale))
            self._end(chat, "agent_ended", side="callee")
        chat.closed_by_agent = True
        self._to_agent(chat, {"type": "chat_closed", "conversation_id": chat.id})

    def _disposition_codes(self, tenant_id: int) -> list[str]:
        with Session(self.db) as db:
            return [d["code"] for d in tenant_dispositions(db, tenant_id)]

    def _to_agent(self, chat: LiveChat, message: dict[str, Any]) -> None:
        if chat.agent_id is not None:
            self._to_agent_id(chat.tenant_id, chat.agent_id, message)

    def _to_agent_id(self, tenant_id: int, agent_id: str, message: dict[str, Any]) -> None:
        send = self._agents.get((tenant_id, agent_id))
        if send is not None:
            send(message)

    def _agent_name(self, tenant_id: int, agent_id: str | None) -> str | None:
        identity = self.directory.agent(tenant_id, agent_id) if agent_id else None
        return identity.username if identity is not None else None

    # -- messages -------------------------------------------------------------------------------------
    def _send(self, chat: LiveChat, sender: str, message: dict[str, Any], agent_id: str | None
              ) -> dict[str, Any] | None:
        """A message a side sent: stored once per ``client_id`` (a resend gets the stored one back)."""
        if chat.status == "ended":
            raise ChatError("the chat has ended", "chat-ended", 409)
        client_id = message.get("client_id")
        if client_id is not None and (not isinstance(client_id, str) or not 0 < len(client_id) <= 64):
            raise ChatError("client_id is a string of 1-64 characters", "bad-message")
        if client_id is not None and client_id in chat.client_ids:  # sent again: the sender learns its seq
            stored = chat.client_ids[client_id]
            if sender == "visitor":
                self._to_visitor(chat, {"type": "message", "message": stored})
            else:
                self._to_agent(chat, {"type": "chat_message", "conversation_id": chat.id, "message": stored})
            return None
        text = message.get("text") or ""
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise ChatError(f"a message is text of at most {MAX_TEXT} characters", "bad-message")
        attachment = self._attachment(chat, message.get("attachment_id"))
        if not text.strip() and attachment is None:
            raise ChatError("an empty message", "bad-message")
        sent = self._append(chat, sender, text, client_id=client_id, agent_id=agent_id, attachment=attachment)
        if sender == "agent" and not chat.responded:
            chat.responded = True
            self._save(chat, {"first_response_at": utcnow()}, {})
        return sent

    def _append(self, chat: LiveChat, sender: str, text: str, *, client_id: str | None = None,
                agent_id: str | None = None, attachment: dict[str, Any] | None = None) -> dict[str, Any]:
        """The next message of the conversation: numbered, delivered to both sides, then stored."""
        now = utcnow()
        message = self._message(chat.last_seq + 1, sender, text, now, client_id,
                                self._agent_name(chat.tenant_id, agent_id), attachment)
        chat.messages.append(message)
        if client_id is not None:
            chat.client_ids[client_id] = message
        self._to_visitor(chat, {"type": "message", "message": message})
        self._to_agent(chat, {"type": "chat_message", "conversation_id": chat.id, "message": message})
        db_agent = int(agent_id) if agent_id is not None else None
        self._writes.put(lambda db: store.add_message(db, chat.id, chat.tenant_id, message, db_agent, now))
        return message

    @staticmethod
    def _message(seq: int, sender: str, text: str, at: datetime, client_id: str | None, agent: str | None,
                 attachment: dict[str, Any] | None) -> dict[str, Any]:
        return {"seq": seq, "sender": sender, "text": text, "attachment": attachment, "agent": agent,
                "created_at": at.isoformat(), "client_id": client_id}

    @staticmethod
    def _attachment(chat: LiveChat, attachment_id: Any) -> dict[str, Any] | None:
        """A file uploaded to this conversation (:meth:`attach`), for a message."""
        if attachment_id is None:
            return None
        found = chat.attachments.get(attachment_id) if isinstance(attachment_id, str) else None
        if found is None:
            raise ChatError("no such attachment", "no-such-attachment", 404)
        return found

    @staticmethod
    def _attachment_of(db: Session, attachment_id: str | None) -> dict[str, Any] | None:
        row = db.get(ChatAttachment, attachment_id) if attachment_id else None
        if row is None:
            return None
        return {"id": row.id, "filename": row.filename, "content_type": row.content_type, "size": row.size,
                "url": f"/api/chat/attachments/{row.id}"}

    async def attach(self, chat: LiveChat, filename: str, data: bytes) -> dict[str, Any]:
        """Check and keep a file for a message of ``chat``; ``AttachmentError`` if refused."""
        found = await asyncio.get_running_loop().run_in_executor(None, self._store_attachment, chat, filename, data)
        chat.attachments[found["id"]] = found
        return found

    def _store_attachment(self, chat: LiveChat, filename: str, data: bytes) -> dict[str, Any]:
        settings = self._settings_of(chat.tenant_id)
        checked = check_attachment(data, filename, settings.max_attachment_mb * 1024 * 1024)
        folder = self.attachments_dir / str(chat.tenant_id)
        folder.mkdir(parents=True, exist_ok=True)
        row = ChatAttachment(id=str(uuid.uuid4()), tenant_id=chat.tenant_id, conversation_id=chat.id,
                             filename=checked.filename, content_type=checked.content_type, size=len(data))
        (folder / row.id).write_bytes(data)
        with Session(self.db) as db, db.begin():
            db.add(row)
            db.flush()
            found = self._attachment_of(db, row.id)
        assert found is not None
        return found

    # -- the end ----------------------------------------------------------------------------------------
    def _end(self, chat: LiveChat, cause: str, *, side: str) -> None:
        was = chat.status
        chat.status = "ended"
        chat.offered_to = None
        if chat.away is not None:
            chat.away.cancel()
            chat.away = None
        if was == "queued":
            self.acd.chat_left(chat.tenant_id, chat.id)
            self._positions_changed(chat.tenant_id)
        elif was == "active":
            self.acd.chat_ended(chat.tenant_id, chat.id)
        now = utcnow()
        self._save(chat, {"status": "ended", "ended_at": now, "end_cause": cause},
                   {"ended_at": now, "end_cause": cause, "hangup_side": side})
        logger.info("chat ended", extra={"conversation_id": chat.id, "cause": cause})
        self._to_visitor(chat, {"type": "ended", "cause": cause})
        self._to_visitor(chat, self._visitor_status(chat))
        self._to_agent(chat, {"type": "chat_ended", "conversation_id": chat.id, "cause": cause})
        texts = [m["text"] for m in chat.messages if m["sender"] in ("visitor", "agent", "bot")]
        answered = chat.agent_id is not None

        def finish(db: Session) -> None:
            index_conversation(db, chat.tenant_id, chat.id, [chat.name, chat.phone, *texts])
            if answered:
                evaluate_chat(db, chat.tenant_id, chat.id)

        self._writes.put(finish)
        asyncio.get_running_loop().call_later(KEEP_ENDED, self._forget, chat)

    def _forget(self, chat: LiveChat) -> None:
        if self.chats.get(chat.id) is chat and chat.status == "ended":
            del self.chats[chat.id]

    def _positions_changed(self, tenant_id: int) -> None:
        """Waiting visitors hear their new place at most once a second per tenant (thousands may wait)."""
        if tenant_id not in self._positions_due:
            self._positions_due.add(tenant_id)
            asyncio.get_running_loop().call_later(POSITIONS_EVERY, self._send_positions, tenant_id)

    def _send_positions(self, tenant_id: int) -> None:
        self._positions_due.discard(tenant_id)
        for chat in self.chats.values():
            if chat.tenant_id == tenant_id and chat.status == "queued" and chat.visitors:
                position = self._position(chat)
                if position != chat.position_told:
                    self._to_visitor(chat, self._visitor_status(chat))

    # -- the database, behind -----------------------------------------------------------------------------
    def _save(self, chat: LiveChat, conversation: dict[str, Any], record: dict[str, Any]) -> None:
        self._writes.put(lambda db: store.set_fields(db, chat.id, conversation, record))

    def _event(self, chat: LiveChat, kind: str, agent_id: str | None, **detail: str) -> None:
        at, agent = utcnow(), int(agent_id) if agent_id is not None else None
        self._writes.put(lambda db: store.add_event(db, chat.id, chat.tenant_id, kind, agent, detail, at))



def _seq(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

