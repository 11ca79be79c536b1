"""When and how often a campaign may call (pure: instants and counts in, decisions out).

* :class:`CallingWindow`: the hours a contact may be called, in the contact's own time zone. The
  hours mean what the IVR's business calendars mean (``ivr.calendar``, which this delegates
  to): wall-clock times, start included and end excluded, a window whose end is before its start
  runs past midnight and belongs to the day it started on (``days={5}``, 20:00-02:00 is open
  Saturday 01:00), so DST days need nothing special.
* :class:`RetryPolicy`: whether and when a contact is called again after an attempt.
* :class:`CallerIdRate`: carriers in China flag a caller ID that places many calls a minute as a
  nuisance caller and block it; the runner takes a slot before each call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from zoneinfo import ZoneInfo

from campaigns.outcomes import OUTCOMES, RETRYABLE
from campaigns.settings import DEFAULT_RETRY_DELAYS
from ivr.calendar import WEEKDAYS, BusinessCalendar

__all__ = ["ALL_DAYS", "CallerIdRate", "CallingWindow", "RetryPolicy", "check_time_zone"]

ALL_DAYS = frozenset(range(1, 8))
"""ISO weekdays, 1 = Monday ... 7 = Sunday."""
_SEARCH_DAYS = 16
"""How far ``next_open`` looks: a weekly window opens within 8 days, twice that is safe even
when a clock change swallows one opening."""


@lru_cache(maxsize=1024)
def check_time_zone(name: str) -> str:
    """``name`` if it is an IANA time zone this host knows (the IVR calendars' rule); else ValueError."""
    BusinessCalendar(timezone=name)
    return name


@dataclass(frozen=True)
class CallingWindow:
    """Calls are allowed from ``start`` to ``end`` local time on ``days`` (ISO weekdays, 1-7).

    Times are whole minutes; ``end`` 00:00 is midnight, start and end cannot be equal.
    """

    start: time = time(9)
    end: time = time(21)
    days: frozenset[int] = ALL_DAYS

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", frozenset(self.days))  # a list or set from JSON would not hash
        if not self.days or not self.days <= ALL_DAYS:
            raise ValueError("days are ISO weekdays: at least one of 1 (Monday) to 7 (Sunday)")
        for t in (self.start, self.end):
            if t.second or t.microsecond or t.tzinfo is not None:
                raise ValueError("a calling window's times are local times in whole minutes")
        if self.start == self.end:
            raise ValueError("a calling window's start and end must differ")

    def allows(self, at: datetime, tz: str) -> bool:
        """Whether a contact in the zone ``tz`` may be called at the instant ``at`` (timezone-aware)."""
        return _calendar(self, tz).is_open(at)

    def next_open(self, at: datetime, tz: str) -> datetime:
        """The first instant at or after ``at`` when the window is open (``at`` itself when open), in UTC."""
        calendar = _calendar(self, tz)
        if calendar.is_open(at):
            return at.astimezone(UTC)
        # The window opens either when the wall clock reaches ``start`` (once, or twice in the hour
        # repeated when clocks go back) or when a clock change jumps into the window.
        zone = ZoneInfo(tz)
        first_day = at.astimezone(zone).date() - timedelta(days=1)
        candidates: set[datetime] = set()
        for day in (first_day + timedelta(days=n) for n in range(_SEARCH_DAYS)):
            opening = datetime.combine(day, self.start)
            candidates.update(opening.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
            change = _clock_change(zone, day)
            if change is not None:
                candidates.add(change)
        for candidate in sorted(candidates):
            if candidate > at and calendar.is_open(candidate):
                return candidate
        raise AssertionError("a weekly window opens within two weeks")


@lru_cache(maxsize=4096)
def _calendar(window: CallingWindow, tz: str) -> BusinessCalendar:
    """The window as a business calendar in ``tz`` (ValueError for an unknown zone)."""
    hours = f"{window.start:%H:%M}-{window.end:%H:%M}"
    return BusinessCalendar(timezone=tz, weekly={WEEKDAYS[day - 1]: [hours] for day in window.days})


def _clock_change(zone: ZoneInfo, day: date) -> datetime | None:
    """The instant (to the second) ``zone`` changes its UTC offset during the UTC day ``day``, if it does."""
    midnight = datetime.combine(day, time(), UTC)
    before = midnight.astimezone(zone).utcoffset()
    low, high = 0, 86_400  # seconds after midnight: still ``before``, already changed
    if (midnight + timedelta(seconds=high)).astimezone(zone).utcoffset() == before:
        return None
    while high - low > 1:
        middle = (low + high) // 2
        if (midnight + timedelta(seconds=middle)).astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return midnight + timedelta(seconds=high)


@dataclass(frozen=True)
class RetryPolicy:
    """Whether a contact is called again: after ``person``, ``dnc`` or ``invalid`` never; after the
    other outcomes once their delay has passed, while fewer than ``max_attempts`` were made.

    ``delays`` (seconds by outcome) override the defaults of ``campaigns.settings``
    (``DEFAULT_RETRY_DELAYS``): busy 5 min, no answer 30 min, machine 2 h, failed 10 min,
    abandoned 10 min.
    """

    max_attempts: int = 3
    delays: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(dict(DEFAULT_RETRY_DELAYS)))

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts is at least 1")
        unknown = set(self.delays) - RETRYABLE
        if unknown:
            raise ValueError(f"no retry for {', '.join(sorted(unknown))}: delays are for {', '.join(sorted(RETRYABLE))}")
        if any(delay < 0 for delay in self.delays.values()):
            raise ValueError("retry delays are not negative")

    def after(self, outcome: str, attempts: int) -> float | None:
        """Seconds until the next attempt after ``attempts`` attempts, the last ending in ``outcome``;
        None when the contact is done."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        if outcome not in RETRYABLE or attempts >= self.max_attempts:
            return None
        return self.delays.get(outcome, DEFAULT_RETRY_DELAYS[outcome])


class CallerIdRate:
    """At most ``per_minute`` calls from one caller ID in any 60 s (a sliding window)."""

    WINDOW = 60.0

    def __init__(self, per_minute: int) -> None:
        if per_minute < 1:
            raise ValueError("per_minute is at least 1")
        self.per_minute = per_minute
        self._taken: dict[str, deque[float]] = {}

    def take(self, number: str, now: float) -> bool:
        """Take a slot for a call from ``number`` at ``now`` (seconds); False when none is free."""
        taken = self._recent(number, now)
        if len(taken) >= self.per_minute:
            return False
        taken.append(now)
        return True

    def free(self, number: str, now: float) -> int:
        """How many calls ``number`` may place at ``now``."""
        return self.per_minute - len(self._recent(number, now))

    def next_free(self, number: str, now: float) -> float:
        """When ``take(number, ...)`` will succeed next: ``now`` if a slot is free."""
        taken = self._recent(number, now)
        return now if len(taken) < self.per_minute else taken[0] + self.WINDOW

    def _recent(self, number: str, now: float) -> deque[float]:
        # One queue per caller ID in use: a tenant's own numbers, a handful.
        taken = self._taken.setdefault(number, deque())
        while taken and taken[0] + self.WINDOW <= now:
            taken.popleft()
        return taken
