"""The in-process event bus: per-tenant delivery, bounded queues."""

from __future__ import annotations

from acd import Queued
from callcenter.bus import EventBus


async def test_subscribers_get_only_their_tenants_events_in_order() -> None:
    bus = EventBus()
    async with bus.subscribe(1) as alpha, bus.subscribe(2) as beta:
        first = Queued(call_id="a", queue="sales", priority=0, enqueued_at=1.0, position=1, at=1.0)
        second = Queued(call_id="b", queue="sales", priority=5, enqueued_at=2.0, position=1, at=2.0)
        bus.publish(1, first)
        bus.publish(2, Queued(call_id="x", queue="support", priority=0, enqueued_at=1.5, position=1, at=1.5))
        bus.publish(1, second)
        assert [await alpha.get(), await alpha.get()] == [first, second]
        assert (await beta.get()).call_id == "x" and alpha.queue.empty()
    bus.publish(1, first)  # nobody listens any more: nothing kept


async def test_a_slow_subscriber_loses_its_oldest_events_not_the_publisher() -> None:
    bus = EventBus()
    async with bus.subscribe(1) as slow:
        for i in range(10_005):
            bus.publish(1, i)
        assert slow.dropped == 5 and await slow.get() == 5
