"""What counting new SIP requests across the cluster costs (a real Redis on loopback).

- ``allow``: the endpoint's synchronous check per request, one node's token buckets
  (``RateLimiter``) against the cluster's (``SharedRateLimiter``), 1,000,000 calls over 1,000 sources;
- a report: one ``RateLimitSync.sync`` (what the node admitted since the last one, for 1, 20, 100
  and 500 sources) alone on the loop: the node's CPU, the wall time until Redis answered, Redis's
  CPU (``INFO cpu``), 300 times each;
- a load: ``--rate`` new requests a second from ``--sources`` addresses for ``--seconds`` through
  the cluster's limiter with its sync running: reports a second, sources per report, Redis's CPU
  per request, how late the event loop ran its 1 ms ticks.

usage: python bench/rate_limit_bench.py [--rate 2000] [--sources 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from callcenter.shared_rate_limit import RateLimitSync  # noqa: E402
from cluster import RedisLink  # noqa: E402
from sip_bridge.ratelimit import RateLimiter, SharedRateLimiter  # noqa: E402
from tests.support.redis import RedisServer  # noqa: E402

RATE, BURST = 500.0, 1000


def allow_cost(limiter: RateLimiter | SharedRateLimiter, calls: int, sources: list[str]) -> float:
    """Seconds per ``allow`` (the shared limiter's reports taken and answered as they pile up)."""
    started = time.perf_counter()
    for i in range(calls):
        limiter.allow(sources[i % len(sources)], i * 1e-6)
        if isinstance(limiter, SharedRateLimiter) and i % 1000 == 999:
            for key, count in limiter.take_reports():
                limiter.confirmed(key, count, RATE, i * 1e-6)
    return (time.perf_counter() - started) / calls


async def redis_cpu(link: RedisLink) -> float:
    info = await link.client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def report_cost(link: RedisLink, sources: int, repeat: int = 300) -> None:
    limiter = SharedRateLimiter(RATE, BURST)
    sync = RateLimitSync(link, limiter)
    loop = asyncio.get_running_loop()
    keys = [f"10.1.{i // 250}.{i % 250}" for i in range(sources)]
    node = wall = 0.0
    redis_before = await redis_cpu(link)
    for _ in range(repeat):
        for key in keys:
            limiter.allow(key, loop.time())
        cpu, started = time.process_time(), time.perf_counter()
        await sync.sync()
        node += time.process_time() - cpu
        wall += time.perf_counter() - started
    redis_used = await redis_cpu(link) - redis_before
    print(f"  {sources:4d} sources: node {node / repeat * 1e3:5.2f} ms CPU, answered in {wall / repeat * 1e3:5.2f} ms, "
          f"redis {redis_used / repeat * 1e3:5.2f} ms CPU  (per source: node {node / repeat / sources * 1e6:5.1f} us, "
          f"redis {redis_used / repeat / sources * 1e6:4.1f} us)")


async def load(link: RedisLink, rate: int, sources: int, seconds: float) -> None:
    limiter = SharedRateLimiter(RATE, BURST)
    sync = RateLimitSync(link, limiter)
    reports, reported = 0, 0
    plain_sync = sync.sync

    async def counted() -> None:
        nonlocal reports, reported
        active = sum(1 for b in limiter._buckets.values() if b.unsent)
        if active:
            reports, reported = reports + 1, reported + active
        await plain_sync()

    sync.sync = counted  # type: ignore[method-assign]
    addresses = [f"10.2.{i // 250}.{i % 250}" for i in range(sources)]
    loop = asyncio.get_running_loop()
    await sync.start()
    redis_before = await redis_cpu(link)
    admitted = refused = 0
    lateness: list[float] = []
    tick = 0.001
    end = loop.time() + seconds
    next_at = loop.time()
    while loop.time() < end:
        for _ in range(max(1, int(rate * tick))):
            if limiter.allow(random.choice(addresses), loop.time()):
                admitted += 1
            else:
                refused += 1
        next_at += tick
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        lateness.append(max(0.0, loop.time() - next_at))
    await sync.stop()
    redis_used = await redis_cpu(link) - redis_before
    requests = admitted + refused
    lateness.sort()
    print(f"  {requests} requests in {seconds:.0f} s from {sources} sources: {admitted} admitted, {refused} refused; "
          f"{reports / seconds:.1f} reports/s of {reported / max(reports, 1):.0f} sources; "
          f"redis {redis_used / requests * 1e6:.1f} us CPU per request; loop lateness p50 "
          f"{lateness[len(lateness) // 2] * 1e3:.2f} ms, p99 {lateness[int(len(lateness) * 0.99)] * 1e3:.2f} ms")


async def with_redis(rate: int, sources: int, seconds: float) -> None:
    server = RedisServer().start()
    link = RedisLink(server.url)
    try:
        print("one report (RateLimitSync.sync), alone on the loop:")
        for count in (1, 20, 100, 500):
            await report_cost(link, count)
        print("under load:")
        await load(link, rate, sources, seconds)
    finally:
        await link.aclose()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    sources = [f"192.0.{i // 250}.{i % 250}" for i in range(1000)]
    local = allow_cost(RateLimiter(RATE, BURST), 1_000_000, sources)
    shared = allow_cost(SharedRateLimiter(RATE, BURST), 1_000_000, sources)
    print(f"allow: one node's buckets {local * 1e9:.0f} ns per request, the cluster's {shared * 1e9:.0f} ns")
    asyncio.run(with_redis(args.rate, args.sources, args.seconds))


if __name__ == "__main__":
    main()
