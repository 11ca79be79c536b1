"""Business-hours calendars (per tenant) for the IVR's time-of-day routing.

A calendar says when a tenant is open, in wall-clock time of its own zone::

    {
      "timezone": "Asia/Shanghai",
      "weekly": {"mon": ["09:00-12:00", "13:00-18:00"], "sat": ["10:00-14:00"]},
      "holidays": ["2026-10-01"],
      "special": {"2026-12-24": ["09:00-15:00"]}
    }

Rules, for a local calendar day D:

* D's own hours are ``special[D]`` if D is listed there (an empty list means
  closed), else none if D is a holiday, else ``weekly`` for D's weekday (a
  weekday not listed is closed);
* a range is ``HH:MM-HH:MM``, start included and end excluded; ``24:00`` may
  end a range; a range ending before its start runs past midnight, and its
  part after midnight belongs to the day it started on: ``fri:
  ["22:00-02:00"]`` is open Saturday 01:00 even if Saturday has no hours
  (``"22:00-00:00"`` simply ends at midnight);
* a holiday is closed the whole calendar day, including the after-midnight
  part of a range started the day before.

Times are compared as wall-clock times after converting the instant to the
calendar's zone, so DST days need nothing special: on the day clocks go
forward, a 09:00 opening is one hour earlier in UTC than the day before; a
range covering the repeated hour of the night clocks go back is open for both
occurrences.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

__all__ = ["ALWAYS_OPEN", "WEEKDAYS", "BusinessCalendar", "TimeRange", "Weekday"]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
#: In ``date.weekday()`` order.
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_MINUTES_PER_DAY = 24 * 60
_TIME = re.compile(r"([0-9]{2}):([0-9]{2})")  # not \d: that would take other scripts' digits
#: Names zoneinfo finds on a Debian system that are not IANA zones (the host's own zone...).
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1024)
def _parse_range(text: str) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` as (start, end) minutes after midnight; end < start crosses midnight."""
    start_text, dash, end_text = text.partition("-")
    if not dash:
        raise _bad_range("time_range", text, "expected 'HH:MM-HH:MM' such as '09:00-17:30'")
    start = _parse_time(start_text.strip(), text)
    end = _parse_time(end_text.strip(), text)
    if start == _MINUTES_PER_DAY:
        raise _bad_range("time_range_24", text, "24:00 can only end a range")
    if start == end:
        raise _bad_range("time_range_equal", text, "start and end are equal (use '00:00-24:00' for all day)")
    return start, end


def _bad_range(code: str, text: str, why: str) -> PydanticCustomError:
    """A ValueError whose pydantic error type is ``code`` (the console translates it, with ``value``)."""
    return PydanticCustomError(code, "invalid time range '{value}': " + why.replace("{", "{{"), {"value": text})


def _parse_time(text: str, whole: str) -> int:
    match = _TIME.fullmatch(text)
    if match is None:
        raise _bad_range("time_range", whole, "expected 'HH:MM-HH:MM' such as '09:00-17:30'")
    hour, minute = int(match[1]), int(match[2])
    if minute > 59 or hour > 24 or (hour == 24 and minute):
        raise _bad_range("time_range", whole, f"{text} is not a time of day")
    return hour * 60 + minute


def _check_range(text: str) -> str:
    start, end = _parse_range(text)
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"  # normalized spacing


#: One opening range, ``"HH:MM-HH:MM"`` (stored normalized, e.g. ``"09:00-17:30"``).
TimeRange = Annotated[str, AfterValidator(_check_range)]


class BusinessCalendar(BaseModel):
    """When a tenant is open; see the module docstring for the rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = Field(description="IANA time zone name, e.g. 'Asia/Shanghai'")
    weekly: dict[Weekday, list[TimeRange]] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list)
    special: dict[date, list[TimeRange]] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
        else:
            if name not in _NOT_ZONES:
                return name
        raise PydanticCustomError("time_zone", "unknown time zone '{value}' (use an IANA name such as 'Asia/Shanghai')",
                                  {"value": name})

    def is_open(self, at: datetime) -> bool:
        """Whether the calendar is open at the instant ``at`` (which must be timezone-aware)."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("is_open needs a timezone-aware datetime")
        local = at.astimezone(ZoneInfo(self.timezone))
        day = local.date()
        minute = local.hour * 60 + local.minute  # [start, end) on whole minutes covers the seconds
        for start, end in self._ranges(day):
            if start <= minute < (_MINUTES_PER_DAY if end < start else end):
                return True
        if day in self.holidays and day not in self.special:
            return False
        # The after-midnight part of yesterday's ranges that cross midnight.
        return any(end < start and minute < end for start, end in self._ranges(day - timedelta(days=1)))

    def _ranges(self, day: date) -> list[tuple[int, int]]:
        """The day's own ranges (special, holiday or weekly), parsed."""
        if day in self.special:
            texts = self.special[day]
        elif day in self.holidays:
            return []
        else:
            texts = self.weekly.get(WEEKDAYS[day.weekday()], [])
        return [_parse_range(text) for text in texts]


#: Open every minute of every day (the demo tenant's calendar).
ALWAYS_OPEN = BusinessCalendar(timezone="UTC", weekly={day: ["00:00-24:00"] for day in WEEKDAYS})
