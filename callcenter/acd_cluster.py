"""The ACD in a cluster: taking a tenant over, letting it go, and the inputs of other nodes.

Each tenant's engine runs on its owner (``tenant_owners.py``). This module is what changes hands:

* **Taking over** (:meth:`AcdCluster.tenant_gained`): the engine comes back from the previous
  owner's last live snapshot (``AcdService.adopt``), then the inputs other nodes logged since that
  snapshot are applied. What the previous owner was doing dies with it if it died: its rings
  (the offers fail and the calls stay in line), its conversations (they end: the agents go to
  wrap-up), the callbacks it was dialing (back in line). Callers waiting in its queues are handed
  to this node again by the nodes they entered (``handover.py``) and take their place again;
  entries nobody comes back for within :data:`REATTACH_GRACE` hung up. A previous owner that is
  alive (it gave the tenant back: a drain) keeps its conversations, and reports their end here.
* **Letting go** (:meth:`AcdCluster.tenant_lost`): ``AcdService.relinquish``.
* **Inputs from other nodes**: a node that has a tenant's call but not its engine (a conversation
  that outlived a drain, an agent's state set through that node's API) appends the engine input to
  the tenant's log (``cluster.log``, Redis); the owner reads it in order and applies each command
  once. The log is trimmed up to what a saved snapshot covers (:class:`LogCursor`), so a new owner
  reads exactly what the last snapshot has not seen.
* **A node dies** (:meth:`AcdCluster.node_down`): callers it handed over are gone with it (their
  legs end here: abandoned, or the conversation ends and the agent wraps up).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import acd
from acd import AcdEngine, AgentState, CallbackFailed, CallEnded, OfferFailed
from cluster.dedupe import Deduper
from cluster.liveness import NodeInfo
from cluster.log import InputLog
from cluster.redis_link import REDIS_ERRORS
from sip_bridge.call import Call
from sip_bridge.endpoint import Handover

from .acd_service import AcdService
from .db_health import database_unavailable
from .handover import Context

logger = logging.getLogger(__name__)

#: Seconds a waiting caller of a dead owner has to be handed over again before it counts as gone.
REATTACH_GRACE = 10.0
#: Seconds between attempts to load a tenant taken over while the database is unavailable.
ADOPT_RETRY = 1.0
#: How long a read of the tenant's log waits for an entry.
READ_BLOCK_MS = 1000
START = "0-0"

#: The engine inputs that travel between nodes, by name.
_EVENTS: dict[str, type] = {cls.__name__: cls for cls in (
    acd.CallEnded, acd.CallerHungUp, acd.OfferFailed, acd.WrapUpEnded, acd.AgentStateRequested,
    acd.AgentDeviceChanged, acd.CallbackFailed, acd.CallPriorityChanged, acd.CallMoved)}


def encode_event(event: Any) -> dict[str, Any] | None:
    """An engine input as JSON for the log; None for one that never travels (it is about a call
    waiting here, which only the owner holds)."""
    name = type(event).__name__
    if name not in _EVENTS:
        return None
    return {"type": name, **dataclasses.asdict(event)}


def decode_event(data: dict[str, Any]) -> Any:
    cls = _EVENTS[str(data["type"])]
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in fields})


class TenantLogs:
    """The tenants' input logs as this node uses them: appending inputs for engines hosted
    elsewhere (:meth:`forward`), how far each owned tenant's log is applied here, and trimming
    once a saved snapshot covers it (``acd_service.LogPositions``)."""

    def __init__(self, log: InputLog) -> None:
        self.log = log
        self.applied: dict[int, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def forward(self, tenant_id: int, event: Any) -> None:
        """An input for an engine hosted on another node: appended to the tenant's log, in order."""
        data = encode_event(event)
        if data is None:
            return
        command = uuid.uuid4().hex

        async def append() -> None:
            await self.log.append(tenant_id, data, command)

        self._spawn(append())

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def position(self, tenant_id: int) -> str:
        return self.applied.get(tenant_id, START)

    def saved(self, tenant_id: int, position: str) -> None:
        """A snapshot covering the log up to ``position`` is stored: the entries up to it may go."""
        if position == START:
            return

        async def trim() -> None:
            try:
                await self.log.trim(tenant_id, position)
            except REDIS_ERRORS as exc:
                logger.debug("log not trimmed now: %s", exc, extra={"tenant_id": tenant_id})

        self._spawn(trim())


class AcdCluster:
    """The ACD's side of ownership changes and of other nodes' inputs (see module)."""

    def __init__(self, acd_service: AcdService, logs: TenantLogs, alive: Callable[[], dict[str, NodeInfo]],
                 node_id: str, node_run: int) -> None:
        self.acd = acd_service
        self.log = logs.log
        self.cursor = logs
        #: the other live nodes, by name
        self._alive = alive
        self.node_id = node_id
        self.node_run = node_run
        self._readers: dict[int, asyncio.Task[None]] = {}
        self._dedupe: dict[int, Deduper] = {}
        #: handed-over legs here, by the node they came from
        self._handed: dict[str, tuple[str, Call]] = {}
        #: conversations held by a former owner that gave the tenant back alive: (tenant, node)
        self._held_elsewhere: dict[str, tuple[int, str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- ownership (tenant_owners.OwnershipListener) ------------------------------------------
    def tenant_gained(self, tenant_id: int, epoch: int) -> None:
        self._spawn(self._take_over(tenant_id))

    def tenant_lost(self, tenant_id: int, reason: str) -> None:
        reader = self._readers.pop(tenant_id, None)
        if reader is not None:
            reader.cancel()
        self.acd.relinquish(tenant_id)

    async def _take_over(self, tenant_id: int) -> None:
        while True:  # the database may be down right now: keep trying while the lease is ours
            try:
                adopted = await self.acd.adopt(tenant_id)
                break
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                logger.warning("takeover waits for the database", extra={"tenant_id": tenant_id})
                await asyncio.sleep(ADOPT_RETRY)
                if not self.acd.owners.local(tenant_id):
                    return  # lost meanwhile: the next owner takes it over
        if adopted is None:
            return
        previous, engine = adopted
        snapshot_log = self.acd.last_log_position(tenant_id)
        self.cursor.applied[tenant_id] = snapshot_log
        await self._catch_up(tenant_id)
        self._settle(tenant_id, engine, previous[0] if previous else None, self._alive_run(previous))
        self._readers[tenant_id] = asyncio.get_running_loop().create_task(self._read(tenant_id))

    def _alive_run(self, run: tuple[str, int] | None) -> bool:
        """Whether the run of a node that saved a snapshot still runs: this process itself (it
        lost the lease and took it back: a Redis restart), or another node whose heartbeat beats."""
        if run is None:
            return False
        node, started_at = run
        if node == self.node_id:
            return started_at == self.node_run
        info = self._alive().get(node)
        return info is not None and info.started_at == started_at

    def _settle(self, tenant_id: int, engine: AcdEngine, previous: str | None, previous_alive: bool) -> None:
        """End what the previous owner was doing if it died with it; give its waiting callers
        :data:`REATTACH_GRACE` to come back."""
        now = time.time()
        if not previous_alive:
            ended: set[str] = set()
            for agent in engine.agents():
                if agent.state is AgentState.ON_CALL and agent.call_id and agent.call_id not in ended:
                    ended.add(agent.call_id)
                    self.acd.apply_input(tenant_id, CallEnded(agent.call_id, now))
            for view in engine.waiting():
                if view.is_callback and view.offered_to:
                    self.acd.apply_input(tenant_id, CallbackFailed(view.call_id, now))
                elif not view.is_callback and view.channel == "voice":  # a chat's offer rings on (chat_service)
                    for agent_id in view.offered_to:
                        self.acd.apply_input(tenant_id, OfferFailed(view.call_id, agent_id, now, "no_answer"))
        else:
            for agent in engine.agents():
                if agent.state is AgentState.ON_CALL and agent.call_id and previous is not None \
                        and previous != self.node_id:  # this node's own calls report their end here
                    self._held_elsewhere[agent.call_id] = (tenant_id, previous)
        # callers come back through their nodes' handovers; chats are the chat service's (from the database)
        waiting = [v.call_id for v in engine.waiting()
                   if not v.is_callback and v.channel == "voice" and v.call_id not in self.acd.waiting]
        if waiting:
            self.acd.expect_back(waiting)
            self._spawn(self._forget_absent(tenant_id, waiting))

    async def _forget_absent(self, tenant_id: int, call_ids: list[str]) -> None:
        await asyncio.sleep(REATTACH_GRACE)
        for call_id in call_ids:
            if call_id not in self.acd.waiting and tenant_id in self.acd.engines:
                logger.info("caller not handed over again after a takeover: hung up", extra={"call_id": call_id})
            self.acd.not_back(tenant_id, call_id)

    # -- the tenant's log -------------------------------------------------------------------------
    async def _catch_up(self, tenant_id: int) -> None:
        try:
            entries = await self.log.range(tenant_id, self.cursor.position(tenant_id))
        except REDIS_ERRORS as exc:
            logger.warning("tenant log unreadable at takeover: %s", exc, extra={"tenant_id": tenant_id})
            return
        for entry in entries:
            self._apply_entry(tenant_id, entry.entry_id, entry.command_id, entry.event)

    async def _read(self, tenant_id: int) -> None:
        while tenant_id in self.acd.engines:
            try:
                entries = await self.log.read(tenant_id, self.cursor.position(tenant_id), READ_BLOCK_MS)
            except REDIS_ERRORS:
                await asyncio.sleep(0.5)
                continue
            for entry in entries:
                self._apply_entry(tenant_id, entry.entry_id, entry.command_id, entry.event)

    def _apply_entry(self, tenant_id: int, entry_id: str, command_id: str, data: dict[str, Any]) -> None:
        self.cursor.applied[tenant_id] = entry_id
        if not self._dedupe.setdefault(tenant_id, Deduper()).first(command_id):
            return
        try:
            event = decode_event(data)
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("unusable ACD input from another node skipped: %s", exc, extra={"tenant_id": tenant_id})
            return
        if isinstance(event, CallEnded):
            self._held_elsewhere.pop(event.call_id, None)
        self.acd.apply_input(tenant_id, event)

    # -- handovers and dead nodes -----------------------------------------------------------------
    async def handover(self, leg: Call, handover: Handover) -> None:
        """The SIP endpoint's handler for callers other nodes hand over."""
        try:
            context = Context.decode(handover.params.get("context", ""))
        except (ValueError, TypeError) as exc:
            logger.warning("handover without a usable context: %s", exc, extra={"call_id": leg.id})
            await leg.hangup("bad_handover", status=400)
            return
        self._handed[leg.id] = (handover.params.get("node", ""), leg)
        try:
            await self.acd.take_handover(leg, handover.tenant_id, context)
        finally:
            if self._handed.get(leg.id, (None, None))[1] is leg:
                del self._handed[leg.id]

    def node_down(self, node: NodeInfo) -> None:
        for source, leg in [entry for entry in self._handed.values() if entry[0] == node.node]:
            logger.info("the node a caller came through died: its leg ends", extra={"call_id": leg.id,
                                                                                     "node": source})
            self._spawn(leg.hangup("node_lost", side="platform"))
        now = time.time()
        for call_id, (tenant_id, holder) in list(self._held_elsewhere.items()):
            if holder == node.node:
                del self._held_elsewhere[call_id]
                self.acd.apply_input(tenant_id, CallEnded(call_id, now))

    def reap(self, node: NodeInfo) -> None:
        """The records and recordings are the node reaper's; the ACD's part is :meth:`node_down`."""

    async def stop(self) -> None:
        for reader in self._readers.values():
            reader.cancel()
        for task in list(self._tasks):
            task.cancel()
