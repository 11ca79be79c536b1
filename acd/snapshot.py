"""The engine's state that survives a restart, to and from plain JSON-serialisable dicts.

Times are on the adapter's monotonic timeline. If the new process's clock is behind the
snapshot's (the machine rebooted), every time is shifted by the difference so that waits
and orders stay as they were. Chats die with the process like live calls: agents keep their
chat capacity, not their chats. Fields added since format 1 (chat capacity, chats today,
the chat policy) read as their defaults from older snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .agent_pool import AgentPool, AgentRecord
from .calls import CallEntry, CallStatus
from .model import AgentState, Fallback, QueueConfig, RelaxStep, Strategy
from .queue_lines import Lines, QueueCounters, QueueLine

FORMAT = 1


@dataclass(slots=True)
class LoadedState:
    next_seq: int
    queues: list[tuple[QueueConfig, QueueCounters, str]]
    """Config, today's counters and round-robin cursor of each queue."""
    agents: list[AgentRecord]
    """As they were, busy ones included (``AcdEngine.restore`` releases them)."""
    callbacks: list[CallEntry]
    """In line order (the caller places them)."""
    calls_while_chatting: bool = False


def dump(now: float, next_seq: int, lines: Lines, agents: AgentPool) -> dict[str, Any]:
    callbacks = sorted((c for c in lines.calls.values() if c.is_callback and c.status is not CallStatus.CONNECTED),
                       key=lambda c: c.key)
    return {
        "format": FORMAT,
        "taken_at": now,
        "next_seq": next_seq,
        "queues": [line_to_dict(line) for line in lines.queues.values()],
        "agents": [agent_to_dict(a) for a in agents],
        "callbacks": [entry_to_dict(c) for c in callbacks],
        "calls_while_chatting": agents.calls_while_chatting,
    }


def load(snapshot: dict[str, Any], now: float) -> LoadedState:
    if snapshot.get("kind") is not None:
        raise ValueError(f"unknown ACD snapshot kind {snapshot['kind']!r}")
    if snapshot.get("format") != FORMAT:
        raise ValueError(f"unknown ACD snapshot format {snapshot.get('format')!r}")
    shift = min(0.0, now - float(snapshot["taken_at"]))
    agents = [agent_from_dict(a, shift) for a in snapshot["agents"]]
    callbacks = [entry_from_dict(c, shift) for c in snapshot["callbacks"]]
    queues = [line_parts_from_dict(q) for q in snapshot["queues"]]
    return LoadedState(int(snapshot["next_seq"]), queues, agents, sorted(callbacks, key=lambda c: c.key),
                       bool(snapshot.get("calls_while_chatting", False)))


# -- the parts the restart snapshot and the live one (``live_snapshot``) share ----------------------

def line_to_dict(line: QueueLine) -> dict[str, Any]:
    return {"config": queue_to_dict(line.config), "rr_cursor": line.rr_cursor,
            "counters": {"answered": line.counters.answered,
                         "answered_within_sl": line.counters.answered_within_sl,
                         "abandoned": line.counters.abandoned,
                         "average_handle_time": line.counters.average_handle_time}}


def line_parts_from_dict(data: dict[str, Any]) -> tuple[QueueConfig, QueueCounters, str]:
    return queue_from_dict(data["config"]), QueueCounters(**data["counters"]), data["rr_cursor"]


def agent_to_dict(a: AgentRecord) -> dict[str, Any]:
    """The agent without their chats (the live snapshot adds them)."""
    return {"agent_id": a.agent_id, "skills": dict(a.skills), "state": a.state.value, "reason": a.reason,
            "since": a.since, "reachable": a.reachable, "calls_today": a.calls_today,
            "last_idle": a.last_idle,
            "pending": [a.pending[0].value, a.pending[1]] if a.pending is not None else None,
            "chat_capacity": a.chat_capacity, "chats_today": a.chats_today, "last_chat_at": a.last_chat_at}


def agent_from_dict(a: dict[str, Any], shift: float = 0.0) -> AgentRecord:
    pending = a["pending"]
    last_chat_at = a.get("last_chat_at")
    return AgentRecord(
        a["agent_id"], dict(a["skills"]), state=AgentState(a["state"]), reason=a["reason"],
        since=a["since"] + shift, reachable=a["reachable"], calls_today=a["calls_today"],
        last_idle=a["last_idle"] + shift,
        pending=(AgentState(pending[0]), pending[1]) if pending is not None else None,
        chat_capacity=a.get("chat_capacity", 0), chats_today=a.get("chats_today", 0),
        last_chat_at=last_chat_at + shift if last_chat_at is not None else None)


def entry_to_dict(c: CallEntry) -> dict[str, Any]:
    """An entry's identity and place (what a callback needs across a restart)."""
    return {"call_id": c.call_id, "queue": c.queue, "priority": c.priority, "enqueued_at": c.enqueued_at,
            "seq": c.seq, "entered_at": c.entered_at, "caller": c.caller, "variables": c.variables,
            "channel": c.channel, "number": c.callback_number, "attempts": c.attempts, "retry_at": c.retry_at}


def entry_from_dict(c: dict[str, Any], shift: float = 0.0) -> CallEntry:
    return CallEntry(
        c["call_id"], c["queue"], c["priority"], c["enqueued_at"] + shift, c["seq"], c["entered_at"] + shift,
        c["caller"], dict(c["variables"]), c.get("channel", "voice"), callback_number=c["number"],
        attempts=c["attempts"], retry_at=c["retry_at"] + shift if c["retry_at"] is not None else None)


def _fallback_to_dict(fallback: Fallback) -> dict[str, Any]:
    return {"kind": fallback.kind, "target": fallback.target}


def queue_to_dict(config: QueueConfig) -> dict[str, Any]:
    return {
        "name": config.name, "skill": config.skill, "strategy": config.strategy.value,
        "min_proficiency": config.min_proficiency,
        "relax": [{"after": s.after, "min_proficiency": s.min_proficiency, "add_skills": list(s.add_skills)}
                  for s in config.relax],
        "max_size": config.max_size, "on_full": _fallback_to_dict(config.on_full),
        "max_wait": config.max_wait, "on_timeout": _fallback_to_dict(config.on_timeout),
        "ring_timeout": config.ring_timeout, "wrapup": config.wrapup, "announce_every": config.announce_every,
        "sl_threshold": config.sl_threshold, "callback_retries": config.callback_retries,
        "callback_retry_delay": config.callback_retry_delay,
    }


def queue_from_dict(data: dict[str, Any]) -> QueueConfig:
    fields = dict(data)
    fields["strategy"] = Strategy(fields["strategy"])
    fields["relax"] = tuple(RelaxStep(s["after"], s["min_proficiency"], tuple(s["add_skills"]))
                            for s in fields["relax"])
    fields["on_full"] = Fallback(**fields["on_full"])
    fields["on_timeout"] = Fallback(**fields["on_timeout"])
    return QueueConfig(**fields)
