"""Callers handed between two nodes' SIP endpoints (a cluster): the internal leg, its messages
(SIP INFO, in order) and its audio, over loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sip_bridge.call import Call
from sip_bridge.endpoint import Handover
from sip_bridge.message import SipRequest
from sip_bridge.tones import detect_tone, sine
from tests.support.endpoint import EndpointHarness, routing_table


class Peers:
    """Accepts a handover from anyone carrying ``X-CC-Call`` (the token check is callcenter's)."""

    def handover(self, request: SipRequest, source_ip: str) -> Handover | None:
        call_id = request.headers.get("X-CC-Call")
        return Handover(call_id, 1, {"call": call_id, "queue": "sales"}) if call_id else None


@pytest.fixture
async def nodes() -> AsyncIterator[tuple[EndpointHarness, EndpointHarness, asyncio.Queue[tuple[Call, Handover]]]]:
    taken: asyncio.Queue[tuple[Call, Handover]] = asyncio.Queue()

    async def take(leg: Call, handover: Handover) -> None:
        await leg.answer()
        taken.put_nowait((leg, handover))
        await leg.wait_ended()

    entering = EndpointHarness(routing_table())
    owner = EndpointHarness(routing_table())
    owner.endpoint.peers = Peers()
    owner.endpoint.on_handover = take
    await entering.endpoint.start()
    await owner.endpoint.start()
    yield entering, owner, taken
    await entering.endpoint.stop()
    await owner.endpoint.stop()


async def test_a_handed_over_leg_carries_the_record_id_messages_in_order_and_audio_both_ways(nodes) -> None:
    entering, owner, taken = nodes
    leg = await entering.endpoint.dial_node(1, ("127.0.0.1", owner.endpoint.config.sip_port), call_id="rec-1",
                                            caller="13800138000", headers=[("X-CC-Call", "rec-1")])
    there, handover = await asyncio.wait_for(taken.get(), 5)
    assert there.id == "rec-1" and there.internal and leg.internal and handover.params["queue"] == "sales"
    for i in range(5):
        await there.send_message({"n": i})
    assert [await leg.next_message() for _ in range(5)] == [{"n": i} for i in range(5)]
    heard_here, heard_there = [], []

    async def talk(call: Call, freq: float, heard: list[bytes]) -> None:
        async for frame in call.audio():
            heard.append(frame)
            call.send_audio(sine(freq, 0.02, amplitude=0.3))

    tasks = [asyncio.ensure_future(talk(leg, 1000, heard_here)), asyncio.ensure_future(talk(there, 1400, heard_there))]
    await asyncio.sleep(1.5)
    assert detect_tone(b"".join(heard_here[-25:]), 1400, threshold=0.5)
    assert detect_tone(b"".join(heard_there[-25:]), 1000, threshold=0.5)
    await leg.hangup()
    await asyncio.wait_for(there.wait_ended(), 5)
    assert await leg.next_message() is None
    for task in tasks:
        task.cancel()


async def test_the_entering_node_relays_its_caller_to_the_handed_over_leg_both_ways(nodes) -> None:
    entering, owner, taken = nodes
    relayed: asyncio.Queue[Call] = asyncio.Queue()

    async def relay(caller: Call) -> None:
        await caller.answer()
        leg = await entering.endpoint.dial_node(1, ("127.0.0.1", owner.endpoint.config.sip_port), call_id=caller.id,
                                                caller=caller.caller, headers=[("X-CC-Call", caller.id)])
        caller.hangs_up_with_peer = False
        caller.bridge(leg)
        relayed.put_nowait(leg)
        await caller.wait_ended()

    entering.handler = relay
    carrier = EndpointHarness(routing_table(outbound_port=entering.endpoint.config.sip_port))
    await carrier.endpoint.start()
    try:
        from tests.support.endpoint import NUMBER
        caller = await carrier.endpoint.dial(1, NUMBER, caller_id="13800138000")
        there, _ = await asyncio.wait_for(taken.get(), 5)
        heard_caller, heard_there = [], []

        async def talk(call: Call, freq: float, heard: list[bytes]) -> None:
            async for frame in call.audio():
                heard.append(frame)
                call.send_audio(sine(freq, 0.02, amplitude=0.3))

        tasks = [asyncio.ensure_future(talk(caller, 1000, heard_caller)),
                 asyncio.ensure_future(talk(there, 1400, heard_there))]
        await asyncio.sleep(1.5)
        assert detect_tone(b"".join(heard_caller[-25:]), 1400, threshold=0.5)
        assert detect_tone(b"".join(heard_there[-25:]), 1000, threshold=0.5)
        for task in tasks:
            task.cancel()
        await caller.hangup()
        await asyncio.wait_for(there.wait_ended(), 5)  # the caller's hang-up reaches the owner
    finally:
        await carrier.endpoint.stop()
