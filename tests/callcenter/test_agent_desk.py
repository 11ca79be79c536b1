"""The agent desk: tenant wrap-up codes, an agent's call history, wrap-up, call events.

Through the API (roles, tenant isolation, validation) and through the call-record
store (events and the answering agent written by the writer thread).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from callcenter.cdr import CallRecordStore, recent_records, record_detail
from callcenter.cli import main
from callcenter.desk import save_wrapup
from callcenter.models import DEFAULT_DISPOSITIONS, Agent, AuditLog, CallEvent, CallRecord, Role, Tenant, utcnow

from .conftest import T0, World, add_tenant, add_user, start_call

DEFAULT = [dict(d) for d in DEFAULT_DISPOSITIONS]


def _agent(world: World, username: str, tenant: str = "alpha") -> tuple[int, dict[str, str]]:
    """A new agent of ``tenant`` (created by its admin): (agent id, its login headers)."""
    made = world.client.post("/api/agents", json={"username": username, "skills": {"sales": 3}},
                             headers=world.login("admin", tenant=tenant))
    assert made.status_code == 201, made.text
    return made.json()["id"], world.login(username, tenant=tenant, password=made.json()["password"])


def _call(engine: Engine, tenant_id: int, agent_id: int | None, minute: int = 0, **extra: Any) -> str:
    record_id = str(uuid.uuid4())
    with Session(engine) as db:
        db.add(CallRecord(id=record_id, sip_call_id=f"{record_id}@t", tenant_id=tenant_id, direction="inbound",
                          caller=f"1380000{minute:04d}", dialed="4001234567",
                          received_at=T0 + timedelta(minutes=minute),
                          answered_at=T0 + timedelta(minutes=minute, seconds=5),
                          ended_at=T0 + timedelta(minutes=minute, seconds=65), agent_id=agent_id, queue="sales",
                          **extra))
        db.commit()
    return record_id


# -- dispositions --------------------------------------------------------------------------

def test_every_role_reads_the_dispositions_only_admins_replace_them(world: World) -> None:
    for role in ("agent", "qa", "supervisor", "admin"):
        assert world.client.get("/api/dispositions", headers=world.login(role)).json() == DEFAULT
    new = [{"code": "sale", "label": "Sale"}, {"code": "no-sale", "label": "  No sale  "}]
    for role in ("agent", "qa", "supervisor"):
        refused = world.client.put("/api/dispositions", json=new, headers=world.login(role))
        assert refused.status_code == 403 and refused.json()["error_id"] == "forbidden"
    assert world.client.get("/api/dispositions").status_code == 401
    admin = world.login("admin")
    stored = world.client.put("/api/dispositions", json=new, headers=admin)
    assert stored.status_code == 200, stored.text
    expected = [{"code": "sale", "label": "Sale"}, {"code": "no-sale", "label": "No sale"}]
    assert stored.json() == expected
    assert world.client.get("/api/dispositions", headers=world.login("agent")).json() == expected
    beta = world.login("admin", tenant="beta")
    assert world.client.get("/api/dispositions", headers=beta).json() == DEFAULT  # other tenants untouched
    with Session(world.engine) as db:
        audit = db.scalars(select(AuditLog).where(AuditLog.action == "dispositions.update")).one()
        assert audit.tenant_id == world.tenant_a and audit.detail["after"] == expected
        assert audit.detail["before"] == DEFAULT


def test_disposition_lists_are_validated(world: World) -> None:
    admin = world.login("admin")
    ok = {"code": "ok", "label": "OK"}
    bad_lists: list[Any] = [
        [],
        [{"code": f"c{i}", "label": "x"} for i in range(51)],
        [{"code": "Bad Code", "label": "x"}],
        [{"code": "", "label": "x"}],
        [{"code": "c" * 65, "label": "x"}],
        [ok, {"code": "ok", "label": "again"}],
        [{"code": "ok", "label": ""}],
        [{"code": "ok", "label": "   "}],
        [{"code": "ok", "label": "x" * 101}],
        [{"code": "ok", "label": "OK", "colour": "red"}],
        [{"code": "ok"}],
        {"code": "ok", "label": "OK"},
    ]
    for body in bad_lists:
        resp = world.client.put("/api/dispositions", json=body, headers=admin)
        assert resp.status_code == 422, body
        assert resp.json()["error_id"] == "invalid-request"
    assert "twice" in world.client.put("/api/dispositions", json=[ok, ok], headers=admin).json()["message"]
    assert world.client.get("/api/dispositions", headers=admin).json() == DEFAULT
    fifty = [{"code": f"c{i}", "label": "x" * 100} for i in range(50)]
    assert world.client.put("/api/dispositions", json=fifty, headers=admin).status_code == 200


def test_tenant_switch_for_recording_pause(world: World) -> None:
    admin = world.login("admin")
    assert world.client.get("/api/tenant", headers=admin).json()["recording_pause_allowed"] is False
    patched = world.client.patch("/api/tenant", json={"recording_pause_allowed": True}, headers=admin)
    assert patched.status_code == 200 and patched.json()["recording_pause_allowed"] is True
    assert world.client.patch("/api/tenant", json={"recording_pause_allowed": True},
                              headers=world.login("supervisor")).status_code == 403


# -- wrap-up -------------------------------------------------------------------------------

def test_an_agent_wraps_up_their_own_call(world: World) -> None:
    ann, as_ann = _agent(world, "ann")
    call = _call(world.engine, world.tenant_a, ann)
    resp = world.client.post(f"/api/calls/{call}/wrapup", json={"disposition": "follow_up", "notes": "call back"},
                             headers=as_ann)
    assert resp.status_code == 200, resp.text
    assert resp.json()["disposition"] == "follow_up" and resp.json()["disposition_label"] == "Follow-up needed"
    with Session(world.engine) as db:
        record = db.get(CallRecord, call)
        assert record is not None and record.disposition == "follow_up" and record.wrapup_notes == "call back"
        assert record.wrapup_at is not None and abs((utcnow() - record.wrapup_at).total_seconds()) < 60
        event = db.scalars(select(CallEvent).where(CallEvent.call_id == call)).one()
        assert (event.kind, event.agent_id, event.tenant_id) == ("wrapup", ann, world.tenant_a)
        assert event.detail == {"disposition": "follow_up", "notes": "call back"}
    shown = world.client.get(f"/api/calls/{call}", headers=world.login("supervisor")).json()
    assert shown["disposition"] == "follow_up" and shown["wrapup_notes"] == "call back"
    assert shown["agent"] == {"id": ann, "username": "ann"} and shown["queue"] == "sales"
    assert [(e["kind"], e["agent"]) for e in shown["events"]] == [("wrapup", {"id": ann, "username": "ann"})]


def test_other_agents_and_other_tenants_calls_are_404(world: World) -> None:
    ann, as_ann = _agent(world, "ann")
    bob, _ = _agent(world, "bob")
    zed, _ = _agent(world, "zed", tenant="beta")
    bobs = _call(world.engine, world.tenant_a, bob)
    betas = _call(world.engine, world.tenant_b, zed)
    nobodys = _call(world.engine, world.tenant_a, None)
    body = {"disposition": "resolved", "notes": ""}
    for call in (bobs, betas, nobodys, "no-such-call"):
        resp = world.client.post(f"/api/calls/{call}/wrapup", json=body, headers=as_ann)
        assert resp.status_code == 404 and resp.json()["error_id"] == "call-not-found", call
    for role in ("supervisor", "admin"):  # any call of their tenant, none of another
        headers = world.login(role)
        assert world.client.post(f"/api/calls/{bobs}/wrapup", json=body, headers=headers).status_code == 200
        assert world.client.post(f"/api/calls/{betas}/wrapup", json=body, headers=headers).status_code == 404
    assert world.client.post(f"/api/calls/{bobs}/wrapup", json=body, headers=world.login("qa")).status_code == 403
    assert world.client.post(f"/api/calls/{bobs}/wrapup", json=body).status_code == 401
    with Session(world.engine) as db:
        assert db.get(CallRecord, betas).disposition is None  # type: ignore[union-attr]
        events = db.scalars(select(CallEvent).where(CallEvent.call_id == bobs)).all()
        assert [(e.agent_id, e.detail["user_id"]) for e in events] == [  # type: ignore[index]
            (None, world.users["supervisor"]), (None, world.users["admin"])]
        assert db.scalar(select(AuditLog.action).where(AuditLog.target == f"call:{bobs}")) == "call.wrapup"


def test_unknown_disposition_is_422_and_lists_the_codes(world: World) -> None:
    ann, as_ann = _agent(world, "ann")
    call = _call(world.engine, world.tenant_a, ann)
    resp = world.client.post(f"/api/calls/{call}/wrapup", json={"disposition": "sold"}, headers=as_ann)
    assert resp.status_code == 422 and resp.json()["error_id"] == "invalid-request"
    assert "resolved, follow_up, escalated, wrong_number" in resp.json()["message"]
    long = world.client.post(f"/api/calls/{call}/wrapup", json={"disposition": "resolved", "notes": "x" * 2001},
                             headers=as_ann)
    assert long.status_code == 422
    assert world.client.post(f"/api/calls/{call}/wrapup", json={"disposition": "resolved", "notes": "x" * 2000},
                             headers=as_ann).status_code == 200
    with Session(world.engine) as db:
        assert db.get(CallRecord, call).disposition == "resolved"  # type: ignore[union-attr]


def test_after_a_transfer_the_first_agent_still_wraps_up(world: World) -> None:
    """The record names the agent who took over; the first agent's answer is an event."""
    ann, as_ann = _agent(world, "ann")
    bob, as_bob = _agent(world, "bob")
    call = _call(world.engine, world.tenant_a, bob)
    with Session(world.engine) as db:
        db.add(CallEvent(call_id=call, tenant_id=world.tenant_a, at=T0, kind="answered", agent_id=ann))
        db.commit()
    resp = world.client.post(f"/api/calls/{call}/wrapup", json={"disposition": "escalated"}, headers=as_ann)
    assert resp.status_code == 200, resp.text
    assert [c["id"] for c in world.client.get("/api/agent/calls", headers=as_ann).json()] == [call]
    assert [c["id"] for c in world.client.get("/api/agent/calls", headers=as_bob).json()] == [call]


# -- the agent's history -------------------------------------------------------------------

def test_agent_history_lists_only_their_own_calls_newest_first(world: World) -> None:
    ann, as_ann = _agent(world, "ann")
    bob, _ = _agent(world, "bob")
    zed, _ = _agent(world, "zed", tenant="beta")
    mine = [_call(world.engine, world.tenant_a, ann, minute=m) for m in (1, 3, 2)]
    _call(world.engine, world.tenant_a, bob, minute=4)
    _call(world.engine, world.tenant_b, zed, minute=5)
    _call(world.engine, world.tenant_a, None, minute=6)
    world.client.post(f"/api/calls/{mine[1]}/wrapup", json={"disposition": "wrong_number", "notes": "n"},
                      headers=as_ann)
    rows = world.client.get("/api/agent/calls", headers=as_ann).json()
    assert [r["id"] for r in rows] == [mine[1], mine[2], mine[0]]
    assert rows[0] == {"id": mine[1], "direction": "inbound", "caller": "13800000003", "dialed": "4001234567",
                       "queue": "sales",
                       "answered_at": (T0 + timedelta(minutes=3, seconds=5)).isoformat(),
                       "ended_at": (T0 + timedelta(minutes=3, seconds=65)).isoformat(), "duration": 60.0,
                       "disposition": "wrong_number", "disposition_label": "Wrong number", "notes": "n"}
    assert rows[1]["disposition"] is None and rows[1]["disposition_label"] is None
    assert len(world.client.get("/api/agent/calls", params={"limit": 2}, headers=as_ann).json()) == 2
    assert world.client.get("/api/agent/calls", params={"limit": 0}, headers=as_ann).status_code == 422
    # a code the tenant removed later still shows
    world.client.put("/api/dispositions", json=[{"code": "sale", "label": "Sale"}], headers=world.login("admin"))
    assert world.client.get("/api/agent/calls", headers=as_ann).json()[0]["disposition_label"] == "wrong_number"


def test_history_needs_an_agent_profile(world: World) -> None:
    # the fixture's "agent" user has the agent role but no agent row
    headers = world.login("agent")
    for resp in (world.client.get("/api/agent/calls", headers=headers),
                 world.client.post(f"/api/calls/{_call(world.engine, world.tenant_a, None)}/wrapup",
                                   json={"disposition": "resolved"}, headers=headers)):
        assert resp.status_code == 403 and resp.json() == {"error_id": "no-agent-profile",
                                                           "message": "this user has no agent profile"}
    for role in ("supervisor", "admin", "qa"):
        assert world.client.get("/api/agent/calls", headers=world.login(role)).status_code == 403


# -- the call-record store -----------------------------------------------------------------

def _agent_row(engine: Engine, tenant_id: int, username: str) -> int:
    user_id = add_user(engine, tenant_id, username, Role.AGENT)
    with Session(engine) as db:
        agent = Agent(tenant_id=tenant_id, user_id=user_id, skills={})
        db.add(agent)
        db.commit()
        return agent.id


async def test_store_writes_agent_and_events_in_order(store: CallRecordStore, engine: Engine) -> None:
    tenant = add_tenant(engine, "alpha")
    ann, bob = _agent_row(engine, tenant, "ann"), _agent_row(engine, tenant, "bob")
    record_id = str(uuid.uuid4())
    # submitted together (usually one batch): applied in FIFO order, the events after the record's insert
    await asyncio.gather(
        store.call_started(record_id=record_id, sip_call_id="s", tenant_id=tenant, trunk_id=None,
                           direction="inbound", caller="100", dialed="200", received_at=T0),
        store.call_event(record_id, tenant_id=tenant, kind="offered", at=T0 + timedelta(seconds=1), agent_id=ann,
                         detail={"queue": "sales"}),
        store.call_agent(record_id, agent_id=ann, queue="sales"),
        store.call_event(record_id, tenant_id=tenant, kind="answered", at=T0 + timedelta(seconds=2), agent_id=ann),
        store.call_event(record_id, tenant_id=tenant, kind="transfer", at=T0 + timedelta(seconds=9), agent_id=ann,
                         detail={"to": "bob"}),
        store.call_agent(record_id, agent_id=bob, queue="support"),  # a later answer overwrites
        store.call_event(record_id, tenant_id=tenant, kind="answered", at=T0 + timedelta(seconds=3), agent_id=bob),
    )
    detail = record_detail(engine, record_id)
    assert detail is not None
    assert detail["agent"] == {"id": bob, "username": "bob"} and detail["queue"] == "support"
    assert [(e["kind"], e["agent"]["username"]) for e in detail["events"]] == [  # ordered by time
        ("offered", "ann"), ("answered", "ann"), ("answered", "bob"), ("transfer", "ann")]
    assert detail["events"][0] == {"at": (T0 + timedelta(seconds=1)).isoformat(), "kind": "offered",
                                   "agent": {"id": ann, "username": "ann"}, "detail": {"queue": "sales"}}
    assert detail["disposition"] is None and detail["wrapup_notes"] is None and detail["wrapup_at"] is None
    assert record_detail(engine, record_id, tenant_id=tenant + 1) is None
    listed = recent_records(engine)[0]
    assert (listed["agent"], listed["queue"], listed["disposition"]) == ({"id": bob, "username": "bob"},
                                                                         "support", None)


async def test_an_event_without_a_record_fails_alone(store: CallRecordStore, engine: Engine) -> None:
    tenant = add_tenant(engine, "alpha")
    good = await start_call(store, tenant)
    results = await asyncio.gather(
        store.call_event(good, tenant_id=tenant, kind="answered", at=T0),
        store.call_event("no-such-call", tenant_id=tenant, kind="answered", at=T0),
        return_exceptions=True,
    )
    assert results[0] is None and isinstance(results[1], Exception)
    detail = record_detail(engine, good)
    assert detail is not None and [e["kind"] for e in detail["events"]] == ["answered"]


async def test_deleting_an_agent_keeps_their_calls(store: CallRecordStore, engine: Engine) -> None:
    tenant = add_tenant(engine, "alpha")
    ann = _agent_row(engine, tenant, "ann")
    record_id = await start_call(store, tenant)
    await store.call_agent(record_id, agent_id=ann, queue="sales")
    await store.call_event(record_id, tenant_id=tenant, kind="answered", at=T0, agent_id=ann)
    with Session(engine) as db:
        db.delete(db.get(Agent, ann))
        db.commit()
    detail = record_detail(engine, record_id)
    assert detail is not None and detail["agent"] is None and detail["queue"] == "sales"
    assert [(e["kind"], e["agent"]) for e in detail["events"]] == [("answered", None)]
    with Session(engine) as db:  # and deleting the tenant removes the events with it
        db.delete(db.get(Tenant, tenant))
        db.commit()
        assert db.scalars(select(CallEvent)).all() == []


async def test_cli_shows_agent_wrapup_and_events(store: CallRecordStore, engine: Engine, data_dir: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    tenant = add_tenant(engine, "alpha")
    ann = _agent_row(engine, tenant, "ann")
    record_id = await start_call(store, tenant)
    await store.call_agent(record_id, agent_id=ann, queue="sales")
    await store.call_event(record_id, tenant_id=tenant, kind="answered", at=T0, agent_id=ann)
    with Session(engine) as db:
        save_wrapup(db, tenant, ann, record_id, "escalated", "to billing")
        db.commit()
    assert main(["cdr", "show", record_id, "--data-dir", str(data_dir)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["agent"] == {"id": ann, "username": "ann"} and shown["queue"] == "sales"
    assert (shown["disposition"], shown["wrapup_notes"]) == ("escalated", "to billing") and shown["wrapup_at"]
    assert [e["kind"] for e in shown["events"]] == ["answered", "wrapup"]
    assert main(["cdr", "list", "--data-dir", str(data_dir)]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[-4:] == ["agent", "queue", "disposition", "node"]
    assert row.split()[-4:] == ["ann", "sales", "escalated", "-"]  # a single node names none
