"""Audit trail: every admin write adds a row in the same transaction as the change."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.api.bounds import DbId, Instant
from callcenter.api.deps import get_db, require_roles
from callcenter.models import AuditLog, utcnow
from callcenter.security import Principal

SECRET_FIELDS = frozenset({"password", "inbound_password", "register_password", "password_hash"})

router = APIRouter(prefix="/api/audit", tags=["audit"])


def redact(values: dict[str, Any]) -> dict[str, Any]:
    """Copy of ``values`` with secrets replaced by a marker."""
    return {k: ("***" if k in SECRET_FIELDS and v is not None else v) for k, v in values.items()}


def record_audit(
    db: Session, principal: Principal | None, action: str, target: str, detail: dict[str, Any] | None = None
) -> None:
    """Add an audit row (committed with the caller's transaction)."""
    db.add(
        AuditLog(
            tenant_id=principal.tenant_id if principal else None,
            user_id=principal.user_id if principal else None,
            action=action,
            target=target,
            detail=redact(detail or {}),
            at=utcnow(),
        )
    )


def _utc(value: datetime) -> datetime:
    # A query string without offset means UTC (as /api/calls).
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class AuditOut(BaseModel):
    id: int
    user_id: int | None
    action: str
    target: str
    detail: dict[str, Any]
    at: datetime


@router.get("", response_model=list[AuditOut])
def list_audit(
    limit: int = Query(default=100, ge=1, le=1000),
    action: str | None = Query(default=None, max_length=64, description="only this action, e.g. recording.play"),
    target: str | None = Query(default=None, max_length=255, description="only this target, e.g. call:<id>"),
    user_id: DbId | None = Query(default=None, description="only this user's actions"),
    since: Instant | None = Query(default=None, description="at >= since (UTC if no offset)"),
    until: Instant | None = Query(default=None, description="at < until (UTC if no offset)"),
    principal: Principal = Depends(require_roles("admin")),
    db: Session = Depends(get_db),
) -> list[AuditOut]:
    """The caller's tenant's audit trail, newest first."""
    query = select(AuditLog).where(AuditLog.tenant_id == principal.tenant_id)
    if action is not None:
        query = query.where(AuditLog.action == action)
    if target is not None:
        query = query.where(AuditLog.target == target)
    if user_id is not None:
        query = query.where(AuditLog.user_id == user_id)
    if since is not None:
        query = query.where(AuditLog.at >= _utc(since))
    if until is not None:
        query = query.where(AuditLog.at < _utc(until))
    rows = db.scalars(query.order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(limit)).all()
    return [AuditOut(id=r.id, user_id=r.user_id, action=r.action, target=r.target, detail=r.detail, at=r.at) for r in rows]
