"""ivr.calendar: business hours per tenant, across midnight and DST changes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from ivr.calendar import ALWAYS_OPEN, WEEKDAYS, BusinessCalendar

UTC = timezone.utc
CST = timezone(timedelta(hours=8))  # China Standard Time, as a fixed offset
CET = timezone(timedelta(hours=1))  # Berlin in winter


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def minutes(start: datetime, end: datetime) -> Iterator[datetime]:
    """Every minute instant in [start, end)."""
    while start < end:
        yield start
        start += timedelta(minutes=1)


def open_minutes(calendar: BusinessCalendar, start: datetime, end: datetime) -> int:
    return sum(calendar.is_open(at) for at in minutes(start, end))


SHANGHAI = BusinessCalendar(
    timezone="Asia/Shanghai",
    weekly={
        "mon": ["09:00-12:00", "13:00-18:00"],
        "fri": ["09:00-18:00", "22:00-02:00"],  # a night shift into Saturday
        "sun": ["20:00-24:00"],
    },
    holidays=[date(2026, 10, 1), date(2026, 11, 28)],
    special={date(2026, 12, 24): ["09:00-15:00"], date(2026, 11, 30): []},
)


# --- weekly hours ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-11-23T08:59:59", False),  # Monday
        ("2026-11-23T09:00:00", True),  # start included
        ("2026-11-23T11:59:59", True),
        ("2026-11-23T12:00:00", False),  # end excluded
        ("2026-11-23T12:30:00", False),  # lunch
        ("2026-11-23T13:00:00", True),
        ("2026-11-23T17:59:59.999999", True),
        ("2026-11-23T18:00:00", False),
        ("2026-11-24T10:00:00", False),  # Tuesday is not listed: closed
        ("2026-11-22T19:59:00", False),  # Sunday until 24:00
        ("2026-11-22T20:00:00", True),
        ("2026-11-22T23:59:59", True),
        ("2026-11-23T00:00:00", False),  # 24:00 ends the range: nothing spills into Monday
    ],
)
def test_weekly_hours(local: str, expected: bool) -> None:
    assert SHANGHAI.is_open(datetime.fromisoformat(local).replace(tzinfo=CST)) is expected


def test_instant_is_converted_to_the_calendars_zone() -> None:
    # Monday 09:30 in Shanghai is 01:30 UTC and Sunday 20:30 in New York.
    at = utc("2026-11-23T01:30")
    assert SHANGHAI.is_open(at)
    assert SHANGHAI.is_open(at.astimezone(timezone(timedelta(hours=-5))))
    assert not SHANGHAI.is_open(utc("2026-11-23T00:59"))  # 08:59 in Shanghai


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="^is_open needs a timezone-aware datetime$"):
        SHANGHAI.is_open(datetime(2026, 11, 23, 10, 0))


# --- midnight -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-11-27T21:59", False),  # Friday
        ("2026-11-27T22:00", True),
        ("2026-11-27T23:59", True),
        ("2026-11-21T00:00", True),  # Saturday (not a holiday): Friday's range goes on
        ("2026-11-21T01:59", True),
        ("2026-11-21T02:00", False),
        ("2026-11-21T12:00", False),  # Saturday has no hours of its own
        ("2026-11-20T00:30", False),  # Friday morning: Thursday had no night range
    ],
)
def test_range_crossing_midnight(local: str, expected: bool) -> None:
    assert SHANGHAI.is_open(datetime.fromisoformat(local).replace(tzinfo=CST)) is expected


def test_range_ending_at_midnight_does_not_spill() -> None:
    calendar = BusinessCalendar(timezone="UTC", weekly={"mon": ["22:00-00:00"]})
    assert calendar.is_open(utc("2026-11-23T23:59"))
    assert not calendar.is_open(utc("2026-11-24T00:00"))
    assert calendar.weekly["mon"] == ["22:00-00:00"]


def test_sunday_night_spills_into_monday() -> None:
    calendar = BusinessCalendar(timezone="UTC", weekly={"sun": ["23:00-01:00"]})
    assert calendar.is_open(utc("2026-11-22T23:30"))
    assert calendar.is_open(utc("2026-11-23T00:30"))  # Monday
    assert not calendar.is_open(utc("2026-11-23T01:00"))


def test_full_day_and_overlapping_ranges() -> None:
    calendar = BusinessCalendar(timezone="UTC", weekly={"tue": ["00:00-24:00"], "wed": ["09:00-12:00", "11:00-13:00"]})
    assert open_minutes(calendar, utc("2026-11-24T00:00"), utc("2026-11-25T00:00")) == 24 * 60
    assert open_minutes(calendar, utc("2026-11-25T00:00"), utc("2026-11-26T00:00")) == 4 * 60


# --- holidays and special days --------------------------------------------------------------------


def test_holiday_is_closed_all_day() -> None:
    calendar = BusinessCalendar(
        timezone="Asia/Shanghai", weekly={"mon": ["09:00-18:00"]}, holidays=[date(2026, 11, 23)]
    )
    assert not calendar.is_open(datetime(2026, 11, 23, 10, tzinfo=CST))
    assert calendar.is_open(datetime(2026, 11, 30, 10, tzinfo=CST))  # the next Monday


def test_holiday_cuts_off_the_night_range_of_the_day_before() -> None:
    # 2026-11-28 is the Saturday after Friday 2026-11-27's 22:00-02:00 range.
    assert SHANGHAI.is_open(datetime(2026, 11, 27, 23, 30, tzinfo=CST))
    assert not SHANGHAI.is_open(datetime(2026, 11, 28, 0, 30, tzinfo=CST))


def test_night_range_of_a_holiday_does_not_start() -> None:
    calendar = BusinessCalendar(timezone="UTC", weekly={"fri": ["22:00-02:00"]}, holidays=[date(2026, 11, 27)])
    assert not calendar.is_open(utc("2026-11-27T23:00"))  # the holiday itself
    assert not calendar.is_open(utc("2026-11-28T01:00"))  # nothing started on the holiday


def test_special_day_replaces_weekly_hours() -> None:
    # Christmas Eve 2026 is a Thursday (no weekly hours): open 09:00-15:00 that day only.
    assert SHANGHAI.is_open(datetime(2026, 12, 24, 14, 59, tzinfo=CST))
    assert not SHANGHAI.is_open(datetime(2026, 12, 24, 15, 0, tzinfo=CST))
    assert not SHANGHAI.is_open(datetime(2026, 12, 17, 10, 0, tzinfo=CST))  # an ordinary Thursday
    # An empty special list closes a Monday.
    assert not SHANGHAI.is_open(datetime(2026, 11, 30, 10, 0, tzinfo=CST))
    assert SHANGHAI.is_open(datetime(2026, 12, 7, 10, 0, tzinfo=CST))


def test_special_day_shorter_hours_on_a_weekday() -> None:
    calendar = BusinessCalendar(
        timezone="Europe/Berlin",
        weekly={"thu": ["08:00-20:00"]},
        special={date(2026, 12, 24): ["08:00-12:00"]},
    )
    assert calendar.is_open(datetime(2026, 12, 24, 11, 59, tzinfo=CET))
    assert not calendar.is_open(datetime(2026, 12, 24, 12, 0, tzinfo=CET))
    assert calendar.is_open(datetime(2026, 12, 17, 19, 0, tzinfo=CET))  # the Thursday before


def test_special_beats_holiday_and_its_night_range_spills() -> None:
    calendar = BusinessCalendar(
        timezone="UTC",
        holidays=[date(2026, 12, 31)],
        special={date(2026, 12, 31): ["20:00-03:00"]},  # New Year's Eve party line
    )
    assert not calendar.is_open(utc("2026-12-31T19:59"))
    assert calendar.is_open(utc("2026-12-31T20:00"))
    assert calendar.is_open(utc("2027-01-01T02:59"))
    assert not calendar.is_open(utc("2027-01-01T03:00"))


def test_special_day_still_gets_the_night_range_of_the_day_before() -> None:
    calendar = BusinessCalendar(
        timezone="UTC", weekly={"wed": ["22:00-02:00"]}, special={date(2026, 12, 24): ["10:00-12:00"]}
    )
    assert calendar.is_open(utc("2026-12-24T01:00"))  # Wednesday's night shift
    assert not calendar.is_open(utc("2026-12-24T09:00"))
    assert calendar.is_open(utc("2026-12-24T10:00"))


# --- DST --------------------------------------------------------------------------------------------


BERLIN = BusinessCalendar(
    timezone="Europe/Berlin",
    weekly={day: ["09:00-17:00"] for day in ("sat", "sun")} | {"fri": ["22:00-06:00"]},
)


def test_opening_follows_the_clock_change_in_spring() -> None:
    # Clocks go forward on Sunday 2026-03-29: 09:00 is 08:00 UTC on Saturday, 07:00 UTC on Sunday.
    assert not BERLIN.is_open(utc("2026-03-28T07:30"))
    assert BERLIN.is_open(utc("2026-03-28T08:00"))
    assert BERLIN.is_open(utc("2026-03-29T07:00"))
    assert not BERLIN.is_open(utc("2026-03-29T06:59"))
    # Closing: 17:00 is 16:00 UTC on Saturday and 15:00 UTC on Sunday.
    assert BERLIN.is_open(utc("2026-03-28T15:30"))
    assert not BERLIN.is_open(utc("2026-03-29T15:30"))
    # Eight hours of wall clock are eight real hours on both days (Saturday counted from the
    # end of Friday's night range, 06:00 CET).
    assert open_minutes(BERLIN, utc("2026-03-28T05:00"), utc("2026-03-29T00:00")) == 8 * 60
    assert open_minutes(BERLIN, utc("2026-03-29T00:00"), utc("2026-03-30T00:00")) == 8 * 60


def test_opening_follows_the_clock_change_in_autumn() -> None:
    # Clocks go back on Sunday 2026-10-25: 09:00 is 07:00 UTC on Saturday, 08:00 UTC on Sunday.
    assert BERLIN.is_open(utc("2026-10-24T07:30"))
    assert not BERLIN.is_open(utc("2026-10-25T07:30"))
    assert BERLIN.is_open(utc("2026-10-25T08:00"))
    assert open_minutes(BERLIN, utc("2026-10-25T00:00"), utc("2026-10-26T00:00")) == 8 * 60


def test_night_range_across_the_spring_forward_night() -> None:
    # The night before (Friday 22:00 CET to Saturday 06:00 CET) is an ordinary 8 hours.
    assert open_minutes(BERLIN, utc("2026-03-27T12:00"), utc("2026-03-28T07:00")) == 8 * 60
    # The clocks change in the night from Saturday to Sunday: that night shift is 7 real hours.
    calendar = BusinessCalendar(timezone="Europe/Berlin", weekly={"sat": ["22:00-06:00"]})
    assert calendar.is_open(utc("2026-03-28T21:00"))  # 22:00 CET
    assert calendar.is_open(utc("2026-03-29T03:59"))  # 05:59 CEST
    assert not calendar.is_open(utc("2026-03-29T04:00"))  # 06:00 CEST
    assert open_minutes(calendar, utc("2026-03-28T12:00"), utc("2026-03-29T12:00")) == 7 * 60


def test_night_range_across_the_fall_back_night_gains_an_hour() -> None:
    calendar = BusinessCalendar(timezone="Europe/Berlin", weekly={"sat": ["22:00-06:00"]})
    assert calendar.is_open(utc("2026-10-24T20:00"))  # 22:00 CEST
    assert calendar.is_open(utc("2026-10-25T04:59"))  # 05:59 CET
    assert not calendar.is_open(utc("2026-10-25T05:00"))  # 06:00 CET
    assert open_minutes(calendar, utc("2026-10-24T12:00"), utc("2026-10-25T12:00")) == 9 * 60


def test_repeated_hour_is_open_both_times() -> None:
    # On 2026-10-25 Berlin lives 02:00-03:00 twice (00:00-01:00 UTC in CEST, 01:00-02:00 UTC in CET).
    calendar = BusinessCalendar(timezone="Europe/Berlin", weekly={"sun": ["02:00-03:00"]})
    assert calendar.is_open(utc("2026-10-25T00:00"))
    assert calendar.is_open(utc("2026-10-25T01:59"))
    assert not calendar.is_open(utc("2026-10-25T02:00"))
    assert not calendar.is_open(utc("2026-10-24T23:59"))
    assert open_minutes(calendar, utc("2026-10-24T12:00"), utc("2026-10-25T12:00")) == 2 * 60


def test_skipped_hour_is_never_open() -> None:
    # New York skips 02:00-03:00 on 2026-03-08 (06:59 UTC is 01:59 EST, 07:00 UTC is 03:00 EDT).
    skipped = BusinessCalendar(timezone="America/New_York", weekly={"sun": ["02:00-03:00"]})
    assert open_minutes(skipped, utc("2026-03-08T00:00"), utc("2026-03-09T00:00")) == 0
    around = BusinessCalendar(timezone="America/New_York", weekly={"sun": ["01:00-04:00"]})
    assert not around.is_open(utc("2026-03-08T05:59"))  # 00:59 EST
    assert around.is_open(utc("2026-03-08T06:00"))  # 01:00 EST
    assert around.is_open(utc("2026-03-08T07:59"))  # 03:59 EDT
    assert not around.is_open(utc("2026-03-08T08:00"))  # 04:00 EDT
    assert open_minutes(around, utc("2026-03-08T00:00"), utc("2026-03-09T00:00")) == 2 * 60


def test_holiday_follows_the_local_date() -> None:
    # 2026-11-23 00:30 in Shanghai is still 2026-11-22 in UTC: the local date decides.
    calendar = BusinessCalendar(
        timezone="Asia/Shanghai", weekly={"mon": ["00:00-24:00"]}, holidays=[date(2026, 11, 23)]
    )
    assert not calendar.is_open(utc("2026-11-22T16:30"))  # Monday 00:30 in Shanghai
    assert calendar.is_open(utc("2026-11-29T16:30"))  # the next Monday


# --- ALWAYS_OPEN ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "at",
    [
        utc("2026-01-01T00:00"),
        utc("2026-03-29T01:30"),
        utc("2026-10-25T01:30"),
        utc("2026-12-31T23:59:59"),
        datetime(2026, 6, 15, 3, 0, tzinfo=timezone(timedelta(hours=-11))),
    ],
)
def test_always_open(at: datetime) -> None:
    assert ALWAYS_OPEN.is_open(at)


def test_always_open_every_minute_of_a_week() -> None:
    start = utc("2026-11-23T00:00")
    assert open_minutes(ALWAYS_OPEN, start, start + timedelta(days=7)) == 7 * 24 * 60
    assert set(ALWAYS_OPEN.weekly) == set(WEEKDAYS)


# --- validation and JSON ----------------------------------------------------------------------------


def test_json_round_trip() -> None:
    document: dict[str, Any] = {
        "timezone": "Asia/Shanghai",
        "weekly": {"mon": ["09:00-12:00", "13:00-18:00"], "fri": ["22:00-02:00"]},
        "holidays": ["2026-10-01"],
        "special": {"2026-12-24": ["09:00-15:00"]},
    }
    calendar = BusinessCalendar.model_validate(document)
    assert calendar.model_dump(mode="json") == document
    assert BusinessCalendar.model_validate_json(calendar.model_dump_json()) == calendar


def test_defaults_and_normalized_ranges() -> None:
    calendar = BusinessCalendar.model_validate({"timezone": "UTC", "weekly": {"mon": [" 09:00 - 17:30 "]}})
    assert calendar.weekly == {"mon": ["09:00-17:30"]}
    assert calendar.holidays == [] and calendar.special == {}
    assert not BusinessCalendar(timezone="UTC").is_open(utc("2026-11-23T12:00"))  # no hours: always closed


def validation_message(document: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        BusinessCalendar.model_validate(document)
    return str(info.value)


@pytest.mark.parametrize(
    "zone",
    [
        "Mars/Olympus_Mons", "asia/shanghai", "Asia/Shanghai ", "", "../../etc/passwd", "/etc/localtime",
        "localtime", "America",
    ],
)
def test_unknown_time_zone(zone: str) -> None:
    message = validation_message({"timezone": zone})
    assert f"unknown time zone {zone!r} (use an IANA name such as 'Asia/Shanghai')" in message


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "UTC", "America/New_York", "Etc/GMT-8", "Europe/London"])
def test_known_time_zones(zone: str) -> None:
    assert BusinessCalendar(timezone=zone).timezone == zone


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("9:00-17:00", "invalid time range '9:00-17:00': expected 'HH:MM-HH:MM' such as '09:00-17:30'"),
        ("0900-1700", "invalid time range '0900-1700': expected 'HH:MM-HH:MM' such as '09:00-17:30'"),
        ("09:00", "invalid time range '09:00': expected 'HH:MM-HH:MM' such as '09:00-17:30'"),
        ("09:00-25:00", "invalid time range '09:00-25:00': 25:00 is not a time of day"),
        ("09:60-10:00", "invalid time range '09:60-10:00': 09:60 is not a time of day"),
        ("09:00-24:01", "invalid time range '09:00-24:01': 24:01 is not a time of day"),
        ("24:00-02:00", "invalid time range '24:00-02:00': 24:00 can only end a range"),
        ("09:00-09:00", "invalid time range '09:00-09:00': start and end are equal (use '00:00-24:00' for all day)"),
        ("٠٩:00-17:00", "invalid time range '٠٩:00-17:00': expected 'HH:MM-HH:MM' such as '09:00-17:30'"),
        ("09:00-17:00-18:00", "invalid time range '09:00-17:00-18:00': expected 'HH:MM-HH:MM' such as '09:00-17:30'"),
    ],
)
def test_invalid_ranges(text: str, problem: str) -> None:
    assert problem in validation_message({"timezone": "UTC", "weekly": {"mon": [text]}})
    assert problem in validation_message({"timezone": "UTC", "special": {"2026-12-24": [text]}})


def test_invalid_weekday_and_dates() -> None:
    assert "weekly.monday" in validation_message({"timezone": "UTC", "weekly": {"monday": ["09:00-17:00"]}})
    assert "holidays.0" in validation_message({"timezone": "UTC", "holidays": ["2026-02-30"]})
    assert "special" in validation_message({"timezone": "UTC", "special": {"Christmas": ["09:00-12:00"]}})
    assert "Extra inputs are not permitted" in validation_message({"timezone": "UTC", "hours": {}})
    assert "timezone" in validation_message({})


def test_calendar_is_immutable() -> None:
    with pytest.raises(ValidationError):
        setattr(ALWAYS_OPEN, "timezone", "Asia/Shanghai")
