"""Configuration changed through one node's API reaches every node of a cluster.

The API reloads its own node at once (trunks, numbers and tenants: the routing table; queues and
agents: the ACD). In a cluster the node that made the change also bumps a counter in Redis
(``cluster:config:{what}``), and every node looks at the counters every :data:`SYNC_PERIOD`
seconds and reloads what changed. A counter, not a message: nothing is missed by a node that was
cut off from Redis for a while, and after Redis restarted empty every node simply reloads once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import DBAPIError

from cluster.background import Background, every
from cluster.redis_link import REDIS_ERRORS, RedisLink

logger = logging.getLogger(__name__)

#: Seconds between looks at the counters: how long a change takes to reach the other nodes.
SYNC_PERIOD = 1.0
KINDS = ("routing", "acd")


def counter_key(what: str) -> str:
    return f"cluster:config:{what}"


class ConfigSync:
    """Tells the other nodes of configuration changes made here, and reloads theirs (see module)."""

    def __init__(self, link: RedisLink, reloads: dict[str, Callable[[], Awaitable[None]]]) -> None:
        self.link = link
        self.reloads = reloads
        self._seen: dict[str, str | None] = {}
        self._task = Background()
        self._bumps: set[asyncio.Task[None]] = set()

    def changed(self, what: str) -> None:
        """This node changed ``what`` (and reloaded it): the others reload it too. On the loop."""
        async def bump() -> None:
            value = await self.link.retrying("config change", lambda: self.link.client.incr(counter_key(what)))
            self._seen[what] = str(value)  # our own change: this node has it already

        task = asyncio.get_running_loop().create_task(bump())
        self._bumps.add(task)
        task.add_done_callback(self._bumps.discard)

    async def _look(self) -> None:
        try:
            values = await self.link.client.mget([counter_key(what) for what in KINDS])
        except REDIS_ERRORS as exc:
            self.link.failed(exc, "config counters")
            return
        self.link.succeeded()
        for what, value in zip(KINDS, values, strict=True):
            value = None if value is None else str(value)
            if what not in self._seen:
                self._seen[what] = value  # the first look: this node loaded everything at start
            elif value != self._seen[what]:
                logger.info("configuration changed on another node: reloading %s", what)
                try:
                    await self.reloads[what]()
                except DBAPIError as exc:  # the database is away: the next look tries again
                    logger.warning("configuration reload waits for the database", extra={
                        "what": what, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"})
                    continue
                self._seen[what] = value

    async def start(self) -> None:
        await self._look()
        self._task.start(every(SYNC_PERIOD, self._look), name="config-sync")

    async def stop(self) -> None:
        await self._task.stop()
        for task in list(self._bumps):
            task.cancel()
