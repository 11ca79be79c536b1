"""Login, logout and the current user."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.api.audit import record_audit
from callcenter.api.deps import ALL_ROLES, AppContext, get_ctx, get_db, public, require_roles
from callcenter.api.errors import ApiError
from callcenter.models import Role, Tenant, TenantStatus, User
from callcenter.security import COOKIE_NAME, SESSION_TTL, Principal, authenticate, create_session, revoke_session

router = APIRouter(prefix="/api", tags=["auth"])
signed_in = require_roles(*ALL_ROLES, Role.OPERATOR.value)
"""Any user, the operators included (their own session and language, nothing of a tenant)."""


class LoginIn(BaseModel):
    tenant: str = Field(min_length=1, max_length=64, description="tenant slug")
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1024)


class UserBrief(BaseModel):
    id: int
    username: str
    role: str
    locale: str | None = None
    """The user's page language (``zh-CN`` or ``en``); None: the browser's."""


class TenantBrief(BaseModel):
    id: int
    slug: str
    name: str
    timezone: str
    """IANA time zone the pages show times in."""


class LoginOut(BaseModel):
    token: str
    user: UserBrief
    tenant: TenantBrief
    role: str


class MeOut(BaseModel):
    user: UserBrief
    tenant: TenantBrief
    role: str


class MePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    locale: Literal["zh-CN", "en"] | None = Field(description="the page language; null: the browser's")


def _me(user: User, tenant: Tenant) -> MeOut:
    return MeOut(user=UserBrief(id=user.id, username=user.username, role=user.role, locale=user.locale),
                 tenant=TenantBrief(id=tenant.id, slug=tenant.slug, name=tenant.name, timezone=tenant.timezone),
                 role=user.role)


@router.post("/login", response_model=LoginOut, dependencies=[Depends(public)],
             responses={429: {"description": "too many failed sign-ins for this account from this address"}})
def login(body: LoginIn, request: Request, response: Response, db: Session = Depends(get_db),
          ctx: AppContext = Depends(get_ctx)) -> LoginOut:
    """Check credentials, open a session: sets the ``cc_session`` cookie and returns the token.

    Wrong passwords are counted per address and per (address, account): past the ``ban_*``
    settings the address (or that account from it) gets 429 with Retry-After, even for the
    right password, while the same account signs in from anywhere else."""
    bans = ctx.bans
    assert bans is not None
    source = request.client.host if request.client is not None else "unknown"
    account = f"{body.tenant}/{body.username}"
    ban = bans.login_blocked(source, account)
    if ban is not None:
        wait = ban.retry_after(bans.clock())
        raise ApiError(429, "too-many-attempts", "too many failed sign-ins from this address; "
                       f"try again in {wait} seconds", {"Retry-After": str(wait)}, retry_after=wait)
    found = authenticate(db, body.tenant, body.username, body.password)
    if found is None:
        tenant_id = db.scalar(select(Tenant.id).where(Tenant.slug == body.tenant))
        bans.login_failed(source, account, tenant_id)
        raise ApiError(401, "invalid-credentials", "unknown tenant, username or password")
    bans.login_succeeded(source, account)
    user, tenant = found
    if tenant.status == TenantStatus.SUSPENDED.value:  # the right password: saying so leaks nothing
        raise ApiError(403, "tenant-suspended", "this company's account is suspended; contact the platform operator")
    token = create_session(db, user)
    principal = Principal(user.id, user.username, user.role, tenant.id, tenant.slug, "")
    record_audit(db, principal, "login", f"user:{user.id}")
    db.commit()
    # Strict: no other site can make the browser send it (cross-site requests, WebSockets);
    # Secure whenever the page came over HTTPS (directly or through a trusted proxy).
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=int(SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    me = _me(user, tenant)
    return LoginOut(token=token, user=me.user, tenant=me.tenant, role=me.role)


@router.post("/logout", status_code=204)
def logout(
    request: Request,
    principal: Principal = Depends(signed_in),
    db: Session = Depends(get_db),
) -> Response:
    """End the current session (the token stops working) and clear the cookie."""
    revoke_session(db, principal.token_hash)
    db.commit()
    response = Response(status_code=204)
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response


@router.get("/me", response_model=MeOut)
def me(principal: Principal = Depends(signed_in), db: Session = Depends(get_db)) -> MeOut:
    """The authenticated user (with their page language) and tenant (with its time zone)."""
    user = db.get(User, principal.user_id)
    tenant = db.get(Tenant, principal.tenant_id)
    assert user is not None and tenant is not None  # the session join guarantees both
    return _me(user, tenant)


@router.patch("/me", response_model=MeOut)
def patch_me(body: MePatch, principal: Principal = Depends(signed_in), db: Session = Depends(get_db)) -> MeOut:
    """Store the user's page language (every role may set their own)."""
    user = db.get(User, principal.user_id)
    tenant = db.get(Tenant, principal.tenant_id)
    assert user is not None and tenant is not None
    user.locale = body.locale
    db.commit()
    return _me(user, tenant)
