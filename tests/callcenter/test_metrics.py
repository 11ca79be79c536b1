"""/metrics exposes the node's figures under stable names; /healthz checks the database."""

from __future__ import annotations

from callcenter.metrics import REGISTRY, NodeStats, register_node

from .conftest import World


def _stats() -> NodeStats:
    return NodeStats(
        active_calls=3,
        calls_by_result={"normal_clearing": 20, "not_found": 1},
        sip_messages={("in", "INVITE", ""): 21, ("out", "INVITE", "200"): 20},
        rtp_in=1000,
        rtp_out=990,
        rtp_lost=2,
    )


def test_metrics_endpoint_has_node_metrics(world: World) -> None:
    register_node(_stats)
    resp = world.client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert "callcenter_active_calls 3.0" in text
    assert 'callcenter_calls_total{result="normal_clearing"} 20.0' in text
    assert 'callcenter_sip_messages_total{code="",direction="in",method="INVITE"} 21.0' in text
    assert 'callcenter_sip_messages_total{code="200",direction="out",method="INVITE"} 20.0' in text
    assert 'callcenter_rtp_packets_total{direction="in"} 1000.0' in text
    assert "callcenter_rtp_packets_lost_total 2.0" in text
    assert "callcenter_cdr_commit_seconds" in text


def test_register_node_is_idempotent() -> None:
    register_node(_stats)
    register_node(lambda: NodeStats(active_calls=7))
    assert REGISTRY.get_sample_value("callcenter_active_calls") == 7


def test_failing_stats_do_not_break_scrape(world: World) -> None:
    def boom() -> NodeStats:
        raise RuntimeError("node stopping")

    register_node(boom)
    resp = world.client.get("/metrics")
    assert resp.status_code == 200 and "callcenter_active_calls " not in resp.text


def test_healthz(world: World) -> None:
    assert world.client.get("/healthz").json() == {"status": "ok", "db": "ok"}


def test_healthz_503_when_db_unreachable(world: World, tmp_path: object) -> None:
    from sqlalchemy import create_engine

    world.client.app.state.ctx.engine = create_engine("sqlite:////nonexistent-dir/x/y.db")  # type: ignore[attr-defined]
    resp = world.client.get("/healthz")
    assert resp.status_code == 503 and resp.json()["db"] == "error"
