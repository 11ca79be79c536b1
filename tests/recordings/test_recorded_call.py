"""Recording end to end on a demo node: a sipp caller and an agent's softphone (aiortc) both
speak known Korean sentences (espeak-ng); the call ends with a two-channel recording, its
transcript with the words on the right side, and an automatic QA evaluation. Also: a node
killed mid-call leaves a playable recording marked incomplete, and who may listen. The first
test ends on the QA page in headless Chromium: the demo call, reviewed and submitted there.

Set ``CALLCENTER_SCREENSHOTS=<dir>`` to keep the README's picture of the QA page (``qa.png``): that
call, with the transcript and automatic answers the node made.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.async_api import expect
from sqlalchemy import create_engine

from callcenter.models import Role
from recordings.codec import decode
from sip_bridge.tones import sine
from softphone_web.agent_client import AgentClient
from tests.callcenter.conftest import PASSWORD, add_tenant, add_user
from tests.support.audio import silence, speak
from tests.support.browser import chromium, log_in, tone_wav, until
from tests.support.node import NodeProcess, admin_client
from tests.support.pcap import ivr_call_scenario, write_rtp_pcap
from tests.support.sipp import SippResult, sipp

SCREENSHOTS = os.environ.get("CALLCENTER_SCREENSHOTS")  # read at import: conftest clears CALLCENTER_* per test

pytestmark = pytest.mark.interop

DEMO = "4001234567"
GREETING = "안녕하세요 고객님 이 통화는 녹음됩니다"
CLOSING = "행복한 하루 보내세요"
CALLER_SAYS = "환불 받고 싶어요"
CALLER_LEAD = 8.0
"""Seconds of silence before the caller speaks (the agent has answered and greeted by then)."""


class SippCaller(threading.Thread):
    """sipp calls the demo number, presses 1 (sales: agent1), then plays ``pcm`` until the node hangs up."""

    def __init__(self, node: NodeProcess, workdir: Path, pcm: bytes) -> None:
        super().__init__(daemon=True)
        workdir.mkdir(parents=True, exist_ok=True)
        self.node, self.workdir = node, workdir
        self.audio = write_rtp_pcap(workdir / "talk.pcap", pcm)
        self.result: SippResult | None = None
        self.start()

    def run(self) -> None:
        xml = ivr_call_scenario(self.workdir / "caller.xml",
                                [("pause", 1500), ("pcap", "pcap/dtmf_2833_1.pcap"), ("pause", 500),
                                 ("talk", str(self.audio))], platform_hangs_up=True)
        self.result = sipp(self.workdir, self.node.sip, "-sf", str(xml), "-s", DEMO, "-m", "1", timeout=120)


@contextmanager
def login(node: NodeProcess, username: str, password: str, tenant: str = "demo") -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.http, timeout=30) as client:
        reply = client.post("/api/login", json={"tenant": tenant, "username": username, "password": password})
        reply.raise_for_status()
        client.headers["Authorization"] = f"Bearer {reply.json()['token']}"
        yield client


@pytest.fixture
def admin(node: NodeProcess) -> Iterator[httpx.Client]:
    with admin_client(node) as client:
        for queue in client.get("/api/queues").json():  # no announcements over the caller's words
            client.patch(f"/api/queues/{queue['id']}", json={"wrapup": 5, "announce_every": None})
        yield client


async def agent1(node: NodeProcess) -> AgentClient:
    client = AgentClient(node.http, "demo", "agent1", node.agents["agent1"][0])
    await client.connect()
    await client.wait_connected()
    await client.send({"type": "set_state", "state": "available"})
    await client.expect("state", state="available")
    return client


async def tone_call(node: NodeProcess, tmp_path: Path) -> tuple[AgentClient, SippCaller, str]:
    """agent1 takes a sipp call; the caller plays 1 kHz, the agent's microphone 1400 Hz."""
    agent = await agent1(node)
    agent.mic.freq = 1400.0
    caller = SippCaller(node, tmp_path / "sipp", sine(1000.0, 60.0, amplitude=0.3))
    offer = await agent.expect("offer", timeout=30)
    await agent.send({"type": "accept", "call_id": offer["call_id"]})
    await agent.expect("call", call_id=offer["call_id"])
    return agent, caller, offer["call_id"]


async def poll(get: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool],
               timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        value = await asyncio.to_thread(get)
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.3)


def loudness(pcm: np.ndarray, start: float, end: float) -> float:
    """RMS of a stretch of a channel (seconds), 0..32767."""
    part = pcm[int(start * 8000):int(end * 8000)].astype(np.float64)
    return float(np.sqrt(np.mean(part ** 2))) if len(part) else 0.0


def words_of(transcript: dict[str, Any], speaker: str) -> list[str]:
    return [w["word"] for w in transcript["words"] if w["speaker"] == speaker]


async def test_a_demo_call_is_recorded_transcribed_and_evaluated(node: NodeProcess, admin: httpx.Client,
                                                                 tmp_path: Path) -> None:
    agent = await agent1(node)
    try:
        caller = SippCaller(node, tmp_path / "sipp", silence(CALLER_LEAD) + speak(CALLER_SAYS) + silence(60))
        offer = await agent.expect("offer", timeout=30)
        call_id = offer["call_id"]
        await agent.send({"type": "accept", "call_id": call_id})
        await agent.expect("call", call_id=call_id)
        answered = time.monotonic()
        agent.mic.say(silence(0.5) + speak(GREETING))
        await asyncio.sleep(CALLER_LEAD + len(speak(CALLER_SAYS)) / 16000 + 1.0)  # the caller has spoken
        agent.mic.say(speak(CLOSING) + silence(0.5))
        while agent.mic.speaking:
            await asyncio.sleep(0.1)
        talked = time.monotonic() - answered
        await agent.send({"type": "hangup"})
        await agent.expect("call_ended", call_id=call_id)
    finally:
        await agent.close()
    await asyncio.to_thread(caller.join, 60)
    assert caller.result is not None and caller.result.successful == 1, caller.result

    recording = await poll(lambda: admin.get(f"/api/calls/{call_id}/recording").json(),
                           lambda r: r.get("status") in ("complete", "incomplete"))
    assert recording["status"] == "complete", recording
    assert recording["format"] == "opus" and recording["mime"] == "audio/ogg" and len(recording["sha256"]) == 64
    assert abs(recording["duration"] - talked) < 2.0, (recording["duration"], talked)

    # playable, two channels, each side's speech on its own channel
    reply = admin.get(f"/api/calls/{call_id}/recording/audio")
    assert reply.status_code == 200 and reply.headers["content-type"] == "audio/ogg"
    caller_pcm, agent_pcm = decode(io.BytesIO(reply.content))
    assert len(caller_pcm) == len(agent_pcm) and abs(len(caller_pcm) / 8000 - recording["duration"]) < 0.1
    greeting_end = 0.5 + len(speak(GREETING)) / 16000
    assert loudness(agent_pcm, 0.6, greeting_end) > 10 * max(loudness(caller_pcm, 0.6, greeting_end), 30)
    said = [s for s in (loudness(caller_pcm, t, t + 0.5) for t in np.arange(CALLER_LEAD - 3, CALLER_LEAD + 4, 0.5))]
    assert max(said) > 500, said  # the caller's sentence is on the caller channel
    ranged = admin.get(f"/api/calls/{call_id}/recording/audio", headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == reply.content[100:200]

    transcript = await poll(lambda: admin.get(f"/api/calls/{call_id}/transcript").json(),
                            lambda t: t["status"] in ("done", "failed"))
    assert transcript["status"] == "done", transcript
    agent_words, caller_words = words_of(transcript, "agent"), words_of(transcript, "caller")
    assert "안녕하세요" in agent_words and "보내세요" in agent_words, transcript["words"]
    assert "환불" in caller_words and "환불" not in agent_words, transcript["words"]
    assert "안녕하세요" not in caller_words
    found = admin.get("/api/transcripts/search", params={"q": "환불"}).json()
    assert call_id in [c["call_id"] for c in found]

    details = admin.get(f"/api/qa/calls/{call_id}").json()
    [auto] = [e for e in details["evaluations"] if e["kind"] == "auto"]
    answers = {qid: a["value"] for qid, a in auto["answers"].items()}
    assert answers["greeting"] == answers["recording_disclosure"] == answers["polite_closing"] == "yes", answers
    assert answers["no_dismissive_language"] == "yes", answers
    greeting = auto["answers"]["greeting"]["evidence"][0]
    assert greeting["speaker"] == "agent" and greeting["start"] < 3.0, greeting  # when it was said
    assert auto["score"] is not None and answers["courtesy"] is None  # a person scores courtesy

    audit = admin.get("/api/audit", params={"action": "recording.play"}).json()
    assert any(entry["target"] == f"call:{call_id}" for entry in audit)
    await review_on_the_qa_page(node, call_id, len(transcript["words"]), tmp_path)


async def review_on_the_qa_page(node: NodeProcess, call_id: str, words: int, tmp_path: Path) -> None:
    """The demo's QA user finds the call on /qa with its transcript and automatic answers, plays
    it, answers what people answer, and submits."""
    async with chromium(tone_wav(tmp_path / "mic.wav", 440.0, 1.0)) as browser:
        page = await browser.new_page(viewport={"width": 1440, "height": 960})
        await log_in(page, f"{node.http}/qa", "qa", node.staff["qa"])
        row = page.locator(f'#calls-table tr[data-call-id="{call_id}"]')
        await expect(row).to_be_visible(timeout=15_000)
        await row.click()
        await expect(page.locator('#transcript [data-testid="word"]')).to_have_count(words, timeout=15_000)
        await expect(page.locator('[data-testid="auto-greeting"]')).to_have_text("Yes")
        await expect(page.locator('[data-testid="auto-polite_closing"]')).to_have_text("Yes")
        await until(page, "document.querySelector('#audio').readyState >= 1", timeout=15)
        await page.click("#play-btn")
        await until(page, "document.querySelector('#audio').currentTime > 0.5", timeout=10)
        await page.select_option('[data-testid="answer-courtesy"]', "5")
        if SCREENSHOTS:  # the README's picture: a call this node recorded, transcribed and scored itself
            await page.evaluate("document.querySelector('.content').scrollTop = 0")
            await page.screenshot(path=str(Path(SCREENSHOTS) / "qa.png"), animations="disabled")
        await page.click("#eval-submit")
        await expect(page.locator("#eval-result")).to_be_visible(timeout=10_000)
    with login(node, "qa", node.staff["qa"]) as qa:
        manual = [e for e in qa.get(f"/api/qa/calls/{call_id}").json()["evaluations"] if e["kind"] == "manual"]
        assert len(manual) == 1 and manual[0]["answers"]["courtesy"]["value"] == 5


async def test_a_node_killed_mid_call_leaves_a_playable_incomplete_recording(node: NodeProcess,
                                                                           admin: httpx.Client,
                                                                           tmp_path: Path) -> None:
    agent, caller, call_id = await tone_call(node, tmp_path)
    answered = time.monotonic()
    await asyncio.sleep(4.0)
    node.kill()
    lived = time.monotonic() - answered
    await agent.close()
    node.start()
    with admin_client(node) as fresh:
        recording = fresh.get(f"/api/calls/{call_id}/recording").json()
        assert recording["status"] == "incomplete", recording
        assert lived - 1.5 < recording["duration"] <= lived + 0.5, (recording["duration"], lived)
        caller_pcm, agent_pcm = decode(io.BytesIO(fresh.get(f"/api/calls/{call_id}/recording/audio").content))
    spectrum = {name: np.abs(np.fft.rfft(pcm[-16000:].astype(float))) for name, pcm in
                (("caller", caller_pcm), ("agent", agent_pcm))}
    peak = {name: float(np.argmax(s)) * 8000 / 16000 for name, s in spectrum.items()}  # 2 s window: 0.5 Hz bins
    assert abs(peak["caller"] - 1000) < 20 and abs(peak["agent"] - 1400) < 20, peak  # audio up to the kill
    journals = list((node.data_dir / "recordings").glob("tenant-*/journal/*"))
    assert journals == []  # finished into the stored file, nothing left behind
    await asyncio.to_thread(caller.join, 5)


async def test_who_may_listen(node: NodeProcess, admin: httpx.Client, tmp_path: Path) -> None:
    agent, caller, call_id = await tone_call(node, tmp_path)
    await asyncio.sleep(2.0)
    await agent.send({"type": "hangup"})
    await agent.expect("call_ended", call_id=call_id)
    await agent.close()
    await asyncio.to_thread(caller.join, 60)
    await poll(lambda: admin.get(f"/api/calls/{call_id}/recording").json(), lambda r: r.get("status") == "complete")

    engine = create_engine(f"sqlite:///{node.data_dir}/callcenter.db")
    other = add_tenant(engine, "other")
    add_user(engine, other, "boss", Role.ADMIN)
    engine.dispose()
    audio = f"/api/calls/{call_id}/recording/audio"
    with login(node, "boss", PASSWORD, tenant="other") as stranger:
        assert stranger.get(audio).status_code == 404
        assert stranger.get(f"/api/calls/{call_id}/transcript").status_code == 404
    with login(node, "agent1", node.agents["agent1"][0]) as own_agent:
        assert own_agent.get(audio).status_code == 403  # the tenant has not let agents hear their calls
        admin.put("/api/recording-settings", json={"agents_hear_own_calls": True}).raise_for_status()
        assert own_agent.get(audio).status_code == 200
    with login(node, "agent2", node.agents["agent2"][0]) as other_agent:
        assert other_agent.get(audio).status_code == 403  # not their call
    with login(node, "qa", node.staff["qa"]) as qa:
        assert qa.get(audio).status_code == 200
        assert qa.get(audio, params={"download": 1}).headers["content-disposition"].startswith("attachment")
    entries = admin.get("/api/audit", params={"target": f"call:{call_id}"}).json()
    listened = sorted(e["action"] for e in entries if e["action"].startswith("recording."))
    # agent1 once allowed, qa's play and download: each access, and no refused one
    assert listened == ["recording.download", "recording.play", "recording.play"], entries
    assert len({e["user_id"] for e in entries if e["action"] == "recording.play"}) == 2


SENSITIVE_NUMBER = "4009990011"
SENSITIVE_FLOW = {
    "name": "card-recorded", "start": "hello",
    "nodes": [
        {"id": "hello", "type": "gather", "variable": "reason", "retries": 0,
         "digits": {"min": 1, "max": 1, "first_timeout": 4}, "no_input": "card", "next": "card"},
        {"id": "card", "type": "sensitive", "subflow": "card", "next": "after"},
        {"id": "after", "type": "gather", "variable": "more", "retries": 0,
         "digits": {"min": 1, "max": 1, "first_timeout": 4}, "no_input": "bye", "next": "bye"},
        {"id": "bye", "type": "hangup"},
    ],
    "subflows": {"card": {"start": "digits", "nodes": [
        {"id": "digits", "type": "gather", "variable": "card", "retries": 0,
         "digits": {"min": 1, "max": 1, "first_timeout": 4}, "no_input": "thanks", "next": "thanks"},
        {"id": "thanks", "type": "play", "prompt": "Thank you."},
    ]}},
}


def said_at(at: float, text: str) -> tuple[float, bytes]:
    return at, speak(text)


def timeline(parts: list[tuple[float, bytes]], total: float) -> bytes:
    """PCM with each part starting at its time (seconds)."""
    pcm = bytearray(silence(total))
    for at, part in parts:
        start = int(at * 8000) * 2
        pcm[start:start + len(part)] = part
    return bytes(pcm)


async def test_a_sensitive_ivr_section_is_neither_recorded_nor_transcribed(node: NodeProcess, admin: httpx.Client,
                                                                          tmp_path: Path) -> None:
    admin.put("/api/recording-settings", json={"recording_policy": {"mode": "all", "ivr": True}}).raise_for_status()
    assert admin.post("/api/numbers", json={"number": SENSITIVE_NUMBER}).status_code == 201
    reply = admin.post("/api/flows", params={"number": SENSITIVE_NUMBER}, json=SENSITIVE_FLOW)
    assert reply.status_code == 201, reply.text
    # the caller: a reason before the section, the card number inside it (4-9 s), more after it
    pcm = timeline([said_at(0.5, CALLER_SAYS), said_at(5.0, "일 이 삼 사 오 육"), said_at(10.0, "주문 취소")], 20.0)
    workdir = tmp_path / "sipp"
    workdir.mkdir()
    xml = ivr_call_scenario(workdir / "caller.xml", [("talk", str(write_rtp_pcap(workdir / "talk.pcap", pcm)))],
                            platform_hangs_up=True)
    result = await asyncio.to_thread(sipp, workdir, node.sip, "-sf", str(xml), "-s", SENSITIVE_NUMBER, "-m", "1",
                                     timeout=60)
    assert result.successful == 1, result
    [record] = [r for r in node.cdrs() if r["dialed"] == SENSITIVE_NUMBER]
    call_id = str(record["id"])

    recording = await poll(lambda: admin.get(f"/api/calls/{call_id}/recording").json(),
                           lambda r: r.get("status") in ("complete", "incomplete"))
    assert recording["status"] == "complete", recording
    assert len(recording["pauses"]) == 1, json.dumps(recording, default=str)
    [pause] = recording["pauses"]
    start, end, reason = pause
    assert reason == "sensitive" and start <= 5.0 and end >= 7.5, pause
    caller_pcm, _ = decode(io.BytesIO(admin.get(f"/api/calls/{call_id}/recording/audio").content))
    assert loudness(caller_pcm, 0.5, 2.0) > 500  # the reason, recorded
    assert loudness(caller_pcm, start + 0.2, end - 0.2) < 20, "the card number reached the recording"
    assert loudness(caller_pcm, 10.0, 11.5) > 500  # after the section, recorded again

    transcript = await poll(lambda: admin.get(f"/api/calls/{call_id}/transcript").json(),
                            lambda t: t["status"] in ("done", "failed"))
    assert transcript["status"] == "done", transcript
    caller_words = [w for w in transcript["words"] if w["speaker"] == "caller"]
    assert "환불" in [w["word"] for w in caller_words], caller_words
    assert not [w for w in caller_words if start <= w["start"] <= end], caller_words


async def test_pausing_from_the_softphone_and_the_api_keeps_nothing_meanwhile(node: NodeProcess,
                                                                             admin: httpx.Client,
                                                                             tmp_path: Path) -> None:
    admin.put("/api/recording-settings", json={"recording_pause_allowed": True}).raise_for_status()
    agent, caller, call_id = await tone_call(node, tmp_path)
    with login(node, "supervisor", node.staff["supervisor"]) as supervisor:
        await asyncio.sleep(2.0)
        await agent.send({"type": "recording", "paused": True})  # the softphone's button
        await agent.expect("call", recording_paused=True)
        await asyncio.sleep(1.0)
        paused = await asyncio.to_thread(supervisor.post, f"/api/calls/{call_id}/recording/pause")
        assert paused.status_code == 200, paused.text
        await agent.send({"type": "recording", "paused": False})  # the supervisor's pause still holds
        await asyncio.sleep(1.0)
        resumed = await asyncio.to_thread(supervisor.post, f"/api/calls/{call_id}/recording/resume")
        assert resumed.status_code == 200, resumed.text
        await asyncio.sleep(2.0)
    await agent.send({"type": "hangup"})
    await agent.expect("call_ended", call_id=call_id)
    await agent.close()
    await asyncio.to_thread(caller.join, 60)

    recording = await poll(lambda: admin.get(f"/api/calls/{call_id}/recording").json(),
                           lambda r: r.get("status") == "complete")
    reasons = sorted(p[2] for p in recording["pauses"])
    assert reasons == ["agent", "api"], recording["pauses"]
    start = min(p[0] for p in recording["pauses"])
    end = max(p[1] for p in recording["pauses"])
    assert 1.5 < start < 3.0 and 1.5 < end - start < 3.0, recording["pauses"]
    caller_pcm, agent_pcm = decode(io.BytesIO(admin.get(f"/api/calls/{call_id}/recording/audio").content))
    for pcm in (caller_pcm, agent_pcm):
        assert loudness(pcm, start + 0.3, end - 0.3) < 20, "audio reached the recording while paused"
        assert loudness(pcm, 0.5, start - 0.3) > 1000 and loudness(pcm, end + 0.5, end + 1.5) > 1000
    events = [e["kind"] for e in admin.get(f"/api/calls/{call_id}").json()["events"]]
    assert events.count("recording_paused") == 1 and events.count("recording_resumed") == 1  # the agent's
    audit = admin.get("/api/audit", params={"target": f"call:{call_id}"}).json()
    assert {"recording.pause", "recording.resume"} <= {e["action"] for e in audit}
