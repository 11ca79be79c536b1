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
  agent is released), the agent's ``survey`` event (the agent hung up and the caller went on to
  the satisfaction survey) or the end of the call; hold is the sum of the agent's hold..unhold
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

**Satisfaction** (``callcenter.csat``: one rating 1-5 per contact, a chat's card or a call's
survey), counted with the contact, in the interval in which it entered the queue; per agent, for
the agent the rating names (the one the contact ended with):

- ``CSAT_AVERAGE``: mean rating of the rated contacts; None without any.
- ``CSAT_RESPONSES``: rated contacts.
- ``CSAT_RESPONSE_RATE`` (percent): CSAT_RESPONSES / CONTACTS_HANDLED; None when nothing was handled.

**Channels.** A contact is a call (``voice``) or a web chat (``chat``; its ``CallRecord`` has
``channel`` chat and shares the conversation's id). With ``by_channel`` every row is split by
channel (a ``channel`` key; Amazon Connect's CHANNEL grouping); without it the rows hold both.
Chats count like calls (queued, handled, abandoned when the visitor left before an agent took
the chat, queue answer time, service level, transfers, non-response) and add:

- ``AVG_FIRST_RESPONSE_TIME_AGENT`` (seconds; Connect's agent first response time of chats): mean
  over handled chats with an agent message of the first agent message minus the agent's answer.
- ``AVG_HANDLE_TIME`` of a chat: the agent's answer to the chat's end or transfer (no hold; chats
  have no after-contact work state).
- ``AVG_CHAT_CONCURRENCY`` (no Connect name): while an agent had at least one chat, how many at
  once on average (time-weighted: chat-seconds / seconds with a chat), from the chats' agent legs
  (answer to end or transfer), split exactly at bucket boundaries and not tied to the interval the
  chats entered the queue in (time-based, like OCCUPANCY). Per queue: the queue's chats only, over
  all agents (sum of chat-seconds / sum of seconds with a chat).
- ``MAX_CHAT_CONCURRENCY`` (no Connect name): the most chats an agent (per queue: any agent) had
  at once in the bucket; 0 without chats.

Chat work does not change an agent's state, so ``OCCUPANCY`` measures voice work: in rows split
by channel it is None in chat rows. Chat metrics are None (MAX_CHAT_CONCURRENCY 0) in voice rows.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import pairwise
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
CSAT_METRICS = ("CSAT_AVERAGE", "CSAT_RESPONSES", "CSAT_RESPONSE_RATE")
CHAT_METRICS = ("AVG_FIRST_RESPONSE_TIME_AGENT", "AVG_CHAT_CONCURRENCY", "MAX_CHAT_CONCURRENCY")
METRICS = QUEUE_METRICS + CSAT_METRICS + CHAT_METRICS
"""Every figure of a row, in the CSV's column order."""
CHANNELS = ("voice", "chat")


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
    """The trace's ``abandoned`` event time, when the IVR recorded one (a chat: when the visitor left)."""
    channel: str = "voice"
    """``voice`` or ``chat``."""
    csat: int | None = None
    """The customer's satisfaction rating (1-5), if they gave one."""
    csat_agent: int | None = None
    """The agent the rating names."""
    first_response_at: datetime | None = None
    """A chat's first agent message."""


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
    csat_sum: int = 0
    csat_n: int = 0
    first_response_sum: float = 0.0
    first_response_n: int = 0
    chat_s: float = 0.0
    """Chat-seconds (each chat's connected seconds, added up)."""
    chatting_s: float = 0.0
    """Seconds with at least one chat (per agent, added up over agents)."""
    chat_max: int = 0
    queue_row: bool = True
    channel: str | None = None
    """The row's channel when split by channel."""

    def merge(self, other: _Acc) -> None:
        for name in ("queued", "handled", "abandoned", "abandoned_short", "sl_met", "wait_sum", "wait_n", "talk",
                     "hold", "acw", "transferred", "non_response", "busy", "idle", "csat_sum", "csat_n",
                     "first_response_sum", "first_response_n", "chat_s", "chatting_s"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.chat_max = max(self.chat_max, other.chat_max)

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
            "OCCUPANCY": _r(100.0 * self.busy / worked) if worked > 0 and self.channel != "chat" else None,
            "CONTACTS_TRANSFERRED_OUT": self.transferred,
            "AGENT_NON_RESPONSE": self.non_response,
            "CSAT_AVERAGE": _r(self.csat_sum / self.csat_n) if self.csat_n else None,
            "CSAT_RESPONSES": self.csat_n,
            "CSAT_RESPONSE_RATE": _r(100.0 * self.csat_n / self.handled) if self.handled else None,
            "AVG_FIRST_RESPONSE_TIME_AGENT": _r(self.first_response_sum / self.first_response_n)
            if self.first_response_n else None,
            "AVG_CHAT_CONCURRENCY": _r(self.chat_s / self.chatting_s) if self.chatting_s > 0 else None,
            "MAX_CHAT_CONCURRENCY": self.chat_max,
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
            if later.kind == "survey":  # the agent hung up; the caller went on to the survey
                end = later.at
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


# -- chats at once ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChatLoad:
    """One agent's chats in one bucket."""

    chat_s: float = 0.0
    """Chat-seconds: each chat's seconds in the bucket, added up."""
    chatting_s: float = 0.0
    """Seconds with at least one chat."""
    most: int = 0
    """Most chats at once."""


def chat_load(chats: Iterable[tuple[datetime, datetime]], spans: Sequence[Bucket]) -> list[ChatLoad]:
    """Per bucket, an agent's chats (each connected from start to end) at once: a sweep over their
    starts and ends; a chat ending when another starts does not overlap it."""
    points = sorted(p for start, end in chats if end > start for p in ((start, 1), (end, -1)))
    totals = [[0.0, 0.0, 0] for _ in spans]
    starts = [span.start for span in spans]
    count = 0
    for (at, step), following in pairwise(points):
        count += step
        until = following[0]
        if count <= 0 or until <= at:
            continue
        for j in range(max(0, bisect_right(starts, at) - 1), len(spans)):
            span = spans[j]
            if span.start >= until:
                break
            overlap = _seconds(max(at, span.start), min(until, span.end))
            if overlap > 0:
                total = totals[j]
                total[0] += count * overlap
                total[1] += overlap
                total[2] = max(int(total[2]), count)
    return [ChatLoad(float(a), float(b), int(c)) for a, b, c in totals]


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
    by_channel: bool = False,
) -> Report:
    """Rows per (bucket, ``queue`` or ``agent_id``[, ``channel``]): every key in ``keys`` (with
    ``by_channel``: on every channel) and every key seen, in every bucket; ``totals`` the same per
    key over the whole range.

    ``states``: the state history of the agents, including each agent's last change before
    ``since``. ``queue_agents``: for queue rows' OCCUPANCY, the agents staffing each queue.
    """
    if by not in ("queue", "agent"):
        raise ValueError("by must be queue or agent")
    spans = buckets(since, until, tz, interval)
    history: dict[int, list[StateChange]] = defaultdict(list)
    for change in sorted(states, key=lambda c: c.at):
        history[change.agent_id].append(change)
    queue_row = by == "queue"

    def row_key(key: Any, channel: str) -> tuple[Any, str | None]:
        return key, channel if by_channel else None

    accs: dict[tuple[int, tuple[Any, str | None]], _Acc] = {}

    def acc_of(j: int, key: tuple[Any, str | None]) -> _Acc:
        found = accs.get((j, key))
        if found is None:
            found = accs[(j, key)] = _Acc(queue_row=queue_row, channel=key[1])
        return found

    seen: set[tuple[Any, str | None]] = {row_key(k, c) for k in keys for c in (CHANNELS if by_channel else ("",))}
    # per (row key, agent): the chats' connected spans, for the chats-at-once figures
    chats: dict[tuple[tuple[Any, str | None], int], list[tuple[datetime, datetime]]] = defaultdict(list)

    for call in calls:
        chat = call.channel == "chat"
        call_legs = legs(call, {} if chat else history)  # a chat has no after-contact work state
        if chat:
            for leg in call_legs:
                end = leg.ended_at if leg.ended_at is not None else spans[-1].end
                owner = call.queue if queue_row else leg.agent_id
                chats[(row_key(owner, "chat"), leg.agent_id)].append((leg.answered_at, end))
        j = _bucket_of(call.enqueued_at.astimezone(timezone.utc), spans)
        if j is None:
            continue
        non_response = [e for e in call.events if e.kind in NON_RESPONSE_KINDS]
        first_response = _seconds(call_legs[0].answered_at, call.first_response_at) \
            if call_legs and call.first_response_at is not None else None
        if queue_row:
            key = row_key(call.queue, call.channel)
            acc = acc_of(j, key)
            seen.add(key)
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
                if first_response is not None:
                    acc.first_response_sum += max(0.0, first_response)
                    acc.first_response_n += 1
            elif abandoned_at is not None:
                if _seconds(call.enqueued_at, abandoned_at) <= short_abandon:
                    acc.abandoned_short += 1
                else:
                    acc.abandoned += 1
            acc.non_response += len(non_response)
            if call.csat is not None:
                acc.csat_sum += call.csat
                acc.csat_n += 1
        else:
            for i, leg in enumerate(call_legs):
                key = row_key(leg.agent_id, call.channel)
                acc = acc_of(j, key)
                seen.add(key)
                acc.handled += 1
                acc.wait_sum += max(0.0, _seconds(call.enqueued_at, leg.answered_at))
                acc.wait_n += 1
                acc.talk, acc.hold, acc.acw = acc.talk + leg.talk, acc.hold + leg.hold, acc.acw + leg.acw
                if i == 0 and first_response is not None:
                    acc.first_response_sum += max(0.0, first_response)
                    acc.first_response_n += 1
            for e in call.events:
                if e.agent_id is None:
                    continue
                if e.kind == "transfer":
                    key = row_key(e.agent_id, call.channel)
                    acc_of(j, key).transferred += 1
                    seen.add(key)
                elif e.kind in NON_RESPONSE_KINDS:
                    key = row_key(e.agent_id, call.channel)
                    acc_of(j, key).non_response += 1
                    seen.add(key)
            if call.csat is not None and call.csat_agent is not None:
                key = row_key(call.csat_agent, call.channel)
                acc = acc_of(j, key)
                seen.add(key)
                acc.csat_sum += call.csat
                acc.csat_n += 1

    # occupancy (agent states: voice work)
    agent_time = {agent: state_time(h, spans) for agent, h in history.items()}
    if not queue_row:
        for agent, per_span in agent_time.items():
            key = row_key(agent, "voice")
            for j, (busy, idle) in enumerate(per_span):
                if busy or idle:
                    seen.add(key)
                    acc = acc_of(j, key)
                    acc.busy, acc.idle = acc.busy + busy, acc.idle + idle
    else:
        for queue, agents in (queue_agents or {}).items():
            key = row_key(queue, "voice")
            if key not in seen:
                continue
            for agent in set(agents):
                for j, (busy, idle) in enumerate(agent_time.get(agent, ())):
                    if busy or idle:
                        acc = acc_of(j, key)
                        acc.busy, acc.idle = acc.busy + busy, acc.idle + idle

    # chats at once
    for (key, _agent), spans_of_chats in chats.items():
        for j, load in enumerate(chat_load(spans_of_chats, spans)):
            if load.chatting_s > 0:
                seen.add(key)
                acc = acc_of(j, key)
                acc.chat_s += load.chat_s
                acc.chatting_s += load.chatting_s
                acc.chat_max = max(acc.chat_max, load.most)

    report = Report(by, spans)
    name = "queue" if queue_row else "agent_id"
    ordered = sorted(seen, key=lambda k: (str(type(k[0])), k[0], k[1] or ""))

    def labels(key: tuple[Any, str | None]) -> dict[str, Any]:
        return {name: key[0], "channel": key[1]} if by_channel else {name: key[0]}

    for j, span in enumerate(spans):
        for k in ordered:
            acc = accs.get((j, k)) or _Acc(queue_row=queue_row, channel=k[1])
            report.rows.append({**span.label(), **labels(k), **acc.figures()})
    for k in ordered:
        total = _Acc(queue_row=queue_row, channel=k[1])
        for j in range(len(spans)):
            if (j, k) in accs:
                total.merge(accs[(j, k)])
        report.totals.append({**labels(k), **total.figures()})
    return report
