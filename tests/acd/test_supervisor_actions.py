"""A supervisor's requests: a waiting call's priority, moving it to another queue, and refusals."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from acd import (
    AcdEngine,
    AgentState,
    AgentStateChanged,
    Announce,
    CallbackFailed,
    CallbackRequested,
    CallMoved,
    CallPriorityChanged,
    CancelOffer,
    DialCallback,
    Fallback,
    NotWaiting,
    Offer,
    OfferAccepted,
    OfferFailed,
    Overflow,
    QueueConfig,
    Queued,
    Reason,
    RelaxStep,
    UnknownCall,
    UnknownQueue,
)
from tests.acd.floor import Floor, offers


def sales() -> QueueConfig:
    return QueueConfig("sales", announce_every=None, wrapup=0, callback_retry_delay=60)


def support(**changes: Any) -> QueueConfig:
    return replace(QueueConfig("support", announce_every=None, wrapup=0), **changes)


def test_a_raised_priority_goes_ahead_of_older_calls() -> None:
    floor = Floor(sales(), agents={"a": {"sales": 1}}, logged_in=False)
    for n in range(3):
        floor.call(f"k{n}", "sales", n)
    assert floor.engine.handle(CallPriorityChanged("k2", 5, 10)) == []
    assert floor.line("sales") == ["k2", "k0", "k1"]
    assert floor.published(Queued)[-1] == Queued("k2", "sales", 5, 2, 1, 10)
    view = floor.engine.waiting_call("k2")
    assert (view.queue, view.priority, view.position, view.enqueued_at) == ("sales", 5, 1, 2)
    assert offers(floor.available("a", 11)) == [("k2", "a")]


def test_a_lowered_priority_keeps_seniority_among_its_new_peers() -> None:
    floor = Floor(sales())
    floor.call("k0", "sales", 0, priority=3)
    floor.call("k1", "sales", 1)
    floor.call("k2", "sales", 2)
    floor.engine.handle(CallPriorityChanged("k0", 0, 5))
    assert floor.line("sales") == ["k0", "k1", "k2"]  # enqueued first, so still first among priority 0
    floor.engine.handle(CallPriorityChanged("k1", 1, 6))
    assert floor.line("sales") == ["k1", "k0", "k2"]


def test_the_same_priority_changes_nothing() -> None:
    floor = Floor(sales())
    floor.call("k0", "sales", 0, priority=2)
    published = len(floor.events)
    assert floor.engine.handle(CallPriorityChanged("k0", 2, 5)) == []
    assert len(floor.events) == published


def test_a_ringing_call_keeps_ringing_when_its_priority_changes() -> None:
    floor = Floor(sales(), agents={"a": {"sales": 1}})
    assert offers(floor.call("k0", "sales", 0)) == [("k0", "a")]
    assert floor.engine.handle(CallPriorityChanged("k0", 9, 1)) == []
    assert floor.engine.waiting_call("k0").offered_to == ("a",)
    assert floor.engine.handle(OfferAccepted("k0", "a", 2)) == []
    assert floor.state("a") is AgentState.ON_CALL


def test_a_raised_call_comes_first_across_queues() -> None:
    floor = Floor(sales(), support(), agents={"a": {"sales": 1, "support": 1}}, logged_in=False)
    floor.call("s0", "sales", 0)
    floor.call("t0", "support", 1)
    floor.engine.handle(CallPriorityChanged("t0", 1, 2))
    assert offers(floor.available("a", 3)) == [("t0", "a")]


def test_moving_a_ringing_call_cancels_its_offer_and_queues_it_in_the_target() -> None:
    floor = Floor(sales(), support(), agents={"a": {"sales": 1}})
    assert offers(floor.call("k0", "sales", 0)) == [("k0", "a")]
    assert floor.engine.handle(CallMoved("k0", "support", 3)) == [CancelOffer("k0", "a")]
    assert floor.state("a") is AgentState.AVAILABLE
    assert floor.published(AgentStateChanged)[-1].reason == Reason.OFFER_CANCELLED
    assert floor.line("sales") == [] and floor.line("support") == ["k0"]
    assert floor.published(Queued)[-1] == Queued("k0", "support", 0, 0, 1, 3, moved_from="sales")


def test_a_moved_call_keeps_its_seniority_and_priority_in_the_target() -> None:
    floor = Floor(sales(), support(), agents={"b": {"support": 1}}, logged_in=False)
    floor.call("k0", "sales", 0, priority=1)
    floor.call("t0", "support", 5, priority=1)
    floor.call("t1", "support", 6, priority=2)
    floor.engine.handle(CallMoved("k0", "support", 10))
    assert floor.line("support") == ["t1", "k0", "t0"]
    assert offers(floor.available("b", 11)) == [("t1", "b")]


def test_a_moved_call_is_offered_to_the_target_queues_agents() -> None:
    floor = Floor(sales(), support(), agents={"b": {"support": 1}})
    floor.call("k0", "sales", 0)
    assert offers(floor.engine.handle(CallMoved("k0", "support", 4))) == [("k0", "b")]


def test_the_target_queues_timers_count_from_the_move() -> None:
    target = support(max_wait=30, on_timeout=Fallback("voicemail"), relax=(RelaxStep(10, add_skills=("general",)),))
    floor = Floor(QueueConfig("sales", announce_every=None, max_wait=50, on_timeout=Fallback("hangup")), target,
                  agents={"g": {"general": 1}})
    floor.call("k0", "sales", 0)
    floor.engine.handle(CallMoved("k0", "support", 40))
    assert floor.engine.advance(49.9) == []
    # at 50: not the sales max wait, but support's relaxation (10 s after the move) lets g take it
    assert floor.engine.advance(50) == [Offer("k0", "g")]
    floor.engine.handle(OfferFailed("k0", "g", 51, "declined"))
    assert floor.engine.advance(69.9) == []
    assert floor.engine.advance(70) == [Overflow("k0", Fallback("voicemail"))]  # support's max wait


def test_announcements_follow_the_target_queue() -> None:
    floor = Floor(sales(), support(announce_every=20))
    floor.call("t0", "support", 0)
    floor.call("k0", "sales", 5)
    floor.engine.handle(CallMoved("k0", "support", 10))
    assert floor.engine.advance(25) == [Announce("t0", 1, None)]
    assert floor.engine.advance(29.9) == []
    assert floor.engine.advance(30) == [Announce("k0", 2, None)]


def test_a_full_target_does_not_refuse_a_supervisor() -> None:
    floor = Floor(sales(), support(max_size=1, on_full=Fallback("hangup")))
    floor.call("t0", "support", 0)
    floor.call("k0", "sales", 1)
    assert floor.engine.handle(CallMoved("k0", "support", 2)) == []
    assert floor.line("support") == ["t0", "k0"]


def test_moving_to_the_same_queue_changes_nothing() -> None:
    floor = Floor(sales(), agents={"a": {"sales": 1}})
    floor.call("k0", "sales", 0)
    published = len(floor.events)
    assert floor.engine.handle(CallMoved("k0", "sales", 1)) == []
    assert len(floor.events) == published and floor.engine.waiting_call("k0").offered_to == ("a",)


def test_a_callback_is_moved_and_dialed_by_the_target_queues_agent() -> None:
    floor = Floor(sales(), support(), agents={"a": {"sales": 1}, "b": {"support": 1}}, logged_in=False)
    floor.call("k0", "sales", 0)
    floor.engine.handle(CallbackRequested("k0", "5550100", 1))
    floor.engine.handle(CallPriorityChanged("k0", 4, 2))
    floor.engine.handle(CallMoved("k0", "support", 3))
    view = floor.engine.waiting_call("k0")
    assert (view.queue, view.priority, view.is_callback) == ("support", 4, True)
    assert floor.available("b", 4) == [DialCallback("k0", "b", "5550100")]
    with pytest.raises(NotWaiting):  # being dialed: an agent is reserved for it
        floor.engine.handle(CallMoved("k0", "sales", 5))


def test_a_callback_waiting_out_a_retry_may_be_dialed_at_once_after_a_move() -> None:
    floor = Floor(sales(), support(), agents={"a": {"sales": 1}, "b": {"support": 1}})
    floor.call("k0", "sales", 0)
    assert floor.engine.handle(CallbackRequested("k0", "5550100", 1))[-1] == DialCallback("k0", "a", "5550100")
    floor.engine.handle(CallbackFailed("k0", 2))  # retry at 62
    assert floor.engine.handle(CallMoved("k0", "support", 3)) == [DialCallback("k0", "b", "5550100")]


def test_refusals() -> None:
    floor = Floor(sales(), support(), agents={"a": {"sales": 1}})
    floor.call("k0", "sales", 0)
    floor.engine.handle(OfferAccepted("k0", "a", 1))
    with pytest.raises(UnknownCall):
        floor.engine.handle(CallPriorityChanged("nope", 3, 2))
    with pytest.raises(NotWaiting):
        floor.engine.handle(CallPriorityChanged("k0", 3, 2))
    with pytest.raises(NotWaiting):
        floor.engine.waiting_call("k0")
    with pytest.raises(UnknownCall):
        floor.engine.waiting_call("nope")
    floor.call("k1", "sales", 3)
    with pytest.raises(UnknownQueue):
        floor.engine.handle(CallMoved("k1", "nowhere", 4))
    assert floor.line() == ["k1"]
    with pytest.raises(ValueError):
        CallPriorityChanged("k1", 100, 5)
    with pytest.raises(ValueError):
        CallPriorityChanged("k1", -1, 5)


def test_a_refused_request_leaves_the_timers_actions_for_the_next_advance() -> None:
    floor = Floor(QueueConfig("sales", announce_every=None, max_wait=10, on_timeout=Fallback("hangup")))
    floor.call("k0", "sales", 0)
    with pytest.raises(UnknownCall):  # its max wait came first
        floor.engine.handle(CallMoved("k0", "sales", 10))
    assert floor.engine.next_deadline() == 10
    assert floor.engine.advance(10) == [Overflow("k0", Fallback("hangup"))]
    assert floor.engine.next_deadline() is None


def test_a_moved_and_reprioritised_callback_survives_a_restart() -> None:
    floor = Floor(sales(), support(), logged_in=False)
    for n, at in enumerate((0, 1)):
        floor.call(f"k{n}", "sales", at)
        floor.engine.handle(CallbackRequested(f"k{n}", "5550100", at))
    floor.call("t0", "support", 2)
    floor.engine.handle(CallbackRequested("t0", "5550101", 2))
    floor.engine.handle(CallMoved("k1", "support", 3))
    floor.engine.handle(CallPriorityChanged("t0", 7, 4))
    snapshot = json.loads(json.dumps(floor.engine.snapshot()))
    engine = AcdEngine.restore(snapshot, 5)
    assert [(w.call_id, w.queue, w.priority) for w in engine.waiting()] == [
        ("k0", "sales", 0), ("t0", "support", 7), ("k1", "support", 0)]
