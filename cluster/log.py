"""Each tenant's ACD input log: every input of the tenant's engine, from any node, in one order.

Any node appends (``XADD acd:in:{tenant}``); the tenant's owner is the only reader and applies
entries in log order, so replaying the log after the last snapshot rebuilds the same state.
Every entry carries a command id chosen by the sender: a sender that timed out appends again
with the same id, and the owner applies an id once (:class:`cluster.dedupe.Deduper`).

:class:`RedisLog` (cluster) and :class:`MemoryLog` (single node) implement :class:`InputLog`
alike: the same ids (see :mod:`cluster.streams`), the same restart rule, the same limits.

**Redis restarted empty**: the entries not yet read are gone with it (run Redis with
``appendonly yes`` where that matters); a reader's cursor from before is beyond the new
stream's ids and reads the new stream from its start (:mod:`cluster.streams`). A snapshot's log
position from before the restart has the same effect on :meth:`InputLog.range`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, NamedTuple, Protocol

from cluster.redis_link import RedisLink
from cluster.streams import Entry, MemoryStream, RedisStream, Stream, checked_id, json_body, parse_id

logger = logging.getLogger(__name__)

MAX_EVENT_BYTES = 64 * 1024
"""An event's JSON may not be larger (an ACD input is a few hundred bytes)."""
READ_COUNT = 100
"""Entries one :meth:`InputLog.read` returns at most."""


class LogEntry(NamedTuple):
    entry_id: str
    command_id: str
    event: dict[str, Any]


def log_key(tenant: int) -> str:
    return f"acd:in:{tenant}"


class InputLog(Protocol):
    async def append(self, tenant: int, event: dict[str, Any], command_id: str) -> str:
        """Add ``event`` at the end of ``tenant``'s log; returns its entry id. Rides out a Redis
        outage (retrying with the same command id: a repeat is deduplicated by the reader)."""

    async def read(self, tenant: int, after_id: str, block_ms: int) -> list[LogEntry]:
        """The next entries after ``after_id`` (``"0-0"``: from the start), waiting up to
        ``block_ms`` for one; ``[]`` when none came. Continue from the last entry's id."""

    async def range(self, tenant: int, after_id: str) -> list[LogEntry]:
        """Every entry after ``after_id``, for a replay."""

    async def trim(self, tenant: int, up_to_id: str) -> int:
        """Forget the entries up to and including ``up_to_id`` (a snapshot covers them)."""


def _encode(tenant: int, event: dict[str, Any], command_id: str) -> dict[str, str]:
    return {"c": checked_id("command", command_id), "e": json_body("event", tenant, event, MAX_EVENT_BYTES)}


def _decode(tenant: int, raw: list[Entry]) -> list[LogEntry]:
    """The well-formed entries; one another program wrote wrong is logged and passed over."""
    entries = []
    for entry_id, fields in raw:
        try:
            event = json.loads(fields["e"])
            if not isinstance(event, dict) or not fields["c"]:
                raise ValueError("not an event with a command id")
        except (KeyError, ValueError) as exc:
            logger.warning("malformed log entry skipped",
                           extra={"tenant_id": tenant, "entry_id": entry_id, "error": repr(exc)})
            continue
        entries.append(LogEntry(entry_id, fields["c"], event))
    return entries


class _StreamLog:
    def _stream(self, tenant: int) -> Stream:
        raise NotImplementedError

    async def append(self, tenant: int, event: dict[str, Any], command_id: str) -> str:
        return await self._stream(tenant).add(_encode(tenant, event, command_id))

    async def read(self, tenant: int, after_id: str, block_ms: int) -> list[LogEntry]:
        parse_id(after_id)
        deadline = time.monotonic() + block_ms / 1000
        stream, after = self._stream(tenant), after_id
        while True:
            raw = await stream.read(after, max(0, int((deadline - time.monotonic()) * 1000)), READ_COUNT)
            entries = _decode(tenant, raw)
            if entries or not raw:
                return entries
            after = raw[-1].id  # only malformed entries: read on past them

    async def range(self, tenant: int, after_id: str) -> list[LogEntry]:
        parse_id(after_id)
        return _decode(tenant, await self._stream(tenant).range(after_id))

    async def trim(self, tenant: int, up_to_id: str) -> int:
        parse_id(up_to_id)
        return await self._stream(tenant).trim(up_to_id)


class RedisLog(_StreamLog):
    """:class:`InputLog` on Redis streams ``acd:in:{tenant}``."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link

    def _stream(self, tenant: int) -> Stream:
        return RedisStream(self.link, log_key(tenant))


class MemoryLog(_StreamLog):
    """:class:`InputLog` in this process (single-node mode)."""

    def __init__(self) -> None:
        self._streams: dict[int, MemoryStream] = {}

    def _stream(self, tenant: int) -> Stream:
        return self._streams.setdefault(tenant, MemoryStream())
