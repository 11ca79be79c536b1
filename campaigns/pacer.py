"""The dialing pacer: how many calls a campaign places now (sans-I/O; time is passed in).

The runner asks ``to_dial(view)`` on every tick with the floor as it stands (agents free and
busy, calls being placed, lines) and tells the pacer what happened: every attempt's outcome
and ring time (``observe_attempt``) and every person call's handle time, talk plus wrap-up
(``observe_handle``).

Modes:

- ``preview``: 0; agents dial themselves.
- ``progressive``: one call per free agent not yet covered by a call being placed. With agents
  that only take this campaign's calls it never abandons anyone.
- ``agentless``: fill the lines; the calls run a flow, not an agent.
- ``predictive``: dial ahead, the way Vicidial's or Amazon Connect's predictive dialers do.

The predictive model, in four steps:

1. Measure over the last ``window`` seconds (30 min): ``p`` the share of calls placed that a
   person answers, ``R`` the mean ring time of those answers and ``H`` the mean handle time.
   The window is long next to a call's ring: outcomes arrive in the order calls end, so a
   burst of calls shows its quick answers before its slow no-answers.
2. Agents expected free when the next calls are answered: ``A = free + busy * min(1, h / H)``
   with the horizon ``h = R + 2 s``, the grace a person waits for an agent (a busy agent's
   remaining handle time is taken as spread evenly over ``H``).
3. Count every call in flight, new or old, as a person with probability ``p``, and add calls
   while the persons expected from all of them, plus ``k`` standard deviations of that
   binomial count, fit in those agents: the largest ``T`` with ``T p + k sqrt(T p (1 - p)) <= A``;
   place ``T - dialing``. The safety margin ``k`` grows from 0 to 3 as the abandon rate of the
   period approaches ``max_abandon_rate``: small teams, whose answers bunch up, settle at a
   higher ``k`` than large ones.
4. Hold the cap by construction, whatever the model says: dialing ahead is only allowed while
   ``abandoned + max(0, dialing - free) <= max_abandon_rate * (person + abandoned)`` over the
   period. ``dialing - free`` is the number of calls that could still be abandoned if every one
   of them were answered at once. The left side never grows between two decisions (an answer
   takes an agent or waits for one, both leave it as it was; an abandon, an agent freed or an
   attempt ended lower it) while the right side only grows, so a period that ends with no call
   in flight ends at or under the cap. Until a few dozen people have answered the budget is
   under one call and the pacer behaves as progressive (it also does with fewer than
   ``min_samples`` recent calls); it backs off to progressive by itself whenever abandons eat
   the budget. The price is a ramp: the budget grows with the people answered, so a large
   team at a low answer rate needs an hour or so before it may dial as far ahead as the
   model wants.

The guarantee assumes that an agent counted free is free for this campaign's calls (agents shared
with inbound queues or other campaigns can be taken between two ticks) and that a period starts
with no call in flight (periods start with the first observation and last ``period`` seconds,
a day by default; calling windows keep nights empty). Abandoned means a person answered and no
agent was free within 2 s (UK Ofcom, US FTC: at most 3 % of live calls over a campaign's day).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal, get_args

Mode = Literal["preview", "progressive", "predictive", "agentless"]
MODES: tuple[Mode, ...] = get_args(Mode)

DIAL_OUTCOMES = frozenset({"person", "abandoned", "machine", "busy", "no_answer", "failed"})
"""Outcomes of a call placed; ``dnc`` and ``invalid`` are contacts skipped without a call."""
SKIPPED_OUTCOMES = frozenset({"dnc", "invalid"})
LIVE_OUTCOMES = frozenset({"person", "abandoned"})
"""A person answered: the calls abandon rates are measured against."""

ABANDON_GRACE = 2.0
"""Seconds an answered person waits for an agent before the call counts as abandoned."""
SAFETY_SIGMAS_CALM = 0.0
"""Predictive margin ``k`` with no abandon yet in the period: the expected persons fill the agents."""
SAFETY_SIGMAS_AT_CAP = 3.0
"""Predictive margin ``k`` once the period's abandon rate reaches the cap."""


@dataclass(frozen=True)
class PacerView:
    """What the runner tells the pacer on each tick.

    ``dialing`` counts the calls placed that have no agent yet: ringing, or answered by a person
    who is waiting (up to the 2 s grace) for an agent. ``max_lines`` is how many such calls the
    campaign may have at once."""

    now: float
    agents_free: int
    agents_busy: int
    dialing: int
    max_lines: int


class _RecentMean:
    """Mean of the samples of the last ``seconds`` (as of the last ``forget``)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.samples: deque[tuple[float, float]] = deque()  # (at, value)
        self.total = 0.0

    def add(self, value: float, at: float) -> None:
        self.samples.append((at, value))
        self.total += value

    def forget(self, now: float) -> None:
        samples = self.samples
        while samples and samples[0][0] < now - self.seconds:
            self.total -= samples.popleft()[1]

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def mean(self) -> float:
        return self.total / len(self.samples) if self.samples else 0.0


class Pacer:
    """Decides how many calls one running campaign places now; see the module docstring."""

    def __init__(self, mode: Mode, *, max_abandon_rate: float = 0.03, period: float = 86_400.0,
                 window: float = 1800.0, min_samples: int = 20) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown pacing mode {mode!r}")
        if not 0.0 <= max_abandon_rate <= 1.0:
            raise ValueError("max_abandon_rate must be between 0 and 1")
        if period <= 0 or window <= 0 or min_samples < 1:
            raise ValueError("period, window and min_samples must be positive")
        self.mode: Mode = mode
        self.max_abandon_rate = max_abandon_rate
        self.period = period
        self.min_samples = min_samples
        self._answers = _RecentMean(window)
        """1.0 for a call a person answered, 0.0 for any other call placed."""
        self._ring = _RecentMean(window)
        """Ring time of the calls a person answered."""
        self._handle = _RecentMean(window)
        self._period_start: float | None = None
        self._live = 0
        self._abandoned = 0

    def observe_attempt(self, outcome: str, *, ring_seconds: float, at: float) -> None:
        """A call placed ended, or was answered by a person (then bridged or abandoned)."""
        if outcome in SKIPPED_OUTCOMES:
            return
        if outcome not in DIAL_OUTCOMES:
            raise ValueError(f"unknown attempt outcome {outcome!r}")
        self._enter_period(at)
        live = outcome in LIVE_OUTCOMES
        self._answers.add(1.0 if live else 0.0, at)
        if live:
            self._ring.add(ring_seconds, at)
            self._live += 1
            self._abandoned += outcome == "abandoned"

    def observe_handle(self, seconds: float, at: float) -> None:
        """An agent is done with a person call: talk plus wrap-up, in seconds."""
        self._enter_period(at)
        self._handle.add(seconds, at)

    @property
    def abandon_rate(self) -> float:
        """Abandoned over person-answered (bridged or abandoned) calls in the current period."""
        return self._abandoned / self._live if self._live else 0.0

    def to_dial(self, view: PacerView) -> int:
        """How many new calls to place now: at least 0, at most ``max_lines - dialing``."""
        self._enter_period(view.now)
        room = max(0, view.max_lines - view.dialing)
        if self.mode == "preview":
            wanted = 0
        elif self.mode == "agentless":
            wanted = room
        elif self.mode == "progressive":
            wanted = view.agents_free - view.dialing
        else:
            wanted = self._predictive(view, room)
        return max(0, min(wanted, room))

    def _predictive(self, view: PacerView, room: int) -> int:
        progressive = view.agents_free - view.dialing
        for measure in (self._answers, self._ring, self._handle):
            measure.forget(view.now)
        p = self._answers.mean
        if len(self._answers) < self.min_samples or not self._handle or p <= 0.0:
            return progressive
        budget = math.floor(self.max_abandon_rate * self._live - self._abandoned + 1e-9)
        ahead_allowed = min(view.agents_free + budget - view.dialing, room)
        if ahead_allowed <= max(progressive, 0):  # always so with a cap of 0
            return progressive
        horizon = self._ring.mean + ABANDON_GRACE
        agents = view.agents_free + view.agents_busy * min(1.0, horizon / max(self._handle.mean, 1e-9))
        pressure = min(1.0, self.abandon_rate / self.max_abandon_rate)
        sigmas = SAFETY_SIGMAS_CALM + (SAFETY_SIGMAS_AT_CAP - SAFETY_SIGMAS_CALM) * pressure
        calls = view.dialing
        while calls - view.dialing < ahead_allowed:
            persons = (calls + 1) * p
            if persons + sigmas * math.sqrt(persons * (1.0 - p)) > agents:
                break
            calls += 1
        return max(progressive, calls - view.dialing)

    def _enter_period(self, now: float) -> None:
        if self._period_start is None:
            self._period_start = now
        elif now - self._period_start >= self.period:
            self._period_start += self.period * math.floor((now - self._period_start) / self.period)
            self._live = self._abandoned = 0
