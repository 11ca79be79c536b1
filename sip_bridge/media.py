"""RTP media on asyncio datagram endpoints.

Every call owns one :class:`RtpStream` (an RTP socket and its RTCP neighbour).
Outgoing audio for *all* calls is paced by one :class:`MediaClock` tick every
20 ms rather than a sleeping task per call: one timer wake-up per tick for
the whole node instead of one per call.

The receive path is the hottest code of the node (50 packets/s per call), so
it reads the RTP header with one ``struct`` call and does only what the call
needs: statistics always; a parse and a jitter buffer only when someone
listens to the audio; a header rewrite when bridged.  An SRTP stream unprotects
a packet first and protects it last (:mod:`sip_bridge.srtp`): everything in
between sees plain RTP.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time
import wave
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .dtmf import DtmfEvent, DtmfReceiver, telephone_event_payloads
from .g711 import SILENCE, decoder_for, encoder_for
from .jitter import JitterBuffer
from .rtp import RtcpBye, RtcpSdes, RtcpSenderReport, RtpPacket, parse_rtcp
from .sdp import MediaParams
from .srtp import SrtpContext, SrtpError

logger = logging.getLogger(__name__)

FRAME_MS = 20
SAMPLES_PER_FRAME = 160  # 8 kHz * 20 ms
PCM_FRAME_BYTES = SAMPLES_PER_FRAME * 2
RTCP_INTERVAL = 5.0  # seconds between our RTCP reports (RFC 3550 6.2 minimum)
MAX_DROPOUT = 3000  # RFC 3550 A.1: larger forward jumps start a new sequence run
MAX_MISORDER = 100
_HEADER = struct.Struct("!BBHII")


class ClockedStream(Protocol):
    """What the media clock drives."""

    call_id: str

    def tick(self, now: float) -> None: ...


class AudioTap(Protocol):
    """Gets a copy of a leg's audio as it passes (the call recorder): G.711 payloads untouched,
    with their RTP timestamp. Called on the event loop for every packet: must be cheap."""

    def feed(self, payload: bytes, ts: int, codec: str) -> None: ...


class CallMedia(Protocol):
    """The media of a call leg as :class:`~sip_bridge.call.Call` uses it: an
    :class:`RtpStream`, or the softphone's browser stream."""

    params: MediaParams | None
    peer: MediaPeer | None
    tap: AudioTap | None
    """Gets what the far end sends us."""
    sent_tap: AudioTap | None
    """Gets what the node itself plays to the far end (prompts, hold music; not relayed audio)."""

    def play(self, payload: bytes, interruptible: bool) -> Playback: ...

    def stop_playback(self, only_interruptible: bool = False) -> None: ...

    def send_pcm(self, pcm: bytes) -> None: ...

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None: ...

    def frames(self) -> AsyncIterator[bytes]: ...

    def bridge_to(self, other: MediaPeer | None) -> None: ...

    def relay_from(self, codec: str) -> None: ...

    def relay(self, payload: bytes, ts: int, marker: int) -> None: ...

    def close(self) -> None: ...


class MediaPeer(Protocol):
    """What a stream relays received audio to when bridged: another :class:`RtpStream`,
    or a leg of another kind (the softphone's WebRTC leg)."""

    peer: MediaPeer | None

    def relay_from(self, codec: str) -> None:
        """A new source is bridged to us; its payloads are in ``codec``."""

    def relay(self, payload: bytes, ts: int, marker: int) -> None:
        """One payload from the bridged source, with its RTP timestamp and marker bit."""


@dataclass
class MediaStats:
    """Node-wide RTP counters (read by the metrics endpoint)."""

    packets_in: int = 0
    packets_out: int = 0
    packets_lost: int = 0
    dropped_foreign: int = 0
    dropped_malformed: int = 0
    #: SRTP/SRTCP packets that failed authentication or the replay check (dropped).
    dropped_srtp: int = 0


class PortAllocator:
    """Hands out even RTP ports (RTCP on port+1) from a configured range."""

    def __init__(self, low: int, high: int) -> None:
        if low % 2:
            low += 1
        if high - low < 2:
            raise ValueError(f"RTP port range {low}-{high} holds no port pair")
        self._free: deque[int] = deque(range(low, high, 2))
        self._used: set[int] = set()

    def take(self) -> int:
        if not self._free:
            raise RuntimeError("RTP port range exhausted")
        port = self._free.popleft()
        self._used.add(port)
        return port

    def give_back(self, port: int) -> None:
        if port in self._used:
            self._used.discard(port)
            self._free.append(port)

    @property
    def in_use(self) -> int:
        return len(self._used)


class MediaClock:
    """One 20 ms tick driving every stream that has something to send or deliver."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._streams: dict[ClockedStream, None] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._next = 0.0
        self.ticks = 0
        self.late_ticks = 0

    def add(self, stream: ClockedStream) -> None:
        self._streams[stream] = None
        if self._handle is None:
            self._next = self._loop.time() + FRAME_MS / 1000
            self._handle = self._loop.call_at(self._next, self._tick)

    def discard(self, stream: ClockedStream) -> None:
        self._streams.pop(stream, None)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        self.ticks += 1
        tick_time = self._next  # the nominal time of this tick: no clock read per stream
        for stream in list(self._streams):
            try:
                stream.tick(tick_time)
            except Exception:  # one broken stream must not silence the others
                logger.exception("media tick failed", extra={"call_id": stream.call_id})
                self.discard(stream)
        if not self._streams:
            self._handle = None
            return
        now = self._loop.time()
        self._next += FRAME_MS / 1000
        if now - self._next > 0.1:  # the loop stalled: resynchronise, don't burst
            self.late_ticks += 1
            self._next = now + FRAME_MS / 1000
        self._handle = self._loop.call_at(self._next, self._tick)


_prompt_cache: dict[tuple[str, float, str], bytes] = {}


def load_wav_pcm(path: str | os.PathLike[str]) -> bytes:
    """16-bit mono 8 kHz PCM from a WAV file (resampled and downmixed if needed)."""
    with wave.open(str(path), "rb") as w:
        channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(w.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8
    elif width == 2:
        samples = np.frombuffer(raw, dtype="<i2")
    else:
        raise ValueError(f"{path}: {8 * width}-bit WAV not supported (use 8 or 16 bit)")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if rate != 8000:
        n = int(len(samples) * 8000 / rate)
        samples = np.interp(np.arange(n) * rate / 8000, np.arange(len(samples)), samples).astype(np.int16)
    return samples.astype("<i2").tobytes()


def encoded_prompt(path: str | os.PathLike[str], codec: str) -> bytes:
    """A WAV file encoded once per codec and cached (prompts are played by many calls)."""
    p = Path(path)
    key = (str(p.resolve()), p.stat().st_mtime, codec)
    data = _prompt_cache.get(key)
    if data is None:
        data = encoder_for(codec)(load_wav_pcm(p))
        _prompt_cache[key] = data
    return data


class Playback:
    """One prompt being played; awaitable, finishes when played out or stopped."""

    def __init__(self, payload: bytes, interruptible: bool) -> None:
        self._payload = payload
        self._offset = 0
        self.interruptible = interruptible
        self.done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def next_frame(self, size: int) -> bytes | None:
        if self.done.done():  # stopped (or finished): the stream drops it at this tick
            return None
        chunk = self._payload[self._offset:self._offset + size]
        if not chunk:
            self.finish(True)
            return None
        self._offset += size
        return chunk

    def finish(self, completed: bool) -> None:
        if not self.done.done():
            self.done.set_result(completed)

    def stop(self) -> None:
        """Interrupt the prompt (barge-in)."""
        self.finish(False)

    def __await__(self):  # type: ignore[no-untyped-def]
        return self.done.__await__()


class RtpStream(asyncio.DatagramProtocol):
    """The RTP/RTCP endpoint of one call leg."""

    def __init__(self, *, call_id: str, clock: MediaClock, stats: MediaStats, local_ip: str,
                 on_dtmf: Callable[[DtmfEvent], None]) -> None:
        self.call_id = call_id
        self.clock = clock
        self.stats = stats
        self.local_ip = local_ip
        self.local_port = 0
        self.on_dtmf = on_dtmf
        self.params: MediaParams | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.rtcp_transport: asyncio.DatagramTransport | None = None
        self._remote: tuple[str, int] | None = None
        self._remote_rtcp: tuple[str, int] | None = None
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.last_rx = loop.time()
        # send side
        self.ssrc = int.from_bytes(os.urandom(4), "big")
        self._seq = int.from_bytes(os.urandom(2), "big")
        self._ts = int.from_bytes(os.urandom(4), "big")
        self._out = bytearray(12 + 160)
        self.sent_packets = 0
        self.sent_octets = 0
        self._playback: Playback | None = None
        self._pcm_out: deque[bytes] = deque()
        self._dtmf_out: deque[tuple[bytes | None, bool, int]] = deque()
        self._encode: Callable[[bytes], bytes] | None = None
        self._decode: Callable[[bytes], bytes] | None = None
        self._silence = b""
        self.send_silence = True
        # receive side
        self.received = 0
        self._rx_ssrc = -1
        self._base_seq: int | None = None
        self._max_seq = 0
        self._cycles = 0
        self._run_received = 0
        self._lost_before = 0
        self._dtmf_rx = DtmfReceiver()
        self._listeners: list[asyncio.Queue[bytes | None]] = []
        self._jitter: JitterBuffer | None = None
        #: Bridged peer: received packets are relayed to it (payload untouched when codecs match).
        self.peer: MediaPeer | None = None
        self._relay_transcode: Callable[[bytes], bytes] | None = None
        self._relay_ts_offset: int | None = None
        self.tap: AudioTap | None = None
        self.sent_tap: AudioTap | None = None
        self._rtcp_due = 0.0
        #: SRTP keys in use (None: plain RTP), and this stream's count of packets they rejected.
        self.srtp: SrtpContext | None = None
        self.srtp_rejected = 0
        self.closed = False

    # -- set-up ------------------------------------------------------------------
    async def open(self, ports: PortAllocator, bind_ip: str) -> int:
        """Bind RTP (even) and RTCP (odd) sockets from the allocator; returns the RTP port."""
        loop = self._loop
        for _ in range(50):
            port = ports.take()
            try:
                self.transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(bind_ip, port))
                self.rtcp_transport, _ = await loop.create_datagram_endpoint(
                    lambda: _RtcpProtocol(self), local_addr=(bind_ip, port + 1))
            except OSError:
                if self.transport is not None:
                    self.transport.close()
                    self.transport = None
                continue  # port held by another process: keep it out of the pool
            except BaseException:  # cancelled while binding: nothing may stay bound or taken
                if self.transport is not None:
                    self.transport.close()
                    self.transport = None
                ports.give_back(port)
                raise
            self.local_port = port
            self._ports = ports
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0xB8)  # DSCP EF for voice
            return port
        raise RuntimeError("no free RTP port pair could be bound")

    def start(self, params: MediaParams) -> None:
        """Apply a negotiated (or re-negotiated) media description."""
        self.params = params
        self._remote = (params.remote_ip, params.remote_port)
        self._remote_rtcp = (params.remote_ip, params.remote_port + 1)
        self._encode = encoder_for(params.codec)
        self._decode = decoder_for(params.codec)
        self._silence = bytes([SILENCE[params.codec]]) * (8 * params.ptime)
        self._out = bytearray(12 + 8 * params.ptime)
        if params.srtp is None:
            self.srtp = None
        elif self.srtp is None:
            self.srtp = SrtpContext(params.srtp)
        else:
            self.srtp.update(params.srtp)
        self.last_rx = self._loop.time()
        self._update_clock()

    @property
    def sending(self) -> bool:
        p = self.params
        return p is not None and p.direction in ("sendrecv", "sendonly") and p.remote_port != 0 \
            and p.remote_ip not in ("0.0.0.0", "::")

    @property
    def receiving_expected(self) -> bool:
        """Whether the peer should be sending to us (RTP timeout applies)."""
        p = self.params
        return p is not None and p.direction in ("sendrecv", "recvonly")

    def _update_clock(self) -> None:
        if self.closed or self.params is None:
            return
        if self._listeners or self._playback or self._pcm_out or self._dtmf_out or \
                (self.send_silence and self.peer is None and self.sending):
            self.clock.add(self)
        else:
            self.clock.discard(self)

    # -- receive -------------------------------------------------------------------
    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        if addr[:2] != self._remote:
            self.stats.dropped_foreign += 1
            return
        if len(data) < 12 or data[0] >> 6 != 2:
            self.stats.dropped_malformed += 1
            return
        if 192 <= data[1] <= 223:  # RTCP on the RTP port (rtcp-mux, RFC 5761 4)
            return
        if self.srtp is not None:
            try:
                data = self.srtp.unprotect(data)
            except SrtpError:
                self.stats.dropped_srtp += 1
                self.srtp_rejected += 1
                return
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        self.last_rx = self._loop.time()
        self.stats.packets_in += 1
        self.received += 1
        self._track_sequence(seq, ssrc)
        params = self.params
        pt = b1 & 0x7F
        if params is not None and pt == params.telephone_event_pt:
            self._receive_dtmf(data)
            return
        peer, tap = self.peer, self.tap
        if (peer is not None or tap is not None) and params is not None and pt == params.payload_type:
            payload = data[12 + 4 * (b0 & 0x0F):]  # audio only, not CN or other types
            if peer is not None:
                peer.relay(payload, ts, b1 & 0x80)
            if tap is not None:
                tap.feed(payload, ts, params.codec)
        if self._jitter is not None:
            try:
                self._jitter.put(RtpPacket.parse(data))
            except ValueError:
                self.stats.dropped_malformed += 1

    def _track_sequence(self, seq: int, ssrc: int) -> None:
        """RFC 3550 A.1, reduced: loss = expected - received per sequence run.

        A new SSRC or a jump beyond MAX_DROPOUT starts a new run (sipp, for one,
        switches from its speech pcap to its DTMF pcap mid-call); reordered and
        duplicate packets never make the count negative.
        """
        if ssrc != self._rx_ssrc or self._base_seq is None:
            self._start_run(seq, ssrc)
            return
        delta = (seq - self._max_seq) & 0xFFFF
        if 0 < delta < MAX_DROPOUT:
            if seq < self._max_seq:
                self._cycles += 0x10000
            self._max_seq = seq
        elif MAX_DROPOUT <= delta <= 0xFFFF - MAX_MISORDER:
            self._start_run(seq, ssrc)
            return
        self._run_received += 1

    def _start_run(self, seq: int, ssrc: int) -> None:
        self._lost_before = self.lost
        self._rx_ssrc = ssrc
        self._base_seq = self._max_seq = seq
        self._cycles = 0
        self._run_received = 1

    @property
    def lost(self) -> int:
        if self._base_seq is None:
            return 0
        expected = self._cycles + self._max_seq - self._base_seq + 1
        return self._lost_before + max(0, expected - self._run_received)

    def _receive_dtmf(self, data: bytes) -> None:
        try:
            event = self._dtmf_rx.feed(RtpPacket.parse(data))
        except ValueError:
            self.stats.dropped_malformed += 1
            return
        if event is not None:
            self.on_dtmf(event)

    def error_received(self, exc: Exception) -> None:
        logger.debug("RTP socket error: %s", exc, extra={"call_id": self.call_id})

    # -- send ----------------------------------------------------------------------
    def _send_payload(self, payload: bytes, pt: int, marker: bool, ts_step: bool = True) -> None:
        if self.transport is None or self._remote is None:
            return
        self._seq = (self._seq + 1) & 0xFFFF
        out = self._out
        if len(out) != 12 + len(payload):
            out = self._out = bytearray(12 + len(payload))
        _HEADER.pack_into(out, 0, 0x80, pt | (0x80 if marker else 0), self._seq, self._ts, self.ssrc)
        out[12:] = payload
        self.transport.sendto(out if self.srtp is None else self.srtp.protect(bytes(out)), self._remote)
        self.sent_packets += 1
        self.sent_octets += len(payload)
        self.stats.packets_out += 1

    def tick(self, now: float) -> None:
        """Called by the media clock every 20 ms, with the tick's time (loop clock)."""
        params = self.params
        if params is None or self.closed:
            return
        samples = 8 * params.ptime
        event, marker, advance = self._dtmf_out.popleft() if self._dtmf_out else (None, False, 0)
        if event is not None:
            if self.sending:
                self._send_payload(event, params.telephone_event_pt or 101, marker)
            # RFC 4733 2.5.1.1: every packet of an event carries the event's start
            # timestamp; the media clock moves on by the event's length at its end.
            self._ts = (self._ts + advance) & 0xFFFFFFFF
        else:
            payload = None
            if self._playback is not None:
                payload = self._playback.next_frame(samples)
                if payload is None:
                    self._playback = None
            if payload is None and self._pcm_out:
                payload = self._encode(self._pcm_out.popleft())  # type: ignore[misc]
            if payload is None and self.send_silence and self.peer is None:
                payload = self._silence
            if payload is not None and self.sending:
                if len(payload) < samples:
                    payload = payload + self._silence[: samples - len(payload)]
                self._send_payload(payload, params.payload_type, False)
                if self.sent_tap is not None:
                    self.sent_tap.feed(payload, self._ts, params.codec)
            self._ts = (self._ts + samples) & 0xFFFFFFFF
        if self._jitter is not None:
            packet = self._jitter.get()
            if packet is not None and packet.payload_type == params.payload_type:
                pcm = self._decode(packet.payload)  # type: ignore[misc]
            else:
                pcm = b"\0" * (2 * samples)
            for q in self._listeners:
                q.put_nowait(pcm)
        if now >= self._rtcp_due:
            self._rtcp_due = now + RTCP_INTERVAL
            self._send_rtcp()
        self._update_clock()

    def _send_rtcp(self) -> None:
        if self.rtcp_transport is None or self._remote_rtcp is None or not self.sending:
            return
        try:
            sr = RtcpSenderReport(ssrc=self.ssrc, ntp_timestamp=_ntp_now(), rtp_timestamp=self._ts,
                                  packet_count=self.sent_packets, octet_count=self.sent_octets, reports=[])
            sdes = RtcpSdes(ssrc=self.ssrc, cname=f"{self.call_id}@{self.local_ip}")
            packet = sr.serialize() + sdes.serialize()
            self.rtcp_transport.sendto(packet if self.srtp is None else self.srtp.protect_rtcp(packet),
                                       self._remote_rtcp)
        except Exception:  # RTCP is advisory: never let it break the media
            logger.debug("RTCP send failed", exc_info=True, extra={"call_id": self.call_id})

    def relay(self, payload: bytes, ts: int, marker: int) -> None:
        """Relay a packet from the bridged peer: our SSRC/sequence/timestamp, their payload."""
        params = self.params
        if params is None or not self.sending:
            return
        if self._dtmf_out:  # RFC 4733: one timestamp per event; audio resumes after the digit
            self._relay_ts_offset = None
            return
        if self._relay_ts_offset is None:
            self._relay_ts_offset = (self._ts - ts) & 0xFFFFFFFF
        self._ts = (ts + self._relay_ts_offset) & 0xFFFFFFFF
        if self._relay_transcode is not None:
            payload = self._relay_transcode(payload)
        self._send_payload(payload, params.payload_type, bool(marker))

    # -- public operations (used by Call) ------------------------------------------
    def play(self, payload: bytes, interruptible: bool) -> Playback:
        if self._playback is not None:
            self._playback.stop()
        playback = Playback(payload, interruptible)
        self._playback = playback
        self._update_clock()
        return playback

    def stop_playback(self, only_interruptible: bool = False) -> None:
        pb = self._playback
        if pb is not None and (pb.interruptible or not only_interruptible):
            pb.stop()
            self._playback = None

    def send_pcm(self, pcm: bytes) -> None:
        """Queue 16-bit 8 kHz PCM for sending, cut into frames."""
        size = 2 * 8 * (self.params.ptime if self.params else FRAME_MS)
        for i in range(0, len(pcm), size):
            frame = pcm[i:i + size]
            if len(frame) < size:
                frame = frame + b"\0" * (size - len(frame))
            self._pcm_out.append(frame)
        self._update_clock()

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Queue RFC 4733 telephone-events, one digit after the other with a short pause."""
        ptime = self.params.ptime if self.params else FRAME_MS
        for digit in digits:
            packets = telephone_event_payloads(digit, duration_ms=duration_ms, ptime=ptime)
            for i, (payload, marker) in enumerate(packets):
                advance = 8 * len(packets) * ptime if i == len(packets) - 1 else 0
                self._dtmf_out.append((payload, marker, advance))
            for _ in range(max(1, 60 // ptime)):  # inter-digit pause: plain audio ticks
                self._dtmf_out.append((None, False, 0))
        self._update_clock()

    async def frames(self) -> AsyncIterator[bytes]:
        """Received audio as 20 ms frames of PCM, de-jittered, silence for lost frames."""
        if self.closed:
            return
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._listeners.append(queue)
        if self._jitter is None:
            self._jitter = JitterBuffer()
        self._update_clock()
        try:
            while True:
                frame = await queue.get()
                if frame is None:
                    return
                yield frame
        finally:
            if queue in self._listeners:
                self._listeners.remove(queue)
            if not self._listeners:
                self._jitter = None
            self._update_clock()

    def bridge_to(self, other: MediaPeer | None) -> None:
        """Relay what we receive to ``other`` (None: stop relaying)."""
        self.peer = other
        if other is not None and self.params is not None:
            other.relay_from(self.params.codec)
        self._update_clock()

    def relay_from(self, codec: str) -> None:
        self._relay_ts_offset = None
        if self.params is not None and codec != self.params.codec:
            self._relay_transcode = transcoder(codec, self.params.codec)
        else:
            self._relay_transcode = None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.clock.discard(self)
        if self._playback is not None:
            self._playback.finish(False)
        for q in self._listeners:
            q.put_nowait(None)
        if self.peer is not None and self.peer.peer is self:
            self.peer.peer = None
        self.peer = None
        self.stats.packets_lost += self.lost
        if self.transport is not None:
            self.transport.close()
        if self.rtcp_transport is not None:
            self.rtcp_transport.close()
        if self.local_port:
            self._ports.give_back(self.local_port)


class _RtcpProtocol(asyncio.DatagramProtocol):
    """Receives RTCP; malformed packets are dropped, a BYE is logged."""

    def __init__(self, stream: RtpStream) -> None:
        self.stream = stream

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        srtp = self.stream.srtp
        try:
            packets = parse_rtcp(data if srtp is None else srtp.unprotect_rtcp(data))
        except SrtpError:
            self.stream.stats.dropped_srtp += 1
            self.stream.srtp_rejected += 1
            return
        except ValueError:
            return
        if any(isinstance(packet, RtcpBye) for packet in packets):
            logger.debug("RTCP BYE from peer", extra={"call_id": self.stream.call_id})

    def error_received(self, exc: Exception) -> None:
        pass


def transcoder(source: str, target: str) -> Callable[[bytes], bytes]:
    """G.711 payload in ``source`` codec to ``target`` codec."""
    decode, encode = decoder_for(source), encoder_for(target)
    return lambda payload: encode(decode(payload))


def _ntp_now() -> int:
    t = time.time() + 2_208_988_800  # NTP epoch is 1900
    return (int(t) << 32) | int((t % 1) * (1 << 32))
