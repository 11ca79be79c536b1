"""A node process that only beats, for the tests to kill -9: ``python -m tests.cluster.heartbeat_node URL NODE``."""

from __future__ import annotations

import asyncio
import sys
import time

from cluster import UP, Heartbeat, NodeInfo, RedisLink


async def main(url: str, node: str) -> None:
    heartbeat = Heartbeat(RedisLink(url), NodeInfo(node, "127.0.0.1:5060", "http://127.0.0.1:8000", UP,
                                                   time.time_ns() // 1_000_000))
    await heartbeat.start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
