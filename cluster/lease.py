"""Per-tenant ownership with fencing epochs: the leases in Redis (or in memory) and the keeper that holds them.

The lease of tenant ``t`` is the key ``acd:owner:t`` (:func:`owner_key`) holding
``"{node}:{epoch}"``, set only if absent, with a time to live; the holder extends it by a
compare-and-extend and gives it back by a compare-and-delete (Lua, so nobody else's lease is
ever touched). Each acquisition takes a new epoch from ``acd:owner:t:epoch``: a fencing token,
strictly increasing. The owner acts only while :meth:`LeaseKeeper.owns` holds, and the epoch
is stored with each ACD snapshot it saves, so a late save from an older owner (one that was
paused past its lease) is refused (``callcenter.acd_service``).

**The epoch survives Redis losing its data.** A plain ``INCR`` would start again at 1 after
Redis restarted empty, and the snapshot saved at epoch 7 would refuse the new owner's saves
(epoch 1) for good. The acquisition sets the epoch to ``max(previous + 1, Redis time in
ms)``: strictly increasing while the counter lives, and above every epoch issued before an
empty restart as long as Redis's clock did not go back and fewer than one acquisition a
millisecond happened (there is one every few seconds at most).

:class:`LeaseKeeper` runs :class:`~cluster.lease_schedule.LeaseSchedule` (the timing
decisions, see there) against a :class:`LeaseStore` and tells its listener when a tenant is
gained or lost. ``MemoryLeases`` is the single-node store: every tenant is gained at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from redis.commands.core import AsyncScript

from cluster.background import Background
from cluster.lease_schedule import (
    RELEASED,
    Acquire,
    Gained,
    LeaseSchedule,
    LeaseTiming,
    Lost,
    Release,
    Renew,
)
from cluster.redis_link import REDIS_ERRORS, RedisLink

logger = logging.getLogger(__name__)


def owner_key(tenant: int) -> str:
    """The Redis key of ``tenant``'s ACD lease."""
    return f"acd:owner:{tenant}"


def epoch_of(value: str) -> int | None:
    """The epoch in a lease value ``"{node}:{epoch}"``; None if it has none."""
    _, sep, epoch = value.rpartition(":")
    return int(epoch) if sep and epoch.isdigit() else None


class LeaseStore(Protocol):
    """Leases of one node (``node``) on keys shared by every node."""

    node: str

    async def acquire(self, key: str) -> int | None:
        """The lease on ``key`` with a new epoch if nobody holds it, else None."""

    async def renew(self, key: str, epoch: int) -> bool:
        """Extend our lease (``epoch``) by a full TTL; False if it is not ours any more."""

    async def release(self, key: str, epoch: int) -> bool:
        """Give our lease (``epoch``) back; False if it was not ours any more."""


_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = math.max((tonumber(redis.call('GET', KEYS[2])) or 0) + 1, now)
local text = string.format('%d', epoch)
redis.call('SET', KEYS[2], text)
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. text, 'PX', ARGV[2])
return text
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLeases:
    """:class:`LeaseStore` in Redis (see module). Calls raise ``REDIS_ERRORS`` when Redis is away:
    the keeper decides what that means for the lease."""

    def __init__(self, link: RedisLink, node: str, ttl: float = LeaseTiming().ttl) -> None:
        if ":" in node or not node:
            raise ValueError(f"a node name is not empty and has no ':': {node!r}")
        self.link = link
        self.node = node
        self._ttl_ms = int(ttl * 1000)
        client = link.client
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    async def _call(self, script: AsyncScript, keys: list[str], args: list[str | int]) -> Any:
        try:
            result = await script(keys=keys, args=args)
        except REDIS_ERRORS as exc:
            self.link.failed(exc, "lease")
            raise
        self.link.succeeded()
        return result

    async def acquire(self, key: str) -> int | None:
        epoch = await self._call(self._acquire, [key, f"{key}:epoch"], [self.node, self._ttl_ms])
        return None if epoch is None else int(epoch)

    async def renew(self, key: str, epoch: int) -> bool:
        return bool(await self._call(self._renew, [key], [f"{self.node}:{epoch}", self._ttl_ms]))

    async def release(self, key: str, epoch: int) -> bool:
        return bool(await self._call(self._release, [key], [f"{self.node}:{epoch}"]))


@dataclass
class _Held:
    value: str
    expires: float


class MemoryLeases:
    """:class:`LeaseStore` in this process, same semantics (single-node mode; tests).

    :meth:`for_node` gives another node's view of the same leases."""

    def __init__(self, node: str, ttl: float = LeaseTiming().ttl,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.node = node
        self._ttl = ttl
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._epochs: dict[str, int] = {}

    def for_node(self, node: str) -> MemoryLeases:
        other = MemoryLeases(node, self._ttl, self._clock)
        other._held, other._epochs = self._held, self._epochs
        return other

    def value(self, key: str) -> str | None:
        """The lease's value ``"{node}:{epoch}"`` if it is held."""
        held = self._held.get(key)
        if held is not None and self._clock() >= held.expires:
            del self._held[key]
            held = None
        return None if held is None else held.value

    def _ours(self, key: str, epoch: int) -> bool:
        return self.value(key) == f"{self.node}:{epoch}"

    async def acquire(self, key: str) -> int | None:
        if self.value(key) is not None:
            return None
        epoch = self._epochs[key] = self._epochs.get(key, 0) + 1
        self._held[key] = _Held(f"{self.node}:{epoch}", self._clock() + self._ttl)
        return epoch

    async def renew(self, key: str, epoch: int) -> bool:
        if not self._ours(key, epoch):
            return False
        self._held[key].expires = self._clock() + self._ttl
        return True

    async def release(self, key: str, epoch: int) -> bool:
        if not self._ours(key, epoch):
            return False
        del self._held[key]
        return True


class LeaseListener(Protocol):
    """Who acts as owner. Called on the event loop; must not block."""

    def lease_gained(self, tenant: int, epoch: int) -> None:
        """``tenant`` is ours from now, under ``epoch`` (stored with what the owner saves)."""

    def lease_lost(self, tenant: int, epoch: int, reason: str) -> None:
        """Stop acting as owner of ``tenant`` now (``reason``: see :mod:`cluster.lease_schedule`)."""


class LeaseKeeper:
    """Holds the leases of the tenants it is told to want, renews them, reports gains and losses.

    Every request is bounded by the timing's ``request_timeout``; a loss is reported at the
    renew deadline whether or not Redis answers by then. Before acting as owner after any
    ``await``, check :meth:`owns` (it reads the clock, so a process that was paused finds out
    before its first action, not at the keeper's next turn)."""

    def __init__(self, store: LeaseStore, listener: LeaseListener, timing: LeaseTiming | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.listener = listener
        self.schedule = LeaseSchedule(timing)
        self._clock = clock
        self._wake = asyncio.Event()
        self._loop = Background()
        self._requests: set[asyncio.Task[None]] = set()

    def want(self, tenant: int) -> None:
        self.schedule.want(tenant, self._clock())
        self._wake.set()

    def drop(self, tenant: int) -> None:
        """Stop wanting ``tenant``: the listener hears it lost (``released``) before this returns."""
        self.schedule.drop(tenant, self._clock())
        self._carry_out()

    def owns(self, tenant: int, epoch: int) -> bool:
        return self.schedule.owns(tenant, epoch, self._clock())

    @property
    def held(self) -> dict[int, int]:
        return self.schedule.held

    async def start(self) -> None:
        self._loop.start(self._run(), f"lease-keeper-{self.store.node}")

    async def stop(self) -> None:
        """Give up every lease (the listener hears each held one lost first), release them, stop."""
        await self._loop.stop()
        for tenant in self.schedule.wanted:
            self.schedule.drop(tenant, self._clock())
        # twice: acquisitions still in flight answer into releases
        for _ in range(2):
            self._carry_out()
            if self._requests:
                await asyncio.wait(self._requests, timeout=self.schedule.timing.request_timeout * 2)
        for task in self._requests:
            task.cancel()

    async def _run(self) -> None:
        while True:
            self._carry_out()
            wake = self.schedule.next_wakeup()
            self._wake.clear()
            delay = None if wake is None else max(0.0, wake - self._clock())
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation (stop())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _carry_out(self) -> None:
        for out in self.schedule.poll(self._clock()):
            if isinstance(out, Gained | Lost):
                self._tell(out)
            else:
                task = asyncio.create_task(self._request(out))
                self._requests.add(task)
                task.add_done_callback(self._requests.discard)

    def _tell(self, out: Gained | Lost) -> None:
        extra = {"tenant_id": out.tenant, "epoch": out.epoch, "node": self.store.node}
        try:
            if isinstance(out, Gained):
                logger.info("lease gained", extra=extra)
                self.listener.lease_gained(out.tenant, out.epoch)
            else:
                log = logger.info if out.reason == RELEASED else logger.warning
                log("lease lost", extra={**extra, "reason": out.reason})
                self.listener.lease_lost(out.tenant, out.epoch, out.reason)
        except Exception:
            # a listener's bug must not stop the renewals of every other lease
            logger.exception("lease listener failed", extra=extra)

    async def _request(self, out: Acquire | Renew | Release) -> None:
        key = owner_key(out.tenant)
        try:
            async with asyncio.timeout(self.schedule.timing.request_timeout):
                if isinstance(out, Acquire):
                    epoch = await self.store.acquire(key)
                elif isinstance(out, Renew):
                    ok = await self.store.renew(key, out.epoch)
                else:
                    await self.store.release(key, out.epoch)
                    return
        except Exception as exc:  # also a refusal (READONLY after a failover, OOM): no answer either way
            if not isinstance(exc, REDIS_ERRORS):
                logger.warning("lease request refused", extra={"tenant_id": out.tenant, "error": repr(exc)})
            if isinstance(out, Release):
                logger.debug("lease not released (it lapses by itself)",
                             extra={"tenant_id": out.tenant, "error": repr(exc)})
                return
            self.schedule.failed(out.attempt, self._clock())
        else:
            if isinstance(out, Acquire):
                self.schedule.acquired(out.attempt, epoch, self._clock())
            else:
                self.schedule.renewed(out.attempt, ok, self._clock())
        self._wake.set()
