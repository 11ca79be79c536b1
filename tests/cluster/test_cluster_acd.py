"""One ACD across the nodes of a real cluster (PostgreSQL, Redis, Kamailio, three node processes):
callers entering any node wait in the queues of the node that owns their tenant, agents whose
tab is on any node are offered them, and the owner's death keeps every waiting caller's place.

Callers are our SIP stack (a carrier dialing a chosen node directly), agents are
``AgentClient``s (aiortc and the page's protocol) on a chosen node.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from websockets.exceptions import WebSocketException

from callcenter.softphone import SEND_AWAY_DELAY
from recordings.codec import decode
from sip_bridge.routing import RoutingTable, Tenant, Trunk
from sip_bridge.tones import detect_tone
from softphone_web.agent_client import AgentClient, SupervisorClient
from tests.support.cluster import Cluster
from tests.support.call_peers import AGENT_TONE, CALLER, CALLER_TONE, Caller, agent_on, call_into
from tests.support.chat_visitor import Visitor
from tests.support.endpoint import EndpointHarness
from tests.support.node import NodeProcess, admin_client

pytestmark = pytest.mark.interop

SUPERVISOR_TONE = 2200.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster")).start()
    yield c
    c.stop()


async def follow(agent: AgentClient, node: NodeProcess) -> AgentClient:
    """The agent's tab as the page keeps it: if the node closed it (1012: the tenant moved to
    another node), reconnected through ``node`` with the same session."""
    await asyncio.sleep(SEND_AWAY_DELAY + 0.5)
    assert agent.ws is not None
    if agent.ws.close_code is None:
        return agent
    assert agent.ws.close_code == 1012, agent.ws.close_code
    again = AgentClient(node.http, "demo", agent.username, agent.password)
    again.mic.freq = agent.mic.freq
    again.token = agent.token
    await agent.close()
    await again.connect()
    await again.wait_connected()
    return again


async def until_available(agent: AgentClient) -> None:
    """Until the agent is available: its wrap-up (1 s in sales) may have ended before the tab
    reconnected, when the welcome says so, or ends later, with a state message."""
    states = [agent.welcome.get("state") or {}] + [m for m in agent.messages if m.get("type") == "state"]
    if states[-1].get("state") != "available":
        await agent.expect("state", state="available", timeout=30)


async def eventually(check: Any, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.1)


def record(node: NodeProcess, password: str, call_id: str) -> dict[str, Any]:
    with admin_client(node, password) as api:
        for _ in range(50):
            row = api.get(f"/api/calls/{call_id}").json()
            if row.get("ended_at"):
                return row
            time.sleep(0.2)
    raise AssertionError(f"record of {call_id} not closed: {row}")


async def test_a_caller_on_one_node_is_answered_by_an_agent_whose_tab_is_on_another(
        cluster: Cluster, carrier: EndpointHarness) -> None:
    owner = cluster.owner()
    entering, tab = [i for i in range(3) if i != owner][:2]
    nodes, password = cluster.nodes, cluster.admin_password
    agent = await agent_on(nodes[tab], "agent1", nodes[0].agents["agent1"][0])
    try:
        caller = await call_into(carrier, nodes[entering], "1")  # 1: sales (agent1)
        offer = await agent.expect("offer", timeout=20)
        await agent.send({"type": "accept", "call_id": offer["call_id"]})
        await eventually(lambda: caller.hears(AGENT_TONE))
        await eventually(lambda: detect_tone(agent.heard_pcm(0.5), CALLER_TONE, threshold=0.15))
        await asyncio.sleep(3)  # something to record
        await caller.hang_up()
        await agent.expect("call_ended", timeout=10)
    finally:
        await agent.close()
    call_id = offer["call_id"]
    row = record(nodes[owner], password, call_id)
    assert (row["node"], row["agent_node"]) == (f"n{entering + 1}", f"n{owner + 1}")
    assert row["agent_id"] is not None and row["queue"] == "sales"
    with admin_client(nodes[owner], password) as api:
        for _ in range(100):
            meta = api.get(f"/api/calls/{call_id}/recording").json()
            if meta.get("status") == "complete":
                break
            time.sleep(0.3)
        assert meta["status"] == "complete", meta
        audio = api.get(f"/api/calls/{call_id}/recording/audio").content
    caller_channel, agent_channel = decode(io.BytesIO(audio))
    spectrum = {name: np.abs(np.fft.rfft(pcm[-16000:].astype(float))) for name, pcm in
                (("caller", caller_channel), ("agent", agent_channel))}
    assert {name: int(np.argmax(s)) // 2 for name, s in spectrum.items()} == \
        {"caller": int(CALLER_TONE), "agent": int(AGENT_TONE)}


async def test_a_supervisor_on_a_third_node_listens_whispers_and_barges_into_a_cross_node_call(
        cluster: Cluster, carrier: EndpointHarness) -> None:
    """The caller enters node A, the agent's tab is on node B and the supervisor's wallboard is
    on node A too: the owner (node C) bridges the call and mixes the monitoring, and both
    sockets reach it through the nodes they are on."""
    owner = cluster.owner()
    entering, tab = [i for i in range(3) if i != owner][:2]
    nodes = cluster.nodes
    agent = await agent_on(nodes[tab], "agent1", nodes[0].agents["agent1"][0])
    boss = SupervisorClient(nodes[entering].http, "demo", "supervisor", nodes[0].staff["supervisor"])
    boss.mic.freq = SUPERVISOR_TONE
    try:
        await boss.connect()
        await boss.wait_connected()
        caller = await call_into(carrier, nodes[entering], "1", caller_id="13800138030")
        offer = await agent.expect("offer", timeout=20)
        await agent.send({"type": "accept", "call_id": offer["call_id"]})
        await eventually(lambda: caller.hears(AGENT_TONE))
        call_id = offer["call_id"]
        await boss.monitor(call_id, "listen")
        await eventually(lambda: detect_tone(boss.heard_pcm(0.5), CALLER_TONE, threshold=0.15)
                         and detect_tone(boss.heard_pcm(0.5), AGENT_TONE, threshold=0.15))
        await boss.monitor(call_id, "whisper")  # the agent hears the supervisor, the caller does not
        await eventually(lambda: detect_tone(agent.heard_pcm(0.5), SUPERVISOR_TONE, threshold=0.15))
        assert not caller.hears(SUPERVISOR_TONE, 0.05)
        await boss.monitor(call_id, "barge")  # everyone hears everyone
        await eventually(lambda: caller.hears(SUPERVISOR_TONE, 0.15) and caller.hears(AGENT_TONE, 0.15))
        await caller.hang_up()
        ended = await boss.expect("monitor_ended", call_id=call_id, timeout=15)
        assert ended["reason"] == "call_ended"
    finally:
        await boss.close()
        await agent.close()


async def test_the_owner_dies_while_five_callers_wait_and_each_is_answered_once_in_order(
        cluster: Cluster, carrier: EndpointHarness) -> None:
    nodes, password = cluster.nodes, cluster.admin_password
    owner = cluster.owner()
    others = [i for i in range(3) if i != owner]
    with admin_client(nodes[owner], password) as api:
        sales = next(q for q in api.get("/api/queues").json() if q["name"] == "sales")
        assert api.patch(f"/api/queues/{sales['id']}", json={"wrapup": 1, "announce_every": None}).status_code == 200
    callers = []
    for i in range(5):  # in this order, alternating between the two other nodes
        caller = await call_into(carrier, nodes[others[i % 2]], "1", caller_id=f"1380013800{i}")
        callers.append(caller)
        await asyncio.sleep(1.5)
    killed_at = time.monotonic()
    cluster.kill(owner)
    new_owner = await asyncio.to_thread(cluster.owner, other_than=owner)
    takeover = time.monotonic() - killed_at
    print(f"new owner n{new_owner + 1} {takeover:.1f} s after the kill")
    assert takeover < 10
    agent = await agent_on(nodes[others[0]], "agent1", nodes[0].agents["agent1"][0])
    answered: list[str] = []
    try:
        for _ in range(5):
            offer = await agent.expect("offer", timeout=30)
            answered.append(offer["caller"])
            await agent.send({"type": "accept", "call_id": offer["call_id"]})
            await agent.expect("call", timeout=10)
            await asyncio.sleep(0.5)
            await agent.send({"type": "hangup"})
            await agent.expect("call_ended", timeout=10)
            await agent.expect("state", state="available", timeout=10)
        assert answered == [f"1380013800{i}" for i in range(5)]
        with pytest.raises(TimeoutError):  # nobody is offered twice
            await agent.expect("offer", timeout=3)
    finally:
        await agent.close()
        for caller in callers:
            if not caller.leg.ended:
                await caller.hang_up()
    cluster.restart(owner)


async def test_the_node_holding_a_live_call_dies_and_a_survivor_cleans_up(
        cluster: Cluster, carrier: EndpointHarness) -> None:
    """kill -9 the node the caller came in on (it also relays the agent's tab): the record is
    closed ``node_lost`` by a survivor, the agent is free again, the tab reconnects elsewhere."""
    nodes, password = cluster.nodes, cluster.admin_password
    owner = cluster.owner()
    doomed = next(i for i in range(3) if i != owner)
    survivor = next(i for i in range(3) if i not in (owner, doomed))
    agent = await agent_on(nodes[doomed], "agent1", nodes[0].agents["agent1"][0])
    try:
        caller = await call_into(carrier, nodes[doomed], "1")
        offer = await agent.expect("offer", timeout=20)
        await agent.send({"type": "accept", "call_id": offer["call_id"]})
        await eventually(lambda: caller.hears(AGENT_TONE))
        cluster.kill(doomed)
        killed_at = time.monotonic()
    finally:
        await agent.close()
    # the page reconnects to a node that answers, with the same session
    again = AgentClient(nodes[survivor].http, "demo", "agent1", nodes[0].agents["agent1"][0])
    again.token = agent.token
    welcome = await again.connect()
    try:
        if welcome["call"] is not None:  # the owner learns of the death within the heartbeat's 3.5 s
            await again.expect("call_ended", timeout=20)
        if welcome["state"] != "available":  # the call died with the node: after-call work, then free
            await again.expect("state", state="available", timeout=20)
        row = await asyncio.to_thread(record, nodes[survivor], password, offer["call_id"])
        print(f"record closed {time.monotonic() - killed_at:.1f} s after the kill")
        assert row["end_cause"] == "node_lost" and row["node"] == f"n{doomed + 1}"
    finally:
        await again.close()
        if not caller.leg.ended:
            await caller.hang_up()
        cluster.restart(doomed)


async def test_draining_the_owner_drops_no_call(cluster: Cluster, carrier: EndpointHarness) -> None:
    """``callcenter drain`` on the owner while an agent talks to a caller there and another caller
    waits: new calls are refused, the talk goes on to its end, the waiting caller follows the
    tenant to its new owner and is answered there, and the node leaves after its last call."""
    import subprocess
    import sys

    nodes, password = cluster.nodes, cluster.admin_password
    owner = cluster.owner()
    other = next(i for i in range(3) if i != owner)
    first_agent = await agent_on(nodes[owner], "agent1", nodes[0].agents["agent1"][0])
    talking = await call_into(carrier, nodes[owner], "1", caller_id="13800138010")
    offer = await first_agent.expect("offer", timeout=20)
    await first_agent.send({"type": "accept", "call_id": offer["call_id"]})
    await eventually(lambda: talking.hears(AGENT_TONE))
    waiting = await call_into(carrier, nodes[owner], "2", caller_id="13800138011")  # 2: support
    await asyncio.sleep(2)
    drain = subprocess.Popen([sys.executable, "-m", "callcenter", "drain", "--data-dir", str(nodes[owner].data_dir)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    second_agent = None
    try:
        new_owner = await asyncio.to_thread(cluster.owner, other_than=owner)
        print(f"tenant handed from n{owner + 1} to n{new_owner + 1}")
        with pytest.raises(Exception):  # new calls are refused by the draining node
            await call_into(carrier, nodes[owner], "1", caller_id="13800138012")
        second_agent = await agent_on(nodes[other], "agent2", nodes[0].agents["agent2"][0])
        offer = await second_agent.expect("offer", timeout=30)
        assert offer["caller"] == "13800138011"
        await second_agent.send({"type": "accept", "call_id": offer["call_id"]})
        await eventually(lambda: waiting.hears(AGENT_TONE))
        talking.heard.clear()
        await eventually(lambda: talking.hears(AGENT_TONE))  # the first talk still goes on
        await talking.hang_up()
        await asyncio.sleep(1)
        assert drain.poll() is None  # the waiting caller came in there: its leg is relayed from it
        await waiting.hang_up()
        assert await asyncio.to_thread(drain.wait, 30) == 0
        assert "node left" in (drain.stdout.read() if drain.stdout else "")
    finally:
        await first_agent.close()
        if second_agent is not None:
            await second_agent.close()
        if drain.poll() is None:
            drain.kill()
    row = await asyncio.to_thread(record, nodes[new_owner], password, offer["call_id"])
    assert row["end_cause"] == "normal_clearing"
    nodes[owner].proc = None
    cluster.restart(owner)


async def test_redis_and_postgresql_restart_under_a_call_and_everything_recovers(
        cluster: Cluster, carrier: EndpointHarness) -> None:
    nodes, password = cluster.nodes, cluster.admin_password
    owner = cluster.owner()
    entering, tab = [i for i in range(3) if i != owner][:2]
    agent = await agent_on(nodes[tab], "agent1", nodes[0].agents["agent1"][0])
    try:
        caller = await call_into(carrier, nodes[entering], "1", caller_id="13800138020")
        offer = await agent.expect("offer", timeout=20)
        await agent.send({"type": "accept", "call_id": offer["call_id"]})
        await eventually(lambda: caller.hears(AGENT_TONE))
        for outage in ("redis", "postgresql"):
            if outage == "redis":
                await asyncio.to_thread(cluster.redis.halt)
                await asyncio.sleep(4)  # beyond the leases' renew deadline: ownership is lost meanwhile
                await asyncio.to_thread(cluster.redis.resume)
            else:
                await asyncio.to_thread(cluster.postgres.halt)
                await asyncio.sleep(4)
                await asyncio.to_thread(cluster.postgres.resume)
            caller.heard.clear()
            await eventually(lambda: caller.hears(AGENT_TONE))  # the call went on
            await eventually(lambda: detect_tone(agent.heard_pcm(0.5), CALLER_TONE, threshold=0.15))
        await caller.hang_up()
        await agent.expect("call_ended", timeout=15)
        agent = await follow(agent, nodes[tab])  # the tenant may have moved meanwhile: the page follows it
        await agent.send({"type": "wrapup", "call_id": offer["call_id"], "disposition": "resolved", "notes": ""})
        await agent.expect("wrapup_saved", timeout=15)
        await until_available(agent)
        # the ACD serves the next caller as before
        again = await call_into(carrier, nodes[entering], "1", caller_id="13800138021")
        offer2 = await agent.expect("offer", timeout=30)
        assert offer2["caller"] == "13800138021"
        await agent.send({"type": "accept", "call_id": offer2["call_id"]})
        await eventually(lambda: again.hears(AGENT_TONE))
        await again.hang_up()
    finally:
        await agent.close()
    for call_id in (offer["call_id"], offer2["call_id"]):
        row = await asyncio.to_thread(record, nodes[cluster.owner()], password, call_id)
        assert row["end_cause"] == "normal_clearing" and row["agent_id"] is not None


async def test_a_number_added_through_one_node_is_served_by_every_node(
        cluster: Cluster, carrier: EndpointHarness) -> None:
    nodes, password = cluster.nodes, cluster.admin_password
    with admin_client(nodes[0], password) as api:
        assert api.post("/api/numbers", json={"number": "4009990000"}).status_code == 201
    await asyncio.sleep(2.5)  # config_sync.SYNC_PERIOD, and a reload
    host, port = nodes[2].sip.rsplit(":", 1)
    carrier.endpoint.routing = RoutingTable(
        trunks=[Trunk(id=1, tenant_id=1, name="to-node", outbound_host=host, outbound_port=int(port))],
        numbers={}, tenants={1: Tenant(1, "demo", ("4",))})
    carrier.endpoint.trunk_state.clear()
    leg = await carrier.endpoint.dial(1, "4009990000", caller_id=CALLER)  # a number without a flow: line test
    caller = Caller(leg)
    try:
        await eventually(lambda: caller.hears(CALLER_TONE), timeout=20)  # its own voice, echoed by node 3
    finally:
        await caller.hang_up()


async def test_a_chat_through_any_node_survives_its_owners_death(cluster: Cluster) -> None:
    """The widget's requests and socket enter a node that does not host the tenant (forwarded and
    relayed to the owner), the agent's tab is on the other: the chat works; the owner is killed and
    the new owner takes the conversation up with its agent, and both sides resume after their last
    message, none lost or doubled."""
    nodes = cluster.nodes
    owner = cluster.owner()
    entering, tab = [i for i in range(3) if i != owner][:2]
    password = nodes[0].agents["agent1"][0]
    agent = await agent_on(nodes[tab], "agent1", password)
    visitor = Visitor(nodes[entering].http)
    try:
        for _ in range(20):  # 503 while the nodes agree on the tenant's owner (the cluster just started)
            if (reply := await visitor.open("我的订单还没发货")).status_code != 503:
                break
            await asyncio.sleep(0.5)
        assert reply.status_code == 201, reply.text
        await visitor.connect()
        offer = await agent.expect("chat_offer", timeout=10)
        await agent.send({"type": "chat_accept", "conversation_id": offer["conversation_id"]})
        await visitor.expect("status", status="active")
        await agent.send({"type": "chat_send", "conversation_id": visitor.conversation_id, "text": "您好，我查一下",
                          "client_id": "a1"})
        await visitor.text_arrives("您好，我查一下")
        await visitor.send("好的，谢谢")
        await agent.expect("chat_message", timeout=5)
        await asyncio.sleep(1.5)  # the owner's writer and its ACD snapshot (every second)
        cluster.kill(owner)
        new_owner = await asyncio.to_thread(cluster.owner, other_than=owner)
        await visitor.drop()
        await agent.close()
        agent = await agent_on(nodes[tab], "agent1", password)
        for _ in range(50):  # the relay reaches the new owner once it has taken the chat up
            try:
                await visitor.connect()
                break
            except (OSError, TimeoutError, WebSocketException):
                await asyncio.sleep(0.2)
        # the agent's chat: in the welcome, or pushed once the new owner has taken it up
        chats = [c["conversation"]["id"] for c in agent.welcome["chats"]] or [
            (await agent.expect("chat", timeout=10))["conversation"]["id"]]
        assert chats == [visitor.conversation_id], f"new owner n{new_owner + 1}"
        await agent.send({"type": "chat_send", "conversation_id": visitor.conversation_id, "text": "已经发货了",
                          "client_id": "a2"})
        await visitor.text_arrives("已经发货了")
        texts = [visitor.messages[s]["text"] for s in sorted(visitor.messages)]
        assert sorted(visitor.messages) == list(range(1, visitor.last_seq + 1))
        for text in ("我的订单还没发货", "您好，我查一下", "好的，谢谢", "已经发货了"):
            assert texts.count(text) == 1
    finally:
        await visitor.close()
        await agent.close()
    cluster.restart(owner)
