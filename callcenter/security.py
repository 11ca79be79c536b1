"""Password hashing (argon2id) and login sessions (random tokens stored as sha256)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from callcenter.models import ApiToken, Tenant, TenantStatus, User, utcnow

COOKIE_NAME = "cc_session"
SESSION_TTL = timedelta(hours=12)
TOKEN_BYTES = 32
GENERATED_PASSWORD_BYTES = 12

_hasher = PasswordHasher()
# Verified against when the username does not exist, so a miss costs as much as a hit
# and response time does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """argon2id hash (PHC string) of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; never raises for a bad or missing hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A random password for generated accounts (printed once, never stored clear)."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def hash_token(token: str) -> str:
    """sha256 hex of a session token: what the database keeps."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of an API request."""

    user_id: int
    username: str
    role: str
    tenant_id: int
    tenant_slug: str
    token_hash: str


def authenticate(db: Session, tenant_slug: str, username: str, password: str) -> tuple[User, Tenant] | None:
    """The active user matching the credentials, with its tenant, or None."""
    row = db.execute(
        select(User, Tenant)
        .join(Tenant, Tenant.id == User.tenant_id)
        .where(Tenant.slug == tenant_slug, User.username == username)
    ).first()
    if row is None:
        verify_password(None, password)
        return None
    user, tenant = row
    if not verify_password(user.password_hash, password) or not user.active:
        return None
    return user, tenant


def create_session(db: Session, user: User, now: datetime | None = None) -> str:
    """Create a session for ``user`` and return its token (the only time it is visible)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    db.add(
        ApiToken(
            token_hash=hash_token(token),
            user_id=user.id,
            tenant_id=user.tenant_id,
            created_at=now,
            expires_at=now + SESSION_TTL,
        )
    )
    return token


def resolve_session(db: Session, token: str, now: datetime | None = None) -> Principal | None:
    """The principal behind a live token of an active user of an active tenant, or None."""
    now = now or utcnow()
    token_hash = hash_token(token)
    row = db.execute(
        select(User, Tenant)
        .join(ApiToken, ApiToken.user_id == User.id)
        .join(Tenant, Tenant.id == ApiToken.tenant_id)
        .where(
            ApiToken.token_hash == token_hash,
            ApiToken.expires_at > now,
            User.active.is_(True),
            User.tenant_id == ApiToken.tenant_id,
            # suspending deletes the tenant's sessions; this also ends one opened meanwhile
            Tenant.status == TenantStatus.ACTIVE.value,
        )
    ).first()
    if row is None:
        return None
    user, tenant = row
    return Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        token_hash=token_hash,
    )


def revoke_session(db: Session, token_hash: str) -> None:
    """Delete one session."""
    db.execute(delete(ApiToken).where(ApiToken.token_hash == token_hash))


def revoke_user_sessions(db: Session, user_id: int) -> None:
    """Delete every session of a user (deactivation, password change)."""
    db.execute(delete(ApiToken).where(ApiToken.user_id == user_id))


def purge_expired_sessions(db: Session, now: datetime | None = None) -> int:
    """Delete expired sessions; returns how many."""
    result = db.execute(delete(ApiToken).where(ApiToken.expires_at <= (now or utcnow())))
    return int(getattr(result, "rowcount", 0) or 0)
