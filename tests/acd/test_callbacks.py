"""Callbacks: the caller leaves, an entry keeps the place and an agent dials them back."""

from __future__ import annotations

from acd import (
    AgentState,
    CallbackAnswered,
    CallbackCompleted,
    CallbackFailed,
    CallbackGaveUp,
    CallbackRequested,
    CallbackRetryScheduled,
    CallbackScheduled,
    CallEnded,
    CallerHungUp,
    CancelOffer,
    DialCallback,
    OfferAccepted,
    QueueConfig,
)
from tests.acd.floor import Floor, offers


def sales(retries: int = 2, retry_delay: float = 60) -> QueueConfig:
    return QueueConfig("sales", announce_every=None, wrapup=0, callback_retries=retries,
                       callback_retry_delay=retry_delay)


def test_a_callback_keeps_the_original_place_in_line() -> None:
    floor = Floor(sales(), agents={"a": {"sales": 1}}, logged_in=False)
    floor.call("k1", "sales", 0)
    floor.call("k2", "sales", 1)
    floor.call("k3", "sales", 2, priority=0)
    assert floor.engine.handle(CallbackRequested("k1", "5550100", 5)) == []
    assert floor.published(CallbackScheduled) == [CallbackScheduled("k1", "sales", "5550100", 5)]
    views = floor.engine.waiting("sales")
    assert [(w.call_id, w.position, w.is_callback, w.enqueued_at) for w in views] == [
        ("k1", 1, True, 0), ("k2", 2, False, 1), ("k3", 3, False, 2)]
    assert floor.available("a", 6) == [DialCallback("k1", "a", "5550100")]
    assert floor.state("a") is AgentState.RESERVED


def test_the_caller_answering_puts_the_agent_on_the_call() -> None:
    floor = Floor(sales(), agents={"a": {"sales": 1}})
    floor.call("k1", "sales", 0)
    floor.engine.handle(CallbackRequested("k1", "5550100", 1))  # a was ringing: cancelled, then dials
    assert floor.engine.handle(CallbackAnswered("k1", 20)) == []
    assert floor.state("a") is AgentState.ON_CALL
    assert floor.published(CallbackCompleted) == [CallbackCompleted("k1", "a", "sales", 20, 1, 20)]
    floor.engine.handle(CallEnded("k1", 80))
    assert floor.state("a") is AgentState.AVAILABLE
    assert floor.line() == []


def test_a_callback_requested_while_ringing_cancels_the_ring_and_dials() -> None:
    floor = Floor(sales(), agents={"a": {"sales": 1}})
    assert offers(floor.call("k1", "sales", 0)) == [("k1", "a")]
    actions = floor.engine.handle(CallbackRequested("k1", "5550100", 1))
    assert actions == [CancelOffer("k1", "a"), DialCallback("k1", "a", "5550100")]


def test_a_caller_who_does_not_answer_is_retried_in_place_then_given_up() -> None:
    floor = Floor(sales(retries=2, retry_delay=60), agents={"a": {"sales": 1}},
                  logged_in=False)
    floor.call("k1", "sales", 0)
    floor.engine.handle(CallbackRequested("k1", "5550100", 1))
    floor.call("k2", "sales", 2)
    assert floor.available("a", 3) == [DialCallback("k1", "a", "5550100")]
    # the caller does not answer: the agent is free at once, the entry sits out 60 s
    assert offers(floor.engine.handle(CallbackFailed("k1", 30))) == [("k2", "a")]
    assert floor.published(CallbackRetryScheduled) == [CallbackRetryScheduled("k1", "sales", 1, 90, 30)]
    floor.engine.handle(OfferAccepted("k2", "a", 31))
    floor.call("k3", "sales", 40)
    floor.engine.handle(CallEnded("k2", 100))  # k1 is back in line by now, ahead of k3
    assert floor.engine.waiting()[0].call_id == "k1"
    floor.engine.handle(CallbackFailed("k1", 110))  # second attempt
    floor.engine.handle(OfferAccepted("k3", "a", 111))
    floor.engine.handle(CallEnded("k3", 200))  # third attempt: dialing again
    assert floor.engine.agents()[0].call_id == "k1"
    assert floor.engine.handle(CallbackFailed("k1", 210)) == []
    assert floor.published(CallbackGaveUp) == [CallbackGaveUp("k1", "sales", 3, "retries_exhausted", 210)]
    assert floor.line() == []
    assert floor.state("a") is AgentState.AVAILABLE


def test_callbacks_neither_time_out_nor_hear_announcements() -> None:
    floor = Floor(QueueConfig("sales", max_wait=30, announce_every=10))
    floor.call("k1", "sales", 0)
    floor.engine.handle(CallbackRequested("k1", "5550100", 5))
    assert floor.engine.next_deadline() is None
    assert floor.engine.advance(1000) == []
    assert floor.line() == ["k1"]


def test_a_hang_up_for_a_callback_entry_cancels_it() -> None:
    floor = Floor(sales(), agents={"a": {"sales": 1}}, logged_in=False)
    floor.call("k1", "sales", 0)
    floor.engine.handle(CallbackRequested("k1", "5550100", 1))
    floor.available("a", 2)
    assert floor.engine.handle(CallerHungUp("k1", 3)) == [CancelOffer("k1", "a")]
    assert floor.published(CallbackGaveUp) == [CallbackGaveUp("k1", "sales", 0, "cancelled", 3)]
    assert floor.state("a") is AgentState.AVAILABLE


def test_an_agent_freed_by_a_callback_request_takes_the_best_call_not_the_callback() -> None:
    """The agent rang for k1; a higher-priority call arrived meanwhile. When k1 becomes a
    callback, the agent (free again) takes the better call and the callback waits."""
    floor = Floor(sales(), QueueConfig("vip", skill="sales", announce_every=None), agents={"a": {"sales": 1}})
    assert offers(floor.call("k1", "sales", 0)) == [("k1", "a")]
    floor.call("v1", "vip", 1, priority=9)
    actions = floor.engine.handle(CallbackRequested("k1", "5550100", 2))
    assert actions[0] == CancelOffer("k1", "a")
    assert offers(actions) == [("v1", "a")]
    assert not any(isinstance(a, DialCallback) for a in actions)
