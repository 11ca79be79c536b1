"""Users of the caller's tenant (admin only). Passwords are argon2-hashed and never returned."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.api.audit import record_audit
from callcenter.api.bounds import DbId
from callcenter.api.deps import get_db, get_owned, require_roles
from callcenter.api.errors import conflict, invalid
from callcenter.models import Role, User, utcnow
from callcenter.security import Principal, hash_password, revoke_user_sessions

router = APIRouter(prefix="/api/users", tags=["users"])

USERNAME_PATTERN = r"^[A-Za-z0-9._@-]{1,100}$"
MIN_PASSWORD = 8
admin = require_roles("admin")
TenantRole = Literal["admin", "supervisor", "agent", "qa"]
"""``models.TENANT_ROLES``: an admin never makes an operator (the platform's, in its own tenant)."""


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=MIN_PASSWORD, max_length=1024)
    role: TenantRole
    active: bool = True


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(default=None, min_length=MIN_PASSWORD, max_length=1024)
    role: TenantRole | None = None
    active: bool | None = None


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    active: bool
    created_at: datetime


def _out(u: User) -> UserOut:
    return UserOut(id=u.id, username=u.username, role=u.role, active=u.active, created_at=u.created_at)


@router.get("", response_model=list[UserOut])
def list_users(principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> list[UserOut]:
    rows = db.scalars(select(User).where(User.tenant_id == principal.tenant_id).order_by(User.username)).all()
    return [_out(u) for u in rows]


@router.get("/{user_id}", response_model=UserOut)
def get_user(user_id: DbId, principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> UserOut:
    return _out(get_owned(db, User, user_id, principal, "user"))


@router.post("", response_model=UserOut, status_code=201)
def create_user(body: UserCreate, principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> UserOut:
    if db.scalar(select(User.id).where(User.tenant_id == principal.tenant_id, User.username == body.username)):
        raise conflict("username-taken", "a user with this username exists")
    user = User(
        tenant_id=principal.tenant_id,
        username=body.username,
        password_hash=hash_password(body.password),
        role=body.role,
        active=body.active,
        created_at=utcnow(),
    )
    db.add(user)
    db.flush()
    record_audit(
        db, principal, "user.create", f"user:{user.id}",
        {"username": user.username, "role": user.role, "active": user.active},
    )
    db.commit()
    return _out(user)


@router.patch("/{user_id}", response_model=UserOut)
def patch_user(
    user_id: DbId, body: UserPatch, principal: Principal = Depends(admin), db: Session = Depends(get_db)
) -> UserOut:
    """Change password, role or active flag; password change or deactivation ends the user's sessions."""
    user = get_owned(db, User, user_id, principal, "user")
    changes = body.model_dump(exclude_unset=True)
    if any(v is None for v in changes.values()):
        raise invalid("fields cannot be null")
    if user.id == principal.user_id and (changes.get("active") is False or changes.get("role", Role.ADMIN) != Role.ADMIN):
        raise conflict("cannot-demote-self", "an admin cannot deactivate or demote themselves")
    detail: dict[str, object] = {}
    if "password" in changes:
        user.password_hash = hash_password(changes["password"])
        detail["password_changed"] = True
    if "role" in changes:
        user.role = changes["role"]
        detail["role"] = user.role
    if "active" in changes:
        user.active = changes["active"]
        detail["active"] = user.active
    if "password" in changes or changes.get("active") is False:
        revoke_user_sessions(db, user.id)
    record_audit(db, principal, "user.update", f"user:{user.id}", detail)
    db.commit()
    return _out(user)


@router.delete("/{user_id}", status_code=204)
def delete_user(user_id: DbId, principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> Response:
    user = get_owned(db, User, user_id, principal, "user")
    if user.id == principal.user_id:
        raise conflict("cannot-delete-self", "an admin cannot delete themselves")
    record_audit(db, principal, "user.delete", f"user:{user.id}", {"username": user.username})
    db.delete(user)
    db.commit()
    return Response(status_code=204)
