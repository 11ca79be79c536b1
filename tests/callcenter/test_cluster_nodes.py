"""Node processes in cluster mode (issue 14) on a real PostgreSQL and Redis: a node killed with a
call up is cleaned up after by a survivor (its record closed ``node_lost``, its recording finished
from the shared folder), and a call carries on while Redis restarts, the node reconnecting alone.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.db import make_engine
from callcenter.local_cluster import ClusterKeys, node_environment
from callcenter.models import CallRecord, Recording, Transcript
from sip_bridge.tones import detect_tone
from tests.support.endpoint import EndpointHarness, routing_table
from tests.support.node import NodeProcess
from tests.support.postgres import fresh_database
from tests.support.redis import RedisServer

from .test_softphone_calls import CALLER_TONE, Clients, answered_by, eventually

pytestmark = pytest.mark.interop

AGENT_TONE = 1400.0
MASTER_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def cluster_node(tmp_path: Path, name: str, database: str, redis: RedisServer) -> NodeProcess:
    """A node of a cluster without a SIP front (calls straight to it), set up as tests/support/cluster.py
    sets up its nodes (``callcenter.local_cluster``), on loopback."""
    data = tmp_path / name
    data.mkdir()
    keys = ClusterKeys(secret_key="cluster-secret-" * 4, recording_master_key=MASTER_KEY)
    return NodeProcess(data, env={**node_environment(keys, tmp_path / "shared-recordings"),
                                  "CALLCENTER_NODE_ID": name, "CALLCENTER_REDIS_URL": redis.url,
                                  "CALLCENTER_DATABASE_URL": database})


def rows(url: str, call_id: str) -> dict[str, Any]:
    """The call's record, its recordings and their transcription jobs, as the database holds them now."""
    engine = make_engine(url)
    try:
        with Session(engine) as db:
            record = db.get(CallRecord, call_id)
            recordings = db.scalars(select(Recording).where(Recording.call_id == call_id)).all()
            jobs = [db.get(Transcript, r.id) for r in recordings]
            return {"record": record, "recordings": recordings, "jobs": jobs}
    finally:
        engine.dispose()


def scrape(node: NodeProcess, name: str) -> float | None:
    for line in httpx.get(f"{node.http}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def test_a_survivor_closes_a_killed_nodes_call_and_finishes_its_recording(
        postgres_url: str, redis_server: RedisServer, tmp_path: Path) -> None:
    with fresh_database(postgres_url) as url:
        n1 = cluster_node(tmp_path, "n1", url, redis_server).start()
        n2 = cluster_node(tmp_path, "n2", url, redis_server).start()
        n2.agents = n1.agents  # the demo tenant was made by the first node
        harness = EndpointHarness(routing_table(outbound_port=n1.sip_port))
        await harness.endpoint.start()
        clients = Clients(n1)
        try:
            agent = await clients.agent("agent1", AGENT_TONE)
            caller, offer = await answered_by(agent, harness)  # a call on n1, recorded from the answer
            call_id = offer["call_id"]
            await asyncio.sleep(3.0)
            n1.kill()
            killed = time.time()
            await eventually(lambda: rows(url, call_id)["record"].ended_at is not None, 20)
            found = rows(url, call_id)
            record = found["record"]
            assert (record.node_id, record.end_cause, record.hangup_side) == ("n1", "node_lost", "platform")
            assert record.answered_at is not None
            assert record.answered_at.timestamp() < record.ended_at.timestamp() <= killed + 1.0  # when it died
            await eventually(lambda: [r.status for r in rows(url, call_id)["recordings"]] == ["incomplete"], 30)
            [recording] = rows(url, call_id)["recordings"]
            assert recording.storage_key is not None and recording.duration >= 2.0
            assert rows(url, call_id)["jobs"][0] is not None  # queued for transcription
            assert not list((tmp_path / "shared-recordings").glob("tenant-*/journal/n1/*"))
            reaped = [line for line in n2.logs() if line.get("msg") == "lost node reaped"]
            assert len(reaped) == 1 and reaped[0]["node"] == "n1" and reaped[0]["records_closed"] == 1
            assert not [line for line in n2.logs() if "a lost node's cleanup step failed" in str(line.get("msg"))]
            await caller.hang_up()
        finally:
            for client in clients.made:
                await client.close()
            await harness.endpoint.stop()
            n2.stop()
            n1.stop()


async def test_a_call_carries_on_while_redis_restarts_and_the_node_reconnects_alone(
        postgres_url: str, redis_server: RedisServer, tmp_path: Path) -> None:
    with fresh_database(postgres_url) as url:
        node = cluster_node(tmp_path, "n1", url, redis_server).start()
        harness = EndpointHarness(routing_table(outbound_port=node.sip_port))
        await harness.endpoint.start()
        clients = Clients(node)
        link = None
        try:
            agent = await clients.agent("agent1", AGENT_TONE)
            caller, offer = await answered_by(agent, harness)
            assert scrape(node, "callcenter_redis_up") == 1
            redis_server.halt()
            await asyncio.sleep(2.0)
            assert caller.hears(AGENT_TONE) and detect_tone(agent.heard_pcm(0.5), CALLER_TONE)  # media both ways
            await eventually(lambda: scrape(node, "callcenter_redis_up") == 0, 10)
            redis_server.resume()  # empty: no heartbeat, no counts
            await eventually(lambda: scrape(node, "callcenter_redis_up") == 1, 15)
            link = redis.Redis.from_url(redis_server.url, decode_responses=True)
            await eventually(lambda: link.exists("cluster:node:n1") == 1, 10)  # beating again
            await eventually(lambda: link.hgetall("cluster:calls:n1") == {"1": "1"}, 10)  # the call counted again
            assert caller.hears(AGENT_TONE)
            await caller.hang_up()
            await agent.expect("call_ended", timeout=10)
            await eventually(lambda: rows(url, offer["call_id"])["record"].ended_at is not None, 10)
            record = rows(url, offer["call_id"])["record"]
            assert (record.end_cause, record.node_id) == ("normal_clearing", "n1")
            outages = [line for line in node.logs() if line.get("msg") == "redis unavailable"]
            assert len(outages) == 1, outages  # one line for the outage, not one per failed use
            assert [line for line in node.logs() if line.get("msg") == "redis available again"]
        finally:
            if link is not None:
                link.close()
            for client in clients.made:
                await client.close()
            await harness.endpoint.stop()
            node.stop()
