"""Web chats in the ACD: they wait in the queues' lines with the calls, and an agent holds up
to their chat capacity of them at once, staying available."""

from __future__ import annotations

import json
from typing import Any

import pytest

from acd import (
    Abandoned,
    AcdEngine,
    AgentConfig,
    AgentDeviceChanged,
    AgentState,
    AgentStateChanged,
    AgentStateRequested,
    Answered,
    CallbackRequested,
    CallEnded,
    CallerHungUp,
    CallQueued,
    CancelOffer,
    Fallback,
    Offer,
    OfferAccepted,
    Offered,
    OfferFailed,
    Overflow,
    QueueConfig,
    Queued,
    Strategy,
    WrapUpEnded,
)
from tests.acd.floor import Floor, offers
from tests.acd.test_takeover import Takeover, advance, handle

A = AgentState


def web(**settings: Any) -> QueueConfig:
    return QueueConfig("web", **{"announce_every": None, "wrapup": 0, **settings})


def chat_offer(call_id: str, agent_id: str) -> Offer:
    return Offer(call_id, agent_id, "chat")


def test_an_agent_with_capacity_two_gets_two_chats_and_not_a_third() -> None:
    floor = Floor(web(), agents={"a": {"web": 1}}, chat_capacity=2)
    assert floor.chat("c1", "web", 1) == [chat_offer("c1", "a")]
    assert floor.chat("c2", "web", 2) == [chat_offer("c2", "a")]
    assert floor.chat("c3", "web", 3) == []
    assert floor.state("a") is A.AVAILABLE
    assert floor.chats("a") == ("c1", "c2")
    assert floor.published(Offered)[-1] == Offered("c2", "a", "web", 2, channel="chat")
    assert [(w.call_id, w.channel, w.offered_to) for w in floor.engine.waiting()] == [
        ("c1", "chat", ("a",)), ("c2", "chat", ("a",)), ("c3", "chat", ())]
    assert floor.engine.handle(OfferAccepted("c1", "a", 4)) == []
    assert floor.engine.handle(OfferAccepted("c2", "a", 5)) == []
    assert floor.state("a") is A.AVAILABLE and floor.chats("a") == ("c1", "c2")
    assert floor.line() == ["c3"]
    stats = floor.engine.queue_stats("web", 10)
    assert (stats.waiting, stats.waiting_chats, stats.longest_chat_wait) == (0, 1, 7)


def test_a_freed_slot_takes_the_oldest_waiting_chat_at_once() -> None:
    floor = Floor(web(), agents={"a": {"web": 1}}, chat_capacity=1)
    floor.chat("c1", "web", 1)
    floor.engine.handle(OfferAccepted("c1", "a", 2))
    floor.chat("c2", "web", 3)
    floor.chat("c3", "web", 4)
    assert floor.engine.handle(CallEnded("c1", 30)) == [chat_offer("c2", "a")]  # no wrap-up for chats
    assert floor.state("a") is A.AVAILABLE
    assert floor.engine.queue_stats("web", 30).average_handle_time == 28


def test_an_agent_in_chats_gets_no_call_unless_calls_while_chatting() -> None:
    floor = Floor(web(wrapup=10), agents={"a": {"web": 1}}, chat_capacity=2)
    floor.chat("c1", "web", 1)
    floor.engine.handle(OfferAccepted("c1", "a", 2))
    assert floor.call("v1", "web", 3) == []
    assert floor.engine.set_chat_policy(True, at=4) == [Offer("v1", "a")]
    assert floor.state("a") is A.RESERVED
    assert floor.chat("c2", "web", 5) == []  # not available: no new chat
    floor.engine.handle(OfferAccepted("v1", "a", 6))
    floor.engine.handle(CallEnded("v1", 20))
    assert floor.state("a") is A.WRAP_UP and floor.chats("a") == ("c1",)
    assert floor.engine.handle(WrapUpEnded("a", 21)) == [chat_offer("c2", "a")]


def test_with_calls_while_chatting_a_ringing_chat_holds_calls_back_until_answered() -> None:
    floor = Floor(web(), agents={"a": {"web": 1}}, chat_capacity=2, calls_while_chatting=True)
    assert floor.chat("c1", "web", 1) == [chat_offer("c1", "a")]
    assert floor.call("v1", "web", 2) == []  # never rung for a call and a chat at once
    assert floor.engine.handle(OfferAccepted("c1", "a", 3)) == [Offer("v1", "a")]
    assert floor.engine.set_chat_policy(False, at=4) == []  # the offer ringing goes on


def test_an_agent_free_for_both_takes_the_first_entry_in_order() -> None:
    floor = Floor(web(), agents={"a": {"web": 1}}, chat_capacity=2, logged_in=False)
    floor.chat("c1", "web", 1)
    floor.call("v1", "web", 2)
    floor.chat("c2", "web", 3, priority=5)
    assert floor.available("a", 4) == [chat_offer("c2", "a"), chat_offer("c1", "a")]  # then no call: in chats


def test_a_declined_chat_sends_the_agent_to_a_missed_break_and_the_chat_back_in_its_place() -> None:
    floor = Floor(web(), agents={"a": {"web": 1}, "b": {"web": 1}}, chat_capacity=1, logged_in=False)
    floor.available("a", 0)
    floor.chat("c1", "web", 1)
    floor.chat("c2", "web", 2)
    assert floor.engine.handle(OfferFailed("c1", "a", 3, "declined")) == []
    assert (floor.state("a"), floor.chats("a")) == (A.BREAK, ())
    assert floor.published(AgentStateChanged)[-1] == AgentStateChanged("a", A.AVAILABLE, A.BREAK, "missed", 3)
    assert floor.line() == ["c1", "c2"]
    assert floor.available("b", 4) == [chat_offer("c1", "b")]


def test_a_chat_ringing_out_its_ring_timeout_goes_to_the_next_agent() -> None:
    floor = Floor(web(ring_timeout=10), agents={"a": {"web": 1}, "b": {"web": 1}}, chat_capacity=2,
                  logged_in=False)
    floor.available("a", 0)
    floor.available("b", 1)
    assert floor.chat("c1", "web", 2) == [chat_offer("c1", "a")]
    assert floor.chat("c2", "web", 3) == [chat_offer("c2", "b")]  # b holds fewer chats
    assert floor.engine.advance(12) == [CancelOffer("c1", "a"), chat_offer("c1", "b")]
    assert floor.state("a") is A.BREAK and floor.chats("b") == ("c1", "c2")
    # an answer after the ring timeout: the offer had ended
    assert floor.engine.handle(OfferAccepted("c1", "a", 12)) == [CancelOffer("c1", "a")]


def test_chats_count_for_the_service_level_and_their_wait() -> None:
    floor = Floor(web(sl_threshold=20), agents={"a": {"web": 1}}, chat_capacity=1)
    floor.chat("c1", "web", 0)
    floor.chat("c2", "web", 1)
    floor.chat("c3", "web", 2)
    floor.engine.handle(OfferAccepted("c1", "a", 5))
    floor.engine.handle(CallEnded("c1", 40))
    floor.engine.handle(OfferAccepted("c2", "a", 41))
    assert floor.engine.handle(CallerHungUp("c3", 50)) == []
    assert floor.published(Answered) == [Answered("c1", "a", "web", 5, 5, "chat"),
                                         Answered("c2", "a", "web", 40, 41, "chat")]
    assert floor.published(Abandoned) == [Abandoned("c3", "web", 48, 50, "chat")]
    stats = floor.engine.queue_stats("web", 50)
    assert (stats.answered, stats.answered_within_sl, stats.abandoned) == (2, 1, 1)
    assert stats.service_level == pytest.approx(1 / 3)


def test_a_break_applies_at_once_to_an_agent_in_chats_and_cancels_the_chat_ringing() -> None:
    floor = Floor(web(), agents={"a": {"web": 1}}, chat_capacity=2)
    floor.chat("c1", "web", 1)
    floor.engine.handle(OfferAccepted("c1", "a", 2))
    floor.chat("c2", "web", 3)
    actions = floor.engine.handle(AgentStateRequested("a", "break", 4, "lunch"))
    assert actions == [CancelOffer("c2", "a")]
    assert (floor.state("a"), floor.chats("a"), floor.line()) == (A.BREAK, ("c1",), ["c2"])
    assert floor.engine.handle(CallEnded("c1", 5)) == []  # no new chat on a break
    assert floor.available("a", 6) == [chat_offer("c2", "a")]


def test_an_unreachable_device_cancels_chat_offers_and_keeps_connected_chats() -> None:
    floor = Floor(web(), agents={"a": {"web": 1}}, chat_capacity=3)
    floor.chat("c1", "web", 1)
    floor.engine.handle(OfferAccepted("c1", "a", 2))
    floor.chat("c2", "web", 3)
    floor.chat("c3", "web", 4)
    assert floor.engine.handle(OfferFailed("c2", "a", 5, "unreachable")) == [CancelOffer("c3", "a")]
    assert (floor.state("a"), floor.chats("a"), floor.line()) == (A.AVAILABLE, ("c1",), ["c2", "c3"])
    assert floor.engine.handle(AgentDeviceChanged("a", True, 6)) == [chat_offer("c2", "a"), chat_offer("c3", "a")]
    assert floor.engine.handle(AgentDeviceChanged("a", False, 7)) == [CancelOffer("c2", "a"), CancelOffer("c3", "a")]
    assert floor.chats("a") == ("c1",)


def test_removing_an_agent_puts_their_chat_offers_back_in_line_and_forgets_their_chats() -> None:
    floor = Floor(web(), agents={"a": {"web": 1}, "b": {"web": 1}}, chat_capacity=2, logged_in=False)
    floor.available("a", 0)
    floor.chat("c1", "web", 1)
    floor.engine.handle(OfferAccepted("c1", "a", 2))
    floor.chat("c2", "web", 3)
    floor.engine.handle(AgentStateRequested("b", "available", 4))
    assert floor.engine.remove_agent("a", at=5) == [CancelOffer("c2", "a"), chat_offer("c2", "b")]
    assert floor.engine.handle(CallEnded("c1", 6)) == []  # went on without the engine
    floor.engine.set_agent(AgentConfig("a", {"web": 1}, chat_capacity=2), at=7)
    assert floor.available("a", 8) == []
    assert floor.chats("a") == ()


def test_a_capacity_lowered_below_the_load_stops_new_chats_until_under_it() -> None:
    floor = Floor(web(), agents={"a": {"web": 1}}, chat_capacity=2)
    for i, at in ((1, 1), (2, 2)):
        floor.chat(f"c{i}", "web", at)
        floor.engine.handle(OfferAccepted(f"c{i}", "a", at))
    assert floor.engine.set_agent(AgentConfig("a", {"web": 1}, chat_capacity=1), at=3) == []
    floor.chat("c3", "web", 4)
    assert floor.engine.handle(CallEnded("c1", 5)) == []  # 1 held, capacity 1
    assert floor.engine.handle(CallEnded("c2", 6)) == [chat_offer("c3", "a")]
    assert floor.engine.set_agent(AgentConfig("a", {"web": 1}), at=7) == []  # capacity 0: keeps c3 ringing
    assert floor.chats("a") == ("c3",)


def test_longest_idle_gives_a_chat_to_the_agent_with_the_fewest_chats_then_the_longest_since_one_began() -> None:
    floor = Floor(web(), agents={n: {"web": 1} for n in "abc"}, chat_capacity=3, logged_in=False)
    for at, n in enumerate("abc"):
        floor.available(n, at)
    assert [offers(floor.chat(f"c{i}", "web", 10 + i)) for i in range(3)] == [[("c0", "a")], [("c1", "b")],
                                                                              [("c2", "c")]]
    for at, (i, n) in enumerate(((2, "c"), (0, "a"), (1, "b")), start=20):
        floor.engine.handle(OfferAccepted(f"c{i}", n, at))
    # all hold one: the longest since their chat began first, then the one holding fewer
    assert [offers(floor.chat(f"d{i}", "web", 30 + i)) for i in range(3)] == [[("d0", "c")], [("d1", "a")],
                                                                              [("d2", "b")]]


def test_a_ring_all_queue_offers_a_chat_to_one_agent() -> None:
    floor = Floor(web(strategy=Strategy.RING_ALL), agents={"a": {"web": 1}, "b": {"web": 1}}, chat_capacity=1)
    assert floor.chat("c1", "web", 1) == [chat_offer("c1", "a")]
    assert floor.chat("c2", "web", 2) == [chat_offer("c2", "b")]


def test_chats_get_no_announcements_no_callbacks_and_overflow_on_max_wait() -> None:
    floor = Floor(QueueConfig("web", announce_every=5, max_wait=30, on_timeout=Fallback("voicemail")),
                  agents={"a": {"other": 1}}, chat_capacity=1)
    floor.chat("c1", "web", 0)
    assert floor.engine.handle(CallbackRequested("c1", "5550100", 1)) == []
    assert floor.engine.advance(29) == []
    assert floor.engine.advance(30) == [Overflow("c1", Fallback("voicemail"))]


def test_a_chat_for_a_full_queue_overflows_and_keeps_its_channel_when_requeued() -> None:
    floor = Floor(web(max_size=1, on_full=Fallback("queue", "spill")), QueueConfig("spill", announce_every=None))
    floor.chat("c1", "web", 0)
    floor.chat("c2", "web", 1)
    assert floor.published(Queued)[-1] == Queued("c2", "spill", 0, 1, 1, 1, overflowed_from="web", channel="chat")
    assert [w.channel for w in floor.engine.waiting("spill")] == ["chat"]


def test_an_engine_restored_from_a_live_snapshot_carries_on_with_chats_exactly() -> None:
    floor = Floor(web(ring_timeout=10), agents={"a": {"web": 1}, "b": {"web": 1}}, chat_capacity=2,
                  calls_while_chatting=True, logged_in=False)
    floor.available("a", 0)
    floor.chat("c1", "web", 1)
    floor.engine.handle(OfferAccepted("c1", "a", 2))
    floor.chat("c2", "web", 3)  # rings a
    floor.chat("c3", "web", 4)  # waits (capacity), with a call behind it
    floor.call("v1", "web", 5)
    takeover = Takeover(floor)
    assert takeover.both(handle(AgentStateRequested("b", "available", 6))) == [chat_offer("c3", "b")]
    assert takeover.both(advance(13)) == [CancelOffer("c2", "a"), chat_offer("c2", "b")]  # a misses c2
    assert takeover.both(handle(OfferAccepted("c3", "b", 14))) == []  # c2 still rings b: no call
    assert takeover.both(handle(OfferAccepted("c2", "b", 15))) == [Offer("v1", "b")]
    assert takeover.both(handle(CallEnded("c1", 16))) == []  # a is on break
    assert takeover.both(handle(AgentStateRequested("a", "available", 17))) == []
    assert takeover.both(lambda engine: engine.set_chat_policy(False, at=18)) == []
    assert takeover.both(handle(CallQueued("c4", "web", 0, 19, channel="chat"))) == [chat_offer("c4", "a")]
    assert takeover.both(lambda engine: engine.queue_stats("web", 19)).answered == 3
    assert takeover.both(lambda engine: engine.snapshot(live=True))


def test_a_restart_snapshot_drops_chats_and_keeps_capacities_and_the_policy() -> None:
    floor = Floor(web(), agents={"a": {"web": 1}}, chat_capacity=2, calls_while_chatting=True)
    floor.chat("c1", "web", 1)
    floor.engine.handle(OfferAccepted("c1", "a", 2))
    floor.chat("c2", "web", 3)
    floor.chat("c3", "web", 4)
    snapshot = json.loads(json.dumps(floor.engine.snapshot()))
    engine = AcdEngine.restore(snapshot, 10)
    view = engine.agents()[0]
    assert (view.state, view.chats, view.chat_capacity) == (A.AVAILABLE, (), 2)
    assert engine.waiting() == [] and engine.calls_while_chatting
    assert engine.advance(10) == []
    assert engine.handle(CallQueued("c4", "web", 0, 11, channel="chat")) == [chat_offer("c4", "a")]


def test_snapshots_from_before_chats_still_load() -> None:
    floor = Floor(web(), agents={"a": {"web": 1}})
    floor.call("v1", "web", 1)
    for live in (False, True):
        snapshot = json.loads(json.dumps(floor.engine.snapshot(live=live)))
        snapshot.pop("calls_while_chatting")
        for agent in snapshot["agents"]:
            for key in ("chat_capacity", "chats_today", "last_chat_at", "chats", "chat_offers"):
                agent.pop(key, None)
        for entry in snapshot.get("calls", []):
            entry.pop("channel")
        for record in snapshot.get("events", []):
            record.pop("channel", None)
        engine = AcdEngine.restore_live(snapshot) if live else AcdEngine.restore(snapshot, 2)
        assert engine.agents()[0].chat_capacity == 0 and not engine.calls_while_chatting
    restored = AcdEngine.restore_live(snapshot)
    assert [w.channel for w in restored.waiting()] == ["voice"]


def test_a_chat_capacity_must_not_be_negative_and_a_channel_must_be_known() -> None:
    with pytest.raises(ValueError, match="chat_capacity"):
        AgentConfig("a", {}, chat_capacity=-1)
    with pytest.raises(ValueError, match="channel"):
        CallQueued("c1", "web", 0, 0, channel="fax")  # type: ignore[arg-type]
