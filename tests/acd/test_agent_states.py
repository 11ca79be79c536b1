"""Agent states: wrap-up, requests while busy, and the published history."""

from __future__ import annotations

from acd import (
    AgentDeviceChanged,
    AgentState,
    AgentStateChanged,
    AgentStateRequested,
    CallEnded,
    CallerHungUp,
    OfferAccepted,
    QueueConfig,
    WrapUpEnded,
)
from tests.acd.floor import Floor, offers

A = AgentState


def on_call(floor: Floor, at: float = 1) -> None:
    floor.call("k1", "sales", at)
    floor.engine.handle(OfferAccepted("k1", "a", at + 1))


def test_wrap_up_lasts_the_queue_wrapup_then_the_agent_is_available() -> None:
    floor = Floor(QueueConfig("sales", wrapup=30, announce_every=None), agents={"a": {"sales": 1}})
    on_call(floor)
    floor.call("k2", "sales", 5)
    assert floor.engine.handle(CallEnded("k1", 60)) == []
    assert floor.state("a") is A.WRAP_UP
    assert floor.engine.next_deadline() == 90
    assert offers(floor.engine.advance(90)) == [("k2", "a")]
    history = [(e.old, e.new, e.reason, e.at) for e in floor.published(AgentStateChanged)]
    assert history == [(A.OFFLINE, A.AVAILABLE, None, 0), (A.AVAILABLE, A.RESERVED, "offer", 1),
                       (A.RESERVED, A.ON_CALL, "answered", 2), (A.ON_CALL, A.WRAP_UP, "call_ended", 60),
                       (A.WRAP_UP, A.AVAILABLE, "wrap_up_done", 90), (A.AVAILABLE, A.RESERVED, "offer", 90)]


def test_wrap_up_ended_early_frees_the_agent_at_once() -> None:
    floor = Floor(QueueConfig("sales", wrapup=30), agents={"a": {"sales": 1}})
    on_call(floor)
    floor.engine.handle(CallEnded("k1", 10))
    floor.call("k2", "sales", 11)
    assert offers(floor.engine.handle(WrapUpEnded("a", 12))) == [("k2", "a")]
    floor.engine.handle(OfferAccepted("k2", "a", 13))
    assert floor.engine.advance(40) == []  # the cancelled wrap-up timer does nothing
    assert floor.state("a") is A.ON_CALL


def test_asking_for_available_in_wrap_up_ends_it() -> None:
    floor = Floor(QueueConfig("sales", wrapup=30), agents={"a": {"sales": 1}})
    on_call(floor)
    floor.engine.handle(CallEnded("k1", 10))
    floor.available("a", 12)
    assert floor.state("a") is A.AVAILABLE


def test_a_break_asked_for_on_a_call_starts_when_wrap_up_ends() -> None:
    floor = Floor(QueueConfig("sales", wrapup=5), agents={"a": {"sales": 1}})
    on_call(floor)
    floor.engine.handle(AgentStateRequested("a", "break", 3, "lunch"))
    assert floor.state("a") is A.ON_CALL
    floor.engine.handle(CallEnded("k1", 10))
    assert floor.state("a") is A.WRAP_UP
    floor.call("k2", "sales", 11)
    assert floor.engine.advance(15) == []
    assert floor.state("a") is A.BREAK
    assert floor.engine.agents()[0].reason == "lunch"
    assert offers(floor.available("a", 20)) == [("k2", "a")]


def test_asking_for_available_while_busy_cancels_an_earlier_break_request() -> None:
    floor = Floor(QueueConfig("sales", wrapup=0), agents={"a": {"sales": 1}})
    on_call(floor)
    floor.engine.handle(AgentStateRequested("a", "break", 3, "lunch"))
    floor.available("a", 4)  # refused as such (the agent is on a call), but the break is off
    assert floor.state("a") is A.ON_CALL
    floor.engine.handle(CallEnded("k1", 10))
    assert floor.state("a") is A.AVAILABLE  # wrap-up 0: straight back


def test_the_caller_hanging_up_on_a_bridged_call_ends_it() -> None:
    floor = Floor(QueueConfig("sales", wrapup=5), agents={"a": {"sales": 1}})
    on_call(floor)
    floor.engine.handle(CallerHungUp("k1", 8))
    assert floor.state("a") is A.WRAP_UP


def test_break_reasons_are_published_and_changes_of_reason_count() -> None:
    floor = Floor(QueueConfig("sales"), agents={"a": {"sales": 1}})
    floor.engine.handle(AgentStateRequested("a", "break", 1, "lunch"))
    floor.engine.handle(AgentStateRequested("a", "break", 2, "training"))
    floor.engine.handle(AgentStateRequested("a", "break", 3, "training"))  # no change
    floor.engine.handle(AgentStateRequested("a", "offline", 4))
    assert [(e.new, e.reason, e.at) for e in floor.published(AgentStateChanged)][1:] == [
        (A.BREAK, "lunch", 1), (A.BREAK, "training", 2), (A.OFFLINE, None, 4)]
    assert floor.engine.agents()[0].since == 4


def test_an_available_agent_with_an_unreachable_device_is_offered_nothing() -> None:
    floor = Floor(QueueConfig("sales"), agents={"a": {"sales": 1}})
    floor.engine.handle(AgentDeviceChanged("a", False, 1))
    assert offers(floor.call("k1", "sales", 2)) == []
    assert floor.state("a") is A.AVAILABLE
    assert offers(floor.engine.handle(AgentDeviceChanged("a", True, 3))) == [("k1", "a")]


def test_requests_for_unknown_agents_and_calls_are_ignored() -> None:
    floor = Floor(QueueConfig("sales"), agents={"a": {"sales": 1}})
    assert floor.engine.handle(AgentStateRequested("ghost", "available", 1)) == []
    assert floor.engine.handle(CallEnded("ghost-call", 2)) == []
    assert floor.engine.handle(WrapUpEnded("a", 3)) == []  # not in wrap-up
    assert floor.state("a") is A.AVAILABLE
