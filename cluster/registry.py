"""The nodes of the cluster: each one's heartbeat, who is alive, and one survivor to reap a dead one.

Redis keys:

- ``cluster:node:{node}``: a hash (``node``, ``sip``, ``http``, ``state``, ``started_at``), with a
  time to live of 3 s that :class:`Heartbeat` renews every second. A node is alive while it exists.
- ``cluster:nodes``: the registry, node -> its :class:`~cluster.liveness.NodeInfo` as JSON, written
  with every beat. It remembers the nodes whose heartbeat lapsed (a heartbeat key leaves no trace),
  so a watcher started after a node died still finds it, until it is reaped.
- ``cluster:reaped:{node}:{started_at}``: the claim on cleaning up after one dead run of a node,
  ``SET NX EX 3600``: exactly one watcher gets it. It then removes the node's registry entry.

:class:`NodeWatcher` looks every 0.5 s (:mod:`cluster.liveness` decides). Keyspace notifications
(``__keyevent@0__:expired``) were not used: Redis sends them when it gets round to expiring a
key, not when its time is up, and a watcher that was disconnected misses them for good; a look
every 0.5 s costs two round trips and cannot miss anything.

**Redis restarted empty**: heartbeats and the registry come back with the nodes' next beats; a
node that died while Redis was away is gone from the registry too, and is reported down by the
watchers that knew it (after their grace, :mod:`cluster.liveness`), one of which reaps it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from cluster.background import Background, every
from cluster.liveness import HEARTBEAT_PERIOD, HEARTBEAT_TTL, STATES, WATCH_PERIOD, Liveness, NodeDown, NodeInfo, NodeUp
from cluster.redis_link import REDIS_ERRORS, RedisLink

logger = logging.getLogger(__name__)

REGISTRY_KEY = "cluster:nodes"
REAP_CLAIM_SECONDS = 3600
"""How long a reap claim is kept: far longer than any watcher's grace."""


def node_key(node: str) -> str:
    return f"cluster:node:{node}"


def reap_key(info: NodeInfo) -> str:
    return f"cluster:reaped:{info.node}:{info.started_at}"


class Heartbeat:
    """Keeps this node's heartbeat key alive (see module); :meth:`set_state` for a drain."""

    def __init__(self, link: RedisLink, info: NodeInfo, period: float = HEARTBEAT_PERIOD,
                 ttl: float = HEARTBEAT_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.link = link
        self.info = info
        self.period = period
        self._ttl_ms = int(ttl * 1000)
        self._ttl = ttl
        self._clock = clock
        self._last_beat: float | None = None
        self._lapse_logged = False
        self._loop = Background()

    async def _beat(self) -> None:
        key = node_key(self.info.node)
        fields: dict[Any, Any] = {"node": self.info.node, "sip": self.info.sip, "http": self.info.http,
                  "state": self.info.state, "started_at": str(self.info.started_at)}
        sent = self._clock()
        try:
            async with asyncio.timeout(self.period):
                async with self.link.client.pipeline(transaction=True) as pipe:
                    pipe.hset(key, mapping=fields)
                    pipe.pexpire(key, self._ttl_ms)
                    pipe.hset(REGISTRY_KEY, self.info.node, self.info.to_json())
                    await pipe.execute()
        except REDIS_ERRORS as exc:
            self.link.failed(exc, "heartbeat")
            if self._last_beat is not None and self._clock() - self._last_beat >= self._ttl and not self._lapse_logged:
                self._lapse_logged = True
                logger.error("heartbeat lapsed: the other nodes take this node for dead",
                             extra={"node": self.info.node})
            return
        self.link.succeeded()
        self._last_beat = sent
        self._lapse_logged = False

    async def start(self) -> None:
        self._loop.start(every(self.period, self._beat), f"heartbeat-{self.info.node}")

    async def set_state(self, state: str) -> None:
        """``draining`` (or ``up``), told to the others with a beat now."""
        if state not in STATES:
            raise ValueError(f"node state {state!r} is not one of {STATES}")
        self.info = replace(self.info, state=state)
        await self._beat()

    async def stop(self) -> None:
        """Stop beating and remove the heartbeat, so that the others see this node gone at their next look."""
        await self._loop.stop()
        try:
            async with asyncio.timeout(self.period):
                await self.link.client.delete(node_key(self.info.node))
        except REDIS_ERRORS:
            logger.info("heartbeat left to lapse", extra={"node": self.info.node})


def _parse(node: str, fields: dict[str, str]) -> NodeInfo | None:
    try:
        info = NodeInfo.from_fields(fields)
        if info.node != node:
            raise ValueError(f"heartbeat of {info.node!r} under {node!r}")
        return info
    except ValueError as exc:
        logger.warning("malformed node heartbeat ignored", extra={"node": node, "error": str(exc)})
        return None


async def read_registry(link: RedisLink) -> tuple[str, dict[str, NodeInfo], dict[str, NodeInfo]]:
    """Redis's ``run_id``, the registry's entries and the heartbeats found (node -> info).
    Raises ``REDIS_ERRORS`` when Redis is away."""
    async with link.client.pipeline(transaction=False) as pipe:
        pipe.info("server")
        pipe.hgetall(REGISTRY_KEY)
        server, entries = await pipe.execute()
    registered: dict[str, NodeInfo] = {}
    for node, text in entries.items():
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        info = _parse(node, value if isinstance(value, dict) else {})
        if info is not None:
            registered[node] = info
    async with link.client.pipeline(transaction=False) as pipe:
        for node in registered:
            pipe.hgetall(node_key(node))
        hashes = await pipe.execute()
    beating: dict[str, NodeInfo] = {}
    for node, fields in zip(registered, hashes, strict=True):
        info = _parse(node, fields) if fields else None
        if info is not None:
            beating[node] = info
    return str(server["run_id"]), registered, beating


async def live_nodes(link: RedisLink) -> list[NodeInfo]:
    """The nodes whose heartbeat is alive now, by name. Raises ``REDIS_ERRORS`` when Redis is away."""
    _, _, beating = await read_registry(link)
    return sorted(beating.values(), key=lambda info: info.node)


class NodeListener(Protocol):
    """Told about the other nodes (on the event loop; must not block)."""

    def node_up(self, info: NodeInfo) -> None:
        """A node appeared, or its heartbeat changed (state ``up`` -> ``draining``)."""

    def node_down(self, info: NodeInfo) -> None:
        """This run of the node is dead (its heartbeat lapsed) or gone (it stopped)."""

    def reap(self, info: NodeInfo) -> None:
        """Clean up after it: called on exactly one surviving node, after :meth:`node_down`."""


_FORGET = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and cjson.decode(v)['started_at'] == tonumber(ARGV[2]) then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""


class NodeWatcher:
    """Looks at the registry every ``period`` and tells its listener (see module)."""

    def __init__(self, link: RedisLink, node: str, listener: NodeListener, period: float = WATCH_PERIOD,
                 ttl: float = HEARTBEAT_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.link = link
        self.node = node
        self.listener = listener
        self.period = period
        self.liveness = Liveness(node, ttl, period)
        self._clock = clock
        self._forget = link.client.register_script(_FORGET)
        self._loop = Background()

    @property
    def alive(self) -> dict[str, NodeInfo]:
        """The other nodes alive as of the last look."""
        return self.liveness.alive

    async def look(self) -> None:
        """One look (the watcher's loop calls it every ``period``)."""
        try:
            async with asyncio.timeout(self.period):
                server, registered, beating = await read_registry(self.link)
        except REDIS_ERRORS as exc:
            self.link.failed(exc, "registry")
            self.liveness.unreachable()
            return
        self.link.succeeded()
        for change in self.liveness.observe(self._clock(), server, registered, beating):
            if isinstance(change, NodeUp):
                logger.info("node up", extra={"node": change.info.node, "state": change.info.state})
                self.listener.node_up(change.info)
            else:
                await self._down(change)

    async def _down(self, change: NodeDown) -> None:
        info = change.info
        logger.warning("node down", extra={"node": info.node, "started_at": info.started_at})
        self.listener.node_down(info)
        try:
            claimed = bool(await self.link.client.set(reap_key(info), self.node, nx=True, ex=REAP_CLAIM_SECONDS))
            if not claimed:  # ours all the same if an earlier answer was lost
                claimed = await self.link.client.get(reap_key(info)) == self.node
            if claimed:
                await self._forget(keys=[REGISTRY_KEY], args=[info.node, info.started_at])
        except REDIS_ERRORS as exc:
            # the claim may not be made: the next look reports it again (it is still registered)
            self.link.failed(exc, "reap claim")
            self.liveness.forget_report(info)
            return
        if claimed:
            logger.info("reaping node", extra={"node": info.node, "started_at": info.started_at})
            self.listener.reap(info)

    async def start(self) -> None:
        self._loop.start(every(self.period, self.look), f"node-watcher-{self.node}")

    async def stop(self) -> None:
        await self._loop.stop()
