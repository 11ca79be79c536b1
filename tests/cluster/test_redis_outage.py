"""Redis killed and started again, empty: owners lose their leases in time and get them back with a
higher epoch, appends wait and go through, readers carry on with the new streams (also one whose
ids restart below their cursor), and each outage is logged once, not once per call."""

from __future__ import annotations

import asyncio
import logging

import pytest

from cluster import (
    START,
    UNREACHABLE,
    LeaseKeeper,
    LogEntry,
    RedisLeases,
    RedisLink,
    RedisLog,
)
from cluster.log import log_key
from tests.support.redis import RedisServer

from .conftest import eventually
from .test_lease_keeper import Recorder


async def test_leases_and_logs_ride_out_redis_restarting_empty(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cluster")
    link = RedisLink(redis_server.url)
    owner = Recorder("a", [])
    keeper = LeaseKeeper(RedisLeases(link, "a"), owner)
    log = RedisLog(link)
    inputs: list[LogEntry] = []

    async def consume_log() -> None:
        after = START
        while True:
            batch = await log.read(1, after, 500)
            if batch:
                inputs.extend(batch)
                after = batch[-1].entry_id

    keeper.want(1)
    await keeper.start()
    consumer = asyncio.create_task(consume_log())
    try:
        await eventually(lambda: 1 in owner.held)
        first = owner.held[1]
        await log.append(1, {"n": "before"}, "c-before")
        await eventually(lambda: len(inputs) == 1)

        redis_server.halt()
        await eventually(lambda: 1 not in owner.held)
        assert owner.reasons == [UNREACHABLE]
        assert not link.available
        during = asyncio.create_task(log.append(1, {"n": "during"}, "c-during"))
        await asyncio.sleep(1.0)
        assert not during.done()  # waiting for Redis, not failed

        redis_server.resume()  # empty
        await during
        await eventually(lambda: 1 in owner.held)
        second = owner.held[1]
        assert second > first  # above the epochs issued before, though the counter was lost
        await eventually(lambda: [e.event["n"] for e in inputs] == ["before", "during"])
        assert link.available

        # again, and this time Redis's clock is behind: the new stream's ids are below the cursor
        redis_server.halt()
        redis_server.resume()
        await link.retrying("test", lambda: link.client.xadd(log_key(1), {"c": "c-low", "e": '{"n": "low"}'},
                                                             id="1-0"))
        await eventually(lambda: [e.event["n"] for e in inputs] == ["before", "during", "low"])
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await keeper.stop()
        await link.aclose()
    lines = [r.getMessage() for r in caplog.records if r.name == "cluster.redis_link"]
    assert lines.count("redis unavailable") == lines.count("redis available again")
    assert 1 <= lines.count("redis unavailable") <= 2  # one per outage (the second may go unnoticed)
