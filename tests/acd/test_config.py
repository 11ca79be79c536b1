"""Configuration: validation, live changes, and the engine's clock."""

from __future__ import annotations

from typing import Any

import pytest

from acd import (
    AcdEngine,
    AgentConfig,
    AgentStateRequested,
    CallQueued,
    Fallback,
    OfferFailed,
    QueueConfig,
    Queued,
    RelaxStep,
    Strategy,
)
from tests.acd.floor import Floor, offers


@pytest.mark.parametrize(("build", "message"), [
    (lambda: QueueConfig(""), "name"),
    (lambda: QueueConfig("q", min_proficiency=0), "min_proficiency"),
    (lambda: QueueConfig("q", min_proficiency=6), "min_proficiency"),
    (lambda: QueueConfig("q", relax=(RelaxStep(20), RelaxStep(10))), "ordered"),
    (lambda: QueueConfig("q", max_size=0), "max_size"),
    (lambda: QueueConfig("q", max_wait=0), "max_wait"),
    (lambda: QueueConfig("q", ring_timeout=0), "ring_timeout"),
    (lambda: QueueConfig("q", wrapup=-1), "wrapup"),
    (lambda: QueueConfig("q", announce_every=float("nan")), "announce_every"),
    (lambda: QueueConfig("q", callback_retries=-1), "callback_retries"),
    (lambda: QueueConfig("q", on_timeout=Fallback("queue", "q")), "into itself"),
    (lambda: QueueConfig("q", strategy="fastest"), "fastest"),  # type: ignore[arg-type]
    (lambda: RelaxStep(-1), "after"),
    (lambda: RelaxStep(5, min_proficiency=9), "min_proficiency"),
    (lambda: RelaxStep(5, add_skills="support"), "tuple"),  # type: ignore[arg-type]
    (lambda: Fallback("queue"), "target"),
    (lambda: Fallback("ivr"), "target"),
    (lambda: Fallback("elsewhere"), "kind"),  # type: ignore[arg-type]
    (lambda: AgentConfig("a", {"sales": 6}), "proficiency"),
    (lambda: AgentConfig("", {}), "agent_id"),
    (lambda: CallQueued("k", "q", 100, 0), "priority"),
    (lambda: AgentStateRequested("a", "on_call", 0), "state"),  # type: ignore[arg-type]
    (lambda: OfferFailed("k", "a", 0, "busy"), "reason"),  # type: ignore[arg-type]
])
def test_invalid_values_are_refused_with_a_clear_error(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_the_skill_defaults_to_the_queue_name() -> None:
    assert QueueConfig("sales").skill == "sales"
    assert QueueConfig("sales", skill="en").skill == "en"


def test_a_queue_change_applies_to_waiting_calls_at_once() -> None:
    floor = Floor(QueueConfig("sales", min_proficiency=4, announce_every=None), agents={"junior": {"sales": 2}})
    floor.call("k1", "sales", 0)
    floor.call("k2", "sales", 100)
    relaxed = QueueConfig("sales", min_proficiency=4, relax=(RelaxStep(60, min_proficiency=2),), announce_every=None)
    assert offers(floor.engine.set_queue(relaxed, at=110)) == [("k1", "junior")]  # k1 waited 110 s > 60
    assert floor.engine.next_deadline() == 125  # the ring timeout; k2's step comes at 160


def test_a_skill_change_applies_at_once() -> None:
    floor = Floor(QueueConfig("sales"), QueueConfig("support"), agents={"a": {"sales": 1}})
    floor.call("t1", "support", 0)
    assert offers(floor.engine.set_agent(AgentConfig("a", {"sales": 1, "support": 2}), at=1)) == [("t1", "a")]


def test_new_agents_start_offline_and_reachable() -> None:
    engine = AcdEngine()
    engine.set_agent(AgentConfig("a", {"sales": 1}))
    view, = engine.agents()
    assert (view.state, view.reachable, view.call_id) == ("offline", True, None)


def test_time_never_goes_back() -> None:
    floor = Floor(QueueConfig("sales"))
    floor.call("k1", "sales", 50)
    floor.call("k2", "sales", 40)  # late: counted as arriving at 50, after k1
    assert floor.published(Queued)[-1].enqueued_at == 50
    assert floor.line() == ["k1", "k2"]
    assert floor.engine.now == 50


def test_a_repeated_hand_off_is_ignored() -> None:
    floor = Floor(QueueConfig("sales", strategy=Strategy.RING_ALL))
    floor.call("k1", "sales", 1)
    assert floor.call("k1", "sales", 2) == []
    assert floor.line() == ["k1"]


def test_an_idle_engine_has_no_deadline() -> None:
    assert AcdEngine().next_deadline() is None
    with pytest.raises(TypeError):
        AcdEngine().handle("not an event")  # type: ignore[arg-type]
