"""A tab's WebSocket relayed to the node that hosts its tenant (a cluster; see ``tenant_owners.py``).

Agents and supervisors may open their socket on any node. The tenant's queues, offers and calls
live on its owner, so a node that is not the owner checks the handshake itself (origin, session,
role: the caller of :func:`relay` did) and then relays the socket to the owner, message for
message, authenticated by the user's own session token (shared in the database). WebRTC offers
and answers pass through like any message, so the browser's media goes straight to the owner;
this node carries signalling only. When the tenant's owner changes, the old owner closes the
socket with 1012 (service restart: ``SoftphoneService.tenant_moved``), once the agent's call with
it is over, and the page reconnects, to whichever node, and so reaches the new owner; an owner
that dies closes it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import websockets
from starlette.websockets import WebSocket, WebSocketDisconnect

from callcenter.api.deps import socket_token
from callcenter.handover import NodeAddress

logger = logging.getLogger(__name__)

#: Seconds to open the socket to the owner.
OPEN_TIMEOUT = 5.0
#: Largest message relayed (the pages' own limit is far lower; SDP with candidates fits).
MAX_MESSAGE = 1 << 20


def owner_socket_url(owner: NodeAddress, path: str) -> str:
    base = owner.http.rstrip("/")
    return ("wss://" + base[len("https://"):] if base.startswith("https://")
            else "ws://" + base.removeprefix("http://")) + path


async def relay(ws: WebSocket, token: str, owner: NodeAddress) -> None:
    """Accept ``ws`` and relay it to the same path on ``owner`` until either side closes (the
    owner closes it when the tenant moves on, or dies with it). An owner that cannot be
    reached: closed with 1013 (try again)."""
    url = owner_socket_url(owner, ws.url.path + (f"?{ws.url.query}" if ws.url.query else ""))
    try:
        upstream = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"},
                                            open_timeout=OPEN_TIMEOUT, max_size=MAX_MESSAGE)
    except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
        logger.warning("owner node unreachable for a relayed socket: %s", exc, extra={"node": owner.node_id})
        await ws.accept()
        await ws.close(code=1013, reason="the node hosting your tenant cannot be reached; try again")
        return
    await ws.accept()
    logger.info("socket relayed to the owner node", extra={"node": owner.node_id, "path": ws.url.path})

    async def down() -> tuple[int, str]:
        try:
            async for message in upstream:
                if isinstance(message, bytes):
                    await ws.send_bytes(message)
                else:
                    await ws.send_text(message)
        except websockets.ConnectionClosed:
            pass
        return upstream.close_code or 1000, upstream.close_reason or ""

    async def up() -> tuple[int, str]:
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return int(message.get("code", 1000)), ""
                if message.get("text") is not None:
                    await upstream.send(message["text"])
                elif message.get("bytes") is not None:
                    await upstream.send(message["bytes"])
        except (WebSocketDisconnect, websockets.ConnectionClosed):
            return 1000, ""

    from_owner, from_tab = asyncio.ensure_future(down()), asyncio.ensure_future(up())
    waits: set[asyncio.Future[Any]] = {from_owner, from_tab}
    done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in waits:
        task.cancel()
    with contextlib.suppress(Exception):
        await upstream.close()
    if from_tab in done:
        return  # the tab left: nothing to tell it
    if not from_owner.cancelled() and from_owner.exception() is None:
        code, reason = from_owner.result()
    else:
        code, reason = 1011, ""
    with contextlib.suppress(Exception):
        await ws.close(code=code if 1000 <= code < 5000 and code not in (1005, 1006, 1015) else 1011, reason=reason)


async def relayed(ws: WebSocket, tenant_id: int) -> bool:
    """Relay ``ws`` to the node hosting ``tenant_id`` if that is not this node (then True, once the
    relay is over); False: this node hosts it, serve the socket here."""
    owners = ws.app.state.ctx.owners
    if owners is None or owners.local(tenant_id):
        return False
    owner = await owners.owner(tenant_id)
    if owner is None:
        await ws.accept()
        await ws.close(code=1013, reason="no node hosts your tenant right now (a takeover); try again")
        return True
    await relay(ws, socket_token(ws), owner)
    return True
