"""The engine's whole state, live calls and timers included, to and from plain
JSON-serialisable dicts: what a new owner node needs to carry on exactly where the old one
stopped (``AcdEngine.snapshot(live=True)``, ``AcdEngine.restore_live``).

Unlike the restart snapshot (``snapshot``), nothing is released and no time is shifted: the
new owner works on the same wall-clock timeline, later; timers already due fire at its
first ``handle`` or ``advance``, at their own due times, as they would have on the old owner.

What routing derives (lines' keys, the available index, staffing counts, the skill index of
buckets) is rebuilt; what cannot be derived is saved:

- the timers in firing order (timers due at one instant fire in the order they were set,
  which orders their actions and events), each with what it fires and for which call or
  agent; calls and agents refer to their timers by index in that list;
- the order of agents and of calls (views list them in the engine's order);
- whether an entry is in a routing bucket, and what the next routing pass must look at;
- actions and events not handed out yet (after a refused supervisor request, the timers
  it fired wait for the next ``advance``).

Each entry keeps its channel, each agent their chats (offered and connected) and chat
capacity, and the engine its chat policy; snapshots from before chats existed load with no
chats and the policy off.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from enum import Enum
from typing import Any

from .actions import Action
from .agent_pool import AgentPool, AgentRecord
from .bus_events import AcdEvent
from .calls import CallEntry, CallStatus
from .model import Fallback
from .queue_lines import Lines, QueueLine
from .snapshot import agent_from_dict, agent_to_dict, entry_from_dict, entry_to_dict, line_parts_from_dict, line_to_dict
from .timers import Timer, TimerHeap

KIND = "live"
FORMAT = 1

TimerKinds = Mapping[str, Callable[..., None]]
"""What a timer fires, by the name the snapshot gives it (``engine.TIMER_KINDS``)."""

_RECORD_TYPES: dict[str, type] = {cls.__name__: cls for cls in (*typing.get_args(Action),
                                                                  *typing.get_args(AcdEvent))}


@dataclass(slots=True)
class Outbox:
    """What the restored engine has not handed out yet, and its clock and sequence."""

    now: float
    next_seq: int
    actions: list[Action]
    events: list[AcdEvent]


def dump(*, now: float, next_seq: int, lines: Lines, agents: AgentPool, timers: TimerHeap,
         timer_kinds: TimerKinds, actions: list[Action], events: list[AcdEvent]) -> dict[str, Any]:
    pending = timers.pending()
    index = {timer: i for i, timer in enumerate(pending)}
    kind_of = {fire: kind for kind, fire in timer_kinds.items()}

    def ref(timer: Timer | None) -> int | None:
        """A timer that fired or was cancelled is as good as none (it fires no more)."""
        return index.get(timer) if timer is not None else None

    return {
        "kind": KIND,
        "format": FORMAT,
        "now": now,
        "next_seq": next_seq,
        "queues": [line_to_dict(line) for line in lines.queues.values()],
        "agents": [{**agent_to_dict(a), "call_id": a.call_id, "wrapup_timer": ref(a.wrapup_timer),
                    "chats": sorted(a.chats), "chat_offers": sorted(a.chat_offers)} for a in agents],
        "calls": [_call_to_dict(c, lines, ref) for c in lines.calls.values()],
        "timers": [_timer_to_dict(t, kind_of[t.fire], lines, agents) for t in pending],
        "dirty_agents": sorted(agents.dirty),
        "dirty_calls": sorted(lines.dirty),
        "actions": [_record_to_dict(a) for a in actions],
        "events": [_record_to_dict(e) for e in events],
        "calls_while_chatting": agents.calls_while_chatting,
    }


def load(snapshot: dict[str, Any], *, lines: Lines, agents: AgentPool, timers: TimerHeap,
         timer_kinds: TimerKinds) -> Outbox:
    """Fill the new engine's empty ``lines``, ``agents`` and ``timers`` from ``snapshot``.

    Raises ``ValueError`` for a snapshot of another kind or format, or a malformed one."""
    kind, version = snapshot.get("kind"), snapshot.get("format")
    if kind != KIND:
        if kind is None:
            raise ValueError("not a live ACD snapshot (no 'kind'): AcdEngine.restore takes restart snapshots")
        raise ValueError(f"unknown ACD snapshot kind {kind!r}")
    if version != FORMAT:
        raise ValueError(f"unknown live ACD snapshot format {version!r} (this engine reads format {FORMAT})")
    try:
        return _load(snapshot, lines, agents, timers, timer_kinds)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed live ACD snapshot: {type(exc).__name__}: {exc}") from exc


def _load(snapshot: dict[str, Any], lines: Lines, agents: AgentPool, timers: TimerHeap,
          timer_kinds: TimerKinds) -> Outbox:
    for data in snapshot["queues"]:
        config, counters, cursor = line_parts_from_dict(data)
        line = QueueLine(config)
        line.counters, line.rr_cursor = counters, cursor
        lines.install(line)
    agents.calls_while_chatting = bool(snapshot.get("calls_while_chatting", False))
    records = [agent_from_dict(data) for data in snapshot["agents"]]
    for record, data in zip(records, snapshot["agents"]):
        record.call_id = data["call_id"]
        record.chats, record.chat_offers = set(data.get("chats", ())), set(data.get("chat_offers", ()))
        agents.add(record)
    for data in snapshot["calls"]:
        call = entry_from_dict(data)
        call.status, call.level, call.timed_out = CallStatus(data["status"]), data["level"], data["timed_out"]
        call.agent_id, call.answered_at, call.wrapup = data["agent_id"], data["answered_at"], data["wrapup"]
        lines.put_back(call, data["bucketed"])
    restored = [timers.schedule(t["due"], timer_kinds[t["fires"]], *(_arg(a, lines, agents) for a in t["args"]))
                for t in snapshot["timers"]]

    def timer(i: int | None) -> Timer | None:
        return restored[i] if i is not None else None

    for record, data in zip(records, snapshot["agents"]):
        record.wrapup_timer = timer(data["wrapup_timer"])
    for data in snapshot["calls"]:
        call = lines.calls[data["call_id"]]
        call.offers = {agent_id: timer(i) for agent_id, i in data["offers"]}
        call.relax_timer, call.max_wait_timer = timer(data["relax_timer"]), timer(data["max_wait_timer"])
        call.announce_timer, call.retry_timer = timer(data["announce_timer"]), timer(data["retry_timer"])
    agents.dirty.clear()
    agents.dirty.update(snapshot["dirty_agents"])
    lines.dirty.clear()
    lines.dirty.update(snapshot["dirty_calls"])
    return Outbox(snapshot["now"], int(snapshot["next_seq"]),
                  [_record_from_dict(a) for a in snapshot["actions"]],
                  [_record_from_dict(e) for e in snapshot["events"]])


# -- calls and timers -------------------------------------------------------------------------------

def _call_to_dict(c: CallEntry, lines: Lines, ref: Callable[[Timer | None], int | None]) -> dict[str, Any]:
    if c.bucket is not None and c.bucket is not lines.queues[c.queue].bucket_for(c):
        raise RuntimeError(f"call {c.call_id!r} sits in a bucket other than its level's: not restorable")
    return {**entry_to_dict(c), "status": c.status.value, "level": c.level, "timed_out": c.timed_out,
            "bucketed": c.bucket is not None, "offers": [[agent_id, ref(t)] for agent_id, t in c.offers.items()],
            "relax_timer": ref(c.relax_timer), "max_wait_timer": ref(c.max_wait_timer),
            "announce_timer": ref(c.announce_timer), "retry_timer": ref(c.retry_timer),
            "agent_id": c.agent_id, "answered_at": c.answered_at, "wrapup": c.wrapup}


def _timer_to_dict(timer: Timer, kind: str, lines: Lines, agents: AgentPool) -> dict[str, Any]:
    """Arguments: a call or an agent by id (the restored engine's own objects), or a string."""
    args: list[Any] = []
    for arg in timer.args:
        if isinstance(arg, CallEntry) and lines.calls.get(arg.call_id) is arg:
            args.append({"call": arg.call_id})
        elif isinstance(arg, AgentRecord) and agents.get(arg.agent_id) is arg:
            args.append({"agent": arg.agent_id})
        elif isinstance(arg, str):
            args.append(arg)
        else:
            raise RuntimeError(f"a pending {kind} timer refers to {arg!r}, which the engine does not hold")
    return {"due": timer.due, "fires": kind, "args": args}


def _arg(data: Any, lines: Lines, agents: AgentPool) -> Any:
    if isinstance(data, str):
        return data
    if "call" in data:
        return lines.calls[data["call"]]
    agent = agents.get(data["agent"])
    if agent is None:
        raise KeyError(f"agent {data['agent']!r}")
    return agent


# -- actions and bus events not handed out yet ---------------------------------------------------

def _record_to_dict(record: Action | AcdEvent) -> dict[str, Any]:
    data: dict[str, Any] = {"type": type(record).__name__}
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, Fallback):
            value = asdict(value)
        elif isinstance(value, Enum):
            value = value.value
        data[f.name] = value
    return data


def _record_from_dict(data: dict[str, Any]) -> Any:
    """Fields missing from an older snapshot take their defaults."""
    cls = _RECORD_TYPES[data["type"]]
    hints = typing.get_type_hints(cls)
    values = {}
    for f in fields(cls):
        if f.name not in data and f.default is not MISSING:
            continue
        value, hint = data[f.name], hints[f.name]
        if hint is Fallback:
            value = Fallback(**value)
        elif isinstance(hint, type) and issubclass(hint, Enum):
            value = hint(value)
        values[f.name] = value
    return cls(**values)
