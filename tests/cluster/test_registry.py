"""Node heartbeats on a real Redis: a node killed -9 is found dead by every watcher and reaped by
exactly one; a node that stops cleanly is seen gone at once; a Redis restart kills nobody."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cluster import DRAINING, HEARTBEAT_TTL, UP, WATCH_PERIOD, Heartbeat, NodeInfo, NodeWatcher, RedisLink, live_nodes
from cluster.registry import REGISTRY_KEY, node_key, reap_key
from tests.support.redis import RedisServer

from .conftest import eventually

ROOT = Path(__file__).resolve().parents[2]
GRACE = HEARTBEAT_TTL + WATCH_PERIOD


@dataclass
class Watched:
    """A listener that writes down what its watcher reports."""

    up: list[NodeInfo] = field(default_factory=list)
    down: list[tuple[float, NodeInfo]] = field(default_factory=list)
    reaped: list[NodeInfo] = field(default_factory=list)

    def node_up(self, info: NodeInfo) -> None:
        self.up.append(info)

    def node_down(self, info: NodeInfo) -> None:
        self.down.append((time.monotonic(), info))

    def reap(self, info: NodeInfo) -> None:
        self.reaped.append(info)

    def downs(self, node: str) -> list[float]:
        return [at for at, info in self.down if info.node == node]


def info(node: str) -> NodeInfo:
    return NodeInfo(node, "127.0.0.1:5060", f"http://127.0.0.1:8000/{node}", UP, time.time_ns() // 1_000_000)


class Cluster:
    """Watchers w1 and w2, each with its own link (as on two nodes), beating too."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.links = {n: RedisLink(url) for n in ("w1", "w2")}
        self.seen = {n: Watched() for n in self.links}
        self.watchers = {n: NodeWatcher(self.links[n], n, self.seen[n]) for n in self.links}
        self.beats = {n: Heartbeat(self.links[n], info(n)) for n in self.links}
        self.procs: list[subprocess.Popen[bytes]] = []

    async def start(self) -> None:
        started = time.monotonic()
        for n in self.links:
            await self.beats[n].start()
            await self.watchers[n].start()
        # past the watchers' first grace: from now on a lapse is reported at once
        await asyncio.sleep(max(0.0, started + GRACE - time.monotonic()))

    def node_process(self, node: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "tests.cluster.heartbeat_node", self.url, node], cwd=ROOT)
        self.procs.append(proc)
        return proc

    async def both_saw_up(self, node: str, state: str = UP) -> None:
        await eventually(lambda: all(any(i.node == node and i.state == state for i in s.up)
                                     for s in self.seen.values()))

    def reaps(self, node: str) -> list[str]:
        return [w for w, s in self.seen.items() for i in s.reaped if i.node == node]

    async def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
        for n in self.links:
            await self.watchers[n].stop()
            await self.beats[n].stop()
            await self.links[n].aclose()


async def test_a_node_killed_is_found_dead_by_every_watcher_within_a_ttl_and_reaped_by_exactly_one(
        redis_server: RedisServer) -> None:
    cluster = Cluster(redis_server.url)
    await cluster.start()
    try:
        proc = cluster.node_process("n3")
        await cluster.both_saw_up("n3")
        assert [i.node for i in await live_nodes(cluster.links["w1"])] == ["n3", "w1", "w2"]
        killed = time.monotonic()
        proc.kill()
        await eventually(lambda: all(s.downs("n3") for s in cluster.seen.values()))
        found = [s.downs("n3")[0] - killed for s in cluster.seen.values()]
        await asyncio.sleep(3 * WATCH_PERIOD)  # more looks: still one reaping, one report each
        [reaper] = cluster.reaps("n3")
        assert all(len(s.downs("n3")) == 1 for s in cluster.seen.values())
        client = cluster.links["w1"].client
        assert await client.hget(REGISTRY_KEY, "n3") is None
        dead = cluster.seen[reaper].reaped[0]
        assert await client.get(reap_key(dead)) == reaper
        assert [i.node for i in await live_nodes(cluster.links["w1"])] == ["w1", "w2"]
    finally:
        await cluster.stop()
    print(f"\nnode killed -9: found dead by the watchers after {', '.join(f'{t:.2f} s' for t in found)} "
          f"(heartbeat TTL {HEARTBEAT_TTL} s, looks every {WATCH_PERIOD} s)")


async def test_a_node_that_stops_cleanly_is_seen_gone_at_the_next_look_and_a_draining_one_as_draining(
        redis_server: RedisServer) -> None:
    cluster = Cluster(redis_server.url)
    await cluster.start()
    n4 = Heartbeat(RedisLink(redis_server.url), info("n4"))
    try:
        await n4.start()
        await cluster.both_saw_up("n4")
        await n4.set_state(DRAINING)
        await cluster.both_saw_up("n4", DRAINING)
        await n4.stop()
        assert not await n4.link.client.exists(node_key("n4"))  # gone now, not when it would have lapsed
        await eventually(lambda: all(s.downs("n4") for s in cluster.seen.values()))
        await eventually(lambda: len(cluster.reaps("n4")) == 1)
    finally:
        await n4.link.aclose()
        await cluster.stop()


async def test_a_redis_restart_kills_no_live_node_and_a_node_that_died_meanwhile_is_reaped_once(
        redis_server: RedisServer) -> None:
    cluster = Cluster(redis_server.url)
    await cluster.start()
    try:
        proc = cluster.node_process("n5")
        await cluster.both_saw_up("n5")
        redis_server.halt()
        proc.kill()  # dies while Redis is away
        await asyncio.sleep(HEARTBEAT_TTL)
        redis_server.resume()  # empty: no heartbeat, no registry
        await eventually(lambda: all(s.downs("n5") for s in cluster.seen.values()))
        await eventually(lambda: len(cluster.reaps("n5")) == 1)
        await asyncio.sleep(GRACE)
        assert [info.node for s in cluster.seen.values() for _, info in s.down] == ["n5", "n5"]
        assert [i.node for i in await live_nodes(cluster.links["w1"])] == ["w1", "w2"]
    finally:
        await cluster.stop()
