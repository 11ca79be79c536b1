"""The supervisor's live view of one tenant: a snapshot of its queues and agents, and thresholds.

:func:`snapshot` is pure: it reads the node's ``AcdService`` (engines, configured queues, agent
identities) at one instant and builds plain JSON. Metric keys follow Amazon Connect's real-time
(``GetCurrentMetricData``) and historical (``GetMetricDataV2``) names where one exists:

=============================  ====================================================================
key                            meaning
=============================  ====================================================================
CONTACTS_IN_QUEUE              live calls waiting in the queue (Connect: same)
CONTACTS_SCHEDULED             callbacks waiting in line (Connect: same, "scheduled" contacts)
OLDEST_CONTACT_AGE             seconds the longest-waiting live call has waited, since its original
                               enqueue (Connect: same, unit seconds); null when nobody waits
SERVICE_LEVEL                  today: % of calls answered within the queue's ``sl_threshold``
                               seconds, of answered + abandoned (Connect: ``SERVICE_LEVEL``, a
                               historical metric with a threshold); null before any call
CONTACTS_HANDLED               calls answered today (Connect: same, historical)
CONTACTS_ABANDONED             calls abandoned in the queue today (Connect: same, historical)
AGENTS_AVAILABLE               agents with the queue's skill in state ``available`` (Connect: same)
AGENTS_ON_CONTACT              ... ``on_call`` (Connect: same)
AGENTS_AFTER_CONTACT_WORK      ... ``wrap_up`` (Connect: same)
AGENTS_NON_PRODUCTIVE          ... ``break`` (Connect's name for agents in a custom, non-productive
                               status; Connect has no "on break" metric)
AGENTS_ONLINE                  ... in any state but ``offline`` (Connect: same)
AGENTS_RESERVED                ... ``reserved`` (ringing, or a callback being dialed): no Connect
                               name (Connect shows such agents as "incoming"/"pending"); ours
=============================  ====================================================================

Thresholds per queue: ``OLDEST_CONTACT_AGE`` (seconds; crossed when a call has waited longer)
and ``SERVICE_LEVEL`` (%; crossed when today's service level is below it). They are stored per
tenant in ``data_dir/supervisor-thresholds.json`` (:class:`ThresholdStore`): the queue's own JSON
settings refuse unknown keys (``QueueSettings`` forbids extras), so they cannot live there
without changing the ACD's configuration parser.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from acd import AgentState

DEFAULT_OLDEST_CONTACT_AGE = 60.0
DEFAULT_SERVICE_LEVEL = 80.0

QUEUE_AGENT_METRICS = {
    AgentState.AVAILABLE: "AGENTS_AVAILABLE",
    AgentState.ON_CALL: "AGENTS_ON_CONTACT",
    AgentState.WRAP_UP: "AGENTS_AFTER_CONTACT_WORK",
    AgentState.BREAK: "AGENTS_NON_PRODUCTIVE",
    AgentState.RESERVED: "AGENTS_RESERVED",
}


@dataclass(frozen=True)
class Thresholds:
    """A queue's alert thresholds; None: that one is off."""

    OLDEST_CONTACT_AGE: float | None = DEFAULT_OLDEST_CONTACT_AGE
    SERVICE_LEVEL: float | None = DEFAULT_SERVICE_LEVEL


def breaches(metrics: dict[str, Any], thresholds: Thresholds) -> list[str]:
    """The metrics of one queue that cross their thresholds."""
    out = []
    age, level = metrics.get("OLDEST_CONTACT_AGE"), metrics.get("SERVICE_LEVEL")
    if thresholds.OLDEST_CONTACT_AGE is not None and age is not None and age > thresholds.OLDEST_CONTACT_AGE:
        out.append("OLDEST_CONTACT_AGE")
    if thresholds.SERVICE_LEVEL is not None and level is not None and level < thresholds.SERVICE_LEVEL:
        out.append("SERVICE_LEVEL")
    return out


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def snapshot(acd: Any, tenant_id: int, thresholds: dict[str, Thresholds], now: float) -> dict[str, Any]:
    """The tenant's queues and agents as they are at ``now`` (wall-clock seconds).

    ``acd`` is the node's ``AcdService`` (or None: no live ACD, empty lists); only the tenant's
    own engine, queues and agents are read.
    """
    engine = acd.engine(tenant_id) if acd is not None else None
    if engine is None:
        return {"at": now, "queues": [], "agents": [], "waiting": []}
    configs = acd.queues.get(tenant_id, {})
    queues = []
    for name in sorted(configs):
        stats = engine.queue_stats(name, now)
        metrics: dict[str, Any] = {
            "CONTACTS_IN_QUEUE": stats.waiting,
            "CONTACTS_SCHEDULED": stats.callbacks,
            "OLDEST_CONTACT_AGE": _round(stats.longest_wait),
            "SERVICE_LEVEL": _round(stats.service_level * 100 if stats.service_level is not None else None),
            "CONTACTS_HANDLED": stats.answered,
            "CONTACTS_ABANDONED": stats.abandoned,
            **{key: stats.agents.get(state, 0) for state, key in QUEUE_AGENT_METRICS.items()},
            "AGENTS_ONLINE": sum(n for state, n in stats.agents.items() if state != AgentState.OFFLINE),
        }
        limits = thresholds.get(name, Thresholds())
        crossed = breaches(metrics, limits)
        queues.append({"queue": name, "sl_threshold": configs[name].sl_threshold, "metrics": metrics,
                       "thresholds": asdict(limits), "breaches": crossed, "alert": bool(crossed)})
    names = {identity.agent_id: identity.username for identity in acd.agents.values()
             if identity.tenant_id == tenant_id}
    agents = []
    for view in engine.agents():
        if view.agent_id not in names:
            continue
        talking = view.state == AgentState.ON_CALL and view.call_id is not None
        agents.append({
            "agent_id": view.agent_id, "username": names[view.agent_id], "state": view.state.value,
            "reason": view.reason, "time_in_state": _round(max(now - view.since, 0.0)),
            "call_id": view.call_id,
            # on_call starts when the agent answers: the time in state is the call's duration so far
            "call_duration": _round(max(now - view.since, 0.0)) if talking else None,
            "reachable": view.reachable, "pending": view.pending.value if view.pending else None,
        })
    agents.sort(key=lambda a: a["username"])
    waiting = [{"call_id": w.call_id, "queue": w.queue, "position": w.position, "priority": w.priority,
                "age": _round(max(now - w.enqueued_at, 0.0)), "callback": w.is_callback,
                "ringing": list(w.offered_to)}
               for w in engine.waiting() if w.queue in configs]
    return {"at": now, "queues": queues, "agents": agents, "waiting": waiting}


class ThresholdStore:
    """Per-tenant, per-queue thresholds in one JSON file (``{tenant_id: {queue: {...}}}``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, dict[str, Any]]] | None = None

    def _read(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The file's content, read once, then kept (this store is its only writer)."""
        if self._data is None:
            try:
                data = json.loads(self.path.read_text())
            except FileNotFoundError:
                data = {}
            self._data = data if isinstance(data, dict) else {}
        return self._data

    def get(self, tenant_id: int) -> dict[str, Thresholds]:
        with self._lock:
            stored = self._read().get(str(tenant_id), {})
        return {queue: Thresholds(**{k: v for k, v in values.items() if k in Thresholds.__dataclass_fields__})
                for queue, values in stored.items()}

    def put(self, tenant_id: int, queue: str, thresholds: Thresholds) -> None:
        with self._lock:
            data = self._read()
            data.setdefault(str(tenant_id), {})[queue] = asdict(thresholds)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            os.replace(tmp, self.path)
