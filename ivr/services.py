"""What the flow engine needs from the platform, as protocols (``callcenter`` provides them).

The IVR never touches the database or the ACD directly: lookups and hand-offs go
through these, so the engine runs the same against the real node and in tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from asr import SpeechEngine
from ivr.calendar import BusinessCalendar
from ivr.http_fetch import fetch_json
from ivr.prompts import PromptLibrary

if TYPE_CHECKING:
    from ivr.runtime import FlowRun
    from ivr.trace import Trace


@dataclass(frozen=True)
class HttpPolicy:
    allow_hosts: tuple[str, ...] = ()
    allow_private: bool = False
    """Only for tests and closed networks: lets flows reach loopback and private addresses."""


class TenantDirectory(Protocol):
    """Live tenant data a running flow reads (calendars change without a new flow version)."""

    async def calendar(self, tenant_id: int | None, name: str) -> BusinessCalendar | None: ...

    async def http_policy(self, tenant_id: int | None) -> HttpPolicy: ...


class QueueHandoff(Protocol):
    async def enqueue(self, run: FlowRun, queue: str, priority: int, variables: dict[str, Any]) -> str | None:
        """Hand the call to the ACD; returns when the ACD is done with it.

        The result is a node id to continue the flow at (an ACD fallback into the IVR),
        or None when the call needs nothing more from the IVR.
        """
        ...


class TraceSink(Protocol):
    async def save(self, trace: Trace) -> None: ...


class VoicemailSink(Protocol):
    async def store(self, run: FlowRun, path: Path, seconds: float) -> None: ...


class RatingSink(Protocol):
    async def rate(self, run: FlowRun, rating: int) -> bool:
        """Store the caller's satisfaction rating (1-5) of the contact this flow runs after (a survey
        sent after the agent hung up: the platform gives the contact in the run's variables). False
        when there is nothing to rate (not after an agent) or the contact was rated already."""
        ...


class NoRatings:
    """Ratings are traced only (tools and tests that keep none)."""

    async def rate(self, run: FlowRun, rating: int) -> bool:
        return False


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class IvrServices:
    prompts: PromptLibrary
    speech: Callable[[int | None], SpeechEngine]
    """The recognizer engine of a tenant (its own model, or the node's)."""
    directory: TenantDirectory
    queue: QueueHandoff
    traces: TraceSink
    voicemail: VoicemailSink
    voicemail_dir: Path
    now: Callable[[], datetime] = field(default=utcnow)
    fetch_json: Callable[..., Awaitable[Any]] = field(default=fetch_json)
    """What http nodes request through (``ivr.http_fetch.fetch_json``; the simulator answers from its mocks)."""
    ratings: RatingSink = field(default_factory=NoRatings)
    """Where survey nodes store the caller's rating."""
