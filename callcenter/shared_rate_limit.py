"""The per-source limit of new SIP requests counted across the cluster: the Redis side of
``sip_bridge.ratelimit.SharedRateLimiter``.

The endpoint asks the limiter synchronously for every new request and never waits for Redis.
:class:`RateLimitSync` reports what the node admitted every ``SYNC_INTERVAL`` (at once when a
source reaches the limiter's ``ahead``): one ``EVALSHA`` for every source active since the last
report (at most ``REPORT_KEYS`` per call), whose script refills each source's bucket by Redis's
clock (``TIME``), takes the node's count and answers the levels. Keys:
``ratelimit:sip:{source}``, a hash (``tokens``, ``at``) that expires once it would be full again
(an idle source costs nothing).

Cost (``bench/rate_limit_bench.py``): one script call for many sources, not one per source, and
the sources, counts and levels each as one space-separated string rather than one argument or
reply element per source, keep both Redis's and the node's share small (redis-py parses replies
in Python). The script builds its keys itself, so they are not declared to Redis: the keys of a
call must live on one Redis (no Redis Cluster sharding, which this platform does not use).

While Redis is away the limiter is detached (each node its own bucket, as on a single node) and
the sync keeps trying every interval; the first answer attaches it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cluster.redis_link import REDIS_ERRORS, RedisLink
from sip_bridge.ratelimit import SharedRateLimiter

logger = logging.getLogger(__name__)

SYNC_INTERVAL = 0.05
"""Seconds between two reports of the admitted counts (20 pipelines a second while requests come)."""
SYNC_TIMEOUT = 0.5
"""A report Redis does not answer within this counts as failed (the limiter detaches meanwhile)."""
KEY_PREFIX = "ratelimit:sip:"
REPORT_KEYS = 500
"""Sources per script call (a flood from many addresses: several calls in one pipeline)."""

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local levels = {}
for source, count in string.gmatch(ARGV[4], '(%S+) (%S+)') do
  local key = prefix .. source
  local v = redis.call('HMGET', key, 'tokens', 'at')
  local tokens = burst
  if v[1] then tokens = math.min(burst, tonumber(v[1]) + (now - tonumber(v[2])) * rate) end
  tokens = math.max(tokens - tonumber(count), -burst)
  redis.call('HSET', key, 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', key, math.ceil((burst - tokens) / rate * 1000) + 1000)
  levels[#levels + 1] = tostring(tokens)
end
return table.concat(levels, ' ')
"""


class RateLimitSync:
    """Moves a :class:`SharedRateLimiter`'s reports to Redis and its answers back (see module)."""

    def __init__(self, link: RedisLink, limiter: SharedRateLimiter, interval: float = SYNC_INTERVAL) -> None:
        self.link = link
        self.limiter = limiter
        self.interval = interval
        self._take = link.client.register_script(_TAKE)
        self._urgent = asyncio.Event()
        limiter.on_urgent = self._urgent.set
        self._task: asyncio.Task[None] | None = None

    async def sync(self) -> None:
        """One report of everything admitted since the last one (the loop calls it every interval)."""
        reports = self.limiter.take_reports()
        if not reports:
            return
        loop = asyncio.get_running_loop()
        rate, burst = self.limiter.rate, self.limiter.burst
        try:
            replies = []
            # one call per REPORT_KEYS sources, usually one; not pipelined: redis-py's pipelines ask
            # SCRIPT EXISTS first, a round trip more
            async with asyncio.timeout(SYNC_TIMEOUT):
                for start in range(0, len(reports), REPORT_KEYS):
                    chunk = " ".join(f"{key} {count}" for key, count in reports[start:start + REPORT_KEYS])
                    replies.append(await self._take(keys=[], args=[rate, burst, KEY_PREFIX, chunk]))
            levels = [float(level) for reply in replies for level in reply.split()]
            if len(levels) != len(reports):
                raise ValueError(f"{len(levels)} levels for {len(reports)} sources")
        except Exception as exc:
            if isinstance(exc, REDIS_ERRORS):
                self.link.failed(exc, "rate limit")
                self.limiter.detached = True
            else:  # a script refused or a reply not understood (a bug): the limit goes on locally
                logger.exception("rate limit report refused by redis")
            now = loop.time()
            for key, count in reports:
                self.limiter.unconfirmed(key, count, now)
            return
        self.link.succeeded()
        self.limiter.detached = False
        now = loop.time()
        for (key, count), level in zip(reports, levels, strict=True):
            self.limiter.confirmed(key, count, level, now)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._urgent.wait(), self.interval)
            self._urgent.clear()
            await self.sync()

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rate-limit-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
