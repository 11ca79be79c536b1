"""A supervisor's actions on the calls waiting in the tenant's queues: raise (or lower) a call's
priority, move it to another queue. Each action is audited and noted in the call record's
events; the wallboard updates from the ACD's ``Queued`` event.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from acd import NotWaiting, RequestRefused, UnknownQueue, WaitingView
from acd.events import MAX_PRIORITY, MIN_PRIORITY
from callcenter.api.audit import record_audit
from callcenter.api.bounds import CallId, Name
from callcenter.api.deps import AppContext, get_ctx, live_acd, require_roles
from callcenter.api.errors import ApiError, conflict, not_found
from callcenter.security import Principal

router = APIRouter(tags=["supervisor"])
supervisors = require_roles("admin", "supervisor")


class PriorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: int = Field(ge=MIN_PRIORITY, le=MAX_PRIORITY, description="higher is served first")


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    queue: Name = Field(description="another queue of the tenant")


def _refused(exc: RequestRefused) -> ApiError:
    """Other tenants' calls are unknown to this tenant's engine: 404, like calls that left."""
    if isinstance(exc, NotWaiting):
        return conflict("call-not-waiting", str(exc))
    return not_found("queue" if isinstance(exc, UnknownQueue) else "call")


def _audit(ctx: AppContext, principal: Principal, action: str, call_id: str, detail: dict[str, Any]) -> None:
    with ctx.sessions() as db:
        record_audit(db, principal, action, f"call:{call_id}", detail)
        db.commit()


def _place(view: WaitingView) -> dict[str, Any]:
    return {"call_id": view.call_id, "queue": view.queue, "priority": view.priority, "position": view.position,
            "callback": view.is_callback}


@router.post("/api/supervisor/calls/{call_id}/priority")
async def set_priority(call_id: CallId, body: PriorityIn, principal: Principal = Depends(supervisors),
                       ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """A waiting call's (or callback's) new priority; it keeps its seniority among its new peers.
    Returns its new place; 404 for no such waiting call, 409 if an agent has it already."""
    try:
        view = live_acd(ctx).set_priority(principal.tenant_id, call_id, body.priority)
    except RequestRefused as exc:
        raise _refused(exc) from exc
    await run_in_threadpool(_audit, ctx, principal, "call.priority", call_id,
                            {"queue": view.queue, "priority": view.priority})
    return _place(view)


@router.post("/api/supervisor/calls/{call_id}/move")
async def move_call(call_id: CallId, body: MoveIn, principal: Principal = Depends(supervisors),
                    ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Move a waiting call (or callback) to another queue: agents ringing for it stop, it
    keeps its priority and seniority, and the new queue's max wait and announcements count
    from now. Returns its new place; 404 for no such waiting call or queue, 409 if an agent
    has it already."""
    try:
        view = live_acd(ctx).move_call(principal.tenant_id, call_id, body.queue)
    except RequestRefused as exc:
        raise _refused(exc) from exc
    await run_in_threadpool(_audit, ctx, principal, "call.move", call_id, {"queue": view.queue})
    return _place(view)
