"""A supervisor's actions on waiting calls, on a demo node with real sipp callers in the support
queue (no agent is logged in, so they wait): raising a priority, moving a call to sales, who
may do it, the audit log and the call record's events."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.callcenter.test_supervisor import DEMO, login
from tests.support.node import NodeProcess, add_tenant, free_port
from tests.support.pcap import ivr_call_scenario
from tests.support.sipp import SippResult, sipp_async

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def node(module_node: NodeProcess) -> NodeProcess:
    return module_node


@pytest.fixture(scope="module")
def supervisor(node: NodeProcess) -> dict[str, str]:
    return login(node, "demo", "supervisor", node.staff["supervisor"])


@pytest.fixture(scope="module")
def stranger(node: NodeProcess) -> dict[str, str]:
    """The supervisor of a second tenant."""
    return login(node, add_tenant(node, "other", {"watcher": "supervisor"}), "watcher", "watcher-secret-1")


def support_caller(workdir: Path, node: NodeProcess, wait_ms: int) -> asyncio.Task[SippResult]:
    """sipp calls the demo number, presses 2 (support), waits ``wait_ms`` and hangs up."""
    workdir.mkdir()
    xml = ivr_call_scenario(workdir / "caller.xml", [("pause", 1500), ("pcap", "pcap/dtmf_2833_2.pcap"),
                                                     ("pause", wait_ms)])
    return asyncio.ensure_future(sipp_async(workdir, node.sip, "-sf", str(xml), "-s", DEMO, "-m", "1",
                                            "-mp", str(free_port()), timeout=60))


async def waiting(client: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    """The waiting calls, once there are ``count`` of them."""
    deadline = time.monotonic() + 15
    while True:
        calls: list[dict[str, Any]] = (await client.get("/api/supervisor/metrics")).json()["waiting"]
        if len(calls) == count:
            return calls
        assert time.monotonic() < deadline, f"expected {count} waiting calls, not {calls}"
        await asyncio.sleep(0.1)


def test_agents_and_strangers_are_refused(node: NodeProcess) -> None:
    agent = login(node, "demo", "agent1", node.agents["agent1"][0])
    for path, body in (("priority", {"priority": 5}), ("move", {"queue": "sales"})):
        url = f"{node.http}/api/supervisor/calls/some-call/{path}"
        reply = httpx.post(url, json=body, headers=agent, timeout=30)
        assert reply.status_code == 403 and reply.json()["error_id"] == "forbidden"
        assert httpx.post(url, json=body, timeout=30).status_code == 401


async def test_raise_a_priority_and_move_a_call(node: NodeProcess, supervisor: dict[str, str],
                                               stranger: dict[str, str], tmp_path: Path) -> None:
    admin = login(node, "demo", "admin", node.admin_password or "")
    async with httpx.AsyncClient(base_url=node.http, headers=supervisor, timeout=30) as client:
        first = support_caller(tmp_path / "first", node, 6000)
        await asyncio.sleep(0.5)
        second = support_caller(tmp_path / "second", node, 6000)
        calls = await waiting(client, 2)
        assert [(c["queue"], c["position"]) for c in calls] == [("support", 1), ("support", 2)]
        old_id, new_id = calls[0]["call_id"], calls[1]["call_id"]

        # the newer caller goes ahead
        reply = await client.post(f"/api/supervisor/calls/{new_id}/priority", json={"priority": 80})
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"call_id": new_id, "queue": "support", "priority": 80, "position": 1,
                                "callback": False}
        calls = await waiting(client, 2)
        assert [(c["call_id"], c["position"], c["priority"]) for c in calls] == [(new_id, 1, 80), (old_id, 2, 0)]

        # the older one moves to sales, keeping its priority
        reply = await client.post(f"/api/supervisor/calls/{old_id}/move", json={"queue": "sales"})
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"call_id": old_id, "queue": "sales", "priority": 0, "position": 1, "callback": False}
        calls = await waiting(client, 2)
        assert {c["call_id"]: (c["queue"], c["position"]) for c in calls} == {old_id: ("sales", 1),
                                                                               new_id: ("support", 1)}
        sales = next(q for q in (await client.get("/api/supervisor/metrics")).json()["queues"]
                     if q["queue"] == "sales")
        assert sales["metrics"]["CONTACTS_IN_QUEUE"] == 1

        # refusals: bad input, unknown calls and queues, another tenant's supervisor
        for path, body, status in ((f"{new_id}/priority", {"priority": 100}, 422),
                                   (f"{new_id}/priority", {"priority": -1}, 422),
                                   (f"{new_id}/move", {"queue": "nowhere"}, 404),
                                   (f"{new_id}/move", {"queue": "agent:1"}, 404),
                                   ("no-such-call/priority", {"priority": 5}, 404),
                                   ("no-such-call/move", {"queue": "sales"}, 404)):
            reply = await client.post(f"/api/supervisor/calls/{path}", json=body)
            assert reply.status_code == status, (path, body, reply.text)
        for path, body in (("priority", {"priority": 5}), ("move", {"queue": "support"})):
            reply = await client.post(f"/api/supervisor/calls/{old_id}/{path}", json=body, headers=stranger)
            assert reply.status_code == 404 and reply.json()["error_id"] == "call-not-found"
        assert [c["queue"] for c in await waiting(client, 2)] == ["sales", "support"]

        audit = (await client.get("/api/audit", headers=admin)).json()
        assert {"action": "call.priority", "target": f"call:{new_id}"}.items() <= next(
            e for e in audit if e["action"] == "call.priority").items()
        assert {"action": "call.move", "target": f"call:{old_id}"}.items() <= next(
            e for e in audit if e["action"] == "call.move").items()

        async def events(call_id: str, kind: str) -> list[dict[str, Any]]:
            deadline = time.monotonic() + 5
            while True:
                reply = await client.get(f"/api/calls/{call_id}")
                found = [e for e in reply.json()["events"] if e["kind"] == kind] if reply.status_code == 200 else []
                if found or time.monotonic() > deadline:
                    return found
                await asyncio.sleep(0.1)

        assert [e["detail"] for e in await events(new_id, "priority")] == [{"queue": "support", "from": 0, "to": 80}]
        assert [e["detail"] for e in await events(old_id, "moved")] == [{"from": "support", "to": "sales"}]

    for result in await asyncio.gather(first, second):  # the callers hang up while waiting
        assert result.successful == 1, str(result)
