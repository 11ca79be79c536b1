"""Queues and agents through the API: roles, tenant isolation, validation, credentials shown once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import Agent
from sip_bridge.registrar import sip_ha1

from .conftest import World


def test_queue_crud_is_admin_only_and_validated(world: World) -> None:
    admin = world.login("admin")
    created = world.client.post("/api/queues", json={"name": "billing", "strategy": "most_proficient",
                                                     "relax": [{"after": 30, "min_proficiency": 1}]}, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["strategy"] == "most_proficient" and created.json()["wrapup"] == 10.0
    assert world.client.post("/api/queues", json={"name": "billing"}, headers=admin).status_code == 409
    bad = world.client.post("/api/queues", json={"name": "x", "strategy": "random"}, headers=admin)
    assert bad.status_code == 422
    patched = world.client.patch(f"/api/queues/{created.json()['id']}", json={"max_wait": 120,
                                 "on_timeout": {"kind": "queue", "target": "overflow"}}, headers=admin)
    assert patched.json()["max_wait"] == 120 and patched.json()["on_timeout"]["kind"] == "queue"
    assert world.client.patch(f"/api/queues/{created.json()['id']}", json={"ring_timeout": 1},
                              headers=admin).status_code == 422
    supervisor = world.login("supervisor")
    assert [q["name"] for q in world.client.get("/api/queues", headers=supervisor).json()] == ["billing"]
    assert world.client.post("/api/queues", json={"name": "y"}, headers=supervisor).status_code == 403
    assert world.client.get("/api/queues", headers=world.login("agent")).status_code == 403
    beta = world.login("admin", tenant="beta")
    assert world.client.get("/api/queues", headers=beta).json() == []
    assert world.client.delete(f"/api/queues/{created.json()['id']}", headers=beta).status_code == 404
    assert world.client.delete(f"/api/queues/{created.json()['id']}", headers=admin).status_code == 204


def test_agents_get_login_and_sip_credentials_once(world: World) -> None:
    admin = world.login("admin")
    reply = world.client.post("/api/agents", json={"username": "ann", "skills": {"sales": 5, "support": 2}},
                              headers=admin)
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["sip_user"] == "alpha.ann" and body["password"] and body["sip_password"]
    with Session(world.engine) as db:
        agent = db.scalars(select(Agent)).one()
        assert agent.sip_ha1 == sip_ha1("alpha.ann", body["sip_password"])  # only the HA1 is kept
    listed = world.client.get("/api/agents", headers=admin).json()
    assert listed == [{"id": body["id"], "username": "ann", "sip_user": "alpha.ann",
                       "skills": {"sales": 5, "support": 2}, "require_tls": False, "require_srtp": False,
                       "chat_capacity": None, "live": None}]
    assert "password" not in str(listed)
    assert world.client.post("/api/agents", json={"username": "bob", "skills": {"sales": 9}},
                             headers=admin).status_code == 422
    world.login("ann", password=body["password"])  # the login password works


def test_agent_state_changes_are_checked_per_role(world: World) -> None:
    admin = world.login("admin")
    ann = world.client.post("/api/agents", json={"username": "ann", "skills": {"sales": 3}}, headers=admin).json()
    bob = world.client.post("/api/agents", json={"username": "bob", "skills": {"sales": 3}}, headers=admin).json()
    as_ann = world.login("ann", password=ann["password"])
    # another agent's state: forbidden; one's own: needs the node's live ACD (none in this API-only app)
    assert world.client.post(f"/api/agents/{bob['id']}/state", json={"state": "available"},
                             headers=as_ann).status_code == 403
    own = world.client.post(f"/api/agents/{ann['id']}/state", json={"state": "available"}, headers=as_ann)
    assert own.status_code == 503 and own.json()["error_id"] == "acd-unavailable"
    bad_reason = world.client.post(f"/api/agents/{ann['id']}/state", json={"state": "break", "reason": "nap"},
                                   headers=as_ann)
    assert bad_reason.status_code == 422 and "lunch" in bad_reason.json()["message"]
    beta = world.login("admin", tenant="beta")
    assert world.client.post(f"/api/agents/{ann['id']}/state", json={"state": "offline"},
                             headers=beta).status_code == 404
    assert world.client.get(f"/api/agents/{ann['id']}/history", headers=beta).status_code == 404
    assert world.client.get(f"/api/agents/{ann['id']}/history", headers=as_ann).status_code == 403
    assert world.client.get(f"/api/agents/{ann['id']}/history", headers=admin).json() == []
