"""Bisimulation of a takeover: an engine restored from a live snapshot (``snapshot(live=True)``
through JSON, ``AcdEngine.restore_live``) and the original, fed the same inputs afterwards,
return the same actions (or refuse alike), publish the same events, answer the same views
and keep equal live snapshots, at every step.

The inputs are the property test's random sequences (``Driver``, with ``Checker`` checking
the rules), plus supervisors' moves and priority changes (refused ones too: they leave
actions for the next ``advance``), day resets and takeovers at random points, a takeover of
a takeover included; every example takes over at least once."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from acd import AcdEngine, AcdEvent, CallMoved, CallPriorityChanged, RequestRefused
from tests.acd.checker import Checker
from tests.acd.test_properties import OPS, QUEUE_NAMES, Driver, Scenario, op, scenarios

INPUTS = frozenset({"handle", "advance", "set_queue", "remove_queue", "set_agent", "remove_agent", "reset_day",
                    "set_chat_policy", "snapshot"})
"""The engine's methods that may change it (``snapshot`` too: both restart snapshots must agree)."""

TAKEOVER_OPS = st.one_of(OPS, *op("priority", 2), *op("move", 2), *op("reset_day"), *op("takeover"))


def through_json(snapshot: dict[str, Any]) -> dict[str, Any]:
    """As the snapshot comes back from PostgreSQL."""
    loaded: dict[str, Any] = json.loads(json.dumps(snapshot, allow_nan=False))
    return loaded


def views(engine: AcdEngine) -> dict[str, Any]:
    """Everything the engine answers without being fed anything."""
    stats: dict[str, Any] = {}
    for name in QUEUE_NAMES:
        try:
            stats[name] = engine.queue_stats(name, engine.now)
        except KeyError:
            stats[name] = None
    return {"now": engine.now, "next_deadline": engine.next_deadline(), "agents": engine.agents(),
            "waiting": engine.waiting(), "stats": stats, "live": engine.snapshot(live=True)}


class Twins:
    """The original engine and the one restored from its live snapshot, fed the same
    inputs; stands in for the engine the driver talks to, answering with the original's."""

    def __init__(self, original: AcdEngine, original_events: list[AcdEvent], restored: AcdEngine,
                 restored_events: list[AcdEvent]) -> None:
        self.original, self.restored = original, restored
        self._published = (original_events, restored_events)
        self.compare()

    def compare(self) -> None:
        assert views(self.restored) == views(self.original)

    def _both(self, method: str, *args: Any, **kwargs: Any) -> Any:
        marks = [len(events) for events in self._published]
        answers: list[tuple[Any, RequestRefused | None]] = []
        for engine in (self.original, self.restored):
            try:
                answers.append((getattr(engine, method)(*args, **kwargs), None))
            except RequestRefused as exc:
                answers.append((None, exc))
        (answer, refused), (restored_answer, restored_refused) = answers
        assert restored_answer == answer, (method, args)
        assert repr(restored_refused) == repr(refused), (method, args)
        original_events, restored_events = (events[mark:] for events, mark in zip(self._published, marks))
        assert restored_events == original_events, (method, args)
        self.compare()
        if refused is not None:
            raise refused
        return answer

    def __getattr__(self, name: str) -> Any:
        """Inputs go to both engines; queries (``agents``, ``waiting``, ``now`` ...) are
        answered by the original, having been compared after every input already."""
        if name in INPUTS:
            return functools.partial(self._both, name)
        return getattr(self.original, name)


class RecordingChecker(Checker):
    def __init__(self) -> None:
        super().__init__()
        self.published: list[AcdEvent] = []

    def on_event(self, event: AcdEvent) -> None:
        self.published.append(event)
        super().on_event(event)


@dataclass
class TakeoverDriver(Driver):
    checker: RecordingChecker = field(default_factory=RecordingChecker)
    twins: Twins | None = None
    takeovers: int = 0

    def take_over(self) -> None:
        """A new owner: restored from the live snapshot of the engine in charge now (the
        last one restored, if any), after which it answers in step with the original. Taken
        as things are: after a refused request, with actions and routing still pending."""
        in_charge = self.twins.restored if self.twins is not None else self.engine
        raw = in_charge.snapshot(live=True)
        snapshot = through_json(raw)
        assert snapshot == raw, "the live snapshot is plain JSON data"
        restored_events: list[AcdEvent] = []
        restored = AcdEngine.restore_live(snapshot, on_event=restored_events.append)
        assert through_json(restored.snapshot(live=True)) == snapshot, "restore, then snapshot: the same"
        assert restored_events == []
        original = self.twins.original if self.twins is not None else self.engine
        self.twins = Twins(original, self.checker.published, restored, restored_events)
        self.engine = cast(AcdEngine, self.twins)
        self.takeovers += 1

    def restored(self, snapshot: dict[str, Any]) -> AcdEngine:
        """After a restart, both engines restart from the (compared) restart snapshot."""
        if self.twins is None:
            return super().restored(snapshot)
        mark = len(self.checker.published)
        original = super().restored(snapshot)
        restored_events: list[AcdEvent] = []
        restored = AcdEngine.restore(snapshot, self.t, on_event=restored_events.append)
        assert restored_events == self.checker.published[mark:]
        self.twins = Twins(original, self.checker.published, restored, restored_events)
        return cast(AcdEngine, self.twins)

    def step(self, kind: str, dt: int, x: int, y: int, payload: Any) -> None:
        if kind not in ("priority", "move", "reset_day", "takeover"):
            super().step(kind, dt, x, y, payload)
            return
        self.t += dt
        if kind == "takeover":
            self.take_over()
        elif kind == "reset_day":
            self.engine.reset_day(self.t)
        elif self.call_ids:  # any call, so that requests are refused too (ended, connected, being dialed)
            call_id = self.pick(self.call_ids, x)
            request = (CallPriorityChanged(call_id, y % 4, self.t) if kind == "priority"
                       else CallMoved(call_id, self.pick(list(QUEUE_NAMES) + ["nowhere"], y), self.t))
            try:
                self.send(request)
            except RequestRefused:
                if x % 2:  # taken over while the actions of the timers it fired are still to come
                    self.take_over()
                self.settle()  # as the adapter does: ``next_deadline`` asks for an advance at once


@settings(max_examples=min(500, settings().max_examples))  # a third of the ci profile: each example is a whole day
@given(scenarios(), st.lists(TAKEOVER_OPS, min_size=20, max_size=80), st.integers(0, 80))
def test_an_engine_restored_from_a_live_snapshot_behaves_exactly_like_the_original(
        scenario: Scenario, ops: list[tuple[str, int, int, int, Any]], first_takeover: int) -> None:
    driver = TakeoverDriver(scenario)
    for i, operation in enumerate(ops):
        if i == first_takeover % len(ops):
            driver.take_over()
        driver.step(*operation)
        assert not driver.checker.violations, (operation, driver.checker.violations)
    driver.drain()
    assert driver.takeovers >= 1
    assert driver.final_checks() == []
