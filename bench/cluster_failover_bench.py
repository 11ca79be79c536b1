"""Cluster benchmark, failover: kill -9 the node that owns the demo tenant, ``--rounds`` times,
while callers wait and agents' tabs are connected, and time what users notice.

The cluster is the tests' one (``tests/support/cluster.py``: PostgreSQL, Redis and Kamailio on
127.0.0.10, nodes n1-n3 on 127.0.0.11-13). Each round:

1. The owner O is the node holding the tenant's lease. agent1's tab is connected to O itself,
   agent2's to another node S (which relays it to O); both agents are offline. Three callers
   dial the two other nodes directly, one after the other, and press 2 (support: both agents
   may take them): they wait in O's queue.
2. A prober places a call every 0.25 s through Kamailio (the line-test number: answered at once,
   then hung up), from before the kill to the end of the round.
3. kill -9 O. Timed from the kill:
   - **front avoids it**: Kamailio's dispatcher has O inactive (``kamcmd dispatcher.list``,
     polled every 50 ms): new calls then go to the others only. The prober's calls also show
     when the last call delayed by the dead node was sent, and whether any failed;
   - **owner moves**: another node holds the tenant's lease (``acd:owner:1`` in Redis);
   - **tab back**: each tab, kept as ``agent.js`` keeps it (its socket closes; it reconnects after
     0.5, 1, 2, 4, 5 s, through the live nodes in turn, as an HTTP load balancer would send it),
     has its welcome from the new owner and its WebRTC audio up again.
4. Once both tabs are back, agent1 goes available, then agent2 once agent1 has its first offer;
   each accepts every offer, talks 0.3 s and hangs up (wrap-up 1 s). Counted: callers answered
   (each must be offered exactly once, in the order they called), **double offers** (a caller
   offered to two agents, or an agent offered a call while it holds another) and, once the calls
   are over, **stuck agents** (reserved, on a call or in wrap-up with a call id, by the new owner's
   ``/api/agents``). Both must be 0.
5. O is started again, and the next round kills whichever node owns the tenant then.

A kill -9 on one machine closes the dead node's TCP connections at once (the kernel does), so a
tab connected to it learns at once; after a power loss the page's heartbeat (3 missed pongs)
finds out instead, a few seconds later.

usage: python bench/cluster_failover_bench.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sip_load import NUMBER as LINE_TEST  # noqa: E402
from bench.sip_load import add_line_test_number  # noqa: E402
from softphone_web.agent_client import AgentClient, SocketClosed  # noqa: E402
from tests.support.cluster import Cluster  # noqa: E402
from tests.support.call_peers import AGENT_TONE, Caller, call_into, carrier_routing  # noqa: E402
from tests.support.endpoint import EndpointHarness  # noqa: E402
from tests.support.node import NodeProcess, admin_client  # noqa: E402

BACKOFF = [0.5, 1.0, 2.0, 4.0, 5.0]
"""``agent.js``'s ``BACKOFF_MS``: the page's waits before each reconnection attempt."""
PROBE_EVERY = 0.25
"""Seconds between two of the prober's calls through Kamailio."""
DELAYED = 0.5
"""A probe call that took longer than this to be answered met the dead node first."""
CALLERS = 3


@dataclass
class Round:
    killed: str
    front_avoids: float
    owner_moves: float
    tab_back: dict[str, float]
    """Seconds until each tab was back: ``direct`` (connected to the dead node), ``relayed``."""
    answered: list[str]
    called: list[str]
    double_offers: int
    stuck_agents: int
    probes: list[tuple[float, float | None]] = field(default_factory=list)
    """(sent, seconds until answered or None: failed), times from the kill."""

    @property
    def in_order(self) -> bool:
        return self.answered == self.called

    @property
    def last_delayed(self) -> float | None:
        delayed = [sent for sent, took in self.probes if took is not None and took > DELAYED]
        return max(delayed) if delayed else None

    @property
    def probes_failed(self) -> int:
        return sum(1 for _, took in self.probes if took is None)


class Page:
    """An agent's page: one socket at a time, reconnected like ``agent.js`` when a node closes it."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password
        self.client: AgentClient | None = None
        self.token: str | None = None

    async def open(self, node: NodeProcess) -> dict[str, Any]:
        client = AgentClient(node.http, "demo", self.username, self.password)
        client.mic.freq = AGENT_TONE
        client.token = self.token
        try:
            welcome = await client.connect()
            await client.wait_connected()
        except BaseException:
            await client.close()
            raise
        self.client, self.token = client, client.token
        return welcome

    async def back(self, through: list[NodeProcess]) -> float:
        """Wait for the socket to close, then reconnect through ``through`` in turn with the
        page's back-off; the time it took from now, once the welcome came and the audio is up."""
        started = time.monotonic()
        assert self.client is not None
        while self.client.ws is not None and self.client.ws.close_code is None:
            await asyncio.sleep(0.01)
        await self.client.close()
        for attempt in range(100):
            await asyncio.sleep(BACKOFF[min(attempt, len(BACKOFF) - 1)])
            try:
                await self.open(through[attempt % len(through)])
                return time.monotonic() - started
            except (OSError, SocketClosed, TimeoutError) as exc:
                print(f"    {self.username}: attempt {attempt + 1} failed ({exc})", flush=True)
        raise RuntimeError(f"{self.username}'s tab never came back")

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


class Offers:
    """Every offer both agents get, in the order they come, and the double ones."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.holding: dict[str, str | None] = {}
        """The call each agent holds (offered, talking), by username."""
        self.doubles = 0

    def offered(self, agent: str, caller: str) -> None:
        if caller in self.order or self.holding.get(agent) is not None:
            self.doubles += 1
        self.order.append(caller)
        self.holding[agent] = caller

    def done(self, agent: str) -> None:
        self.holding[agent] = None


async def work(page: Page, offers: Offers, calls: int, first: asyncio.Event | None) -> None:
    """Take offers until ``calls`` callers in all were offered: accept, talk 0.3 s, hang up."""
    client = page.client
    assert client is not None
    await client.send({"type": "set_state", "state": "available"})
    while len(offers.order) < calls:
        try:
            offer = await client.expect("offer", timeout=1.0)
        except TimeoutError:
            continue
        offers.offered(page.username, offer["caller"])
        if first is not None:
            first.set()
        await client.send({"type": "accept", "call_id": offer["call_id"]})
        await client.expect("call", timeout=15)
        await asyncio.sleep(0.3)
        await client.send({"type": "hangup"})
        await client.expect("call_ended", timeout=15)
        offers.done(page.username)
        await client.expect("state", state="available", timeout=15)


async def probe(prober: EndpointHarness, front: str, stop: asyncio.Event, killed_at: list[float],
                out: list[tuple[float, float | None]]) -> None:
    """A call through the front every :data:`PROBE_EVERY` s until ``stop``: how long each took."""
    while not stop.is_set():
        sent = time.monotonic()
        took: float | None = None
        try:
            caller = await asyncio.wait_for(call_into(prober, front, None, caller_id="13900000000",
                                                      number=LINE_TEST), 15)
            took = time.monotonic() - sent
            await caller.hang_up()
        except Exception as exc:  # noqa: BLE001 - a failed probe is a figure, not an error
            print(f"    probe failed: {exc!r}", flush=True)
        out.append((sent - (killed_at[0] if killed_at else sent), took))
        await asyncio.sleep(max(0.0, PROBE_EVERY - (time.monotonic() - sent)))


def stuck(cluster: Cluster, owner: int) -> int:
    with admin_client(cluster.nodes[owner], cluster.admin_password) as api:
        agents = api.get("/api/agents").json()
    return sum(1 for a in agents if a["live"] and (a["live"]["state"] in ("reserved", "on_call")
                                                     or a["live"]["call_id"] is not None))


async def one_round(cluster: Cluster, carrier: EndpointHarness, prober: EndpointHarness, number: int) -> Round:
    nodes = cluster.nodes
    owner = cluster.owner()
    survivors = [i for i in range(len(nodes)) if i != owner]
    pages = {"direct": Page("agent1", nodes[0].agents["agent1"][0]),
             "relayed": Page("agent2", nodes[0].agents["agent2"][0])}
    await pages["direct"].open(nodes[owner])
    await pages["relayed"].open(nodes[survivors[0]])
    for page in pages.values():
        assert page.client is not None
        await page.client.send({"type": "set_state", "state": "offline"})
        await page.client.expect("state", state="offline")
    called = [f"1380013{number:02d}{i:02d}" for i in range(CALLERS)]
    callers: list[Caller] = []
    stop = asyncio.Event()
    killed_at: list[float] = []
    probes: list[tuple[float, float | None]] = []
    prober_task = asyncio.ensure_future(probe(prober, cluster.front.address, stop, killed_at, probes))
    try:
        for i, caller_id in enumerate(called):
            callers.append(await call_into(carrier, nodes[survivors[i % 2]], "2", caller_id=caller_id))
            await asyncio.sleep(1.5)
        await asyncio.sleep(1.0)
        killed_at.append(time.monotonic())
        cluster.kill(owner)
        dead = nodes[owner].sip
        marks: dict[str, float] = {}
        front = asyncio.ensure_future(asyncio.to_thread(cluster.front.wait_for, lambda active: dead not in active))
        moved = asyncio.ensure_future(asyncio.to_thread(cluster.owner, other_than=owner))
        front.add_done_callback(lambda _: marks.setdefault("front", time.monotonic()))
        moved.add_done_callback(lambda _: marks.setdefault("owner", time.monotonic()))
        through = [nodes[i] for i in survivors]
        backs = await asyncio.gather(pages["direct"].back(through), pages["relayed"].back(through[::-1]))
        new_owner = await moved
        await front
        offers, first = Offers(), asyncio.Event()
        agent1 = asyncio.ensure_future(work(pages["direct"], offers, CALLERS, first))
        await asyncio.wait_for(first.wait(), 30)
        await asyncio.wait_for(asyncio.gather(agent1, work(pages["relayed"], offers, CALLERS, None)), 60)
        await asyncio.sleep(2.5)  # wrap-up (1 s) over
        stuck_agents = await asyncio.to_thread(stuck, cluster, new_owner)
    finally:
        stop.set()
        await prober_task
        for caller in callers:
            if not caller.leg.ended:
                await caller.hang_up()
        for page in pages.values():
            await page.close()
    result = Round(f"n{owner + 1}", marks["front"] - killed_at[0], marks["owner"] - killed_at[0],
                   dict(zip(pages, backs)), offers.order, called, offers.doubles, stuck_agents, probes)
    print_round(number, result, new_owner)
    await asyncio.to_thread(cluster.restart, owner)
    return result


def print_round(number: int, r: Round, new_owner: int) -> None:
    delayed = f"{r.last_delayed:+.2f} s" if r.last_delayed is not None else "none"
    print(f"round {number}: killed {r.killed}; front avoids it after {r.front_avoids:.2f} s; owner n{new_owner + 1} "
          f"after {r.owner_moves:.2f} s; tabs back {r.tab_back['direct']:.2f} s (was on it), "
          f"{r.tab_back['relayed']:.2f} s (relayed); answered {'in order' if r.in_order else r.answered}; "
          f"double offers {r.double_offers}, stuck agents {r.stuck_agents}; probes {len(r.probes)}, "
          f"failed {r.probes_failed}, last delayed by the dead node sent at {delayed}", flush=True)


def p50_max(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} / {max(values):.2f}"


def summary(rounds: list[Round]) -> None:
    delayed = [r.last_delayed for r in rounds if r.last_delayed is not None]
    print(f"\n## Summary over {len(rounds)} kills of the tenant's owner\n")
    print("| from the kill until | p50 / max (s) |")
    print("|---|---|")
    print(f"| Kamailio sends new calls only to the others | {p50_max([r.front_avoids for r in rounds])} |")
    if delayed:
        print(f"| (the last probe call delayed by the dead node was sent at) | {p50_max(delayed)} |")
    print(f"| the tenant's ACD has a new owner | {p50_max([r.owner_moves for r in rounds])} |")
    print(f"| a tab that was connected to the dead node is back | {p50_max([r.tab_back['direct'] for r in rounds])} |")
    print(f"| a tab relayed by a survivor is back | {p50_max([r.tab_back['relayed'] for r in rounds])} |")
    waiting = CALLERS * len(rounds)
    print(f"\ncallers waiting at the kills: {waiting}; answered exactly once and in order: "
          f"{sum(CALLERS for r in rounds if r.in_order and r.double_offers == 0)}; double offers: "
          f"{sum(r.double_offers for r in rounds)}; stuck agents: {sum(r.stuck_agents for r in rounds)}; probe calls "
          f"through Kamailio: {sum(len(r.probes) for r in rounds)}, failed {sum(r.probes_failed for r in rounds)}")


async def run(cluster: Cluster, rounds: int) -> list[Round]:
    with admin_client(cluster.nodes[0], cluster.admin_password) as api:
        support = next(q for q in api.get("/api/queues").json() if q["name"] == "support")
        api.patch(f"/api/queues/{support['id']}", json={"wrapup": 1, "announce_every": None}).raise_for_status()
    add_line_test_number(cluster.nodes[0])
    await asyncio.sleep(2.0)  # config_sync: every node has the number and the queue's wrap-up
    carrier, prober = EndpointHarness(carrier_routing()), EndpointHarness(carrier_routing())
    await carrier.endpoint.start()
    await prober.endpoint.start()
    try:
        return [await one_round(cluster, carrier, prober, n + 1) for n in range(rounds)]
    finally:
        await carrier.endpoint.stop()
        await prober.endpoint.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10, help="kills of the tenant's owner")
    args = parser.parse_args()
    import uvloop

    os.environ.setdefault("CALLCENTER_LOG_LEVEL", "WARNING")
    with tempfile.TemporaryDirectory(prefix="failover-bench-") as tmp:
        cluster = Cluster(Path(tmp)).start()
        try:
            print(f"cluster up in {cluster.start_seconds:.1f} s; {os.cpu_count()} CPUs, load average "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
            rounds = uvloop.run(run(cluster, args.rounds))
        finally:
            cluster.stop()
    summary(rounds)
    doubles, stuck_agents = sum(r.double_offers for r in rounds), sum(r.stuck_agents for r in rounds)
    return 0 if doubles == stuck_agents == 0 and all(r.in_order for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
