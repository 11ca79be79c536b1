"""Events into the engine (``AcdEngine.handle``): each carries ``at``, seconds on the adapter's
monotonic timeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .model import AgentState

MIN_PRIORITY = 0
MAX_PRIORITY = 99

RequestableState = Literal["available", "break", "offline"]
REQUESTABLE_STATES = frozenset({AgentState.AVAILABLE, AgentState.BREAK, AgentState.OFFLINE})
OfferFailure = Literal["declined", "no_answer", "unreachable"]
OFFER_FAILURES = ("declined", "no_answer", "unreachable")


@dataclass(frozen=True, slots=True)
class CallQueued:
    """A live call enters a queue (the IVR's ``queue`` node)."""

    call_id: str
    queue: str
    priority: int
    at: float
    caller: str = ""
    variables: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not MIN_PRIORITY <= self.priority <= MAX_PRIORITY:
            raise ValueError(f"CallQueued.priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}, "
                             f"not {self.priority}")


@dataclass(frozen=True, slots=True)
class CallerHungUp:
    """The caller left: a waiting call is abandoned, a callback entry is cancelled, a bridged
    call ends (as ``CallEnded``)."""

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
    """The agent answered an ``Offer``: the adapter has bridged the call."""

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
    """A bridged call (or an answered callback) ended."""

    call_id: str
    at: float


@dataclass(frozen=True, slots=True)
class CallbackRequested:
    """The caller pressed the callback key: the live call leaves, an entry keeps its place."""

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


Event = (CallQueued | CallerHungUp | AgentStateRequested | AgentDeviceChanged | OfferAccepted | OfferFailed
         | CallEnded | CallbackRequested | CallbackAnswered | CallbackFailed | WrapUpEnded)
