"""Which node hosts each tenant's queues and its agents' sessions, and what the other nodes do.

On a single node every tenant is local. In a cluster each tenant is owned by one node under a
lease with a fencing epoch (``cluster.lease``): every node wants every tenant, so the first node
up owns them and a survivor takes over a dead owner's within the lease's TTL. The owner runs
the tenant's ACD; the other nodes hand their callers to it (``handover.py``) and relay their
agents' and supervisors' sockets to it (``api/socket_proxy.py``). Node heartbeats
(``cluster.registry``) tell who is alive: where to send a caller, whose handovers to accept,
whose calls died with it.

Listeners (the ACD, the handover client, the reaper) register with :meth:`add_listener`; they
are told of leases gained and lost and of nodes going down, on the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Protocol

from cluster.lease import LeaseKeeper, RedisLeases, epoch_of, owner_key
from cluster.liveness import DRAINING, UP, NodeInfo
from cluster.redis_link import REDIS_ERRORS, RedisLink
from cluster.registry import Heartbeat, NodeWatcher

from .handover import NodeAddress

logger = logging.getLogger(__name__)


class OwnershipListener(Protocol):
    def tenant_gained(self, tenant_id: int, epoch: int) -> None:
        """This node hosts ``tenant_id`` from now on."""

    def tenant_lost(self, tenant_id: int, reason: str) -> None:
        """This node must stop acting for ``tenant_id`` now."""

    def node_down(self, node: NodeInfo) -> None:
        """Another node died (or left): calls with it are gone."""

    def reap(self, node: NodeInfo) -> None:
        """Clean up after a dead node (called on exactly one survivor)."""


def _address(info: NodeInfo) -> NodeAddress:
    host, _, port = info.sip.rpartition(":")
    return NodeAddress(info.node, (host, int(port)), info.http)


class TenantOwners:
    """The cluster as this node's services see it (see module); ``link`` None: a single node."""

    def __init__(self, node_id: str | None, link: RedisLink | None, me: NodeInfo | None = None) -> None:
        self.node_id = node_id or "local"
        self.link = link
        self._listeners: list[OwnershipListener] = []
        #: tenant -> the highest epoch seen for it (ours or another owner's): fencing
        self._epochs: dict[int, int] = {}
        self.me = me
        self.keeper: LeaseKeeper | None = None
        self.heartbeat: Heartbeat | None = None
        self.watcher: NodeWatcher | None = None
        if link is not None:
            assert me is not None
            self.keeper = LeaseKeeper(RedisLeases(link, self.node_id), self)
            self.heartbeat = Heartbeat(link, me)
            self.watcher = NodeWatcher(link, self.node_id, self)

    @property
    def clustered(self) -> bool:
        return self.link is not None

    def add_listener(self, listener: OwnershipListener) -> None:
        self._listeners.append(listener)

    # -- queries ---------------------------------------------------------------------------
    def local(self, tenant_id: int) -> bool:
        """Whether this node hosts the tenant now (checked against the clock: a node that was
        paused knows it lost a lease before acting on it)."""
        if self.keeper is None:
            return True
        epoch = self.keeper.held.get(tenant_id)
        return epoch is not None and self.keeper.owns(tenant_id, epoch)

    def epoch(self, tenant_id: int) -> int:
        return self._epochs.get(tenant_id, 0)

    async def owner(self, tenant_id: int) -> NodeAddress | None:
        """The live node holding the tenant's lease (None while nobody does: a takeover)."""
        if self.link is None or self.local(tenant_id):
            return _address(self.me) if self.me is not None else None
        try:
            value = await self.link.client.get(owner_key(tenant_id))
        except REDIS_ERRORS as exc:
            self.link.failed(exc, "owner")
            return None
        self.link.succeeded()
        if not value:
            return None
        value = str(value)  # the link decodes replies
        node, _, _ = value.rpartition(":")
        epoch = epoch_of(value) or 0
        self._epochs[tenant_id] = max(self._epochs.get(tenant_id, 0), epoch)
        info = self.watcher.alive.get(node) if self.watcher is not None else None
        if info is None or info.state != UP:
            return None
        return _address(info)

    def alive_nodes(self) -> dict[str, NodeInfo]:
        """The other live nodes, by name, as of the last look."""
        return dict(self.watcher.alive) if self.watcher is not None else {}

    def live_addresses(self) -> set[str]:
        """The SIP addresses of the other live nodes (whose handovers this node accepts)."""
        if self.watcher is None:
            return set()
        return {info.sip.rpartition(":")[0] for info in self.watcher.alive.values()}

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, tenant_ids: Iterable[int]) -> None:
        if self.link is None:
            return
        assert self.heartbeat is not None and self.watcher is not None and self.keeper is not None
        await self.heartbeat.start()
        await self.watcher.start()
        for tenant_id in tenant_ids:
            self.keeper.want(tenant_id)
        await self.keeper.start()

    def want(self, tenant_ids: Iterable[int]) -> None:
        """Tenants added since the start (a reload): this node competes for them too."""
        if self.keeper is not None:
            for tenant_id in tenant_ids:
                self.keeper.want(tenant_id)

    async def drain(self) -> None:
        """Stop hosting anything: heartbeat ``draining`` (nobody hands this node callers), leases
        given back (each listener hears them lost first) so that others take them over now."""
        if self.heartbeat is not None:
            await self.heartbeat.set_state(DRAINING)
        if self.keeper is not None:
            for tenant_id in list(self.keeper.held):
                self.keeper.drop(tenant_id)

    async def stop(self) -> None:
        if self.keeper is not None:
            await self.keeper.stop()
        if self.watcher is not None:
            await self.watcher.stop()
        if self.heartbeat is not None:
            await self.heartbeat.stop()
        if self.link is not None:
            await self.link.aclose()

    # -- cluster.lease.LeaseListener --------------------------------------------------------
    def lease_gained(self, tenant: int, epoch: int) -> None:
        self._epochs[tenant] = max(self._epochs.get(tenant, 0), epoch)
        for listener in list(self._listeners):
            listener.tenant_gained(tenant, epoch)

    def lease_lost(self, tenant: int, epoch: int, reason: str) -> None:
        for listener in list(self._listeners):
            listener.tenant_lost(tenant, reason)

    # -- cluster.registry.NodeListener ------------------------------------------------------
    def node_up(self, info: NodeInfo) -> None:
        """Nothing: a node that hosted a tenant sends its agents' sockets to the next owner
        itself (``SoftphoneService.tenant_moved``), and a dead one's sockets close with it."""

    def node_down(self, info: NodeInfo) -> None:
        for listener in list(self._listeners):
            listener.node_down(info)

    def reap(self, info: NodeInfo) -> None:
        for listener in list(self._listeners):
            listener.reap(info)


def node_info(node_id: str, sip_host: str, sip_port: int, http_url: str) -> NodeInfo:
    """This node's heartbeat: where its SIP endpoint and its HTTP API are."""
    return NodeInfo(node=node_id, sip=f"{sip_host}:{sip_port}", http=http_url, state=UP,
                    started_at=int(time.time() * 1000))
