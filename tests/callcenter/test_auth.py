"""Login by cookie and bearer token, logout, wrong credentials, stored password hashes."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import ApiToken, User
from callcenter.security import COOKIE_NAME, hash_token

from .conftest import PASSWORD, World


def test_login_sets_httponly_cookie_and_cookie_authenticates(world: World) -> None:
    resp = world.client.post("/api/login", json={"tenant": "alpha", "username": "admin", "password": PASSWORD})
    assert resp.status_code == 200
    body = resp.json()
    assert body["role"] == "admin" and body["tenant"]["slug"] == "alpha" and body["user"]["username"] == "admin"
    cookie = resp.headers["set-cookie"]
    assert f"{COOKIE_NAME}=" in cookie and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    me = world.client.get("/api/me")  # the client replays the cookie
    assert me.status_code == 200 and me.json()["user"]["username"] == "admin"


def test_bearer_token_authenticates(world: World) -> None:
    headers = world.login("supervisor")
    me = world.client.get("/api/me", headers=headers)
    assert me.status_code == 200 and me.json()["role"] == "supervisor"


def test_token_is_stored_hashed(world: World) -> None:
    token = world.login("admin")["Authorization"].split()[1]
    with Session(world.engine) as db:
        hashes = db.scalars(select(ApiToken.token_hash)).all()
    assert hash_token(token) in hashes and token not in hashes


def test_wrong_password_is_401_invalid_credentials(world: World) -> None:
    resp = world.client.post("/api/login", json={"tenant": "alpha", "username": "admin", "password": "nope"})
    assert resp.status_code == 401 and resp.json()["error_id"] == "invalid-credentials"
    assert COOKIE_NAME not in resp.headers.get("set-cookie", "")


def test_unknown_tenant_or_user_is_the_same_401(world: World) -> None:
    for body in ({"tenant": "nope", "username": "admin", "password": PASSWORD},
                 {"tenant": "alpha", "username": "ghost", "password": PASSWORD}):
        resp = world.client.post("/api/login", json=body)
        assert resp.status_code == 401 and resp.json()["error_id"] == "invalid-credentials"


def test_same_username_in_other_tenant_needs_its_tenant(world: World) -> None:
    resp = world.client.post("/api/login", json={"tenant": "beta", "username": "admin", "password": PASSWORD})
    assert resp.json()["tenant"]["slug"] == "beta"


def test_unauthenticated_is_401_not_authenticated(world: World) -> None:
    for headers in ({}, {"Authorization": "Bearer bogus"}, {"Authorization": "Basic abc"}):
        resp = world.client.get("/api/me", headers=headers)
        assert resp.status_code == 401
        assert resp.json()["error_id"] == "not-authenticated" and resp.json()["message"]


def test_logout_revokes_token(world: World) -> None:
    headers = world.login("admin")
    assert world.client.post("/api/logout", headers=headers).status_code == 204
    assert world.client.get("/api/me", headers=headers).status_code == 401


def test_passwords_are_argon2_hashes(world: World) -> None:
    with Session(world.engine) as db:
        hashes = db.scalars(select(User.password_hash)).all()
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert PASSWORD not in hashes


def test_deactivated_user_loses_session_and_login(world: World) -> None:
    admin = world.login("admin")
    agent = world.login("agent")
    resp = world.client.patch(f"/api/users/{world.users['agent']}", json={"active": False}, headers=admin)
    assert resp.status_code == 200
    assert world.client.get("/api/me", headers=agent).status_code == 401
    login = world.client.post("/api/login", json={"tenant": "alpha", "username": "agent", "password": PASSWORD})
    assert login.status_code == 401
