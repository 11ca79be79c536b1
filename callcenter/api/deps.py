"""Shared dependencies: app context, DB session, authentication and role checks."""

from __future__ import annotations

import logging

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Depends, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from callcenter.api.browser_security import origin_allowed
from callcenter.api.errors import ApiError, forbidden, not_authenticated, not_found
from callcenter.bans import BanService
from callcenter.models import PLATFORM_SLUG, TENANT_ROLES, Base, Role
from callcenter.security import COOKIE_NAME, Principal, resolve_session
from callcenter.settings import Settings

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from callcenter.acd_service import AcdService


def _no_status() -> dict[str, Any]:
    return {}


def _no_op() -> None:
    return None


@dataclass
class AppContext:
    """What the HTTP API needs from the node."""

    settings: Settings
    engine: Engine
    node_status: Callable[[], dict[str, Any]] = _no_status
    """Live figures from the SIP node, e.g. {"active_calls": 3, "trunks": {1: "up"}}."""
    on_routing_changed: Callable[[], None] = _no_op
    """Called after trunk/number/tenant-routing changes are committed."""
    acd: Any = None
    """The node's ``AcdService`` (live agent states and queue statistics); None without a SIP node."""
    on_acd_changed: Callable[[], None] = _no_op
    """Called after queues or agents change, so the live ACD reloads them."""
    softphones: Any = None
    """The node's ``SoftphoneService`` (agents' browser tabs); None without a SIP node."""
    test_calls: Any = None
    """The node's ``TestCallService`` (admins calling a flow from the console); None without a SIP node."""
    recordings: Any = None
    """The node's ``RecordingService`` (live recordings: pause, resume); None without a SIP node."""
    recording_archive: Any = None
    """Recording storage and tenant keys for playback; None: the node's, or made from settings."""
    bus: Any = None
    """The node's ``EventBus`` (the ACD's events per tenant, for the supervisor's live view); None without one."""
    monitors: Any = None
    """The node's ``MonitorService`` (supervisors listening, whispering, barging); None without a SIP node."""
    owners: Any = None
    """The node's ``TenantOwners`` (which node hosts a tenant's queues and sessions); None: every tenant here."""
    tenant_calls: Any = None
    """The node's ``TenantCalls`` (each tenant's calls in progress, cluster-wide); None without a SIP node."""
    campaigns: Any = None
    """The node's ``CampaignService`` (the campaigns' calls in progress); None without a SIP node."""
    chats: Any = None
    """The node's ``ChatService`` (web chats: visitors' conversations); None without a SIP node."""
    bans: BanService | None = None
    """Failed sign-ins and bans; None: one of its own (an API without the SIP node)."""
    sessions: sessionmaker[Session] = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        if self.bans is None:
            self.bans = BanService(self.engine, self.settings)


def live_acd(ctx: AppContext) -> AcdService:
    """The node's ACD, or 503 where the API runs without the SIP node."""
    if ctx.acd is None:
        raise ApiError(503, "acd-unavailable", "the ACD runs on the SIP node; it is not running here")
    acd: AcdService = ctx.acd
    return acd


def get_ctx(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def get_db(ctx: AppContext = Depends(get_ctx)) -> Iterator[Session]:
    """One session per request; the endpoint commits what it writes."""
    with ctx.sessions() as session:
        yield session


def _token_from(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise not_authenticated()
        return token.strip()
    return request.cookies.get(COOKIE_NAME) or None


def current_principal(request: Request, db: Session = Depends(get_db)) -> Principal:
    """The authenticated caller (bearer token first, then the session cookie), or 401."""
    token = _token_from(request)
    if token is None:
        raise not_authenticated()
    principal = resolve_session(db, token)
    if principal is None:
        raise not_authenticated()
    return principal


def _socket_principal(ctx: AppContext, token: str) -> Principal | None:
    with ctx.sessions() as db:
        return resolve_session(db, token)


def socket_token(ws: WebSocket) -> str:
    """The session token a WebSocket handshake carries (bearer header first, then the cookie)."""
    header = ws.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ws.cookies.get(COOKIE_NAME, "")


async def socket_principal(ws: WebSocket) -> Principal | None:
    """Who opens a WebSocket (session cookie or bearer token), or None once it is refused:
    a foreign Origin is refused at the handshake (HTTP 403, cross-site WebSocket hijacking),
    no valid session is accepted then closed with 4401 so the page can tell why. The
    socket is not accepted yet when a principal is returned."""
    ctx: AppContext = ws.app.state.ctx
    if not origin_allowed(ws, ctx.settings):
        log.warning("WebSocket from a foreign origin refused", extra={"origin": ws.headers.get("origin", "")[:200],
                                                                     "path": ws.url.path})
        await ws.close(code=1008)  # before accept: the handshake gets 403
        return None
    token = socket_token(ws)
    principal = await run_in_threadpool(_socket_principal, ctx, token) if token else None
    if principal is None:
        await ws.accept()
        await ws.close(code=4401, reason="not authenticated")
    return principal


ALL_ROLES: tuple[str, ...] = tuple(r.value for r in TENANT_ROLES)
"""The four roles of a customer tenant's users; the operator holds none of them (403 everywhere else)."""


def require_roles(*roles: str) -> Callable[..., Principal]:
    """Dependency: the caller, if authenticated (401) and holding one of ``roles`` (403)."""
    unknown = set(roles) - {r.value for r in Role}
    if unknown or not roles:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    allowed = frozenset(roles)

    def _check(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.role not in allowed:
            raise forbidden()
        return principal

    _check.role_check = allowed  # type: ignore[attr-defined]
    return _check


def require_operator(principal: Principal = Depends(current_principal)) -> Principal:
    """Dependency: an operator of the platform tenant (401 unauthenticated, 403 any tenant's user)."""
    if principal.role != Role.OPERATOR.value or principal.tenant_slug != PLATFORM_SLUG:
        raise forbidden()
    return principal


require_operator.role_check = frozenset({Role.OPERATOR.value})  # type: ignore[attr-defined]


def public() -> None:
    """Marks an endpoint as deliberately unauthenticated (healthz, metrics, login)."""


public.role_check = frozenset()  # type: ignore[attr-defined]


M = TypeVar("M", bound=Base)


def get_owned(db: Session, model: type[M], obj_id: int, principal: Principal, kind: str) -> M:
    """Row ``obj_id`` of ``model`` in the caller's tenant, else 404 (never 403)."""
    obj = db.execute(
        select(model).where(model.id == obj_id, model.tenant_id == principal.tenant_id)  # type: ignore[attr-defined]
    ).scalar_one_or_none()
    if obj is None:
        raise not_found(kind)
    return obj
