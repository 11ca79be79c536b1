"""Cluster primitives on a real Redis over loopback: what an ACD input costs in time.

- log: ``append`` on one connection while the owner's reader, blocked in ``read`` on another,
  gets it: the round trip from the sender's ``append`` call to the entry in the reader's hands
  (one at a time, so it is latency, not throughput), over 10,000 entries;
- throughput: 10,000 appends from 50 concurrent senders, then the reader draining them;
- the same log round trip on the in-memory implementation (single-node mode), for scale.

usage: python bench/cluster_bench.py [--entries 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cluster import START, InputLog, MemoryLog, RedisLink, RedisLog  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402


def _line(name: str, samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return (f"{name:<34} p50 {q[49] * 1e6:7.0f} us   p99 {q[98] * 1e6:7.0f} us   "
            f"max {max(samples) * 1e6:7.0f} us   (n={len(samples)})")


async def log_round_trip(log: InputLog, n: int) -> list[float]:
    samples: list[float] = []
    after = START
    event = {"type": "CallQueued", "call_id": "c" * 24, "queue": "support", "priority": 0, "node": "n1"}
    for i in range(n):
        reading = asyncio.create_task(log.read(1, after, 2000))
        await asyncio.sleep(0)  # the reader is waiting before the append is sent
        t0 = time.perf_counter()
        await log.append(1, event, f"cmd-{i}")
        [entry] = await reading
        samples.append(time.perf_counter() - t0)
        after = entry.entry_id
    return samples


async def main(n: int) -> None:
    server = RedisServer().start()
    sender, owner = RedisLink(server.url), RedisLink(server.url)
    try:
        print(f"redis-server on {server.url} (loopback), {n} entries each\n")
        # separate links: the sender's XADD and the reader's XREAD BLOCK on their own connections
        print(_line("log append -> read (redis)", await log_round_trip(_Split(sender, owner), n)))
        print(_line("log append -> read (memory)", await log_round_trip(MemoryLog(), n)))

        log = RedisLog(sender)
        t0 = time.perf_counter()
        senders = 50
        await asyncio.gather(*(
            asyncio.gather(*(log.append(3, {"n": i}, f"t-{s}-{i}") for i in range(n // senders)))
            for s in range(senders)))
        appended = time.perf_counter() - t0
        t0, count, after = time.perf_counter(), 0, START
        while batch := await RedisLog(owner).read(3, after, 0):
            count, after = count + len(batch), batch[-1].entry_id
        drained = time.perf_counter() - t0
        print(f"{'throughput':<34} {n / appended:,.0f} appends/s (50 senders), "
              f"{count / drained:,.0f} entries/s read back in batches of 100")
    finally:
        await sender.aclose()
        await owner.aclose()
        server.stop()


class _Split(RedisLog):
    """Appends on the sender's link, reads on the owner's: two nodes."""

    def __init__(self, sender: RedisLink, owner: RedisLink) -> None:
        super().__init__(sender)
        self._reader = RedisLog(owner)

    async def read(self, tenant: int, after_id: str, block_ms: int):  # type: ignore[no-untyped-def]
        return await self._reader.read(tenant, after_id, block_ms)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=10_000)
    asyncio.run(main(parser.parse_args().entries))
