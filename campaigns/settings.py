"""A campaign's settings: lines, pacing caps, retries, calling window and what people and
machines hear. Stored as JSON on the campaign row; validated here for the API and the runner."""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_RETRY_DELAY = 30 * 86400.0
"""Seconds: a retry is at most 30 days after the attempt before it."""
HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")

DEFAULT_RETRY_DELAYS: dict[str, float] = {
    "busy": 300.0, "no_answer": 1800.0, "machine": 7200.0, "failed": 600.0, "abandoned": 600.0}
"""Seconds before another attempt, by the last attempt's outcome (a busy line is tried again soon,
a machine hours later, an abandoned person soon: they were promised a call back)."""


class Window(BaseModel):
    """When contacts may be called, in each contact's own time zone (``end`` before ``start``:
    the window crosses midnight). ISO weekdays, 1 = Monday."""

    model_config = ConfigDict(extra="forbid")

    start: str = Field(default="09:00", pattern=HHMM.pattern)
    end: str = Field(default="21:00", pattern=HHMM.pattern)
    days: list[Annotated[int, Field(ge=1, le=7)]] = Field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7],
                                                          min_length=1, max_length=7)

    @field_validator("days")
    @classmethod
    def _weekdays(cls, days: list[int]) -> list[int]:
        return sorted(set(days))

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        if self.start == self.end:
            raise ValueError("the calling window's start and end must differ")
        return self

    def times(self) -> tuple[time, time]:
        return time.fromisoformat(self.start), time.fromisoformat(self.end)


class CampaignSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_lines: int = Field(default=10, ge=1, le=500, description="calls in progress at once")
    max_abandon_rate: float = Field(default=0.03, ge=0.0, le=0.2,
                                    description="abandoned / person-answered calls the predictive pacer stays under")
    caller_id_per_minute: int = Field(default=30, ge=1, le=600,
                                      description="calls a minute from the caller ID (carriers block busier ones)")
    max_attempts: int = Field(default=3, ge=1, le=10)
    retry_delays: dict[Literal["busy", "no_answer", "machine", "failed", "abandoned"],
                       Annotated[float, Field(ge=0, le=MAX_RETRY_DELAY)]] = Field(
        default_factory=lambda: dict(DEFAULT_RETRY_DELAYS))  # type: ignore[arg-type]
    window: Window = Field(default_factory=Window)
    timezone: str | None = Field(default=None, max_length=64,
                                 description="IANA zone of contacts without their own; None: the tenant's")
    voice: Literal["zh", "en"] = "zh"
    ring_seconds: float = Field(default=25.0, ge=5, le=60, description="how long a contact's phone rings")
    priority: int = Field(default=90, ge=0, le=99, description="the campaign's calls among the agents' other calls")
    machine_action: Literal["message", "hangup"] = "message"
    machine_message: str = Field(default="您好，这里是客户服务中心，我们稍后会再次与您联系。谢谢，再见。",
                                 min_length=1, max_length=1000)
    abandon_message: str = Field(default="您好，很抱歉，我们的客服人员暂时都在忙，稍后会再与您联系。再见。",
                                 min_length=1, max_length=1000,
                                 description="what a person hears when no agent is free within 2 s")

    @field_validator("retry_delays")
    @classmethod
    def _delays(cls, delays: dict[str, float]) -> dict[str, float]:
        return {**DEFAULT_RETRY_DELAYS, **delays}

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str | None) -> str | None:
        if zone is not None:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {zone!r}") from None
        return zone
