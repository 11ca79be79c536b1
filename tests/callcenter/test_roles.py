"""Role checks: every endpoint has one; non-admins get 403 on admin endpoints."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from callcenter.api import acd, audit, auth, calls, flows, numbers, tenants, trunks, users

from .conftest import World

ADMIN_ENDPOINTS = [
    ("GET", "/api/trunks", None),
    ("POST", "/api/trunks", {"name": "t"}),
    ("GET", "/api/trunks/1", None),
    ("PATCH", "/api/trunks/1", {"priority": 1}),
    ("DELETE", "/api/trunks/1", None),
    ("GET", "/api/numbers", None),
    ("POST", "/api/numbers", {"number": "4000000000"}),
    ("PATCH", "/api/numbers/1", {"description": "x"}),
    ("DELETE", "/api/numbers/1", None),
    ("GET", "/api/users", None),
    ("POST", "/api/users", {"username": "x", "password": "longenough", "role": "agent"}),
    ("PATCH", "/api/users/1", {"role": "qa"}),
    ("DELETE", "/api/users/1", None),
    ("GET", "/api/audit", None),
    ("PATCH", "/api/tenant", {"name": "x"}),
]


@pytest.mark.parametrize("role", ["supervisor", "agent", "qa"])
def test_non_admin_roles_get_403_on_admin_endpoints(world: World, role: str) -> None:
    headers = world.login(role)
    for method, path, body in ADMIN_ENDPOINTS:
        resp = world.client.request(method, path, json=body, headers=headers)
        assert resp.status_code == 403, (role, method, path, resp.text)
        assert resp.json()["error_id"] == "forbidden"


def test_unauthenticated_gets_401_on_admin_endpoints(world: World) -> None:
    for method, path, body in ADMIN_ENDPOINTS + [("GET", "/api/calls", None), ("GET", "/api/tenant", None)]:
        resp = world.client.request(method, path, json=body)
        assert resp.status_code == 401, (method, path)
        assert resp.json()["error_id"] == "not-authenticated"


def test_agent_cannot_read_call_records(world: World) -> None:
    resp = world.client.get("/api/calls", headers=world.login("agent"))
    assert resp.status_code == 403 and resp.json()["error_id"] == "forbidden"


@pytest.mark.parametrize("role", ["admin", "supervisor", "qa"])
def test_call_readers(world: World, role: str) -> None:
    assert world.client.get("/api/calls", headers=world.login(role)).status_code == 200


def _role_checks(dependant: Any) -> list[Any]:
    found = []
    for dep in dependant.dependencies:
        if hasattr(dep.call, "role_check"):
            found.append(dep.call.role_check)
        found.extend(_role_checks(dep))
    return found


def test_every_route_declares_a_role_check_or_public(world: World) -> None:
    routes = [r for m in (auth, tenants, trunks, numbers, users, calls, audit, flows, acd) for r in m.router.routes]
    routes += [r for r in world.client.app.routes if isinstance(r, APIRoute)]  # type: ignore[attr-defined]
    assert len(routes) > 20
    for route in routes:
        assert isinstance(route, APIRoute)
        assert _role_checks(route.dependant), f"{route.methods} {route.path} has no role dependency"


def test_unknown_route_has_error_id(world: World) -> None:
    resp = world.client.get("/api/nothing-here")
    assert resp.status_code == 404 and resp.json()["error_id"] == "not-found"


def test_validation_error_has_error_id(world: World) -> None:
    resp = world.client.post("/api/login", json={"tenant": "alpha"})
    assert resp.status_code == 422 and resp.json()["error_id"] == "invalid-request"
