"""Read-only answers to the engine's queries (``agents``, ``waiting``, ``queue_stats``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import AgentState, Channel


@dataclass(frozen=True, slots=True)
class AgentView:
    agent_id: str
    state: AgentState
    reason: str | None
    since: float
    call_id: str | None
    """The call the agent is reserved for, talking on or wrapping up."""
    reachable: bool = True
    pending: AgentState | None = None
    """A break or offline asked for while busy, applied when the work ends."""
    chats: tuple[str, ...] = ()
    """The chats offered to the agent (ringing) or connected to them, sorted."""
    chat_capacity: int = 0


@dataclass(frozen=True, slots=True)
class WaitingView:
    call_id: str
    queue: str
    priority: int
    enqueued_at: float
    position: int
    """1-based, in the queue's order (priority, then original enqueue time)."""
    is_callback: bool
    offered_to: tuple[str, ...] = ()
    """Agents ringing for the call (or reserved for a callback being dialed)."""
    retry_at: float | None = None
    """For a callback whose last dial failed: when it is back in line."""
    channel: Channel = "voice"


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    waiting: int
    """Live (voice) calls in line."""
    callbacks: int
    """Callback entries in line."""
    longest_wait: float | None
    """Seconds the longest waiting live call has waited (since its original enqueue)."""
    agents: dict[AgentState, int] = field(default_factory=dict)
    """Agents with the queue's skill, by state."""
    answered: int = 0
    abandoned: int = 0
    answered_within_sl: int = 0
    service_level: float | None = None
    """answered within ``sl_threshold`` / (answered + abandoned), today; None if both are 0."""
    average_handle_time: float | None = None
    waiting_chats: int = 0
    """Chats in line (ringing ones included)."""
    longest_chat_wait: float | None = None
    """Seconds the longest waiting chat has waited (since its original enqueue)."""
