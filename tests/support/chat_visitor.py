"""A web chat visitor speaking the widget's protocol (README "Web chat"): opens a conversation,
holds its socket, resumes after the last message it has, and keeps every message by seq."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

DEMO_WIDGET_KEY = "wk_demo"


class Visitor:
    def __init__(self, http_base: str, key: str = DEMO_WIDGET_KEY) -> None:
        self.http_base = http_base.rstrip("/")
        self.key = key
        self.token = ""
        self.conversation_id = ""
        self.visitor_id: str | None = None
        #: every message received, by seq (a duplicate would overwrite: see ``received``)
        self.messages: dict[int, dict[str, Any]] = {}
        #: seqs in the order they arrived (duplicates included)
        self.received: list[int] = []
        self.ws: ClientConnection | None = None
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        #: the node's error messages (a test failing on a missing message shows them)
        self.errors: list[dict[str, Any]] = []
        #: client_id -> text of what this visitor sent (sent again after each reconnect until it
        #: comes back with its seq, as the widget does: a message may die in a dropped connection)
        self.outbox: dict[str, str] = {}

    async def open(self, question: str, *, name: str = "张三", phone: str = "13800138000",
                   locale: str = "zh-CN") -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.http_base, timeout=10) as http:
            reply = await http.post("/api/chat/conversations", json={
                "key": self.key, "name": name, "phone": phone, "question": question, "locale": locale,
                "page_url": "http://shop.example/", **({"visitor_id": self.visitor_id} if self.visitor_id else {})})
        if reply.status_code == 201:
            body = reply.json()
            self.token, self.conversation_id, self.visitor_id = body["token"], body["conversation_id"], body["visitor_id"]
        return reply

    @property
    def last_seq(self) -> int:
        return max(self.messages, default=0)

    async def connect(self) -> dict[str, Any]:
        """Opens the socket, resuming after the last message held; returns the welcome."""
        url = (self.http_base.replace("http", "ws", 1) + f"/api/chat/socket?token={self.token}&after={self.last_seq}")
        self.ws = await connect(url)
        self._reader = asyncio.ensure_future(self._read(self.ws))
        self._pinger = asyncio.ensure_future(self._ping(self.ws))
        welcome = await self.expect("welcome")
        self._keep(welcome["messages"])
        echoed = {m["client_id"] for m in self.messages.values()}
        for client_id, text in self.outbox.items():
            if client_id not in echoed:
                await self.send(text, client_id)
        return welcome

    def _keep(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self.received.append(message["seq"])
            self.messages[message["seq"]] = message

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "message":
                    self._keep([message["message"]])
                elif message["type"] == "error":
                    self.errors.append(message)
                await self._inbox.put(message)
        except ConnectionClosed:
            pass

    @staticmethod
    async def _ping(ws: ClientConnection) -> None:
        """As the widget does: the node counts a socket silent for 30 s as gone."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(10)
                await ws.send(json.dumps({"type": "ping"}))

    async def send(self, text: str, client_id: str | None = None) -> str:
        client_id = client_id or uuid.uuid4().hex
        self.outbox[client_id] = text
        assert self.ws is not None
        await self.ws.send(json.dumps({"type": "send", "text": text, "client_id": client_id}))
        return client_id

    async def request(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(message))

    async def expect(self, kind: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                message = await self._inbox.get()
                if message.get("type") == kind and all(message.get(k) == v for k, v in fields.items()):
                    return message

    async def text_arrives(self, text: str, timeout: float = 10.0) -> dict[str, Any]:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    found = next((m for m in self.messages.values() if m["text"] == text), None)
                    if found is not None:
                        return found
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(f"{text!r} never arrived; errors {self.errors}, held {self.messages}") from None

    async def drop(self) -> None:
        """The connection is gone (the network, not a goodbye)."""
        for task in (self._reader, self._pinger):
            if task is not None:
                task.cancel()
        if self.ws is not None:
            self.ws.transport.abort()  # type: ignore[attr-defined]
            self.ws = None

    async def close(self) -> None:
        for task in (self._reader, self._pinger):
            if task is not None:
                task.cancel()
        if self.ws is not None:
            await self.ws.close()
