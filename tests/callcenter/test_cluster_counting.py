"""Counted across the cluster in a real Redis (issue 14): the per-source limit of new SIP requests
and each tenant's calls in progress; both carry on, each node on its own, while Redis is away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from callcenter.api.errors import install_error_handlers
from callcenter.db_health import watch_redis
from callcenter.metrics import REGISTRY
from callcenter.shared_rate_limit import RateLimitSync
from callcenter.tenant_calls import TenantCalls
from cluster.redis_link import RedisLink
from sip_bridge.ratelimit import RateLimiter, SharedRateLimiter
from tests.support.redis import RedisServer

from .test_softphone_calls import eventually

SOURCE = "198.51.100.7"


@pytest.fixture
async def link(redis_server: RedisServer) -> AsyncIterator[RedisLink]:
    link = RedisLink(redis_server.url)
    yield link
    await link.aclose()


# -- the rate limit ------------------------------------------------------------------------------


def test_a_node_admits_at_most_ahead_of_what_the_store_confirmed() -> None:
    limiter = SharedRateLimiter(rate=1.0, burst=100, ahead=10)
    urgent: list[int] = []
    limiter.on_urgent = lambda: urgent.append(1)
    admitted = sum(limiter.allow(SOURCE, 0.0) for _ in range(50))
    assert admitted == 10 and urgent  # the sync is asked for at once
    [(key, count)] = limiter.take_reports()
    assert (key, count) == (SOURCE, 10) and limiter.take_reports() == []
    assert not limiter.allow(SOURCE, 0.0)  # still in flight
    limiter.confirmed(SOURCE, 10, level=5.0, now=0.0)  # another node took 85 meanwhile
    assert sum(limiter.allow(SOURCE, 0.0) for _ in range(50)) == 5
    limiter.take_reports()
    limiter.confirmed(SOURCE, 5, level=-3.0, now=0.0)  # a debt: paid back by the refill
    assert not limiter.allow(SOURCE, 3.5)
    assert limiter.allow(SOURCE, 4.0)


def test_detached_from_the_store_each_node_is_its_own_bucket() -> None:
    shared, alone = SharedRateLimiter(rate=2.0, burst=20, ahead=3), RateLimiter(rate=2.0, burst=20)
    shared.detached = True
    for now in (0.0, 0.0, 1.0, 7.5, 7.6):
        for _ in range(15):
            assert shared.allow(SOURCE, now) == alone.allow(SOURCE, now), now
        for key, count in shared.take_reports():
            shared.unconfirmed(key, count, now)


async def test_a_source_gets_one_budget_across_the_nodes(link: RedisLink) -> None:
    """Requests from one source spread over three nodes: one burst between them, not one each."""
    burst, ahead = 60, 5
    limiters = [SharedRateLimiter(rate=0.001, burst=burst, ahead=ahead) for _ in range(3)]
    syncs = [RateLimitSync(link, limiter) for limiter in limiters]
    loop = asyncio.get_running_loop()
    admitted = 0
    for round_ in range(100):
        for limiter in limiters:
            admitted += sum(limiter.allow(SOURCE, loop.time()) for _ in range(2))
        if round_ % 2:
            await asyncio.gather(*(sync.sync() for sync in syncs))
    assert burst <= admitted <= burst + 2 * ahead  # nodes - 1 times ahead at most over the burst
    separate = [RateLimiter(rate=0.001, burst=burst) for _ in range(3)]
    alone = sum(limiter.allow(SOURCE, 0.0) for limiter in separate for _ in range(200))
    assert alone == 3 * burst  # what three nodes counting alone would have let through
    bucket = await link.client.hgetall(f"ratelimit:sip:{SOURCE}")
    assert float(bucket["tokens"]) < 1 and await link.client.pttl(f"ratelimit:sip:{SOURCE}") > 0


async def test_without_redis_the_limit_goes_on_locally_and_comes_back(redis_server: RedisServer,
                                                                        link: RedisLink,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    limiter = SharedRateLimiter(rate=0.001, burst=10, ahead=2)
    sync = RateLimitSync(link, limiter)
    loop = asyncio.get_running_loop()
    redis_server.halt()
    with caplog.at_level(logging.WARNING, logger="cluster.redis_link"):
        admitted = 0
        for _ in range(20):
            admitted += limiter.allow(SOURCE, loop.time())
            await sync.sync()
    assert limiter.detached and admitted == 10  # the node's own burst, as a single node
    assert [r.message for r in caplog.records].count("redis unavailable") == 1
    redis_server.resume()
    assert limiter.allow("203.0.113.9", loop.time())
    await sync.sync()
    assert not limiter.detached and link.available
    assert await link.client.exists("ratelimit:sip:203.0.113.9")


# -- tenant calls --------------------------------------------------------------------------------


@dataclass
class Leg:
    """What the counter reads of a ``sip_bridge.call.Call``."""

    tenant_id: int | None
    trunk_id: int | None


async def test_tenant_calls_are_counted_across_nodes_and_a_dead_nodes_vanish(link: RedisLink) -> None:
    n1 = TenantCalls("n1", link, period=0.05, ttl=0.5)
    n2 = TenantCalls("n2", link, period=0.05, ttl=0.5)
    await n1.start()
    await n2.start()
    try:
        calls = [Leg(1, 10), Leg(1, 10), Leg(2, 20)]
        for leg in calls:
            n1.started(leg)
        n2.started(Leg(1, 11))
        n2.started(Leg(1, None))  # an agent's leg: not a call of its own
        n2.started(Leg(None, 12))  # a call to no tenant's number
        await eventually(lambda: n1.cluster(1) == 3 and n2.cluster(1) == 3 and n2.cluster(2) == 1)
        assert (n1.here(1), n2.here(1)) == (2, 1)
        n1.ended(calls[0])
        await eventually(lambda: n2.cluster(1) == 2)
        assert n1.by_tenant() == {1: (1, 2), 2: (1, 1)}
        assert n2._task is not None
        n2._task.cancel()  # n2 dies: it stops publishing, its counts lapse
        await eventually(lambda: n1.cluster(1) == 1)
    finally:
        await n1.stop()
        await n2.stop()
    assert not await link.client.exists("cluster:calls:n1")  # a clean stop takes its counts out


def test_a_single_node_counts_its_own_calls() -> None:
    calls = TenantCalls()
    calls.started(Leg(7, 1))
    calls.started(Leg(7, 1))
    calls.ended(Leg(7, 1))
    calls.ended(Leg(7, 1))
    calls.ended(Leg(7, 1))  # ended twice (a late BYE): never below zero
    calls.started(Leg(7, 1))
    assert (calls.here(7), calls.cluster(7)) == (1, 1)


# -- the API and the metrics while Redis is away ---------------------------------------------------


def test_the_api_answers_503_redis_unavailable_while_redis_is_down(redis_server: RedisServer) -> None:
    link = RedisLink(redis_server.url)  # used on the test client's loop only
    app = FastAPI()
    install_error_handlers(app)
    watch_redis(link)

    @app.get("/owner")
    async def owner() -> dict[str, str | None]:  # a route that needs Redis (as the ACD's owner lookup does)
        try:
            value = await link.client.get("acd:owner:1")
        except Exception as exc:
            link.failed(exc, "test")
            raise
        link.succeeded()
        return {"owner": str(value) if value is not None else None}

    def gauge() -> str:
        return next(line for line in generate_latest(REGISTRY).decode().splitlines()
                    if line.startswith("callcenter_redis_up "))

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/owner").json() == {"owner": None} and gauge() == "callcenter_redis_up 1.0"
        redis_server.halt()
        reply = client.get("/owner")
        assert reply.status_code == 503
        assert reply.json() == {"error_id": "redis-unavailable", "message": "redis unavailable"}
        assert gauge() == "callcenter_redis_up 0.0"
        redis_server.resume()
        assert client.get("/owner").status_code == 200 and gauge() == "callcenter_redis_up 1.0"
        client.portal.call(link.aclose)  # type: ignore[union-attr]
