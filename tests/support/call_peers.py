"""The peers of calls in node and cluster tests and benchmarks: a carrier's caller dialing a
chosen node (our SIP stack), and an agent's tab (``AgentClient``: aiortc and the page's
protocol) on a chosen node.

    carrier = EndpointHarness(carrier_routing()); await carrier.endpoint.start()
    caller = await call_into(carrier, cluster.nodes[1], "1")    # presses 1 once the menu plays
    agent = await agent_on(cluster.nodes[2], "agent1", password)  # connected and available
"""

from __future__ import annotations

import asyncio

from sip_bridge.call import Call
from sip_bridge.routing import Number, RoutingTable, Tenant, Trunk
from sip_bridge.tones import detect_tone, sine
from softphone_web.agent_client import AgentClient
from tests.support.endpoint import EndpointHarness
from tests.support.node import NodeProcess

DEMO = "4001234567"
"""The demo tenant's number (its menu: 1 sales, 2 support)."""
CALLER = "13800138000"
CALLER_TONE, AGENT_TONE = 1000.0, 1400.0
"""What a caller and an agent send, so that each side can tell it hears the other."""


class Caller:
    """A carrier's caller on an answered leg: talks (a tone, while ``talking``) and listens."""

    def __init__(self, leg: Call) -> None:
        self.leg = leg
        self.heard: list[bytes] = []
        self.talking = True
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        async for frame in self.leg.audio():
            self.heard = (self.heard + [frame])[-50:]
            if self.talking:
                self.leg.send_audio(sine(CALLER_TONE, 0.02, amplitude=0.3))

    def hears(self, freq: float, share: float = 0.5) -> bool:
        """Whether ``freq`` carries at least ``share`` of what the caller heard in the last half second."""
        return detect_tone(b"".join(self.heard[-25:]), freq, threshold=share)

    async def hang_up(self) -> None:
        await self.leg.hangup()
        self.task.cancel()


def carrier_routing() -> RoutingTable:
    """A carrier's endpoint: it only dials out (:func:`call_into` points its trunk at a node)."""
    return RoutingTable(trunks=[], numbers={DEMO: Number(DEMO, 1)}, tenants={1: Tenant(1, "demo", ("1",))})


async def call_into(carrier: EndpointHarness, node: NodeProcess | str, key: str | None, caller_id: str = CALLER,
                    number: str = DEMO) -> Caller:
    """A caller dialing ``number`` on ``node`` (``ip:port``, or a node) and pressing ``key`` once the menu plays."""
    host, port = (node if isinstance(node, str) else node.sip).rsplit(":", 1)
    carrier.endpoint.routing = RoutingTable(
        trunks=[Trunk(id=1, tenant_id=1, name="to-node", outbound_host=host, outbound_port=int(port))],
        numbers={DEMO: Number(DEMO, 1)}, tenants={1: Tenant(1, "demo", ("4",))})
    carrier.endpoint.trunk_state.clear()
    leg = await carrier.endpoint.dial(1, number, caller_id=caller_id)
    if key is not None:
        await asyncio.sleep(1.0)
        leg.send_dtmf(key)
    return Caller(leg)


async def available(client: AgentClient) -> AgentClient:
    """``client``'s tab connected, its audio up, and the agent available."""
    await client.connect()
    await client.wait_connected()
    await client.send({"type": "set_state", "state": "available"})
    await client.expect("state", state="available")
    return client


async def agent_on(node: NodeProcess, name: str, password: str) -> AgentClient:
    """Agent ``name``'s tab connected through ``node``, its audio up, and available."""
    client = AgentClient(node.http, "demo", name, password)
    client.mic.freq = AGENT_TONE
    return await available(client)
