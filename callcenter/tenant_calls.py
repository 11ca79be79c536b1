"""Calls in progress per tenant: this node's, and the whole cluster's through Redis.

A tenant's calls are its calls with a carrier: legs through one of its trunks (inbound from it,
or outbound through it), from the record's start to its end. Agents' legs (their phones, another
node's relay) are not counted again: a caller answered by an agent is one call. These counts are
for the wallboard (``calls_in_progress``), the metrics (``callcenter_tenant_calls``) and the
tenant's quota of concurrent calls: the SIP endpoint counts its own calls at each INVITE and adds
:meth:`TenantCalls.elsewhere` (the other nodes', as of the last reading).

Each node counts its own exactly, in memory, with each call's life, and :class:`TenantCalls`
publishes the whole map every ``PUBLISH_PERIOD`` (and soon after a change) as the hash
``cluster:calls:{node}`` (tenant -> calls), replaced at once and living ``TTL`` seconds: a node
that dies stops renewing it and its counts vanish with it; a Redis restarted empty has them all
again within a period. Writing absolute values rather than ``INCR``/``DECR`` makes a repeated or
lost write harmless. The cluster's totals are the sum over the nodes named in
``cluster:calls:nodes``, read back with each publication; on a single node they are this
node's counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

from redis.typing import EncodableT, FieldT

from cluster.redis_link import REDIS_ERRORS, RedisLink

logger = logging.getLogger(__name__)

PUBLISH_PERIOD = 1.0
"""Seconds between two publications of this node's counts (and readings of the others')."""
SETTLE = 0.1
"""A change is published this long after it (a burst of calls: one write)."""
TTL = 5.0
"""Seconds a node's counts live in Redis without being published again."""
NODES_KEY = "cluster:calls:nodes"


def node_key(node: str) -> str:
    return f"cluster:calls:{node}"


class TenantCalls:
    """See module. ``link`` None: a single node (no Redis), the cluster is this node."""

    def __init__(self, node: str | None = None, link: RedisLink | None = None, period: float = PUBLISH_PERIOD,
                 ttl: float = TTL) -> None:
        self.node = node
        self.link = link
        self.period = period
        self.ttl = ttl
        self._local: Counter[int] = Counter()
        self._cluster: dict[int, int] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- counting (on the loop, with each call's record) -------------------------------------
    def started(self, call: Any) -> None:
        """A call began (``sip_bridge.call.Call``: counted if it is a tenant's carrier leg)."""
        if call.tenant_id is not None and call.trunk_id is not None:
            self._local[call.tenant_id] += 1
            self._changed.set()

    def ended(self, call: Any) -> None:
        if call.tenant_id is not None and call.trunk_id is not None and self._local[call.tenant_id] > 0:
            self._local[call.tenant_id] -= 1
            if not self._local[call.tenant_id]:
                del self._local[call.tenant_id]
            self._changed.set()

    # -- reading -----------------------------------------------------------------------------
    def here(self, tenant_id: int) -> int:
        """The tenant's calls on this node now."""
        return self._local.get(tenant_id, 0)

    def elsewhere(self, tenant_id: int) -> int:
        """The tenant's calls on the other nodes, as of the last reading (0 on a single node)."""
        return self._cluster.get(tenant_id, 0)

    def cluster(self, tenant_id: int) -> int:
        """The tenant's calls on every node, as of the last reading (this node's own: now)."""
        return self.elsewhere(tenant_id) + self.here(tenant_id)

    def by_tenant(self) -> dict[int, tuple[int, int]]:
        """tenant -> (calls here, calls in the cluster), for the metrics."""
        tenants = set(self._local) | set(self._cluster)
        return {t: (self.here(t), self.cluster(t)) for t in sorted(tenants)}

    # -- Redis -------------------------------------------------------------------------------
    async def publish(self) -> None:
        """Write this node's counts and read the other nodes' (raises ``REDIS_ERRORS``)."""
        assert self.link is not None and self.node is not None
        key = node_key(self.node)
        counts: dict[FieldT, EncodableT] = {str(t): n for t, n in self._local.items() if n > 0}
        async with self.link.client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            if counts:
                pipe.hset(key, mapping=counts)
                pipe.pexpire(key, int(self.ttl * 1000))
            pipe.sadd(NODES_KEY, self.node)
            pipe.smembers(NODES_KEY)
            replies = await pipe.execute()
        others = sorted(n for n in replies[-1] if n != self.node)
        async with self.link.client.pipeline(transaction=False) as pipe:
            for other in others:
                pipe.hgetall(node_key(other))
            hashes = await pipe.execute()
        totals: Counter[int] = Counter()
        for fields in hashes:
            for tenant, count in fields.items():
                with contextlib.suppress(ValueError):
                    totals[int(tenant)] += int(count)
        self._cluster = dict(totals)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.period)
                await asyncio.sleep(SETTLE)
            self._changed.clear()
            assert self.link is not None
            try:
                async with asyncio.timeout(self.period):
                    await self.publish()
            except REDIS_ERRORS as exc:
                self.link.failed(exc, "tenant calls")
                continue
            self.link.succeeded()

    async def start(self) -> None:
        if self.link is not None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="tenant-calls")

    async def stop(self) -> None:
        """Stop publishing, and take this node's counts out of Redis (a clean stop)."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        assert self.link is not None and self.node is not None
        try:
            async with asyncio.timeout(self.period):
                await self.link.client.delete(node_key(self.node))
        except REDIS_ERRORS:
            pass  # it lapses on its own
