"""The endpoint behind a cluster's SIP front (in process, real UDP on loopback): requests the
front relays are judged by the sender it names (``X-Source``), a draining endpoint answers 503,
and out-of-dialog requests to trunks go to the outbound proxy with the trunk in the Request-URI.
The front itself (Kamailio) is tested with real nodes in tests/cluster/test_sip_front.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from sip_bridge.call import DialError
from sip_bridge.message import SipRequest, SipResponse, generate_branch, make_response, parse_message
from sip_bridge.trunks import TrunkMonitor
from tests.support.endpoint import EndpointHarness, routing_table
from tests.support.node import free_port

CARRIER = "198.51.100.7"
"""The carrier's real address: the demo trunk's allow-list names it, the front relays its calls."""
UNKNOWN_NUMBER = "4009999999"


class Peer(asyncio.DatagramProtocol):
    """A SIP peer on loopback (the front, or a proxy): records what reaches it, answers
    requests whose method is in ``answers`` with that status."""

    def __init__(self, answers: dict[str, int] | None = None) -> None:
        self.answers = answers or {}
        self.requests: list[SipRequest] = []
        self.responses: asyncio.Queue[SipResponse] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_message(data)
        if isinstance(message, SipResponse):
            self.responses.put_nowait(message)
            return
        assert isinstance(message, SipRequest)
        self.requests.append(message)
        status = self.answers.get(message.method)
        if status is not None and self.transport is not None:
            self.transport.sendto(make_response(message, status, to_tag="peer").to_bytes(), addr)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, request: str, to: int) -> None:
        assert self.transport is not None
        self.transport.sendto(request.encode(), ("127.0.0.1", to))

    async def final(self) -> SipResponse:
        """The next final response."""
        while True:
            response = await asyncio.wait_for(self.responses.get(), 5)
            if response.status >= 200:
                return response


PeerFactory = Callable[..., Awaitable[Peer]]


@pytest.fixture
async def peer() -> AsyncIterator[PeerFactory]:
    """``await peer(answers)``: a new peer, closed after the test."""
    made: list[Peer] = []

    async def make(answers: dict[str, int] | None = None) -> Peer:
        _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: Peer(answers), local_addr=("127.0.0.1", 0))
        made.append(protocol)
        return protocol

    yield make
    for one in made:
        if one.transport is not None:
            one.transport.close()


def request(method: str, to: int, via_port: int, *, source: str | None, number: str = UNKNOWN_NUMBER) -> str:
    """A request as the front relays it: its own Via on top, the sender in X-Source."""
    lines = [f"{method} sip:{number}@127.0.0.1:{to} SIP/2.0",
             f"Via: SIP/2.0/UDP 127.0.0.1:{via_port};branch={generate_branch()}",
             f"Via: SIP/2.0/UDP {CARRIER}:5060;branch={generate_branch()}",
             f"From: <sip:13800138000@{CARRIER}>;tag=carrier1", f"To: <sip:{number}@127.0.0.1>",
             f"Call-ID: {generate_branch()}@{CARRIER}", f"CSeq: 1 {method}", f"Contact: <sip:carrier@{CARRIER}>",
             "Max-Forwards: 69"]
    if source is not None:
        lines.append(f"X-Source: {source}")
    return "\r\n".join(lines + ["Content-Length: 0", "", ""])


@pytest.fixture
async def behind_front() -> AsyncIterator[EndpointHarness]:
    """An endpoint whose front is 127.0.0.1, with a trunk that allows the carrier's address."""
    h = EndpointHarness(routing_table(inbound_ips=(CARRIER,)), fronts=frozenset({"127.0.0.1"}))
    await h.endpoint.start()
    yield h
    await h.endpoint.stop()


@pytest.mark.parametrize(("source", "status"), [
    (f"udp {CARRIER} 5060", 404),  # the carrier's trunk: then the number is looked up (unknown here)
    ("udp 203.0.113.66 5060", 403),  # a stranger relayed by the front
    (f"carrier-pigeon {CARRIER} 5060", 403),  # malformed: the front's own address, which no trunk allows
    (None, 403),
])
async def test_an_invite_the_front_relays_is_judged_by_the_sender_it_names(
        behind_front: EndpointHarness, peer: PeerFactory, source: str | None, status: int) -> None:
    front = await peer()
    front.send(request("INVITE", behind_front.endpoint.config.sip_port, front.port, source=source),
               behind_front.endpoint.config.sip_port)
    assert (await front.final()).status == status


async def test_x_source_from_anywhere_else_is_not_believed(peer: PeerFactory) -> None:
    h = EndpointHarness(routing_table(inbound_ips=(CARRIER,)))  # no front configured
    await h.endpoint.start()
    try:
        stranger = await peer()
        stranger.send(request("INVITE", h.endpoint.config.sip_port, stranger.port, source=f"udp {CARRIER} 5060"),
                      h.endpoint.config.sip_port)
        assert (await stranger.final()).status == 403
    finally:
        await h.endpoint.stop()


async def test_a_draining_endpoint_answers_503_to_options_and_new_calls_then_200_again(
        behind_front: EndpointHarness, peer: PeerFactory) -> None:
    front = await peer()
    port = behind_front.endpoint.config.sip_port
    behind_front.endpoint.set_draining(True)
    front.send(request("OPTIONS", port, front.port, source=None), port)
    assert (await front.final()).status == 503
    front.send(request("INVITE", port, front.port, source=f"udp {CARRIER} 5060"), port)
    assert (await front.final()).status == 503
    behind_front.endpoint.set_draining(False)
    front.send(request("OPTIONS", port, front.port, source=None), port)
    assert (await front.final()).status == 200


@pytest.mark.parametrize(("transport", "uri_suffix"), [("udp", ""), ("tcp", ";transport=tcp")])
async def test_out_of_dialog_requests_to_a_trunk_go_to_the_outbound_proxy(peer: PeerFactory, transport: str,
                                                                          uri_suffix: str) -> None:
    proxy = await peer({"INVITE": 486, "OPTIONS": 200})
    trunk_port = free_port()  # nothing listens there: everything must go to the proxy
    table = routing_table(outbound_port=trunk_port)
    table.trunks[0] = replace(table.trunks[0], outbound_transport=transport)
    h = EndpointHarness(table, outbound_proxy=("127.0.0.1", proxy.port))
    await h.endpoint.start()
    monitor = TrunkMonitor(h.endpoint)
    try:
        with pytest.raises(DialError) as info:
            await h.endpoint.dial(1, "18005550100", caller_id="4001234567", timeout=5)
        assert info.value.cause == "busy"  # the proxy's answer came back
        monitor.update(h.endpoint.routing.trunks)
        for _ in range(100):
            if any(r.method == "OPTIONS" for r in proxy.requests):
                break
            await asyncio.sleep(0.02)
        uris = {r.method: str(r.uri) for r in proxy.requests}
        assert uris == {"INVITE": f"sip:18005550100@127.0.0.1:{trunk_port}{uri_suffix}",
                        "ACK": f"sip:18005550100@127.0.0.1:{trunk_port}{uri_suffix}",
                        "OPTIONS": f"sip:127.0.0.1:{trunk_port}{uri_suffix}"}
        assert h.endpoint.trunk_state[1] == "up"
    finally:
        monitor.stop()
        await h.endpoint.stop()
