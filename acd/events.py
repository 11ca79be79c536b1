"""Events into the engine (``AcdEngine.handle``): each carries ``at``, seconds on the adapter's
monotonic timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .model import CHANNELS, AgentState, Channel

MIN_PRIORITY = 0
MAX_PRIORITY = 99

RequestableState = Literal["available", "break", "offline"]
REQUESTABLE_STATES = frozenset({AgentState.AVAILABLE, AgentState.BREAK, AgentState.OFFLINE})
OfferFailure = Literal["declined", "no_answer", "unreachable"]
OFFER_FAILURES = ("declined", "no_answer", "unreachable")


@dataclass(frozen=True, slots=True)
class CallQueued:
    """A live call enters a queue (the IVR's ``queue`` node), or a web chat does (``channel`` ``chat``)."""

    call_id: str
    queue: str
    priority: int
    at: float
    caller: str = ""
    variables: dict[str, Any] = field(default_factory=dict)
    channel: Channel = "voice"

    def __post_init__(self) -> None:
        _check_priority("CallQueued", self.priority)
        if self.channel not in CHANNELS:
            raise ValueError(f"CallQueued.channel must be one of {', '.join(CHANNELS)}, not {self.channel!r}")


def _check_priority(event: str, priority: int) -> None:
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValueError(f"{event}.priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}, not {priority}")


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    """The caller left: a waiting call (or chat) is abandoned, a callback entry is cancelled, a
    bridged call (or connected chat) ends (as ``CallEnded``)."""

    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class AgentStateRequested:
    """An agent or a supervisor asks for ``available``, ``break`` (with a reason code) or ``offline``."""

    agent_id: str
    state: RequestableState
    at: float
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.state not in REQUESTABLE_STATES:
            raise ValueError(f"AgentStateRequested.state must be available, break or offline, not {self.state!r}")
        object.__setattr__(self, "state", AgentState(self.state))


@dataclass(frozen=True, slots=True)
class AgentDeviceChanged:
    """The agent's phone registered or went away; an unreachable agent is offered nothing."""

    agent_id: str
    reachable: bool
    at: float


@dataclass(frozen=True, slots=True)
class OfferAccepted:
    """The agent answered an ``Offer``: the adapter has bridged the call (or connected the chat)."""

    call_id: str
    agent_id: str
    at: float


@dataclass(frozen=True, slots=True)
class OfferFailed:
    call_id: str
    agent_id: str
    at: float
    reason: OfferFailure

    def __post_init__(self) -> None:
        if self.reason not in OFFER_FAILURES:
            raise ValueError(f"OfferFailed.reason must be one of {', '.join(OFFER_FAILURES)}, not {self.reason!r}")


@dataclass(frozen=True, slots=True)
class CallEnded:
    """A bridged call (or an answered callback, or a connected chat) ended."""

    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallbackRequested:
    """The caller pressed the callback key: the live call leaves, an entry keeps its place
    (ignored for a chat)."""

    call_id: str
    number: str
    at: float


@dataclass(frozen=True, slots=True)
class CallbackAnswered:
    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallbackFailed:
    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class WrapUpEnded:
    """The agent or a supervisor ends wrap-up early."""

    agent_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallPriorityChanged:
    """A supervisor raises (or lowers) a waiting entry's priority: it takes its place by the
    new priority, keeping its original enqueue time."""

    call_id: str
    priority: int
    at: float

    def __post_init__(self) -> None:
        _check_priority("CallPriorityChanged", self.priority)


@dataclass(frozen=True, slots=True)
class CallMoved:
    """A supervisor moves a waiting entry to another queue, with its priority and original
    enqueue time."""

    call_id: str
    queue: str
    at: float


class RequestRefused(ValueError):
    """A supervisor's request (``CallPriorityChanged``, ``CallMoved``) that does not fit the
    state, raised by ``AcdEngine.handle``. Reports from the adapter may race the engine and
    are ignored when stale; a request is refused instead, so that the supervisor hears why."""


class UnknownCall(RequestRefused):
    """The engine holds no such call (it never came, or has left)."""


class NotWaiting(RequestRefused):
    """The call is connected to an agent, or is a callback being dialed."""


class UnknownQueue(RequestRefused):
    """The target queue does not exist."""


Event = (CallQueued | CallerHungUp | AgentStateRequested | AgentDeviceChanged | OfferAccepted | OfferFailed
         | CallEnded | CallbackRequested | CallbackAnswered | CallbackFailed | WrapUpEnded | CallPriorityChanged
         | CallMoved)
