"""Typed events the engine publishes to ``on_event`` (for history, wallboards and metrics).

They are delivered after the engine has finished processing the input, in the order they
happened; ``at`` is when each happened (a timer's due time, or the input's time).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from .model import AgentState, Channel, Fallback


class Reason(StrEnum):
    """Reasons the engine gives for the agent state changes it makes itself.

    Changes an agent or supervisor asked for carry the request's own reason (e.g. ``lunch``).
    """

    OFFER = "offer"
    CALLBACK = "callback"
    ANSWERED = "answered"
    CALL_ENDED = "call_ended"
    WRAP_UP_DONE = "wrap_up_done"
    MISSED = "missed"
    """Break after a declined or unanswered offer."""
    UNREACHABLE = "unreachable"
    """Released from an offer because the device went away."""
    OFFER_CANCELLED = "offer_cancelled"
    """Released without fault: the caller left or asked for a callback, another agent took a ring_all call,
    or a supervisor moved the call."""
    CALLBACK_FAILED = "callback_failed"
    RESTART = "restart"
    REMOVED = "removed"


OverflowReason = Literal["full", "timeout", "queue_removed", "unknown_queue"]
GaveUpReason = Literal["retries_exhausted", "cancelled", "queue_removed"]


@dataclass(frozen=True, slots=True)
class Queued:
    """A live call entered a queue (also after overflowing from ``overflowed_from``), or an
    entry (live or callback) took a new place by a supervisor's request: moved here from
    ``moved_from``, or given a new priority in the same queue."""

    call_id: str
    queue: str
    priority: int
    enqueued_at: float
    """The original enqueue time, kept across overflows and callbacks."""
    position: int
    at: float
    overflowed_from: str | None = None
    moved_from: str | None = None
    channel: Channel = "voice"


@dataclass(frozen=True, slots=True)
class Offered:
    call_id: str
    agent_id: str
    queue: str
    at: float
    callback: bool = False
    """True for a ``DialCallback`` (the agent is reserved while the caller is dialed)."""
    channel: Channel = "voice"


@dataclass(frozen=True, slots=True)
class Answered:
    call_id: str
    agent_id: str
    queue: str
    wait: float
    """Seconds since the original enqueue time."""
    at: float
    channel: Channel = "voice"


@dataclass(frozen=True, slots=True)
class Abandoned:
    call_id: str
    queue: str
    wait: float
    at: float
    channel: Channel = "voice"


@dataclass(frozen=True, slots=True)
class Overflowed:
    """The call left ``queue`` to ``fallback`` (for kind ``queue``, a ``Queued`` in the target follows)."""

    call_id: str
    queue: str
    fallback: Fallback
    reason: OverflowReason
    at: float


@dataclass(frozen=True, slots=True)
class CallbackScheduled:
    call_id: str
    queue: str
    number: str
    at: float


@dataclass(frozen=True, slots=True)
class CallbackRetryScheduled:
    """A dial attempt failed; the entry comes back in line, in its place, at ``retry_at``."""

    call_id: str
    queue: str
    attempts: int
    retry_at: float
    at: float


@dataclass(frozen=True, slots=True)
class CallbackCompleted:
    call_id: str
    agent_id: str
    queue: str
    wait: float
    """Seconds since the original enqueue time."""
    attempts: int
    at: float


@dataclass(frozen=True, slots=True)
class CallbackGaveUp:
    call_id: str
    queue: str
    attempts: int
    reason: GaveUpReason
    at: float


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    agent_id: str
    old: AgentState
    new: AgentState
    reason: str | None
    at: float


AcdEvent = (Queued | Offered | Answered | Abandoned | Overflowed | CallbackScheduled | CallbackRetryScheduled
            | CallbackCompleted | CallbackGaveUp | AgentStateChanged)
