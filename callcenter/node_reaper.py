"""A survivor's cleanup after a node of the cluster died (``kill -9``, power loss).

``cluster.registry`` reports a node whose heartbeat lapsed and lets exactly one survivor claim
its reaping; that survivor's :class:`NodeReaper` then

1. closes the dead node's open call records: cause ``node_lost``, hung up by the ``platform``, ended
   at the time of death as best known (the heartbeat key lives ``HEARTBEAT_TTL`` after the last
   beat, so the node died about that long before it was seen dead);
2. tells its listeners (``on_node_lost(node)``: the ACD), once the records are closed;
3. finishes its recordings from its journals on the shared recordings folder, as ``incomplete``,
   with the same code that finishes a node's own journals at its start
   (``RecordingService.finish_node``; compressing long calls takes a while, so it comes last),
   and queues their transcription.

A database outage does not lose the cleanup: each step is tried again every ``RETRY_SECONDS``
until it works (or the node stops). A node that restarted under the same name is not confused
with the run that died: only records received before the new run started are closed (the new
run closed the older ones itself at its start, ``CallRecordStore.close_dangling``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol, TypeVar

from cluster.liveness import HEARTBEAT_TTL, NodeInfo

from .db_health import OutageNotice, database_unavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_SECONDS = 2.0
"""Between attempts at a cleanup step while the database is unavailable."""

NodeLost = Callable[[str], None]
"""Told the dead node's name once its cleanup is done (on the event loop; must not block)."""


class Records(Protocol):
    def close_node(self, node_id: str, *, died_at: datetime, received_before: datetime,
                   end_cause: str = "node_lost") -> int: ...


class Recordings(Protocol):
    def finish_node(self, node: str) -> list[str]: ...

    def stored(self, recording_ids: list[str]) -> None: ...


class NodeReaper:
    """Listens to the node registry (``cluster.registry.NodeListener``, or ``TenantOwners``'
    listener interface) and reaps the nodes this survivor was given (see module)."""

    def __init__(self, records: Records, recordings: Recordings, *, listeners: Sequence[NodeLost] = (),
                 live_nodes: Callable[[], Awaitable[Iterable[NodeInfo]]] | None = None,
                 clock: Callable[[], float] = time.time, ttl: float = HEARTBEAT_TTL,
                 retry: float = RETRY_SECONDS) -> None:
        self.records = records
        self.recordings = recordings
        self.listeners = list(listeners)
        self.live_nodes = live_nodes
        """The nodes alive now (``cluster.registry.live_nodes``): a dead node's name may be back."""
        self.clock = clock
        self.ttl = ttl
        self.retry = retry
        self._tasks: set[asyncio.Task[None]] = set()
        self._outage = OutageNotice(logger, "database unavailable: a lost node's cleanup waits for it",
                                    "database available again: a lost node's cleanup goes on")

    # -- cluster.registry.NodeListener / tenant_owners.OwnershipListener --------------------------
    def node_up(self, info: NodeInfo) -> None:
        pass

    def node_down(self, info: NodeInfo) -> None:
        pass

    def tenant_gained(self, tenant_id: int, epoch: int) -> None:
        pass

    def tenant_lost(self, tenant_id: int, reason: str) -> None:
        pass

    def reap(self, info: NodeInfo) -> None:
        task = asyncio.get_running_loop().create_task(self.reaped(info, self.clock()), name=f"reap-{info.node}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the cleanup -------------------------------------------------------------------------------
    async def reaped(self, info: NodeInfo, seen_dead_at: float) -> None:
        """Clean up after ``info`` (this run of its node), seen dead at ``seen_dead_at`` (Unix time)."""
        node = info.node
        died_at = max(seen_dead_at - self.ttl, info.started_at / 1000)
        received_before = seen_dead_at
        newer = await self._live_run(node)
        if newer is not None and newer.started_at > info.started_at:
            received_before = min(received_before, newer.started_at / 1000)
        closed = await self._until_done("closing its call records", self.records.close_node, node,
                                        died_at=_utc(died_at), received_before=_utc(received_before))
        for listener in self.listeners:
            try:
                listener(node)
            except Exception:
                logger.exception("a node-lost listener failed", extra={"node": node})
        stored = await self._until_done("finishing its recordings", self.recordings.finish_node, node)
        if stored:
            self.recordings.stored(stored)
        logger.warning("lost node reaped", extra={"node": node, "started_at": info.started_at,
                                                   "records_closed": closed or 0,
                                                   "recordings_finished": len(stored or [])})

    async def _live_run(self, node: str) -> NodeInfo | None:
        """The run of ``node`` alive now, if any (None too when Redis cannot say)."""
        if self.live_nodes is None:
            return None
        try:
            alive = await self.live_nodes()
        except Exception:
            logger.info("live nodes unknown: a lost node's records are closed up to when it was seen dead",
                        extra={"node": node})
            return None
        return next((info for info in alive if info.node == node), None)

    async def _until_done(self, what: str, step: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``step`` in a worker thread, again while the database is unavailable; None if it failed
        otherwise (logged: the other steps still run)."""
        while True:
            try:
                result = await asyncio.to_thread(step, *args, **kwargs)
            except Exception as exc:
                if not database_unavailable(exc):
                    logger.exception("a lost node's cleanup step failed", extra={"step": what})
                    return None
                self._outage.failed(exc, step=what)
                await asyncio.sleep(self.retry)
                continue
            self._outage.ok()
            return result

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)
