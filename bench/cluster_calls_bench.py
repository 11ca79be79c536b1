"""Cluster benchmark, calls: what a call costs when it crosses nodes, and how many media calls
a three-node cluster on this machine holds through Kamailio.

The cluster is the one the tests use (``tests/support/cluster.py``: PostgreSQL, Redis and
Kamailio on 127.0.0.10, nodes n1-n3 on 127.0.0.11-13, each a ``callcenter demo`` process).

1. **Cross-node against same-node call** (``--calls N --duration S``). N agent tabs connected
   to the node that owns the demo tenant (the owner hosts the queues and the agents' sessions:
   the tabs' WebRTC media goes straight to it, wherever a tab's socket is) accept N callers of
   our SIP stack, who dial a number whose flow queues them at once. Same node: the callers
   enter the owner. Cross node: they enter another node, which runs the flow, hands each one
   over to the owner over SIP and relays its RTP (G.711 untouched) both ways. The steps are
   ``bench/softphone_bench.py``'s: the CPU of the three node processes together with the calls
   bridged minus the same window with the tabs connected and idle (per call: divided by N),
   and the latency the platform adds each way, on marked packets: a loud 20 ms frame every
   500 ms, timed when it leaves the caller's socket and when it comes off SRTP at the tab, and
   the other way round (callers and tabs are in this process: one clock). The difference
   between the two rows is what crossing nodes costs.
2. **Through Kamailio with the shared sipp yardstick** (``--concurrency``, ``--load-duration``):
   ``../shared/bench/load_step.sh`` (sipp ``uac_pcap``: 8 s of G.711 speech and a digit, the
   node echoing, as in the README's single-node benchmark) sent to the front, which spreads the
   calls over the nodes; the highest step with <= 0.1 % failed calls. In the same run, the same
   steps through the front with two nodes taken out of its dispatcher (one cluster node), and
   against a single node outside any cluster dialed directly (SQLite, no Redis, no front: the
   README's setup). Printed per step: sipp's counts, the nodes' CPU (sum of their process trees,
   % of one core), the front's CPU (Kamailio's process tree), RTP packets the nodes counted lost.

Everything (sipp, Kamailio, PostgreSQL, Redis, three nodes, this process) shares this machine's
cores: the load average is printed with each step; run it on a quiet machine.

usage: python bench/cluster_calls_bench.py [--parts cross,load] [--calls 20] [--duration 15]
           [--repeat 1] [--concurrency 300,600,900,1200] [--load-duration 30] [--no-standalone]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sip_load import YARDSTICK, add_line_test_number, rtp_lost, step  # noqa: E402
from bench.softphone_bench import (  # noqa: E402
    NUMBER,
    StepResult,
    latency,
    nodes_cpu_seconds,
    pct,
    run_step,
    set_up_tenant,
)
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.node import NodeProcess, admin_client  # noqa: E402

BENCH_ENVIRONMENT = {
    "CALLCENTER_LOG_LEVEL": "WARNING",
    "CALLCENTER_MAX_CALLS": "5000",
    "CALLCENTER_RATE_LIMIT_PER_IP": "5000",
    "CALLCENTER_RATE_LIMIT_BURST": "5000",
}
"""What every node of the benchmark runs with (as ``bench/sip_load.py``'s node): the load comes
from one address, and per-call INFO lines would cost more than the calls."""
CONFIG_SYNC = 2.5
"""Seconds for the other nodes to load a number or flow added through one node's API
(``callcenter.config_sync``: every second, then a reload)."""
RTP_PORTS = 3200
"""RTP ports per node for the load steps (two per call)."""
SETTLE = 12.0
"""Seconds between two load steps: the last calls of a step end."""


@contextmanager
def bench_cluster(rtp_ports: int = 400) -> Iterator[Cluster]:
    """A three-node cluster in a temporary folder, its nodes started with :data:`BENCH_ENVIRONMENT`."""
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        os.environ.update(BENCH_ENVIRONMENT)  # inherited by the node processes (NodeProcess.start)
        cluster = Cluster(Path(tmp))
        for node in cluster.nodes:
            node.rtp_ports = rtp_ports
        cluster.start()
        try:
            print(f"cluster up in {cluster.start_seconds:.1f} s: front {cluster.front.address}, nodes "
                  f"{', '.join(n.sip for n in cluster.nodes)}; {os.cpu_count()} CPUs, load average "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
            yield cluster
        finally:
            cluster.stop()


# -- 1. cross-node against same-node ----------------------------------------------------------------

@dataclass
class Crossing:
    """One step: calls entering the owner (same node) or another node (cross node)."""

    label: str
    result: StepResult


def print_crossing(c: Crossing) -> None:
    r = c.result
    print(f"{c.label}: {r.n} calls, nodes' CPU idle {r.idle.node_cpu:.1f} %, bridged {r.bridged.node_cpu:.1f} % "
          f"of one core -> {r.per_call:.2f} % per call; bench process {r.bridged.bench_cpu:.0f} %, its loop late "
          f"p99 {pct(r.bridged.loop_lag, 0.99) * 1000:.1f} ms; load average {r.load:.2f}", flush=True)
    print(f"  caller -> agent ms p50/p95/p99/max: {latency(r.to_agent)} ({len(r.to_agent)} bursts, "
          f"{r.lost_to_agent} lost)", flush=True)
    print(f"  agent -> caller ms p50/p95/p99/max: {latency(r.to_caller)} ({len(r.to_caller)} bursts, "
          f"{r.lost_to_caller} lost)", flush=True)


async def cross_node(cluster: Cluster, calls: int, duration: float, repeat: int) -> list[Crossing]:
    owner = cluster.owner()
    other = next(i for i in range(len(cluster.nodes)) if i != owner)
    nodes = cluster.nodes
    credentials = set_up_tenant(nodes[owner], calls, cluster.admin_password)
    await asyncio.sleep(CONFIG_SYNC)
    print(f"\n== cross-node against same-node: {calls} calls, {duration:g} s windows; the tenant's owner is "
          f"n{owner + 1}, cross-node callers enter n{other + 1} ==", flush=True)
    steps = []
    for _ in range(repeat):
        for label, entering in (("same node", owner), ("cross node", other)):
            result = await run_step(nodes[owner], credentials, "pcmu", calls, duration, enter=nodes[entering],
                                    cluster=nodes)
            steps.append(Crossing(label, result))
            print_crossing(steps[-1])
            print(f"  {held_by(cluster, calls)}", flush=True)
    return steps


def held_by(cluster: Cluster, calls: int) -> str:
    """Where the step's calls were, by their records: the node the caller entered, and the agent's."""
    with admin_client(cluster.nodes[0], cluster.admin_password) as api:
        rows = [r for r in api.get("/api/calls", params={"limit": 4 * calls}).json() if r["dialed"] == NUMBER]
    places = Counter(f"entered {r['node']}, agent on {r['agent_node']}" for r in rows[:calls])
    return "records: " + ", ".join(f"{count} {place}" for place, count in sorted(places.items()))


def crossing_table(steps: list[Crossing]) -> None:
    print("\n| call | calls | nodes' CPU per call (% of one core) | caller -> agent p50 / p95 (ms) | "
          "agent -> caller p50 / p95 (ms) | bursts lost |")
    print("|---|---|---|---|---|---|")
    for c in steps:
        r = c.result
        print(f"| {c.label} | {r.n} | {r.per_call:.2f} % | {ms(r.to_agent, 0.5)} / {ms(r.to_agent, 0.95)} | "
              f"{ms(r.to_caller, 0.5)} / {ms(r.to_caller, 0.95)} | {r.lost_to_agent + r.lost_to_caller} |")
    same = [c.result for c in steps if c.label == "same node"]
    cross = [c.result for c in steps if c.label == "cross node"]
    for s, x in zip(same, cross):
        print(f"crossing nodes adds {x.per_call - s.per_call:+.2f} % of a core per call; one way, caller -> agent "
              f"p50 {diff(x.to_agent, s.to_agent, 0.5)} / p95 {diff(x.to_agent, s.to_agent, 0.95)} ms, "
              f"agent -> caller p50 {diff(x.to_caller, s.to_caller, 0.5)} / p95 "
              f"{diff(x.to_caller, s.to_caller, 0.95)} ms")


def ms(values: list[float], q: float) -> str:
    return f"{pct(values, q) * 1000:.1f}"


def diff(cross: list[float], same: list[float], q: float) -> str:
    return f"{(pct(cross, q) - pct(same, q)) * 1000:+.1f}"


# -- 2. through Kamailio with the sipp yardstick ----------------------------------------------------

@dataclass
class LoadStep:
    setup: str
    concurrent: int
    ok: int
    failed: int
    nodes_cpu: float
    """% of one core, the nodes' process trees together."""
    front_cpu: float | None
    """% of one core, Kamailio's process tree (None: no front)."""
    servers_cpu: float | None
    """% of one core, PostgreSQL's and Redis's process trees (None: a single node, SQLite)."""
    rtp_lost: int
    load: float

    @property
    def fail_pct(self) -> float:
        return 100 * self.failed / max(1, self.ok + self.failed)


def load_steps(setup: str, target: str, nodes: list[NodeProcess], front_pid: int | None, steps: list[int],
               duration: int, servers: list[int] | None = None) -> list[LoadStep]:
    """The yardstick's concurrency steps against ``target``, up to the first with > 0.1 % failed."""
    print(f"\n== {setup}: concurrent media calls (sipp uac_pcap, {duration} s per step) ==", flush=True)
    pids = [n.proc.pid for n in nodes if n.proc is not None]
    done = []
    for n in steps:
        lost0, cpu0, wall0 = sum(rtp_lost(x) for x in nodes), nodes_cpu_seconds(pids), time.perf_counter()
        servers0 = nodes_cpu_seconds(servers or [])
        # load_step.sh measures the process tree it is given: the front's, or the node's without one
        r = step("load_step.sh", target, front_pid or pids[0], n, duration)
        wall = time.perf_counter() - wall0
        nodes_cpu = 100 * (nodes_cpu_seconds(pids) - cpu0) / wall
        servers_cpu = 100 * (nodes_cpu_seconds(servers) - servers0) / wall if servers else None
        result = LoadStep(setup, n, int(r.get("ok", 0)), int(r.get("failed", 0)) if r else n, nodes_cpu,
                          float(r.get("node_cpu_pct_of_one_core", "nan")) if front_pid else None, servers_cpu,
                          sum(rtp_lost(x) for x in nodes) - lost0, os.getloadavg()[0])
        done.append(result)
        front = f" front cpu%={result.front_cpu:.1f}" if result.front_cpu is not None else ""
        if result.servers_cpu is not None:
            front += f" postgresql+redis cpu%={result.servers_cpu:.1f}"
        print(f"{setup} concurrent={n} ok={result.ok} failed={result.failed} fail%={result.fail_pct:.2f} "
              f"nodes cpu%={nodes_cpu:.1f} ({nodes_cpu / n:.3f} per call){front} rtp_lost={result.rtp_lost} "
              f"load={result.load:.2f}", flush=True)
        if result.fail_pct > 0.1:
            break
        time.sleep(SETTLE)
    return done


def best(steps: list[LoadStep]) -> str:
    passed = [s for s in steps if s.fail_pct <= 0.1]
    top = max(passed, key=lambda s: s.concurrent, default=None)
    failed = next((s for s in steps if s.fail_pct > 0.1), None)
    text = f"**{top.concurrent}**" if top else "none"
    if top is not None and failed is None:
        text += " (the highest step run)"
    if failed is not None:
        text += f" ({failed.concurrent}: {failed.fail_pct:.2f} % failed)"
    return text


def per_call(steps: list[LoadStep]) -> str:
    passed = [s for s in steps if s.fail_pct <= 0.1]
    return ", ".join(f"{s.nodes_cpu / s.concurrent:.3f} % at {s.concurrent}" for s in passed[-2:]) or "n/a"


def load_table(runs: dict[str, list[LoadStep]]) -> None:
    print("\n| through the yardstick (uac_pcap) | concurrent media calls, <= 0.1 % failed | nodes' CPU per call "
          "(% of one core) | front CPU at the top step | PostgreSQL + Redis CPU at the top step | RTP lost |")
    print("|---|---|---|---|---|---|")
    for setup, steps in runs.items():
        passed = [s for s in steps if s.fail_pct <= 0.1]
        front = f"{passed[-1].front_cpu:.1f} %" if passed and passed[-1].front_cpu is not None else "n/a"
        servers = f"{passed[-1].servers_cpu:.1f} %" if passed and passed[-1].servers_cpu is not None else "n/a"
        print(f"| {setup} | {best(steps)} | {per_call(steps)} | {front} | {servers} | "
              f"{sum(s.rtp_lost for s in steps)} |")


def through_front(cluster: Cluster, steps: list[int], duration: int) -> dict[str, list[LoadStep]]:
    front = cluster.front
    assert front.proc is not None
    add_line_test_number(cluster.nodes[0])
    time.sleep(CONFIG_SYNC)
    servers = [p.pid for p in (cluster.postgres.proc, cluster.redis.proc) if p is not None]
    runs = {"3 nodes behind Kamailio": load_steps("3 nodes behind Kamailio", front.address, cluster.nodes,
                                                  front.proc.pid, steps, duration, servers)}
    time.sleep(SETTLE)
    alone, others = cluster.nodes[0], cluster.nodes[1:]
    for node in others:
        front.set_state(node.sip, "d")
    try:
        runs["1 node behind Kamailio"] = load_steps("1 node behind Kamailio", front.address, [alone],
                                                    front.proc.pid, steps, duration, servers)
    finally:
        for node in others:
            front.set_state(node.sip, "ap")
    return runs


def standalone(steps: list[int], duration: int) -> list[LoadStep]:
    """The README's single-node setup: a node of its own (SQLite, no Redis), dialed directly."""
    with tempfile.TemporaryDirectory(prefix="single-bench-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        node = NodeProcess(data, rtp_ports=RTP_PORTS, env=BENCH_ENVIRONMENT)
        node.start()
        try:
            add_line_test_number(node)
            return load_steps("single node, no cluster", node.sip, [node], None, steps, duration)
        finally:
            node.stop()


# -- main --------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="cross,load", help="cross (cross-node call), load (sipp through the front)")
    parser.add_argument("--calls", type=int, default=20, help="concurrent calls of the cross-node steps")
    parser.add_argument("--duration", type=float, default=15, help="seconds of each cross-node CPU/latency window")
    parser.add_argument("--repeat", type=int, default=1, help="same-node/cross-node step pairs")
    parser.add_argument("--concurrency", default="300,600,900,1200", help="load steps (concurrent calls)")
    parser.add_argument("--load-duration", type=int, default=30, help="seconds of each load step")
    parser.add_argument("--no-standalone", action="store_true", help="skip the single node outside a cluster")
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",")}
    if unknown := parts - {"cross", "load"}:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    steps = [int(x) for x in args.concurrency.split(",")]
    if "load" in parts and not (YARDSTICK / "load_step.sh").exists():
        print(f"yardstick scripts not found in {YARDSTICK}", file=sys.stderr)
        return 2
    crossings: list[Crossing] = []
    runs: dict[str, list[LoadStep]] = {}
    with bench_cluster(RTP_PORTS if "load" in parts else 400) as cluster:
        if "cross" in parts:
            import uvloop

            crossings = uvloop.run(cross_node(cluster, args.calls, args.duration, args.repeat))
        if "load" in parts:
            runs = through_front(cluster, steps, args.load_duration)
    if "load" in parts and not args.no_standalone:
        time.sleep(SETTLE)
        runs["single node, no cluster (README setup)"] = standalone(steps, args.load_duration)
    print("\n## Summary")
    if crossings:
        crossing_table(crossings)
    if runs:
        load_table(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
