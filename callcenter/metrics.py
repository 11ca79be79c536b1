"""Prometheus metrics: one registry for the node, live figures pulled from the SIP node."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)

CDR_BATCH_SECONDS = Histogram(
    "callcenter_cdr_commit_seconds",
    "Time to commit one group of call-record writes",
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
CDR_BATCH_SIZE = Histogram(
    "callcenter_cdr_batch_size",
    "Call-record operations committed together",
    registry=REGISTRY,
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500),
)
CDR_WRITE_ERRORS = Counter(
    "callcenter_cdr_write_errors",
    "Call-record operations that failed to commit",
    registry=REGISTRY,
)
CDR_PENDING = Gauge(
    "callcenter_cdr_pending_operations",
    "Call-record operations (starts, answers, ends, events, IVR traces, voicemails) not written yet;"
    " they pile up while the database is unavailable",
    registry=REGISTRY,
)
CDR_DROPPED = Counter(
    "callcenter_cdr_dropped_operations",
    "Call-record operations dropped because call_record_backlog was full during a database outage",
    registry=REGISTRY,
)
DATABASE_UP = Gauge(
    "callcenter_database_up",
    "1 while the node's database answers, 0 during an outage",
    registry=REGISTRY,
)
DATABASE_OUTAGES = Counter(
    "callcenter_database_outages",
    "Database outages seen by this node (a failed connect or a connection lost, until one works again)",
    registry=REGISTRY,
)
RECORDING_FAILURES = Counter(
    "callcenter_recording_failures",
    "Recordings marked failed, by reason (disk_full: the recordings disk had no space left; io_error)",
    labelnames=["reason"],
    registry=REGISTRY,
)


@dataclass
class NodeStats:
    """Counters of the SIP node at one instant (cumulative since start, except active_calls)."""

    active_calls: int = 0
    calls_by_result: dict[str, int] = field(default_factory=dict)
    sip_messages: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(direction "in"|"out", method, code) -> count; code "" for requests."""
    rtp_in: int = 0
    rtp_out: int = 0
    rtp_lost: int = 0
    srtp_rejected: int = 0
    """SRTP/SRTCP packets dropped because they failed authentication or the replay check."""


def _families() -> tuple[
    GaugeMetricFamily, CounterMetricFamily, CounterMetricFamily, CounterMetricFamily, CounterMetricFamily,
    CounterMetricFamily,
]:
    return (
        GaugeMetricFamily("callcenter_active_calls", "Calls in progress on this node"),
        CounterMetricFamily("callcenter_calls", "Calls by final result", labels=["result"]),
        CounterMetricFamily(
            "callcenter_sip_messages",
            "SIP messages by direction, method and response code (empty for requests)",
            labels=["direction", "method", "code"],
        ),
        CounterMetricFamily("callcenter_rtp_packets", "RTP packets by direction", labels=["direction"]),
        CounterMetricFamily("callcenter_rtp_packets_lost", "RTP packets lost (sequence gaps)"),
        CounterMetricFamily("callcenter_srtp_packets_rejected",
                            "SRTP/SRTCP packets dropped: failed authentication or replay check"),
    )


class NodeCollector(Collector):
    """Exposes NodeStats from ``get_stats`` at scrape time."""

    def __init__(self, get_stats: Callable[[], NodeStats]) -> None:
        self._get_stats = get_stats

    def describe(self) -> Iterator[Metric]:
        # Names only, so registration never calls into the node.
        yield from _families()

    def collect(self) -> Iterator[Metric]:
        try:
            stats = self._get_stats()
        except Exception:
            # A scrape must not fail because the node is starting or stopping.
            log.exception("node stats unavailable")
            return
        active, calls, sip, rtp, lost, srtp_rejected = _families()
        active.add_metric([], stats.active_calls)
        for result, count in sorted(stats.calls_by_result.items()):
            calls.add_metric([result], count)
        for (direction, method, code), count in sorted(stats.sip_messages.items()):
            sip.add_metric([direction, method, code], count)
        rtp.add_metric(["in"], stats.rtp_in)
        rtp.add_metric(["out"], stats.rtp_out)
        lost.add_metric([], stats.rtp_lost)
        srtp_rejected.add_metric([], stats.srtp_rejected)
        yield from (active, calls, sip, rtp, lost, srtp_rejected)


_node_collector: NodeCollector | None = None


def register_node(get_stats: Callable[[], NodeStats]) -> NodeCollector:
    """Attach the node's stats to REGISTRY, replacing a previous node collector."""
    global _node_collector
    if _node_collector is not None:
        REGISTRY.unregister(_node_collector)
    _node_collector = NodeCollector(get_stats)
    REGISTRY.register(_node_collector)
    return _node_collector


SECURITY_EVENTS = Counter(
    "callcenter_security_events",
    "Security events: bans after failed authentication, challenges from peers that are not trunks, ...",
    labelnames=["event"],
    registry=REGISTRY,
)


class _FunctionCollector(Collector):
    """Families built at scrape time by ``build`` (a node's cluster figures: absent on a single node)."""

    def __init__(self, build: Callable[[], list[Metric]]) -> None:
        self._build = build

    def describe(self) -> Iterator[Metric]:
        return iter(())  # nothing is called at registration

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._build()
        except Exception:
            log.exception("cluster figures unavailable")


_cluster_collectors: dict[str, _FunctionCollector] = {}


def register_cluster_figures(name: str, build: Callable[[], list[Metric]]) -> None:
    """Attach the families ``build`` makes to REGISTRY under ``name``, replacing a previous one."""
    previous = _cluster_collectors.pop(name, None)
    if previous is not None:
        REGISTRY.unregister(previous)
    collector = _cluster_collectors[name] = _FunctionCollector(build)
    REGISTRY.register(collector)


def redis_up(available: Callable[[], bool]) -> None:
    """``callcenter_redis_up``: 1 while Redis answers this node, 0 during an outage (cluster mode)."""

    def build() -> list[Metric]:
        gauge = GaugeMetricFamily("callcenter_redis_up", "1 while Redis answers this node (cluster mode), "
                                                         "0 during an outage")
        gauge.add_metric([], 1.0 if available() else 0.0)
        return [gauge]

    register_cluster_figures("redis_up", build)


def tenant_calls(counts: Callable[[], dict[int, tuple[int, int]]]) -> None:
    """``callcenter_tenant_calls{tenant_id, scope}``: each tenant's calls with a carrier in progress
    on this node (``scope="node"``) and on the whole cluster as last read (``scope="cluster"``)."""

    def build() -> list[Metric]:
        gauge = GaugeMetricFamily("callcenter_tenant_calls", "Calls with a carrier in progress per tenant, on "
                                  "this node (scope node) and on the whole cluster (scope cluster)",
                                  labels=["tenant_id", "scope"])
        for tenant_id, (here, cluster) in counts().items():
            gauge.add_metric([str(tenant_id), "node"], here)
            gauge.add_metric([str(tenant_id), "cluster"], cluster)
        return [gauge]

    register_cluster_figures("tenant_calls", build)


def phone_bindings(count: Callable[[], int]) -> None:
    """``callcenter_phone_bindings``: agents' phone bindings this node's registrar holds (in a
    cluster every node holds every binding, whichever node took the REGISTER)."""

    def build() -> list[Metric]:
        gauge = GaugeMetricFamily("callcenter_phone_bindings", "Agents' phone bindings held by this node's "
                                  "registrar (in a cluster: every node's, shared through Redis)")
        gauge.add_metric([], count())
        return [gauge]

    register_cluster_figures("phone_bindings", build)
