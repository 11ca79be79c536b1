"""Failure counting and bans, with a fake clock."""

from __future__ import annotations

import pytest

from authguard import AuthGuard, Ban, Thresholds

T = Thresholds(window=60, account_failures=3, source_failures=5, period=100)


def make(**kwargs: object) -> tuple[AuthGuard, list[Ban]]:
    seen: list[Ban] = []
    return AuthGuard("sip", T, on_ban=seen.append, **kwargs), seen  # type: ignore[arg-type]


def test_wrong_secrets_for_one_account_ban_that_account_from_that_source_only() -> None:
    guard, seen = make()
    assert guard.failed("10.0.0.1", "alice", 0) is None
    assert guard.failed("10.0.0.1", "alice", 1) is None
    ban = guard.failed("10.0.0.1", "alice", 2, tenant_id=7)
    assert ban is not None and seen == [ban]
    assert (ban.source, ban.account, ban.failures, ban.tenant_id, ban.until) == ("10.0.0.1", "alice", 3, 7, 102)
    assert guard.blocked("10.0.0.1", "alice", 3) == ban
    # the real user elsewhere, and other accounts from the attacker's address, are not affected
    assert guard.blocked("10.0.0.2", "alice", 3) is None
    assert guard.blocked("10.0.0.1", "bob", 3) is None
    assert guard.blocked("10.0.0.1", None, 3) is None


def test_failures_across_accounts_ban_the_whole_source() -> None:
    guard, seen = make()
    for i, user in enumerate(["a", "b", "c", "d"]):
        assert guard.failed("10.0.0.9", user, i) is None
    ban = guard.failed("10.0.0.9", "e", 4)
    assert ban is not None and ban.account is None and ban.failures == 5
    assert guard.blocked("10.0.0.9", None, 5) == ban
    assert guard.blocked("10.0.0.9", "anyone", 5) == ban
    assert guard.blocked("10.0.0.8", None, 5) is None


def test_failures_older_than_the_window_do_not_count() -> None:
    guard, seen = make()
    guard.failed("10.0.0.1", "alice", 0)
    guard.failed("10.0.0.1", "alice", 30)
    assert guard.failed("10.0.0.1", "alice", 61) is None  # the first one left the window
    assert guard.failed("10.0.0.1", "alice", 62) is not None


def test_a_success_starts_the_count_again() -> None:
    guard, _ = make()
    guard.failed("10.0.0.1", "alice", 0)
    guard.failed("10.0.0.1", "alice", 1)
    guard.succeeded("10.0.0.1", "alice")
    assert guard.failed("10.0.0.1", "alice", 2) is None


def test_a_ban_ends_after_its_period() -> None:
    guard, _ = make()
    for i in range(3):
        guard.failed("10.0.0.1", "alice", i)
    assert guard.blocked("10.0.0.1", "alice", 101.9) is not None
    assert guard.blocked("10.0.0.1", "alice", 102) is None
    assert guard.bans(102) == []
    assert guard.failed("10.0.0.1", "alice", 103) is None  # counting starts afresh


def test_exempt_sources_are_counted_but_never_banned() -> None:
    guard, seen = make(exempt=lambda ip: ip.startswith("192.0.2."))
    for i in range(10):
        assert guard.failed("192.0.2.1", "alice", i) is None
    assert seen == [] and guard.blocked("192.0.2.1", "alice", 11) is None


def test_a_carrier_address_gets_per_account_bans_only() -> None:
    guard, seen = make(account_only=lambda ip: ip == "198.51.100.7")
    for i, user in enumerate("abcdefgh"):
        guard.failed("198.51.100.7", user, i)
    assert guard.blocked("198.51.100.7", None, 9) is None  # its calls keep coming in
    for i in range(3):
        guard.failed("198.51.100.7", "alice", 10 + i)
    assert guard.blocked("198.51.100.7", "alice", 13) is not None
    assert [b.account for b in seen] == ["alice"]


def test_lift_by_id_and_restore_after_restart() -> None:
    guard, _ = make()
    for i in range(3):
        ban = guard.failed("10.0.0.1", "alice", i)
    assert ban is not None
    stored = guard.identify(ban, 42)
    assert stored is not None and stored.id == 42
    assert guard.lift(41) is None
    assert guard.lift(42) == stored
    assert guard.blocked("10.0.0.1", "alice", 3) is None
    again, _ = make()
    again.restore([stored, Ban("http", "10.0.0.5", None, 9, 0, 500)], now=3)
    assert again.blocked("10.0.0.1", "alice", 3) == stored
    assert again.blocked("10.0.0.5", None, 3) is None  # another protocol's ban


def test_a_flood_of_sources_cannot_grow_the_tables_without_bound() -> None:
    guard = AuthGuard("sip", T, max_tracked=100)
    for i in range(1000):
        guard.failed(f"10.{i // 256}.{i % 256}.1", "x", i / 1000)
    assert len(guard._failures) <= 100


def test_a_failing_listener_does_not_stop_the_ban() -> None:
    def boom(ban: Ban) -> None:
        raise RuntimeError("database down")

    guard = AuthGuard("http", T, on_ban=boom)
    for i in range(3):
        guard.failed("10.0.0.1", "alice", i)
    assert guard.blocked("10.0.0.1", "alice", 3) is not None


def test_thresholds_are_checked() -> None:
    with pytest.raises(ValueError):
        Thresholds(window=0)
    with pytest.raises(ValueError):
        Thresholds(account_failures=0)
