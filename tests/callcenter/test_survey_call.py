"""The call survey end to end on a demo node: a carrier's caller (our SIP stack: RTP, RFC 2833 keys)
reaches agent1's tab (aiortc and the page's protocol), the agent hangs up, the caller stays on the
line, hears the tenant's survey flow and presses 5; the rating is stored for the call, its agent and
queue, and shows in the interval report, on /qa and on the wallboard's CSAT."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from callcenter.models import Agent, CsatResponse, User
from softphone_web.agent_client import AgentClient
from tests.support.call_peers import AGENT_TONE, agent_on, call_into, carrier_routing
from tests.support.endpoint import EndpointHarness
from tests.support.node import NodeProcess, admin_client

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def api(module_node: NodeProcess) -> Iterator[httpx.Client]:
    with admin_client(module_node) as client:
        assert client.patch("/api/tenant", json={"survey_flow": "demo-survey"}).json()["survey_flow"] == "demo-survey"
        yield client


@pytest.fixture
async def carrier(module_node: NodeProcess) -> AsyncIterator[EndpointHarness]:
    harness = EndpointHarness(carrier_routing())
    await harness.endpoint.start()
    yield harness
    await harness.endpoint.stop()


@pytest.fixture
async def agent1(module_node: NodeProcess) -> AsyncIterator[AgentClient]:
    client = await agent_on(module_node, "agent1", module_node.agents["agent1"][0])
    yield client
    await client.close()


async def eventually(check: object, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.1)


async def test_the_agent_hangs_up_and_the_caller_rates_the_call(module_node: NodeProcess, api: httpx.Client,
                                                                carrier: EndpointHarness,
                                                                agent1: AgentClient) -> None:
    caller = await call_into(carrier, module_node, "1")  # sales
    offer = await agent1.expect("offer")
    call_id = offer["call_id"]
    await agent1.send({"type": "accept", "call_id": call_id})
    await eventually(lambda: caller.hears(AGENT_TONE))

    await agent1.send({"type": "hangup"})
    await agent1.expect("call_ended", call_id=call_id)
    await eventually(lambda: not caller.hears(AGENT_TONE, share=0.2))
    assert not caller.leg.ended, "the caller was hung up with the agent"
    await asyncio.sleep(1.0)  # the survey's prompt plays; a key stops it
    caller.leg.send_dtmf("5")
    await asyncio.wait_for(caller.leg.wait_ended(), 20)  # thanked, then hung up by the platform
    assert caller.leg.hangup_side != "caller"

    engine = create_engine(f"sqlite:///{module_node.data_dir}/callcenter.db")
    try:
        with Session(engine) as db:
            row = db.scalar(select(CsatResponse).where(CsatResponse.contact_id == call_id))
            agent_id = db.scalar(select(Agent.id).join(User, User.id == Agent.user_id)
                                 .where(User.username == "agent1"))
    finally:
        engine.dispose()
    assert row is not None and (row.rating, row.channel, row.agent_id, row.queue) == (5, "voice", agent_id, "sales")

    trace = api.get(f"/api/calls/{call_id}/ivr-trace").json()
    survey = next(s for s in trace["steps"] if s["type"] == "survey")
    assert {"rating": 5, "stored": True} == {k: v for e in survey["events"] if e["event"] == "rating"
                                             for k, v in e.items() if k in ("rating", "stored")}
    assert "survey" in [e["kind"] for e in api.get(f"/api/calls/{call_id}").json()["events"]]

    now = datetime.now(timezone.utc)
    report = api.get("/api/reports/intervals", params={
        "since": (now - timedelta(hours=1)).isoformat(), "until": (now + timedelta(minutes=5)).isoformat(),
        "interval": "day", "tz": "UTC"}).json()
    sales = next(t for t in report["totals"] if t["queue"] == "sales")
    assert (sales["CSAT_AVERAGE"], sales["CSAT_RESPONSES"], sales["CSAT_RESPONSE_RATE"]) == (5.0, 1, 100.0)

    listed = next(c for c in api.get("/api/qa/calls").json()["items"] if c["call_id"] == call_id)
    assert listed["csat"]["rating"] == 5 and listed["channel"] == "voice"
    assert api.get(f"/api/qa/calls/{call_id}").json()["csat"]["rating"] == 5
    today = api.get("/api/supervisor/csat").json()
    assert (today["CSAT_AVERAGE"], today["CSAT_RESPONSES"]) == (5.0, 1)
    assert next(q for q in today["queues"] if q["queue"] == "sales")["CSAT_RESPONSES"] == 1
