"""A new owner node takes a tenant's engine over from a live snapshot (``snapshot(live=True)``,
``AcdEngine.restore_live``): calls in every state, agents as they were, timers at their
original deadlines. Each situation is driven on the original and on the restored engine
alike (``Takeover.both``): the answers must be the same, and the expected ones."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from acd import (
    AcdEngine,
    AcdEvent,
    Action,
    AgentDeviceChanged,
    AgentState,
    AgentStateChanged,
    AgentStateRequested,
    Announce,
    Answered,
    CallbackAnswered,
    CallbackCompleted,
    CallbackFailed,
    CallbackRequested,
    CallEnded,
    CallMoved,
    CallPriorityChanged,
    CallQueued,
    CancelOffer,
    DialCallback,
    Fallback,
    Offer,
    OfferAccepted,
    Overflow,
    Overflowed,
    QueueConfig,
    RelaxStep,
    Strategy,
    UnknownQueue,
)
from tests.acd.floor import Floor

A = AgentState
T = TypeVar("T")


class Takeover:
    """The floor's engine (the old owner, had it lived on) and the one a new owner restored
    from its live snapshot through JSON."""

    def __init__(self, floor: Floor) -> None:
        self.floor = floor
        self.snapshot = json.loads(json.dumps(floor.engine.snapshot(live=True)))
        self.events: list[AcdEvent] = []
        self.engine = AcdEngine.restore_live(self.snapshot, on_event=self.events.append)
        self._mark = len(floor.events)

    def both(self, feed: Callable[[AcdEngine], T]) -> T:
        """Feed both engines alike; the same answer, the same events and views, or the test fails."""
        answer = feed(self.engine)
        assert feed(self.floor.engine) == answer
        assert self.floor.events[self._mark:] == self.events
        assert self.floor.engine.agents() == self.engine.agents()
        assert self.floor.engine.waiting() == self.engine.waiting()
        assert self.floor.engine.next_deadline() == self.engine.next_deadline()
        return answer

    def published(self, kind: type[T]) -> list[T]:
        return [e for e in self.events if isinstance(e, kind)]

    def state(self, agent_id: str) -> tuple[AgentState, str | None, float, str | None]:
        view = next(v for v in self.engine.agents() if v.agent_id == agent_id)
        return view.state, view.reason, view.since, view.call_id


def handle(event: Any) -> Callable[[AcdEngine], list[Action]]:
    return lambda engine: engine.handle(event)


def advance(now: float) -> Callable[[AcdEngine], list[Action]]:
    return lambda engine: engine.advance(now)


def changes(takeover: Takeover) -> list[tuple[str, AgentState, AgentState, str | None, float]]:
    return [(e.agent_id, e.old, e.new, e.reason, e.at) for e in takeover.published(AgentStateChanged)]


def sales(**settings: Any) -> QueueConfig:
    return QueueConfig("sales", **{"announce_every": None, "wrapup": 0, **settings})


# -- offers ringing ------------------------------------------------------------------------------

def test_a_call_ringing_an_agent_is_still_ringing_after_takeover_and_times_out_on_time() -> None:
    floor = Floor(sales(ring_timeout=10), agents={"a": {"sales": 1}, "b": {"sales": 1}}, logged_in=False)
    floor.available("a", 0)
    assert floor.call("k1", "sales", 1) == [Offer("k1", "a")]
    floor.available("b", 2)

    takeover = Takeover(floor)
    assert takeover.events == []  # nothing is published on restore
    assert [(w.call_id, w.offered_to) for w in takeover.engine.waiting()] == [("k1", ("a",))]
    assert takeover.state("a") == (A.RESERVED, "offer", 1, "k1")
    assert takeover.engine.next_deadline() == 11  # the original ring timeout, not 10 s after the takeover
    assert takeover.both(advance(10.5)) == []
    assert takeover.both(advance(11)) == [CancelOffer("k1", "a"), Offer("k1", "b")]
    assert changes(takeover) == [("a", A.RESERVED, A.BREAK, "missed", 11), ("b", A.AVAILABLE, A.RESERVED, "offer", 11)]


def test_an_offer_ringing_at_the_takeover_is_answered_on_the_new_owner() -> None:
    floor = Floor(sales(ring_timeout=10, sl_threshold=5), agents={"a": {"sales": 1}})
    floor.call("k1", "sales", 1)
    takeover = Takeover(floor)
    assert takeover.both(handle(OfferAccepted("k1", "a", 4))) == []
    assert takeover.published(Answered) == [Answered("k1", "a", "sales", 3, 4)]
    assert takeover.engine.queue_stats("sales", 4).answered_within_sl == 1
    assert takeover.engine.next_deadline() is None  # the ring timeout was disarmed


def test_a_ring_timeout_that_fell_due_while_no_node_owned_the_engine_fires_at_its_own_time() -> None:
    """The new owner starts later (the old one's lease had to lapse): what fell due meanwhile
    fires at the first input, at its due time, before that input is applied."""
    floor = Floor(sales(ring_timeout=10), agents={"a": {"sales": 1}, "b": {"sales": 1}})
    floor.call("k1", "sales", 1)
    takeover = Takeover(floor)
    assert takeover.both(handle(CallQueued("k2", "sales", 0, 16))) == [CancelOffer("k1", "a"), Offer("k1", "b")]
    assert changes(takeover) == [("a", A.RESERVED, A.BREAK, "missed", 11), ("b", A.AVAILABLE, A.RESERVED, "offer", 11)]
    assert [(w.call_id, w.offered_to) for w in takeover.engine.waiting()] == [("k1", ("b",)), ("k2", ())]


def test_a_ring_all_call_rings_everyone_after_takeover_and_the_first_to_accept_wins() -> None:
    floor = Floor(sales(strategy=Strategy.RING_ALL), agents={"a": {"sales": 1}, "b": {"sales": 1}, "c": {"sales": 1}})
    assert floor.call("k1", "sales", 1) == [Offer("k1", "a"), Offer("k1", "b"), Offer("k1", "c")]
    takeover = Takeover(floor)
    assert takeover.both(handle(OfferAccepted("k1", "b", 3))) == [CancelOffer("k1", "a"), CancelOffer("k1", "c")]
    assert takeover.state("b") == (A.ON_CALL, "answered", 3, "k1")
    assert takeover.state("a")[0] is takeover.state("c")[0] is A.AVAILABLE


def test_an_unreachable_agent_stays_out_of_routing_after_takeover() -> None:
    floor = Floor(sales(), agents={"a": {"sales": 5}, "b": {"sales": 1}})
    floor.engine.handle(AgentDeviceChanged("a", False, 1))
    takeover = Takeover(floor)
    assert takeover.both(handle(CallQueued("k1", "sales", 0, 2))) == [Offer("k1", "b")]
    assert takeover.both(handle(AgentDeviceChanged("a", True, 3))) == []  # available again, nothing waiting


# -- agents at work -------------------------------------------------------------------------------

def test_an_agent_in_wrap_up_is_free_at_the_original_deadline_and_takes_the_next_call() -> None:
    floor = Floor(sales(wrapup=30), agents={"a": {"sales": 1}})
    floor.call("k1", "sales", 1)
    floor.engine.handle(OfferAccepted("k1", "a", 2))
    floor.engine.handle(CallEnded("k1", 5))
    floor.call("k2", "sales", 6)

    takeover = Takeover(floor)
    assert takeover.state("a") == (A.WRAP_UP, "call_ended", 5, "k1")
    assert takeover.engine.next_deadline() == 35
    assert takeover.both(advance(35)) == [Offer("k2", "a")]
    assert changes(takeover)[0] == ("a", A.WRAP_UP, A.AVAILABLE, "wrap_up_done", 35)
    assert takeover.engine.queue_stats("sales", 35).average_handle_time == 33  # talk 3 s + wrap-up 30 s


def test_a_call_connected_at_the_takeover_ends_on_the_new_owner_into_wrap_up() -> None:
    floor = Floor(sales(wrapup=10), agents={"a": {"sales": 1}})
    floor.call("k1", "sales", 1)
    floor.engine.handle(OfferAccepted("k1", "a", 2))
    floor.engine.set_queue(sales(wrapup=99))  # the call keeps the wrap-up it was answered with
    takeover = Takeover(floor)
    assert takeover.both(handle(CallEnded("k1", 20))) == []
    assert takeover.state("a") == (A.WRAP_UP, "call_ended", 20, "k1")
    assert takeover.engine.next_deadline() == 30


def test_a_break_asked_for_during_a_call_starts_when_it_ends_after_takeover() -> None:
    floor = Floor(sales(), agents={"a": {"sales": 1}})
    floor.call("k1", "sales", 1)
    floor.engine.handle(OfferAccepted("k1", "a", 2))
    floor.engine.handle(AgentStateRequested("a", "break", 3, "lunch"))
    takeover = Takeover(floor)
    assert next(v for v in takeover.engine.agents()).pending is A.BREAK
    assert takeover.both(handle(CallEnded("k1", 9))) == []
    assert takeover.state("a") == (A.BREAK, "lunch", 9, None)


# -- waiting callers -------------------------------------------------------------------------------

def test_waiting_callers_keep_their_places_relaxation_and_announcement_rhythm() -> None:
    floor = Floor(sales(announce_every=15, relax=(RelaxStep(20, add_skills=("support",)),)),
                  agents={"s": {"support": 1}})
    for n in range(3):
        floor.call(f"k{n}", "sales", n)
    floor.engine.handle(CallPriorityChanged("k2", 5, 3))
    takeover = Takeover(floor)
    assert [w.call_id for w in takeover.engine.waiting()] == ["k2", "k0", "k1"]
    assert takeover.both(advance(16)) == [Announce("k0", 2, None), Announce("k1", 3, None)]
    assert takeover.both(advance(17)) == [Announce("k2", 1, None)]
    assert takeover.both(advance(19.9)) == []
    assert takeover.both(advance(20)) == [Offer("k0", "s")]  # k0 relaxes at 20 (k2, ahead of it, at 22)


def test_a_call_moved_by_a_supervisor_times_out_counting_from_the_move() -> None:
    floor = Floor(sales(), QueueConfig("support", max_wait=30, on_timeout=Fallback("voicemail"),
                                       announce_every=None))
    floor.call("k1", "sales", 0)
    floor.engine.handle(CallMoved("k1", "support", 10))
    takeover = Takeover(floor)
    assert takeover.engine.next_deadline() == 40
    assert takeover.both(advance(40)) == [Overflow("k1", Fallback("voicemail"))]
    assert takeover.published(Overflowed) == [Overflowed("k1", "support", Fallback("voicemail"), "timeout", 40)]


def test_a_call_whose_max_wait_passed_while_ringing_overflows_when_the_ring_ends() -> None:
    floor = Floor(sales(max_wait=5, ring_timeout=10, on_timeout=Fallback("voicemail")), agents={"a": {"sales": 1}})
    floor.call("k1", "sales", 0)
    floor.engine.advance(6)  # max wait passed while ringing: the offer finishes first
    takeover = Takeover(floor)
    assert takeover.both(advance(10)) == [CancelOffer("k1", "a"), Overflow("k1", Fallback("voicemail"))]


# -- callbacks ------------------------------------------------------------------------------------

def test_a_callback_being_dialed_at_the_takeover_connects_when_answered() -> None:
    floor = Floor(sales(), agents={"a": {"sales": 1}}, logged_in=False)
    floor.call("k1", "sales", 0)
    floor.engine.handle(CallbackRequested("k1", "5550100", 2))
    assert floor.available("a", 3) == [DialCallback("k1", "a", "5550100")]
    takeover = Takeover(floor)
    assert takeover.both(handle(CallbackAnswered("k1", 9))) == []
    assert takeover.published(CallbackCompleted) == [CallbackCompleted("k1", "a", "sales", 9, 1, 9)]


def test_a_callback_waiting_out_its_retry_delay_is_dialed_at_its_original_retry_time() -> None:
    floor = Floor(sales(callback_retry_delay=60), agents={"a": {"sales": 1}}, logged_in=False)
    floor.call("k1", "sales", 0)
    floor.engine.handle(CallbackRequested("k1", "5550100", 2))
    floor.available("a", 3)
    floor.engine.handle(CallbackFailed("k1", 4))  # back at 64
    takeover = Takeover(floor)
    assert [(w.call_id, w.retry_at) for w in takeover.engine.waiting()] == [("k1", 64)]
    assert takeover.both(advance(63)) == []
    assert takeover.both(advance(64)) == [DialCallback("k1", "a", "5550100")]


# -- work not handed out yet -----------------------------------------------------------------------

def test_actions_of_timers_fired_by_a_refused_request_come_out_after_takeover() -> None:
    floor = Floor(sales(ring_timeout=10), agents={"a": {"sales": 1}})
    floor.call("k1", "sales", 0)
    with pytest.raises(UnknownQueue):
        floor.engine.handle(CallMoved("k1", "nowhere", 12))  # the ring timeout at 10 fired first
    takeover = Takeover(floor)
    assert takeover.engine.next_deadline() == 12  # actions are waiting
    assert takeover.both(advance(12)) == [CancelOffer("k1", "a")]
    assert changes(takeover) == [("a", A.RESERVED, A.BREAK, "missed", 10)]


def test_routing_left_pending_by_a_restart_happens_after_takeover() -> None:
    floor = Floor(sales(), agents={"a": {"sales": 1}}, logged_in=False)
    floor.call("k1", "sales", 0)
    floor.engine.handle(CallbackRequested("k1", "5550100", 1))
    floor.available("a", 2)  # dialing k1
    restarted_events: list[AcdEvent] = []
    restarted = AcdEngine.restore(floor.engine.snapshot(), 5, on_event=restarted_events.append)
    floor.engine, floor.events = restarted, restarted_events  # the old owner restarted, then gave the engine up
    takeover = Takeover(floor)
    assert takeover.engine.next_deadline() == 5  # routing is pending
    assert takeover.both(advance(5)) == [DialCallback("k1", "a", "5550100")]


# -- the snapshot itself ---------------------------------------------------------------------------

def test_a_live_snapshot_restored_and_taken_again_is_the_same() -> None:
    floor = Floor(sales(wrapup=10, announce_every=7, max_wait=50, relax=(RelaxStep(5, add_skills=("x",)),)),
                  agents={"a": {"sales": 1}, "b": {"sales": 1}, "c": {"x": 1}})
    for n in range(5):
        floor.call(f"k{n}", "sales", n)
    floor.engine.handle(OfferAccepted("k0", "a", 5))
    floor.engine.handle(CallEnded("k0", 6))
    floor.engine.handle(CallbackRequested("k4", "5550100", 7))
    takeover = Takeover(floor)
    assert json.loads(json.dumps(takeover.engine.snapshot(live=True))) == takeover.snapshot
    assert takeover.snapshot["kind"] == "live" and takeover.snapshot["format"] == 1


def test_a_restart_from_a_live_snapshot_releases_the_work_like_one_from_a_restart_snapshot() -> None:
    floor = Floor(sales(), agents={"a": {"sales": 1}, "b": {"sales": 1}})
    floor.call("k1", "sales", 0)
    floor.call("k2", "sales", 1)
    floor.engine.handle(OfferAccepted("k1", "a", 2))
    floor.engine.handle(CallbackRequested("k2", "5550100", 3))
    from_live: list[AcdEvent] = []
    from_restart: list[AcdEvent] = []
    live = AcdEngine.restore(json.loads(json.dumps(floor.engine.snapshot(live=True))), 50, on_event=from_live.append)
    plain = AcdEngine.restore(json.loads(json.dumps(floor.engine.snapshot())), 50, on_event=from_restart.append)
    assert (live.agents(), live.waiting(), from_live) == (plain.agents(), plain.waiting(), from_restart)
    assert live.advance(50) == plain.advance(50)


def test_restore_live_refuses_a_restart_snapshot_and_says_which_to_use() -> None:
    floor = Floor(sales())
    with pytest.raises(ValueError, match="not a live ACD snapshot.*AcdEngine.restore takes restart snapshots"):
        AcdEngine.restore_live(floor.engine.snapshot())


def test_a_live_snapshot_of_an_unknown_format_is_refused() -> None:
    snapshot = Floor(sales()).engine.snapshot(live=True)
    with pytest.raises(ValueError, match="unknown live ACD snapshot format 2 .this engine reads format 1."):
        AcdEngine.restore_live({**snapshot, "format": 2})
    with pytest.raises(ValueError, match="unknown live ACD snapshot format 2"):
        AcdEngine.restore({**snapshot, "format": 2}, 0)


def test_a_snapshot_of_an_unknown_kind_is_refused() -> None:
    snapshot = Floor(sales()).engine.snapshot(live=True)
    for restore in (lambda s: AcdEngine.restore_live(s), lambda s: AcdEngine.restore(s, 0)):
        with pytest.raises(ValueError, match="unknown ACD snapshot kind 'standby'"):
            restore({**snapshot, "kind": "standby"})


def test_a_malformed_live_snapshot_is_refused_with_what_is_wrong() -> None:
    floor = Floor(sales(), agents={"a": {"sales": 1}})
    floor.call("k1", "sales", 0)
    snapshot = json.loads(json.dumps(floor.engine.snapshot(live=True)))
    del snapshot["calls"][0]["offers"]
    with pytest.raises(ValueError, match="malformed live ACD snapshot: KeyError: 'offers'"):
        AcdEngine.restore_live(snapshot)
