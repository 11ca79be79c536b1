"""Append-only streams of string fields, in Redis (``XADD``/``XREAD``) or in memory, read the same way.

Entry ids are Redis stream ids, ``"<ms>-<seq>"``, in both: the memory stream makes them as
Redis does (the wall clock in milliseconds, never going back, a sequence within one
millisecond), so ids compare the same way everywhere: with :func:`parse_id`, never as text.

**A stream that starts again.** A Redis restarted without its data has lost every stream; a
new one gets ids from Redis's clock, which are above any id read before unless that clock went
back. Readers hold a cursor (the last id they read) and must not skip the new entries, so every
read follows one rule: a cursor beyond the stream's last generated id, or on a stream that no
longer exists, means the stream started again and it is read from the start (:data:`START`).
A stream only emptied by trimming keeps its last generated id and is not affected. Redis checks
this when a read finds nothing (a read that finds entries was not skipping any), so new entries
below a stale cursor arrive within one block period at worst.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import redis.exceptions

from cluster.redis_link import REDIS_ERRORS, Backoff, RedisLink

START = "0-0"
"""The cursor before the first entry."""
BLOCK_CHUNK_MS = 1000
"""A blocking read waits at most this long per ``XREAD BLOCK`` (below the socket timeout)."""
RANGE_PAGE = 1000
"""Entries per ``XRANGE`` when reading a stream back for replay."""

MAX_ID = 200
"""Characters in a command id."""

Fields = dict[str, str]


class Entry(NamedTuple):
    id: str
    fields: Fields


def parse_id(entry_id: str) -> tuple[int, int]:
    """``"1700000000000-3"`` -> ``(1700000000000, 3)``, the form ids compare in.

    Raises ``ValueError`` for anything else."""
    ms, sep, seq = entry_id.partition("-")
    if not sep or not ms.isdigit() or not seq.isdigit():
        raise ValueError(f"not a stream id: {entry_id!r}")
    return int(ms), int(seq)


def format_id(parsed: tuple[int, int]) -> str:
    return f"{parsed[0]}-{parsed[1]}"


def checked_id(kind: str, value: str) -> str:
    """A command id, refused (``ValueError``) if empty or too long."""
    if not isinstance(value, str) or not value or len(value) > MAX_ID:
        raise ValueError(f"a {kind} id is a string of 1 to {MAX_ID} characters")
    return value


def json_body(kind: str, tenant: int, value: dict[str, Any], limit: int) -> str:
    """``value`` as compact JSON, refused (``TypeError``/``ValueError``) unless a JSON object of at
    most ``limit`` bytes: bad input is turned away at the sender, never found by a reader."""
    if not isinstance(value, dict):
        raise TypeError(f"an {kind} is a dict, not {type(value).__name__}")
    try:
        body = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{kind} for tenant {tenant} is not JSON: {exc}") from None
    if len(body.encode()) > limit:
        raise ValueError(f"{kind} for tenant {tenant} is larger than {limit} bytes")
    return body


def _entries(rows: Any) -> list[Entry]:
    """``XRANGE``/``XREAD`` rows, ``[(id, {field: value})]``, as entries."""
    return [Entry(str(entry_id), {str(k): str(v) for k, v in (fields or {}).items()}) for entry_id, fields in rows]


def _left(deadline: float) -> float:
    return deadline - time.monotonic()


class Stream(Protocol):
    """One stream. Reads return entries after a cursor, oldest first, at most ``count``."""

    async def add(self, fields: Fields) -> str:
        """Append; returns the new entry's id."""

    async def read(self, after: str, block_ms: int, count: int) -> list[Entry]:
        """Entries after ``after``; waits up to ``block_ms`` (0: not at all) for one if there is
        none. Rides out a Redis outage until then (returns ``[]`` if it lasts)."""

    async def range(self, after: str) -> list[Entry]:
        """Every entry after ``after`` (same restart rule as :meth:`read`)."""

    async def trim(self, up_to: str) -> int:
        """Remove the entries up to and including ``up_to``; returns how many went."""


class MemoryStream:
    """A stream in this process (single-node mode), same semantics as :class:`RedisStream`."""

    def __init__(self, clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        self._clock_ms = clock_ms
        self._keys: list[tuple[int, int]] = []
        self._entries: list[Entry] = []
        self._last: tuple[int, int] | None = None
        self._added = asyncio.Event()

    async def add(self, fields: Fields) -> str:
        now = self._clock_ms()
        if self._last is None or now > self._last[0]:
            key = (now, 0)
        else:
            key = (self._last[0], self._last[1] + 1)
        self._last = key
        self._keys.append(key)
        self._entries.append(Entry(format_id(key), dict(fields)))
        self._added.set()
        self._added = asyncio.Event()
        return format_id(key)

    def _after(self, after: str, count: int | None) -> list[Entry]:
        cursor = parse_id(after)
        if self._last is None or cursor > self._last:
            cursor = (0, 0)  # the stream started again (see module)
        i = bisect.bisect_right(self._keys, cursor)
        return self._entries[i:] if count is None else self._entries[i:i + count]

    async def read(self, after: str, block_ms: int, count: int) -> list[Entry]:
        deadline = time.monotonic() + block_ms / 1000
        while True:
            found = self._after(after, count)
            if found or _left(deadline) <= 0:
                return found
            try:
                async with asyncio.timeout(_left(deadline)):
                    await self._added.wait()
            except TimeoutError:
                return []

    async def range(self, after: str) -> list[Entry]:
        return self._after(after, None)

    async def trim(self, up_to: str) -> int:
        n = bisect.bisect_right(self._keys, parse_id(up_to))
        del self._keys[:n], self._entries[:n]
        return n


class RedisStream:
    """A Redis stream at ``key``; every call rides out outages through the link (see module)."""

    def __init__(self, link: RedisLink, key: str) -> None:
        self.link = link
        self.key = key

    async def add(self, fields: Fields) -> str:
        payload: dict[Any, Any] = dict(fields)

        async def once() -> str:
            return str(await self.link.client.xadd(self.key, payload))
        return await self.link.retrying("xadd", once)

    async def last_id(self) -> str | None:
        """The last id this stream generated (also when trimmed empty); None if it does not exist."""
        try:
            info = await self.link.client.xinfo_stream(self.key)
        except redis.exceptions.ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None
            raise
        return str(info["last-generated-id"])

    async def _restarted(self, after: str) -> bool:
        if after == START:
            return False
        last = await self.last_id()
        return last is None or parse_id(after) > parse_id(last)

    async def read(self, after: str, block_ms: int, count: int) -> list[Entry]:
        deadline = time.monotonic() + block_ms / 1000
        backoff = Backoff()
        while True:
            block = min(int(_left(deadline) * 1000), BLOCK_CHUNK_MS)
            try:
                # BLOCK 0 would wait for ever: no BLOCK at all when the time is up
                reply: Any = await self.link.client.xread({self.key: after}, count=count,
                                                     block=block if block > 0 else None)
                if not reply and await self._restarted(after):
                    after = START
                    continue
            except REDIS_ERRORS as exc:
                self.link.failed(exc, "xread")
                if _left(deadline) <= 0:
                    return []
                await asyncio.sleep(min(backoff.next(), max(_left(deadline), 0.0)))
                continue
            self.link.succeeded()
            if reply:
                return _entries(reply[0][1])
            if _left(deadline) <= 0:
                return []

    async def _range_once(self, after: str) -> list[Entry]:
        found: list[Entry] = []
        cursor = after
        while True:
            page = _entries(await self.link.client.xrange(self.key, min=f"({cursor}", count=RANGE_PAGE))
            found += page
            if len(page) < RANGE_PAGE:
                return found
            cursor = page[-1].id

    async def range(self, after: str) -> list[Entry]:
        async def once() -> list[Entry]:
            found = await self._range_once(after)
            if not found and await self._restarted(after):
                return await self._range_once(START)
            return found
        return await self.link.retrying("xrange", once)

    async def trim(self, up_to: str) -> int:
        ms, seq = parse_id(up_to)
        # XTRIM MINID keeps ids >= MINID: the id right after up_to
        return int(await self.link.retrying(
            "xtrim", lambda: self.link.client.xtrim(self.key, minid=format_id((ms, seq + 1)), approximate=False)))
