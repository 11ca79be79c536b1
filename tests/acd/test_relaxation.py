"""Relaxation steps widen who may take a call as it waits."""

from __future__ import annotations

from acd import Fallback, QueueConfig, RelaxStep
from tests.acd.floor import Floor, offers


def test_a_lower_proficiency_agent_takes_the_call_only_after_the_step() -> None:
    queue = QueueConfig("sales", min_proficiency=4, relax=(RelaxStep(30, min_proficiency=2),))
    floor = Floor(queue, agents={"junior": {"sales": 2}, "novice": {"sales": 1}})
    assert offers(floor.call("k1", "sales", 100)) == []
    assert floor.engine.next_deadline() == 130
    assert offers(floor.engine.advance(129.9)) == []
    assert offers(floor.engine.advance(130)) == [("k1", "junior")]


def test_steps_are_cumulative_and_add_skills() -> None:
    queue = QueueConfig("sales", min_proficiency=5, relax=(RelaxStep(10, min_proficiency=3),
                                                          RelaxStep(20, add_skills=("support",))))
    floor = Floor(queue, agents={"s3": {"support": 3}, "a2": {"sales": 2}})
    floor.call("k1", "sales", 0)
    assert offers(floor.engine.advance(10)) == []  # sales >= 3 now: a2 (2) is still out
    # the second step adds support at proficiency >= 1, and keeps sales >= 3
    assert offers(floor.engine.advance(20)) == [("k1", "s3")]


def test_an_added_skill_step_with_a_proficiency_applies_it_to_the_added_skill() -> None:
    queue = QueueConfig("sales", relax=(RelaxStep(5, min_proficiency=4, add_skills=("support",)),))
    floor = Floor(queue, agents={"weak": {"support": 3}, "strong": {"support": 4}})
    floor.call("k1", "sales", 0)
    assert offers(floor.engine.advance(5)) == [("k1", "strong")]


def test_a_relaxed_call_does_not_overtake_an_earlier_call_the_agent_could_take() -> None:
    """The earlier call relaxes first, so it is never behind a later one for the same agent."""
    queue = QueueConfig("sales", min_proficiency=3, relax=(RelaxStep(10, min_proficiency=1),))
    floor = Floor(queue, agents={"lead": {"sales": 3}, "junior": {"sales": 1}}, logged_in=False)
    floor.available("junior", 0)
    floor.call("k1", "sales", 1)
    floor.call("k2", "sales", 2)
    assert offers(floor.engine.advance(11)) == [("k1", "junior")]
    assert offers(floor.engine.advance(12)) == []  # k2 relaxed, but junior is ringing for k1
    assert offers(floor.available("lead", 13)) == [("k2", "lead")]


def test_relaxation_counts_from_entering_the_queue() -> None:
    """A call overflowed into a queue starts that queue's steps from its arrival there."""
    first = QueueConfig("first", max_wait=50, on_timeout=Fallback("queue", "second"))
    second = QueueConfig("second", min_proficiency=3, relax=(RelaxStep(20, min_proficiency=1),))
    floor = Floor(first, second, agents={"junior": {"second": 1}})
    floor.call("k1", "first", 0)
    assert offers(floor.engine.advance(50)) == []  # in "second" since 50
    assert offers(floor.engine.advance(69)) == []
    assert offers(floor.engine.advance(70)) == [("k1", "junior")]
