"""A customer's earlier contacts (``GET /api/contacts/history``): calls and chats with the same
phone, newest first, of the caller's tenant only; roles; bad numbers refused."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from callcenter.api.contacts import HISTORY_LIMIT
from callcenter.models import Agent, CallRecord

from .conftest import T0, World

PHONE = "13800138000"


def _record(engine: Engine, tenant_id: int, minute: int, *, caller: str = PHONE, **extra: Any) -> str:
    record_id = str(uuid.uuid4())
    fields: dict[str, Any] = {"direction": "inbound", "dialed": "4001234567", **extra}
    with Session(engine) as db:
        db.add(CallRecord(id=record_id, sip_call_id=record_id, tenant_id=tenant_id, caller=caller,
                          received_at=T0 + timedelta(minutes=minute), **fields))
        db.commit()
    return record_id


def _agent(engine: Engine, tenant_id: int, user_id: int) -> int:
    with Session(engine) as db:
        agent = Agent(tenant_id=tenant_id, user_id=user_id, skills={})
        db.add(agent)
        db.commit()
        return agent.id


def test_calls_and_chats_of_the_phone_newest_first_with_agent_and_disposition(world: World) -> None:
    agent_id = _agent(world.engine, world.tenant_a, world.users["agent"])
    call = _record(world.engine, world.tenant_a, 0, agent_id=agent_id, queue="sales", disposition="resolved",
                   answered_at=T0 + timedelta(seconds=5), ended_at=T0 + timedelta(seconds=65))
    chat = _record(world.engine, world.tenant_a, 10, channel="chat", dialed="web", queue="support")
    _record(world.engine, world.tenant_a, 20, caller="13900139000")  # another customer
    _record(world.engine, world.tenant_b, 30)  # the same number at another tenant

    for role in ("agent", "supervisor", "admin"):
        reply = world.client.get("/api/contacts/history", params={"phone": "138-0013 8000"},
                                 headers=world.login(role))
        assert reply.status_code == 200, reply.text
        assert reply.json() == [
            {"id": chat, "channel": "chat", "received_at": (T0 + timedelta(minutes=10)).isoformat(),
             "queue": "support", "agent": None, "disposition": None, "duration": None},
            {"id": call, "channel": "voice", "received_at": T0.isoformat(), "queue": "sales",
             "agent": "agent", "disposition": "resolved", "duration": 60.0},
        ]
    beta = world.client.get("/api/contacts/history", params={"phone": PHONE}, headers=world.login("admin", "beta"))
    assert [row["channel"] for row in beta.json()] == ["voice"]  # only beta's own record


def test_at_most_the_last_twenty(world: World) -> None:
    for minute in range(HISTORY_LIMIT + 3):
        _record(world.engine, world.tenant_a, minute)
    rows = world.client.get("/api/contacts/history", params={"phone": PHONE}, headers=world.login("agent")).json()
    assert len(rows) == HISTORY_LIMIT
    assert rows[0]["received_at"] > rows[-1]["received_at"]


def test_roles_and_bad_numbers(world: World) -> None:
    assert world.client.get("/api/contacts/history", params={"phone": PHONE}).status_code == 401
    refused = world.client.get("/api/contacts/history", params={"phone": PHONE}, headers=world.login("qa"))
    assert refused.status_code == 403
    agent = world.login("agent")
    for bad in ("", "12", "abc", "+86 138 0013 8000 x", "1" * 33, "1" * 41, "1;drop"):
        reply = world.client.get("/api/contacts/history", params={"phone": bad}, headers=agent)
        assert reply.status_code == 422, (bad, reply.text)
    assert world.client.get("/api/contacts/history", headers=agent).status_code == 422
