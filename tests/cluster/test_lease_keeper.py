"""Lease keepers on a real Redis: one owner at a time, growing epochs, and a frozen owner that
finds, when it wakes, that it owns nothing before it acts again."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass, field

from cluster import (
    RELEASED,
    RETRY_PERIOD,
    TTL,
    UNREACHABLE,
    LeaseKeeper,
    MemoryLeases,
    RedisLeases,
    RedisLink,
)
from tests.support.redis import RedisServer

from .conftest import eventually


@dataclass
class Recorder:
    """A listener that writes down what it is told, on a timeline shared by the nodes."""

    node: str
    timeline: list[tuple[float, str, str, int, int]]
    held: dict[int, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def lease_gained(self, tenant: int, epoch: int) -> None:
        self.timeline.append((time.monotonic(), self.node, "gained", tenant, epoch))
        self.held[tenant] = epoch

    def lease_lost(self, tenant: int, epoch: int, reason: str) -> None:
        self.timeline.append((time.monotonic(), self.node, "lost", tenant, epoch))
        self.reasons.append(reason)
        assert self.held.pop(tenant) == epoch


def check_one_owner_at_a_time(timeline: list[tuple[float, str, str, int, int]]) -> dict[int, list[int]]:
    owner: dict[int, str | None] = {}
    epochs: dict[int, list[int]] = {}
    for _, node, what, tenant, epoch in sorted(timeline):
        if what == "gained":
            assert owner.get(tenant) is None, f"{node} gained tenant {tenant} while {owner[tenant]} held it"
            assert not epochs.get(tenant) or epoch > epochs[tenant][-1]
            owner[tenant] = node
            epochs.setdefault(tenant, []).append(epoch)
        else:
            assert owner.get(tenant) == node
            owner[tenant] = None
    return epochs


async def test_two_keepers_competing_never_both_own_a_tenant_and_every_new_owner_has_a_higher_epoch(
        redis_server: RedisServer) -> None:
    timeline: list[tuple[float, str, str, int, int]] = []
    links = {n: RedisLink(redis_server.url) for n in ("a", "b")}
    recorders = {n: Recorder(n, timeline) for n in links}
    keepers = {n: LeaseKeeper(RedisLeases(links[n], n), recorders[n]) for n in links}
    try:
        for keeper in keepers.values():
            for tenant in (1, 2, 3):
                keeper.want(tenant)
            await keeper.start()
        await eventually(lambda: sum(len(r.held) for r in recorders.values()) == 3)
        for _ in range(4):  # hand tenant 1 over, back and forth
            holder = next(n for n, r in recorders.items() if 1 in r.held)
            other = "b" if holder == "a" else "a"
            keepers[holder].drop(1)
            await eventually(lambda: 1 in recorders[other].held)  # noqa: B023
            keepers[holder].want(1)
        # one keeper stops (a drain): the other takes everything
        await keepers["a"].stop()
        await eventually(lambda: len(recorders["b"].held) == 3)
        await asyncio.sleep(TTL)  # renewals go on; nobody else gains anything
    finally:
        for n in links:
            await keepers[n].stop()
            await links[n].aclose()
    epochs = check_one_owner_at_a_time(timeline)
    assert len(epochs[1]) >= 5
    assert set(recorders["a"].reasons) | set(recorders["b"].reasons) == {RELEASED}


def _rival(url: str, tenant: int, stop: threading.Event, gained: queue.Queue[int]) -> None:
    """Another node, in its own thread and event loop: wants ``tenant``, and tells its epoch on gaining it."""

    async def main() -> None:
        link = RedisLink(url)

        class Owner:
            def lease_gained(self, tenant: int, epoch: int) -> None:
                gained.put(epoch)

            def lease_lost(self, tenant: int, epoch: int, reason: str) -> None:
                pass

        keeper = LeaseKeeper(RedisLeases(link, "b"), Owner())
        keeper.want(tenant)
        await keeper.start()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await keeper.stop()
        await link.aclose()

    asyncio.run(main())


async def test_an_owner_frozen_past_its_lease_owns_nothing_when_it_wakes_and_the_next_owner_has_a_higher_epoch(
        redis_server: RedisServer) -> None:
    timeline: list[tuple[float, str, str, int, int]] = []
    link = RedisLink(redis_server.url)
    owner = Recorder("a", timeline)
    keeper = LeaseKeeper(RedisLeases(link, "a"), owner)
    keeper.want(7)
    await keeper.start()
    await eventually(lambda: 7 in owner.held)
    first = owner.held[7]

    stop, gained = threading.Event(), queue.Queue[int]()
    rival = threading.Thread(target=_rival, args=(redis_server.url, 7, stop, gained))
    rival.start()
    try:
        await asyncio.sleep(1.0)
        assert gained.empty()  # a renews: b waits
        # a's whole event loop stops (a GC pause, SIGSTOP, a blocking call): no renewals
        frozen = time.monotonic()
        taken_over = gained.get(timeout=30)
        stalled = time.monotonic() - frozen
        time.sleep(RETRY_PERIOD)
        # a wakes; an owner checks before it acts, and finds out before its keeper's next turn
        assert not keeper.owns(7, first)
        assert taken_over > first  # what b saves carries an epoch above anything a saved
        await eventually(lambda: 7 not in owner.held)
        assert owner.reasons == [UNREACHABLE]
        # a wants the tenant back, and waits for b to let go
        await asyncio.sleep(2 * RETRY_PERIOD)
        assert 7 not in owner.held
        stop.set()
        await eventually(lambda: 7 in owner.held)
        assert owner.held[7] > taken_over
    finally:
        stop.set()
        rival.join(10)
        await keeper.stop()
        await link.aclose()
    print(f"\nfrozen owner: the rival owned the tenant {stalled:.2f} s into the freeze "
          f"(TTL {TTL} s + retry {RETRY_PERIOD} s after a's last renewal)")


async def test_in_single_node_mode_the_keeper_gains_every_tenant_at_once_and_keeps_it() -> None:
    owner = Recorder("solo", [])
    keeper = LeaseKeeper(MemoryLeases("solo"), owner)
    for tenant in (1, 2):
        keeper.want(tenant)
    await keeper.start()
    try:
        await eventually(lambda: owner.held == {1: 1, 2: 1})
        await asyncio.sleep(TTL + 0.5)  # renewed, never lost
        assert owner.held == {1: 1, 2: 1} and owner.reasons == []
    finally:
        await keeper.stop()
    assert owner.held == {} and owner.reasons == [RELEASED, RELEASED]
