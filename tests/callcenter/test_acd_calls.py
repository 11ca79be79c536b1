"""The ACD end to end: sipp callers into the demo number, agents' phones are sipp registered
to the node with digest auth, a sipp callee stands for the caller being called back.

What is asserted is what users see: who answered whom and when (the IVR traces and the
agent state history through the API), and the audio that crosses the bridge.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sip_bridge.tones import detect_tone, sine
from tests.support.endpoint import EndpointHarness, routing_table
from tests.support.node import NodeProcess, admin_client, free_port
from tests.support.pcap import ivr_call_scenario
from tests.support.sipp import SippResult, scenario, sipp

pytestmark = pytest.mark.interop

DEMO = "4001234567"
CALLER = "13800138000"  # the number sipp's caller scenario presents (and is called back on)
PRESS_2 = [("pause", 1000), ("pcap", "pcap/dtmf_2833_2.pcap")]
PRESS_STAR = [("pcap", "pcap/dtmf_2833_star.pcap")]


@pytest.fixture(scope="module")
def node(module_node: NodeProcess) -> NodeProcess:
    return module_node


@pytest.fixture(scope="module")
def api(node: NodeProcess) -> Iterator[httpx.Client]:
    with admin_client(node) as client:
        support = next(q for q in client.get("/api/queues").json() if q["name"] == "support")
        # short wrap-up so the test need not wait; no announcements to keep the hold audio simple
        assert client.patch(f"/api/queues/{support['id']}", json={"wrapup": 2, "announce_every": None}).status_code == 200
        yield client


class Phone:
    """An agent's desk phone: sipp registered as the agent, answering calls with audio echo.
    It registers to ``node`` (the demo agent's secret is the one ``node`` printed), or to
    ``target`` (``ip:port``, a cluster's front)."""

    def __init__(self, node: NodeProcess, agent: str, workdir: Path, target: str | None = None) -> None:
        _, self.sip_user, secret = node.agents[agent]
        workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["sipp", target or node.sip, "-sf", scenario("desk_phone.xml"),
             "-oocsf", scenario("agent_answer_call.xml"), "-s", self.sip_user, "-au", self.sip_user, "-ap", secret,
             "-i", "127.0.0.1", "-p", str(free_port()), "-m", "1", "-rtp_echo", "-nostdin"],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def agent_state(api: httpx.Client, username: str) -> dict[str, Any] | None:
    agent = next(a for a in api.get("/api/agents").json() if a["username"] == username)
    return agent["live"]


def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.fixture
def agent2(node: NodeProcess, api: httpx.Client, tmp_path: Path) -> Iterator[Phone]:
    phone = Phone(node, "agent2", tmp_path / "agent2")
    wait_for(lambda: (agent_state(api, "agent2") or {}).get("state") == "available")
    yield phone
    phone.stop()


def traces(api: httpx.Client, number: str = DEMO) -> list[dict[str, Any]]:
    """IVR traces of the demo number's inbound calls, oldest first."""
    calls = [c for c in api.get("/api/calls", params={"limit": 50}).json()
             if c["dialed"] == number and c["direction"] == "inbound"]
    return [api.get(f"/api/calls/{c['id']}/ivr-trace").json() | {"call": c} for c in reversed(calls)]


def answered(trace: dict[str, Any]) -> dict[str, Any] | None:
    return next((e for s in trace.get("steps", []) for e in s.get("events", []) if e["event"] == "answered"), None)


class Caller(threading.Thread):
    """A sipp caller into the demo number running ``steps``, then hanging up (in a thread)."""

    def __init__(self, node: NodeProcess, workdir: Path, steps: list[tuple[str, object]],
                 platform_hangs_up: bool = False) -> None:
        super().__init__()
        self.node, self.workdir, self.steps, self.platform_hangs_up = node, workdir, steps, platform_hangs_up
        self.result: SippResult | None = None
        self.start()

    def run(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        xml = ivr_call_scenario(self.workdir / "caller.xml", self.steps, platform_hangs_up=self.platform_hangs_up)
        self.result = sipp(self.workdir, self.node.sip, "-sf", str(xml), "-s", DEMO, "-m", "1", timeout=120)

    def finish(self) -> None:
        self.join()
        assert self.result is not None and self.result.successful == 1, self.result


def test_two_callers_pressing_2_are_answered_by_agent2_in_arrival_order(node: NodeProcess, api: httpx.Client,
                                                                         agent2: Phone, tmp_path: Path) -> None:
    before = len(traces(api))
    first = Caller(node, tmp_path / "first", PRESS_2 + [("pause", 6000)])
    time.sleep(1.5)
    second = Caller(node, tmp_path / "second", PRESS_2 + [("pause", 20000)])
    first.finish()
    second.finish()
    calls = traces(api)[before:]
    assert [t["result"] for t in calls] == ["queue: support", "queue: support"]
    answers = [answered(t) for t in calls]
    assert all(a is not None and a["agent"] == "demo.agent2" for a in answers), calls
    assert answers[0]["at"] < answers[1]["at"]  # the first caller first
    agent_id = next(a["id"] for a in api.get("/api/agents").json() if a["username"] == "agent2")
    history = api.get(f"/api/agents/{agent_id}/history").json()
    on_calls = [h for h in history if h["new_state"] == "on_call" and h["at"] >= calls[0]["call"]["received_at"]]
    wait_for(lambda: len([h for h in api.get(f"/api/agents/{agent_id}/history").json()
                          if h["new_state"] == "on_call"]) >= 2)  # the history is written every second
    history = api.get(f"/api/agents/{agent_id}/history").json()
    on_calls = [h for h in history if h["new_state"] == "on_call"]
    assert len(on_calls) == 2
    assert any(h["new_state"] == "wrap_up" for h in history)


async def test_audio_crosses_the_bridge_both_ways(node: NodeProcess, api: httpx.Client, agent2: Phone) -> None:
    """Our SIP stack as the caller sends a 1 kHz tone; agent2's phone echoes it; the caller hears it back."""
    harness = EndpointHarness(routing_table(outbound_port=node.sip_port))
    await harness.endpoint.start()
    try:
        leg = await harness.endpoint.dial(1, DEMO, caller_id=CALLER)
        await asyncio.sleep(1.0)
        leg.send_dtmf("2")
        received = b""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        async for frame in leg.audio():
            leg.send_audio(sine(1000.0, 0.02, amplitude=0.3))
            received = (received + frame)[-16000:]  # the last second
            if detect_tone(received, 1000.0) or loop.time() > deadline:
                break
        heard = detect_tone(received, 1000.0)
        await leg.hangup()
    finally:
        await harness.endpoint.stop()
    assert heard, "the caller's tone did not come back through the agent's phone"


def test_a_callback_keeps_its_place(node: NodeProcess, api: httpx.Client, agent2: Phone, tmp_path: Path) -> None:
    """Agent2 is busy; caller B asks for a callback; caller C queues after B. When agent2 is
    free, B is called back (sipp as the callee on a trunk) before C is answered."""
    port = free_port()
    trunk = api.post("/api/trunks", json={"name": "callback-carrier", "outbound_host": "127.0.0.1",
                                          "outbound_port": port, "priority": 1})
    assert trunk.status_code == 201, trunk.text
    callee_dir = tmp_path / "callee"
    callee_dir.mkdir()
    callee = subprocess.Popen(["sipp", "-sf", scenario("callee_talks_then_hangs_up.xml"), "-aa", "-i", "127.0.0.1",
                               "-p", str(port), "-nostdin", "-rtp_echo", "-trace_err"], cwd=callee_dir,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        before = len(traces(api))
        busy = Caller(node, tmp_path / "a", PRESS_2 + [("pause", 8000)])
        time.sleep(3.0)
        wants_callback = Caller(node, tmp_path / "b", PRESS_2 + [("pause", 1500)] + PRESS_STAR,
                                platform_hangs_up=True)
        time.sleep(4.0)
        waits = Caller(node, tmp_path / "c", PRESS_2 + [("pause", 30000)])
        for thread in (busy, wants_callback, waits):
            thread.finish()
        calls = traces(api)[before:]
        assert [t["result"] for t in calls] == ["queue: support", "callback: support", "queue: support"]
        callbacks = [c for c in api.get("/api/calls", params={"limit": 50}).json()
                     if c["direction"] == "outbound" and c["dialed"] == CALLER and c["answered_at"]]
        assert callbacks, "the caller was not called back"
        answered_c = answered(calls[2])
        assert answered_c is not None and answered_c["agent"] == "demo.agent2"
        assert callbacks[0]["answered_at"] < answered_c["at"]  # B's place came before C
    finally:
        callee.terminate()
        callee.wait(10)
        api.delete(f"/api/trunks/{trunk.json()['id']}")


def test_after_a_crash_no_agent_is_left_on_a_call_that_no_longer_exists(tmp_path: Path) -> None:
    """SIGKILL while agent2 talks to a caller; after the restart agent2 is available again (reason
    ``restart``), and takes the next caller once the phone has registered again."""
    data = tmp_path / "data"
    data.mkdir()
    node = NodeProcess(data).start()
    password, agents = node.admin_password or "", dict(node.agents)
    try:
        with admin_client(node, password) as client:
            phone = Phone(node, "agent2", tmp_path / "phone")
            wait_for(lambda: (agent_state(client, "agent2") or {}).get("state") == "available")
            talking = Caller(node, tmp_path / "caller", PRESS_2 + [("pause", 6000)])
            wait_for(lambda: (agent_state(client, "agent2") or {}).get("state") == "on_call")
            time.sleep(1.5)  # the ACD state is saved every second
        node.kill()
        phone.stop()
        node = NodeProcess(data).start()
        node.agents = agents  # printed only when they were created
        with admin_client(node, password) as client:
            assert (agent_state(client, "agent2") or {}).get("state") == "available"
            agent_id = next(a["id"] for a in client.get("/api/agents").json() if a["username"] == "agent2")
            wait_for(lambda: any(h["reason"] == "restart" for h in
                                 client.get(f"/api/agents/{agent_id}/history").json()))
            phone = Phone(node, "agent2", tmp_path / "phone-again")
            wait_for(lambda: (agent_state(client, "agent2") or {}).get("reachable") is True)
            before = len(traces(client))
            Caller(node, tmp_path / "next", PRESS_2 + [("pause", 3000)]).finish()
            phone.stop()
            [after] = traces(client)[before:]
            assert (answered(after) or {}).get("agent") == "demo.agent2"
        talking.join()  # its BYE went to the dead node
    finally:
        node.stop()


def test_a_phone_challenging_our_invite_gets_no_credentials(node: NodeProcess, api: httpx.Client,
                                                           tmp_path: Path) -> None:
    """FreeSWITCH's uac_digest_leak: a registered phone (not a trunk) answers the offer with 407;
    the node sends no Authorization, ends the attempt, and reports a security event."""
    _, sip_user, secret = node.agents["agent2"]
    workdir = tmp_path / "phone"
    workdir.mkdir()
    phone = subprocess.Popen(
        ["sipp", node.sip, "-sf", scenario("desk_phone.xml"), "-oocsf", scenario("agent_challenge_call.xml"),
         "-s", sip_user, "-au", sip_user, "-ap", secret, "-i", "127.0.0.1", "-p", str(free_port()), "-m", "1",
         "-trace_msg", "-message_file", "messages.log", "-nostdin"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (agent_state(api, "agent2") or {}).get("state") == "available")
        caller = Caller(node, tmp_path / "caller", PRESS_2 + [("pause", 6000)])
        wait_for(lambda: any(e.get("security_event") == "sip.foreign_challenge" for e in node.logs()), timeout=30)
        caller.finish()
    finally:
        phone.terminate()
        phone.wait(10)
    received = (workdir / "messages.log").read_text(errors="replace")
    inbound = [block for block in received.split("\n----") if "message received" in block]
    assert any("\nINVITE sip:" in block for block in inbound), received[-2000:]
    assert not [b for b in inbound if "authorization:" in b.lower()]  # no Authorization, no Proxy-Authorization
    audit = api.get("/api/audit", params={"action": "security.sip.foreign_challenge"}).json()
    assert audit and audit[0]["detail"]["status"] == 407
    wait_for(lambda: (agent_state(api, "agent2") or {}).get("state") != "reserved")
