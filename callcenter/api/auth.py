"""Login, logout and the current user."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.api.audit import record_audit
from callcenter.api.deps import ALL_ROLES, AppContext, get_ctx, get_db, public, require_roles
from callcenter.api.errors import ApiError
from callcenter.models import Tenant, User
from callcenter.security import COOKIE_NAME, SESSION_TTL, Principal, authenticate, create_session, revoke_session

router = APIRouter(prefix="/api", tags=["auth"])


class LoginIn(BaseModel):
    tenant: str = Field(min_length=1, max_length=64, description="tenant slug")
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1024)


class UserBrief(BaseModel):
    id: int
    username: str
    role: str


class TenantBrief(BaseModel):
    id: int
    slug: str
    name: str


class LoginOut(BaseModel):
    token: str
    user: UserBrief
    tenant: TenantBrief
    role: str


class MeOut(BaseModel):
    user: UserBrief
    tenant: TenantBrief
    role: str


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
    return LoginOut(
        token=token,
        user=UserBrief(id=user.id, username=user.username, role=user.role),
        tenant=TenantBrief(id=tenant.id, slug=tenant.slug, name=tenant.name),
        role=user.role,
    )


@router.post("/logout", status_code=204)
def logout(
    request: Request,
    principal: Principal = Depends(require_roles(*ALL_ROLES)),
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
def me(principal: Principal = Depends(require_roles(*ALL_ROLES)), db: Session = Depends(get_db)) -> MeOut:
    """The authenticated user and tenant."""
    user = db.get(User, principal.user_id)
    tenant = db.get(Tenant, principal.tenant_id)
    assert user is not None and tenant is not None  # the session join guarantees both
    return MeOut(
        user=UserBrief(id=user.id, username=user.username, role=user.role),
        tenant=TenantBrief(id=tenant.id, slug=tenant.slug, name=tenant.name),
        role=user.role,
    )
