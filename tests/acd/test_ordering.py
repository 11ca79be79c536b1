"""Which call an agent gets: priority, then the original enqueue time, across queues."""

from __future__ import annotations

from acd import CallEnded, OfferAccepted, QueueConfig, RelaxStep
from tests.acd.floor import Floor, offers


def queues(*names: str) -> list[QueueConfig]:
    return [QueueConfig(n, wrapup=0, announce_every=None) for n in names]


def test_a_multi_skilled_agent_takes_the_highest_priority_across_queues() -> None:
    floor = Floor(*queues("sales", "support", "billing"), agents={"a": {"sales": 1, "support": 1, "billing": 1}},
                  logged_in=False)
    floor.call("s1", "sales", 0, priority=1)
    floor.call("b1", "billing", 5, priority=1)
    floor.call("t1", "support", 10, priority=5)
    floor.call("s2", "sales", 15, priority=5)
    actions = floor.available("a", 20)
    taken: list[str] = []
    for at in (30, 40, 50, 60):
        (call_id, _), = offers(actions)
        taken.append(call_id)
        floor.engine.handle(OfferAccepted(call_id, "a", at - 5))
        actions = floor.engine.handle(CallEnded(call_id, at))
    assert taken == ["t1", "s2", "s1", "b1"]


def test_within_a_priority_the_earlier_call_goes_first_whatever_its_queue() -> None:
    floor = Floor(*queues("sales", "support"), agents={"a": {"sales": 1, "support": 1}}, logged_in=False)
    floor.call("s1", "sales", 1)
    floor.call("t1", "support", 2)
    floor.call("s2", "sales", 3)
    assert offers(floor.available("a", 10)) == [("s1", "a")]
    floor.engine.handle(OfferAccepted("s1", "a", 11))
    assert offers(floor.engine.handle(CallEnded("s1", 12))) == [("t1", "a")]


def test_an_agent_only_takes_calls_of_queues_they_qualify_for() -> None:
    floor = Floor(QueueConfig("sales", min_proficiency=3, announce_every=None), *queues("support"),
                  agents={"a": {"sales": 2, "support": 1}}, logged_in=False)
    floor.call("s1", "sales", 0, priority=9)
    floor.call("t1", "support", 5)
    assert offers(floor.available("a", 10)) == [("t1", "a")]


def test_a_call_passed_over_only_while_nobody_could_take_it() -> None:
    """k1 needs proficiency 3 until its relaxation step; a later call the junior can take
    is served meanwhile (k1 was not takeable by the junior), and k1 comes first after."""
    floor = Floor(QueueConfig("sales", min_proficiency=3, relax=(RelaxStep(60, min_proficiency=1),), wrapup=0,
                              announce_every=None),
                  QueueConfig("basic", skill="sales", wrapup=0, announce_every=None),
                  agents={"junior": {"sales": 1}}, logged_in=False)
    floor.call("k1", "sales", 0)
    floor.call("b1", "basic", 10)
    assert offers(floor.available("junior", 20)) == [("b1", "junior")]
    floor.engine.handle(OfferAccepted("b1", "junior", 21))
    floor.call("b2", "basic", 70)
    assert offers(floor.engine.handle(CallEnded("b1", 80))) == [("k1", "junior")]  # relaxed at 60: ahead of b2
