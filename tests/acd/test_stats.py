"""Queue statistics, announcements and the waiting list."""

from __future__ import annotations

import pytest

from acd import (
    AgentState,
    AgentStateRequested,
    Announce,
    CallEnded,
    CallerHungUp,
    OfferAccepted,
    QueueConfig,
)
from tests.acd.floor import Floor


def test_queue_stats_count_today_and_the_service_level() -> None:
    floor = Floor(QueueConfig("sales", sl_threshold=20, wrapup=0, announce_every=None),
                  agents={"a": {"sales": 1}, "b": {"sales": 3}, "c": {"support": 1}}, logged_in=False)
    assert floor.engine.queue_stats("sales", 0).service_level is None
    floor.call("k1", "sales", 0)
    floor.call("k2", "sales", 1)
    floor.call("k3", "sales", 2)
    floor.engine.handle(CallerHungUp("k3", 5))
    floor.available("a", 10)
    floor.engine.handle(OfferAccepted("k1", "a", 11))  # waited 11 s: within 20
    floor.engine.handle(CallEnded("k1", 41))
    floor.engine.handle(OfferAccepted("k2", "a", 42))  # waited 41 s
    floor.call("k4", "sales", 50)
    floor.engine.handle(AgentStateRequested("b", "break", 51, "lunch"))
    stats = floor.engine.queue_stats("sales", 60)
    assert (stats.waiting, stats.callbacks, stats.longest_wait) == (1, 0, 10)
    assert (stats.answered, stats.answered_within_sl, stats.abandoned) == (2, 1, 1)
    assert stats.service_level == pytest.approx(1 / 3)
    assert stats.average_handle_time == 30  # the first handled call: 30 s talk, no wrap-up
    assert stats.agents == {AgentState.OFFLINE: 0, AgentState.AVAILABLE: 0, AgentState.RESERVED: 0,
                            AgentState.ON_CALL: 1, AgentState.WRAP_UP: 0, AgentState.BREAK: 1}
    floor.engine.reset_day(86400)
    stats = floor.engine.queue_stats("sales", 86400)
    assert (stats.answered, stats.abandoned, stats.service_level) == (0, 0, None)


def test_announcements_tell_position_and_estimated_wait() -> None:
    floor = Floor(QueueConfig("sales", announce_every=30, wrapup=10),
                  agents={"a": {"sales": 1}, "b": {"sales": 1}}, logged_in=False)
    floor.call("k1", "sales", 0)
    assert floor.engine.advance(30) == [Announce("k1", 1, None)]  # nobody staffed, no history
    floor.available("a", 31)
    floor.engine.handle(OfferAccepted("k1", "a", 32))
    floor.available("b", 33)
    floor.call("x1", "sales", 34)
    floor.engine.handle(OfferAccepted("x1", "b", 35))
    floor.engine.handle(CallEnded("k1", 82))  # handle time: 50 s talk + 10 s wrap-up
    floor.engine.handle(AgentStateRequested("a", "break", 83))  # after wrap-up; then only b is staffed
    floor.call("k2", "sales", 85)
    floor.call("k3", "sales", 86)
    assert floor.engine.advance(116) == [Announce("k2", 1, 60), Announce("k3", 2, 120)]
    assert floor.engine.next_deadline() == 145


def test_no_announcement_while_the_call_rings_an_agent() -> None:
    floor = Floor(QueueConfig("sales", announce_every=10, ring_timeout=15), agents={"a": {"sales": 1}},
                  logged_in=False)
    floor.call("k1", "sales", 0)
    floor.available("a", 5)
    assert floor.engine.advance(10) == []
    assert floor.engine.next_deadline() == 20


def test_waiting_lists_each_queue_in_order() -> None:
    floor = Floor(QueueConfig("sales"), QueueConfig("support"), agents={"a": {"sales": 1}})
    floor.call("k1", "sales", 0)
    floor.call("k2", "sales", 1, priority=3)
    floor.call("t1", "support", 2)
    views = floor.engine.waiting()
    assert [(w.call_id, w.queue, w.priority, w.position, w.offered_to) for w in views] == [
        ("k2", "sales", 3, 1, ()), ("k1", "sales", 0, 2, ("a",)), ("t1", "support", 0, 1, ())]
    assert [w.call_id for w in floor.engine.waiting("support")] == ["t1"]
