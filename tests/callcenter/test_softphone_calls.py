"""The softphone protocol end to end without a browser: agents are ``AgentClient``\\ s
(aiortc + the page's WebSocket protocol) on a demo node; the caller is our SIP stack.

What is asserted is what people hear and see: the caller's tone in the agent's ear, the
agent's tone in the caller's, hold music, the transfer reaching the other agent, the
offer moving on after a decline, and the call record with the agent's disposition.
The same flow through the real page in Chromium is ``tests/softphone_web/test_agent_page.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from sip_bridge.routing import Number, RoutingTable
from sip_bridge.tones import detect_tone
from softphone_web.agent_client import AgentClient, SupervisorClient
from tests.support.call_peers import CALLER_TONE, Caller, available
from tests.support.endpoint import EndpointHarness, routing_table
from tests.support.node import NodeProcess, add_tenant, admin_client

pytestmark = pytest.mark.interop

DEMO = "4001234567"
CALLER = "13800138000"
CUSTOMER = "13900139000"
AGENT1_TONE, AGENT2_TONE, SUPERVISOR_TONE = 1400.0, 700.0, 2200.0


@pytest.fixture(scope="module")
def node(module_node: NodeProcess) -> NodeProcess:
    return module_node


@pytest.fixture(scope="module")
def api(node: NodeProcess) -> Iterator[httpx.Client]:
    with admin_client(node) as client:
        for queue in client.get("/api/queues").json():  # short wrap-up, no announcements over the audio
            client.patch(f"/api/queues/{queue['id']}", json={"wrapup": 30, "announce_every": None})
        yield client


class Clients:
    """The agent clients of one test, all closed when it ends."""

    def __init__(self, node: NodeProcess) -> None:
        self.node = node
        self.made: list[AgentClient] = []

    def add(self, client: AgentClient) -> AgentClient:
        self.made.append(client)
        return client

    async def supervisor(self, tenant: str = "demo", name: str = "supervisor", password: str | None = None,
                         tone: float = SUPERVISOR_TONE) -> SupervisorClient:
        """A supervisor's wallboard socket with its WebRTC line up, the microphone playing ``tone``."""
        client = self.add(SupervisorClient(self.node.http, tenant, name, password or self.node.staff[name]))
        client.mic.freq = tone
        await client.connect()
        await client.wait_connected()
        return client

    async def agent(self, name: str, tone: float) -> AgentClient:
        """A demo agent's softphone, connected, its microphone playing ``tone``, available."""
        client = self.add(AgentClient(self.node.http, "demo", name, self.node.agents[name][0]))
        client.mic.freq = tone
        return await available(client)


@pytest.fixture
async def clients(node: NodeProcess) -> AsyncIterator[Clients]:
    made = Clients(node)
    yield made
    for client in made.made:
        await client.close()


@pytest.fixture
async def harness(node: NodeProcess) -> AsyncIterator[EndpointHarness]:
    """Our SIP stack as the callers' carrier; stopping it hangs up the calls a test left."""
    h = EndpointHarness(routing_table(outbound_port=node.sip_port))
    await h.endpoint.start()
    yield h
    await h.endpoint.stop()


async def call_in(harness: EndpointHarness, key: str) -> Caller:
    leg = await harness.endpoint.dial(1, DEMO, caller_id=CALLER)
    await asyncio.sleep(1.0)
    leg.send_dtmf(key)
    return Caller(leg)


async def answered_by(client: AgentClient, harness: EndpointHarness, key: str = "1") -> tuple[Caller, dict[str, Any]]:
    """A caller pressing ``key``, offered to and accepted by ``client``, until the caller hears the agent."""
    caller = await call_in(harness, key)
    offer = await client.expect("offer")
    await client.send({"type": "accept", "call_id": offer["call_id"]})
    await eventually(lambda: caller.hears(client.mic.freq or 0))
    return caller, offer


async def eventually(check: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.1)


async def test_call_hold_transfer_and_wrap_up(node: NodeProcess, api: httpx.Client,
                                               harness: EndpointHarness, clients: Clients) -> None:
    agent1 = await clients.agent("agent1", AGENT1_TONE)
    agent2 = await clients.agent("agent2", AGENT2_TONE)
    caller = await call_in(harness, "1")  # sales: agent1 (agent2 lacks the skill)
    offer = await agent1.expect("offer")
    assert offer["caller"] == CALLER and offer["queue"] == "sales"
    await agent1.send({"type": "accept", "call_id": offer["call_id"]})
    await agent1.expect("call", call_id=offer["call_id"])

    await eventually(lambda: detect_tone(agent1.heard_pcm(0.5), CALLER_TONE))  # caller -> agent
    await eventually(lambda: caller.hears(AGENT1_TONE))  # agent -> caller

    await agent1.send({"type": "hold", "on": True})
    held = await agent1.expect("call", held=True)
    await asyncio.sleep(0.2)
    agent1.heard.clear()  # from now on, only what arrives on hold
    await asyncio.sleep(1.0)
    assert not caller.hears(AGENT1_TONE), "the caller still hears the agent on hold"
    assert not detect_tone(agent1.heard_pcm(0.5), CALLER_TONE), "the agent still hears the caller on hold"
    await agent1.send({"type": "hold", "on": False})
    await agent1.expect("call", held=False)
    await eventually(lambda: caller.hears(AGENT1_TONE))

    await agent1.send({"type": "transfer", "mode": "blind", "target": {"kind": "agent", "value": "agent2"}})
    ended = await agent1.expect("call_ended", call_id=offer["call_id"])
    assert ended["wrapup_until"] is not None
    second = await agent2.expect("offer", call_id=offer["call_id"])
    assert second["caller"] == CALLER
    await agent2.send({"type": "accept", "call_id": offer["call_id"]})
    await agent2.expect("call", call_id=offer["call_id"])
    await eventually(lambda: caller.hears(AGENT2_TONE))
    await eventually(lambda: detect_tone(agent2.heard_pcm(0.5), CALLER_TONE))

    await agent1.send({"type": "wrapup", "call_id": offer["call_id"], "disposition": "escalated",
                       "notes": "sent to agent2"})
    await agent1.expect("wrapup_saved")
    await agent1.expect("state", state="available")
    await caller.hang_up()
    await agent2.expect("call_ended", call_id=offer["call_id"])

    record = api.get(f"/api/calls/{offer['call_id']}").json()
    assert record["disposition"] == "escalated" and record["wrapup_notes"] == "sent to agent2"
    kinds = [e["kind"] for e in record["events"]]
    assert kinds.index("answered") < kinds.index("hold") < kinds.index("unhold") < kinds.index("transfer")
    assert kinds.count("answered") == 2  # agent1, then agent2
    assert held["held"] is True


async def test_a_declined_call_goes_to_the_next_agent(node: NodeProcess, api: httpx.Client,
                                                      harness: EndpointHarness, clients: Clients) -> None:
    agent1 = await clients.agent("agent1", AGENT1_TONE)
    agent2 = await clients.agent("agent2", AGENT2_TONE)
    caller = await call_in(harness, "2")  # support: both agents have the skill
    offers = {asyncio.ensure_future(a.expect("offer")): a for a in (agent1, agent2)}
    done, pending = await asyncio.wait(offers, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    first = next(iter(done))
    declining, other = offers[first], (agent2 if offers[first] is agent1 else agent1)
    call_id = first.result()["call_id"]
    await declining.send({"type": "decline", "call_id": call_id})
    await declining.expect("state", state="break")  # the ACD's "missed" break
    again = await other.expect("offer", call_id=call_id)
    await other.send({"type": "accept", "call_id": again["call_id"]})
    await eventually(lambda: caller.hears(other.mic.freq))


async def test_reconnecting_reattaches_the_call(node: NodeProcess, api: httpx.Client,
                                               harness: EndpointHarness, clients: Clients) -> None:
    """A reload: the tab's socket and WebRTC connection go away and come back; the call stays."""
    agent1 = await clients.agent("agent1", AGENT1_TONE)
    caller, offer = await answered_by(agent1, harness)
    await agent1.close()  # the tab goes away
    await asyncio.sleep(1.0)
    again = clients.add(AgentClient(node.http, "demo", "agent1", node.agents["agent1"][0]))
    again.mic.freq = AGENT2_TONE  # a different tone: what the caller hears now is the new connection
    welcome = await again.connect()
    assert welcome["call"] is not None and welcome["call"]["call_id"] == offer["call_id"]
    await eventually(lambda: caller.hears(AGENT2_TONE))
    await eventually(lambda: detect_tone(again.heard_pcm(0.5), CALLER_TONE))


async def test_sockets_of_strangers_are_refused(node: NodeProcess, api: httpx.Client) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    url = node.http.replace("http", "ws", 1) + "/api/agent/ws"
    for headers in ({}, {"Authorization": "Bearer not-a-token"},
                    {"Authorization": api.headers["Authorization"]}):  # the admin is not an agent
        async with connect(url, additional_headers=headers) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code in (4401, 4403)


async def test_another_tenants_agent_cannot_touch_the_call(node: NodeProcess, api: httpx.Client,
                                                          harness: EndpointHarness, clients: Clients) -> None:
    eve = clients.add(AgentClient(node.http, add_tenant(node, "acme", {"eve": "agent"}), "eve", "eve-secret-1"))
    await eve.connect()
    await eve.send({"type": "set_state", "state": "available"})
    agent1 = await clients.agent("agent1", AGENT1_TONE)
    caller = await call_in(harness, "1")
    offer = await agent1.expect("offer")
    for request in ({"type": "accept", "call_id": offer["call_id"]}, {"type": "hangup"},
                    {"type": "transfer", "mode": "blind", "target": {"kind": "number", "value": "1000"}}):
        await eve.send(request)
        refused = await eve.expect("error")
        assert refused["ref"] == request["type"]
    assert "agent1" not in {a["username"] for a in eve.welcome["targets"]["agents"]}
    await agent1.send({"type": "accept", "call_id": offer["call_id"]})
    await eventually(lambda: caller.hears(AGENT1_TONE))
    assert not any(m["type"] == "offer" for m in eve.messages)


async def test_consult_then_conference_then_the_agent_leaves(node: NodeProcess, api: httpx.Client,
                                                             harness: EndpointHarness, clients: Clients) -> None:
    agent1 = await clients.agent("agent1", AGENT1_TONE)
    agent2 = await clients.agent("agent2", AGENT2_TONE)
    caller, offer = await answered_by(agent1, harness)

    await agent1.send({"type": "transfer", "mode": "consult", "target": {"kind": "agent", "value": "agent2"}})
    consulted = await agent2.expect("offer")
    assert consulted["consult"] is True and consulted["caller"] == CALLER
    await agent2.send({"type": "accept", "call_id": consulted["call_id"]})
    talking = await agent1.expect("call", held=True)
    while (talking.get("consult") or {}).get("state") != "talking":
        talking = await agent1.expect("call")
    agent1.heard.clear()
    await eventually(lambda: detect_tone(agent1.heard_pcm(0.5), AGENT2_TONE))  # the colleague, not the caller
    assert not caller.hears(AGENT2_TONE) and not caller.hears(AGENT1_TONE)  # the caller holds meanwhile

    await agent1.send({"type": "conference"})
    await agent1.expect("call", conference=True)
    await eventually(lambda: caller.hears(AGENT1_TONE, 0.2) and caller.hears(AGENT2_TONE, 0.2))
    agent2.heard.clear()
    await eventually(lambda: detect_tone(agent2.heard_pcm(0.5), CALLER_TONE, threshold=0.2)
                     and detect_tone(agent2.heard_pcm(0.5), AGENT1_TONE, threshold=0.2))

    await agent1.send({"type": "hangup"})  # in a conference: the agent leaves, the others talk on
    await agent1.send({"type": "transfer_complete"})  # (already complete: refused, harmless)
    await agent1.expect("call_ended")
    await asyncio.sleep(1.0)
    await eventually(lambda: caller.hears(AGENT2_TONE) and not caller.hears(AGENT1_TONE))
    await caller.hang_up()
    await agent2.expect("call_ended")
    record = api.get(f"/api/calls/{offer['call_id']}").json()
    kinds = [e["kind"] for e in record["events"]]
    assert "consult" in kinds and "conference" in kinds and kinds.count("answered") == 2
    assert record["agent"]["username"] == "agent2"


async def test_a_cancelled_consult_goes_back_to_the_caller(node: NodeProcess, api: httpx.Client,
                                                           harness: EndpointHarness, clients: Clients) -> None:
    agent1 = await clients.agent("agent1", AGENT1_TONE)
    agent2 = await clients.agent("agent2", AGENT2_TONE)
    caller, offer = await answered_by(agent1, harness)
    await agent1.send({"type": "transfer", "mode": "consult", "target": {"kind": "agent", "value": "agent2"}})
    consulted = await agent2.expect("offer")
    await agent1.send({"type": "transfer_cancel"})  # still ringing: the offer goes away
    await agent2.expect("offer_cancelled", call_id=consulted["call_id"])
    await agent1.expect("call", held=False)
    await eventually(lambda: caller.hears(AGENT1_TONE))
    states = [m["state"] for m in agent2.messages if m["type"] == "state"]
    assert states[-1] == "available", states  # ringing reserved agent2; the cancel frees them


async def test_an_agent_gone_beyond_the_grace_period_gives_the_call_back_to_the_queue(
        node: NodeProcess, api: httpx.Client, harness: EndpointHarness, clients: Clients) -> None:
    """The tab stays away longer than ``softphone_grace`` (10 s): the agent is logged off and
    the caller, instead of staying with nobody, waits in the queue again and is answered."""
    agent1 = await clients.agent("agent1", AGENT1_TONE)
    caller, offer = await answered_by(agent1, harness)
    await agent1.close()
    agent_id = next(a["id"] for a in api.get("/api/agents").json() if a["username"] == "agent1")
    async with asyncio.timeout(20):
        while (next(a for a in api.get("/api/agents").json() if a["id"] == agent_id)["live"] or {}) \
                .get("state") != "offline":
            await asyncio.sleep(0.5)
    assert not caller.leg.ended
    back = await clients.agent("agent1", AGENT2_TONE)
    again = await back.expect("offer", call_id=offer["call_id"])
    await back.send({"type": "accept", "call_id": again["call_id"]})
    await eventually(lambda: caller.hears(AGENT2_TONE))
    events = [e["kind"] for e in api.get(f"/api/calls/{offer['call_id']}").json()["events"]]
    assert events.count("answered") == 2 and "transfer" in events


def hears(client: AgentClient, freq: float, share: float = 0.15) -> bool:
    return detect_tone(client.heard_pcm(0.5), freq, threshold=share)


async def test_supervisor_listens_whispers_and_barges_without_dropping(
        node: NodeProcess, api: httpx.Client, harness: EndpointHarness, clients: Clients) -> None:
    """One WebRTC line, three modes in turn: who hears the supervisor changes, nobody's audio drops."""
    agent1 = await clients.agent("agent1", AGENT1_TONE)
    boss = await clients.supervisor()
    caller, offer = await answered_by(agent1, harness)
    call_id = offer["call_id"]

    confirmed = await boss.monitor(call_id, "listen")
    assert confirmed["suspended"] is False and confirmed["agent_id"]
    await eventually(lambda: hears(boss, CALLER_TONE) and hears(boss, AGENT1_TONE))
    await asyncio.sleep(1.0)
    assert not caller.hears(SUPERVISOR_TONE, 0.05) and not hears(agent1, SUPERVISOR_TONE, 0.05)
    assert caller.hears(AGENT1_TONE, 0.2) and hears(agent1, CALLER_TONE, 0.2)

    await boss.monitor(call_id, "whisper")  # the agent hears the supervisor, the caller does not
    await eventually(lambda: hears(agent1, SUPERVISOR_TONE) and hears(agent1, CALLER_TONE))
    await asyncio.sleep(1.0)
    assert not caller.hears(SUPERVISOR_TONE, 0.05) and caller.hears(AGENT1_TONE, 0.2)
    assert hears(boss, CALLER_TONE) and hears(boss, AGENT1_TONE)

    await boss.monitor(call_id, "barge")  # everyone hears everyone
    await eventually(lambda: caller.hears(SUPERVISOR_TONE, 0.15) and caller.hears(AGENT1_TONE, 0.15))
    await eventually(lambda: hears(agent1, SUPERVISOR_TONE) and hears(agent1, CALLER_TONE))

    await boss.send({"type": "monitor_stop"})
    ended = await boss.expect("monitor_ended", call_id=call_id)
    assert ended["reason"] == "stopped"
    await asyncio.sleep(0.5)
    await eventually(lambda: not caller.hears(SUPERVISOR_TONE, 0.05) and caller.hears(AGENT1_TONE))
    await eventually(lambda: not hears(agent1, SUPERVISOR_TONE, 0.05) and hears(agent1, CALLER_TONE, 0.3))

    audit = api.get("/api/audit", params={"target": f"call:{call_id}"}).json()
    actions = [entry["action"] for entry in audit]
    assert sorted(actions) == ["call.barge", "call.listen", "call.whisper"], actions
    events = [e for e in api.get(f"/api/calls/{call_id}").json()["events"] if e["kind"] == "monitor"]
    assert [e["detail"]["mode"] for e in events] == ["listen", "whisper", "barge"]
    await caller.hang_up()


async def test_monitoring_survives_hold_and_ends_with_the_call(
        node: NodeProcess, api: httpx.Client, harness: EndpointHarness, clients: Clients) -> None:
    agent1 = await clients.agent("agent1", AGENT1_TONE)
    boss = await clients.supervisor()
    caller, offer = await answered_by(agent1, harness)
    call_id = offer["call_id"]
    await boss.monitor(call_id, "whisper")
    await eventually(lambda: hears(agent1, SUPERVISOR_TONE))

    await agent1.send({"type": "hold", "on": True})
    await boss.expect("monitor", call_id=call_id, suspended=True)
    await eventually(lambda: not caller.hears(AGENT1_TONE, 0.05))  # hold music, as without a supervisor
    await agent1.send({"type": "hold", "on": False})
    await boss.expect("monitor", call_id=call_id, suspended=False, mode="whisper")
    await eventually(lambda: caller.hears(AGENT1_TONE) and hears(agent1, SUPERVISOR_TONE))
    assert not caller.hears(SUPERVISOR_TONE, 0.05)

    await caller.hang_up()
    ended = await boss.expect("monitor_ended", call_id=call_id)
    assert ended["reason"] == "call_ended"


async def test_supervisors_reach_only_their_tenants_calls(
        node: NodeProcess, api: httpx.Client, harness: EndpointHarness, clients: Clients) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    agent1 = await clients.agent("agent1", AGENT1_TONE)
    caller, offer = await answered_by(agent1, harness)
    stranger = await clients.supervisor(add_tenant(node, "globex", {"mallory": "supervisor"}), "mallory",
                                        "mallory-secret-1")
    await stranger.send({"type": "monitor", "call_id": offer["call_id"], "mode": "listen"})
    refused = await stranger.expect("error")
    assert refused["ref"] == "monitor" and "no such call" in refused["message"]
    assert offer["call_id"] not in json.dumps(stranger.messages)  # not on their wallboard either
    await asyncio.sleep(1.0)
    assert not caller.hears(SUPERVISOR_TONE, 0.05) and not hears(stranger, CALLER_TONE, 0.05)

    boss = await clients.supervisor()
    await boss.send({"type": "monitor", "call_id": offer["call_id"], "mode": "eavesdrop"})
    assert "mode must be one of" in (await boss.expect("error"))["message"]

    token = await AgentClient(node.http, "demo", "agent2", node.agents["agent2"][0]).login()
    url = node.http.replace("http", "ws", 1) + "/api/supervisor/ws"
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    await caller.hang_up()


async def test_a_call_the_agent_placed_goes_to_another_agent(node: NodeProcess, api: httpx.Client,
                                                            clients: Clients) -> None:
    table = routing_table()  # the customer's carrier: takes calls from the node for the customer's number
    customer_side = EndpointHarness(RoutingTable(trunks=table.trunks, numbers={CUSTOMER: Number(CUSTOMER, 1)},
                                                 tenants=table.tenants))
    await customer_side.endpoint.start()
    trunk = api.post("/api/trunks", json={"name": "to-customer", "outbound_host": "127.0.0.1",
                                          "outbound_port": customer_side.endpoint.config.sip_port, "priority": 1})
    assert trunk.status_code == 201, trunk.text
    try:
        await eventually(lambda: api.get(f"/api/trunks/{trunk.json()['id']}").json()["status"] == "up")
        agent1 = await clients.agent("agent1", AGENT1_TONE)
        agent2 = await clients.agent("agent2", AGENT2_TONE)
        await agent1.send({"type": "dial", "number": CUSTOMER})
        leg = await asyncio.wait_for(customer_side.calls.get(), 10)
        await asyncio.wait_for(leg.wait_answered(), 10)
        customer = Caller(leg)
        await eventually(lambda: customer.hears(AGENT1_TONE))

        await agent1.send({"type": "transfer", "mode": "blind", "target": {"kind": "agent", "value": "agent2"}})
        await agent1.expect("call_ended")
        offer = await agent2.expect("offer")
        assert offer["caller"] == CUSTOMER  # the customer's number, not the caller ID shown to them
        await agent2.send({"type": "accept", "call_id": offer["call_id"]})
        await eventually(lambda: customer.hears(AGENT2_TONE))
        await eventually(lambda: detect_tone(agent2.heard_pcm(0.5), CALLER_TONE))
        await customer.hang_up()
        await agent2.expect("call_ended", call_id=offer["call_id"])

        record = api.get(f"/api/calls/{offer['call_id']}").json()
        assert record["direction"] == "outbound" and record["agent"]["username"] == "agent2"
        kinds = [e["kind"] for e in record["events"]]
        assert kinds.index("dialed") < kinds.index("transfer") < kinds.index("answered")
    finally:
        api.delete(f"/api/trunks/{trunk.json()['id']}")
        await customer_side.endpoint.stop()
