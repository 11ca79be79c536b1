"""Which nodes are alive, from successive looks at the registry (sans-I/O: looks in, changes out).

Each node keeps a heartbeat key that lapses 3 s after its last beat; a node whose key is gone
is dead. Looking is not that simple in two cases, both handled here:

- **Redis itself went away.** A Redis restarted empty has lost every heartbeat; one restored
  from disk drops the keys that expired meanwhile; a watcher cut off from Redis saw no beats.
  None of that says a node died. So after the watcher's first look, after any look that
  failed and whenever Redis's ``run_id`` changes (a restart), nobody is declared dead for a
  grace of ``ttl + period``: every live node beats again within that time.
- **A node restarted quickly** under the same name: its heartbeat never lapsed, but its
  ``started_at`` changed. The earlier process is dead and is reported so (its calls died with
  it), then the new one is reported up.

A node is reported down once per ``started_at`` (the registry keeps a dead node's entry until
one survivor has reaped it, see :mod:`cluster.registry`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

HEARTBEAT_TTL = 3.0
"""Seconds a node's heartbeat key lives after its last beat."""
HEARTBEAT_PERIOD = 1.0
"""A node beats every second: two beats may fail before it lapses."""
WATCH_PERIOD = 0.5
"""Watchers look every 0.5 s: a dead node is reported within HEARTBEAT_TTL + WATCH_PERIOD = 3.5 s
of its last beat."""

UP = "up"
DRAINING = "draining"
STATES = (UP, DRAINING)


@dataclass(frozen=True)
class NodeInfo:
    node: str
    sip: str
    """Where its SIP endpoint listens, ``ip:port``."""
    http: str
    """Its HTTP base URL."""
    state: str
    started_at: int
    """When its process started, ms since the Unix epoch: tells one run of a node from the next."""

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"node state {self.state!r} is not one of {STATES}")
        if not self.node or ":" in self.node:
            raise ValueError(f"a node name is not empty and has no ':': {self.node!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> NodeInfo:
        """From its heartbeat hash or registry entry; ``ValueError`` when something is missing or wrong."""
        try:
            return cls(node=str(fields["node"]), sip=str(fields["sip"]), http=str(fields["http"]),
                       state=str(fields["state"]), started_at=int(fields["started_at"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a node's heartbeat: {exc!r}") from None


@dataclass(frozen=True)
class NodeUp:
    """A node appeared, or its heartbeat changed (``up`` -> ``draining``)."""

    info: NodeInfo


@dataclass(frozen=True)
class NodeDown:
    """A node (this run of it: ``info.started_at``) is dead or gone."""

    info: NodeInfo


class Liveness:
    """One watcher's view of the other nodes (see module)."""

    def __init__(self, self_node: str, ttl: float = HEARTBEAT_TTL, period: float = WATCH_PERIOD) -> None:
        self.self_node = self_node
        self.grace = ttl + period
        self._known: dict[str, NodeInfo] = {}
        self._reported: set[tuple[str, int]] = set()
        self._server: str | None = None
        self._grace_until: float | None = None
        self._blind = True

    @property
    def alive(self) -> dict[str, NodeInfo]:
        """The other nodes seen beating, and not reported down since."""
        return dict(self._known)

    def unreachable(self) -> None:
        """A look failed: the next successful one starts a grace (see module)."""
        self._blind = True

    def observe(self, now: float, server: str, registered: dict[str, NodeInfo],
                beating: dict[str, NodeInfo]) -> list[NodeUp | NodeDown]:
        """A look at ``now``: Redis's ``run_id``, the registry's entries and the heartbeats found."""
        if self._blind or server != self._server:
            self._grace_until = now + self.grace
            self._server, self._blind = server, False
        changes: list[NodeUp | NodeDown] = []
        for node, info in beating.items():
            if node == self.self_node:
                continue
            known = self._known.get(node)
            if known is not None and known.started_at != info.started_at:
                changes.append(self._down(known))
            if known != info:
                self._known[node] = info
                changes.append(NodeUp(info))
        if self._grace_until is not None and now < self._grace_until:
            return changes
        for node, known in list(self._known.items()):
            if node not in beating:
                del self._known[node]
                changes.append(self._down(known))
        for node, info in registered.items():
            if node != self.self_node and node not in beating and (node, info.started_at) not in self._reported:
                changes.append(self._down(info))
        # forget what the registry has forgotten (reaped)
        self._reported &= {(node, info.started_at) for node, info in registered.items()}
        return changes

    def forget_report(self, info: NodeInfo) -> None:
        """Report ``info`` down again at the next look if it is still registered (its reaping
        could not be claimed)."""
        self._reported.discard((info.node, info.started_at))

    def _down(self, info: NodeInfo) -> NodeDown:
        self._reported.add((info.node, info.started_at))
        return NodeDown(info)
