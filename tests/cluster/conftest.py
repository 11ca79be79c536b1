"""A real Redis per test (tests/support/redis.py), and the memory and Redis backends side by side."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from cluster import InputLog, LeaseStore, MemoryLeases, MemoryLog, RedisLeases, RedisLink, RedisLog
from tests.support.redis import RedisNotFound, RedisServer


@pytest.fixture
async def link(redis_server: RedisServer) -> AsyncIterator[RedisLink]:
    link = RedisLink(redis_server.url)
    yield link
    await link.aclose()


@dataclass
class Backend:
    """One implementation of the log and the leases."""

    name: str
    log: InputLog
    leases: Callable[[str], LeaseStore]
    """The lease store of a node."""
    short_leases: Callable[[float], LeaseStore]
    """A store of node ``a`` whose leases live that many seconds."""


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        leases = MemoryLeases("first")
        yield Backend("memory", MemoryLog(), leases.for_node,
                      lambda ttl: MemoryLeases("a", ttl=ttl))
        return
    try:
        server = RedisServer()
    except RedisNotFound as exc:
        pytest.fail(str(exc), pytrace=False)
    server.start()
    link = RedisLink(server.url)
    try:
        yield Backend("redis", RedisLog(link), lambda node: RedisLeases(link, node),
                      lambda ttl: RedisLeases(link, "a", ttl=ttl))
    finally:
        await link.aclose()
        server.stop()


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 15.0) -> None:
    """Wait until ``check()`` holds (not a timing assertion: the timeout only ends a hung test)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {check}")
        await asyncio.sleep(0.02)
