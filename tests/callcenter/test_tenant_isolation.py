"""Tenant A never sees or changes tenant B's rows: other tenants' ids are 404, lists are filtered."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from callcenter.models import CallRecord, Number, Trunk, utcnow

from .conftest import World


def _seed_beta(world: World) -> dict[str, object]:
    with Session(world.engine) as db:
        trunk = Trunk(tenant_id=world.tenant_b, name="beta-trunk", inbound_ips=["10.0.0.1"])
        number = Number(tenant_id=world.tenant_b, number="4009999999")
        db.add_all([trunk, number])
        db.flush()
        call = CallRecord(
            id=str(uuid.uuid4()), sip_call_id="c1", tenant_id=world.tenant_b, trunk_id=trunk.id,
            direction="inbound", caller="100", dialed="4009999999", received_at=utcnow(),
        )
        db.add(call)
        db.commit()
        return {"trunk": trunk.id, "number": number.id, "call": call.id, "user": world.users["beta-admin"]}


def test_admin_of_a_gets_404_for_b_rows(world: World) -> None:
    ids = _seed_beta(world)
    headers = world.login("admin")
    for kind, path in (("trunk", "trunks"), ("number", "numbers"), ("user", "users")):
        target = f"/api/{path}/{ids[kind]}"
        for method, body in (("GET", None), ("PATCH", {}), ("DELETE", None)):
            resp = world.client.request(method, target, json=body, headers=headers)
            assert resp.status_code == 404, (method, target, resp.text)
            assert resp.json()["error_id"] == f"{kind}-not-found"
    resp = world.client.get(f"/api/calls/{ids['call']}", headers=headers)
    assert resp.status_code == 404 and resp.json()["error_id"] == "call-not-found"


def test_b_rows_survive_a_admin_attempts(world: World) -> None:
    ids = _seed_beta(world)
    headers = world.login("admin")
    world.client.delete(f"/api/trunks/{ids['trunk']}", headers=headers)
    world.client.patch(f"/api/users/{ids['user']}", json={"role": "agent"}, headers=headers)
    beta = world.login("admin", tenant="beta")
    assert world.client.get(f"/api/trunks/{ids['trunk']}", headers=beta).status_code == 200
    assert world.client.get(f"/api/users/{ids['user']}", headers=beta).json()["role"] == "admin"


def test_lists_only_show_own_tenant(world: World) -> None:
    _seed_beta(world)
    headers = world.login("admin")
    assert world.client.get("/api/trunks", headers=headers).json() == []
    assert world.client.get("/api/numbers", headers=headers).json() == []
    assert world.client.get("/api/calls", headers=headers).json() == []
    usernames = {u["username"] for u in world.client.get("/api/users", headers=headers).json()}
    assert usernames == {"admin", "supervisor", "agent", "qa"}
    beta = world.login("admin", tenant="beta")
    assert [t["name"] for t in world.client.get("/api/trunks", headers=beta).json()] == ["beta-trunk"]
    assert len(world.client.get("/api/calls", headers=beta).json()) == 1


def test_audit_is_per_tenant(world: World) -> None:
    headers = world.login("admin")
    world.client.post("/api/trunks", json={"name": "a-trunk"}, headers=headers)
    beta = world.login("admin", tenant="beta")
    actions = [row["action"] for row in world.client.get("/api/audit", headers=beta).json()]
    assert "trunk.create" not in actions


def test_node_trunk_status_only_for_own_trunks(world: World) -> None:
    ids = _seed_beta(world)
    world.status["trunks"] = {ids["trunk"]: "up"}
    beta = world.login("admin", tenant="beta")
    assert world.client.get(f"/api/trunks/{ids['trunk']}", headers=beta).json()["status"] == "up"
