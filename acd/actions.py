"""What the engine asks the adapter to do, in the order returned."""

from __future__ import annotations

from dataclasses import dataclass

from .model import Channel, Fallback


@dataclass(frozen=True, slots=True)
class Offer:
    """Ring the agent with the call (a ring_all call gets one Offer per agent), or offer them
    the chat (``channel`` ``chat``: one agent at a time, the agent stays available)."""

    call_id: str
    agent_id: str
    channel: Channel = "voice"


@dataclass(frozen=True, slots=True)
class CancelOffer:
    """Stop ringing the agent (another agent took the call, the caller left, the ring timed
    out, the caller asked for a callback, the agent's device went away, the agent was
    removed or a supervisor moved the call); also the answer to an ``OfferAccepted`` the
    engine no longer expected (the offer had ended): the adapter drops that agent's leg."""

    call_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class Announce:
    """Tell the waiting caller their position (1-based, in the queue's order) and the
    estimated wait in seconds (None without handle-time history or staffed agents)."""

    call_id: str
    position: int
    estimated_wait: float | None


@dataclass(frozen=True, slots=True)
class Overflow:
    """The call leaves the ACD to ``fallback`` (never of kind ``queue``: the engine re-queues
    those itself and publishes ``Overflowed``)."""

    call_id: str
    fallback: Fallback


@dataclass(frozen=True, slots=True)
class DialCallback:
    """Dial ``number`` for callback entry ``call_id``; ``agent_id`` is already reserved for it.

    Report ``CallbackAnswered`` (agent on_call) or ``CallbackFailed`` (agent released)."""

    call_id: str
    agent_id: str
    number: str


Action = Offer | CancelOffer | Announce | Overflow | DialCallback
