"""RTP streams over real loopback sockets: peer locking, playback, relay, DTMF, one clock."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from sip_bridge.dtmf import DtmfEvent, DtmfReceiver
from sip_bridge.g711 import pcm_to_alaw, pcm_to_ulaw, ulaw_to_pcm
from sip_bridge.media import MediaClock, MediaStats, PortAllocator, RtpStream
from sip_bridge.rtp import RtpPacket
from sip_bridge.sdp import MediaParams
from sip_bridge.tones import detect_tone, sine
from tests.support.node import rtp_range


class Peer:
    """A plain UDP socket standing in for the far end's RTP."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]

    async def recv_packets(self, count: int, timeout: float = 5.0) -> list[RtpPacket]:
        loop = asyncio.get_running_loop()
        out = []
        async with asyncio.timeout(timeout):
            while len(out) < count:
                out.append(RtpPacket.parse(await loop.sock_recv(self.sock, 2048)))
        return out

    def send(self, packet: RtpPacket, port: int) -> None:
        self.sock.sendto(packet.serialize(), ("127.0.0.1", port))


@pytest.fixture
async def media() -> AsyncIterator[tuple[MediaClock, MediaStats, PortAllocator]]:
    clock = MediaClock(asyncio.get_running_loop())
    yield clock, MediaStats(), PortAllocator(*rtp_range(40))
    clock.stop()


async def open_stream(media: tuple[MediaClock, MediaStats, PortAllocator], peer: Peer, codec: str = "PCMU",
                      dtmf: list[DtmfEvent] | None = None) -> RtpStream:
    clock, stats, ports = media
    stream = RtpStream(call_id="test", clock=clock, stats=stats, local_ip="127.0.0.1",
                       on_dtmf=(dtmf.append if dtmf is not None else lambda e: None))
    await stream.open(ports, "127.0.0.1")
    stream.start(MediaParams("127.0.0.1", peer.port, 0 if codec == "PCMU" else 8, codec, 101))
    return stream


async def test_playback_reaches_peer_as_paced_rtp(media) -> None:  # type: ignore[no-untyped-def]
    peer = Peer()
    stream = await open_stream(media, peer)
    stream.send_silence = False
    playback = stream.play(pcm_to_ulaw(sine(1000.0, 0.4)), interruptible=True)
    packets = await peer.recv_packets(20)
    assert await asyncio.wait_for(playback, 2) is True
    assert all(p.payload_type == 0 and len(p.payload) == 160 for p in packets)
    assert [(p.sequence - packets[0].sequence) & 0xFFFF for p in packets] == list(range(20))
    assert [(p.timestamp - packets[0].timestamp) & 0xFFFFFFFF for p in packets] == [160 * i for i in range(20)]
    assert detect_tone(b"".join(ulaw_to_pcm(p.payload) for p in packets), 1000.0)
    stream.close()


async def test_stopping_a_playback_stops_its_audio(media) -> None:  # type: ignore[no-untyped-def]
    """Playback.stop() (barge-in by voice) silences the stream, not just the awaiting code."""
    peer = Peer()
    stream = await open_stream(media, peer)
    stream.send_silence = False
    playback = stream.play(pcm_to_ulaw(sine(1000.0, 5.0)), interruptible=True)
    await peer.recv_packets(5)
    playback.stop()
    assert await playback is False
    await asyncio.sleep(0.06)  # a packet already on its way may still arrive
    peer.sock.setblocking(False)
    while True:
        try:
            peer.sock.recv(2048)
        except BlockingIOError:
            break
    await asyncio.sleep(0.2)
    with pytest.raises(BlockingIOError):
        peer.sock.recv(2048)  # ten ticks later: nothing more was sent
    stream.close()


async def test_packets_from_other_addresses_are_dropped(media) -> None:  # type: ignore[no-untyped-def]
    peer, intruder = Peer(), Peer()
    stream = await open_stream(media, peer)
    frames: list[bytes] = []

    async def listen() -> None:
        async for frame in stream.frames():
            frames.append(frame)

    task = asyncio.ensure_future(listen())
    for seq in range(10):
        intruder.send(RtpPacket(0, seq, seq * 160, 1234, pcm_to_ulaw(sine(1000.0, 0.02))), stream.local_port)
    await asyncio.sleep(0.2)
    assert stream.received == 0 and media[1].dropped_foreign == 10
    for seq in range(10):
        peer.send(RtpPacket(0, seq, seq * 160, 99, pcm_to_ulaw(sine(1000.0, 0.02))), stream.local_port)
    async with asyncio.timeout(5):  # ten frames played out by the clock, however busy the machine
        while sum(1 for f in frames if any(f)) < 10:
            await asyncio.sleep(0.05)
    assert stream.received == 10 and stream.lost == 0
    assert detect_tone(b"".join(f for f in frames if any(f)), 1000.0)  # silence before and after
    task.cancel()
    stream.close()


async def test_bridge_relays_payload_untouched_and_transcodes_when_codecs_differ(media) -> None:  # type: ignore[no-untyped-def]
    caller, agent, other = Peer(), Peer(), Peer()
    a = await open_stream(media, caller, "PCMU")
    b = await open_stream(media, agent, "PCMU")
    a.bridge_to(b)
    b.bridge_to(a)
    payload = pcm_to_ulaw(sine(700.0, 0.02))
    caller.send(RtpPacket(0, 1, 160, 42, payload), a.local_port)
    (relayed,) = await agent.recv_packets(1)
    assert relayed.payload == payload and relayed.ssrc == b.ssrc
    c = await open_stream(media, other, "PCMA")
    a.bridge_to(c)
    caller.send(RtpPacket(0, 2, 320, 42, payload), a.local_port)
    (transcoded,) = await other.recv_packets(1)
    assert transcoded.payload_type == 8 and transcoded.payload == pcm_to_alaw(ulaw_to_pcm(payload))
    for s in (a, b, c):
        s.close()


async def test_rfc4733_digits_sent_and_received(media) -> None:  # type: ignore[no-untyped-def]
    peer = Peer()
    received: list[DtmfEvent] = []
    stream = await open_stream(media, peer, dtmf=received)
    stream.send_silence = False
    stream.send_dtmf("7#")
    packets = await peer.recv_packets(14)  # 2 digits x (5 packets of 20 ms + 2 repeated ends)
    assert {p.payload_type for p in packets} == {101}
    rx = DtmfReceiver()
    digits = [e.digit for p in packets if (e := rx.feed(p)) is not None]
    assert digits == ["7", "#"]
    for p in packets:  # and our own receiver reports the same digits once each
        peer.send(p, stream.local_port)
    await asyncio.sleep(0.3)
    assert [e.digit for e in received] == ["7", "#"]
    stream.close()


async def test_one_clock_drives_all_streams(media) -> None:  # type: ignore[no-untyped-def]
    clock = media[0]
    peers = [Peer() for _ in range(5)]
    streams = [await open_stream(media, p) for p in peers]
    await asyncio.gather(*(p.recv_packets(10) for p in peers))
    ticks = clock.ticks
    assert 10 <= ticks <= 20  # one tick per 20 ms serves all five streams
    for s in streams:
        s.close()
