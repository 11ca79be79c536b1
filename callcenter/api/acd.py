"""Queues and agents of the caller's tenant; agent states; live queue statistics.

Configuration is admin only. An agent changes their own state; a supervisor or an
admin changes anyone's. Live figures come from the node's ACD (503 without one).
"""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from callcenter.acd_config import SKILL, QueueSettings
from callcenter.api.audit import record_audit
from callcenter.api.bounds import DbId, Name
from callcenter.api.deps import AppContext, get_ctx, get_db, get_owned, live_acd, require_roles
from callcenter.api.errors import ApiError, conflict, forbidden, invalid, not_found, validation_details
from callcenter.api.users import USERNAME_PATTERN
from callcenter.models import AcdQueue, Agent, AgentStateChange, Number, Role, Tenant, User, utcnow
from callcenter.security import Principal, generate_password, hash_password, revoke_user_sessions
from callcenter.tenancy import agents_over_quota
from sip_bridge.registrar import sip_ha1

router = APIRouter(tags=["acd"])
admin = require_roles("admin")
watchers = require_roles("admin", "supervisor")
anyone = require_roles("admin", "supervisor", "agent")


# -- queues ----------------------------------------------------------------------------------
class QueueIn(QueueSettings):
    name: str = Field(pattern=SKILL)


def _check_caller_id(db: Session, tenant_id: int, settings: dict[str, Any]) -> None:
    """A queue's default caller ID is one of the tenant's numbers (never an arbitrary one)."""
    number = settings.get("caller_id")
    if number is not None and db.scalar(select(Number.id).where(Number.tenant_id == tenant_id,
                                                                Number.number == number)) is None:
        raise ApiError(422, "bad-caller-id", f"{number} is not one of this tenant's numbers", number=number)


@router.get("/api/queues")
def list_queues(principal: Principal = Depends(watchers), db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    rows = db.scalars(select(AcdQueue).where(AcdQueue.tenant_id == principal.tenant_id).order_by(AcdQueue.name))
    return [{"id": q.id, "name": q.name, **QueueSettings.model_validate(q.config).model_dump(mode="json")}
            for q in rows]


@router.post("/api/queues", status_code=201)
def create_queue(body: QueueIn, principal: Principal = Depends(admin), db: Session = Depends(get_db),
                 ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    if db.scalar(select(AcdQueue.id).where(AcdQueue.tenant_id == principal.tenant_id, AcdQueue.name == body.name)):
        raise ApiError(409, "queue-exists", f"a queue named {body.name!r} exists", name=body.name)
    settings = QueueSettings.model_validate(body.model_dump(exclude={"name"})).model_dump(mode="json")
    _check_caller_id(db, principal.tenant_id, settings)
    row = AcdQueue(tenant_id=principal.tenant_id, name=body.name, config=settings)
    db.add(row)
    db.flush()
    record_audit(db, principal, "queue.create", f"queue:{row.id}", {"name": body.name})
    db.commit()
    ctx.on_acd_changed()
    return {"id": row.id, "name": row.name, **settings}


@router.patch("/api/queues/{queue_id}")
def patch_queue(queue_id: DbId, body: dict[str, Any], principal: Principal = Depends(admin),
                db: Session = Depends(get_db), ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    row = get_owned(db, AcdQueue, queue_id, principal, "queue")
    try:
        settings = QueueSettings.model_validate({**row.config, **body}).model_dump(mode="json")
    except ValidationError as exc:  # as FastAPI reports a body's fields, so the console shows each next to its field
        raise ApiError(422, "invalid-request", "request validation failed",
                       details=validation_details(exc.errors(), ["body"])) from exc
    _check_caller_id(db, principal.tenant_id, settings)
    row.config = settings
    record_audit(db, principal, "queue.update", f"queue:{row.id}", body)
    db.commit()
    ctx.on_acd_changed()
    return {"id": row.id, "name": row.name, **settings}


@router.delete("/api/queues/{queue_id}", status_code=204)
def delete_queue(queue_id: DbId, principal: Principal = Depends(admin), db: Session = Depends(get_db),
                 ctx: AppContext = Depends(get_ctx)) -> Response:
    row = get_owned(db, AcdQueue, queue_id, principal, "queue")
    record_audit(db, principal, "queue.delete", f"queue:{row.id}", {"name": row.name})
    db.delete(row)
    db.commit()
    ctx.on_acd_changed()
    return Response(status_code=204)


@router.get("/api/queues/{name}/stats")
async def queue_stats(name: Name, principal: Principal = Depends(watchers),
                      ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Waiting calls, longest wait, agents by state, service level today (live)."""
    engine = live_acd(ctx).engine(principal.tenant_id)
    if engine is None or name not in live_acd(ctx).queues.get(principal.tenant_id, {}):
        raise not_found("queue")
    return dataclasses.asdict(engine.queue_stats(name, time.time()))


# -- agents ----------------------------------------------------------------------------------
Proficiency = Annotated[int, Field(ge=1, le=5)]


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(pattern=USERNAME_PATTERN)
    skills: dict[str, Proficiency] = Field(default_factory=dict, max_length=50)
    require_tls: bool = False
    """The agent's SIP phone must register over TLS (403 otherwise)."""
    require_srtp: bool = False
    """Calls to the agent's SIP phone offer SRTP only."""


class AgentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    skills: dict[str, Proficiency] | None = Field(default=None, max_length=50)
    reset_sip_password: bool = False
    reset_password: bool = False
    """A new generated login password, returned once (the console's reset; the agent's sessions end)."""
    require_tls: bool | None = None
    require_srtp: bool | None = None
    chat_capacity: int | None = Field(default=None, ge=0, le=10)
    """Chats the agent takes at once; null (sent explicitly): the tenant's chat capacity."""


def _check_skills(skills: dict[str, int]) -> dict[str, int]:
    for name, level in skills.items():
        if not re.fullmatch(SKILL, name) or not 1 <= level <= 5:
            raise invalid(f"skill {name!r}: names are lower-case words, proficiency 1 to 5")
    return skills


def _agent_out(agent: Agent, user: User, tenant: Tenant, live: Any) -> dict[str, Any]:
    view = live.agent_view(agent.tenant_id, str(agent.id)) if live is not None else None
    state = dataclasses.asdict(view) if view is not None else None
    return {"id": agent.id, "username": user.username, "sip_user": f"{tenant.slug}.{user.username}",
            "skills": agent.skills, "require_tls": agent.require_tls, "require_srtp": agent.require_srtp,
            "chat_capacity": agent.chat_capacity, "live": state}


def create_agent(db: Session, tenant: Tenant, username: str, skills: dict[str, int], *, require_tls: bool = False,
                 require_srtp: bool = False) -> tuple[Agent, str, str]:
    """A user with the agent role and its agent row; returns (agent, login password, SIP password).
    409 ``quota-exceeded`` when the tenant has its quota of agents."""
    if (over := agents_over_quota(db, tenant)) is not None:
        raise ApiError(409, "quota-exceeded", over, quota="agents", limit=tenant.quota_agents)
    password, sip_password = generate_password(), generate_password()
    user = User(tenant_id=tenant.id, username=username, password_hash=hash_password(password),
                role=Role.AGENT.value, active=True, created_at=utcnow())
    db.add(user)
    db.flush()
    agent = Agent(tenant_id=tenant.id, user_id=user.id, skills=skills,
                  sip_ha1=sip_ha1(f"{tenant.slug}.{username}", sip_password), require_tls=require_tls,
                  require_srtp=require_srtp)
    db.add(agent)
    db.flush()
    return agent, password, sip_password


@router.get("/api/agents")
def list_agents(principal: Principal = Depends(watchers), db: Session = Depends(get_db),
                ctx: AppContext = Depends(get_ctx)) -> list[dict[str, Any]]:
    tenant = db.get(Tenant, principal.tenant_id)
    rows = db.execute(select(Agent, User).join(User, User.id == Agent.user_id)
                      .where(Agent.tenant_id == principal.tenant_id).order_by(User.username)).all()
    return [_agent_out(a, u, tenant, ctx.acd) for a, u in rows]  # type: ignore[arg-type]


@router.post("/api/agents", status_code=201)
def add_agent(body: AgentIn, principal: Principal = Depends(admin), db: Session = Depends(get_db),
              ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Creates the agent's login and SIP phone credentials; both passwords are shown only here."""
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    if db.scalar(select(User.id).where(User.tenant_id == tenant.id, User.username == body.username)):
        raise conflict("username-taken", "a user with this name exists")
    agent, password, sip_password = create_agent(db, tenant, body.username, _check_skills(body.skills),
                                                 require_tls=body.require_tls, require_srtp=body.require_srtp)
    record_audit(db, principal, "agent.create", f"agent:{agent.id}", body.model_dump())
    db.commit()
    ctx.on_acd_changed()
    return {"id": agent.id, "username": body.username, "password": password,
            "sip_user": f"{tenant.slug}.{body.username}", "sip_password": sip_password, "skills": agent.skills,
            "require_tls": agent.require_tls, "require_srtp": agent.require_srtp}


@router.patch("/api/agents/{agent_id}")
def patch_agent(agent_id: DbId, body: AgentPatch, principal: Principal = Depends(admin),
                db: Session = Depends(get_db), ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    agent = get_owned(db, Agent, agent_id, principal, "agent")
    user, tenant = db.get(User, agent.user_id), db.get(Tenant, agent.tenant_id)
    assert user is not None and tenant is not None
    out: dict[str, Any] = {}
    if body.skills is not None:
        agent.skills = _check_skills(body.skills)
    if body.require_tls is not None:
        agent.require_tls = body.require_tls
    if body.require_srtp is not None:
        agent.require_srtp = body.require_srtp
    if "chat_capacity" in body.model_fields_set:
        agent.chat_capacity = body.chat_capacity
    if body.reset_sip_password:
        out["sip_password"] = generate_password()
        agent.sip_ha1 = sip_ha1(f"{tenant.slug}.{user.username}", out["sip_password"])
    if body.reset_password:
        out["password"] = generate_password()
        user.password_hash = hash_password(out["password"])
        revoke_user_sessions(db, user.id)
    record_audit(db, principal, "agent.update", f"agent:{agent.id}", body.model_dump())
    db.commit()
    ctx.on_acd_changed()
    return {**_agent_out(agent, user, tenant, ctx.acd), **out}


@router.delete("/api/agents/{agent_id}", status_code=204)
def delete_agent(agent_id: DbId, principal: Principal = Depends(admin), db: Session = Depends(get_db),
                 ctx: AppContext = Depends(get_ctx)) -> Response:
    agent = get_owned(db, Agent, agent_id, principal, "agent")
    record_audit(db, principal, "agent.delete", f"agent:{agent.id}", {})
    db.delete(agent)
    db.commit()
    ctx.on_acd_changed()
    return Response(status_code=204)


@router.get("/api/agents/{agent_id}/history")
def agent_history(agent_id: DbId, limit: int = Query(default=200, ge=1, le=1000),
                  principal: Principal = Depends(watchers),
                  db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    """The agent's state changes, newest last, each with its time and reason."""
    agent = get_owned(db, Agent, agent_id, principal, "agent")
    rows = db.scalars(select(AgentStateChange).where(AgentStateChange.agent_id == agent.id)
                      .order_by(AgentStateChange.at.desc(), AgentStateChange.id.desc()).limit(limit))
    return [{"old_state": r.old_state, "new_state": r.new_state, "reason": r.reason, "call_id": r.call_id,
             "at": r.at.isoformat()} for r in reversed(list(rows))]


class StateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["available", "break", "offline"]
    reason: str | None = Field(default=None, max_length=64)


def _state_target(db: Session, principal: Principal, agent_id: int) -> tuple[int, list[str]]:
    agent = get_owned(db, Agent, agent_id, principal, "agent")
    if principal.role == Role.AGENT.value and agent.user_id != principal.user_id:
        raise forbidden()
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    return agent.id, list(tenant.break_reasons or [])


@router.post("/api/agents/{agent_id}/state")
async def set_agent_state(agent_id: DbId, body: StateIn, principal: Principal = Depends(anyone),
                          db: Session = Depends(get_db), ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """An agent sets their own state; a supervisor or admin anyone's. Breaks need a tenant reason code."""
    agent_pk, reasons = await run_in_threadpool(_state_target, db, principal, agent_id)
    if body.state == "break" and body.reason not in reasons:
        raise invalid(f"break reason must be one of: {', '.join(reasons)}")
    live = live_acd(ctx)
    live.request_state(principal.tenant_id, str(agent_pk), body.state, body.reason)
    view = live.agent_view(principal.tenant_id, str(agent_pk))
    return dataclasses.asdict(view) if view is not None else {}
