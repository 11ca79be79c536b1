"""PostgreSQL stopped under the node: nothing waits or fails for it, everything written once it is back.

A real PostgreSQL server of this module's own (tests/support/postgres.py), stopped with
``pg_ctl stop -m fast|immediate`` and started again on the same port and data. The call-record
store keeps what calls write meanwhile and writes it, in order and exactly once, when the
server is back; the API answers 503 ``database-unavailable`` in between (never a 500); the
node's engine notices the outage and its end by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from starlette.testclient import WebSocketDenialResponse

from callcenter.api import AppContext, create_app
from callcenter.cdr import CallRecordStore
from callcenter.db import make_engine, migrate
from callcenter.db_health import DatabaseHealth
from callcenter.metrics import REGISTRY
from callcenter.models import CallEvent, CallRecord, IvrTrace, Recording, Role, Voicemail
from callcenter.settings import Settings
from sip_bridge.tones import detect_tone
from tests.support.endpoint import EndpointHarness, routing_table
from tests.support.node import NodeProcess, admin_client
from tests.support.postgres import PostgresNotFound, PostgresServer, fresh_database

from .conftest import PASSWORD, T0, add_tenant, add_user, start_call
from .test_softphone_calls import CALLER_TONE, Caller, Clients, answered_by, call_in, eventually

AGENT_TONE = 1400.0


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    """A PostgreSQL server these tests may stop and start (not the session's shared one)."""
    try:
        server = PostgresServer()
    except PostgresNotFound as exc:
        pytest.fail(str(exc), pytrace=False)
    server.start()
    yield server
    if server.proc is None:  # a failed test left it halted
        server.resume()
    server.stop()


@pytest.fixture
def engine(pg: PostgresServer) -> Iterator[Engine]:
    """Overrides conftest's SQLite engine: a migrated fresh database on the stoppable server."""
    with fresh_database(pg.url()) as url:
        eng = make_engine(url)
        migrate(eng)
        yield eng
        eng.dispose()
        if pg.proc is None:  # the database is dropped on the way out: the server must be up
            pg.resume()


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _until(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


def _lines(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


async def test_call_records_are_held_through_an_outage_and_written_once_when_it_is_back(
        pg: PostgresServer, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    tenant = add_tenant(engine, "alpha")
    store = CallRecordStore(engine)
    await store.start()
    try:
        before = await start_call(store, tenant)  # committed while the server is up
        pg.halt("fast")
        caplog.set_level(logging.INFO, logger="callcenter.cdr")
        # what calls write meanwhile: nothing raises, nothing waits for the database
        async with asyncio.timeout(5):
            await store.call_answered(before, answered_at=T0 + timedelta(seconds=2), codec="PCMA")
            await store.call_event(before, tenant_id=tenant, kind="answered", at=T0 + timedelta(seconds=2))
            await store.ivr_trace(before, tenant_id=tenant, flow_version_id=None, result="queue: sales",
                                  trace={"steps": [{"node": "menu"}]})
            during = [await start_call(store, tenant, T0 + timedelta(seconds=10 + i)) for i in range(20)]
            for i, record_id in enumerate(during):
                await store.call_answered(record_id, answered_at=T0 + timedelta(seconds=11 + i), codec="PCMU")
                await store.call_event(record_id, tenant_id=tenant, kind="answered",
                                       at=T0 + timedelta(seconds=11 + i))
                await store.voicemail(record_id, tenant_id=tenant, path=f"/vm/{record_id}.wav", seconds=3.5)
                await store.call_ended(record_id, ended_at=T0 + timedelta(seconds=40 + i), end_cause="normal_clearing",
                                       hangup_side="caller", sip_status=200)
            await store.call_ended(before, ended_at=T0 + timedelta(seconds=60), end_cause="normal_clearing",
                                   hangup_side="callee", sip_status=200)
        assert store.database_down
        assert _metric("callcenter_cdr_pending_operations") >= 1 + 4 * 20
        await asyncio.sleep(2.5)  # retries fail meanwhile, quietly
        assert len(_lines(caplog, "call-record operations waiting")) == 1  # once per outage, not per call

        pg.resume()
        await _until(lambda: not store.database_down)
        assert _metric("callcenter_cdr_pending_operations") == 0
        assert len(_lines(caplog, "held call-record operations written")) == 1
    finally:
        await store.close()
    with Session(engine) as db:
        records = {r.id: r for r in db.scalars(select(CallRecord))}
        events = db.execute(select(CallEvent.call_id, func.count()).group_by(CallEvent.call_id)).all()
        voicemails = db.execute(select(Voicemail.call_id, func.count()).group_by(Voicemail.call_id)).all()
        trace = db.get(IvrTrace, before)
    assert set(records) == {before, *during}
    first = records[before]
    assert (first.answered_at, first.ended_at, first.hangup_side) == (T0 + timedelta(seconds=2),
                                                                      T0 + timedelta(seconds=60), "callee")
    for i, record_id in enumerate(during):
        record = records[record_id]
        assert record.received_at == T0 + timedelta(seconds=10 + i)
        assert record.duration == 29.0 and record.end_cause == "normal_clearing"
    assert dict(events) == {r: 1 for r in records}  # exactly once
    assert dict(voicemails) == {r: 1 for r in during}
    assert trace is not None and trace.result == "queue: sales" and trace.trace == {"steps": [{"node": "menu"}]}


async def test_a_commit_whose_answer_is_lost_is_not_written_twice(pg: PostgresServer, engine: Engine,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The server commits, then the connection dies before the client hears so: the store cannot
    know and writes the batch again when the server is back; the rows must not double."""
    tenant = add_tenant(engine, "alpha")
    dialect = engine.dialect
    real_commit = dialect.do_commit
    lost: list[bool] = []

    def commit_then_lose_the_server(dbapi_connection: Any) -> None:
        real_commit(dbapi_connection)
        if not lost:  # the first commit lands; its answer is lost with the server
            lost.append(True)
            pg.halt("immediate")
            dbapi_connection.execute("SELECT 1")  # what the client sees: the connection is gone

    store = CallRecordStore(engine)
    await store.start()
    try:
        record_id = str(uuid.uuid4())
        monkeypatch.setattr(dialect, "do_commit", commit_then_lose_the_server)
        await asyncio.gather(  # queued together: one transaction, committed, its answer lost
            store.call_started(record_id=record_id, sip_call_id="s@test", tenant_id=tenant, trunk_id=None,
                               direction="inbound", caller="1000", dialed="4001234567", received_at=T0),
            store.call_event(record_id, tenant_id=tenant, kind="offered", at=T0),
            store.voicemail(record_id, tenant_id=tenant, path="/vm/1.wav", seconds=1.0))
        await _until(lambda: store.database_down)
        pg.resume()
        await _until(lambda: not store.database_down)
    finally:
        await store.close()
    with Session(engine) as db:
        assert db.scalar(select(func.count()).select_from(CallRecord)) == 1
        assert db.scalar(select(func.count()).select_from(CallEvent)) == 1
        assert db.scalar(select(func.count()).select_from(Voicemail)) == 1


async def test_a_full_backlog_drops_further_records_says_so_once_and_calls_go_on(
        pg: PostgresServer, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    tenant = add_tenant(engine, "alpha")
    store = CallRecordStore(engine, backlog=100)
    await store.start()
    dropped = _metric("callcenter_cdr_dropped_operations_total")
    try:
        kept = [await start_call(store, tenant) for _ in range(3)]
        pg.halt("fast")
        caplog.set_level(logging.INFO, logger="callcenter.cdr")
        async with asyncio.timeout(5):
            held = [await start_call(store, tenant) for _ in range(100)]
            lost = [await start_call(store, tenant) for _ in range(30)]
            for record_id in lost:  # the rest of a dropped call goes too (it would fail without its record)
                await store.call_ended(record_id, ended_at=T0, end_cause="normal_clearing", hangup_side="caller",
                                       sip_status=200)
        await _until(lambda: store.pending == 100)  # the writer has taken them all in
        assert _metric("callcenter_cdr_dropped_operations_total") - dropped == 60
        assert len(_lines(caplog, "call-record backlog full")) == 1
        pg.resume()
        await _until(lambda: not store.database_down)
    finally:
        await store.close()
    with Session(engine) as db:
        assert set(db.scalars(select(CallRecord.id))) == {*kept, *held}


def test_the_api_answers_503_while_the_database_is_down_and_200_when_it_is_back(
        pg: PostgresServer, engine: Engine, tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    tenant = add_tenant(engine, "alpha")
    add_user(engine, tenant, "admin", Role.ADMIN)
    add_user(engine, tenant, "agent", Role.AGENT)
    health = DatabaseHealth(engine)
    outages = _metric("callcenter_database_outages_total")
    ctx = AppContext(settings=Settings(data_dir=tmp_path), engine=engine)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        token = client.post("/api/login", json={"tenant": "alpha", "username": "admin", "password": PASSWORD})
        agent = client.post("/api/login", json={"tenant": "alpha", "username": "agent", "password": PASSWORD})
        client.cookies.clear()
        headers = {"Authorization": f"Bearer {token.json()['token']}"}
        agent_headers = {"Authorization": f"Bearer {agent.json()['token']}"}
        assert client.get("/api/calls", headers=headers).status_code == 200

        pg.halt("fast")
        caplog.set_level(logging.INFO, logger="callcenter")
        down = {"error_id": "database-unavailable", "message": "database unavailable"}
        for path in ("/api/calls", "/api/queues", "/api/users", "/api/tenant", "/api/me", "/api/audit"):
            reply = client.get(path, headers=headers)
            assert (reply.status_code, reply.json()) == (503, down), path
        reply = client.post("/api/login", json={"tenant": "alpha", "username": "admin", "password": PASSWORD})
        assert (reply.status_code, reply.json()) == (503, down)
        assert client.get("/healthz").status_code == 503
        with pytest.raises(WebSocketDenialResponse) as refused:  # refused in the handshake, not a 500
            with client.websocket_connect("/api/agent/ws", headers=agent_headers):
                pass
        assert refused.value.status_code == 503 and refused.value.json() == down
        assert not health.up and _metric("callcenter_database_up") == 0
        assert _metric("callcenter_database_outages_total") == outages + 1
        assert len(_lines(caplog, "database unavailable")) >= 1
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no stack traces

        pg.resume()
        assert client.get("/api/calls", headers=headers).status_code == 200  # no restart needed
        assert client.get("/healthz").json() == {"status": "ok", "db": "ok"}
        assert health.up and _metric("callcenter_database_up") == 1
        assert _metric("callcenter_database_outages_total") == outages + 1
        assert len(_lines(caplog, "database available again")) == 1


# -- a node under calls ---------------------------------------------------------------------

LINE_TEST = "4009990100"
"""A number without a flow: the caller hears a greeting, then their own voice (no agent, no IVR)."""


def _scrape(node: NodeProcess, name: str) -> float:
    for line in httpx.get(f"{node.http}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not on /metrics")


def _records(url: str) -> dict[str, dict[str, Any]]:
    """What the database holds per SIP Call-ID: the record, its events, its IVR trace, its recording."""
    eng = make_engine(url)
    try:
        with Session(eng) as db:
            out: dict[str, dict[str, Any]] = {}
            for record in db.scalars(select(CallRecord)):
                trace = db.get(IvrTrace, record.id)
                out[record.sip_call_id] = {
                    "record": record, "trace": trace.result if trace is not None else None,
                    "events": [(e.kind, e.agent_id) for e in db.scalars(select(CallEvent).where(
                        CallEvent.call_id == record.id).order_by(CallEvent.at))],
                    "recordings": [r.status for r in db.scalars(select(Recording).where(
                        Recording.call_id == record.id))]}
            return out
    finally:
        eng.dispose()


@pytest.mark.interop
async def test_calls_ride_out_a_stopped_postgresql_and_every_record_is_written_when_it_is_back(
        pg: PostgresServer, tmp_path: Path) -> None:
    with fresh_database(pg.url()) as url:
        data = tmp_path / "data"
        data.mkdir()
        node = NodeProcess(data, env={"CALLCENTER_DATABASE_URL": url}).start()
        harness = EndpointHarness(routing_table(outbound_port=node.sip_port))
        await harness.endpoint.start()
        clients = Clients(node)
        try:
            await _ride_out(pg, node, harness, clients, url)
        finally:
            for client in clients.made:
                await client.close()
            await harness.endpoint.stop()
            if pg.proc is None:
                pg.resume()
            node.stop()


async def _ride_out(pg: PostgresServer, node: NodeProcess, harness: EndpointHarness, clients: Clients,
                    url: str) -> None:
    with admin_client(node) as api:
        for queue in api.get("/api/queues").json():  # a short wrap-up, nothing spoken over the audio
            api.patch(f"/api/queues/{queue['id']}", json={"wrapup": 2, "announce_every": None})
        assert api.post("/api/numbers", json={"number": LINE_TEST}).status_code == 201
        token = api.headers["Authorization"]
    agent = await clients.agent("agent1", AGENT_TONE)
    supervisor = await clients.supervisor()

    # before: a caller talking to agent1 through the IVR and the queue, another on the line test
    first, offer = await answered_by(agent, harness)  # 1: sales, agent1
    echo = await _line_test(harness)

    pg.halt("fast")
    stopped = time.time()
    # in progress: media both ways goes on
    await asyncio.sleep(1.5)
    assert first.hears(AGENT_TONE) and detect_tone(agent.heard_pcm(0.5), CALLER_TONE)
    assert echo.hears(CALLER_TONE)
    # new calls: the IVR (flow, calendar), the queue and the agent's answer work without the database
    second = await call_in(harness, "1")  # waits: agent1 is busy
    late_echo = await _line_test(harness)
    with httpx.Client(base_url=node.http, timeout=10, headers={"Authorization": token}) as client:
        down = {"error_id": "database-unavailable", "message": "database unavailable"}
        for path in ("/api/calls", "/api/queues", "/api/recording-settings", f"/api/calls/{offer['call_id']}"):
            reply = client.get(path)
            assert (reply.status_code, reply.json()) == (503, down), path
        assert client.get("/healthz").status_code == 503
        login = client.post("/api/login", json={"tenant": "demo", "username": "admin",
                                                "password": node.admin_password})
        assert (login.status_code, login.json()) == (503, down)
    await first.hang_up()
    await agent.expect("call_ended", timeout=10)
    offer2 = await agent.expect("offer", timeout=30)  # after the wrap-up: the caller who waited
    await agent.send({"type": "accept", "call_id": offer2["call_id"]})
    await eventually(lambda: second.hears(AGENT_TONE), 15)
    assert detect_tone(agent.heard_pcm(0.5), CALLER_TONE)
    # listening in must be in the audit log, which cannot be written now: refused, the wallboard stays
    await supervisor.send({"type": "monitor", "call_id": offer2["call_id"], "mode": "listen"})
    refused = await supervisor.expect("error", ref="monitor")
    assert refused["message"] == "database unavailable: try again in a moment"
    await supervisor.send({"type": "ping", "t": 1})
    await supervisor.expect("pong")
    await late_echo.hang_up()
    await second.hang_up()
    await agent.expect("call_ended", timeout=10)
    await echo.hang_up()
    await asyncio.sleep(1.0)
    assert _scrape(node, "callcenter_database_up") == 0
    assert _scrape(node, "callcenter_cdr_pending_operations") > 0
    ended = time.time()

    pg.resume()
    with httpx.Client(base_url=node.http, timeout=10) as client:
        await eventually(lambda: client.get("/healthz").status_code == 200, 30)  # no restart
        await eventually(lambda: _scrape(node, "callcenter_cdr_pending_operations") == 0, 30)
        assert _scrape(node, "callcenter_database_up") == 1
        assert _scrape(node, "callcenter_database_outages_total") >= 1
        reply = client.get("/api/calls", headers={"Authorization": token})
        assert reply.status_code == 200
    held = [line for line in node.logs() if "call-record operations waiting" in str(line.get("msg"))]
    assert len(held) == 1, held  # one line for the outage, not one per call
    assert not [line for line in node.logs() if line.get("level") in ("ERROR", "CRITICAL")]

    legs = {"first": first.leg, "second": second.leg, "echo": echo.leg, "late_echo": late_echo.leg}
    records = _records(url)
    assert {leg.sip_call_id for leg in legs.values()} <= set(records)
    for name, leg in legs.items():
        found = records[leg.sip_call_id]
        record = found["record"]
        assert record.answered_at is not None and record.ended_at is not None, name
        assert (record.end_cause, record.hangup_side) == ("normal_clearing", "caller"), name
    agent_id = int(node_agent_id(records[first.leg.sip_call_id]))
    for name in ("first", "second"):
        found = records[legs[name].sip_call_id]
        assert found["trace"] == "queue: sales", name
        assert (found["record"].agent_id, found["record"].queue) == (agent_id, "sales"), name
        assert [e for e in found["events"] if e[0] == "answered"] == [("answered", agent_id)], name  # once
    second_record = records[second.leg.sip_call_id]["record"]
    assert stopped <= second_record.received_at.timestamp() <= second_record.ended_at.timestamp() <= ended
    assert records[echo.leg.sip_call_id]["record"].received_at.timestamp() < stopped
    assert records[late_echo.leg.sip_call_id]["trace"] is None  # the line test has no IVR
    # the recording of the call taken during the outage gets its row when the database is back
    await eventually(lambda: _records(url)[second.leg.sip_call_id]["recordings"] == ["complete"], 30)


def node_agent_id(found: dict[str, Any]) -> int:
    agent_id = found["record"].agent_id
    assert agent_id is not None
    return int(agent_id)


async def _line_test(harness: EndpointHarness) -> Caller:
    leg = await harness.endpoint.dial(1, LINE_TEST, caller_id="13900139000")
    caller = Caller(leg)
    await eventually(lambda: caller.hears(CALLER_TONE), 15)  # the greeting, then the caller's own voice
    return caller
