"""A campaign day as a seeded discrete-event simulation driving a ``Pacer``.

Agents take only this campaign's calls, all day. Every tick (0.5 s) the pacer is shown the floor
and the simulation places the calls it asks for, each to the next contact due: a retry whose
delay has passed first, else a fresh contact. Each attempt is answered by a person, answered by
a machine (the line is held while answering-machine detection decides), busy, or rings until
the no-answer timeout. A person is bridged to a free agent, persons waiting for one first come
first served; one who finds none within 2 s is abandoned. A bridged call talks, then its agent wraps up and takes the next person.
Outcomes and handle times are fed back to the pacer as the runner would. After the day no new
call is placed and the calls in flight run to their end, so every abandon is counted.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from dataclasses import dataclass

from .pacer import ABANDON_GRACE, Pacer, PacerView

# event kinds, in the order they are handled when they share an instant
_AGENT_FREE, _PERSON_ANSWERS, _GRACE_ENDS, _ATTEMPT_ENDS, _TALK_ENDS = range(5)


@dataclass(frozen=True)
class Day:
    """The campaign day to simulate; times in seconds, ranges drawn uniformly."""

    agents: int
    answer_rate: float
    """Share of attempts a person answers."""
    machine_rate: float = 0.0
    busy_rate: float = 0.0
    hours: float = 8.0
    ring_seconds: tuple[float, float] = (3.0, 20.0)
    """From dialing to the answer of a person or machine."""
    no_answer_timeout: float = 30.0
    busy_seconds: tuple[float, float] = (1.0, 4.0)
    machine_detection_seconds: float = 4.0
    talk_seconds: tuple[float, float] = (30.0, 180.0)
    wrap_seconds: float = 10.0
    max_lines: int | None = None
    """Calls being placed at once; ``None``: four per agent."""
    contacts: int | None = None
    """Size of the list; ``None``: never runs out."""
    max_attempts: int = 3
    retry_after: float = 1800.0
    tick: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.agents < 1 or not 0.0 <= self.answer_rate + self.machine_rate + self.busy_rate <= 1.0:
            raise ValueError("a day needs agents and answer, machine and busy rates that sum to at most 1")


@dataclass(frozen=True)
class DayReport:
    """What a simulated day did."""

    calls: int
    persons: int
    """Person-answered calls: bridged to an agent or abandoned."""
    abandoned: int
    machines: int
    talk_seconds: float
    logged_seconds: float
    """Agents times the time from the start to the last call's end (or wrap-up's)."""
    max_calls_per_contact: int
    """Most calls to one contact at the same time."""
    hours: float

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.persons if self.persons else 0.0

    @property
    def occupancy(self) -> float:
        """Talk time over logged time."""
        return self.talk_seconds / self.logged_seconds if self.logged_seconds else 0.0

    @property
    def dialed_per_hour(self) -> float:
        return self.calls / self.hours


def simulate(pacer: Pacer, day: Day) -> DayReport:
    """Run ``day`` with ``pacer`` deciding how many calls to place on each tick."""
    floor = _Floor(pacer, day)
    end = day.hours * 3600.0
    for tick in itertools.count():
        now = tick * day.tick
        if now >= end:
            break
        floor.run_until(now)
        wanted = pacer.to_dial(PacerView(now, floor.free, day.agents - floor.free, floor.dialing, floor.max_lines))
        if wanted < 0 or floor.dialing + wanted > floor.max_lines:
            raise ValueError(f"the pacer asked for {wanted} calls with {floor.dialing} of {floor.max_lines} lines used")
        for _ in range(wanted):
            floor.dial(now)
    floor.run_until(float("inf"))
    return DayReport(
        calls=floor.calls, persons=floor.persons, abandoned=floor.abandoned, machines=floor.machines,
        talk_seconds=floor.talk_seconds, logged_seconds=day.agents * max(end, floor.last_event),
        max_calls_per_contact=floor.max_calls_per_contact, hours=day.hours)


class _Floor:
    """The contacts, lines and agents around the pacer, and the events still to come."""

    def __init__(self, pacer: Pacer, day: Day) -> None:
        self.pacer = pacer
        self.day = day
        self.rng = random.Random(day.seed)
        self.max_lines = day.max_lines if day.max_lines is not None else 4 * day.agents
        self.events: list[tuple[float, int, int, int]] = []  # time, kind, sequence, call
        self.sequence = itertools.count()
        self.contact_of: list[int] = []  # by call
        self.dialed_at: list[float] = []  # by call
        self.outcome_of: list[str] = []  # by call, drawn when it is placed
        self.bridged_at: dict[int, float] = {}  # by call, until its agent is free
        self.attempts: dict[int, int] = {}  # by contact
        self.on_line: dict[int, int] = {}  # calls in progress, by contact
        self.retries: list[tuple[float, int]] = []  # (due, contact)
        self.fresh = itertools.count()
        self.waiting: deque[int] = deque()  # persons answered without an agent, oldest first
        self.free = day.agents
        self.dialing = 0
        self.calls = self.persons = self.abandoned = self.machines = 0
        self.max_calls_per_contact = 0
        self.talk_seconds = 0.0
        self.last_event = 0.0

    def run_until(self, now: float) -> None:
        events = self.events
        while events and events[0][0] <= now:
            at, kind, _, call = heapq.heappop(events)
            self.last_event = at
            if kind == _AGENT_FREE:
                self.pacer.observe_handle(at - self.bridged_at.pop(call), at)
                self.free += 1
                if self.waiting:
                    self.bridge(self.waiting.popleft(), at)
            elif kind == _PERSON_ANSWERS:
                if self.free:
                    self.bridge(call, at)
                else:
                    self.waiting.append(call)
                    self.later(at + ABANDON_GRACE, _GRACE_ENDS, call)
            elif kind == _GRACE_ENDS:
                if self.waiting and self.waiting[0] == call:  # still first in line: no agent came
                    self.waiting.popleft()
                    self.dialing -= 1
                    self.persons += 1
                    self.abandoned += 1
                    self.pacer.observe_attempt("abandoned", ring_seconds=at - ABANDON_GRACE - self.dialed_at[call],
                                               at=at)
                    self.hang_up(call, at, retry=False)
            elif kind == _TALK_ENDS:
                self.hang_up(call, at, retry=False)
            else:
                self.dialing -= 1
                outcome = self.outcome_of[call]
                self.machines += outcome == "machine"
                self.pacer.observe_attempt(outcome, ring_seconds=at - self.dialed_at[call], at=at)
                self.hang_up(call, at, retry=True)

    def dial(self, now: float) -> None:
        day, rng = self.day, self.rng
        contact = self.next_contact(now)
        if contact is None:
            return
        call = self.calls
        self.calls += 1
        self.contact_of.append(contact)
        self.dialed_at.append(now)
        self.attempts[contact] = self.attempts.get(contact, 0) + 1
        self.on_line[contact] = on_line = self.on_line.get(contact, 0) + 1
        self.max_calls_per_contact = max(self.max_calls_per_contact, on_line)
        self.dialing += 1
        draw = rng.random()
        if draw < day.answer_rate:
            self.outcome_of.append("person")
            self.later(now + rng.uniform(*day.ring_seconds), _PERSON_ANSWERS, call)
            return
        if draw < day.answer_rate + day.machine_rate:
            self.outcome_of.append("machine")
            ends = now + rng.uniform(*day.ring_seconds) + day.machine_detection_seconds
        elif draw < day.answer_rate + day.machine_rate + day.busy_rate:
            self.outcome_of.append("busy")
            ends = now + rng.uniform(*day.busy_seconds)
        else:
            self.outcome_of.append("no_answer")
            ends = now + day.no_answer_timeout
        self.later(ends, _ATTEMPT_ENDS, call)

    def next_contact(self, now: float) -> int | None:
        if self.retries and self.retries[0][0] <= now:
            return heapq.heappop(self.retries)[1]
        contact = next(self.fresh)
        return contact if self.day.contacts is None or contact < self.day.contacts else None

    def bridge(self, call: int, now: float) -> None:
        self.free -= 1
        self.dialing -= 1
        self.persons += 1
        self.pacer.observe_attempt("person", ring_seconds=now - self.dialed_at[call], at=now)
        talk = self.rng.uniform(*self.day.talk_seconds)
        self.talk_seconds += talk
        self.later(now + talk, _TALK_ENDS, call)
        self.bridged_at[call] = now
        self.later(now + talk + self.day.wrap_seconds, _AGENT_FREE, call)

    def hang_up(self, call: int, at: float, *, retry: bool) -> None:
        contact = self.contact_of[call]
        self.on_line[contact] -= 1
        if retry and self.attempts[contact] < self.day.max_attempts:
            heapq.heappush(self.retries, (at + self.day.retry_after, contact))

    def later(self, at: float, kind: int, call: int) -> None:
        heapq.heappush(self.events, (at, kind, next(self.sequence), call))
