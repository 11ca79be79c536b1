"""State the nodes of a cluster share (issue 14), on a real PostgreSQL: each call record names its
node, a node's start closes only its own records, a survivor closes a dead node's records and
finishes its recordings from the shared folder, and the wallboard thresholds live in the database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from callcenter.cdr import CallRecordStore
from callcenter.models import CallRecord, QueueThreshold, Recording, Role, Transcript
from callcenter.node_reaper import NodeReaper
from callcenter.recording_service import RecordingService, TenantKeys
from callcenter.wallboard import THRESHOLD_FILE, Thresholds, ThresholdStore, import_threshold_file
from cluster.liveness import UP, NodeInfo
from recordings.journal import JournalWriter
from recordings.recorder import CHANNELS, RATE
from recordings.storage import LocalStorage

from .conftest import PASSWORD, T0, add_tenant, add_user

MASTER_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


@pytest.fixture
def engine(pg_engine: Engine) -> Engine:
    """The cluster's PostgreSQL (overrides conftest's SQLite)."""
    return pg_engine


async def started(store: CallRecordStore, at: datetime = T0, tenant_id: int | None = None) -> str:
    record_id = f"{store.node_id or 'single'}-{time.monotonic_ns()}"
    await store.call_started(record_id=record_id, sip_call_id=f"{record_id}@test", tenant_id=tenant_id,
                             trunk_id=None, direction="inbound", caller="1000", dialed="4001234567",
                             received_at=at)
    return record_id


def record(engine: Engine, record_id: str) -> CallRecord:
    with Session(engine) as db:
        row = db.get(CallRecord, record_id)
        assert row is not None
        return row


# -- call records ---------------------------------------------------------------------------------


async def test_a_node_starting_closes_only_its_own_records(engine: Engine) -> None:
    n1, n2, single = (CallRecordStore(engine, node_id=n) for n in ("n1", "n2", None))
    for store in (n1, n2, single):
        await store.start()
    try:
        mine, theirs, legacy = await started(n1), await started(n2), await started(single)
    finally:
        for store in (n1, n2, single):
            await store.close()
    assert record(engine, mine).node_id == "n1" and record(engine, legacy).node_id is None
    assert CallRecordStore(engine, node_id="n1").close_dangling() == 1  # n1 restarting
    assert record(engine, mine).end_cause == "interrupted"
    assert record(engine, theirs).ended_at is None  # n2's call goes on
    assert record(engine, legacy).ended_at is None
    assert CallRecordStore(engine).close_dangling() == 1  # a single node: the records without a node
    assert record(engine, legacy).end_cause == "interrupted" and record(engine, theirs).ended_at is None


async def test_a_dead_nodes_records_are_closed_node_lost_at_its_death(engine: Engine) -> None:
    n1, n2 = CallRecordStore(engine, node_id="n1"), CallRecordStore(engine, node_id="n2")
    await n1.start()
    await n2.start()
    died = T0 + timedelta(minutes=10)
    try:
        talking = await started(n2, T0)
        await n2.call_answered(talking, answered_at=T0 + timedelta(seconds=5), codec="PCMA")
        late = await started(n2, died + timedelta(seconds=1))  # arrived after the death estimate
        ended = await started(n2, T0)
        await n2.call_ended(ended, ended_at=T0 + timedelta(seconds=30), end_cause="normal_clearing",
                            hangup_side="caller", sip_status=200)
        next_run = await started(n2, died + timedelta(seconds=20))  # a new run of n2, started again
        survivor = await started(n1, T0)
    finally:
        await n1.close()
        await n2.close()
    closed = n1.close_node("n2", died_at=died, received_before=died + timedelta(seconds=15))
    assert closed == 2
    lost = record(engine, talking)
    assert (lost.end_cause, lost.hangup_side, lost.ended_at) == ("node_lost", "platform", died)
    assert lost.duration == 595.0
    after = record(engine, late)  # it cannot have ended before it arrived
    assert after.end_cause == "node_lost" and after.ended_at == died + timedelta(seconds=1)
    assert record(engine, ended).end_cause == "normal_clearing"
    assert record(engine, next_run).ended_at is None and record(engine, survivor).ended_at is None


async def test_the_agents_node_is_shown_by_the_api_and_the_cli(engine: Engine, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from callcenter.api import AppContext, create_app
    from callcenter.settings import Settings

    tenant = add_tenant(engine, "alpha")
    add_user(engine, tenant, "boss", Role.ADMIN)
    from callcenter.models import Agent

    with Session(engine) as db:
        agent = Agent(tenant_id=tenant, user_id=add_user(engine, tenant, "ann", Role.AGENT), skills={})
        db.add(agent)
        db.commit()
        agent_id = agent.id
    n1, n2 = CallRecordStore(engine, node_id="n1"), CallRecordStore(engine, node_id="n2")
    await n1.start()
    await n2.start()
    try:
        call = await started(n1, T0, tenant)
        # n1 handed the caller over to n2, where an agent answered it
        await n2.call_agent(call, agent_id=agent_id, queue="sales", handed_over=True)
    finally:
        await n1.close()
        await n2.close()
    url = engine.url.render_as_string(hide_password=False)
    shown = subprocess.run([sys.executable, "-m", "callcenter", "cdr", "show", call, "--database-url", url],
                           capture_output=True, text=True, check=True)
    detail = json.loads(shown.stdout)
    assert (detail["node"], detail["agent_node"], detail["agent"]["username"]) == ("n1", "n2", "ann")
    listed = subprocess.run([sys.executable, "-m", "callcenter", "cdr", "list", "--database-url", url],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    assert listed[0].split()[-1] == "node" and listed[1].split()[-1] == "n1/n2"
    ctx = AppContext(settings=Settings(data_dir=tmp_path), engine=engine)
    with TestClient(create_app(ctx)) as client:
        token = client.post("/api/login", json={"tenant": "alpha", "username": "boss",
                                                "password": PASSWORD}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        [listed_call] = client.get("/api/calls", headers=headers).json()
        assert (listed_call["node"], listed_call["agent_node"]) == ("n1", "n2")
        one = client.get(f"/api/calls/{call}", headers=headers).json()
        assert (one["node"], one["agent_node"]) == ("n1", "n2")


# -- recordings of a dead node -------------------------------------------------------------------


def journal(storage: LocalStorage, keys: TenantKeys, tenant: int, recording_id: str, call_id: str,
            seconds: float) -> Path:
    """A live recording's journal as a node writes it: a tone on the caller's side."""
    header = {"recording_id": recording_id, "tenant_id": tenant, "call_id": call_id,
              "started_at": T0.isoformat(), "format": "opus", "rate": RATE, "encoding": "mulaw",
              "channels": list(CHANNELS)}
    writer = JournalWriter(storage.journal_path(tenant, recording_id), keys.get(tenant), header)
    writer.append_audio(bytes([0x10, 0xFF]) * int(seconds * RATE))
    writer.flush()  # then the node is killed: no close
    return writer.path


def recording_row(engine: Engine, recording_id: str, tenant: int, call_id: str) -> None:
    with Session(engine) as db:
        db.add(Recording(id=recording_id, tenant_id=tenant, call_id=call_id, status="recording", format="opus",
                         started_at=T0, pauses=[], legal_hold=False))
        db.commit()


def test_each_node_journals_in_its_own_folder_and_finishes_only_its_own(engine: Engine, tmp_path: Path) -> None:
    tenant = add_tenant(engine, "alpha")
    shared = tmp_path / "recordings"
    keys = TenantKeys(engine, MASTER_KEY)
    n1, n2 = LocalStorage(shared, "n1"), LocalStorage(shared, "n2")
    assert n2.journal_path(tenant, "r2") == shared / f"tenant-{tenant}/journal/n2/r2.ccj"
    mine = journal(n1, keys, tenant, "r1", "c1", 1.0)
    theirs = journal(n2, keys, tenant, "r2", "c2", 1.0)
    recording_row(engine, "r2", tenant, "c2")  # n2's live recording
    recording_row(engine, "gone", tenant, "c3")  # a recording that never got audio
    assert RecordingService(engine, n1, keys).recover() == ["r1"]  # n1 restarting
    assert not mine.exists() and theirs.exists()
    with Session(engine) as db:
        assert db.get(Recording, "r2").status == "recording"  # type: ignore[union-attr]
        assert db.get(Recording, "gone") is None


async def test_a_survivor_reaps_a_dead_node(engine: Engine, tmp_path: Path) -> None:
    tenant = add_tenant(engine, "alpha")
    shared = tmp_path / "recordings"
    keys = TenantKeys(engine, MASTER_KEY)
    n1_storage = LocalStorage(shared, "n1")
    n2 = CallRecordStore(engine, node_id="n2")
    await n2.start()
    now = datetime.now(timezone.utc)
    try:
        call = await started(n2, now - timedelta(seconds=20), tenant)
    finally:
        await n2.close()
    journal(LocalStorage(shared, "n2"), keys, tenant, "r9", call, 2.0)
    recording_row(engine, "r9", tenant, call)
    transcribe: list[str] = []
    recordings = RecordingService(engine, n1_storage, keys, on_stored=transcribe.append)
    told: list[str] = []
    reaper = NodeReaper(CallRecordStore(engine, node_id="n1"), recordings, listeners=[told.append])
    info = NodeInfo("n2", "127.0.0.12:5060", "http://127.0.0.12:8000", UP, int((now.timestamp() - 60) * 1000))
    seen_dead = now.timestamp()
    await reaper.reaped(info, seen_dead)
    lost = record(engine, call)
    assert (lost.end_cause, lost.hangup_side) == ("node_lost", "platform")
    assert lost.ended_at == datetime.fromtimestamp(seen_dead - 3.0, timezone.utc)  # its heartbeat's TTL before
    with Session(engine) as db:
        row = db.get(Recording, "r9")
        assert row is not None and row.status == "incomplete" and row.duration == pytest.approx(2.0, abs=0.05)
        assert db.get(Transcript, "r9") is not None  # queued for transcription
    assert transcribe == ["r9"] and told == ["n2"]
    assert not (shared / f"tenant-{tenant}/journal/n2/r9.ccj").exists()


async def test_a_reaper_waits_out_a_database_outage(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    """The cleanup's steps are tried again while the database is down (here: until the second try)."""
    from sqlalchemy.exc import OperationalError

    attempts: list[str] = []

    class FlakyRecords:
        def close_node(self, node_id: str, **_: object) -> int:
            attempts.append(node_id)
            if len(attempts) == 1:
                raise OperationalError("UPDATE", {}, Exception("connection refused"))
            return 1

    class NoRecordings:
        def finish_node(self, node: str) -> list[str]:
            return []

        def stored(self, recording_ids: list[str]) -> None:
            raise AssertionError("nothing was stored")

    told: list[str] = []
    reaper = NodeReaper(FlakyRecords(), NoRecordings(), listeners=[told.append], retry=0.01)
    with caplog.at_level(logging.WARNING, logger="callcenter.node_reaper"):
        await reaper.reaped(NodeInfo("n3", "127.0.0.13:5060", "http://127.0.0.13:8000", UP, 0), time.time())
    assert attempts == ["n3", "n3"] and told == ["n3"]
    assert [r.message for r in caplog.records].count("database unavailable: a lost node's cleanup waits for it") == 1


# -- wallboard thresholds --------------------------------------------------------------------------


async def test_thresholds_set_on_one_node_show_on_the_others(engine: Engine) -> None:
    tenant = add_tenant(engine, "alpha")
    node1, node2 = ThresholdStore(engine, max_age=0.0), ThresholdStore(engine, max_age=0.0)
    assert node2.get(tenant) == {}
    node1.put(tenant, "sales", Thresholds(OLDEST_CONTACT_AGE=30, SERVICE_LEVEL=None))
    assert node1.get(tenant) == {"sales": Thresholds(30, None)}  # at once where it was set
    deadline = time.monotonic() + 10
    while node2.get(tenant) != {"sales": Thresholds(30, None)}:  # the other refreshes in the background
        assert time.monotonic() < deadline, node2.get(tenant)
        await asyncio.sleep(0.01)
    node1.put(tenant, "sales", Thresholds(OLDEST_CONTACT_AGE=45, SERVICE_LEVEL=70))  # an update, not a 2nd row
    with Session(engine) as db:
        assert db.scalars(select(QueueThreshold)).all()[0].service_level == 70


def test_the_thresholds_file_is_imported_once(engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    alpha, beta = add_tenant(engine, "alpha"), add_tenant(engine, "beta")
    ThresholdStore(engine).put(beta, "support", Thresholds(OLDEST_CONTACT_AGE=5, SERVICE_LEVEL=95))
    path = tmp_path / THRESHOLD_FILE
    path.write_text(json.dumps({str(alpha): {"sales": {"OLDEST_CONTACT_AGE": 90, "SERVICE_LEVEL": None},
                                             "support": {"SERVICE_LEVEL": 60}},
                                str(beta): {"support": {"OLDEST_CONTACT_AGE": 1, "SERVICE_LEVEL": 1}},
                                "999": {"sales": {"SERVICE_LEVEL": 10}}}))  # a tenant deleted since
    assert import_threshold_file(engine, tmp_path) == 2
    store = ThresholdStore(engine)
    assert store.get(alpha) == {"sales": Thresholds(90, None), "support": Thresholds(60, 60)}
    assert store.get(beta) == {"support": Thresholds(5, 95)}  # set through the API since: kept
    assert not path.exists() and (tmp_path / f"{THRESHOLD_FILE}.imported").exists()
    assert import_threshold_file(engine, tmp_path) == 0  # once
    path.write_text("{not json")
    with caplog.at_level(logging.ERROR, logger="callcenter.wallboard"):
        assert import_threshold_file(engine, tmp_path) == 0
    assert path.exists() and "supervisor thresholds file not imported" in caplog.text  # left for a person to fix
