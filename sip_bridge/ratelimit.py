"""Per-source token buckets (sans-I/O: the caller passes the time): one node's, or a cluster's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class RateLimiter:
    """Admits up to ``rate`` requests per second per key, with bursts up to ``burst``.

    Buckets idle long enough to be full again are forgotten, so a scan from many
    addresses cannot grow the table without bound.
    """

    MAX_KEYS = 100_000

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._last_sweep = 0.0
        #: Table size that triggers a sweep before the minute is up.
        self._sweep_size = self.MAX_KEYS

    def allow(self, key: str, now: float) -> bool:
        tokens, last = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self._sweep_size or now - self._last_sweep > 60:
            self._sweep(now)
        return True

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        refill = self.burst / self.rate if self.rate else float("inf")
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < refill}
        # A flood of new sources survives the sweep (its buckets are fresh): wait for the
        # table to double before walking it again, so sweeping stays O(1) per request.
        self._sweep_size = max(self.MAX_KEYS, 2 * len(self._buckets))


class Limiter(Protocol):
    """What the endpoint asks of a rate limiter: admit one request from ``key`` at ``now``?"""

    def allow(self, key: str, now: float) -> bool: ...


@dataclass
class _SharedBucket:
    level: float
    """Tokens in the shared bucket as the store last told (may be negative: a debt), at ``at``."""
    at: float
    unsent: int = 0
    """Admitted here, not yet reported to the store."""
    sending: int = 0
    """Reported, the store's answer not in yet."""


class SharedRateLimiter:
    """:class:`RateLimiter`'s token bucket (``rate`` per second, bursts up to ``burst``) per key
    for a whole cluster, kept in a store all nodes share (Redis), without ever waiting for it
    (sans-I/O: the caller moves the reports and answers).

    Each node admits from its view of the shared bucket (the level the store last gave, plus the
    refill since), counting what it admits; :meth:`take_reports` hands those counts to the store,
    which takes them from the bucket (by its own clock, down to a debt of at most ``burst``) and
    answers the level, given back with :meth:`confirmed`. So the long-run rate of a key is
    ``rate`` across the cluster; between two reports each node may admit at most ``ahead``
    requests of a key the store has not confirmed yet (the overshoot of a burst is at most
    nodes x ``ahead``); reaching it asks for a report at once (``on_urgent``). While the store
    is unreachable (:meth:`unconfirmed`, ``detached``) each node is its own bucket, exactly
    :class:`RateLimiter`.
    """

    MAX_KEYS = RateLimiter.MAX_KEYS

    def __init__(self, rate: float, burst: int, ahead: int | None = None,
                 on_urgent: Callable[[], None] | None = None) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.ahead = ahead if ahead is not None else max(1, burst // 8)
        self.on_urgent = on_urgent
        self.detached = False
        """The store is unreachable: no cap on unconfirmed admissions (set by the caller)."""
        self._buckets: dict[str, _SharedBucket] = {}
        self._dirty: set[str] = set()
        self._last_sweep = 0.0
        self._sweep_size = self.MAX_KEYS

    def _tokens(self, bucket: _SharedBucket, now: float) -> float:
        return min(self.burst, bucket.level + (now - bucket.at) * self.rate)

    def allow(self, key: str, now: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._sweep_size or now - self._last_sweep > 60:
                self._sweep(now)
            bucket = self._buckets[key] = _SharedBucket(self.burst, now)
        pending = bucket.unsent + bucket.sending
        if not self.detached and pending >= self.ahead:
            return False  # wait for the store's answer (already asked for)
        if self._tokens(bucket, now) - pending < 1.0:
            return False
        bucket.unsent += 1
        self._dirty.add(key)
        if pending + 1 >= self.ahead and self.on_urgent is not None:
            self.on_urgent()
        return True

    def take_reports(self) -> list[tuple[str, int]]:
        """(key, requests admitted) to report to the store since the last reports."""
        reports = []
        for key in self._dirty:
            bucket = self._buckets.get(key)
            if bucket is not None and bucket.unsent:
                reports.append((key, bucket.unsent))
                bucket.sending += bucket.unsent
                bucket.unsent = 0
        self._dirty.clear()
        return reports

    def confirmed(self, key: str, count: int, level: float, now: float) -> None:
        """The store took ``count`` from ``key``'s bucket, which now holds ``level``."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.sending = max(0, bucket.sending - count)
            bucket.level, bucket.at = level, now

    def unconfirmed(self, key: str, count: int, now: float) -> None:
        """The store could not be told: ``count`` is taken from this node's view alone."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.level, bucket.at = self._tokens(bucket, now) - count, now
            bucket.sending = max(0, bucket.sending - count)

    def _sweep(self, now: float) -> None:
        """Forget the keys whose bucket would be full again and that have nothing unconfirmed."""
        self._last_sweep = now
        self._buckets = {k: b for k, b in self._buckets.items()
                         if b.unsent or b.sending or self._tokens(b, now) < self.burst}
        self._sweep_size = max(self.MAX_KEYS, 2 * len(self._buckets))  # as RateLimiter: O(1) per request
