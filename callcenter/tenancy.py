"""The tenants' lifecycle, run by the platform's operators: create (with a first admin), quotas,
suspend, resume, delete; and the operators themselves.

One module for the operator API (``callcenter.api.operator``) and the CLI (``callcenter tenant``,
``callcenter operator``): both call these functions with a session and commit afterwards. Every
change is audited in the log of the reserved platform tenant (``PLATFORM_SLUG``), which is never
listed, changed or deleted here, takes no calls, and whose users are the operators.

Deleting removes every row of the tenant (the tenant row's foreign keys cascade; call records,
whose tenant key is ``SET NULL`` so a deleted trunk keeps its history, are deleted first) and its
folders on disk: recordings, prompts, voicemail. It is refused until an export has been made
(``tenants.exported_at``), so nobody deletes data the customer could not take with them.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from callcenter.models import (
    PLATFORM_SLUG,
    Agent,
    ApiToken,
    AuditLog,
    CallRecord,
    Recording,
    Role,
    Tenant,
    TenantKind,
    TenantStatus,
    User,
    utcnow,
)
from callcenter.security import generate_password, hash_password
from callcenter.transcripts import unindex_tenant
from callcenter.usage import transcribed_minutes_this_month

logger = logging.getLogger(__name__)

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")
"""A tenant's sign-in name: 3-64 lower-case letters, digits and inner dashes."""
USERNAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,100}$")
FIRST_ADMIN = "admin"
PLATFORM_NAME = "Platform"
QUOTA_FIELDS = ("quota_concurrent_calls", "quota_agents", "quota_recording_mb", "quota_transcription_minutes")
MAX_QUOTA = 10_000_000
"""Above any real contract, below the Integer column's limit."""
BYTES_PER_MB = 1024 * 1024


class TenancyError(Exception):
    """A refused lifecycle step: ``status`` and ``error_id`` for the API, the message for people."""

    def __init__(self, status: int, error_id: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.message = message


@dataclass(frozen=True)
class Actor:
    """Who made a change, for the audit log: an operator's user id (the API), or None (the CLI)."""

    user_id: int | None
    via: str


CLI = Actor(None, "cli")


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def valid_timezone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this host knows (``Asia/Shanghai``, ``UTC``...)."""
    return name in _time_zones()


def check_slug(slug: str) -> str:
    if not SLUG_RE.fullmatch(slug):
        raise TenancyError(422, "invalid-slug", f"invalid tenant slug {slug!r}: 3-64 lower-case letters, digits "
                                                "and dashes, starting and ending with a letter or digit")
    if slug == PLATFORM_SLUG:
        raise TenancyError(409, "slug-reserved", f"{PLATFORM_SLUG!r} is the operators' own tenant")
    return slug


def check_quotas(quotas: dict[str, int | None]) -> dict[str, int | None]:
    """``quotas`` restricted to the quota fields, each None (no limit) or 0 to ``MAX_QUOTA``."""
    unknown = set(quotas) - set(QUOTA_FIELDS)
    if unknown:
        raise TenancyError(422, "invalid-request", f"unknown quotas {sorted(unknown)}")
    for name, value in quotas.items():
        if value is not None and (isinstance(value, bool) or not 0 <= value <= MAX_QUOTA):
            raise TenancyError(422, "invalid-request", f"{name}: a number from 0 to {MAX_QUOTA}, or none")
    return quotas


# -- the platform tenant and its operators -------------------------------------------------------
def ensure_platform(db: Session) -> Tenant:
    """The operators' tenant, created on first use."""
    tenant = db.scalar(select(Tenant).where(Tenant.slug == PLATFORM_SLUG))
    if tenant is None:
        tenant = Tenant(name=PLATFORM_NAME, slug=PLATFORM_SLUG, kind=TenantKind.PLATFORM.value,
                        outbound_prefixes=[], created_at=utcnow())
        db.add(tenant)
        db.flush()
        logger.info("platform tenant created", extra={"tenant_id": tenant.id})
    return tenant


def audit(db: Session, actor: Actor, action: str, target: str, detail: dict[str, Any] | None = None) -> None:
    """An entry in the platform tenant's audit log (committed with the caller's transaction)."""
    db.add(AuditLog(tenant_id=ensure_platform(db).id, user_id=actor.user_id, action=action, target=target,
                    detail={**(detail or {}), "via": actor.via}, at=utcnow()))


def add_operator(db: Session, username: str, actor: Actor = CLI) -> str:
    """A new operator; returns the generated password (shown once, only its hash is kept)."""
    if not USERNAME_RE.fullmatch(username):
        raise TenancyError(422, "invalid-request", f"invalid username {username!r}")
    platform = ensure_platform(db)
    if db.scalar(select(User.id).where(User.tenant_id == platform.id, User.username == username)) is not None:
        raise TenancyError(409, "username-taken", f"operator {username!r} exists")
    password = generate_password()
    user = User(tenant_id=platform.id, username=username, password_hash=hash_password(password),
                role=Role.OPERATOR.value, active=True, created_at=utcnow())
    db.add(user)
    db.flush()
    audit(db, actor, "operator.create", f"user:{user.id}", {"username": username})
    return password


# -- customer tenants ------------------------------------------------------------------------------
def customers(db: Session) -> list[Tenant]:
    """Every customer tenant, by slug (the platform tenant is not one)."""
    return list(db.scalars(select(Tenant).where(Tenant.kind == TenantKind.CUSTOMER.value).order_by(Tenant.slug)))


def find(db: Session, slug: str) -> Tenant:
    """The customer tenant ``slug``, else 404 ``tenant-not-found`` (the platform tenant included)."""
    tenant = db.scalar(select(Tenant).where(Tenant.slug == slug, Tenant.kind == TenantKind.CUSTOMER.value))
    if tenant is None:
        raise TenancyError(404, "tenant-not-found", f"no tenant {slug!r}")
    return tenant


def create(db: Session, slug: str, name: str, quotas: dict[str, int | None], actor: Actor = CLI,
           timezone: str | None = None) -> tuple[Tenant, str]:
    """A customer tenant with its first admin (user ``admin``); returns it and the admin's password."""
    check_slug(slug)
    check_quotas(quotas)
    if timezone is not None and not valid_timezone(timezone):
        raise TenancyError(422, "invalid-timezone", f"unknown time zone {timezone!r}")
    if db.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None:
        raise TenancyError(409, "tenant-slug-taken", f"a tenant {slug!r} exists")
    if db.scalar(select(Tenant.id).where(Tenant.name == name)) is not None:
        raise TenancyError(409, "tenant-name-taken", f"a tenant is named {name!r}")
    tenant = Tenant(id=_unused_id(db), slug=slug, name=name, kind=TenantKind.CUSTOMER.value,
                    status=TenantStatus.ACTIVE.value, outbound_prefixes=[], created_at=utcnow(), **quotas)
    if timezone is not None:
        tenant.timezone = timezone
    db.add(tenant)
    db.flush()
    password = generate_password()
    admin = User(tenant_id=tenant.id, username=FIRST_ADMIN, password_hash=hash_password(password),
                 role=Role.ADMIN.value, active=True, created_at=utcnow())
    db.add(admin)
    db.flush()
    db.add(AuditLog(tenant_id=tenant.id, user_id=None, action="user.create", target=f"user:{admin.id}",
                    detail={"username": FIRST_ADMIN, "role": Role.ADMIN.value, "via": "operator"}, at=utcnow()))
    audit(db, actor, "tenant.create", f"tenant:{slug}", {"tenant_id": tenant.id, "name": name, **quotas})
    logger.info("tenant created", extra={"tenant": slug, "tenant_id": tenant.id})
    return tenant, password


def _unused_id(db: Session) -> int | None:
    """An id no tenant ever had, on SQLite (which gives the highest id + 1, so deleting the newest
    tenant would hand its id to the next one while nodes still hold its recording key and call
    counts in memory); None elsewhere (PostgreSQL's sequence never gives an id twice)."""
    if db.get_bind().dialect.name != "sqlite":
        return None
    deleted = db.scalars(select(AuditLog.detail).where(AuditLog.action == "tenant.delete"))
    ids = [d.get("tenant_id") for d in deleted if isinstance(d, dict)]
    return max([db.scalar(select(func.max(Tenant.id))) or 0, *(i for i in ids if isinstance(i, int))]) + 1


def update(db: Session, tenant: Tenant, changes: dict[str, Any], actor: Actor = CLI) -> Tenant:
    """Rename the tenant or change its quotas (``changes``: ``name`` and quota fields)."""
    name = changes.get("name")
    check_quotas({k: v for k, v in changes.items() if k != "name"})
    if name is not None and db.scalar(select(Tenant.id).where(Tenant.name == name, Tenant.id != tenant.id)):
        raise TenancyError(409, "tenant-name-taken", f"a tenant is named {name!r}")
    for key, value in changes.items():
        if key != "name" or value is not None:
            setattr(tenant, key, value)
    audit(db, actor, "tenant.update", f"tenant:{tenant.slug}", changes)
    return tenant


def suspend(db: Session, tenant: Tenant, actor: Actor = CLI) -> Tenant:
    """New calls and sign-ins refused; the sessions open now end (their tokens are deleted)."""
    tenant.status = TenantStatus.SUSPENDED.value
    db.execute(delete(ApiToken).where(ApiToken.tenant_id == tenant.id))
    audit(db, actor, "tenant.suspend", f"tenant:{tenant.slug}")
    logger.info("tenant suspended", extra={"tenant": tenant.slug, "tenant_id": tenant.id})
    return tenant


def resume(db: Session, tenant: Tenant, actor: Actor = CLI) -> Tenant:
    tenant.status = TenantStatus.ACTIVE.value
    audit(db, actor, "tenant.resume", f"tenant:{tenant.slug}")
    logger.info("tenant resumed", extra={"tenant": tenant.slug, "tenant_id": tenant.id})
    return tenant


def tenant_folders(tenant_id: int, data_dir: Path, recordings_dir: Path) -> list[Path]:
    """The tenant's folders on disk: recordings (and live journals), prompts, voicemail."""
    name = f"tenant-{tenant_id}"
    return [recordings_dir / name, data_dir / "prompts" / name, data_dir / "voicemail" / name]


def delete_tenant(db: Session, tenant: Tenant, data_dir: Path, recordings_dir: Path, actor: Actor = CLI) -> None:
    """Remove every row of the tenant and its folders on disk; refused (409 ``export-required``)
    until its data was exported. The rows go in the caller's transaction; the folders right after
    the rows are flushed (a failed commit then leaves rows without files: the export has them)."""
    if tenant.exported_at is None:
        raise TenancyError(409, "export-required", f"export tenant {tenant.slug!r} before deleting it")
    tenant_id, slug = tenant.id, tenant.slug
    calls = db.execute(delete(CallRecord).where(CallRecord.tenant_id == tenant_id)).rowcount  # type: ignore[attr-defined]
    unindex_tenant(db, tenant_id)
    db.execute(delete(Tenant).where(Tenant.id == tenant_id))  # the rest cascades
    db.expunge(tenant)
    audit(db, actor, "tenant.delete", f"tenant:{slug}", {"tenant_id": tenant_id, "calls": calls,
                                                         "exported_at": tenant.exported_at.isoformat()})
    db.flush()
    for folder in tenant_folders(tenant_id, data_dir, recordings_dir):
        shutil.rmtree(folder, ignore_errors=True)
    logger.warning("tenant deleted with all its data", extra={"tenant": slug, "tenant_id": tenant_id})


# -- quotas where the resource is taken ------------------------------------------------------------
def agents_over_quota(db: Session, tenant: Tenant) -> str | None:
    """Why one more agent would exceed the tenant's quota, or None."""
    if tenant.quota_agents is None:
        return None
    count = db.scalar(select(func.count()).select_from(Agent).where(Agent.tenant_id == tenant.id)) or 0
    if count >= tenant.quota_agents:
        return f"the tenant's quota of {tenant.quota_agents} agents is reached; ask the platform operator for more"
    return None


def stored_recording_bytes(db: Session, tenant_id: int) -> int:
    """Bytes of the tenant's recordings in storage now (purged ones are gone)."""
    return int(db.scalar(select(func.coalesce(func.sum(Recording.size), 0))
                         .where(Recording.tenant_id == tenant_id, Recording.status != "purged")) or 0)


def recording_over_quota(db: Session, tenant: Tenant) -> bool:
    """Whether the tenant's stored recordings reached its storage quota (new calls are not recorded)."""
    return tenant.quota_recording_mb is not None and \
        stored_recording_bytes(db, tenant.id) >= tenant.quota_recording_mb * BYTES_PER_MB


def transcription_over_quota(db: Session, tenant: Tenant) -> str | None:
    """Why the tenant's next recording is not transcribed (its minutes this month are used), or None."""
    if tenant.quota_transcription_minutes is None:
        return None
    used = transcribed_minutes_this_month(db, tenant)
    if used >= tenant.quota_transcription_minutes:
        return (f"quota: {used:.0f} of the tenant's {tenant.quota_transcription_minutes} transcription minutes "
                "this month are used")
    return None
