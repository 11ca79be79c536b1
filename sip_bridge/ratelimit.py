"""Per-source token buckets (sans-I/O: the caller passes the time)."""

from __future__ import annotations


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
