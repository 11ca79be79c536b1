"""campaigns.rules: calling windows in the contact's zone, retries and the caller ID's rate."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.rules import (
    ALL_DAYS,
    CallerIdRate,
    CallingWindow,
    RetryPolicy,
    check_time_zone,
)

WEEKDAYS = frozenset({1, 2, 3, 4, 5})


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_the_window_is_in_the_contacts_own_zone() -> None:
    window = CallingWindow(time(9), time(21), WEEKDAYS)
    at = utc("2026-03-10 00:30")  # Tuesday: 08:30 in Shanghai, 20:30 on Monday in New York
    assert not window.allows(at, "Asia/Shanghai")
    assert window.allows(at, "America/New_York")
    assert window.allows(at + timedelta(minutes=30), "Asia/Shanghai")  # start included
    assert not window.allows(at + timedelta(minutes=30), "America/New_York")  # end excluded


def test_a_window_across_midnight_belongs_to_the_day_it_starts() -> None:
    window = CallingWindow(time(20), time(2), frozenset({5}))  # Friday evening into Saturday
    assert window.allows(utc("2026-03-13 12:00"), "Asia/Shanghai")  # Friday 20:00
    assert window.allows(utc("2026-03-13 17:59"), "Asia/Shanghai")  # Saturday 01:59
    assert not window.allows(utc("2026-03-13 18:00"), "Asia/Shanghai")  # Saturday 02:00
    assert not window.allows(utc("2026-03-12 17:00"), "Asia/Shanghai")  # Friday 01:00: Thursday's night is closed
    assert window.next_open(utc("2026-03-13 18:00"), "Asia/Shanghai") == utc("2026-03-20 12:00")


def test_next_open_is_now_when_open() -> None:
    window = CallingWindow()
    at = datetime(2026, 3, 10, 10, 15, 7, tzinfo=UTC)  # 18:15:07 in Shanghai
    assert window.next_open(at, "Asia/Shanghai") == at
    assert window.next_open(at, "America/Los_Angeles") == utc("2026-03-10 16:00")  # 09:00 PDT


def test_dst_changes_move_the_window_in_utc() -> None:
    window = CallingWindow(time(9), time(21), ALL_DAYS)
    # New York springs forward on Sunday 2026-03-08: 09:00 is 14:00 UTC on Saturday, 13:00 UTC on Sunday.
    assert window.next_open(utc("2026-03-07 02:00"), "America/New_York") == utc("2026-03-07 14:00")
    assert window.next_open(utc("2026-03-08 02:00"), "America/New_York") == utc("2026-03-08 13:00")


def test_a_clock_change_can_open_the_window() -> None:
    # 02:30-04:00 on the night New York springs forward: 02:00 EST becomes 03:00 EDT, inside the window.
    spring = CallingWindow(time(2, 30), time(4), frozenset({7}))
    assert spring.next_open(utc("2026-03-08 05:00"), "America/New_York") == utc("2026-03-08 07:00")
    # 00:00-01:30 on the night it falls back: 01:59 EDT becomes 01:00 EST, inside the window again.
    autumn = CallingWindow(time(0), time(1, 30), frozenset({7}))
    assert autumn.next_open(utc("2026-11-01 05:45"), "America/New_York") == utc("2026-11-01 06:00")


@pytest.mark.parametrize(("start", "end", "days"), [
    (time(9), time(9), ALL_DAYS),
    (time(9), time(21), frozenset()),
    (time(9), time(21), frozenset({0, 1})),
    (time(9, 0, 30), time(21), ALL_DAYS),
])
def test_impossible_windows_are_refused(start: time, end: time, days: frozenset[int]) -> None:
    with pytest.raises(ValueError):
        CallingWindow(start, end, days)


def test_unknown_zones_are_refused() -> None:
    assert check_time_zone("Asia/Shanghai") == "Asia/Shanghai"
    for zone in ("Asia/Beijing", "localtime", ""):
        with pytest.raises(ValueError):
            check_time_zone(zone)
    with pytest.raises(ValueError):
        CallingWindow().allows(utc("2026-03-10 00:00"), "Asia/Beijing")


ZONES = ["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kathmandu"]
# Around New York's and London's DST changes of 2026 (Lord Howe moves 30 min, Kathmandu is +05:45).
NEAR_CHANGES = [utc("2026-03-07 00:00"), utc("2026-03-28 00:00"), utc("2026-10-03 00:00"), utc("2026-10-24 00:00"),
                utc("2026-10-30 00:00")]


@settings(max_examples=30, deadline=None)
@given(zone=st.sampled_from(ZONES), near=st.sampled_from(NEAR_CHANGES),
       offset=st.integers(0, 3 * 86_400), start=st.integers(0, 24 * 60 - 1), length=st.integers(1, 24 * 60 - 1),
       days=st.frozensets(st.integers(1, 7), min_size=1))
def test_next_open_is_the_first_open_minute(zone: str, near: datetime, offset: int, start: int, length: int,
                                            days: frozenset[int]) -> None:
    end = (start + length) % (24 * 60)
    window = CallingWindow(time(start // 60, start % 60), time(end // 60, end % 60), days)
    at = near + timedelta(seconds=offset)
    opens = window.next_open(at, zone)
    assert opens >= at
    assert window.allows(opens, zone)
    if opens > at:
        assert not window.allows(opens - timedelta(seconds=1), zone)
    step = at
    while step < opens:
        assert not window.allows(step, zone)
        step += timedelta(minutes=1)


@pytest.mark.parametrize(("outcome", "attempts", "delay"), [
    ("busy", 1, 300.0),
    ("no_answer", 1, 1800.0),
    ("machine", 2, 7200.0),
    ("failed", 1, 600.0),
    ("abandoned", 1, 600.0),
    ("busy", 3, None),  # the last attempt
    ("person", 1, None),
    ("dnc", 1, None),
    ("invalid", 1, None),
])
def test_retry_delays_by_outcome(outcome: str, attempts: int, delay: float | None) -> None:
    assert RetryPolicy(max_attempts=3).after(outcome, attempts) == delay


def test_retry_delays_can_be_set() -> None:
    policy = RetryPolicy(max_attempts=5, delays={"busy": 60.0})
    assert (policy.after("busy", 4), policy.after("no_answer", 4), policy.after("busy", 5)) == (60.0, 1800.0, None)
    for bad in ({"person": 60.0}, {"busy": -1.0}):
        with pytest.raises(ValueError):
            RetryPolicy(delays=bad)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy().after("hung_up", 1)


def test_caller_id_rate_is_a_sliding_minute() -> None:
    rate = CallerIdRate(per_minute=2)
    assert rate.take("02112345678", 0.0) and rate.take("02112345678", 10.0)
    assert not rate.take("02112345678", 59.9)
    assert rate.take("4001234567", 59.9)  # each caller ID has its own budget
    assert rate.next_free("02112345678", 59.9) == 60.0
    assert (rate.free("02112345678", 59.9), rate.free("02112345678", 60.0)) == (0, 1)
    assert rate.take("02112345678", 60.0)  # the call at 0.0 left the window
    assert not rate.take("02112345678", 69.9)
    assert rate.next_free("02112345678", 69.9) == 70.0
    assert rate.next_free("02112345678", 200.0) == 200.0

