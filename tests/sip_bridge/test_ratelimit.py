"""Per-source token buckets, driven by a fake clock (plain floats)."""

from __future__ import annotations

from sip_bridge.ratelimit import RateLimiter

T0 = 5_000.0  # monotonic clocks don't start at 0


class SweepCountingLimiter(RateLimiter):
    """A RateLimiter that counts its sweeps (each one walks the whole table)."""

    def __init__(self, rate: float, burst: int, max_keys: int) -> None:
        self.MAX_KEYS = max_keys
        self.sweeps = 0
        super().__init__(rate, burst)

    def _sweep(self, now: float) -> None:
        self.sweeps += 1
        super()._sweep(now)


def admitted(limiter: RateLimiter, key: str, now: float, attempts: int) -> int:
    return sum(limiter.allow(key, now) for _ in range(attempts))


def test_burst_is_admitted_at_once_then_refused() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.allow("198.51.100.1", T0) for _ in range(4)] == [True, True, True, False]


def test_tokens_refill_at_the_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    admitted(limiter, "198.51.100.1", T0, 3)
    assert not limiter.allow("198.51.100.1", T0 + 0.49)
    assert limiter.allow("198.51.100.1", T0 + 0.5)
    assert not limiter.allow("198.51.100.1", T0 + 0.5)
    assert admitted(limiter, "198.51.100.1", T0 + 1.5, 5) == 2


def test_refused_attempts_do_not_delay_the_refill() -> None:
    limiter = RateLimiter(rate=2.0, burst=1)
    assert limiter.allow("198.51.100.1", T0)
    assert not limiter.allow("198.51.100.1", T0 + 0.2)
    assert not limiter.allow("198.51.100.1", T0 + 0.4)
    assert limiter.allow("198.51.100.1", T0 + 0.5)


def test_a_long_pause_refills_only_up_to_the_burst() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    admitted(limiter, "198.51.100.1", T0, 3)
    assert admitted(limiter, "198.51.100.1", T0 + 3600, 10) == 3


def test_keys_are_independent() -> None:
    limiter = RateLimiter(rate=1.0, burst=2)
    assert admitted(limiter, "198.51.100.1", T0, 5) == 2
    assert admitted(limiter, "198.51.100.2", T0, 5) == 2
    assert admitted(limiter, "198.51.100.1", T0 + 1, 5) == 1


def test_zero_rate_never_refills() -> None:
    limiter = RateLimiter(rate=0.0, burst=2)
    assert admitted(limiter, "198.51.100.1", T0, 3) == 2
    assert not limiter.allow("198.51.100.1", T0 + 86_400)


def test_idle_buckets_are_swept_once_full_again() -> None:
    limiter = RateLimiter(rate=10.0, burst=20)  # refills from empty in 2 s
    limiter.allow("198.51.100.1", T0)  # first call sweeps (nothing yet)
    limiter.allow("198.51.100.2", T0 + 60.5)
    limiter.allow("198.51.100.3", T0 + 61.0)  # more than 60 s since the last sweep
    assert set(limiter._buckets) == {"198.51.100.2", "198.51.100.3"}


def test_recently_used_bucket_survives_the_sweep_and_keeps_its_debt() -> None:
    limiter = RateLimiter(rate=1.0, burst=3)  # refills from empty in 3 s
    limiter.allow("203.0.113.9", T0)  # sweep at T0
    assert admitted(limiter, "198.51.100.1", T0 + 59.0, 3) == 3
    limiter.allow("203.0.113.9", T0 + 61.0)  # sweeps; 198.51.100.1 is 2 s from full
    assert "198.51.100.1" in limiter._buckets
    assert admitted(limiter, "198.51.100.1", T0 + 61.0, 3) == 2


def test_flood_of_new_sources_over_max_keys_does_not_sweep_on_every_request() -> None:
    # Fresh buckets survive a sweep, so sweeping on every insertion past MAX_KEYS
    # would walk the whole table per request: the flood would stall the node.
    limiter = SweepCountingLimiter(rate=1.0, burst=5, max_keys=100)
    limiter.allow("warm-up", T0)
    for i in range(1_000):
        assert limiter.allow(f"2001:db8::{i:x}", T0 + 1.0)
    # The start-up sweep, then one each time the table doubles past MAX_KEYS (101, 203, 407, 815).
    assert limiter.sweeps == 5
    assert len(limiter._buckets) == 1_001


def test_swept_table_shrinks_back_once_the_flood_is_over() -> None:
    limiter = SweepCountingLimiter(rate=1.0, burst=5, max_keys=100)
    limiter.allow("warm-up", T0)
    for i in range(1_000):
        limiter.allow(f"2001:db8::{i:x}", T0 + 1.0)
    limiter.allow("198.51.100.1", T0 + 70.0)
    assert set(limiter._buckets) == {"198.51.100.1"}
