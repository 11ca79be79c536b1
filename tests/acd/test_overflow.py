"""Max size, max wait, overflow between queues, unknown and removed queues."""

from __future__ import annotations

from acd import (
    AgentStateChanged,
    AgentStateRequested,
    CallbackRequested,
    CallEnded,
    CancelOffer,
    DialCallback,
    Fallback,
    OfferAccepted,
    OfferFailed,
    Overflow,
    Overflowed,
    QueueConfig,
    Queued,
    Strategy,
)
from tests.acd.floor import Floor, offers


def test_a_call_arriving_at_a_full_queue_goes_straight_to_on_full() -> None:
    floor = Floor(QueueConfig("sales", max_size=2, on_full=Fallback("voicemail")))
    assert floor.call("k1", "sales", 1) == []
    assert floor.call("k2", "sales", 2) == []
    assert floor.call("k3", "sales", 3) == [Overflow("k3", Fallback("voicemail"))]
    assert floor.published(Overflowed) == [Overflowed("k3", "sales", Fallback("voicemail"), "full", 3)]
    assert floor.line() == ["k1", "k2"]


def test_a_call_waiting_max_wait_goes_to_on_timeout() -> None:
    floor = Floor(QueueConfig("sales", max_wait=120, on_timeout=Fallback("ivr", "goodbye"), announce_every=None))
    floor.call("k1", "sales", 10)
    assert floor.engine.next_deadline() == 130
    assert floor.engine.advance(130) == [Overflow("k1", Fallback("ivr", "goodbye"))]
    assert floor.line() == []
    stats = floor.engine.queue_stats("sales", 130)
    assert (stats.answered, stats.abandoned, stats.service_level) == (0, 0, None)


def test_overflow_to_another_queue_keeps_the_original_place() -> None:
    floor = Floor(QueueConfig("sales", max_wait=60, on_timeout=Fallback("queue", "overflow"), announce_every=None),
                  QueueConfig("overflow", skill="general", wrapup=0, announce_every=None),
                  agents={"g": {"general": 1}}, logged_in=False)
    floor.call("k1", "sales", 0)
    floor.call("j1", "overflow", 10)
    floor.call("j2", "overflow", 20, priority=1)
    assert floor.engine.advance(60) == []  # no Overflow action: the engine re-queued it
    assert floor.published(Overflowed)[0] == Overflowed("k1", "sales", Fallback("queue", "overflow"), "timeout", 60)
    assert floor.published(Queued)[-1] == Queued("k1", "overflow", 0, 0, 2, 60, overflowed_from="sales")
    assert floor.line("overflow") == ["j2", "k1", "j1"]  # priority first, then the original enqueue time
    assert offers(floor.available("g", 61)) == [("j2", "g")]
    floor.engine.handle(OfferAccepted("j2", "g", 62))
    assert offers(floor.engine.handle(CallEnded("j2", 63))) == [("k1", "g")]


def test_a_full_overflow_target_applies_its_own_on_full_and_loops_end_in_hangup() -> None:
    a = QueueConfig("a", max_size=1, on_full=Fallback("queue", "b"))
    b = QueueConfig("b", max_size=1, on_full=Fallback("queue", "a"))
    floor = Floor(a, b)
    floor.call("k1", "a", 1)
    floor.call("k2", "a", 2)  # a full -> b
    assert floor.line("b") == ["k2"]
    assert floor.call("k3", "a", 3) == [Overflow("k3", Fallback("hangup"))]  # a full -> b full -> back to a
    assert [e.fallback for e in floor.published(Overflowed) if e.call_id == "k3"] == [
        Fallback("queue", "b"), Fallback("hangup")]


def test_a_call_for_an_unknown_queue_is_hung_up() -> None:
    floor = Floor(QueueConfig("sales"))
    assert floor.call("k1", "nope", 1) == [Overflow("k1", Fallback("hangup"))]
    assert floor.published(Overflowed) == [Overflowed("k1", "nope", Fallback("hangup"), "unknown_queue", 1)]


def test_max_wait_lets_a_ringing_offer_finish_first() -> None:
    floor = Floor(QueueConfig("sales", max_wait=30, ring_timeout=15, on_timeout=Fallback("voicemail")),
                  agents={"a": {"sales": 1}, "b": {"sales": 1}}, logged_in=False)
    floor.call("k1", "sales", 0)
    floor.call("k2", "sales", 1)
    floor.available("a", 20)
    floor.available("b", 21)
    assert floor.engine.advance(30) == []  # k1 rings a: it may still be answered
    floor.engine.handle(OfferAccepted("k1", "a", 32))
    # k2 rang b from 21; its max wait passed at 31: once b declines, it overflows
    assert floor.engine.handle(OfferFailed("k2", "b", 33, "declined")) == [Overflow("k2", Fallback("voicemail"))]


def test_an_agent_removed_while_a_timed_out_call_rings_them_ends_the_ring_before_the_overflow() -> None:
    """Found by the property test: the agent's end (RESERVED -> OFFLINE) is published before the
    call overflows, so whoever follows the events never sees a call move while it rings."""
    floor = Floor(QueueConfig("sales", max_wait=30, ring_timeout=15, on_timeout=Fallback("voicemail")),
                  agents={"a": {"sales": 1}}, logged_in=False)
    floor.call("k1", "sales", 0)
    floor.available("a", 20)
    assert floor.engine.advance(30) == []  # k1 rings a past its max wait
    actions = floor.engine.remove_agent("a", at=31)
    assert CancelOffer("k1", "a") in actions and Overflow("k1", Fallback("voicemail")) in actions
    order = [type(e).__name__ for e in floor.events if isinstance(e, (AgentStateChanged, Overflowed))]
    assert order[-2:] == ["AgentStateChanged", "Overflowed"]


def test_a_timed_out_ring_all_call_rings_nobody_new() -> None:
    floor = Floor(QueueConfig("vip", strategy=Strategy.RING_ALL, max_wait=30, ring_timeout=15),
                  agents={"a": {"vip": 1}, "b": {"vip": 1}}, logged_in=False)
    floor.call("k1", "vip", 0)
    floor.available("a", 20)
    floor.engine.advance(30)
    assert offers(floor.available("b", 31)) == []
    assert floor.engine.advance(35) == [CancelOffer("k1", "a"), Overflow("k1", Fallback("voicemail"))]


def test_removing_a_queue_sends_its_calls_to_on_timeout_and_moves_its_callbacks() -> None:
    floor = Floor(QueueConfig("old", on_timeout=Fallback("queue", "new")), QueueConfig("new", skill="old"),
                  agents={"a": {"old": 1}}, logged_in=False)
    floor.call("k1", "old", 1)
    floor.call("k2", "old", 2)
    floor.engine.handle(CallbackRequested("k1", "5550100", 3))
    floor.engine.handle(AgentStateRequested("a", "available", 4))  # a: dialing k1
    actions = floor.engine.remove_queue("old", at=5)
    assert actions == [CancelOffer("k1", "a"), DialCallback("k1", "a", "5550100")]  # dialed again from "new"
    views = floor.engine.waiting()
    assert [(w.call_id, w.queue, w.is_callback, w.offered_to) for w in views] == [
        ("k1", "new", True, ("a",)), ("k2", "new", False, ())]
