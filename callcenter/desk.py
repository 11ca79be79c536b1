"""The agent desk's data: wrap-up of a call, an agent's call history, the tenant's codes.

Plain functions on a SQLAlchemy session, shared by the HTTP API (``api/agent_desk.py``)
and the softphone's WebSocket (``softphone.py``). They flush but never commit: the
caller owns the transaction. Errors are ``LookupError`` (no such call *for this caller*:
answer 404, never revealing that it exists elsewhere) and ``ValueError`` (bad input:
answer 422 with the message).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session

from callcenter.models import Agent, CallEvent, CallRecord, Tenant, utcnow

MAX_NOTES = 2000
MAX_DISPOSITIONS = 50
MAX_LABEL = 100
CODE_PATTERN = r"^[a-z0-9_-]{1,64}$"
DEFAULT_HISTORY = 50
MAX_HISTORY = 200


def agent_for_user(db: Session, user_id: int) -> Agent | None:
    """The agent profile of a user, or None (admins, supervisors, users never made agents)."""
    return db.scalar(select(Agent).where(Agent.user_id == user_id))


def tenant_dispositions(db: Session, tenant_id: int) -> list[dict[str, str]]:
    """The tenant's wrap-up codes, ``[{"code", "label"}]`` in the tenant's order."""
    tenant = db.get(Tenant, tenant_id)
    return [dict(d) for d in (tenant.dispositions or [])] if tenant is not None else []


def validate_dispositions(entries: list[dict[str, str]]) -> list[dict[str, str]]:
    """Checked copy of a replacement list: 1 to 50 entries, codes lower-case words and
    unique, labels 1 to 100 characters (surrounding blanks removed); else ValueError."""
    if not 1 <= len(entries) <= MAX_DISPOSITIONS:
        raise ValueError(f"give 1 to {MAX_DISPOSITIONS} dispositions")
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for entry in entries:
        code, label = str(entry.get("code", "")), str(entry.get("label", "")).strip()
        if not re.fullmatch(CODE_PATTERN, code):
            raise ValueError(f"disposition code {code!r}: 1 to 64 of a-z, 0-9, '_' and '-'")
        if code in seen:
            raise ValueError(f"disposition code {code!r} appears twice")
        if not 1 <= len(label) <= MAX_LABEL:
            raise ValueError(f"disposition {code!r}: the label needs 1 to {MAX_LABEL} characters")
        seen.add(code)
        out.append({"code": code, "label": label})
    return out


def _handled_by(agent_id: int) -> ColumnElement[bool]:
    """Calls the agent took: named on the record (the last to answer) or with an
    ``answered`` event by them. The event matters after a transfer: the record then
    names the agent who took over, and the first agent still wraps up and sees the call."""
    answered = exists().where(CallEvent.call_id == CallRecord.id, CallEvent.agent_id == agent_id,
                              CallEvent.kind == "answered")
    return or_(CallRecord.agent_id == agent_id, answered)


def save_wrapup(db: Session, tenant_id: int, agent_id: int | None, call_id: str, disposition: str,
                notes: str, *, user_id: int | None = None) -> dict[str, Any]:
    """Store the wrap-up of a call: disposition, notes, time, and a ``wrapup`` event.

    ``agent_id`` given: the call must be one this agent took (see ``_handled_by``);
    None: any call of the tenant (supervisors, admins; ``user_id`` then names them in
    the event). The disposition must be one of the tenant's codes. A second wrap-up
    overwrites the record's fields; every one stays in the events.
    """
    if len(notes) > MAX_NOTES:
        raise ValueError(f"notes are limited to {MAX_NOTES} characters")
    stmt = select(CallRecord).where(CallRecord.id == call_id, CallRecord.tenant_id == tenant_id)
    if agent_id is not None:
        stmt = stmt.where(_handled_by(agent_id))
    record = db.scalar(stmt)
    if record is None:
        raise LookupError("call not found")
    labels = {d["code"]: d["label"] for d in tenant_dispositions(db, tenant_id)}
    if disposition not in labels:
        raise ValueError(f"unknown disposition {disposition!r}; allowed: {', '.join(labels)}")
    now = utcnow()
    record.disposition, record.wrapup_notes, record.wrapup_at = disposition, notes or None, now
    detail: dict[str, Any] = {"disposition": disposition, "notes": notes}
    if user_id is not None:
        detail["user_id"] = user_id
    db.add(CallEvent(call_id=record.id, tenant_id=tenant_id, at=now, kind="wrapup", agent_id=agent_id,
                     detail=detail))
    db.flush()
    return {"call_id": record.id, "disposition": disposition, "disposition_label": labels[disposition],
            "notes": record.wrapup_notes, "wrapup_at": now.isoformat()}


def agent_calls(db: Session, agent_id: int, limit: int = DEFAULT_HISTORY) -> list[dict[str, Any]]:
    """The agent's calls (see ``_handled_by``), newest first, with their wrap-up:
    ``{id, direction, caller, dialed, queue, answered_at, ended_at, duration, disposition, disposition_label,
    notes}`` (the customer's number is ``dialed`` on an outbound call, ``caller`` on an inbound one)."""
    agent = db.get(Agent, agent_id)
    if agent is None:
        return []
    labels = {d["code"]: d["label"] for d in tenant_dispositions(db, agent.tenant_id)}
    rows = db.scalars(
        select(CallRecord)
        .where(CallRecord.tenant_id == agent.tenant_id, _handled_by(agent.id))
        .order_by(CallRecord.received_at.desc(), CallRecord.id.desc())
        .limit(max(1, min(limit, MAX_HISTORY)))
    )
    return [
        {
            "id": r.id,
            "direction": r.direction,
            "caller": r.caller,
            "dialed": r.dialed,
            "queue": r.queue,
            "answered_at": r.answered_at.isoformat() if r.answered_at else None,
            "ended_at": r.ended_at.isoformat() if r.ended_at else None,
            "duration": r.duration,
            "disposition": r.disposition,
            # a code the tenant has since removed still shows, as itself
            "disposition_label": labels.get(r.disposition, r.disposition) if r.disposition else None,
            "notes": r.wrapup_notes,
        }
        for r in rows
    ]
