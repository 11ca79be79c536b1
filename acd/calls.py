"""One entry in a queue's line: a live call, a callback or a web chat, from enqueue until it is
answered or leaves (a connected call or chat stays known until it ends)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from .model import Channel
from .timers import Timer

if TYPE_CHECKING:
    from .queue_lines import Bucket

CallKey = tuple[int, float, int, str]
"""(-priority, original enqueue time, arrival sequence, call id): smaller is served first."""


class CallStatus(Enum):
    IN_LINE = "in_line"
    """Waiting (possibly ringing agents)."""
    DIALING = "dialing"
    """A callback being dialed, its agent reserved."""
    RETRY_WAIT = "retry_wait"
    """A callback whose dial failed, keeping its place until the retry delay is over."""
    CONNECTED = "connected"
    """Answered: out of the line, kept until the call ends."""


@dataclass(slots=True, eq=False)
class CallEntry:
    call_id: str
    queue: str
    priority: int
    enqueued_at: float
    seq: int
    entered_at: float
    """When it entered its current queue (relaxation and max wait count from here)."""
    caller: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    channel: Channel = "voice"
    status: CallStatus = CallStatus.IN_LINE
    level: int = 0
    """Relaxation steps applied."""
    offers: dict[str, Timer | None] = field(default_factory=dict)
    """Agents ringing (with their ring timer; None once an answer is being applied), or the
    agent reserved for a callback dial (None). A chat is offered to one agent at a time."""
    bucket: Bucket | None = field(default=None, repr=False)
    callback_number: str | None = None
    attempts: int = 0
    """Failed callback dials."""
    retry_at: float | None = None
    timed_out: bool = False
    """Max wait passed while the call was ringing: it overflows once the ringing ends."""
    relax_timer: Timer | None = field(default=None, repr=False)
    max_wait_timer: Timer | None = field(default=None, repr=False)
    announce_timer: Timer | None = field(default=None, repr=False)
    retry_timer: Timer | None = field(default=None, repr=False)
    agent_id: str | None = None
    answered_at: float | None = None
    wrapup: float = 0.0
    """The queue's wrap-up when answered (the queue may change or go before the call ends)."""
    key: CallKey = field(init=False)

    def __post_init__(self) -> None:
        self.set_priority(self.priority)

    def set_priority(self, priority: int) -> None:
        """Changes the entry's order: take it out of its line and bucket first (sorted by key)."""
        self.priority = priority
        self.key = (-priority, self.enqueued_at, self.seq, self.call_id)

    @property
    def is_callback(self) -> bool:
        return self.callback_number is not None

    @property
    def is_chat(self) -> bool:
        return self.channel == "chat"
