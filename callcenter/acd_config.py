"""Queue settings as stored (JSON) and sent through the API, turned into ``acd.QueueConfig``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from acd import Fallback, QueueConfig, RelaxStep, Strategy

SKILL = r"^[a-z0-9][a-z0-9_-]{0,63}$"


class FallbackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["voicemail", "callback", "queue", "ivr", "hangup"]
    target: str | None = Field(default=None, max_length=64, description="queue name or IVR node id")


class RelaxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: float = Field(gt=0, le=3600, description="seconds of waiting")
    min_proficiency: int | None = Field(default=None, ge=1, le=5)
    add_skills: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)


class QueueSettings(BaseModel):
    """Everything about a queue except its name; defaults are a sensible service desk."""

    model_config = ConfigDict(extra="forbid")
    skill: str | None = Field(default=None, pattern=SKILL, description="agents' skill; the queue name if unset")
    strategy: Strategy = Strategy.LONGEST_IDLE
    min_proficiency: int = Field(default=1, ge=1, le=5)
    relax: list[RelaxSettings] = Field(default_factory=list, max_length=10)
    max_size: int | None = Field(default=None, ge=1, le=100_000)
    on_full: FallbackSettings = FallbackSettings(kind="hangup")
    max_wait: float | None = Field(default=None, gt=0, le=86_400)
    on_timeout: FallbackSettings = FallbackSettings(kind="voicemail")
    ring_timeout: float = Field(default=15.0, ge=5, le=120)
    wrapup: float = Field(default=10.0, ge=0, le=3600)
    announce_every: float | None = Field(default=30.0, ge=10, le=3600)
    sl_threshold: float = Field(default=20.0, gt=0, le=3600, description="answered within this many seconds")
    sl_target: float = Field(default=0.8, gt=0, le=1)
    callback_key: str | None = Field(default="*", pattern=r"^[0-9*#]$", description="None: no callbacks")
    callback_retries: int = Field(default=2, ge=0, le=10)
    callback_retry_delay: float = Field(default=60.0, ge=1, le=86_400)
    caller_id: str | None = Field(default=None, pattern=r"^[0-9]{3,32}$",
                                  description="the tenant's number its agents call out from by default")
    faq_bot: bool = Field(default=False, description="web chats in this queue meet the FAQ bot before an agent")


def queue_config(name: str, stored: dict[str, Any]) -> QueueConfig:
    s = QueueSettings.model_validate(stored)
    return QueueConfig(
        name=name, skill=s.skill, strategy=s.strategy, min_proficiency=s.min_proficiency,
        relax=tuple(RelaxStep(r.after, r.min_proficiency, tuple(r.add_skills)) for r in s.relax),
        max_size=s.max_size, on_full=Fallback(s.on_full.kind, s.on_full.target), max_wait=s.max_wait,
        on_timeout=Fallback(s.on_timeout.kind, s.on_timeout.target), ring_timeout=s.ring_timeout,
        wrapup=s.wrapup, announce_every=s.announce_every, sl_threshold=s.sl_threshold,
        callback_retries=s.callback_retries, callback_retry_delay=s.callback_retry_delay)


def callback_key(stored: dict[str, Any]) -> str | None:
    return QueueSettings.model_validate(stored).callback_key


def queue_caller_id(stored: dict[str, Any]) -> str | None:
    return QueueSettings.model_validate(stored).caller_id


def queue_faq_bot(stored: dict[str, Any]) -> bool:
    return QueueSettings.model_validate(stored).faq_bot
