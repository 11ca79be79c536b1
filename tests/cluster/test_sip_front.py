"""The cluster's SIP front end to end: Kamailio (cluster/kamailio/kamailio.cfg) in front of three
real nodes sharing PostgreSQL and Redis (tests/support/cluster.py), sipp as carriers and phones.

What is asserted is what callers, phones and operators see: SIP outcomes, audio, the call
records (which node held each call, how it ended) and each node's view of the agents. The
failover figure after a kill -9 is printed, not asserted below what the design guarantees.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from callcenter.local_cluster import FRONT_HOST, KamailioNotFound, node_id
from sip_bridge.message import parse_message
from sip_bridge.tones import detect_tone, sine
from tests.callcenter.test_acd_calls import Phone
from tests.support.cluster import Cluster
from tests.support.endpoint import EndpointHarness, routing_table
from tests.support.node import NodeProcess, admin_client, free_port
from tests.support.pcap import ivr_call_scenario
from tests.support.postgres import PostgresNotFound
from tests.support.redis import RedisNotFound
from tests.support.sipp import scenario, sipp
from tests.support.sniff import RtpSniffer
from tests.support.stand_in import StandIn

pytestmark = pytest.mark.interop

DEMO = "4001234567"
CALLER = "13800138000"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    try:
        c = Cluster(tmp_path_factory.mktemp("cluster"))
    except (KamailioNotFound, RedisNotFound, PostgresNotFound) as exc:
        pytest.fail(str(exc), pytrace=False)
    c.start()
    print(f"\ncluster (PostgreSQL, Redis, Kamailio, {len(c.nodes)} nodes) started in {c.start_seconds:.1f} s")
    yield c
    c.stop()


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Iterator[httpx.Client]:
    with admin_client(cluster.nodes[0], cluster.admin_password) as client:
        yield client


def records(api: httpx.Client, sip_call_ids: set[str], timeout: float = 20.0) -> list[dict[str, Any]]:
    """The call records of these SIP calls once all have ended (any node writes to the shared database)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in api.get("/api/calls", params={"limit": 200}).json() if r["sip_call_id"] in sip_call_ids]
        if len(found) == len(sip_call_ids) and all(r["ended_at"] for r in found):
            return found
        assert time.monotonic() < deadline, f"records of {sorted(sip_call_ids)}: {found}"
        time.sleep(0.2)


def calls_through_front(cluster: Cluster, workdir: Path, count: int, *, rate: int = 5,
                        hold_ms: int = 500) -> tuple[set[str], int]:
    """``count`` plain calls to the demo number through the front (sipp's uac: INVITE, hold, BYE):
    their Call-IDs and how many sipp counted successful."""
    workdir.mkdir(parents=True, exist_ok=True)
    result = sipp(workdir, cluster.front.address, "-sn", "uac", "-s", DEMO, "-m", str(count), "-r", str(rate),
                  "-d", str(hold_ms), "-cid_str", f"%u-{workdir.name}@%s", timeout=60)
    return {f"{n}-{workdir.name}@127.0.0.1" for n in range(1, count + 1)}, result.successful


# -- calls in through the front ---------------------------------------------------------------

def test_a_call_through_the_front_reaches_a_node_and_its_bye_comes_back_to_it(
        cluster: Cluster, api: httpx.Client, tmp_path: Path) -> None:
    """sipp's uac_pcap: speech then the DTMF 1 (sales) in RTP; the caller hears the IVR and hangs up."""
    media_port = free_port()
    heard = RtpSniffer(media_port)
    try:
        result = sipp(tmp_path, cluster.front.address, "-sn", "uac_pcap", "-s", DEMO, "-m", "1",
                      "-mp", str(media_port), "-cid_str", "%u-pcap@%s", timeout=60)
    finally:
        heard.stop()
    assert result.successful == 1, result
    (record,) = records(api, {"1-pcap@127.0.0.1"})
    assert record["node"] in {node_id(i) for i in range(len(cluster.nodes))}
    # the caller's BYE reached the node holding the call, through the front
    assert (record["end_cause"], record["hangup_side"], record["answered_at"] is not None) == \
        ("normal_clearing", "caller", True)
    trace = api.get(f"/api/calls/{record['id']}/ivr-trace").json()
    # the caller's media reached the node's IVR: its DTMF 1 chose sales, unless its (English)
    # speech came first and the Korean model, which has no "anything else" word, took it for a
    # menu phrase (README, Known limits)
    assert trace["result"] in {"queue: sales", "queue: support"}
    greeting = np.frombuffer(heard.pcm(10.0), "<i2")
    assert len(greeting) > 8000 and np.abs(greeting).max() > 1000  # and the node's prompts came back


def test_new_calls_are_spread_over_the_nodes(cluster: Cluster, api: httpx.Client, tmp_path: Path) -> None:
    call_ids, ok = calls_through_front(cluster, tmp_path / "spread", 6)
    assert ok == 6
    held = [r["node"] for r in records(api, call_ids)]
    print(f"\n6 calls through the front held by: {sorted(held)}")
    assert len(set(held)) > 1
    assert all(r["end_cause"] == "normal_clearing" for r in records(api, call_ids))


# -- agents' phones: registered through the front, rung from another node ---------------------

def agent_on(node: NodeProcess, password: str, username: str) -> dict[str, Any] | None:
    with admin_client(node, password) as client:
        agent = next(a for a in client.get("/api/agents").json() if a["username"] == username)
        return agent["live"]


def phone_bindings(node: NodeProcess) -> float:
    """The node's ``callcenter_phone_bindings`` (what its registrar holds)."""
    text = httpx.get(f"{node.http}/metrics", timeout=10).text
    match = re.search(r"^callcenter_phone_bindings (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else -1.0


def wait_for(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def demo_owner(cluster: Cluster) -> int:
    """The node hosting the demo tenant's queues (its ACD lease in Redis: ``acd:owner:1`` = ``node:epoch``)."""
    import redis

    with redis.Redis(host=cluster.redis.host, port=cluster.redis.port, decode_responses=True) as client:
        owner = client.get("acd:owner:1")
    assert owner, "nobody owns the demo tenant"
    return int(owner.split(":")[0][1:]) - 1


async def echo_heard(front_port: int) -> bool:
    """A caller (our SIP stack as the carrier) through the front: DTMF 2 (support), then a 1 kHz
    tone until it comes back from the agent's phone (sipp -rtp_echo)."""
    table = routing_table(outbound_port=front_port)
    table.trunks[0] = replace(table.trunks[0], outbound_host=FRONT_HOST)
    harness = EndpointHarness(table)
    await harness.endpoint.start()
    try:
        leg = await harness.endpoint.dial(1, DEMO, caller_id=CALLER)
        await asyncio.sleep(1.0)
        leg.send_dtmf("2")
        received, loop = b"", asyncio.get_running_loop()
        deadline = loop.time() + 25
        async for frame in leg.audio():
            leg.send_audio(sine(1000.0, 0.02, amplitude=0.3))
            received = (received + frame)[-16000:]
            if detect_tone(received, 1000.0) or loop.time() > deadline:
                break
        await leg.hangup()
        return detect_tone(received, 1000.0)
    finally:
        await harness.endpoint.stop()


def said(node: NodeProcess, start: str) -> list[dict[str, object]]:
    """The node's log lines whose message starts with ``start``."""
    return [line for line in node.logs() if str(line.get("msg", "")).startswith(start)]


def registered_on(cluster: Cluster, sip_user: str) -> int:
    """The node that took the phone's REGISTER (its log says so)."""
    for index, node in enumerate(cluster.nodes):
        if any(line.get("sip_user") == sip_user for line in said(node, "agent phone registered")):
            return index
    raise AssertionError(f"no node took {sip_user}'s REGISTER")


def test_a_phone_registered_through_the_front_on_one_node_is_rung_by_another(
        cluster: Cluster, api: httpx.Client, tmp_path: Path) -> None:
    """The REGISTER lands on a node other than the one hosting the demo tenant's queues (the
    front is told to leave that one out meanwhile, as its hash does for two agents in three);
    every node holds the binding; callers entering the front are offered to the phone by the
    owner, which rings it through the front along the Path; the phone's echo comes back."""
    password = cluster.admin_password
    for node in cluster.nodes:  # short wrap-up, no announcements (each node loads its ACD settings itself)
        with admin_client(node, password) as client:
            support = next(q for q in client.get("/api/queues").json() if q["name"] == "support")
            assert client.patch(f"/api/queues/{support['id']}",
                                json={"wrapup": 1, "announce_every": None}).status_code == 200
    owner = cluster.nodes[demo_owner(cluster)]
    cluster.front.set_state(owner.sip, "d")
    try:
        phone = Phone(cluster.nodes[0], "agent2", tmp_path / "phone", target=cluster.front.address)
        wait_for(lambda: all(phone_bindings(node) == 1 for node in cluster.nodes))  # the binding is everywhere
    finally:
        cluster.front.set_state(owner.sip, "ap")
    try:
        registrar = registered_on(cluster, phone.sip_user)
        assert cluster.nodes[registrar] is not owner
        wait_for(lambda: (agent_on(owner, password, "agent2") or {}).get("state") == "available")
        assert (agent_on(owner, password, "agent2") or {}).get("reachable") is True
        cluster.front.wait_for(lambda active: owner.sip in active)
        before = {r["id"] for r in api.get("/api/calls", params={"limit": 200}).json()}
        for _ in range(2):  # the front rounds them: at least one enters another node than the registrar
            assert asyncio.run(echo_heard(cluster.front.port)), "the caller's tone did not come back from the phone"
            time.sleep(1.5)  # the agent's wrap-up
        entered = sorted(r["node"] for r in api.get("/api/calls", params={"limit": 200}).json()
                         if r["id"] not in before and r["direction"] == "inbound" and r["dialed"] == DEMO)
        print(f"\nphone registered on {node_id(registrar)}; callers entered {entered}; "
              f"queues on {node_id(cluster.nodes.index(owner))}")
        rang = [str(line["msg"]) for line in said(owner, f"ringing agent phone {phone.sip_user}")]
        assert len(rang) >= 2 and all(f"via udp:{cluster.front.address}" in m for m in rang), rang  # along the Path
    finally:
        phone.stop()


# -- nodes leaving: draining (OPTIONS 503) and kill -9 ----------------------------------------

def test_a_node_answering_options_503_gets_no_new_calls_until_it_answers_200(
        cluster: Cluster, api: httpx.Client, tmp_path: Path) -> None:
    draining = cluster.nodes[1]
    cluster.stop_node(1)
    stand_in = StandIn(draining.sip, options=503)
    try:
        cluster.front.wait_for(lambda active: draining.sip not in active)
        call_ids, ok = calls_through_front(cluster, tmp_path / "while-draining", 4)
        assert ok == 4 and stand_in.got("INVITE") == {}
        assert {r["node"] for r in records(api, call_ids)} <= {node_id(0), node_id(2)}
        stand_in.options = 200
        back = time.monotonic()
        cluster.front.wait_for(lambda active: draining.sip in active)
        _, ok = calls_through_front(cluster, tmp_path / "back", 3)
        assert ok == 3  # its 503 to the INVITE sent the call on to another node
        assert stand_in.got("INVITE", since=back), "the node answering 200 again got no call"
    finally:
        stand_in.stop()
        cluster.restart(1)


def test_after_kill_9_of_an_idle_node_the_next_calls_succeed_on_the_others(
        cluster: Cluster, api: httpx.Client, tmp_path: Path) -> None:
    dead = cluster.nodes[2]
    gone: list[float] = []
    cluster.kill(2)
    killed = time.monotonic()
    corpse = StandIn(dead.sip, options=None)  # the machine is gone: nothing answers there

    def watch() -> None:
        cluster.front.wait_for(lambda active: dead.sip not in active, timeout=30)
        gone.append(time.monotonic())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        call_ids, ok = calls_through_front(cluster, tmp_path / "after-kill", 20, rate=5, hold_ms=200)
        watcher.join()
        assert ok == 20, "a call through the front failed after the kill"
        assert {r["node"] for r in records(api, call_ids)} <= {node_id(0), node_id(1)}
        invites = corpse.got("INVITE")
        last_invite = (max(invites.values()) - killed) if invites else 0.0
        print(f"\nkill -9 {node_id(2)}: new INVITEs sent to it afterwards: {len(invites)}, the last "
              f"{last_invite:.2f} s after the kill; marked inactive {gone[0] - killed:.2f} s after the kill")
        assert gone[0] - killed < 5.0  # the design's bound is 2 s; this only catches a front that never notices
    finally:
        corpse.stop()
        cluster.restart(2)


# -- out to carriers through the front ---------------------------------------------------------

def test_a_nodes_call_to_a_carrier_goes_through_the_front(cluster: Cluster, tmp_path: Path) -> None:
    """A transfer in an IVR flow dials out through the tenant's trunk: the node sends the INVITE to
    the front (sip_outbound_proxy), which relays it to the carrier named in its Request-URI."""
    node = cluster.nodes[0]
    carrier_port = free_port()
    carrier_dir = tmp_path / "carrier"
    carrier_dir.mkdir()
    with admin_client(node, cluster.admin_password) as client:  # this node reloads its routing at once
        trunk = client.post("/api/trunks", json={"name": "far-carrier", "outbound_host": "127.0.0.1",
                                                 "outbound_port": carrier_port, "priority": 1})
        assert trunk.status_code == 201, trunk.text
        assert client.post("/api/numbers", json={"number": "4005550100"}).status_code == 201
        flow = {"name": "out", "start": "out",
                "nodes": [{"id": "out", "type": "transfer", "number": "5551234", "timeout": 10}]}
        assert client.post("/api/flows", params={"number": "4005550100"}, json=flow).status_code == 201
    callee = carrier(carrier_dir, carrier_port)
    try:
        caller_dir = tmp_path / "caller"
        caller_dir.mkdir()
        xml = ivr_call_scenario(caller_dir / "caller.xml", [("pause", 500)], platform_hangs_up=True)
        result = sipp(caller_dir, node.sip, "-sf", str(xml), "-s", "4005550100", "-m", "1", timeout=60)
        assert result.successful == 1, result  # the callee hung up after three seconds: so did the caller
    finally:
        callee.terminate()
        callee.wait(10)
    (invite,) = {m for m in received(carrier_dir / "messages.log") if m.startswith("INVITE ")}  # (or resent)
    request_line, vias = invite.splitlines()[0], [h for h in invite.splitlines() if h.startswith("Via:")]
    assert request_line.startswith(f"INVITE sip:5551234@127.0.0.1:{carrier_port} ")
    assert vias[0].startswith(f"Via: SIP/2.0/UDP {cluster.front.address}")  # relayed by the front
    assert node.sip in vias[1]  # for the node


def carrier(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """A carrier's callee (sipp): answers, talks three seconds, hangs up; logs what it received. It
    answers the trunk's OPTIONS keepalives too (-aa), each of which sipp counts as a call."""
    return subprocess.Popen(["sipp", "-sf", scenario("callee_talks_then_hangs_up.xml"), "-aa", "-i", "127.0.0.1",
                             "-p", str(port), "-nostdin", "-rtp_echo", "-trace_msg",
                             "-message_file", str(workdir / "messages.log")], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def received(log: Path) -> list[str]:
    """The SIP messages sipp received, from its -trace_msg log (a dashed line, "... message
    received [N] bytes :", a blank line, the message)."""
    out = []
    for block in log.read_text(errors="replace").split("\n" + "-" * 47):
        header, _, message = block.partition("\n\n")
        if "message received" in header:
            out.append(message.replace("\r", "").strip())
    return out


# -- what the front refuses ---------------------------------------------------------------------

def test_the_front_relays_nothing_from_outside_but_to_the_nodes(cluster: Cluster) -> None:
    """An in-dialog-looking request from outside, loose-routed through the front towards a third
    party (the classic open relay), is refused; the third party gets nothing."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as victim, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        victim.bind(("127.0.0.1", 0))
        stranger.bind(("127.0.0.1", 0))
        stranger.settimeout(5)
        victim.settimeout(1)
        target, me = victim.getsockname()[1], stranger.getsockname()[1]
        front = f"<sip:{cluster.front.address};lr>"
        for route in (front, f"{front}, <sip:127.0.0.1:{target};lr>"):
            bye = (f"BYE sip:victim@127.0.0.1:{target} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-relay-{len(route)}\r\n"
                   f"Route: {route}\r\nFrom: <sip:a@127.0.0.1>;tag=a\r\nTo: <sip:victim@127.0.0.1>;tag=b\r\n"
                   f"Call-ID: relay-{len(route)}@127.0.0.1\r\nCSeq: 1 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
            host, port = cluster.front.address.split(":")
            stranger.sendto(bye.encode(), (host, int(port)))
            answer = parse_message(stranger.recv(65535))
            assert getattr(answer, "status", None) == 404, answer
        with pytest.raises(TimeoutError):
            victim.recv(65535)
