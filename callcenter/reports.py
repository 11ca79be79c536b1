"""Historical interval reports per queue and per agent, computed from stored rows (no I/O here).

Inputs are plain values built from the database by ``callcenter.api.reports``:
:class:`CallFacts` (one per queued call: the call record, its desk events and the time it
entered a queue) and :class:`StateChange` (the agent state history).

**When a call entered a queue.** No ``queued`` call event is stored. The IVR trace
(``IvrTrace.trace``) has a step of type ``queue`` per queue node, whose ``at`` is the time
the node ran, i.e. the moment the call was handed to the ACD, and whose ``exit`` is
``queue: <name>``. The first such step gives the queue entry time and the queue. A call
with no trace queue step but with an agent ``answered`` event (or a ``queue`` on its
record) falls back to the record's ``answered_at`` (the IVR's answer), else ``received_at``.

**Interval.** A call belongs, with all of its figures (handled, abandoned, waits, handle
time, transfers, ring-no-answer), to the interval in which it first entered a queue, in
the report time zone. Buckets are aligned to local wall-clock time (``:00/:15/:30/:45``,
local midnight for ``day``). Within a day, a DST or UTC offset change starts a new bucket,
so a 15/30/60-minute bucket is never longer than its nominal length: on the fall-back
night the repeated 01:00 hour is two buckets with different offsets, on the spring-forward
night the missing hour has no bucket; a ``day`` is the local day (23 or 25 hours then).
Buckets are clipped to ``[since, until)``. UTC offsets are assumed to be multiples of
15 minutes (true of every zone in use today).

**Metrics** (Amazon Connect names where one exists):

- ``CONTACTS_QUEUED`` (offered): calls that entered the queue in the interval.
- ``CONTACTS_HANDLED`` (answered): per queue, calls an agent answered (the first answer;
  a transferred call counts once, in the queue it first entered); per agent, the agent's
  answers (a call transferred to them counts for them too).
- ``CONTACTS_ABANDONED``: the caller hung up before any agent answered, after waiting
  longer than ``short_abandon`` seconds. Calls abandoned within ``short_abandon`` seconds
  (wait <= threshold, default 5 s) are ``CONTACTS_ABANDONED_SHORT`` (no Connect name) and
  are *excluded* from ``CONTACTS_ABANDONED`` and from the service-level denominator. Queued
  calls that left the queue otherwise (overflow to voicemail, max-wait hangup, still
  waiting) are offered but neither handled nor abandoned.
- ``AVG_QUEUE_ANSWER_TIME`` (ASA, seconds): mean of first agent answer minus queue entry over
  handled calls (per agent: over the agent's answers, each measured from the call's first
  queue entry, so a transferred call's second agent shows the whole wait).
- ``AVG_HANDLE_TIME`` (AHT, seconds): per agent leg, talk + hold + after-contact work, where
  the leg runs from the agent's ``answered`` event to the agent's ``transfer`` event (the
  agent is released) or the end of the call; hold is the sum of the agent's hold..unhold
  spans in the leg (talk = leg - hold); after-contact work is the agent's ``wrap_up`` state
  that starts within 5 s of the leg's end, until the agent's next state change. Per queue:
  the sum over all legs of the handled calls / CONTACTS_HANDLED; per agent: their legs'
  sum / their answers. ``SUM_TALK_TIME``, ``SUM_HOLD_TIME``, ``SUM_AFTER_CONTACT_WORK_TIME``
  give the parts.
- ``SERVICE_LEVEL`` (percent): calls answered with a wait <= ``sl_threshold`` (default 20 s)
  / (CONTACTS_QUEUED - CONTACTS_ABANDONED_SHORT); None when the denominator is 0.
- ``OCCUPANCY`` (percent): time in ``on_call`` + ``wrap_up`` / (that + time ``available``),
  from the state history, split exactly at bucket boundaries (``reserved``, ``break``,
  ``offline`` count in neither). Per queue: over the agents given as staffing the queue
  (the queue's skill). Not tied to call intervals: it is time-based.
- ``CONTACTS_TRANSFERRED_OUT``: per queue, handled calls with at least one ``transfer``
  event; per agent, the agent's ``transfer`` events.
- ``AGENT_NON_RESPONSE``: offers that rang an agent without being answered: ``missed``
  (ring-no-answer, unreachable) plus ``declined`` events; per agent, theirs.

Queue-only metrics (queued, abandoned, service level) are None in agent rows.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any, Iterable, Literal, Mapping, Sequence

Interval = Literal["15", "30", "60", "day"]
INTERVALS: tuple[str, ...] = ("15", "30", "60", "day")
GRID = timedelta(minutes=15)
ACW_MATCH = timedelta(seconds=5)
"""A wrap_up state starting this close to the end of an agent's leg is that leg's after-contact work."""
BUSY_STATES = frozenset({"on_call", "wrap_up"})
IDLE_STATES = frozenset({"available"})
NON_RESPONSE_KINDS = frozenset({"missed", "declined"})

QUEUE_METRICS = (
    "CONTACTS_QUEUED", "CONTACTS_HANDLED", "CONTACTS_ABANDONED", "CONTACTS_ABANDONED_SHORT",
    "AVG_QUEUE_ANSWER_TIME", "AVG_HANDLE_TIME", "SUM_TALK_TIME", "SUM_HOLD_TIME", "SUM_AFTER_CONTACT_WORK_TIME",
    "SERVICE_LEVEL", "OCCUPANCY", "CONTACTS_TRANSFERRED_OUT", "AGENT_NON_RESPONSE",
)
"""Column order of a report row (agent rows carry the same keys)."""


@dataclass(frozen=True)
class Event:
    """One ``CallEvent``: kind, time, agent and detail."""

    kind: str
    at: datetime
    agent_id: int | None = None
    detail: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class CallFacts:
    """What a report needs of one queued call."""

    call_id: str
    queue: str
    enqueued_at: datetime
    ended_at: datetime | None
    hangup_side: str | None
    events: Sequence[Event] = ()
    abandoned_at: datetime | None = None
    """The trace's ``abandoned`` event time, when the IVR recorded one."""


@dataclass(frozen=True)
class StateChange:
    agent_id: int
    old_state: str
    new_state: str
    at: datetime


@dataclass
class Leg:
    """One agent's part of a call."""

    agent_id: int
    answered_at: datetime
    ended_at: datetime | None
    talk: float
    hold: float
    acw: float
    transferred: bool

    @property
    def handle(self) -> float:
        return self.talk + self.hold + self.acw


@dataclass
class _Acc:
    queued: int = 0
    handled: int = 0
    abandoned: int = 0
    abandoned_short: int = 0
    sl_met: int = 0
    wait_sum: float = 0.0
    wait_n: int = 0
    talk: float = 0.0
    hold: float = 0.0
    acw: float = 0.0
    transferred: int = 0
    non_response: int = 0
    busy: float = 0.0
    idle: float = 0.0
    queue_row: bool = True

    def merge(self, other: _Acc) -> None:
        for name in ("queued", "handled", "abandoned", "abandoned_short", "sl_met", "wait_sum", "wait_n", "talk",
                     "hold", "acw", "transferred", "non_response", "busy", "idle"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def figures(self) -> dict[str, Any]:
        handle = self.talk + self.hold + self.acw
        denominator = self.queued - self.abandoned_short
        worked = self.busy + self.idle
        return {
            "CONTACTS_QUEUED": self.queued if self.queue_row else None,
            "CONTACTS_HANDLED": self.handled,
            "CONTACTS_ABANDONED": self.abandoned if self.queue_row else None,
            "CONTACTS_ABANDONED_SHORT": self.abandoned_short if self.queue_row else None,
            "AVG_QUEUE_ANSWER_TIME": _r(self.wait_sum / self.wait_n) if self.wait_n else None,
            "AVG_HANDLE_TIME": _r(handle / self.handled) if self.handled else None,
            "SUM_TALK_TIME": _r(self.talk),
            "SUM_HOLD_TIME": _r(self.hold),
            "SUM_AFTER_CONTACT_WORK_TIME": _r(self.acw),
            "SERVICE_LEVEL": (_r(100.0 * self.sl_met / denominator) if denominator > 0 else None)
            if self.queue_row else None,
            "OCCUPANCY": _r(100.0 * self.busy / worked) if worked > 0 else None,
            "CONTACTS_TRANSFERRED_OUT": self.transferred,
            "AGENT_NON_RESPONSE": self.non_response,
        }


def _r(value: float) -> float:
    return round(value, 2)


def _seconds(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds()


# -- buckets --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bucket:
    start: datetime
    """UTC, inclusive."""
    end: datetime
    """UTC, exclusive."""
    tz: tzinfo

    def label(self) -> dict[str, str]:
        return {"interval_start": self.start.astimezone(self.tz).isoformat(),
                "interval_end": self.end.astimezone(self.tz).isoformat()}


def _key(t: datetime, tz: tzinfo, interval: str) -> tuple[date, int, timedelta | None]:
    local = t.astimezone(tz)
    if interval == "day":  # a local day, 23 or 25 hours long on DST change days
        return local.date(), 0, None
    return local.date(), (local.hour * 60 + local.minute) // int(interval), local.utcoffset()


def buckets(since: datetime, until: datetime, tz: tzinfo, interval: str) -> list[Bucket]:
    """Buckets aligned to local time in ``tz``, clipped to ``[since, until)`` (both aware)."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
    since, until = since.astimezone(timezone.utc), until.astimezone(timezone.utc)
    if since >= until:
        raise ValueError("since must be before until")
    epoch = datetime(2000, 1, 1, tzinfo=timezone.utc)
    t = epoch + ((since - epoch) // GRID + 1) * GRID  # first 15-minute grid point after since
    out: list[Bucket] = []
    start, key = since, _key(since, tz, interval)
    while t < until:
        k = _key(t, tz, interval)
        if k != key:
            out.append(Bucket(start, t, tz))
            start, key = t, k
        t += GRID
    out.append(Bucket(start, until, tz))
    return out


def _bucket_of(at: datetime, spans: Sequence[Bucket]) -> int | None:
    lo, hi = 0, len(spans)
    while lo < hi:
        mid = (lo + hi) // 2
        if at < spans[mid].start:
            hi = mid
        elif at >= spans[mid].end:
            lo = mid + 1
        else:
            return mid
    return None


# -- per call -------------------------------------------------------------------------------------
def legs(call: CallFacts, states: Mapping[int, Sequence[StateChange]] | None = None) -> list[Leg]:
    """The agent legs of a call, with talk, hold and after-contact work seconds."""
    events = sorted(call.events, key=lambda e: e.at)
    out: list[Leg] = []
    for i, ev in enumerate(events):
        if ev.kind != "answered" or ev.agent_id is None or (ev.detail or {}).get("consult"):
            continue
        agent = ev.agent_id
        end = call.ended_at
        transferred = False
        for later in events[i + 1:]:
            if later.agent_id != agent:
                continue
            if later.kind == "transfer":
                end, transferred = later.at, True
                break
            if later.kind == "answered" and not (later.detail or {}).get("consult"):
                break  # answered again (a new leg); this one ended with the call part before
        stop = end if end is not None else max((e.at for e in events), default=ev.at)
        hold = 0.0
        held_since: datetime | None = None
        for e in events[i + 1:]:
            if e.agent_id != agent or e.at > stop:
                continue
            if e.kind == "hold" and held_since is None:
                held_since = e.at
            elif e.kind == "unhold" and held_since is not None:
                hold += _seconds(held_since, e.at)
                held_since = None
        if held_since is not None:
            hold += _seconds(held_since, stop)
        connected = max(0.0, _seconds(ev.at, stop))
        hold = min(hold, connected)
        acw = _acw(agent, end, (states or {}).get(agent, ())) if end is not None else 0.0
        out.append(Leg(agent, ev.at, end, connected - hold, hold, acw, transferred))
    return out


def _acw(agent: int, leg_end: datetime, history: Sequence[StateChange]) -> float:
    """``history`` sorted by time."""
    first = bisect_left(history, leg_end - ACW_MATCH, key=lambda c: c.at)
    for i in range(first, len(history)):
        change = history[i]
        if change.at > leg_end + ACW_MATCH:
            break
        if change.new_state == "wrap_up":
            nxt = history[i + 1].at if i + 1 < len(history) else None
            return max(0.0, _seconds(change.at, nxt)) if nxt is not None else 0.0
    return 0.0


def _abandon(call: CallFacts, call_legs: Sequence[Leg]) -> datetime | None:
    """When the caller gave up waiting, or None (answered, overflowed, still waiting)."""
    if call_legs:
        return None
    if call.abandoned_at is not None:
        return call.abandoned_at
    if call.ended_at is not None and call.hangup_side == "caller":
        return call.ended_at
    return None


# -- occupancy ------------------------------------------------------------------------------------
def state_time(history: Sequence[StateChange], spans: Sequence[Bucket]) -> list[tuple[float, float]]:
    """(busy, idle) seconds per bucket for one agent; ``history`` sorted by time, its first entry
    may be before the first bucket (the state the agent was in at the start)."""
    out = [(0.0, 0.0) for _ in spans]
    if not spans:
        return out
    report_end = spans[-1].end
    starts = [span.start for span in spans]
    for i, change in enumerate(history):
        state = change.new_state
        if state not in BUSY_STATES and state not in IDLE_STATES:
            continue
        start = change.at
        end = history[i + 1].at if i + 1 < len(history) else report_end
        j = max(0, bisect_right(starts, start) - 1)
        for j in range(j, len(spans)):
            span = spans[j]
            if span.start >= end:
                break
            a, b = max(start, span.start), min(end, span.end)
            if a >= b:
                continue
            busy, idle = out[j]
            if state in BUSY_STATES:
                busy += _seconds(a, b)
            else:
                idle += _seconds(a, b)
            out[j] = (busy, idle)
    return out


# -- the report -----------------------------------------------------------------------------------
@dataclass
class Report:
    by: str
    spans: list[Bucket]
    rows: list[dict[str, Any]] = field(default_factory=list)
    totals: list[dict[str, Any]] = field(default_factory=list)


def interval_report(
    calls: Iterable[CallFacts],
    states: Iterable[StateChange],
    *,
    by: Literal["queue", "agent"],
    since: datetime,
    until: datetime,
    tz: tzinfo,
    interval: str,
    sl_threshold: float = 20.0,
    short_abandon: float = 5.0,
    keys: Iterable[Any] = (),
    queue_agents: Mapping[str, Iterable[int]] | None = None,
) -> Report:
    """Rows per (bucket, ``queue`` or ``agent_id``): every key in ``keys`` and every key seen, in every
    bucket; ``totals`` the same per key over the whole range.

    ``states``: the state history of the agents, including each agent's last change before
    ``since``. ``queue_agents``: for queue rows' OCCUPANCY, the agents staffing each queue.
    """
    if by not in ("queue", "agent"):
        raise ValueError("by must be queue or agent")
    spans = buckets(since, until, tz, interval)
    history: dict[int, list[StateChange]] = defaultdict(list)
    for change in sorted(states, key=lambda c: c.at):
        history[change.agent_id].append(change)
    accs: dict[tuple[int, Any], _Acc] = defaultdict(lambda: _Acc(queue_row=by == "queue"))
    seen: set[Any] = set(keys)

    for call in calls:
        j = _bucket_of(call.enqueued_at.astimezone(timezone.utc), spans)
        if j is None:
            continue
        call_legs = legs(call, history)
        non_response = [e for e in call.events if e.kind in NON_RESPONSE_KINDS]
        if by == "queue":
            acc = accs[(j, call.queue)]
            seen.add(call.queue)
            acc.queued += 1
            abandoned_at = _abandon(call, call_legs)
            if call_legs:
                wait = max(0.0, _seconds(call.enqueued_at, call_legs[0].answered_at))
                acc.handled += 1
                acc.wait_sum += wait
                acc.wait_n += 1
                acc.sl_met += wait <= sl_threshold
                for leg in call_legs:
                    acc.talk, acc.hold, acc.acw = acc.talk + leg.talk, acc.hold + leg.hold, acc.acw + leg.acw
                acc.transferred += any(e.kind == "transfer" for e in call.events)
            elif abandoned_at is not None:
                if _seconds(call.enqueued_at, abandoned_at) <= short_abandon:
                    acc.abandoned_short += 1
                else:
                    acc.abandoned += 1
            acc.non_response += len(non_response)
        else:
            for leg in call_legs:
                acc = accs[(j, leg.agent_id)]
                seen.add(leg.agent_id)
                acc.handled += 1
                acc.wait_sum += max(0.0, _seconds(call.enqueued_at, leg.answered_at))
                acc.wait_n += 1
                acc.talk, acc.hold, acc.acw = acc.talk + leg.talk, acc.hold + leg.hold, acc.acw + leg.acw
            for e in call.events:
                if e.agent_id is None:
                    continue
                if e.kind == "transfer":
                    accs[(j, e.agent_id)].transferred += 1
                    seen.add(e.agent_id)
                elif e.kind in NON_RESPONSE_KINDS:
                    accs[(j, e.agent_id)].non_response += 1
                    seen.add(e.agent_id)

    # occupancy
    agent_time = {agent: state_time(h, spans) for agent, h in history.items()}
    if by == "agent":
        seen.update(a for a in agent_time if any(b or i for b, i in agent_time[a]))
        for agent, per_span in agent_time.items():
            for j, (busy, idle) in enumerate(per_span):
                if busy or idle:
                    acc = accs[(j, agent)]
                    acc.busy, acc.idle = acc.busy + busy, acc.idle + idle
    else:
        for queue, agents in (queue_agents or {}).items():
            for agent in set(agents):
                for j, (busy, idle) in enumerate(agent_time.get(agent, ())):
                    if (busy or idle) and (queue in seen):
                        acc = accs[(j, queue)]
                        acc.busy, acc.idle = acc.busy + busy, acc.idle + idle

    report = Report(by, spans)
    name = "queue" if by == "queue" else "agent_id"
    ordered = sorted(seen, key=lambda k: (str(type(k)), k))
    for j, span in enumerate(spans):
        for k in ordered:
            acc = accs.get((j, k)) or _Acc(queue_row=by == "queue")
            report.rows.append({**span.label(), name: k, **acc.figures()})
    for k in ordered:
        total = _Acc(queue_row=by == "queue")
        for j in range(len(spans)):
            if (j, k) in accs:
                total.merge(accs[(j, k)])
        report.totals.append({name: k, **total.figures()})
    return report
