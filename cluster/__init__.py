"""Cluster machinery: leases with fencing epochs, the ACD input log, node heartbeats.

Built on Redis (``redis.asyncio``), with sans-I/O cores where timing decides
(:mod:`cluster.lease_schedule`, :mod:`cluster.liveness`) and in-memory implementations of the
log and leases for single-node mode. Nothing here knows about calls: ``callcenter`` composes it.

Fencing: the owner of a tenant carries out its own actions, and only while
:meth:`LeaseKeeper.owns` holds (checked after every ``await``); the lease epoch is stored with
each ACD snapshot, so a late save from an older owner is refused (``callcenter.acd_service``).
"""

from cluster.dedupe import DEDUP_WINDOW, Deduper
from cluster.lease import LeaseKeeper, LeaseListener, LeaseStore, MemoryLeases, RedisLeases, owner_key
from cluster.lease_schedule import (
    RELEASED,
    RENEW_DEADLINE,
    RENEW_PERIOD,
    RETRY_PERIOD,
    TAKEN,
    TTL,
    UNREACHABLE,
    LeaseSchedule,
    LeaseTiming,
)
from cluster.liveness import DRAINING, HEARTBEAT_PERIOD, HEARTBEAT_TTL, UP, WATCH_PERIOD, Liveness, NodeInfo
from cluster.log import InputLog, LogEntry, MemoryLog, RedisLog
from cluster.redis_link import REDIS_ERRORS, RedisLink
from cluster.registry import Heartbeat, NodeListener, NodeWatcher, live_nodes
from cluster.streams import START, parse_id

__all__ = [
    "DEDUP_WINDOW", "DRAINING", "HEARTBEAT_PERIOD", "HEARTBEAT_TTL", "REDIS_ERRORS", "RELEASED", "RENEW_DEADLINE",
    "RENEW_PERIOD", "RETRY_PERIOD", "START", "TAKEN", "TTL", "UNREACHABLE", "UP", "WATCH_PERIOD",
    "Deduper", "Heartbeat", "InputLog", "LeaseKeeper", "LeaseListener", "LeaseSchedule", "LeaseStore", "LeaseTiming",
    "Liveness", "LogEntry", "MemoryLeases", "MemoryLog", "NodeInfo", "NodeListener", "NodeWatcher", "RedisLeases",
    "RedisLink", "RedisLog", "live_nodes", "owner_key", "parse_id",
]
