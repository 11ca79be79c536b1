"""The supervisor's live view on a demo node: the metrics endpoint, the wallboard WebSocket with a
sipp caller waiting in a queue, thresholds, logging an agent out, roles and tenant isolation.

Update latency is measured from the ACD event itself: every pushed snapshot carries
``trigger.first_at``, the engine time (wall clock, same host) of the first ACD event it answers;
the snapshot showing the caller in the queue must arrive within 1 s of that time. The
``Queued`` event is published by the engine in the same step in which the IVR hands the call to
the queue, so this is the time from the IVR's hand-off to the wallboard receiving the update.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.node import NodeProcess, add_tenant, free_port
from tests.support.pcap import ivr_call_scenario
from tests.support.sipp import SippResult, sipp_async

pytestmark = pytest.mark.interop

DEMO = "4001234567"


@pytest.fixture(scope="module")
def node(module_node: NodeProcess) -> NodeProcess:
    return module_node


def login(node: NodeProcess, tenant: str, username: str, password: str) -> dict[str, str]:
    reply = httpx.post(f"{node.http}/api/login", json={"tenant": tenant, "username": username,
                                                         "password": password}, timeout=30)
    reply.raise_for_status()
    return {"Authorization": f"Bearer {reply.json()['token']}"}


@pytest.fixture(scope="module")
def supervisor(node: NodeProcess) -> dict[str, str]:
    return login(node, "demo", "supervisor", node.staff["supervisor"])


@pytest.fixture(scope="module")
def acme(node: NodeProcess) -> dict[str, str]:
    """A second tenant with its own admin and supervisor and a queue also named ``support``.
    Returns the supervisor's headers."""
    add_tenant(node, "acme", {"boss": "admin", "watcher": "supervisor"})
    admin = login(node, "acme", "boss", "boss-secret-1")
    httpx.post(f"{node.http}/api/queues", json={"name": "support"}, headers=admin, timeout=30).raise_for_status()
    return login(node, "acme", "watcher", "watcher-secret-1")


def ws_url(node: NodeProcess) -> str:
    return node.http.replace("http", "ws", 1) + "/api/supervisor/ws"


@pytest.fixture
async def board(node: NodeProcess, supervisor: dict[str, str]) -> AsyncIterator[ClientConnection]:
    async with connect(ws_url(node), additional_headers=supervisor) as ws:
        yield ws


async def next_snapshot(ws: ClientConnection, timeout: float = 10.0) -> tuple[dict[str, Any], float]:
    """The next snapshot and when it arrived (wall clock)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message["type"] == "snapshot":
            return message, time.time()


def queue(snapshot: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for q in snapshot["queues"] if q["queue"] == name)


def caller(tmp_path: Path, node: NodeProcess, wait_ms: int) -> asyncio.Task[SippResult]:
    """sipp calls the demo number, presses 2 (support), waits ``wait_ms`` in the queue and hangs up."""
    xml = ivr_call_scenario(tmp_path / "caller.xml", [("pause", 1500), ("pcap", "pcap/dtmf_2833_2.pcap"),
                                                      ("pause", wait_ms)])
    return asyncio.ensure_future(sipp_async(tmp_path, node.sip, "-sf", str(xml), "-s", DEMO, "-m", "1",
                                            "-mp", str(free_port()), timeout=90))


def test_metrics_use_amazon_connect_names(node: NodeProcess, supervisor: dict[str, str]) -> None:
    body = httpx.get(f"{node.http}/api/supervisor/metrics", headers=supervisor, timeout=30).json()
    assert [q["queue"] for q in body["queues"]] == ["sales", "support"]
    metrics = queue(body, "support")["metrics"]
    for key in ("CONTACTS_IN_QUEUE", "OLDEST_CONTACT_AGE", "SERVICE_LEVEL", "CONTACTS_HANDLED", "CONTACTS_ABANDONED",
                "AGENTS_AVAILABLE", "AGENTS_ON_CONTACT", "AGENTS_AFTER_CONTACT_WORK", "AGENTS_NON_PRODUCTIVE"):
        assert key in metrics
    assert {a["username"] for a in body["agents"]} == {"agent1", "agent2"}
    assert all({"state", "time_in_state", "call_id", "call_duration"} <= set(a) for a in body["agents"])


def test_agents_and_strangers_are_refused(node: NodeProcess) -> None:
    agent = login(node, "demo", "agent1", node.agents["agent1"][0])
    for method, path, body in (("GET", "/api/supervisor/metrics", None),
                               ("GET", "/api/supervisor/thresholds", None),
                               ("PUT", "/api/supervisor/thresholds/support", {"SERVICE_LEVEL": 50}),
                               ("POST", "/api/supervisor/agents/1/logout", None)):
        reply = httpx.request(method, f"{node.http}{path}", json=body, headers=agent, timeout=30)
        assert reply.status_code == 403 and reply.json()["error_id"] == "forbidden", (method, path)
        assert httpx.request(method, f"{node.http}{path}", json=body, timeout=30).status_code == 401
    page = httpx.get(f"{node.http}/supervisor", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


async def test_socket_refuses_agents_and_strangers(node: NodeProcess) -> None:
    agent = login(node, "demo", "agent1", node.agents["agent1"][0])
    for headers, code in (({}, 4401), ({"Authorization": "Bearer not-a-token"}, 4401), (agent, 4403)):
        async with connect(ws_url(node), additional_headers=headers) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == code


async def test_caller_in_queue_shows_within_a_second(node: NodeProcess, supervisor: dict[str, str],
                                                    acme: dict[str, str], board: ClientConnection,
                                                    tmp_path: Path) -> None:
    reply = httpx.put(f"{node.http}/api/supervisor/thresholds/support", headers=supervisor, timeout=30,
                      json={"OLDEST_CONTACT_AGE": 2, "SERVICE_LEVEL": 80})
    assert reply.status_code == 200
    first, _ = await next_snapshot(board)
    support = queue(first, "support")
    assert support["metrics"]["CONTACTS_IN_QUEUE"] == 0

    async with connect(ws_url(node), additional_headers=acme) as other:
        theirs = [(await next_snapshot(other))[0]]
        call = caller(tmp_path, node, 6000)
        deadline = time.monotonic() + 30
        while True:  # until the caller is in the support queue
            snap, received = await next_snapshot(board)
            if queue(snap, "support")["metrics"]["CONTACTS_IN_QUEUE"] == 1:
                break
            assert time.monotonic() < deadline, "the caller never showed in the queue"
        assert snap["trigger"] is not None, "a periodic refresh, not the push of the event"
        latency = received - snap["trigger"]["first_at"]
        print(f"wallboard update latency: {latency * 1000:.0f} ms after the ACD event")
        assert latency < 1.0
        assert [w["queue"] for w in snap["waiting"]] == ["support"]
        assert not queue(snap, "support")["alert"]

        while not queue(snap, "support")["alert"]:  # the periodic refresh ages the call past 2 s
            assert queue(snap, "support")["metrics"]["CONTACTS_IN_QUEUE"] == 1, queue(snap, "support")
            snap, _ = await next_snapshot(board, timeout=5)
        support = queue(snap, "support")
        assert support["breaches"] == ["OLDEST_CONTACT_AGE"] and support["metrics"]["OLDEST_CONTACT_AGE"] > 2

        result = await call
        assert result.successful == 1, str(result)
        deadline = time.monotonic() + 5
        while queue(snap, "support")["metrics"]["CONTACTS_IN_QUEUE"] != 0:  # the caller hung up: abandoned
            assert time.monotonic() < deadline, "the caller who hung up stayed in the queue"
            snap, _ = await next_snapshot(board)
        assert queue(snap, "support")["metrics"]["CONTACTS_ABANDONED"] == 1

        while True:  # everything the other tenant's wallboard got meanwhile
            try:
                theirs.append((await next_snapshot(other, timeout=0.5))[0])
            except TimeoutError:
                break
    assert len(theirs) >= 3  # periodic refreshes came
    for snap in theirs:
        assert [q["queue"] for q in snap["queues"]] == ["support"]
        assert queue(snap, "support")["metrics"]["CONTACTS_IN_QUEUE"] == 0
        assert queue(snap, "support")["metrics"]["CONTACTS_ABANDONED"] == 0
        assert snap["waiting"] == [] and snap["agents"] == []
        assert all(s["trigger"] is None for s in theirs), "the other tenant was pushed the demo tenant's events"
    other_metrics = httpx.get(f"{node.http}/api/supervisor/metrics", headers=acme, timeout=30).json()
    assert other_metrics["agents"] == [] and other_metrics["waiting"] == []
    other_thresholds = httpx.get(f"{node.http}/api/supervisor/thresholds", headers=acme, timeout=30).json()
    assert other_thresholds["support"]["OLDEST_CONTACT_AGE"] != 2  # the demo tenant's setting stays its own


async def test_log_an_agent_out(node: NodeProcess, supervisor: dict[str, str], acme: dict[str, str],
                                board: ClientConnection) -> None:
    first, _ = await next_snapshot(board)
    agent_id = next(a["agent_id"] for a in first["agents"] if a["username"] == "agent2")
    reply = httpx.post(f"{node.http}/api/agents/{agent_id}/state", json={"state": "break", "reason": "lunch"},
                       headers=supervisor, timeout=30)
    assert reply.status_code == 200, reply.text

    async def agent2_state() -> tuple[str, dict[str, Any]]:
        snap, _ = await next_snapshot(board)
        return next(a["state"] for a in snap["agents"] if a["agent_id"] == agent_id), snap

    async with asyncio.timeout(5):
        while (found := await agent2_state())[0] != "break":
            pass
    assert queue(found[1], "support")["metrics"]["AGENTS_NON_PRODUCTIVE"] >= 1

    # another tenant's supervisor cannot log the demo's agent out
    assert httpx.post(f"{node.http}/api/supervisor/agents/{agent_id}/logout", headers=acme,
                      timeout=30).status_code == 404
    reply = httpx.post(f"{node.http}/api/supervisor/agents/{agent_id}/logout", headers=supervisor, timeout=30)
    assert reply.status_code == 200 and reply.json()["state"] == "offline"
    async with asyncio.timeout(5):
        while (await agent2_state())[0] != "offline":
            pass
    audit = httpx.get(f"{node.http}/api/audit", timeout=30,
                      headers=login(node, "demo", "admin", node.admin_password or "")).json()
    assert any(entry["action"] == "agent.logout" and entry["target"] == f"agent:{agent_id}" for entry in audit)


def test_thresholds_are_validated_and_kept(node: NodeProcess, supervisor: dict[str, str]) -> None:
    url = f"{node.http}/api/supervisor/thresholds"
    assert httpx.put(f"{url}/nope", json={"SERVICE_LEVEL": 50}, headers=supervisor, timeout=30).status_code == 404
    assert httpx.put(f"{url}/sales", json={"SERVICE_LEVEL": 150}, headers=supervisor, timeout=30).status_code == 422
    assert httpx.put(f"{url}/sales", json={"OLDEST_CONTACT_AGE": 45, "SERVICE_LEVEL": None}, headers=supervisor,
                     timeout=30).status_code == 200
    kept = httpx.get(url, headers=supervisor, timeout=30).json()["sales"]
    assert kept == {"OLDEST_CONTACT_AGE": 45, "SERVICE_LEVEL": None}


def test_threshold_rules_and_store(engine: Any) -> None:
    from callcenter.wallboard import Thresholds, ThresholdStore, breaches
    from tests.callcenter.conftest import add_tenant as add_tenant_row

    limits = Thresholds(OLDEST_CONTACT_AGE=30, SERVICE_LEVEL=80)
    assert breaches({"OLDEST_CONTACT_AGE": None, "SERVICE_LEVEL": None}, limits) == []
    assert breaches({"OLDEST_CONTACT_AGE": 30.0, "SERVICE_LEVEL": 80.0}, limits) == []
    assert breaches({"OLDEST_CONTACT_AGE": 30.1, "SERVICE_LEVEL": 79.9}, limits) == ["OLDEST_CONTACT_AGE",
                                                                                     "SERVICE_LEVEL"]
    assert breaches({"OLDEST_CONTACT_AGE": 999.0, "SERVICE_LEVEL": 0.0}, Thresholds(None, None)) == []
    first, second = add_tenant_row(engine, "first"), add_tenant_row(engine, "second")
    store = ThresholdStore(engine)
    store.put(first, "support", limits)
    assert ThresholdStore(engine).get(first) == {"support": limits}  # kept in the database
    assert ThresholdStore(engine).get(second) == {}  # per tenant
