"""Offers that are not answered: ring timeout, decline, unreachable devices, late answers."""

from __future__ import annotations

from acd import (
    AgentDeviceChanged,
    AgentState,
    AgentStateChanged,
    AgentStateRequested,
    CancelOffer,
    Offer,
    OfferAccepted,
    OfferFailed,
    QueueConfig,
    Reason,
)
from tests.acd.floor import Floor, offers


def test_ring_no_answer_sends_the_agent_on_a_missed_break_and_the_call_keeps_its_place() -> None:
    floor = Floor(QueueConfig("sales", ring_timeout=15), agents={"a": {"sales": 1}, "b": {"sales": 1}},
                  logged_in=False)
    floor.available("a", 0)
    assert offers(floor.call("k1", "sales", 1)) == [("k1", "a")]
    floor.call("k2", "sales", 2)
    assert floor.engine.next_deadline() == 16
    assert floor.engine.advance(16) == [CancelOffer("k1", "a")]
    assert floor.state("a") is AgentState.BREAK
    assert floor.engine.agents()[0].reason == "missed"
    assert floor.line() == ["k1", "k2"]
    assert offers(floor.available("b", 20)) == [("k1", "b")]  # k1 first: its place was kept
    missed = [e for e in floor.published(AgentStateChanged) if e.reason == Reason.MISSED]
    assert missed == [AgentStateChanged("a", AgentState.RESERVED, AgentState.BREAK, "missed", 16)]


def test_a_declined_offer_goes_to_the_next_agent_at_once() -> None:
    floor = Floor(QueueConfig("sales"), agents={"a": {"sales": 1}, "b": {"sales": 1}})
    floor.call("k0", "sales", 0)  # a (idle longest by id) rings for k0
    floor.call("k1", "sales", 1)  # b rings for k1
    floor.engine.handle(OfferAccepted("k1", "b", 2))
    actions = floor.engine.handle(OfferFailed("k0", "a", 3, "declined"))
    assert actions == []  # nobody free: a is on a missed break, b on k1
    assert floor.state("a") is AgentState.BREAK
    assert offers(floor.available("a", 4)) == [("k0", "a")]
    assert offers(floor.engine.handle(OfferFailed("k0", "a", 5, "no_answer"))) == []
    assert floor.state("a") is AgentState.BREAK


def test_an_unreachable_device_is_left_out_until_it_is_back() -> None:
    floor = Floor(QueueConfig("sales"), agents={"a": {"sales": 1}, "b": {"sales": 1}})
    floor.engine.handle(AgentStateRequested("b", "break", 0, "coffee"))
    floor.call("k1", "sales", 1)
    assert floor.engine.handle(OfferFailed("k1", "a", 2, "unreachable")) == []
    assert floor.state("a") is AgentState.AVAILABLE  # not the agent's fault: no missed break
    assert floor.engine.agents()[0].reachable is False
    assert floor.line() == ["k1"]
    assert offers(floor.engine.handle(AgentDeviceChanged("a", True, 3))) == [("k1", "a")]


def test_a_device_going_away_while_ringing_cancels_the_offer() -> None:
    floor = Floor(QueueConfig("sales"), agents={"a": {"sales": 1}, "b": {"sales": 1}})
    floor.engine.handle(AgentDeviceChanged("b", False, 0))
    floor.call("k1", "sales", 1)
    floor.engine.handle(AgentDeviceChanged("b", True, 2))
    actions = floor.engine.handle(AgentDeviceChanged("a", False, 3))
    assert actions == [CancelOffer("k1", "a"), Offer("k1", "b")]
    assert floor.state("a") is AgentState.AVAILABLE


def test_an_answer_wins_over_a_ring_timeout_due_by_its_time() -> None:
    """The timer and the answer race in the adapter; the answer was never cancelled, so it stands."""
    floor = Floor(QueueConfig("sales", ring_timeout=15), agents={"a": {"sales": 1}})
    floor.call("k1", "sales", 0)
    assert floor.engine.handle(OfferAccepted("k1", "a", 15.2)) == []
    assert floor.state("a") is AgentState.ON_CALL


def test_an_answer_after_the_offer_was_cancelled_is_refused() -> None:
    floor = Floor(QueueConfig("sales", ring_timeout=15), agents={"a": {"sales": 1}})
    floor.call("k1", "sales", 0)
    assert floor.engine.advance(15) == [CancelOffer("k1", "a")]
    assert floor.engine.handle(OfferAccepted("k1", "a", 16)) == [CancelOffer("k1", "a")]
    assert floor.state("a") is AgentState.BREAK
    assert floor.line() == ["k1"]


def test_an_answer_for_an_offer_never_made_is_refused_before_a_re_offer() -> None:
    """Found by the property test: the answer's own time fires a ring timeout that re-offers
    the call to the very agent the bogus answer names; the refusal must come first."""
    floor = Floor(QueueConfig("sales", ring_timeout=1), agents={"a0": {"sales": 1}, "a1": {"sales": 1}})
    floor.call("k1", "sales", 0)  # rings a0
    actions = floor.engine.handle(OfferAccepted("k1", "a1", 1))
    assert actions == [CancelOffer("k1", "a1"), CancelOffer("k1", "a0"), Offer("k1", "a1")]
    assert (floor.state("a0"), floor.state("a1")) == (AgentState.BREAK, AgentState.RESERVED)


def test_a_break_asked_for_while_ringing_replaces_the_missed_break() -> None:
    floor = Floor(QueueConfig("sales", ring_timeout=10), agents={"a": {"sales": 1}})
    floor.call("k1", "sales", 0)
    floor.engine.handle(AgentStateRequested("a", "offline", 1))
    assert floor.state("a") is AgentState.RESERVED
    assert floor.engine.agents()[0].pending is AgentState.OFFLINE
    floor.engine.advance(10)
    assert floor.state("a") is AgentState.OFFLINE


def test_removing_a_ringing_agent_cancels_the_offer_and_rings_the_next() -> None:
    floor = Floor(QueueConfig("sales"), agents={"a": {"sales": 1}, "b": {"sales": 1}}, logged_in=False)
    floor.available("a", 0)
    floor.call("k1", "sales", 1)
    floor.available("b", 2)
    assert floor.engine.remove_agent("a", at=3) == [CancelOffer("k1", "a"), Offer("k1", "b")]
    assert floor.published(AgentStateChanged)[-2:] == [
        AgentStateChanged("a", AgentState.RESERVED, AgentState.OFFLINE, "removed", 3),
        AgentStateChanged("b", AgentState.AVAILABLE, AgentState.RESERVED, "offer", 3)]
