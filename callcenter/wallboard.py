"""The supervisor's live view of one tenant: a snapshot of its queues and agents, and thresholds.

:func:`snapshot` is pure: it reads the node's ``AcdService`` (engines, configured queues, agent
identities) at one instant and builds plain JSON. Metric keys follow Amazon Connect's real-time
(``GetCurrentMetricData``) and historical (``GetMetricDataV2``) names where one exists:

=============================  ====================================================================
key                            meaning
=============================  ====================================================================
CONTACTS_IN_QUEUE              live calls waiting in the queue (Connect: same)
CHATS_IN_QUEUE                 web chats waiting in the queue (Connect: CONTACTS_IN_QUEUE with the
                               channel CHAT)
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

Today's customer satisfaction is not in the snapshot (it is read from the database, not the ACD):
the page asks ``GET /api/supervisor/csat`` (``callcenter.csat.today_csat``) now and then.

Thresholds per queue: ``OLDEST_CONTACT_AGE`` (seconds; crossed when a call has waited longer)
and ``SERVICE_LEVEL`` (%; crossed when today's service level is below it). They are stored per
tenant and queue in the ``wallboard_thresholds`` table (:class:`ThresholdStore`), so every node
of a cluster shows the same; the queue's own JSON settings refuse unknown keys (``QueueSettings``
forbids extras), so they cannot live there without changing the ACD's configuration parser.
Before issue 14 they were in ``data_dir/supervisor-thresholds.json``: :func:`import_threshold_file`
brings such a file into the table once, at the node's start.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from acd import AgentState

from .db_health import OutageNotice
from .models import QueueThreshold, Tenant, utcnow

logger = logging.getLogger(__name__)

THRESHOLD_FILE = "supervisor-thresholds.json"
"""Where a node kept the thresholds before they moved to the database (in ``data_dir``)."""
CACHE_SECONDS = 2.0
"""A tenant's thresholds are read again when older than this: a change made on another node shows
on this node's wallboards at most this much (plus one refresh) later."""

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


def snapshot(acd: Any, tenant_id: int, thresholds: dict[str, Thresholds], now: float,
             calls: Any = None) -> dict[str, Any]:
    """The tenant's queues and agents as they are at ``now`` (wall-clock seconds), and
    ``calls_in_progress``: its calls with a carrier on every node (``calls``: the node's
    ``TenantCalls``; None: not counted).

    ``acd`` is the node's ``AcdService`` (or None: no live ACD, empty lists); only the tenant's
    own engine, queues and agents are read.
    """
    in_progress = calls.cluster(tenant_id) if calls is not None else None
    engine = acd.engine(tenant_id) if acd is not None else None
    if engine is None:
        return {"at": now, "calls_in_progress": in_progress, "queues": [], "agents": [], "waiting": []}
    configs = acd.queues.get(tenant_id, {})
    queues = []
    for name in sorted(configs):
        stats = engine.queue_stats(name, now)
        metrics: dict[str, Any] = {
            "CONTACTS_IN_QUEUE": stats.waiting,
            "CHATS_IN_QUEUE": stats.waiting_chats,
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
    names = {identity.agent_id: identity.username for identity in acd.directory.of_tenant(tenant_id)}
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
    return {"at": now, "calls_in_progress": in_progress, "queues": queues, "agents": agents, "waiting": waiting}


def _upsert(engine: Engine) -> Any:
    """INSERT ... ON CONFLICT of the engine's dialect (SQLite and PostgreSQL both have it)."""
    return (postgresql if engine.dialect.name == "postgresql" else sqlite).insert(QueueThreshold.__table__)


def _read_tenant(engine: Engine, tenant_id: int) -> dict[str, Thresholds]:
    with Session(engine) as db:
        rows = db.scalars(select(QueueThreshold).where(QueueThreshold.tenant_id == tenant_id))
        return {row.queue: Thresholds(row.oldest_contact_age, row.service_level) for row in rows}


class ThresholdStore:
    """Per-tenant, per-queue thresholds in the database, shared by the nodes.

    :meth:`get` is called on the event loop for every wallboard push: the first read of a tenant
    blocks (callers make it off the loop, as the API does), later ones answer from memory and,
    once the tenant's copy is older than ``CACHE_SECONDS``, refresh it in a thread of the store's
    own. While the database is unavailable the wallboard goes on with the thresholds last read.
    """

    def __init__(self, engine: Engine, max_age: float = CACHE_SECONDS) -> None:
        self.engine = engine
        self.max_age = max_age
        self._lock = threading.Lock()
        self._cache: dict[int, tuple[float, dict[str, Thresholds]]] = {}
        self._refreshing: set[int] = set()
        self._refresher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thresholds")
        self._outage = OutageNotice(logger, "database unavailable: wallboards keep the thresholds last read",
                                    "database available again: wallboard thresholds read")

    def get(self, tenant_id: int) -> dict[str, Thresholds]:
        """The tenant's thresholds by queue (queues never set are absent: they have the defaults)."""
        with self._lock:
            cached = self._cache.get(tenant_id)
            stale = cached is not None and time.monotonic() - cached[0] > self.max_age
            if stale and tenant_id not in self._refreshing:
                self._refreshing.add(tenant_id)
                self._refresher.submit(self._refresh, tenant_id)
        return cached[1] if cached is not None else self._load(tenant_id)

    def _load(self, tenant_id: int) -> dict[str, Thresholds]:
        read_at = time.monotonic()
        found = _read_tenant(self.engine, tenant_id)
        with self._lock:
            self._cache[tenant_id] = (read_at, found)
        return found

    def _refresh(self, tenant_id: int) -> None:
        try:
            self._load(tenant_id)
            self._outage.ok()
        except Exception as exc:  # the copy in memory stays; the next get tries again
            self._outage.failed(exc)
        finally:
            with self._lock:
                self._refreshing.discard(tenant_id)

    def put(self, tenant_id: int, queue: str, thresholds: Thresholds) -> None:
        """Set a queue's thresholds (blocking; the caller's wallboards see them at once)."""
        values = {"oldest_contact_age": thresholds.OLDEST_CONTACT_AGE, "service_level": thresholds.SERVICE_LEVEL,
                  "updated_at": utcnow()}
        with Session(self.engine) as db:
            db.execute(_upsert(self.engine).values(tenant_id=tenant_id, queue=queue, **values)
                       .on_conflict_do_update(index_elements=["tenant_id", "queue"], set_=values))
            db.commit()
        self._load(tenant_id)


def import_threshold_file(engine: Engine, data_dir: Path) -> int:
    """Bring ``data_dir/supervisor-thresholds.json`` (``{tenant_id: {queue: {...}}}``, where a node
    kept thresholds before they moved to the database) into the table, then rename it
    ``*.imported`` so it is read once. A queue already in the table keeps its thresholds (set
    through the API since, or by another node's file). Returns the queues imported; a file that
    cannot be read is left where it is, with one error line."""
    path = data_dir / THRESHOLD_FILE
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        rows = [{"tenant_id": int(tenant), "queue": str(queue),
                 "oldest_contact_age": _limit(values, "OLDEST_CONTACT_AGE"),
                 "service_level": _limit(values, "SERVICE_LEVEL")}
                for tenant, queues in data.items() for queue, values in dict(queues).items()]
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, TypeError) as exc:
        logger.error("supervisor thresholds file not imported", extra={"path": str(path), "error": str(exc)})
        return 0
    imported = 0
    with Session(engine) as db:
        tenants = set(db.scalars(select(Tenant.id)))
        for row in rows:
            if row["tenant_id"] in tenants:
                inserted = db.execute(_upsert(engine).values(**row, updated_at=utcnow())
                                      .on_conflict_do_nothing(index_elements=["tenant_id", "queue"])
                                      .returning(QueueThreshold.queue))
                imported += len(inserted.all())
        db.commit()
    path.rename(path.with_name(THRESHOLD_FILE + ".imported"))
    logger.info("supervisor thresholds imported into the database", extra={"path": str(path), "queues": imported})
    return imported


def _limit(values: Any, key: str) -> float | None:
    """One threshold of the file: a number, or null (off); absent: the default."""
    value = dict(values).get(key, getattr(Thresholds(), key))
    return None if value is None else float(value)
