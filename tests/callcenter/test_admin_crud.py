"""Admin writes: trunks, numbers, users, tenant; each writes an audit row; secrets never returned."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import AuditLog, Trunk, User

from .conftest import World


def _audit(world: World) -> list[AuditLog]:
    with Session(world.engine) as db:
        return list(db.scalars(select(AuditLog).order_by(AuditLog.id)).all())


def test_trunk_lifecycle_audits_and_reloads_routing(world: World) -> None:
    headers = world.login("admin")
    body = {
        "name": "carrier", "inbound_ips": ["192.0.2.1", "198.51.100.0/24"], "outbound_host": "sip.example.net",
        "register": True, "register_username": "u", "register_password": "s3cret", "priority": 5,
    }
    resp = world.client.post("/api/trunks", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    trunk = resp.json()
    assert trunk["register"] is True and trunk["has_register_password"] is True
    assert "register_password" not in trunk and "s3cret" not in resp.text
    assert trunk["inbound_ips"] == ["192.0.2.1", "198.51.100.0/24"]
    resp = world.client.patch(f"/api/trunks/{trunk['id']}", json={"enabled": False}, headers=headers)
    assert resp.status_code == 200 and resp.json()["enabled"] is False
    assert world.client.delete(f"/api/trunks/{trunk['id']}", headers=headers).status_code == 204
    assert world.client.get(f"/api/trunks/{trunk['id']}", headers=headers).status_code == 404
    rows = [r for r in _audit(world) if r.action.startswith("trunk.")]
    assert [r.action for r in rows] == ["trunk.create", "trunk.update", "trunk.delete"]
    assert all(r.tenant_id == world.tenant_a and r.user_id == world.users["admin"] for r in rows)
    assert rows[0].detail["register_password"] == "***"
    assert len(world.routing_changes) == 3


def test_trunk_validation(world: World) -> None:
    headers = world.login("admin")
    bad = [
        {"name": "x", "inbound_ips": ["not-an-ip"]},
        {"name": "x", "outbound_transport": "sctp"},
        {"name": "x", "register": True},
        {"name": "x", "unknown_field": 1},
    ]
    for body in bad:
        resp = world.client.post("/api/trunks", json=body, headers=headers)
        assert resp.status_code == 422 and resp.json()["error_id"] == "invalid-request", body
    assert world.client.post("/api/trunks", json={"name": "dup"}, headers=headers).status_code == 201
    resp = world.client.post("/api/trunks", json={"name": "dup"}, headers=headers)
    assert resp.status_code == 409 and resp.json()["error_id"] == "trunk-name-taken"


def test_numbers_are_unique_across_tenants(world: World) -> None:
    alpha = world.login("admin")
    resp = world.client.post("/api/numbers", json={"number": "4001112222", "description": "sales"}, headers=alpha)
    assert resp.status_code == 201
    beta = world.login("admin", tenant="beta")
    resp = world.client.post("/api/numbers", json={"number": "4001112222"}, headers=beta)
    assert resp.status_code == 409 and resp.json()["error_id"] == "number-taken"
    resp = world.client.post("/api/numbers", json={"number": "40-01"}, headers=beta)
    assert resp.status_code == 422
    assert any(r.action == "number.create" for r in _audit(world))


def test_user_create_hashes_password_and_never_returns_it(world: World) -> None:
    headers = world.login("admin")
    resp = world.client.post(
        "/api/users", json={"username": "bob", "password": "bob-password-1", "role": "agent"}, headers=headers
    )
    assert resp.status_code == 201
    assert "password" not in resp.text and "bob-password-1" not in resp.text
    with Session(world.engine) as db:
        user = db.scalars(select(User).where(User.username == "bob")).one()
    assert user.password_hash.startswith("$argon2id$")
    login = world.client.post("/api/login", json={"tenant": "alpha", "username": "bob", "password": "bob-password-1"})
    assert login.status_code == 200
    create = [r for r in _audit(world) if r.action == "user.create"]
    assert create and "password" not in create[0].detail
    resp = world.client.post(
        "/api/users", json={"username": "bob", "password": "another-pass", "role": "qa"}, headers=headers
    )
    assert resp.status_code == 409 and resp.json()["error_id"] == "username-taken"


def test_password_change_ends_sessions(world: World) -> None:
    admin = world.login("admin")
    qa = world.login("qa")
    resp = world.client.patch(f"/api/users/{world.users['qa']}", json={"password": "new-password-9"}, headers=admin)
    assert resp.status_code == 200
    assert world.client.get("/api/me", headers=qa).status_code == 401
    assert any(r.detail.get("password_changed") is True for r in _audit(world) if r.action == "user.update")


def test_admin_cannot_delete_or_demote_self(world: World) -> None:
    headers = world.login("admin")
    me = world.users["admin"]
    resp = world.client.delete(f"/api/users/{me}", headers=headers)
    assert resp.status_code == 409 and resp.json()["error_id"] == "cannot-delete-self"
    resp = world.client.patch(f"/api/users/{me}", json={"role": "agent"}, headers=headers)
    assert resp.status_code == 409 and resp.json()["error_id"] == "cannot-demote-self"


def test_delete_user(world: World) -> None:
    headers = world.login("admin")
    assert world.client.delete(f"/api/users/{world.users['agent']}", headers=headers).status_code == 204
    assert world.client.get(f"/api/users/{world.users['agent']}", headers=headers).status_code == 404
    assert any(r.action == "user.delete" for r in _audit(world))


def test_tenant_prefixes(world: World) -> None:
    headers = world.login("admin")
    resp = world.client.patch("/api/tenant", json={"outbound_prefixes": ["1", "86", "1"]}, headers=headers)
    assert resp.status_code == 200 and resp.json()["outbound_prefixes"] == ["1", "86"]
    assert world.client.patch("/api/tenant", json={"outbound_prefixes": ["x1"]}, headers=headers).status_code == 422
    assert world.client.get("/api/tenant", headers=world.login("agent")).json()["slug"] == "alpha"
    assert world.routing_changes


def test_deleting_a_trunk_keeps_its_call_records(world: World) -> None:
    import uuid

    from callcenter.models import CallRecord, utcnow

    headers = world.login("admin")
    trunk_id = world.client.post("/api/trunks", json={"name": "t"}, headers=headers).json()["id"]
    call_id = str(uuid.uuid4())
    with Session(world.engine) as db:
        db.add(CallRecord(id=call_id, sip_call_id="x", tenant_id=world.tenant_a, trunk_id=trunk_id,
                          direction="inbound", caller="1", dialed="2", received_at=utcnow()))
        db.commit()
    assert world.client.delete(f"/api/trunks/{trunk_id}", headers=headers).status_code == 204
    call = world.client.get(f"/api/calls/{call_id}", headers=headers).json()
    assert call["trunk_id"] is None
    with Session(world.engine) as db:
        assert db.get(Trunk, trunk_id) is None
