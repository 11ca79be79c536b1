"""A progressive campaign on a demo node, against sipp contacts behind a carrier trunk.

30 contacts imported from CSV: persons (say "喂？", wait, then talk), busy lines, phones nobody
answers, answering machines (a long greeting and a beep), two numbers on the do-not-call list
and two whose calling window (in their own time zone) is closed. Two agents (tabs of the
softphone's protocol, ``AgentClient``) work the campaign's queue. Every contact is attempted per
the retry rules, none outside its window or on the list; persons reach an agent with audio both
ways, machines are detected and left the message; the report and the live figures say so.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from sip_bridge.tones import detect_tone, sine
from softphone_web.agent_client import AgentClient
from tests.support.agent_page import eventually
from tests.support.audio import silence, speak, tone, tools_missing
from tests.support.call_peers import agent_on
from tests.support.node import NodeProcess, admin_client, free_port
from tests.support.pcap import write_rtp_pcap
from tests.support.sniff import RtpSniffer

pytestmark = [pytest.mark.interop, pytest.mark.skipif(tools_missing() is not None, reason=str(tools_missing()))]

SCENARIO = Path(__file__).parents[1] / "scenarios" / "campaign_callee.xml"
PERSON_TONE, AGENT_TONE = 1000.0, 1400.0
KINDS = {"1": "person", "2": "busy", "3": "no_answer", "4": "machine"}
#: the contacts by kind: 6 persons, 16 busy, 2 unanswered, 2 machines, 2 do-not-call, 2 out of their window
PLAN = ["1"] * 6 + ["2"] * 16 + ["3"] * 2 + ["4"] * 2


def number(i: int, kind: str) -> str:
    return f"13900{i:05d}{kind}"


@pytest.fixture
def api(node: NodeProcess) -> Iterator[httpx.Client]:
    with admin_client(node) as client:
        yield client


def _pcaps(tmp_path: Path) -> dict[str, Path]:
    person = silence(0.3) + speak("喂？", voice="cmn") + silence(1.6) + sine(PERSON_TONE, 2.5, amplitude=0.3)
    machine = (speak("您好，我现在无法接听电话，请在提示音后留言。", voice="cmn", speed=180)
               + silence(0.2) + tone(0.5, freq=1000.0, dbfs=-10.0) + silence(6.0))
    return {"person_pcap": write_rtp_pcap(tmp_path / "person.pcap", person),
            "machine_pcap": write_rtp_pcap(tmp_path / "machine.pcap", machine)}


def _window_now(zone: str) -> tuple[str, str]:
    """A calling window open now in ``zone`` (an hour either side), so closed 12 hours away."""
    now = datetime.now(ZoneInfo(zone))
    return (now - timedelta(hours=1)).strftime("%H:00"), (now + timedelta(hours=2)).strftime("%H:00")


async def test_a_progressive_campaign_calls_its_list_by_the_rules(node: NodeProcess, api: httpx.Client,
                                                                 tmp_path: Path) -> None:
    sip_port, media_port = free_port(), free_port()
    scenario = SCENARIO.read_text()
    for key, path in _pcaps(tmp_path).items():
        scenario = scenario.replace("{" + key + "}", str(path))
    (tmp_path / "callee.xml").write_text(scenario)
    callees = subprocess.Popen(["sipp", "-sf", str(tmp_path / "callee.xml"), "-aa", "-i", "127.0.0.1",
                                "-p", str(sip_port), "-mp", str(media_port), "-nostdin", "-trace_msg",
                                "-message_file", "callees.log"],
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    heard = RtpSniffer(media_port)
    agents: list[AgentClient] = []
    try:
        assert api.post("/api/trunks", json={"name": "carrier", "outbound_host": "127.0.0.1",
                                             "outbound_port": sip_port, "priority": 1}).status_code == 201
        assert api.patch("/api/tenant", json={"outbound_prefixes": ["139"]}).status_code == 200
        queue = api.post("/api/queues", json={"name": "outreach", "wrapup": 1, "announce_every": None})
        assert queue.status_code == 201, queue.text
        for agent in api.get("/api/agents").json():
            if agent["username"] in ("agent1", "agent2"):
                skills = {**agent["skills"], "outreach": 3}
                assert api.patch(f"/api/agents/{agent['id']}", json={"skills": skills}).status_code == 200

        start, end = _window_now("Asia/Shanghai")
        created = api.post("/api/campaigns", json={
            "name": "回访", "mode": "progressive", "queue": "outreach", "caller_id": "4001234567",
            "max_attempts": 2, "ring_seconds": 5, "max_lines": 6, "caller_id_per_minute": 120,
            "retry_delays": {"busy": 1, "no_answer": 1, "machine": 1, "failed": 1, "abandoned": 1},
            "window": {"start": start, "end": end, "days": [1, 2, 3, 4, 5, 6, 7]}, "timezone": "Asia/Shanghai",
            "machine_message": "稍后再联系您。"})
        assert created.status_code == 201, created.text
        campaign = created.json()

        lines = ["电话,姓名,时区,订单号"]
        lines += [f"{number(i, k)},客户{i},,A{i:03d}" for i, k in enumerate(PLAN)]
        barred = [number(90, "1"), number(91, "1")]
        far = [number(92, "1"), number(93, "1")]
        lines += [f"{n},拒接{i},," for i, n in enumerate(barred)]
        lines += [f"{n},远方{i},America/Los_Angeles," for i, n in enumerate(far)]
        lines += [f"{number(0, '1')},重复,,", "12345,坏号码,,"]  # a duplicate and an invalid row
        assert api.post("/api/dnc", json={"numbers": barred, "note": "asked not to be called"}).json()["added"] == 2
        imported = api.post(f"/api/campaigns/{campaign['id']}/contacts", content="\n".join(lines).encode(),
                            headers={"Content-Type": "text/csv"}).json()
        assert imported["imported"] == 30, imported
        assert [(p["row"], p["error_id"]) for p in imported["duplicates"]] == [(32, "duplicate")]
        assert [(p["row"], p["error_id"]) for p in imported["invalid"]] == [(33, "phone-too-short")]

        agents = [await agent_on(node, name, node.agents[name][0]) for name in ("agent1", "agent2")]
        for agent in agents:
            agent.mic.freq = AGENT_TONE
        assert api.post(f"/api/campaigns/{campaign['id']}/start").status_code == 200

        async def agent_hears_person() -> bool:
            return any(detect_tone(a.heard_pcm(0.5), PERSON_TONE, threshold=0.5) for a in agents)

        async def person_hears_agent() -> bool:
            return detect_tone(heard.pcm(0.5), AGENT_TONE, threshold=0.4)

        await eventually(agent_hears_person, timeout=40)
        await eventually(person_hears_agent, timeout=20)

        def contacts() -> list[dict[str, object]]:
            return api.get(f"/api/campaigns/{campaign['id']}/contacts", params={"limit": 100}).json()["contacts"]

        async def only_the_far_ones_left() -> bool:
            return sum(c["status"] in ("pending", "dialing") for c in contacts()) == len(far)

        await eventually(only_the_far_ones_left, timeout=120)
        await asyncio.sleep(1.0)  # the last records' writes

        by_phone = {c["phone"]: c for c in contacts()}
        for i, kind in enumerate(PLAN):
            contact = by_phone[number(i, kind)]
            expected = ("done", 1) if kind == "1" else ("exhausted", 2)
            assert (contact["status"], contact["attempts"]) == expected, contact
            assert contact["last_outcome"] == KINDS[kind], contact
        for n in barred:
            assert (by_phone[n]["status"], by_phone[n]["last_outcome"], by_phone[n]["attempts"]) == ("skipped", "dnc", 0)
        for n in far:  # put off until their window opens, never called
            assert (by_phone[n]["status"], by_phone[n]["attempts"]) == ("pending", 0)
            assert by_phone[n]["next_attempt_at"] is not None

        log = (tmp_path / "callees.log").read_text(errors="replace")
        invites = Counter(re.findall(r"(?m)^INVITE sip:(\d+)@", log))
        assert not set(invites) & {*barred, *far}, "a barred or out-of-window contact was called"
        assert invites == {number(i, k): 1 if k == "1" else 2 for i, k in enumerate(PLAN)}

        report = api.get(f"/api/campaigns/{campaign['id']}/report", params={"by": "day"}).json()["rows"]
        assert len(report) == 1 and (report[0]["persons"], report[0]["machines"], report[0]["busy"],
                                     report[0]["no_answer"], report[0]["abandoned"]) == (6, 4, 32, 4, 0), report
        per_agent = api.get(f"/api/campaigns/{campaign['id']}/report", params={"by": "agent"}).json()["rows"]
        assert sum(r["calls"] for r in per_agent) == 6 and {r["agent"] for r in per_agent} <= {"agent1", "agent2"}
        csv = api.get(f"/api/campaigns/{campaign['id']}/report", params={"by": "agent", "format": "csv"})
        assert csv.text.splitlines()[0] == "agent,calls,talk_seconds,average_talk_seconds"

        live = api.get("/api/campaigns/live").json()["campaigns"][0]
        assert (live["persons"], live["machines"], live["abandoned"], live["left"]) == (6, 4, 0, 2), live

        calls = {c["dialed"]: c for c in api.get("/api/calls", params={"limit": 200}).json()}
        person = api.get(f"/api/calls/{calls[number(0, '1')]['id']}").json()
        assert person["direction"] == "outbound" and person["agent"]["username"] in ("agent1", "agent2")
        assert any(e["kind"] == "campaign" and e["detail"]["outcome"] == "person" for e in person["events"])
        machine = api.get(f"/api/calls/{calls[number(24, '4')]['id']}").json()
        assert machine["agent"] is None
        assert any(e["kind"] == "campaign" and e["detail"]["outcome"] == "machine" for e in machine["events"])
    finally:
        for agent in agents:
            await agent.close()
        heard.stop()
        callees.terminate()
        callees.wait(10)
