"""Who is alive, decided from looks at the registry on a fake clock: deaths found within a TTL and
a look, and none invented when Redis itself restarts or goes away."""

from __future__ import annotations

from cluster import DRAINING, HEARTBEAT_TTL, UP, WATCH_PERIOD, Liveness, NodeInfo
from cluster.liveness import NodeDown, NodeUp

N2 = NodeInfo("n2", "127.0.0.12:5060", "http://127.0.0.12:8000", UP, 1_000)
N3 = NodeInfo("n3", "127.0.0.13:5060", "http://127.0.0.13:8000", UP, 2_000)
SELF = NodeInfo("n1", "127.0.0.11:5060", "http://127.0.0.11:8000", UP, 500)
GRACE = HEARTBEAT_TTL + WATCH_PERIOD


def registry(*infos: NodeInfo) -> dict[str, NodeInfo]:
    return {i.node: i for i in infos}


def watching(at: float = 0.0) -> Liveness:
    live = Liveness("n1")
    assert live.observe(at, "run-1", registry(SELF, N2, N3), registry(SELF, N2, N3)) == [NodeUp(N2), NodeUp(N3)]
    live.observe(at + GRACE, "run-1", registry(SELF, N2, N3), registry(SELF, N2, N3))
    return live


def test_the_other_nodes_are_reported_up_once_and_the_watcher_itself_never() -> None:
    live = watching()
    assert live.observe(10.0, "run-1", registry(SELF, N2, N3), registry(SELF, N2, N3)) == []
    assert set(live.alive) == {"n2", "n3"}


def test_a_node_whose_heartbeat_lapsed_is_reported_down_at_the_next_look_and_only_once() -> None:
    live = watching()
    assert live.observe(10.0, "run-1", registry(SELF, N2, N3), registry(SELF, N3)) == [NodeDown(N2)]
    assert live.observe(10.5, "run-1", registry(SELF, N2, N3), registry(SELF, N3)) == []
    assert "n2" not in live.alive


def test_a_draining_node_is_reported_again_with_its_new_state() -> None:
    live = watching()
    draining = NodeInfo("n2", N2.sip, N2.http, DRAINING, N2.started_at)
    assert live.observe(10.0, "run-1", registry(SELF, draining, N3), registry(SELF, draining, N3)) == [
        NodeUp(draining)]


def test_a_node_restarted_faster_than_its_ttl_is_reported_dead_then_up_again() -> None:
    live = watching()
    again = NodeInfo("n2", N2.sip, N2.http, UP, 9_000)
    assert live.observe(10.0, "run-1", registry(SELF, again, N3), registry(SELF, again, N3)) == [
        NodeDown(N2), NodeUp(again)]


def test_nobody_is_declared_dead_during_the_grace_after_redis_restarted() -> None:
    live = watching()
    # Redis came back empty: no heartbeat, no registry, a new run_id
    assert live.observe(10.0, "run-2", {}, {}) == []
    assert live.observe(10.0 + GRACE - 0.01, "run-2", registry(SELF, N3), registry(SELF, N3)) == []
    # n2 never came back: dead, once the grace is over
    assert live.observe(10.0 + GRACE, "run-2", registry(SELF, N3), registry(SELF, N3)) == [NodeDown(N2)]


def test_nobody_is_declared_dead_during_the_grace_after_the_watcher_could_not_look() -> None:
    live = watching()
    live.unreachable()
    assert live.observe(20.0, "run-1", registry(SELF, N2, N3), registry(SELF, N3)) == []
    assert live.observe(20.0 + GRACE, "run-1", registry(SELF, N2, N3), registry(SELF, N3)) == [NodeDown(N2)]


def test_a_watcher_that_starts_after_a_node_died_reports_it_after_its_first_grace() -> None:
    live = Liveness("n1")
    assert live.observe(0.0, "run-1", registry(SELF, N2, N3), registry(SELF, N3)) == [NodeUp(N3)]
    assert live.observe(GRACE, "run-1", registry(SELF, N2, N3), registry(SELF, N3)) == [NodeDown(N2)]
    assert live.observe(GRACE + 0.5, "run-1", registry(SELF, N2, N3), registry(SELF, N3)) == []


def test_a_dead_node_whose_reaping_could_not_be_claimed_is_reported_again() -> None:
    live = watching()
    assert live.observe(10.0, "run-1", registry(SELF, N2, N3), registry(SELF, N3)) == [NodeDown(N2)]
    live.forget_report(N2)
    assert live.observe(10.5, "run-1", registry(SELF, N2, N3), registry(SELF, N3)) == [NodeDown(N2)]


def test_a_node_reaped_by_another_watcher_before_this_one_looked_is_still_reported_down() -> None:
    live = watching()
    assert live.observe(10.0, "run-1", registry(SELF, N3), registry(SELF, N3)) == [NodeDown(N2)]
