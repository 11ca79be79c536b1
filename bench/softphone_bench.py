"""Browser softphone benchmark: CPU per bridged SIP-to-browser call and the latency the platform adds.

Starts a demo node (its own data folder, loopback), adds N agents with the skill
``bench``, a queue ``bench`` (no wrap-up, no announcements) and a number whose flow
queues the caller at once. N agent tabs connect, go available and accept every offer;
N callers of our SIP stack (in this process) call the number, and the ACD bridges each
to one tab. A tab is an :class:`~softphone_web.agent_client.AgentClient` (aiortc and the
page's WebSocket protocol, DTLS-SRTP like a browser) trimmed to what the measurement
needs: its microphone hands aiortc ready-encoded payloads and it does not decode what
it receives, so that 40 tabs fit in one Python process next to the node.

* CPU: the node's process tree (utime + stime from /proc) over ``--duration`` seconds
  with the N calls bridged, minus the same window with the N tabs connected but idle
  (tabs send their microphone's silence all the time, like a browser; the node drops
  it), in % of one core, total and per call. This process's own CPU, and how late its
  event loop ran, are printed too: above ~80 % of a core the tabs and callers lag and
  the latency figures include that (a warning says so).
* Added latency, each way, measured on packets, not on decoded audio. Every 500 ms the
  caller puts one loud 20 ms frame (a 1 kHz sine) into its stream of silence; the time
  is taken when the RTP packet carrying it has left the caller's socket, and the tab
  notes the first packet that arrives loud (``AgentClient.on_packet``: the payload as it
  comes off SRTP, before any jitter buffer; decoded here, G.711 or Opus with libopus).
  The other way, the tab's microphone hands aiortc a loud frame every 500 ms (the time
  is taken when ``recv`` returns it) and the caller's ``datagram_received`` notes its
  arrival. Bursts cycle through four levels 9.5 dB apart, so a detection is paired with
  its own burst even when the delay exceeds the 500 ms period.
  Included: loopback both ways, the node (RTP, relay, DTLS-SRTP, its event loop and
  threads), the tab's SRTP and aiortc's sender and receiver code, and the time this
  process takes to notice the packet. Not included: packetisation at the source (20
  ms), the tab's own encoding, the browser's jitter buffer, playout and audio devices,
  and the SIP caller's jitter buffer: all there without the platform too.
* Baseline of the same run: the same steps with the tabs negotiating Opus, which puts
  the node on aiortc's own media path (jitter buffer with 4 packets of prefetch, decoder
  thread, resamplers, encoder in a thread pool: what aiortc issue 775 users measure).
  These figures include the Opus codec's own delay once each way.

Caveats: the bench process, the node and the kernel share the machine's cores, so run
it on a quiet machine (the load average is printed with every step). Each caller has a
media clock of its own, so the node sees the callers' packets spread over the 20 ms
like independent phones; the tabs' packets are spread the same way. With few calls
the per-call CPU is higher: every packet then wakes the node's event loop on its own.
ICE pairs use the host's own address (aioice skips loopback): still no wire.

usage: python bench/softphone_bench.py [--agents 1,10,40] [--duration 15] [--codecs pcmu,opus]
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import uvloop
from aiortc import MediaStreamTrack
from aiortc.codecs.opus import OpusEncoder
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sip_bridge.call import Call  # noqa: E402
from sip_bridge.g711 import decoder_for, encoder_for  # noqa: E402
from sip_bridge.media import MediaClock, RtpStream  # noqa: E402
from sip_bridge.tones import sine  # noqa: E402
from softphone_web.agent_client import RATE, SAMPLES, AgentClient  # noqa: E402
from tests.support.endpoint import EndpointHarness, routing_table  # noqa: E402
from tests.support.node import NodeProcess, admin_client, rtp_range  # noqa: E402

NUMBER = "4009990001"
QUEUE = "bench"
FLOW = {"name": "bench", "description": "softphone benchmark: straight to the queue", "start": "queue",
        "nodes": [{"id": "queue", "type": "queue", "queue": QUEUE}]}
PERIOD_FRAMES = 25
"""A burst every 25 frames of 20 ms: every 500 ms."""
LEVELS = (0.02, 0.06, 0.18, 0.54)
"""Peak amplitudes (of full scale) of successive bursts, 9.5 dB apart; a detection is paired
by level (an Opus pass takes about 2.5 dB off a burst's peak)."""
LOUD = 0.01
"""A packet whose decoded peak is above this (of full scale) carries a burst."""
GROUP_GAP = 0.1
"""Loud packets closer than this (s) are one burst (Opus spreads a burst over two packets)."""
MAX_DELAY = 2.0
"""A burst not seen within this many seconds counts as lost."""
BURST_HZ = 1000.0
TIME_BASE = fractions.Fraction(1, RATE)
LAG_TICK = 0.01
"""The bench loop's lateness is sampled with sleeps of this many seconds."""
CONNECT_AT_ONCE = 8
"""Tabs setting up their WebRTC connection at the same time."""


# -- bursts and their detection ---------------------------------------------------------------------

def burst_pcm(level: int) -> bytes:
    """20 ms of a 1 kHz sine at ``LEVELS[level]``, 16-bit 8 kHz."""
    return sine(BURST_HZ, 0.02, amplitude=LEVELS[level])


def peak_of(pcm: np.ndarray[Any, Any]) -> float:
    return float(np.abs(pcm.astype(np.int32)).max()) / 32768 if pcm.size else 0.0


def level_of(peak: float) -> int:
    """The burst level closest to ``peak`` (on a log scale)."""
    return min(range(len(LEVELS)), key=lambda i: abs(math.log2(peak / LEVELS[i])))


@dataclass
class Detector:
    """Loud packets as they arrive, grouped into bursts: (first arrival, level)."""

    decode: Callable[[bytes], np.ndarray[Any, Any]]
    armed: bool = False
    bursts: list[tuple[float, int]] = field(default_factory=list)
    _quiet: bytes = b""
    _last: float = -1.0
    _peak: float = 0.0

    def feed(self, payload: bytes, arrived: float) -> None:
        if not self.armed or payload == self._quiet:  # the same silent payload again: nothing to decode
            return
        peak = peak_of(self.decode(payload))
        if peak <= LOUD:
            self._quiet = payload
            return
        if arrived - self._last > GROUP_GAP:
            self.bursts.append((arrived, level_of(peak)))
            self._peak = peak
        elif peak > self._peak:  # the same burst: its loudest packet gives its level
            self._peak = peak
            self.bursts[-1] = (self.bursts[-1][0], level_of(peak))
        self._last = arrived


def g711_decoder(codec: str) -> Callable[[bytes], np.ndarray[Any, Any]]:
    decode = decoder_for(codec)
    return lambda payload: np.frombuffer(decode(payload), dtype="<i2")


def opus_decoder() -> Callable[[bytes], np.ndarray[Any, Any]]:
    codec = av.CodecContext.create("libopus", "r")
    codec.format = "s16"
    codec.layout = "mono"
    codec.sample_rate = 48000

    def decode(payload: bytes) -> np.ndarray[Any, Any]:
        frames = codec.decode(av.Packet(payload))
        return np.concatenate([f.to_ndarray().ravel() for f in frames]) if frames else np.zeros(0, "<i2")
    return decode


def pair(sent: list[tuple[float, int]], seen: list[tuple[float, int]]) -> tuple[list[float], int]:
    """Delays (s) of sent bursts matched to the first later detection of the same level; and the lost."""
    delays, lost, used = [], 0, [False] * len(seen)
    for at, level in sent:
        for i, (arrived, seen_level) in enumerate(seen):
            if used[i] or arrived < at or seen_level != level:
                continue
            if arrived - at < MAX_DELAY:
                used[i] = True
                delays.append(arrived - at)
            else:
                lost += 1
            break
        else:
            lost += 1
    return delays, lost


# -- the tab's microphone and the SIP caller, instrumented ---------------------------------------------

def opus_payloads(level: int) -> tuple[bytes, list[bytes]]:
    """A silent Opus payload, and the payloads that carry a burst, from aiortc's own encoder."""
    encoder = OpusEncoder()
    payloads: list[bytes] = []
    for i in range(8):
        frame = av.AudioFrame(format="s16", layout="mono", samples=SAMPLES)
        frame.planes[0].update(burst_pcm(level) if i == 4 else bytes(2 * SAMPLES))
        frame.sample_rate, frame.pts, frame.time_base = RATE, i * SAMPLES, TIME_BASE
        payloads += encoder.encode(frame)[0]
    quiet = payloads[1]
    first = next(i for i, p in enumerate(payloads) if p != quiet)
    last = max(i for i, p in enumerate(payloads) if p != quiet)
    return quiet, payloads[first:last + 1]


class BurstMic(MediaStreamTrack):
    """The tab's microphone: silence with a loud 20 ms burst every 500 ms while armed.

    It hands aiortc ready payloads (as the node's own track does for G.711), encoded once
    at start, so a tab's encoding costs this process nothing; the time a burst's first
    payload is handed over is noted.
    """

    kind = "audio"

    def __init__(self, codec: str, offset: int) -> None:
        super().__init__()
        self.offset = offset
        self.armed = False
        self.frames = 0
        self.sent: list[tuple[float, int]] = []
        self._start: float | None = None
        self._pending: list[bytes] = []
        if codec == "opus":
            encoded = [opus_payloads(level) for level in range(len(LEVELS))]
            self._quiet, self._bursts = encoded[0][0], [payloads for _, payloads in encoded]
        else:
            encode = encoder_for(codec.upper())
            self._quiet = encode(bytes(2 * SAMPLES))
            self._bursts = [[encode(burst_pcm(level))] for level in range(len(LEVELS))]

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.perf_counter()
        else:  # paced in real time; a late call catches up at once
            await asyncio.sleep(max(0.0, self._start + self.frames * SAMPLES / RATE - time.perf_counter()))
        level = None
        if self.armed and self.frames % PERIOD_FRAMES == self.offset:
            level = len(self.sent) % len(LEVELS)
            self._pending = list(self._bursts[level])
        packet = av.Packet(self._pending.pop(0) if self._pending else self._quiet)
        packet.pts = self.frames * SAMPLES
        packet.time_base = TIME_BASE
        self.frames += 1
        if level is not None:
            self.sent.append((time.perf_counter(), level))
        return packet


class BenchClient(AgentClient):
    """An :class:`AgentClient` that only looks at the packets it receives: no jitter buffer,
    no decoding, nothing kept (what a browser does there is not the platform's delay or CPU)."""

    def _tap(self, receiver: Any) -> None:
        async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
            if self.on_packet is not None:
                self.on_packet(packet.payload, time.perf_counter())

        receiver._handle_rtp_packet = handle

    async def _listen(self, track: Any) -> None:
        return


class CallerProbe:
    """Puts bursts into a caller's RTP and notes bursts arriving from the node (this process only).

    The caller gets a media clock of its own, started ``phase`` seconds from now: like
    independent phones (and unlike one clock for every caller), the callers' packets do not
    reach the node in one batch every 20 ms.
    """

    def __init__(self, leg: Call, offset: int, phase: float) -> None:
        stream = leg.stream
        assert isinstance(stream, RtpStream) and stream.params is not None
        self.leg = leg
        codec, payload_type = stream.params.codec, stream.params.payload_type
        loud = [encoder_for(codec)(burst_pcm(level)) for level in range(len(LEVELS))]
        self.armed = False
        self.packets = 0
        self.sent: list[tuple[float, int]] = []
        self.heard = Detector(g711_decoder(codec))
        send, receive = stream._send_payload, stream.datagram_received

        def send_payload(payload: bytes, pt: int, marker: bool, ts_step: bool = True) -> None:
            level = None
            if pt == payload_type:
                self.packets += 1
                if self.armed and self.packets % PERIOD_FRAMES == offset:
                    level = len(self.sent) % len(LEVELS)
                    payload = loud[level]
            send(payload, pt, marker, ts_step)
            if level is not None:
                self.sent.append((time.perf_counter(), level))

        def datagram_received(data: bytes, addr: tuple[str, int]) -> None:
            arrived = time.perf_counter()
            if len(data) > 12 and data[1] & 0x7F == payload_type:
                self.heard.feed(data[12 + 4 * (data[0] & 0x0F):], arrived)
            receive(data, addr)

        stream._send_payload = send_payload  # type: ignore[method-assign]
        stream.datagram_received = datagram_received  # type: ignore[method-assign]
        stream.clock.discard(stream)
        stream.clock = MediaClock(asyncio.get_running_loop())
        asyncio.get_running_loop().call_later(phase, stream._update_clock)


@dataclass
class Tab:
    """One agent's softphone: the client, its microphone, what it heard, and its current caller."""

    client: AgentClient
    mic: BurstMic
    heard: Detector
    caller: str | None = None
    answering: asyncio.Task[None] | None = None


# -- the node ----------------------------------------------------------------------------------------

def set_up_tenant(node: NodeProcess, agents: int, password: str | None = None) -> list[tuple[str, str]]:
    """Queue, number with its flow and ``agents`` agents; returns their (username, password).
    ``password``: the demo admin's, if not the one ``node`` printed (another node of its cluster)."""
    with admin_client(node, password) as api:
        api.post("/api/queues", json={"name": QUEUE, "skill": QUEUE, "wrapup": 0, "announce_every": None,
                                      "ring_timeout": 30, "callback_key": None}).raise_for_status()
        api.post("/api/numbers", json={"number": NUMBER, "description": "softphone bench"}).raise_for_status()
        api.post(f"/api/flows?number={NUMBER}", content=json.dumps(FLOW),
                 headers={"Content-Type": "application/json"}).raise_for_status()
        credentials = []
        for i in range(agents):
            reply = api.post("/api/agents", json={"username": f"bench{i:03d}", "skills": {QUEUE: 5}})
            reply.raise_for_status()
            credentials.append((reply.json()["username"], reply.json()["password"]))
    return credentials


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and every live descendant, plus the children it has reaped."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, list[str]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
            stats[int(entry)] = (int(fields[1]), fields)
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        if current not in stats:
            continue
        fields = stats[current][1]
        total += int(fields[11]) + int(fields[12])  # utime, stime
        if current == pid:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime
        todo += [child for child, (parent, _) in stats.items() if parent == current]
    return total / ticks


@dataclass
class Window:
    """One measurement window: CPU of the node's tree and of this process (% of one core), and
    how late this process's event loop ran (s): what its own load adds to the latencies."""

    node_cpu: float
    bench_cpu: float
    loop_lag: list[float]


def nodes_cpu_seconds(pids: list[int]) -> float:
    """:func:`tree_cpu_seconds` summed over several nodes."""
    return sum(tree_cpu_seconds(pid) for pid in pids)


async def measure(pids: list[int], seconds: float) -> Window:
    node0, self0, wall0 = nodes_cpu_seconds(pids), time.process_time(), time.perf_counter()
    lag: list[float] = []
    deadline = wall0 + seconds
    while (now := time.perf_counter()) < deadline:
        await asyncio.sleep(LAG_TICK)
        lag.append(time.perf_counter() - now - LAG_TICK)
    wall = time.perf_counter() - wall0
    return Window(100 * (nodes_cpu_seconds(pids) - node0) / wall, 100 * (time.process_time() - self0) / wall, lag)


# -- one step: N tabs, N calls --------------------------------------------------------------------------

async def open_tab(node: NodeProcess, username: str, password: str, codec: str, index: int,
                   gate: asyncio.Semaphore) -> Tab:
    client = BenchClient(node.http, "demo", username, password, codec=codec.upper())
    client.mic = mic = BurstMic(codec, index % PERIOD_FRAMES)  # type: ignore[assignment]
    tab = Tab(client, mic, Detector(opus_decoder() if codec == "opus" else g711_decoder(codec.upper())))
    client.on_packet = tab.heard.feed
    async with gate:
        await client.connect()
        await client.wait_connected(30)
    await client.send({"type": "set_state", "state": "available"})
    await client.expect("state", state="available")
    return tab


async def answer_offers(tab: Tab) -> None:
    """Accept every offer; note the caller once the call is on."""
    client = tab.client
    while True:
        offer = await client.expect("offer", timeout=3600)
        await client.send({"type": "accept", "call_id": offer["call_id"]})
        call = await client.expect("call", call_id=offer["call_id"])
        tab.caller = call["caller"]


async def place_calls(harness: EndpointHarness, n: int) -> dict[str, CallerProbe]:
    """N callers on the bench number; caller number -> probe."""
    async def one(i: int) -> tuple[str, CallerProbe]:
        caller = f"1390000{i:04d}"
        leg = await harness.endpoint.dial(1, NUMBER, caller_id=caller, timeout=30)
        return caller, CallerProbe(leg, (i * 7 + 3) % PERIOD_FRAMES, phase=0.02 * i / n)
    return dict(await asyncio.gather(*(one(i) for i in range(n))))


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


@dataclass
class StepResult:
    codec: str
    n: int
    idle: Window
    bridged: Window
    to_agent: list[float]
    to_caller: list[float]
    lost_to_agent: int
    lost_to_caller: int
    load: float
    """The machine's 1-minute load average at the end of the step."""

    @property
    def per_call(self) -> float:
        """What bridging a call adds to the node's CPU (% of one core)."""
        return (self.bridged.node_cpu - self.idle.node_cpu) / self.n

    @property
    def per_tab(self) -> float:
        """The node's whole CPU per tab in a call, its idle line included (% of one core)."""
        return self.bridged.node_cpu / self.n


async def run_step(node: NodeProcess, credentials: list[tuple[str, str]], codec: str, n: int,
                   duration: float, *, enter: NodeProcess | None = None,
                   cluster: list[NodeProcess] | None = None) -> StepResult:
    """N tabs on ``node`` and N callers calling ``enter`` (default: ``node``); the CPU measured is
    that of ``cluster``'s nodes together (default: ``node``'s)."""
    enter = enter or node
    pids = [member.proc.pid for member in cluster or [node] if member.proc is not None]
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    tabs = await asyncio.gather(*(open_tab(node, *credentials[i], codec, i, gate) for i in range(n)))
    low, high = rtp_range(2 * n + 20)
    table = routing_table(outbound_port=enter.sip_port)
    table.trunks[0] = replace(table.trunks[0], outbound_host=enter.host)
    harness = EndpointHarness(table, rtp_port_min=low, rtp_port_max=high, rtp_timeout=30.0)
    await harness.endpoint.start()
    probes: dict[str, CallerProbe] = {}
    try:
        await asyncio.sleep(2)
        idle = await measure(pids, duration)
        for tab in tabs:
            tab.answering = asyncio.ensure_future(answer_offers(tab))
        probes = await place_calls(harness, n)
        await until(lambda: all(tab.caller in probes for tab in tabs), 30 + n, "not every call was bridged")
        await asyncio.sleep(1)  # the hold music has stopped; the first relayed packets are through
        print(f"  {codec} N={n}: {n} calls bridged, measuring for {duration:g} s", flush=True)
        bursts(tabs, probes, send=True, detect=True)
        bridged = await measure(pids, duration)
        bursts(tabs, probes, send=False, detect=True)
        await asyncio.sleep(MAX_DELAY)  # bursts still on their way
        to_agent, to_caller, lost_to_agent, lost_to_caller = [], [], 0, 0
        for tab in tabs:
            probe = probes[tab.caller]  # type: ignore[index]
            delays, lost = pair(probe.sent, tab.heard.bursts)
            to_agent += delays
            lost_to_agent += lost
            delays, lost = pair(tab.mic.sent, probe.heard.bursts)
            to_caller += delays
            lost_to_caller += lost
        return StepResult(codec, n, idle, bridged, to_agent, to_caller, lost_to_agent, lost_to_caller,
                          os.getloadavg()[0])
    finally:
        await asyncio.gather(*(probe.leg.hangup() for probe in probes.values()), return_exceptions=True)
        for tab in tabs:
            if tab.answering is not None:
                tab.answering.cancel()
        await asyncio.gather(*(tab.client.close() for tab in tabs), return_exceptions=True)
        await harness.endpoint.stop()
        await asyncio.sleep(3)


def bursts(tabs: list[Tab], probes: dict[str, CallerProbe], *, send: bool, detect: bool) -> None:
    """Start or stop sending bursts, and noting them, on both sides."""
    for tab in tabs:
        tab.mic.armed, tab.heard.armed = send, detect
    for probe in probes.values():
        probe.armed, probe.heard.armed = send, detect


# -- report ----------------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(values: list[float], quantiles: tuple[float, ...] = (0.5, 0.95, 0.99)) -> str:
    """Quantiles and maximum of ``values`` (s) in ms: "p50 / p95 / p99 / max"."""
    ms = [v * 1000 for v in values]
    return " / ".join(f"{x:.1f}" for x in [*(pct(ms, q) for q in quantiles), max(ms, default=math.nan)])


def p95_ms(values: list[float]) -> str:
    return f"{pct(values, 0.95) * 1000:.1f}"


def print_step(r: StepResult) -> None:
    idle, bridged = r.idle, r.bridged
    print(f"{r.codec} N={r.n}: node CPU idle {idle.node_cpu:.1f} %, bridged {bridged.node_cpu:.1f} % of one core "
          f"-> {r.per_call:.2f} % per call; bench process idle {idle.bench_cpu:.1f} %, bridged "
          f"{bridged.bench_cpu:.1f} %, its loop late by p50/p99/max {latency(bridged.loop_lag, (0.5, 0.99))} "
          f"ms; load average {r.load:.2f}", flush=True)
    print(f"  caller -> agent ms p50/p95/p99/max: {latency(r.to_agent)} ({len(r.to_agent)} bursts, "
          f"{r.lost_to_agent} lost)", flush=True)
    print(f"  agent -> caller ms p50/p95/p99/max: {latency(r.to_caller)} ({len(r.to_caller)} bursts, "
          f"{r.lost_to_caller} lost)", flush=True)
    busiest = max(idle.bench_cpu, bridged.bench_cpu)
    if busiest > 80:
        print(f"  WARNING: the bench process used {busiest:.0f} % of a core: the clients and callers lag, "
              f"and the latency figures include that", flush=True)
    if bridged.node_cpu > 85 or r.lost_to_agent + r.lost_to_caller > 0.01 * (len(r.to_agent) + len(r.to_caller)):
        print(f"  WARNING: the node is saturated (one event loop at {bridged.node_cpu:.0f} % of a core, "
              f"{r.lost_to_agent + r.lost_to_caller} bursts lost): the per-call CPU is a floor and the "
              f"latencies are those of an overloaded node", flush=True)


def print_table(results: list[StepResult]) -> None:
    print("\n| codec | N | node CPU idle / bridged (% of one core) | per call: bridged - idle | "
          "per tab in a call: bridged | bench CPU | caller -> agent p50 / p95 / p99 / max (ms) | "
          "agent -> caller p50 / p95 / p99 / max (ms) | bursts lost |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.codec} | {r.n} | {r.idle.node_cpu:.1f} / {r.bridged.node_cpu:.1f} | {r.per_call:.2f} % | "
              f"{r.per_tab:.2f} % | {r.bridged.bench_cpu:.0f} % | {latency(r.to_agent)} | {latency(r.to_caller)} | "
              f"{r.lost_to_agent} / {r.lost_to_caller} |")
    for n in sorted({r.n for r in results}):
        g711 = [r for r in results if r.n == n and r.codec != "opus"]
        opus = [r for r in results if r.n == n and r.codec == "opus"]
        if g711 and opus:
            g, o = g711[0], opus[0]
            print(f"N={n}: {g.codec.upper()} relay vs Opus through aiortc: node CPU per tab in a call "
                  f"{g.per_tab:.2f} % vs {o.per_tab:.2f} % of a core; p95 caller -> agent "
                  f"{p95_ms(g.to_agent)} vs {p95_ms(o.to_agent)} ms, agent -> caller {p95_ms(g.to_caller)} vs "
                  f"{p95_ms(o.to_caller)} ms")


# -- main ------------------------------------------------------------------------------------------------

async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        node = NodeProcess(data, extra_args=["--log-level", "WARNING"], rtp_ports=max(400, 4 * max(args.agents) + 100))
        node.start()
        assert node.proc is not None
        try:
            credentials = set_up_tenant(node, max(args.agents))
            print(f"node up (pid {node.proc.pid}), {len(credentials)} agents; {os.cpu_count()} CPUs, "
                  f"load average {os.getloadavg()[0]:.2f}", flush=True)
            results = []
            for codec in args.codecs:
                for n in args.agents:
                    started = time.perf_counter()
                    result = await run_step(node, credentials, codec, n, args.duration)
                    print_step(result)
                    print(f"  (step took {time.perf_counter() - started:.0f} s)", flush=True)
                    results.append(result)
            print_table(results)
        finally:
            node.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", default="1,10,40", help="numbers of concurrent bridged calls, one step each")
    parser.add_argument("--duration", type=float, default=15, help="seconds of each CPU/latency window")
    parser.add_argument("--codecs", default="pcmu,opus", help="the tabs' codec: pcmu, pcma, opus (baseline)")
    args = parser.parse_args()
    args.agents = [int(x) for x in args.agents.split(",")]
    args.codecs = [c.strip().lower() for c in args.codecs.split(",")]
    if unknown := set(args.codecs) - {"pcmu", "pcma", "opus"}:
        parser.error(f"unknown codec(s): {', '.join(sorted(unknown))}")
    uvloop.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
