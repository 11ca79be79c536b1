"""Fixtures: a migrated SQLite database in tmp_path, tenants, users and an API client;
a real throwaway PostgreSQL server for the PostgreSQL tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from callcenter.api import AppContext, create_app
from callcenter.cdr import CallRecordStore
from callcenter.db import make_engine, migrate
from callcenter.models import TENANT_ROLES, Role, Tenant, User, utcnow
from callcenter.security import hash_password
from callcenter.settings import Settings

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("CALLCENTER_"):
            monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    # Same algorithm (argon2id), test-sized cost: the suite hashes dozens of passwords.
    from argon2 import PasswordHasher

    import callcenter.security

    monkeypatch.setattr(callcenter.security, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server on loopback for this test session (see tests/support/postgres.py):
    URL of a database on it, as its superuser (who may create more databases)."""
    from tests.support.postgres import PostgresNotFound, PostgresServer, create_database

    try:
        server = PostgresServer()
    except PostgresNotFound as exc:
        # Not a skip: CI installs the package (./dev test), so missing binaries are a setup bug.
        pytest.fail(str(exc), pytrace=False)
    server.start()
    try:
        yield create_database(server.url(), "callcenter_test")
    finally:
        server.stop()


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    """A migrated PostgreSQL database of the test's own on the session's server (a cluster's database)."""
    from tests.support.postgres import fresh_database

    with fresh_database(postgres_url) as url:
        eng = make_engine(url)
        migrate(eng)
        yield eng
        eng.dispose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def engine(data_dir: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{data_dir}/callcenter.db")
    migrate(eng)
    yield eng
    eng.dispose()


def add_tenant(engine: Engine, slug: str, prefixes: list[str] | None = None) -> int:
    with Session(engine) as db:
        tenant = Tenant(name=slug.title(), slug=slug, outbound_prefixes=prefixes or [], created_at=utcnow())
        db.add(tenant)
        db.commit()
        return tenant.id


def add_user(engine: Engine, tenant_id: int, username: str, role: Role, password: str = PASSWORD) -> int:
    with Session(engine) as db:
        user = User(
            tenant_id=tenant_id,
            username=username,
            password_hash=hash_password(password),
            role=role.value,
            active=True,
            created_at=utcnow(),
        )
        db.add(user)
        db.commit()
        return user.id


@dataclass
class World:
    """Two tenants, A with one user per role, B with an admin."""

    engine: Engine
    client: TestClient
    tenant_a: int
    tenant_b: int
    users: dict[str, int]
    routing_changes: list[int] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)

    def login(self, username: str, tenant: str = "alpha", password: str = PASSWORD) -> dict[str, str]:
        resp = self.client.post("/api/login", json={"tenant": tenant, "username": username, "password": password})
        assert resp.status_code == 200, resp.text
        # Bearer only: drop the cookie so tests authenticate exactly as they say.
        self.client.cookies.clear()
        return {"Authorization": f"Bearer {resp.json()['token']}"}


@pytest.fixture
def world(engine: Engine, data_dir: Path) -> Iterator[World]:
    tenant_a = add_tenant(engine, "alpha")
    tenant_b = add_tenant(engine, "beta")
    users = {role.value: add_user(engine, tenant_a, role.value, role) for role in TENANT_ROLES}
    users["beta-admin"] = add_user(engine, tenant_b, "admin", Role.ADMIN)
    changes: list[int] = []
    status: dict[str, Any] = {}
    ctx = AppContext(
        settings=Settings(data_dir=data_dir),
        engine=engine,
        node_status=lambda: status,
        on_routing_changed=lambda: changes.append(1),
    )
    with TestClient(create_app(ctx)) as client:
        yield World(engine, client, tenant_a, tenant_b, users, changes, status)


@pytest.fixture
def make_headers(world: World) -> Callable[..., dict[str, str]]:
    return world.login


T0 = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
async def store(engine: Engine) -> AsyncIterator[CallRecordStore]:
    """A started call-record store on the test's engine (SQLite, or PostgreSQL where overridden)."""
    s = CallRecordStore(engine)
    await s.start()
    yield s
    await s.close()


async def start_call(store: CallRecordStore, tenant_id: int | None = None, at: datetime = T0) -> str:
    """Record an inbound call attempt; returns its record id."""
    record_id = str(uuid.uuid4())
    await store.call_started(
        record_id=record_id, sip_call_id=f"{record_id}@test", tenant_id=tenant_id, trunk_id=None,
        direction="inbound", caller="1000", dialed="4001234567", received_at=at,
    )
    return record_id
