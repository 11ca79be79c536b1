"""Web chat benchmark: idle widget connections, message latency, and resume after a dropped connection.

Starts a demo node (its own data folder, loopback, logs at WARNING) and drives it with widget
visitors (``tests/support/chat_visitor.Visitor``: the widget's protocol) and agents' pages (the
/agent socket of ``softphone_web.agent_client.AgentClient`` without its WebRTC line: chats need
none), all in this one process on one uvloop event loop.

* Idle connections: visitors open a conversation (``POST /api/chat/conversations``) and hold its
  socket, pinging every 10 s like the widget. Nobody answers: the only agent signed in is on a
  break (which keeps the widget online), so they wait in line in ``support``. The node's RSS
  (VmRSS) is read before the conversations, after them and after their sockets connected; its CPU
  (utime + stime) over a quiet window, against the same window before any visitor came. Each step
  adds visitors (1,000 then 2,000 by default). Then a few visitors at the front of the line leave:
  each leave sends every visitor still waiting their place (``status``).
* Latency: A agents of capacity C take A x C conversations (in a queue of their own; the idle
  visitors stay away in theirs, their grace raised to an hour). Every visitor sends a message a
  second (spread over the second) and the agent's page answers each at once. Visitor -> agent: from
  the visitor's send to the agent's socket receiving the ``chat_message``; agent -> visitor: from the
  agent's ``chat_send`` to the visitor's socket receiving the ``message``. Then the node's database
  writer is checked: rows written at the end of the traffic against messages numbered.
* Resume: a conversation holding K messages; the visitor's connection drops (transport aborted),
  its agent sends M = 20 messages, then the visitor reconnects after the last seq it holds: the time
  from starting the reconnect until it holds every message (the welcome, then history pages while
  ``more``). Also a reload: a fresh page (after=0) fetching all the K + M in pages of 100. Quiet, and
  again during the latency step's traffic.
* Baseline of the same run: a bare relay on the same stack (FastAPI on uvicorn, its websockets
  sans-I/O protocol, uvloop, permessage-deflate as browsers negotiate it), started here in its own
  process and speaking the same message shapes to the same clients: a visitor's socket and its
  agent's socket, each message parsed and relayed to the other (no numbering, echo, storage, line or
  ACD). Same steps: memory per idle socket, CPU while idle, latency, and connect + welcome (the floor
  of any resume).

This process's CPU and how late its event loop ran are printed with each step: above ~80 % of a
core the clients lag and a warning says the latencies include that. The node, the relay and the
clients share the machine's cores: run it on a quiet machine (the load average is printed).

usage: python bench/chat_bench.py [--connections 1000,2000] [--agents 20] [--capacity 10] [--duration 30]
                                  [--quiet 20] [--resume-runs 20] [--history 200] [--no-baseline]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import uvloop
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from softphone_web.agent_client import AgentClient
from tests.support.chat_visitor import Visitor
from tests.support.node import NodeProcess, admin_client, free_port

BENCH_QUEUE = "chatbench"
"""The latency step's queue: only its agents have the skill."""
PING_EVERY = 10.0
"""The widget's heartbeat (``Visitor`` pings as often)."""
LEAVERS = 20
"""Visitors at the front of the line who leave after the idle steps."""
MISSED = 20
"""Messages the agent sends while the visitor is away (M)."""
QUESTION = "你好，我上周买的耳机还没发货，订单号 20261123"
VISITOR_TEXT = "请问什么时候能发货？我比较着急，谢谢"
AGENT_TEXT = "您好，已为您查询：订单今天下午从上海仓发出，预计两天送达"
OPEN_AT_ONCE = 16
CONNECT_AT_ONCE = 50
LAG_TICK = 0.01
SETTLE = 5.0
"""Seconds left to a server after its start before the window with nobody connected."""
BUSY_CLIENT = 80.0
"""% of a core used by this process above which the clients, not the server, may be what is measured."""


# -- the processes measured ----------------------------------------------------------------------------

def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Window:
    """CPU of the server and of this process over a window (% of one core), and how late this
    process's event loop ran (s)."""

    seconds: float
    server_cpu: float
    bench_cpu: float
    loop_lag: list[float]

    @property
    def lag_p99_ms(self) -> float:
        return quantile(self.loop_lag, 0.99) * 1000


class Meter:
    """Starts a window now; :meth:`stop` closes it."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.lag: list[float] = []
        self._server, self._self, self._wall = cpu_seconds(pid), time.process_time(), time.perf_counter()
        self._sampler = asyncio.ensure_future(self._sample())

    async def _sample(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(LAG_TICK)
            self.lag.append(time.perf_counter() - before - LAG_TICK)

    def stop(self) -> Window:
        self._sampler.cancel()
        wall = time.perf_counter() - self._wall
        return Window(wall, 100 * (cpu_seconds(self.pid) - self._server) / wall,
                      100 * (time.process_time() - self._self) / wall, self.lag)


async def measure(pid: int, seconds: float) -> Window:
    meter = Meter(pid)
    await asyncio.sleep(seconds)
    return meter.stop()


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spread_ms(values: list[float]) -> str:
    """p50 / p95 / p99 / max of ``values`` (s) in ms."""
    ms = [v * 1000 for v in values]
    return " / ".join(f"{x:.1f}" for x in [*(quantile(ms, q) for q in (0.5, 0.95, 0.99)),
                                           max(ms, default=float("nan"))])


def load() -> str:
    return f"load average {os.getloadavg()[0]:.2f}"


# -- the clients ---------------------------------------------------------------------------------------

@dataclass
class Probe:
    """Send times by client_id, and the delays (s) seen each way while armed."""

    sent: dict[str, float] = field(default_factory=dict)
    to_agent: list[float] = field(default_factory=list)
    to_visitor: list[float] = field(default_factory=list)

    def arrived(self, client_id: str | None, now: float, into: list[float]) -> None:
        at = self.sent.pop(client_id, None) if client_id else None
        if at is not None:
            into.append(now - at)


class BenchVisitor(Visitor):
    """A widget (it pings every 10 s): arrival times of the messages it waits for, its last status,
    and opening a conversation on a shared HTTP client (one client per visitor costs this process)."""

    def __init__(self, http_base: str, probe: Probe | None = None) -> None:
        super().__init__(http_base)
        self.probe = probe
        self.status: str | None = None
        self.statuses = 0
        self.position: int | None = None
        self.pongs = 0

    async def open_on(self, http: httpx.AsyncClient, question: str = QUESTION) -> None:
        reply = await http.post("/api/chat/conversations", json={
            "key": self.key, "name": "张三", "phone": "13800138000", "question": question, "locale": "zh-CN",
            "page_url": "http://shop.example/"})
        reply.raise_for_status()
        body = reply.json()
        self.token, self.conversation_id, self.visitor_id = body["token"], body["conversation_id"], body["visitor_id"]

    async def catch_up(self, target_seq: int) -> None:
        """Connect (after the last seq held) and fetch history pages until every message up to
        ``target_seq`` is held."""
        welcome = await self.connect()
        more = welcome["more"]
        while more:
            await self.request({"type": "history", "after": self.last_seq})
            page = await self.expect("history")
            self._keep(page["messages"])
            more = page["more"]
        if sorted(self.messages) != list(range(1, target_seq + 1)):
            raise RuntimeError(f"resume: held {len(self.messages)} messages up to {self.last_seq}, "
                               f"expected 1..{target_seq}")

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                now = time.perf_counter()
                message = json.loads(raw)
                kind = message["type"]
                if kind == "message":
                    self._keep([message["message"]])
                    if self.probe is not None and message["message"]["sender"] == "agent":
                        self.probe.arrived(message["message"]["client_id"], now, self.probe.to_visitor)
                    continue
                if kind == "pong":
                    self.pongs += 1
                    continue
                if kind == "welcome":
                    self.status = message["conversation"]["status"]
                    self.position = message["conversation"].get("position")
                elif kind == "status":
                    self.status = message["status"]
                    self.position = message.get("position")
                    self.statuses += 1
                elif kind == "error":
                    self.errors.append(message)
                await self._inbox.put(message)
        except ConnectionClosed:
            pass


class DeskAgent(AgentClient):
    """An agent's page without the WebRTC line (chats need none): accepts every chat offered and,
    while ``answering``, answers each visitor message at once."""

    def __init__(self, http_base: str, username: str, password: str, probe: Probe | None = None,
                 answering: bool = True) -> None:
        super().__init__(http_base, "demo", username, password)
        self.probe = probe
        self.answering = answering
        self.chats: set[str] = set()
        #: conversation -> the last seq the agent saw (its own messages come back numbered)
        self.seqs: dict[str, int] = {}

    async def _offer(self) -> None:
        return

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                message = json.loads(raw)
                kind = message["type"]
                if kind == "chat_message":
                    await self._on_message(message["conversation_id"], message["message"], now)
                elif kind == "chat_offer":
                    await self.send({"type": "chat_accept", "conversation_id": message["conversation_id"]})
                elif kind == "chat":
                    self.chats.add(message["conversation"]["id"])
                elif kind != "pong":
                    self.messages.append(message)
                    await self._inbox.put(message)
        except ConnectionClosed:
            pass

    async def _on_message(self, conversation_id: str, message: dict[str, Any], now: float) -> None:
        self.seqs[conversation_id] = max(self.seqs.get(conversation_id, 0), message["seq"])
        client_id = message.get("client_id")
        if message["sender"] != "visitor" or not client_id:
            return
        if self.probe is not None:
            self.probe.arrived(client_id, now, self.probe.to_agent)
        if self.answering:
            reply_id = "a" + client_id[1:]
            if self.probe is not None:
                self.probe.sent[reply_id] = time.perf_counter()
            await self.send({"type": "chat_send", "conversation_id": conversation_id, "text": AGENT_TEXT,
                             "client_id": reply_id})

    async def go_available(self) -> None:
        await self.send({"type": "set_state", "state": "available"})
        await self.expect("state", state="available")


async def close_all(clients: list[DeskAgent | BenchVisitor]) -> None:
    for client in clients:
        if isinstance(client, BenchVisitor):
            await client.drop()
        else:
            await client.close()


async def gather_limited(at_once: int, jobs: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    gate = asyncio.Semaphore(at_once)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()
    return await asyncio.gather(*(one(job) for job in jobs))


# -- the baseline: a bare relay on the same stack ---------------------------------------------------------

def relay_app() -> FastAPI:
    """A visitor's socket (``token`` = "<agent>.<n>") and its agent's socket, each message parsed
    and relayed to the other in the chat's shapes; a welcome on connect, a pong for a ping."""
    app = FastAPI()
    agents: dict[str, WebSocket] = {}
    visitors: dict[str, WebSocket] = {}

    @app.post("/api/login")
    async def login(body: dict[str, Any]) -> dict[str, str]:
        return {"token": str(body["username"])}

    @app.websocket("/api/agent/ws")
    async def agent(ws: WebSocket) -> None:
        name = ws.headers.get("authorization", "").removeprefix("Bearer ")
        await ws.accept()
        agents[name] = ws
        await ws.send_text(json.dumps({"type": "welcome"}))
        try:
            while True:
                message = json.loads(await ws.receive_text())
                if message["type"] == "ping":
                    await ws.send_text(json.dumps({"type": "pong", "t": message.get("t")}))
                elif message["type"] == "chat_send" and (peer := visitors.get(message["conversation_id"])):
                    await peer.send_text(json.dumps({"type": "message", "message": {
                        "seq": 0, "sender": "agent", "text": message["text"], "client_id": message["client_id"]}},
                        ensure_ascii=False))
        except WebSocketDisconnect:
            pass
        finally:
            if agents.get(name) is ws:
                del agents[name]

    @app.websocket("/api/chat/socket")
    async def visitor(ws: WebSocket, token: str = "", after: int = 0) -> None:
        await ws.accept()
        visitors[token] = ws
        agent_name = token.partition(".")[0]
        await ws.send_text(json.dumps({"type": "welcome", "conversation": {"status": "active"}, "messages": [],
                                       "more": False}))
        try:
            while True:
                message = json.loads(await ws.receive_text())
                if message["type"] == "ping":
                    await ws.send_text(json.dumps({"type": "pong"}))
                elif message["type"] == "send" and (peer := agents.get(agent_name)):
                    await peer.send_text(json.dumps({"type": "chat_message", "conversation_id": token, "message": {
                        "seq": 0, "sender": "visitor", "text": message["text"], "client_id": message["client_id"]}}))
        except WebSocketDisconnect:
            pass
        finally:
            if visitors.get(token) is ws:
                del visitors[token]

    return app


def serve_relay(port: int) -> None:
    """The relay in this process (the bench runs it in a subprocess), configured like the node's API."""
    config = uvicorn.Config(relay_app(), host="127.0.0.1", port=port, log_config=None, access_log=False,
                            lifespan="off")
    uvloop.run(uvicorn.Server(config).serve())


class RelayProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.http = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, __file__, "--relay-server", str(self.port)])

    async def ready(self) -> None:
        async with httpx.AsyncClient(base_url=self.http) as http:
            for _ in range(300):
                try:
                    await http.post("/api/login", json={"username": "x"})
                    return
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        raise RuntimeError("the relay did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


# -- step 1: idle connections ----------------------------------------------------------------------------

@dataclass
class IdleStep:
    connections: int
    rss_mb: float
    conversations_mb_per_1000: float
    sockets_mb_per_1000: float
    window: Window
    open_per_s: float | None
    connect_per_s: float
    pongs_missing: int

    @property
    def mb_per_1000(self) -> float:
        return self.conversations_mb_per_1000 + self.sockets_mb_per_1000


@dataclass
class IdleResult:
    empty: Window
    steps: list[IdleStep]

    def cpu_per_1000(self, step: IdleStep) -> float:
        return (step.window.server_cpu - self.empty.server_cpu) / step.connections * 1000


async def idle_steps(pid: int, visitors: list[BenchVisitor], steps: list[int], quiet: float,
                     http: httpx.AsyncClient | None) -> IdleResult:
    """Adds visitors up to each step's count: opens their conversations on ``http`` (None: the
    relay, nothing to open), connects them, and measures the quiet window."""
    await asyncio.sleep(SETTLE)
    empty = await measure(pid, quiet / 2)
    base = rss_mb(pid)
    opened_mb = connected_mb = 0.0
    out = []
    for target in steps:
        new = visitors[len([v for v in visitors if v.ws is not None]):target]
        open_rate = None
        if http is not None:
            before, started = rss_mb(pid), time.perf_counter()
            await gather_limited(OPEN_AT_ONCE, [partial(v.open_on, http) for v in new])
            open_rate = len(new) / (time.perf_counter() - started)
            await asyncio.sleep(1)
            opened_mb += rss_mb(pid) - before
        before, started = rss_mb(pid), time.perf_counter()
        await gather_limited(CONNECT_AT_ONCE, [v.connect for v in new])
        connect_rate = len(new) / (time.perf_counter() - started)
        await asyncio.sleep(2)
        connected_mb += rss_mb(pid) - before
        for v in visitors[:target]:
            v.pongs = 0
        window = await measure(pid, quiet)
        expected = int(quiet // PING_EVERY) - 1  # each visitor's pongs in the window, at least
        missing = sum(max(0, expected - v.pongs) for v in visitors[:target])
        step = IdleStep(target, rss_mb(pid), opened_mb / target * 1000, connected_mb / target * 1000, window,
                        open_rate, connect_rate, missing)
        out.append(step)
        print(f"  {target} connected: RSS {step.rss_mb:.0f} MB (+{rss_mb(pid) - base:.0f} MB), "
              f"{step.mb_per_1000:.1f} MB per 1,000 ({step.conversations_mb_per_1000:.1f} conversations + "
              f"{step.sockets_mb_per_1000:.1f} sockets); CPU {window.server_cpu:.1f} % of a core while idle "
              f"(none connected: {empty.server_cpu:.1f} %); opened {open_rate or 0:.0f}/s, connected "
              f"{connect_rate:.0f}/s; pongs missing {missing}; bench CPU {window.bench_cpu:.1f} %; {load()}",
              flush=True)
    return IdleResult(empty, out)


@dataclass
class LeaveResult:
    leavers: int
    waiting: int
    seconds: float
    server_cpu_s: float
    statuses: int


async def leave_front(pid: int, visitors: list[BenchVisitor], leavers: int) -> LeaveResult:
    """The first ``leavers`` visitors end their chat at once; until every visitor still waiting has
    been told their new place (the node tells each at most once a second, only a changed place)."""
    leaving, staying = visitors[:leavers], visitors[leavers:]
    ahead = sorted(v.position or 0 for v in leaving)
    new_places = [(v.position or 0) - sum(1 for p in ahead if p < (v.position or 0)) for v in staying]
    for v in staying:
        v.statuses = 0
    cpu0, started = cpu_seconds(pid), time.perf_counter()
    for v in leaving:
        await v.request({"type": "end"})
    async with asyncio.timeout(120):
        while any(v.position != expected for v, expected in zip(staying, new_places, strict=True)):
            await asyncio.sleep(0.05)
    seconds = time.perf_counter() - started
    result = LeaveResult(leavers, len(staying), seconds, cpu_seconds(pid) - cpu0, sum(v.statuses for v in staying))
    print(f"  {leavers} visitors at the front leave, {len(staying)} waiting: {result.statuses} status messages, "
          f"all delivered in {seconds:.2f} s, node CPU {result.server_cpu_s:.2f} s "
          f"({result.server_cpu_s / leavers * 1000:.0f} ms per leave)", flush=True)
    return result


# -- step 2 and 3: traffic and resume ----------------------------------------------------------------------

@dataclass
class TrafficResult:
    conversations: int
    window: Window
    to_agent: list[float]
    to_visitor: list[float]
    lost: int
    writer_lag_rows: int | None = None
    writer_catch_up_s: float | None = None


async def chatter(visitor: BenchVisitor, index: int, probe: Probe, start: float, duration: float,
                  offset: float) -> int:
    """One message a second from ``start + offset`` until ``start + duration``."""
    sent = 0
    while (at := start + offset + sent) < start + duration:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        client_id = f"v{index}-{sent}"
        probe.sent[client_id] = time.perf_counter()
        await visitor.send(VISITOR_TEXT, client_id)
        sent += 1
    return sent


async def traffic(pid: int, visitors: list[BenchVisitor], probe: Probe, duration: float,
                  alongside: Callable[[], Awaitable[Any]] | None = None) -> tuple[TrafficResult, Any]:
    """Every visitor sends a message a second for ``duration`` s (answered at once by its agent);
    ``alongside`` runs meanwhile (its result is returned too)."""
    start = time.perf_counter() + 0.5
    meter = Meter(pid)
    side = asyncio.ensure_future(alongside()) if alongside is not None else None
    await asyncio.gather(*(chatter(v, i, probe, start, duration, i / len(visitors)) for i, v in enumerate(visitors)))
    window = meter.stop()
    await asyncio.sleep(2)  # the last answers
    side_result = await side if side is not None else None
    result = TrafficResult(len(visitors), window, list(probe.to_agent), list(probe.to_visitor), len(probe.sent))
    return result, side_result


def print_traffic(label: str, r: TrafficResult) -> None:
    print(f"  {label}: {r.conversations} conversations x 1 message/s each way, {r.window.seconds:.0f} s; server CPU "
          f"{r.window.server_cpu:.1f} % of a core; bench CPU {r.window.bench_cpu:.1f} %, its loop late p99 "
          f"{r.window.lag_p99_ms:.1f} ms; {load()}", flush=True)
    print(f"    visitor -> agent ms p50/p95/p99/max: {spread_ms(r.to_agent)} ({len(r.to_agent)} messages)", flush=True)
    print(f"    agent -> visitor ms p50/p95/p99/max: {spread_ms(r.to_visitor)} ({len(r.to_visitor)} messages), "
          f"{r.lost} not arrived", flush=True)
    if r.writer_lag_rows is not None:
        print(f"    database writer: {r.writer_lag_rows} rows behind at the end, all written "
              f"{r.writer_catch_up_s:.2f} s later", flush=True)
    if r.window.bench_cpu > BUSY_CLIENT:
        print(f"    WARNING: the clients used {r.window.bench_cpu:.0f} % of a core: the latencies include their lag",
              flush=True)


@dataclass
class ResumeResult:
    resume: list[float]
    reload: list[float]
    history: tuple[int, int]
    """Messages the conversation held at the first and the last run."""


async def resume_runs(visitor: BenchVisitor, agent: DeskAgent, runs: int, pause: float = 0.2) -> ResumeResult:
    """Drop, M messages from the agent, reconnect: the time until the visitor holds all; and a
    fresh page (after=0) fetching everything."""
    resume, reload, sizes = [], [], []
    for _ in range(runs):
        await visitor.drop()
        first = agent.seqs.get(visitor.conversation_id, 0)
        for n in range(MISSED):
            await agent.send({"type": "chat_send", "conversation_id": visitor.conversation_id,
                              "text": f"{AGENT_TEXT} ({n + 1})", "client_id": f"m{first}-{n}"})
        async with asyncio.timeout(30):
            while agent.seqs.get(visitor.conversation_id, 0) < first + MISSED:
                await asyncio.sleep(0.005)
        target = agent.seqs[visitor.conversation_id]
        started = time.perf_counter()
        await visitor.catch_up(target)
        resume.append(time.perf_counter() - started)
        page = BenchVisitor(visitor.http_base)
        page.token = visitor.token
        started = time.perf_counter()
        await page.catch_up(target)
        reload.append(time.perf_counter() - started)
        await page.close()
        sizes.append(target)
        await asyncio.sleep(pause)
    return ResumeResult(resume, reload, (min(sizes), max(sizes)))


def print_resume(label: str, r: ResumeResult) -> None:
    print(f"  resume {label}: {len(r.resume)} runs, {r.history[0]}-{r.history[1]} messages held; "
          f"{MISSED} missed, back after the last seq held: median {statistics.median(r.resume) * 1000:.1f} ms "
          f"(max {max(r.resume) * 1000:.1f}); fresh page, everything in pages of 100: median "
          f"{statistics.median(r.reload) * 1000:.1f} ms (max {max(r.reload) * 1000:.1f})", flush=True)


async def connect_floor(http_base: str, runs: int) -> list[float]:
    """Connect + welcome on the relay (the floor of any resume)."""
    times = []
    for i in range(runs):
        visitor = BenchVisitor(http_base)
        visitor.token = f"nobody.floor{i}"
        started = time.perf_counter()
        await visitor.connect()
        times.append(time.perf_counter() - started)
        await visitor.close()
    return times


# -- the node --------------------------------------------------------------------------------------------

def writer_rows(node: NodeProcess, conversations: list[str]) -> int:
    with sqlite3.connect(f"file:{node.data_dir / 'callcenter.db'}?mode=ro", uri=True, timeout=10) as db:
        marks = ",".join("?" * len(conversations))
        return int(db.execute(f"SELECT count(*) FROM chat_messages WHERE conversation_id IN ({marks})",
                              conversations).fetchone()[0])


async def writer_check(node: NodeProcess, visitors: list[BenchVisitor], result: TrafficResult) -> None:
    """Rows written for the conversations at the end of the traffic, against the messages numbered."""
    numbered = sum(v.last_seq for v in visitors)
    ids = [v.conversation_id for v in visitors]
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    written = await loop.run_in_executor(None, writer_rows, node, ids)
    result.writer_lag_rows = numbered - written
    while written < numbered and time.perf_counter() - started < 60:
        await asyncio.sleep(0.1)
        written = await loop.run_in_executor(None, writer_rows, node, ids)
    result.writer_catch_up_s = time.perf_counter() - started if result.writer_lag_rows else 0.0


def add_agents(node: NodeProcess, names: list[str], capacity: dict[str, int]) -> dict[str, str]:
    """Agents with the bench queue's skill and their chat capacity; username -> password."""
    out = {}
    with admin_client(node) as api:
        for name in names:
            reply = api.post("/api/agents", json={"username": name, "skills": {BENCH_QUEUE: 3}})
            reply.raise_for_status()
            body = reply.json()
            api.patch(f"/api/agents/{body['id']}", json={"chat_capacity": capacity[name]}).raise_for_status()
            out[name] = body["password"]
        for _ in range(100):  # the ACD reloads its configuration in the background
            live = {a["username"]: a["live"] for a in api.get("/api/agents").json()}
            if all(live.get(name) is not None for name in names):
                break
            time.sleep(0.1)
    return out


def switch_queue(node: NodeProcess) -> None:
    """Chats go to the bench queue from now on; a visitor away keeps their chat an hour."""
    with admin_client(node) as api:
        api.post("/api/queues", json={"name": BENCH_QUEUE, "skill": BENCH_QUEUE}).raise_for_status()
        settings = api.get("/api/chat/settings").json()
        api.put("/api/chat/settings", json={**settings, "queue": BENCH_QUEUE,
                                            "visitor_grace_seconds": 3600}).raise_for_status()


@dataclass
class NodeResults:
    idle: IdleResult
    leave: LeaveResult
    traffic: TrafficResult
    resume_quiet: ResumeResult
    resume_busy: ResumeResult


async def idle_phase(node: NodeProcess, pid: int, args: argparse.Namespace,
                     clients: list[DeskAgent | BenchVisitor]) -> tuple[IdleResult, LeaveResult]:
    """Step 1: idle visitors in the demo's line (agent1 on a break keeps the widget online); then
    some leave. Their chats stay waiting, the visitors away, for the rest of the run."""
    keeper = DeskAgent(node.http, "agent1", node.agents["agent1"][0])
    clients.append(keeper)
    await keeper.connect()
    await keeper.send({"type": "set_state", "state": "break", "reason": keeper.welcome["break_reasons"][0]})
    await keeper.expect("state")
    visitors = [BenchVisitor(node.http) for _ in range(max(args.connections))]
    clients += visitors
    print(f"idle visitors, steps {args.connections}, quiet windows of {args.quiet:g} s", flush=True)
    async with httpx.AsyncClient(base_url=node.http, timeout=60,
                                 limits=httpx.Limits(max_connections=OPEN_AT_ONCE)) as http:
        idle = await idle_steps(pid, visitors, args.connections, args.quiet, http)
    leave = await leave_front(pid, visitors, LEAVERS)
    await asyncio.get_running_loop().run_in_executor(None, switch_queue, node)
    await asyncio.sleep(1)  # the ACD reloads the settings: the grace of an hour holds for the drops
    for visitor in visitors:
        await visitor.drop()
    return idle, leave


async def conversation_to_resume(node: NodeProcess, agent: DeskAgent, history: int,
                                 clients: list[DeskAgent | BenchVisitor]) -> BenchVisitor:
    """A visitor in a conversation with ``agent`` holding ``history`` messages from them, and more."""
    await agent.connect()
    await agent.go_available()
    visitor = BenchVisitor(node.http)
    clients.append(visitor)
    async with httpx.AsyncClient(base_url=node.http, timeout=60) as http:
        await visitor.open_on(http)
    await visitor.connect()
    async with asyncio.timeout(20):
        while visitor.status != "active":
            await asyncio.sleep(0.05)
    for n in range(history):
        await agent.send({"type": "chat_send", "conversation_id": visitor.conversation_id,
                          "text": f"{AGENT_TEXT} [{n}]", "client_id": f"h{n}"})
    async with asyncio.timeout(60):
        while visitor.last_seq < agent.seqs.get(visitor.conversation_id, 0) or len(visitor.messages) < history:
            await asyncio.sleep(0.05)
    return visitor


async def busy_desks(node: NodeProcess, agents: list[DeskAgent], conversations: int,
                     clients: list[DeskAgent | BenchVisitor]) -> list[BenchVisitor]:
    """The agents available, and ``conversations`` visitors each in a chat one of them accepted."""
    await gather_limited(8, [a.connect for a in agents])
    await asyncio.gather(*(a.go_available() for a in agents))
    talkers = [BenchVisitor(node.http, agents[0].probe) for _ in range(conversations)]
    clients += talkers
    async with httpx.AsyncClient(base_url=node.http, timeout=60) as http:
        await gather_limited(OPEN_AT_ONCE, [partial(v.open_on, http) for v in talkers])
    await gather_limited(CONNECT_AT_ONCE, [v.connect for v in talkers])
    async with asyncio.timeout(60):
        while sum(v.status == "active" for v in talkers) < len(talkers):
            await asyncio.sleep(0.1)
    return talkers


async def bench_node(args: argparse.Namespace, tmp: Path) -> NodeResults:
    data = tmp / "node"
    data.mkdir()
    node = NodeProcess(data, extra_args=["--log-level", "WARNING"],
                       env={"CALLCENTER_CHAT_OPENS_PER_MINUTE": "0"})  # every visitor comes from 127.0.0.1
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, node.start)
    assert node.proc is not None
    pid = node.proc.pid
    print(f"node up (pid {pid}, RSS {rss_mb(pid):.0f} MB); {os.cpu_count()} CPUs, {load()}", flush=True)
    clients: list[DeskAgent | BenchVisitor] = []
    try:
        idle, leave = await idle_phase(node, pid, args, clients)

        # steps 2 and 3: agents of their own queue, a conversation to resume, then the traffic
        names = [f"chatbench{i:02d}" for i in range(args.agents)]
        capacities = {"chatresume": 1, **dict.fromkeys(names, args.capacity)}
        passwords = await loop.run_in_executor(None, add_agents, node, list(capacities), capacities)
        resumer = DeskAgent(node.http, "chatresume", passwords["chatresume"], answering=False)
        clients.append(resumer)
        away = await conversation_to_resume(node, resumer, args.history, clients)
        resume_quiet = await resume_runs(away, resumer, args.resume_runs)
        print_resume("quiet", resume_quiet)

        probe = Probe()
        agents = [DeskAgent(node.http, name, passwords[name], probe) for name in names]
        clients += agents
        talkers = await busy_desks(node, agents, args.agents * args.capacity, clients)
        print(f"{len(talkers)} conversations with {len(agents)} agents (capacity {args.capacity}); "
              f"traffic {args.duration:g} s, the resume runs again meanwhile", flush=True)

        async def busy_resume() -> ResumeResult:
            await asyncio.sleep(3)
            pause = max(0.2, (args.duration - 8) / args.resume_runs - 0.3)  # spread over the traffic
            return await resume_runs(away, resumer, args.resume_runs, pause)

        result, resume_busy = await traffic(pid, talkers, probe, args.duration, busy_resume)
        await writer_check(node, talkers, result)
        print_traffic("chat node", result)
        print_resume("during the traffic", resume_busy)
        return NodeResults(idle, leave, result, resume_quiet, resume_busy)
    finally:
        await close_all(clients)
        await loop.run_in_executor(None, node.stop)


# -- the baseline ----------------------------------------------------------------------------------------

@dataclass
class BaselineResults:
    idle: IdleResult
    traffic: TrafficResult
    connect: list[float]


async def bench_relay(args: argparse.Namespace) -> BaselineResults:
    relay = RelayProcess()
    clients: list[DeskAgent | BenchVisitor] = []
    try:
        await relay.ready()
        pid = relay.proc.pid
        print(f"baseline relay up (pid {pid}, RSS {rss_mb(pid):.0f} MB); {load()}", flush=True)
        visitors = [BenchVisitor(relay.http) for _ in range(max(args.connections))]
        for i, v in enumerate(visitors):
            v.token = f"nobody.{i}"
        idle = await idle_steps(pid, visitors, args.connections, args.quiet, None)
        for v in visitors:
            await v.drop()
        probe = Probe()
        names = [f"chatbench{i:02d}" for i in range(args.agents)]
        agents = [DeskAgent(relay.http, name, "-", probe) for name in names]
        clients += agents
        await gather_limited(8, [a.connect for a in agents])
        talkers = [BenchVisitor(relay.http, probe) for _ in range(args.agents * args.capacity)]
        clients += talkers
        for i, v in enumerate(talkers):
            v.token = f"{names[i % len(names)]}.{i}"
        await gather_limited(CONNECT_AT_ONCE, [v.connect for v in talkers])
        result, _ = await traffic(pid, talkers, probe, args.duration)
        print_traffic("baseline relay", result)
        floor = await connect_floor(relay.http, args.resume_runs)
        print(f"  connect + welcome on the relay: median {statistics.median(floor) * 1000:.1f} ms", flush=True)
        return BaselineResults(idle, result, floor)
    finally:
        await close_all(clients)
        relay.stop()


# -- report ----------------------------------------------------------------------------------------------

def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def table_rows(node: NodeResults, base: BaselineResults | None) -> list[tuple[str, str, str]]:
    """(what, chat node, baseline) rows; the baseline's cell is empty where it has no such figure."""
    rows = []
    theirs = {step.connections: step for step in base.idle.steps} if base else {}
    for step in node.idle.steps:
        other = theirs.get(step.connections)
        memory = (f"**{step.mb_per_1000:.1f}** ({step.conversations_mb_per_1000:.1f} conversations + "
                  f"{step.sockets_mb_per_1000:.1f} sockets)")
        rows.append((f"{step.connections:,} idle connections: RSS per 1,000 (MB)", memory,
                     f"{other.sockets_mb_per_1000:.1f}" if other else ""))
        cpu = f"**{step.window.server_cpu:.1f}** ({node.idle.empty.server_cpu:.1f}; {node.idle.cpu_per_1000(step):.2f})"
        base_cpu = (f"{other.window.server_cpu:.1f} ({base.idle.empty.server_cpu:.1f}; "
                    f"{base.idle.cpu_per_1000(other):.2f})") if other and base else ""
        rows.append((f"{step.connections:,} idle connections: CPU, % of one core (before any; per 1,000)", cpu, base_cpu))
    first = node.idle.steps[0]
    rates = f"{first.open_per_s or 0:.0f} / {first.connect_per_s:.0f}"
    rows.append(("conversations opened / sockets connected per s", rates,
                 f"- / {base.idle.steps[0].connect_per_s:.0f}" if base else ""))
    leave = node.leave
    per_leave = (f"{leave.server_cpu_s / leave.leavers * 1000:.0f} ms ({leave.statuses:,} status messages in "
                 f"{leave.seconds:.1f} s)")
    rows.append((f"{leave.leavers} leave the front of a line of {leave.waiting + leave.leavers:,}: node CPU per leave",
                 per_leave, ""))
    mine, other_traffic = node.traffic, base.traffic if base else None
    rows.append((f"{mine.conversations} conversations, a message a second each way: server CPU, % of one core",
                 f"**{mine.window.server_cpu:.1f}**", f"{other_traffic.window.server_cpu:.1f}" if other_traffic else ""))
    rows.append(("visitor -> agent p50 / p95 / p99 / max (ms)", f"**{spread_ms(mine.to_agent)}**",
                 spread_ms(other_traffic.to_agent) if other_traffic else ""))
    rows.append(("agent -> visitor p50 / p95 / p99 / max (ms)", f"**{spread_ms(mine.to_visitor)}**",
                 spread_ms(other_traffic.to_visitor) if other_traffic else ""))
    writer = f"{mine.lost}; {mine.writer_lag_rows} (all written {mine.writer_catch_up_s:.2f} s later)"
    rows.append(("messages not arrived; database rows behind at the end of the traffic", writer,
                 f"{other_traffic.lost}" if other_traffic else ""))
    rows.append(("the clients' CPU during the traffic (this process, % of one core)", f"{mine.window.bench_cpu:.0f}",
                 f"{other_traffic.window.bench_cpu:.0f}" if other_traffic else ""))
    quiet, busy = node.resume_quiet, node.resume_busy
    resume = f"**{ms(statistics.median(quiet.resume))} / {ms(statistics.median(busy.resume))}**"
    rows.append((f"resume after a drop, {MISSED} messages missed, median (ms): quiet / during the traffic", resume,
                 f"connect + welcome: {ms(statistics.median(base.connect))}" if base else ""))
    reload = f"{ms(statistics.median(quiet.reload))} / {ms(statistics.median(busy.reload))}"
    pages = f"fresh page: all {quiet.history[0]}-{busy.history[1]} messages in pages of 100"
    rows.append((f"{pages}, median (ms): quiet / during the traffic", reload, ""))
    return rows


def print_table(node: NodeResults, base: BaselineResults | None) -> None:
    baseline = "baseline: bare relay, same stack (same run)" if base else "baseline (not run)"
    print(f"\n| | chat node | {baseline} |\n|---|---|---|")
    for what, mine, theirs in table_rows(node, base):
        print(f"| {what} | {mine} | {theirs or '-'} |")


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        node = await bench_node(args, Path(tmp))
    base = None
    if not args.no_baseline:
        await asyncio.sleep(2)
        base = await bench_relay(args)
    print_table(node, base)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", default="1000,2000", help="idle visitors connected at each step")
    parser.add_argument("--agents", type=int, default=20, help="agents of the latency step")
    parser.add_argument("--capacity", type=int, default=10, help="chats each agent takes (at most 10)")
    parser.add_argument("--duration", type=float, default=30, help="seconds of traffic")
    parser.add_argument("--quiet", type=float, default=20, help="seconds of each idle window")
    parser.add_argument("--resume-runs", type=int, default=20)
    parser.add_argument("--history", type=int, default=200, help="messages (K) the resumed conversation holds")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bare relay")
    parser.add_argument("--relay-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay_server:
        serve_relay(args.relay_server)
        return 0
    args.connections = sorted(int(x) for x in args.connections.split(","))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * max(args.connections) + 2 * args.agents * args.capacity + 1000
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))
    uvloop.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
