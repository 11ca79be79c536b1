"""The ACD owner applies a command once, however often a sender repeats it."""

from __future__ import annotations

import pytest

from cluster import Deduper


def test_a_repeated_command_id_is_recognised_within_the_window() -> None:
    d = Deduper(window=3)
    assert [d.first(i) for i in ("a", "b", "a", "c", "b")] == [True, True, False, True, False]


def test_memory_stays_bounded_and_the_oldest_id_is_forgotten_first() -> None:
    d = Deduper(window=3)
    for i in "abcd":
        d.first(i)
    assert d.remembered() == ["b", "c", "d"]
    assert d.first("a")  # forgotten: a repeat this late is taken as new


def test_the_window_carries_over_a_snapshot() -> None:
    d = Deduper(window=3)
    for i in "abc":
        d.first(i)
    again = Deduper(window=3, remembered=d.remembered())
    assert not again.first("b")
    with pytest.raises(ValueError):
        Deduper(window=0)
