"""The node's connection to Redis, and what it does while Redis is away.

Every cluster service of a process shares one :class:`RedisLink`: one client (one pool), and
one account of whether Redis answers. Its failures are the services' failures: the first one
logs a warning and opens an outage, the next success logs its end with its length, and nothing
is logged in between (a call a second must not mean a log line a second). ``available`` tells
the API to answer 503 ``redis-unavailable`` meanwhile.

The client does not retry on its own (redis-py's default retries ten times with back-off,
after timeouts too, hidden from the caller and from a lease's renew deadline; and it would hide
a restart from a subscriber that must resynchronise after one): each service decides. The first
call on a pooled connection that Redis closed when it restarted fails, and the pool opens a new
one for the next. Operations that must happen (an append, a send) use
:meth:`RedisLink.retrying`: back-off from 50 ms doubling to 1 s, so a Redis that comes back is
used again within a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

logger = logging.getLogger(__name__)

T = TypeVar("T")

REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                                                 OSError)
"""What an unreachable, restarting or stalled Redis raises (``BusyLoadingError``, a Redis still
loading its data after a restart, is a ``ConnectionError``; ``TimeoutError`` is an ``OSError``)."""

SOCKET_TIMEOUT = 3.0
"""Seconds an answer may take before the connection counts as dead. Above the longest
``XREAD BLOCK`` the package sends (:data:`cluster.streams.BLOCK_CHUNK_MS`)."""
CONNECT_TIMEOUT = 1.0
"""Seconds a new connection may take (loopback or a LAN: a second is an outage)."""
MAX_CONNECTIONS = 100
"""Connections a process opens at most; a call waits for a free one beyond that. A blocking read
holds one for at most a second (:data:`cluster.streams.BLOCK_CHUNK_MS`), so one always frees up."""
BACKOFF_FIRST = 0.05
BACKOFF_CAP = 1.0


class Backoff:
    """Delays between attempts: ``first``, doubling, at most ``cap``; :meth:`reset` after a success."""

    def __init__(self, first: float = BACKOFF_FIRST, cap: float = BACKOFF_CAP) -> None:
        self.first = first
        self.cap = cap
        self._next = first

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.first


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisLink:
    """A Redis client (``decode_responses``: every reply is ``str``) and its outages (see module)."""

    def __init__(self, url: str, *, socket_timeout: float = SOCKET_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = _without_password(url)
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=MAX_CONNECTIONS, timeout=None, decode_responses=True,
            socket_timeout=socket_timeout, socket_connect_timeout=CONNECT_TIMEOUT,
            retry=Retry(NoBackoff(), 0))
        self.client: aioredis.Redis = aioredis.Redis.from_pool(pool)  # client.aclose() closes the pool too
        self._clock = clock
        self._down_since: float | None = None

    @property
    def available(self) -> bool:
        """False from a failed call until the next successful one."""
        return self._down_since is None

    def failed(self, exc: BaseException, op: str) -> None:
        """Note a call that failed for lack of Redis; the first of an outage is logged."""
        if self._down_since is not None:
            return
        self._down_since = self._clock()
        logger.warning("redis unavailable", extra={"redis": self.url, "op": op,
                                                   "error": f"{type(exc).__name__}: {exc}"})

    def succeeded(self) -> None:
        """Note a call Redis answered; ends an outage (logged with its length)."""
        if self._down_since is None:
            return
        seconds, self._down_since = self._clock() - self._down_since, None
        logger.info("redis available again", extra={"redis": self.url, "outage_seconds": round(seconds, 1)})

    async def retrying(self, op: str, call: Callable[[], Awaitable[T]]) -> T:
        """``await call()`` until Redis answers it, backing off between attempts. It never gives up:
        bound it with ``asyncio.timeout()`` where the caller cannot wait. A call that timed out may
        have been carried out: retry only what is harmless twice (or deduplicated downstream)."""
        backoff = Backoff()
        while True:
            try:
                result = await call()
            except REDIS_ERRORS as exc:
                self.failed(exc, op)
                await asyncio.sleep(backoff.next())
                continue
            self.succeeded()
            return result

    async def aclose(self) -> None:
        await self.client.aclose()
