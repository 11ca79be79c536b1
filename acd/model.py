"""Configuration of queues and agents, and the agent states."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

MIN_PROFICIENCY = 1
MAX_PROFICIENCY = 5

Channel = Literal["voice", "chat"]
"""What waits in a queue: a phone call, or a web chat (an agent holds several chats at once)."""
CHANNELS: tuple[str, ...] = ("voice", "chat")

FallbackKind = Literal["voicemail", "callback", "queue", "ivr", "hangup"]
FALLBACK_KINDS: tuple[str, ...] = ("voicemail", "callback", "queue", "ivr", "hangup")


class Strategy(StrEnum):
    LONGEST_IDLE = "longest_idle"
    FEWEST_CALLS = "fewest_calls"
    """Fewest calls answered today (since ``AcdEngine.reset_day``), then longest idle."""
    ROUND_ROBIN = "round_robin"
    """Per queue rotation in agent id order, starting after the agent who got the last call."""
    MOST_PROFICIENT = "most_proficient"
    """Highest proficiency in the queue's skill, then longest idle."""
    RING_ALL = "ring_all"
    """Every eligible available agent rings at once; the first to accept wins."""


class AgentState(StrEnum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    RESERVED = "reserved"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    BREAK = "break"


BUSY_STATES = frozenset({AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP})
"""States in which an agent is working a call: requests to change state wait for the work to end."""
STAFFED_STATES = frozenset({AgentState.AVAILABLE, AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP})
"""States that count as staffing a queue (used for the estimated wait)."""


def _check_proficiency(value: int, what: str) -> None:
    if not MIN_PROFICIENCY <= value <= MAX_PROFICIENCY:
        raise ValueError(f"{what} must be between {MIN_PROFICIENCY} and {MAX_PROFICIENCY}, not {value}")


def _check_duration(value: float, what: str, *, positive: bool = False) -> None:
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{what} must be a finite number {'> 0' if positive else '>= 0'}, not {value}")


@dataclass(frozen=True, slots=True)
class RelaxStep:
    """After ``after`` seconds in the queue, widen who may take the call.

    Agents with the queue's skill at ``min_proficiency`` or more may take it, and so may
    agents with any of ``add_skills`` at ``min_proficiency`` (1 when None) or more.
    Steps are cumulative: a later step never narrows what an earlier one allowed.
    """

    after: float
    min_proficiency: int | None = None
    add_skills: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_duration(self.after, "RelaxStep.after")
        if self.min_proficiency is not None:
            _check_proficiency(self.min_proficiency, "RelaxStep.min_proficiency")
        if isinstance(self.add_skills, str):
            raise ValueError("RelaxStep.add_skills must be a tuple of skill names, not a string")
        if any(not s for s in self.add_skills):
            raise ValueError("RelaxStep.add_skills must not contain empty skill names")


@dataclass(frozen=True, slots=True)
class Fallback:
    """Where a call goes when it leaves a queue unanswered.

    ``target`` names the other queue (kind ``queue``) or the IVR node (kind ``ivr``); the
    other kinds may carry a target for the adapter's own use (e.g. a voicemail box).
    """

    kind: FallbackKind
    target: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FALLBACK_KINDS:
            raise ValueError(f"Fallback.kind must be one of {', '.join(FALLBACK_KINDS)}, not {self.kind!r}")
        if self.kind in ("queue", "ivr") and not self.target:
            raise ValueError(f"a fallback of kind {self.kind!r} needs a target")


@dataclass(frozen=True, slots=True)
class QueueConfig:
    name: str
    skill: str | None = None
    """The skill agents need; defaults to the queue's name."""
    strategy: Strategy = Strategy.LONGEST_IDLE
    min_proficiency: int = 1
    relax: tuple[RelaxStep, ...] = ()
    max_size: int | None = None
    """Entries in line (live calls and callbacks) beyond which a new call goes to ``on_full``."""
    on_full: Fallback = Fallback("hangup")
    max_wait: float | None = None
    """Seconds in this queue after which a live call goes to ``on_timeout`` (callbacks never time out)."""
    on_timeout: Fallback = Fallback("voicemail")
    ring_timeout: float = 15.0
    wrapup: float = 10.0
    announce_every: float | None = 30.0
    sl_threshold: float = 20.0
    callback_retries: int = 2
    callback_retry_delay: float = 60.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("QueueConfig.name must not be empty")
        if self.skill is None:
            object.__setattr__(self, "skill", self.name)
        elif not self.skill:
            raise ValueError("QueueConfig.skill must not be empty")
        object.__setattr__(self, "strategy", Strategy(self.strategy))
        _check_proficiency(self.min_proficiency, "QueueConfig.min_proficiency")
        object.__setattr__(self, "relax", tuple(self.relax))
        afters = [step.after for step in self.relax]
        if afters != sorted(afters):
            raise ValueError("QueueConfig.relax steps must be ordered by 'after'")
        if self.max_size is not None and self.max_size < 1:
            raise ValueError(f"QueueConfig.max_size must be >= 1 or None, not {self.max_size}")
        if self.max_wait is not None:
            _check_duration(self.max_wait, "QueueConfig.max_wait", positive=True)
        _check_duration(self.ring_timeout, "QueueConfig.ring_timeout", positive=True)
        _check_duration(self.wrapup, "QueueConfig.wrapup")
        if self.announce_every is not None:
            _check_duration(self.announce_every, "QueueConfig.announce_every", positive=True)
        _check_duration(self.sl_threshold, "QueueConfig.sl_threshold")
        if self.callback_retries < 0:
            raise ValueError(f"QueueConfig.callback_retries must be >= 0, not {self.callback_retries}")
        _check_duration(self.callback_retry_delay, "QueueConfig.callback_retry_delay")
        for label, fallback in (("on_full", self.on_full), ("on_timeout", self.on_timeout)):
            if fallback.kind == "queue" and fallback.target == self.name:
                raise ValueError(f"QueueConfig.{label} must not overflow queue {self.name!r} into itself")

    @property
    def queue_skill(self) -> str:
        """The skill, never None (``__post_init__`` fills it in)."""
        assert self.skill is not None
        return self.skill


@dataclass(frozen=True, slots=True)
class AgentConfig:
    agent_id: str
    skills: dict[str, int] = field(default_factory=dict)
    """Skill name -> proficiency 1..5."""
    chat_capacity: int = 0
    """Chats (offered or connected) the agent may hold at once; 0: none."""

    def __post_init__(self) -> None:
        if not self.agent_id:
            raise ValueError("AgentConfig.agent_id must not be empty")
        if self.chat_capacity < 0:
            raise ValueError(f"AgentConfig.chat_capacity must be >= 0, not {self.chat_capacity}")
        for skill, proficiency in self.skills.items():
            if not skill:
                raise ValueError("AgentConfig.skills must not contain an empty skill name")
            _check_proficiency(proficiency, f"proficiency of skill {skill!r}")
        object.__setattr__(self, "skills", dict(self.skills))
