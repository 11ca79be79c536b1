"""The PostgreSQL path, against a real server (tests/support/postgres.py), no mocks.

Every test gets a fresh database with a unique name (dropped afterwards) whose sessions
default to a non-UTC time zone, so local/UTC mix-ups show. The ``engine`` fixture of
conftest is overridden here: ``world`` (API client, tenants, users) runs on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import DateTime, Engine, event, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from callcenter.cdr import CallRecordStore, recent_records
from callcenter.db import MIGRATION_LOCK_ID, make_engine, migrate
from callcenter.demo import DEMO_ADMIN, DEMO_OUTBOUND, DEMO_SLUG, ensure_demo_tenant
from callcenter.metrics import REGISTRY
from callcenter import tenancy
from callcenter.models import PLATFORM_SLUG, Base, CallRecord, Number, Role, Tenant, Trunk, User
from tests.support.postgres import TEST_TIMEZONE, admin_execute, fresh_database

from .conftest import T0, World, add_tenant, add_user, start_call
from .test_migrations import HEAD, check_0004_kept_the_0003_data, schema_diff, seed_0003
from .test_operator import check_export_then_delete
from .test_recordings_api import check_search



@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    """An empty database of its own for this test."""
    with fresh_database(postgres_url) as url:
        yield url


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    """Overrides conftest's SQLite engine: a migrated fresh PostgreSQL database."""
    eng = make_engine(pg_url)
    migrate(eng)
    yield eng
    eng.dispose()


def _is_utc(value: datetime | None) -> bool:
    return value is not None and value.tzinfo is not None and value.utcoffset() == timedelta(0)


# -- schema -------------------------------------------------------------------------


def test_migrations_apply_are_idempotent_and_match_models(pg_url: str) -> None:
    eng = make_engine(pg_url)
    try:
        assert eng.dialect.name == "postgresql"
        migrate(eng)
        migrate(eng)
        migrate(pg_url)  # the URL form, as `callcenter serve` does
        with eng.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
        insp = inspect(eng)
        assert set(Base.metadata.tables) | {"alembic_version"} == set(insp.get_table_names())
        assert schema_diff(eng) == []
        for table in Base.metadata.sorted_tables:
            # timestamptz everywhere: naive timestamps would be read in the session's zone
            db_types = {c["name"]: c["type"] for c in insp.get_columns(table.name)}
            for column in table.columns:
                if isinstance(column.type, DateTime) or isinstance(getattr(column.type, "impl", None), DateTime):
                    assert getattr(db_types[column.name], "timezone", False), (table.name, column.name)
            # alembic does not compare CHECK constraints: make sure they are there
            wanted = {c.name for c in table.constraints if c.__class__.__name__ == "CheckConstraint"}
            assert wanted <= {c["name"] for c in insp.get_check_constraints(table.name)}, table.name
    finally:
        eng.dispose()


def test_concurrent_migrations_wait_for_each_other(pg_url: str) -> None:
    """Nodes starting together on one database: each migrate() takes an advisory lock, so
    the second finds the schema done instead of racing on CREATE TABLE."""
    code = "import sys; from callcenter.db import migrate; migrate(sys.argv[1])"
    eng = make_engine(pg_url)
    try:
        with eng.connect() as conn, conn.begin():
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_ID})
            procs = [
                subprocess.Popen([sys.executable, "-c", code, pg_url], stderr=subprocess.PIPE, text=True)
                for _ in range(2)
            ]
            deadline = time.monotonic() + 30
            waiting = 0
            while waiting < 2:
                assert all(p.poll() is None for p in procs), "a migration ran without waiting for the lock"
                assert time.monotonic() < deadline, "migrations never queued on the advisory lock"
                time.sleep(0.05)
                waiting = conn.execute(
                    text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                ).scalar_one()
        # our transaction ended: the lock is free, one migrates, the other finds head
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
        with eng.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
        assert schema_diff(eng) == []
    finally:
        eng.dispose()


def test_0004_upgrades_a_0003_database_in_use(pg_url: str) -> None:
    eng = make_engine(pg_url)
    try:
        seed_0003(eng)
        migrate(eng)
        check_0004_kept_the_0003_data(eng)
    finally:
        eng.dispose()


def test_database_session_zone_is_not_utc(engine: Engine) -> None:
    # Guards the premise of the datetime assertions below.
    with engine.connect() as conn:
        assert conn.execute(text("SHOW timezone")).scalar() == TEST_TIMEZONE


# -- call records --------------------------------------------------------------------


async def test_group_commit_of_100_concurrent_calls(store: CallRecordStore, engine: Engine) -> None:
    tenant = add_tenant(engine, "alpha")
    batches_before = REGISTRY.get_sample_value("callcenter_cdr_batch_size_count") or 0
    starts = [T0 + timedelta(seconds=i) for i in range(100)]
    ids = await asyncio.gather(*(start_call(store, tenant, at) for at in starts))
    with Session(engine) as db:  # another connection sees them: committed
        assert set(db.scalars(select(CallRecord.id)).all()) == set(ids)

    async def finish(i: int, record_id: str) -> None:
        await store.call_answered(record_id, answered_at=starts[i] + timedelta(seconds=2), codec="PCMU")
        await store.call_ended(record_id, ended_at=starts[i] + timedelta(seconds=12.25), end_cause="normal_clearing",
                               hangup_side="caller", sip_status=200)

    await asyncio.gather(*(finish(i, r) for i, r in enumerate(ids)))
    batches = (REGISTRY.get_sample_value("callcenter_cdr_batch_size_count") or 0) - batches_before
    assert 1 <= batches < 300  # grouped: fewer commits than the 300 writes

    with Session(engine) as db:
        records = {r.id: r for r in db.scalars(select(CallRecord)).all()}
    assert len(records) == 100
    for i, record_id in enumerate(ids):
        r = records[record_id]
        assert r.tenant_id == tenant and r.codec == "PCMU" and r.end_cause == "normal_clearing"
        assert _is_utc(r.received_at) and _is_utc(r.answered_at) and _is_utc(r.ended_at)
        assert r.received_at == starts[i]
        assert r.duration == 10.25
    # The stored instants are right, not merely symmetric: ask the server in UTC.
    with engine.connect() as conn:
        first = conn.execute(
            text("SELECT received_at AT TIME ZONE 'UTC' FROM call_records WHERE id = :id"), {"id": ids[0]}
        ).scalar()
    assert first == T0.replace(tzinfo=None)


async def test_one_bad_row_fails_alone(store: CallRecordStore, engine: Engine) -> None:
    # On PostgreSQL a failed statement aborts the whole transaction: the retry must
    # start over per operation.
    results = await asyncio.gather(*(start_call(store) for _ in range(10)), start_call(store, tenant_id=999),
                                   return_exceptions=True)
    assert all(isinstance(r, str) for r in results[:10])
    assert isinstance(results[10], Exception)
    with Session(engine) as db:
        assert db.scalar(select(func.count()).select_from(CallRecord)) == 10


async def test_over_long_sip_values_are_clipped_not_lost(store: CallRecordStore, engine: Engine) -> None:
    # Caller, dialed number, Call-ID and codec come from the SIP peer, unbounded;
    # PostgreSQL enforces varchar(n) where SQLite does not.
    record_id = str(uuid.uuid4())
    caller, dialed, call_id = "1" * 300, "4" * 300, "c" * 400 + "@peer.example"
    await store.call_started(record_id=record_id, sip_call_id=call_id, tenant_id=None, trunk_id=None,
                             direction="inbound", caller=caller, dialed=dialed, received_at=T0)
    await store.call_answered(record_id, answered_at=T0, codec="X" * 40)
    await store.call_ended(record_id, ended_at=T0 + timedelta(seconds=1), end_cause="e" * 80, hangup_side="caller",
                           sip_status=200)
    with Session(engine) as db:
        record = db.get(CallRecord, record_id)
    assert record is not None
    assert (record.caller, record.dialed, record.sip_call_id) == (caller[:255], dialed[:255], call_id[:255])
    assert record.codec == "X" * 32 and record.end_cause == "e" * 64 and record.duration == 1.0


async def test_call_record_commits_are_synchronous_even_if_the_database_defaults_to_async(
    postgres_url: str, pg_url: str
) -> None:
    """The store's awaitable promises a durable row: with synchronous_commit=off set for the
    database (a common tuning), its transactions must still wait for the WAL flush."""
    admin_execute(postgres_url, f'ALTER DATABASE "{make_url(pg_url).database}" SET synchronous_commit TO off')
    eng = make_engine(pg_url)
    migrate(eng)
    seen: list[str] = []

    @event.listens_for(eng, "after_cursor_execute")
    def _record(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT INTO CALL_RECORDS", "UPDATE CALL_RECORDS")):
            seen.append(cursor.connection.execute("SHOW synchronous_commit").fetchone()[0])

    try:
        with eng.connect() as conn:
            assert conn.execute(text("SHOW synchronous_commit")).scalar() == "off"
        store = CallRecordStore(eng)
        await store.start()
        try:
            ids = await asyncio.gather(*(start_call(store) for _ in range(5)))
            await store.call_ended(ids[0], ended_at=T0, end_cause="normal_clearing", hangup_side="caller",
                                   sip_status=200)
        finally:
            await store.close()
        assert seen and set(seen) == {"on"}
        with eng.connect() as conn:  # the setting did not leak into the pooled connection
            assert conn.execute(text("SHOW synchronous_commit")).scalar() == "off"
    finally:
        eng.dispose()


async def test_close_dangling_interrupts_open_records(store: CallRecordStore, engine: Engine) -> None:
    open_ids = [await start_call(store), await start_call(store)]
    done_id = await start_call(store)
    await store.call_ended(done_id, ended_at=T0, end_cause="normal_clearing", hangup_side="caller", sip_status=200)
    await store.close()
    before = datetime.now(timezone.utc)
    restarted = CallRecordStore(engine)  # as a node restarting after a crash
    assert restarted.close_dangling() == 2
    with Session(engine) as db:
        for record_id in open_ids:
            record = db.get(CallRecord, record_id)
            assert record is not None and record.end_cause == "interrupted"
            assert record.ended_at is not None and _is_utc(record.ended_at)
            assert record.ended_at >= before - timedelta(seconds=1)
        done = db.get(CallRecord, done_id)
        assert done is not None and done.end_cause == "normal_clearing" and done.ended_at == T0
    assert restarted.close_dangling() == 0


async def test_recent_records_newest_first(store: CallRecordStore, engine: Engine) -> None:
    alpha = add_tenant(engine, "alpha")
    beta = add_tenant(engine, "beta")
    ids = [await start_call(store, alpha if i % 2 == 0 else beta, T0 + timedelta(minutes=i)) for i in range(6)]
    rows = recent_records(engine)
    assert [r["id"] for r in rows] == list(reversed(ids))
    assert rows[0]["received_at"] == (T0 + timedelta(minutes=5)).isoformat()
    assert all(r["received_at"].endswith("+00:00") for r in rows)
    assert {r["tenant"] for r in rows} == {"alpha", "beta"}
    alpha_rows = recent_records(engine, limit=2, tenant_id=alpha)
    assert [r["id"] for r in alpha_rows] == [ids[4], ids[2]]


# -- API -------------------------------------------------------------------------------


def test_api_login_and_tenant_isolation(world: World) -> None:
    client = world.client
    assert client.get("/healthz").json() == {"status": "ok", "db": "ok"}
    alpha = world.login("admin")
    resp = client.post("/api/trunks", json={"name": "alpha-trunk", "inbound_ips": ["192.0.2.1", "198.51.100.0/24"]},
                       headers=alpha)
    assert resp.status_code == 201, resp.text
    trunk_id = resp.json()["id"]
    with Session(world.engine) as db:
        call = CallRecord(id=str(uuid.uuid4()), sip_call_id="c1", tenant_id=world.tenant_a, trunk_id=trunk_id,
                          direction="inbound", caller="100", dialed="4001", received_at=T0)
        db.add(call)
        db.commit()
        call_id = call.id

    assert client.get(f"/api/trunks/{trunk_id}", headers=alpha).json()["inbound_ips"] == ["192.0.2.1",
                                                                                         "198.51.100.0/24"]
    calls = client.get("/api/calls", headers=alpha, params={"since": "2025-01-01T12:00:00Z"}).json()
    assert [c["id"] for c in calls] == [call_id]
    assert datetime.fromisoformat(calls[0]["received_at"].replace("Z", "+00:00")) == T0
    assert client.get("/api/calls", headers=alpha, params={"since": "2025-01-01T12:00:01Z"}).json() == []
    audit = client.get("/api/audit", headers=alpha).json()
    create = next(a for a in audit if a["action"] == "trunk.create")
    assert create["detail"]["name"] == "alpha-trunk"

    beta = world.login("admin", tenant="beta")
    for path, error_id in ((f"/api/calls/{call_id}", "call-not-found"), (f"/api/trunks/{trunk_id}", "trunk-not-found")):
        resp = client.get(path, headers=beta)
        assert resp.status_code == 404 and resp.json()["error_id"] == error_id, (path, resp.text)
    assert client.delete(f"/api/trunks/{trunk_id}", headers=beta).status_code == 404
    assert client.get("/api/calls", headers=beta).json() == []
    assert client.get("/api/trunks", headers=beta).json() == []
    assert client.get(f"/api/trunks/{trunk_id}", headers=alpha).status_code == 200

    assert client.post("/api/logout", headers=beta).status_code == 204
    assert client.get("/api/me", headers=beta).status_code == 401


def test_demo_tenant_is_idempotent_and_its_admin_can_log_in(world: World) -> None:
    password = ensure_demo_tenant(world.engine).admin
    assert password
    assert ensure_demo_tenant(world.engine).admin is None
    again = ensure_demo_tenant(world.engine)
    assert again.agents == {} and again.staff == {}
    with Session(world.engine) as db:
        tenant = db.scalars(select(Tenant).where(Tenant.slug == DEMO_SLUG)).one()
        assert tenant.outbound_prefixes == DEMO_OUTBOUND
        # admin, qa, supervisor and the two agents
        for model, expected in ((Number, 2), (Trunk, 1), (User, 5)):
            count = db.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant.id))
            assert count == expected, model.__name__
    headers = world.login(DEMO_ADMIN, tenant=DEMO_SLUG, password=password)
    assert world.client.get("/api/tenant", headers=headers).json()["outbound_prefixes"] == DEMO_OUTBOUND
    trunks = world.client.get("/api/trunks", headers=headers).json()
    assert [t["name"] for t in trunks] == ["demo-carrier"]
    beta = world.login("admin", tenant="beta")
    assert world.client.get(f"/api/trunks/{trunks[0]['id']}", headers=beta).status_code == 404


async def test_agent_desk_events_and_wrapup(world: World, store: CallRecordStore) -> None:
    """Call events and the answering agent from the writer thread, wrap-up and history through the API."""
    admin = world.login("admin")
    made = world.client.post("/api/agents", json={"username": "ann", "skills": {"sales": 3}}, headers=admin).json()
    ann, as_ann = made["id"], world.login("ann", password=made["password"])
    record_id = await start_call(store, world.tenant_a)
    await store.call_agent(record_id, agent_id=ann, queue="sales")
    await store.call_event(record_id, tenant_id=world.tenant_a, kind="answered", at=T0 + timedelta(seconds=1),
                           agent_id=ann, detail={"queue": "sales"})
    saved = world.client.post(f"/api/calls/{record_id}/wrapup", json={"disposition": "resolved", "notes": "ok"},
                              headers=as_ann)
    assert saved.status_code == 200, saved.text
    assert [c["disposition"] for c in world.client.get("/api/agent/calls", headers=as_ann).json()] == ["resolved"]
    shown = world.client.get(f"/api/calls/{record_id}", headers=admin).json()
    assert shown["agent"] == {"id": ann, "username": "ann"} and shown["queue"] == "sales"
    assert [(e["kind"], e["agent"]["username"]) for e in shown["events"]] == [("answered", "ann"), ("wrapup", "ann")]
    assert _is_utc(datetime.fromisoformat(shown["events"][0]["at"]))
    assert datetime.fromisoformat(shown["events"][0]["at"]) == T0 + timedelta(seconds=1)
    beta = world.login("admin", tenant="beta")
    assert world.client.post(f"/api/calls/{record_id}/wrapup", json={"disposition": "resolved"},
                             headers=beta).status_code == 404


def test_transcript_search_uses_postgres_full_text(world: World, data_dir: Path) -> None:
    check_search(world, data_dir)


def test_operator_exports_and_deletes_a_tenant_on_postgres(world: World, data_dir: Path) -> None:
    """The delete's cascades on PostgreSQL (no FTS table there; the sequence never reuses an id)."""
    with Session(world.engine) as db:
        platform_id = tenancy.ensure_platform(db).id
        db.commit()
    add_user(world.engine, platform_id, "ops", Role.OPERATOR)
    check_export_then_delete(world, world.login("ops", tenant=PLATFORM_SLUG), data_dir)
