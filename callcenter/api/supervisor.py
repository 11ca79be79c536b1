"""The supervisor's live view: the wallboard page (``/supervisor``), its snapshot, its WebSocket,
per-queue thresholds, today's customer satisfaction and logging an agent out.

Figures come from the node's ACD (``callcenter.wallboard.snapshot``, Amazon Connect metric names);
the WebSocket pushes a fresh snapshot within ``COALESCE`` seconds of each ACD event of the
caller's tenant (bursts are merged), and every ``REFRESH`` seconds so that ages keep ticking.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.applications import Starlette

from callcenter import csat
from callcenter.api.audit import record_audit
from callcenter.api.bounds import DbId, Name
from callcenter.api.deps import (AppContext, get_ctx, get_db, get_owned, live_acd, public, require_roles,
                                 socket_principal)
from callcenter.api.errors import invalid, not_found
from callcenter.api.socket_proxy import relayed
from callcenter.db_health import database_unavailable
from callcenter.models import AcdQueue, Agent, Role, Tenant
from callcenter.monitoring import MonitorError, MonitorService, SupervisorTab
from callcenter.security import Principal
from callcenter.tenancy import valid_timezone
from callcenter.wallboard import Thresholds, ThresholdStore, snapshot
from softphone_web.ice import ice_servers
from softphone_web.rtc import OfferError, answer_offer

router = APIRouter(tags=["supervisor"])
watchers = require_roles("admin", "supervisor")

WEB = Path(__file__).resolve().parent.parent / "web"
ASSETS = frozenset({"supervisor.js", "supervisor.css", "charts.js", "monitor.js"})
SUPERVISOR_ROLES = frozenset({Role.ADMIN.value, Role.SUPERVISOR.value})

COALESCE = 0.25
"""At most one push per this many seconds while events keep coming."""
REFRESH = 2.0
"""Seconds between pushes when nothing happens (waiting ages, times in state)."""

#: tenant -> wake-up events of its open sockets (thresholds changed through the API)
_kicks: dict[int, set[asyncio.Event]] = {}


def _store(app: Starlette) -> ThresholdStore:
    store = getattr(app.state, "wallboard_thresholds", None)
    if store is None:
        ctx: AppContext = app.state.ctx
        store = ThresholdStore(ctx.engine)
        app.state.wallboard_thresholds = store
    return store


def _snapshot(app: Starlette, tenant_id: int) -> dict[str, Any]:
    ctx: AppContext = app.state.ctx
    return snapshot(ctx.acd, tenant_id, _store(app).get(tenant_id), time.time(), ctx.tenant_calls)


# -- page ------------------------------------------------------------------------------------
@router.get("/supervisor", dependencies=[Depends(public)], include_in_schema=False)
def supervisor_page() -> FileResponse:
    """The wallboard page; it logs in through the API (the page itself holds no data)."""
    return FileResponse(WEB / "supervisor.html", headers={"Cache-Control": "no-cache"})


@router.get("/supervisor/static/{name}", dependencies=[Depends(public)], include_in_schema=False)
def supervisor_asset(name: str) -> FileResponse:
    if name not in ASSETS or not re.fullmatch(r"[a-z]+\.(js|css)", name) or not (WEB / name).is_file():
        raise not_found("file")
    return FileResponse(WEB / name, headers={"Cache-Control": "no-cache"})


# -- API -------------------------------------------------------------------------------------
@router.get("/api/supervisor/metrics")
async def metrics(request: Request, principal: Principal = Depends(watchers)) -> dict[str, Any]:
    """The tenant's live queues (Amazon Connect metric names), agents and waiting calls."""
    await run_in_threadpool(_store(request.app).get, principal.tenant_id)  # first read of the file off the loop
    return _snapshot(request.app, principal.tenant_id)


@router.get("/api/supervisor/csat")
def today_csat(tz: str | None = Query(default=None, max_length=64, description="IANA zone of 'today'; "
                                                                             "default: the tenant's"),
               principal: Principal = Depends(watchers), db: Session = Depends(get_db)) -> dict[str, Any]:
    """Today's customer satisfaction (ratings given since local midnight): ``CSAT_AVERAGE`` and
    ``CSAT_RESPONSES`` overall, per channel and per queue (``callcenter.csat.today_csat``)."""
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    zone = tz or tenant.timezone
    if not valid_timezone(zone):
        raise invalid(f"unknown time zone {zone!r}")
    return csat.today_csat(db, principal.tenant_id, zone)


class ThresholdsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    OLDEST_CONTACT_AGE: float | None = Field(default=None, gt=0, le=86_400, description="seconds; null: off")
    SERVICE_LEVEL: float | None = Field(default=None, gt=0, le=100, description="%; null: off")


def _save_thresholds(ctx: AppContext, store: ThresholdStore, principal: Principal, queue: str,
                     body: ThresholdsIn) -> None:
    with ctx.sessions() as db:
        if db.scalar(select(AcdQueue.id).where(AcdQueue.tenant_id == principal.tenant_id,
                                               AcdQueue.name == queue)) is None:
            raise not_found("queue")
        store.put(principal.tenant_id, queue, Thresholds(**body.model_dump()))
        record_audit(db, principal, "wallboard.thresholds", f"queue:{queue}", body.model_dump())
        db.commit()


@router.get("/api/supervisor/thresholds")
async def get_thresholds(request: Request, principal: Principal = Depends(watchers)) -> dict[str, Any]:
    """Thresholds of the tenant's queues (those never set have the defaults)."""
    return {q["queue"]: q["thresholds"] for q in _snapshot(request.app, principal.tenant_id)["queues"]}


@router.put("/api/supervisor/thresholds/{queue}")
async def put_thresholds(queue: Name, body: ThresholdsIn, request: Request, principal: Principal = Depends(watchers),
                         ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Longest wait (s) and service level (%) beyond which the queue's tile turns red; null: off."""
    await run_in_threadpool(_save_thresholds, ctx, _store(request.app), principal, queue, body)
    for kick in _kicks.get(principal.tenant_id, ()):
        kick.set()
    return {"queue": queue, **body.model_dump()}


def _logout_target(ctx: AppContext, principal: Principal, agent_id: int) -> None:
    with ctx.sessions() as db:
        agent = get_owned(db, Agent, agent_id, principal, "agent")
        record_audit(db, principal, "agent.logout", f"agent:{agent.id}", {})
        db.commit()


@router.post("/api/supervisor/agents/{agent_id}/logout")
async def logout_agent(agent_id: DbId, principal: Principal = Depends(watchers),
                       ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Log an agent of the tenant out (offline; after the call in progress, if any)."""
    acd = live_acd(ctx)
    await run_in_threadpool(_logout_target, ctx, principal, agent_id)
    acd.request_state(principal.tenant_id, str(agent_id), "offline", "supervisor")
    view = acd.agent_view(principal.tenant_id, str(agent_id))
    return {"agent_id": str(agent_id), "state": view.state.value if view else None,
            "pending": view.pending.value if view and view.pending else None}


# -- WebSocket -------------------------------------------------------------------------------
@router.websocket("/api/supervisor/ws")
async def supervisor_socket(ws: WebSocket) -> None:
    """Snapshots pushed to a wallboard (messages ``{"type": "snapshot", ...}``), and the
    signalling of listen, whisper and barge (README "Supervisor protocol").

    The socket opens with ``{"type": "hello", "ice_servers": [...], "break_reasons": [...]}``.
    Authenticated like the softphone's socket (session cookie or bearer token); a refused
    socket is accepted and closed at once with 4401 (not authenticated) or 4403 (not a
    supervisor or admin). Each snapshot carries ``trigger``: how many ACD events it answers
    and when the first of them happened (``first_at``, wall-clock seconds), null for a
    periodic refresh or the first snapshot.
    """
    ctx: AppContext = ws.app.state.ctx
    principal = await socket_principal(ws)
    if principal is None or await relayed(ws, principal.tenant_id):
        return
    await ws.accept()
    if principal.role not in SUPERVISOR_ROLES:
        await ws.close(code=4403, reason="only supervisors and admins see the wallboard")
        return
    tenant_id = principal.tenant_id
    await run_in_threadpool(_store(ws.app).get, tenant_id)
    kick = asyncio.Event()
    _kicks.setdefault(tenant_id, set()).add(kick)
    bus = ctx.bus
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    tab = SupervisorTab(tenant_id, principal.user_id, principal.username, outbox.put_nowait)
    try:
        async with contextlib.AsyncExitStack() as stack:
            sub = await stack.enter_async_context(bus.subscribe(tenant_id)) if bus is not None else None
            writer = asyncio.ensure_future(_write(ws, outbox))
            stack.callback(writer.cancel)
            reader = asyncio.ensure_future(_read(ws, ctx, principal, tab))
            stack.callback(reader.cancel)
            tab.send({"type": "hello", "ice_servers": ice_servers(ctx.settings, principal.username),
                      "break_reasons": await run_in_threadpool(_break_reasons, ctx, tenant_id)})
            _push(ws, tab, None)
            last = time.monotonic()
            while not reader.done() and not writer.done():
                first_at, count = await _next_trigger(sub, kick, reader)
                if reader.done():
                    break
                if ctx.owners is not None and not ctx.owners.local(tenant_id) and tab.monitor is None:
                    # the tenant moved to another node (a cluster): the page reconnects there
                    await ws.close(code=1012, reason="your tenant moved to another node; reconnecting")
                    break
                if count:  # merge a burst: wait out the rest of the coalescing window
                    delay = COALESCE - (time.monotonic() - last)
                    if delay > 0:
                        await asyncio.sleep(delay)
                    count += _drain(sub)
                _push(ws, tab, {"events": count, "first_at": first_at} if count else None)
                last = time.monotonic()
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    finally:
        _kicks.get(tenant_id, set()).discard(kick)
        if ctx.monitors is not None:
            await ctx.monitors.close(tab)


def _break_reasons(ctx: AppContext, tenant_id: int) -> list[str]:
    with ctx.sessions() as db:
        tenant = db.get(Tenant, tenant_id)
        return list(tenant.break_reasons or []) if tenant is not None else []


def _push(ws: WebSocket, tab: SupervisorTab, trigger: dict[str, Any] | None) -> None:
    tab.send({"type": "snapshot", "trigger": trigger, **_snapshot(ws.app, tab.tenant_id)})


async def _write(ws: WebSocket, outbox: asyncio.Queue[dict[str, Any]]) -> None:
    """The socket's only sender: snapshots, answers and monitor news, in order."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while True:
            await ws.send_text(json.dumps(await outbox.get()))


async def _read(ws: WebSocket, ctx: AppContext, principal: Principal, tab: SupervisorTab) -> None:
    """Requests from the page until it goes away; a refused one is answered ``{"type": "error"}``."""
    while True:
        try:
            message = json.loads(await ws.receive_text())
        except (ValueError, RecursionError):  # not JSON, or nested too deep for the parser (a RuntimeError)
            continue
        except (WebSocketDisconnect, RuntimeError):
            return
        if not isinstance(message, dict):
            continue
        kind = message.get("type")
        try:
            await _handle(ctx, principal, tab, kind, message)
        except MonitorError as exc:
            tab.send({"type": "error", "error_id": exc.error_id, "params": exc.params, "message": str(exc),
                      "ref": kind})
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            if tab.monitor is not None and ctx.monitors is not None:  # no monitoring the audit log does not show
                ctx.monitors.end(tab.monitor, "stopped")
            tab.send({"type": "error", "error_id": "database-unavailable", "params": {},
                      "message": "database unavailable: try again in a moment", "ref": kind})


async def _handle(ctx: AppContext, principal: Principal, tab: SupervisorTab, kind: Any,
                  message: dict[str, Any]) -> None:
    if kind == "ping":
        tab.send({"type": "pong", "t": message.get("t")})
        return
    monitors: MonitorService | None = ctx.monitors
    if kind not in ("rtc_offer", "monitor", "monitor_stop"):
        raise MonitorError(f"unknown message type {kind!r}", "unknown-message")
    if monitors is None:
        raise MonitorError("calls can only be monitored on the SIP node", "no-sip-node")
    if kind == "rtc_offer":
        try:
            line, answer = await answer_offer(str(message.get("sdp", "")),
                                              ice_servers(ctx.settings, principal.username),
                                              label=f"supervisor-{principal.username}")
        except OfferError as exc:
            raise MonitorError(str(exc), "audio-failed") from exc
        await monitors.attach_line(tab, line)
        tab.send({"type": "rtc_answer", "sdp": answer})
    elif kind == "monitor":
        call_id, mode = str(message.get("call_id", "")), str(message.get("mode", ""))
        before = tab.monitor.mode if tab.monitor is not None and tab.monitor.call_id == call_id else None
        monitor = monitors.monitor(tab, call_id, mode)
        if monitor.mode != before:  # every start and every switch is audited
            await run_in_threadpool(_audit_monitor, ctx, principal, call_id, mode, monitor.connection.agent_id)
            ctx.acd.notes.record_event(tab.tenant_id, call_id, "monitor", None,
                                       {"mode": mode, "supervisor": principal.username})
    elif tab.monitor is not None:
        monitors.end(tab.monitor, "stopped")


def _audit_monitor(ctx: AppContext, principal: Principal, call_id: str, mode: str, agent_id: str) -> None:
    with ctx.sessions() as db:
        record_audit(db, principal, f"call.{mode}", f"call:{call_id}", {"agent_id": agent_id})
        db.commit()


async def _next_trigger(sub: Any, kick: asyncio.Event, reader: asyncio.Future[None]) -> tuple[float | None, int]:
    """Waits for an ACD event, a kick or ``REFRESH`` seconds; returns (first event's time, events)."""
    waits: list[asyncio.Future[Any]] = [reader, asyncio.ensure_future(kick.wait())]
    getter = asyncio.ensure_future(sub.get()) if sub is not None else None
    if getter is not None:
        waits.append(getter)
    try:
        await asyncio.wait(waits, timeout=REFRESH, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for fut in waits[1:]:
            if not fut.done():
                fut.cancel()
    kick.clear()
    if getter is not None and getter.done() and not getter.cancelled():
        event = getter.result()
        return getattr(event, "at", time.time()), 1
    return None, 0


def _drain(sub: Any) -> int:
    count = 0
    while sub is not None and not sub.queue.empty():
        sub.queue.get_nowait()
        count += 1
    return count
