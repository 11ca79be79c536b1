"""The agent desk over HTTP: the tenant's wrap-up codes, an agent's call history, wrap-up,
the tenant's voicemails to call back.

Thin wrappers around ``callcenter.desk`` (the softphone's WebSocket uses the same
functions). Calls of other tenants, and for agents calls they did not take, are 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from callcenter import desk, voicemail_inbox
from callcenter.api.audit import record_audit
from callcenter.api.bounds import CallId, DbId
from callcenter.api.deps import (
    ALL_ROLES,
    AppContext,
    get_ctx,
    get_db,
    get_owned,
    require_roles,
)
from callcenter.api.errors import ApiError, invalid, not_found
from callcenter.models import Agent, Role, Tenant, Voicemail
from callcenter.security import Principal

router = APIRouter(tags=["agent desk"])
anyone = require_roles(*ALL_ROLES)
admin = require_roles("admin")
agents_only = require_roles("agent")
wrappers = require_roles("agent", "supervisor", "admin")


class DispositionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    code: str = Field(pattern=desk.CODE_PATTERN)
    label: str = Field(min_length=1, max_length=desk.MAX_LABEL)


class WrapupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    disposition: str = Field(min_length=1, max_length=64)
    notes: str = Field(default="", max_length=desk.MAX_NOTES)


def _own_agent(db: Session, principal: Principal) -> Agent:
    agent = desk.agent_for_user(db, principal.user_id)
    if agent is None or agent.tenant_id != principal.tenant_id:
        raise ApiError(403, "no-agent-profile", "this user has no agent profile")
    return agent


@router.get("/api/dispositions")
def get_dispositions(principal: Principal = Depends(anyone), db: Session = Depends(get_db)) -> list[dict[str, str]]:
    """The tenant's wrap-up codes, in the order the softphone lists them."""
    return desk.tenant_dispositions(db, principal.tenant_id)


@router.put("/api/dispositions")
def put_dispositions(
    body: Annotated[list[DispositionIn], Body(min_length=1, max_length=desk.MAX_DISPOSITIONS)],
    principal: Principal = Depends(admin),
    db: Session = Depends(get_db),
) -> list[dict[str, str]]:
    """Replace the tenant's wrap-up codes (calls keep the code they were given)."""
    try:
        entries = desk.validate_dispositions([d.model_dump() for d in body])
    except ValueError as exc:
        raise invalid(str(exc)) from exc
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    before = list(tenant.dispositions or [])
    tenant.dispositions = entries
    record_audit(db, principal, "dispositions.update", f"tenant:{tenant.id}",
                 {"before": before, "after": entries})
    db.commit()
    return entries


BreakReason = Annotated[str, Field(pattern=desk.CODE_PATTERN)]


@router.get("/api/break-reasons")
def get_break_reasons(principal: Principal = Depends(anyone), db: Session = Depends(get_db)) -> list[str]:
    """The reason codes agents may give for a break, in the order the softphone lists them."""
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    return list(tenant.break_reasons or [])


@router.put("/api/break-reasons")
def put_break_reasons(
    body: Annotated[list[BreakReason], Body(min_length=1, max_length=desk.MAX_DISPOSITIONS)],
    principal: Principal = Depends(admin),
    db: Session = Depends(get_db),
) -> list[str]:
    """Replace the tenant's break reasons (agents on a break keep the reason they gave)."""
    if len(set(body)) != len(body):
        raise invalid("a break reason appears twice")
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    before = list(tenant.break_reasons or [])
    tenant.break_reasons = list(body)
    record_audit(db, principal, "break_reasons.update", f"tenant:{tenant.id}", {"before": before, "after": body})
    db.commit()
    return list(body)


@router.get("/api/agent/calls")
def my_calls(
    limit: int = Query(default=desk.DEFAULT_HISTORY, ge=1, le=desk.MAX_HISTORY),
    principal: Principal = Depends(agents_only),
    db: Session = Depends(get_db),
) -> list[dict[str, Any]]:
    """The calling agent's own calls, newest first, with disposition and notes."""
    return desk.agent_calls(db, _own_agent(db, principal).id, limit)


@router.get("/api/voicemails")
def voicemails(
    limit: int = Query(default=voicemail_inbox.DEFAULT_INBOX, ge=1, le=voicemail_inbox.MAX_INBOX),
    principal: Principal = Depends(wrappers),
    db: Session = Depends(get_db),
) -> list[dict[str, Any]]:
    """The tenant's latest voicemails, newest first, each saying whether the caller was called back."""
    return voicemail_inbox.tenant_voicemails(db, principal.tenant_id, limit)


@router.get("/api/voicemails/{voicemail_id}/audio")
def voicemail_audio(voicemail_id: DbId, principal: Principal = Depends(wrappers), db: Session = Depends(get_db),
                    ctx: AppContext = Depends(get_ctx)) -> FileResponse:
    """A voicemail's WAV; 404 when it is another tenant's or its file is gone or outside the
    tenant's voicemail folder."""
    voicemail = get_owned(db, Voicemail, voicemail_id, principal, "voicemail")
    path = voicemail_inbox.voicemail_file(voicemail, ctx.settings.data_dir)
    if path is None:
        raise not_found("voicemail")
    return FileResponse(path, media_type="audio/wav", headers={"Cache-Control": "no-store"})


@router.post("/api/calls/{call_id}/wrapup")
def wrapup(call_id: CallId, body: WrapupIn, principal: Principal = Depends(wrappers),
           db: Session = Depends(get_db)) -> dict[str, Any]:
    """Disposition and notes of a call: an agent for a call they took, a supervisor or an
    admin for any call of the tenant. Unknown codes are 422 and list the allowed ones."""
    is_agent = principal.role == Role.AGENT.value
    agent_id = _own_agent(db, principal).id if is_agent else None
    try:
        saved = desk.save_wrapup(db, principal.tenant_id, agent_id, call_id, body.disposition, body.notes,
                                 user_id=None if is_agent else principal.user_id)
    except LookupError as exc:
        raise not_found("call") from exc
    except ValueError as exc:
        raise invalid(str(exc)) from exc
    if not is_agent:
        record_audit(db, principal, "call.wrapup", f"call:{call_id}", {"disposition": body.disposition})
    db.commit()
    return saved
