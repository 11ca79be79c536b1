"""Call records of the caller's tenant (admin, supervisor, qa). Other tenants' ids are 404."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.api.bounds import CallId, Instant
from callcenter.api.deps import get_db, require_roles
from callcenter.api.errors import invalid, not_found
from callcenter.cdr import call_events
from callcenter.models import Agent, CallRecord, IvrTrace, User
from callcenter.security import Principal

router = APIRouter(prefix="/api/calls", tags=["calls"])

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
readers = require_roles("admin", "supervisor", "qa")


class CallOut(BaseModel):
    id: str
    sip_call_id: str
    trunk_id: int | None
    direction: str
    caller: str
    dialed: str
    received_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration: float | None
    end_cause: str | None
    hangup_side: str | None
    sip_status: int | None
    codec: str | None
    agent_id: int | None = None
    """The agent who answered last (after a transfer: the one who took over)."""
    queue: str | None = None
    disposition: str | None = None
    wrapup_notes: str | None = None
    wrapup_at: datetime | None = None
    node: str | None = None
    """The cluster node that held the call; None on a single node."""
    agent_node: str | None = None
    """The node where the answering agent's side was, when another than ``node``."""
    channel: str = "voice"
    """``voice``, or ``chat`` for a web chat's record (its id is the conversation's)."""


class CallDetailOut(CallOut):
    agent: dict[str, Any] | None
    """``{id, username}`` of ``agent_id``."""
    events: list[dict[str, Any]]
    """What happened at the agent desk, oldest first: ``{at, kind, agent, detail}``."""


def call_out(r: CallRecord) -> CallOut:
    return CallOut(
        id=r.id,
        sip_call_id=r.sip_call_id,
        trunk_id=r.trunk_id,
        direction=r.direction,
        caller=r.caller,
        dialed=r.dialed,
        received_at=r.received_at,
        answered_at=r.answered_at,
        ended_at=r.ended_at,
        duration=r.duration,
        end_cause=r.end_cause,
        hangup_side=r.hangup_side,
        sip_status=r.sip_status,
        codec=r.codec,
        agent_id=r.agent_id,
        queue=r.queue,
        disposition=r.disposition,
        wrapup_notes=r.wrapup_notes,
        wrapup_at=r.wrapup_at,
        node=r.node_id,
        agent_node=r.agent_node,
        channel=r.channel,
    )


def _utc(value: datetime | None) -> datetime | None:
    # A query string without offset means UTC.
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


@router.get("", response_model=list[CallOut])
def list_calls(
    since: Instant | None = Query(default=None, description="received_at >= since (UTC if no offset)"),
    until: Instant | None = Query(default=None, description="received_at < until (UTC if no offset)"),
    limit: int = Query(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    principal: Principal = Depends(readers),
    db: Session = Depends(get_db),
) -> list[CallOut]:
    """The tenant's call records, newest first."""
    since, until = _utc(since), _utc(until)
    if since and until and since >= until:
        raise invalid("since must be before until")
    stmt = select(CallRecord).where(CallRecord.tenant_id == principal.tenant_id)
    if since is not None:
        stmt = stmt.where(CallRecord.received_at >= since)
    if until is not None:
        stmt = stmt.where(CallRecord.received_at < until)
    stmt = stmt.order_by(CallRecord.received_at.desc(), CallRecord.id.desc()).limit(limit)
    return [call_out(r) for r in db.scalars(stmt).all()]


@router.get("/{call_id}", response_model=CallDetailOut)
def get_call(call_id: CallId, principal: Principal = Depends(readers), db: Session = Depends(get_db)) -> CallDetailOut:
    """One call record with its agent and events; 404 (never 403) when it belongs to another tenant."""
    record = db.execute(
        select(CallRecord).where(CallRecord.id == call_id, CallRecord.tenant_id == principal.tenant_id)
    ).scalar_one_or_none()
    if record is None:
        raise not_found("call")
    agent = None
    if record.agent_id is not None:
        username = db.scalar(select(User.username).join(Agent, Agent.user_id == User.id)
                             .where(Agent.id == record.agent_id))
        agent = {"id": record.agent_id, "username": username}
    return CallDetailOut(**call_out(record).model_dump(), agent=agent, events=call_events(db, record.id))


@router.get("/{call_id}/ivr-trace")
def get_ivr_trace(call_id: CallId, principal: Principal = Depends(readers), db: Session = Depends(get_db)) -> dict:
    """The call's IVR trace: nodes visited with times, inputs, recognitions and the exit taken."""
    trace = db.scalar(select(IvrTrace).where(IvrTrace.call_id == call_id, IvrTrace.tenant_id == principal.tenant_id))
    if trace is None:
        raise not_found("ivr-trace")
    return trace.trace
