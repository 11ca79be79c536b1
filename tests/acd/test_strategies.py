"""Which free agent a queue's strategy chooses."""

from __future__ import annotations

from acd import (
    AgentState,
    CallEnded,
    CancelOffer,
    Offer,
    OfferAccepted,
    QueueConfig,
    RelaxStep,
    Strategy,
)
from tests.acd.floor import Floor, offers


def serve(floor: Floor, call_id: str, agent_id: str, at: float) -> None:
    """The agent answers at ``at`` and hangs up a second later (wrap-up 0: available again)."""
    floor.engine.handle(OfferAccepted(call_id, agent_id, at))
    floor.engine.handle(CallEnded(call_id, at + 1))


def test_longest_idle_takes_the_agent_available_longest() -> None:
    floor = Floor(QueueConfig("sales", wrapup=0), agents={"a": {"sales": 1}, "b": {"sales": 1}, "c": {"sales": 1}},
                  logged_in=False)
    floor.available("c", 1)
    floor.available("a", 2)
    floor.available("b", 3)
    assert offers(floor.call("k1", "sales", 10)) == [("k1", "c")]
    serve(floor, "k1", "c", 11)  # c is available again from 12: now the most recently idle
    assert offers(floor.call("k2", "sales", 20)) == [("k2", "a")]
    assert offers(floor.call("k3", "sales", 21)) == [("k3", "b")]
    assert offers(floor.call("k4", "sales", 22)) == [("k4", "c")]


def test_fewest_calls_counts_answered_calls_today_then_idle_time() -> None:
    floor = Floor(QueueConfig("sales", strategy=Strategy.FEWEST_CALLS, wrapup=0),
                  agents={"a": {"sales": 1}, "b": {"sales": 1}, "c": {"sales": 1}}, logged_in=False)
    floor.available("a", 1)
    assert offers(floor.call("k1", "sales", 2)) == [("k1", "a")]
    serve(floor, "k1", "a", 3)
    assert offers(floor.call("k2", "sales", 5)) == [("k2", "a")]
    serve(floor, "k2", "a", 6)  # a: 2 calls today
    floor.available("b", 10)
    floor.available("c", 11)
    assert offers(floor.call("k3", "sales", 12)) == [("k3", "b")]  # b and c: 0 calls, b idle longer
    serve(floor, "k3", "b", 13)  # b: 1 call, available again at 14
    assert offers(floor.call("k4", "sales", 20)) == [("k4", "c")]
    serve(floor, "k4", "c", 21)
    # a (2 calls, idle since 7) loses to b and c (1 call each); b has been idle longer than c
    assert offers(floor.call("k5", "sales", 30)) == [("k5", "b")]
    floor.engine.reset_day(40)
    # a new day: everybody at 0 calls, so idle time decides: a (idle since 7) first
    assert offers(floor.call("k6", "sales", 41)) == [("k6", "a")]


def test_round_robin_rotates_through_the_queue_in_agent_order() -> None:
    floor = Floor(QueueConfig("sales", strategy=Strategy.ROUND_ROBIN, wrapup=0),
                  agents={"a": {"sales": 1}, "b": {"sales": 1}, "c": {"sales": 1}}, logged_in=False)
    floor.available("c", 0)  # longest idle would pick c, then b
    floor.available("b", 1)
    floor.available("a", 2)
    chosen = []
    for i, at in enumerate(range(10, 50, 10)):
        (call_id, agent_id), = offers(floor.call(f"k{i}", "sales", at))
        chosen.append(agent_id)
        serve(floor, call_id, agent_id, at + 1)
    assert chosen == ["a", "b", "c", "a"]


def test_round_robin_skips_busy_agents_and_keeps_the_rotation() -> None:
    floor = Floor(QueueConfig("sales", strategy=Strategy.ROUND_ROBIN, wrapup=0),
                  agents={"a": {"sales": 1}, "b": {"sales": 1}, "c": {"sales": 1}})
    assert offers(floor.call("k1", "sales", 1)) == [("k1", "a")]
    assert offers(floor.call("k2", "sales", 2)) == [("k2", "b")]
    serve(floor, "k1", "a", 3)
    assert offers(floor.call("k3", "sales", 5)) == [("k3", "c")]  # after b, not back to a
    assert offers(floor.call("k4", "sales", 6)) == [("k4", "a")]


def test_most_proficient_takes_the_best_then_the_longest_idle() -> None:
    floor = Floor(QueueConfig("sales", strategy=Strategy.MOST_PROFICIENT),
                  agents={"a": {"sales": 2}, "b": {"sales": 5}, "c": {"sales": 5}}, logged_in=False)
    floor.available("a", 0)
    floor.available("c", 1)
    floor.available("b", 2)
    assert offers(floor.call("k1", "sales", 10)) == [("k1", "c")]
    assert offers(floor.call("k2", "sales", 11)) == [("k2", "b")]
    assert offers(floor.call("k3", "sales", 12)) == [("k3", "a")]


def test_most_proficient_ranks_relaxed_in_agents_by_their_queue_skill() -> None:
    queue = QueueConfig("sales", strategy=Strategy.MOST_PROFICIENT, min_proficiency=4,
                        relax=(RelaxStep(10, add_skills=("support",)),))
    floor = Floor(queue, agents={"a": {"support": 3}, "b": {"support": 1, "sales": 2}})
    assert offers(floor.call("k1", "sales", 1)) == []
    assert offers(floor.engine.advance(11)) == [("k1", "b")]  # sales 2 beats no sales at all


def test_ring_all_rings_every_eligible_agent_and_the_first_answer_wins() -> None:
    floor = Floor(QueueConfig("vip", strategy=Strategy.RING_ALL, min_proficiency=2),
                  agents={"a": {"vip": 2}, "b": {"vip": 5}, "c": {"vip": 3}, "d": {"vip": 1}})
    assert sorted(offers(floor.call("k1", "vip", 1))) == [("k1", "a"), ("k1", "b"), ("k1", "c")]
    assert [floor.state(a) for a in "abcd"] == [AgentState.RESERVED] * 3 + [AgentState.AVAILABLE]
    actions = floor.engine.handle(OfferAccepted("k1", "c", 3))
    assert sorted(actions, key=repr) == [CancelOffer("k1", "a"), CancelOffer("k1", "b")]
    assert [floor.state(a) for a in "abc"] == [AgentState.AVAILABLE, AgentState.AVAILABLE, AgentState.ON_CALL]


def test_ring_all_never_rings_an_agent_for_two_calls() -> None:
    floor = Floor(QueueConfig("vip", strategy=Strategy.RING_ALL), agents={"a": {"vip": 1}, "b": {"vip": 1}})
    assert len(offers(floor.call("k1", "vip", 1))) == 2
    assert offers(floor.call("k2", "vip", 2)) == []  # both agents ring for k1
    actions = floor.engine.handle(OfferAccepted("k1", "a", 3))
    assert actions == [CancelOffer("k1", "b"), Offer("k2", "b")]  # b stops ringing for k1, then rings for k2


def test_ring_all_adds_agents_who_become_free_while_it_rings() -> None:
    floor = Floor(QueueConfig("vip", strategy=Strategy.RING_ALL), agents={"a": {"vip": 1}, "b": {"vip": 1}},
                  logged_in=False)
    floor.available("a", 0)
    assert offers(floor.call("k1", "vip", 1)) == [("k1", "a")]
    assert offers(floor.available("b", 2)) == [("k1", "b")]
    assert sorted(floor.engine.waiting()[0].offered_to) == ["a", "b"]
