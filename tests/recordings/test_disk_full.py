"""The recordings disk fills up under recorded calls: the calls go on, the recording is marked failed.

A demo node records to a small tmpfs (tests/support/disk.py); our SIP stack calls in and
presses 1, agent1's softphone (aiortc) answers, each side plays its own tone. When the
disk fills during the call, or only when the finished file is stored, the call's audio
keeps flowing both ways, the recording says ``failed`` in the API and on the QA list, the
node says so in one log line and counts it on /metrics, the failed recording leaves no
journal or temp file behind, and the next call is recorded again once there is space.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from callcenter.recording_service import FAILURES
from sip_bridge.tones import detect_tone
from softphone_web.agent_client import AgentClient
from tests.callcenter.test_softphone_calls import (CALLER_TONE, Caller, Clients, answered_by, clients,  # noqa: F401
                                                   eventually, harness)
from tests.support.disk import fill, small_tmpfs
from tests.support.endpoint import EndpointHarness
from tests.support.node import NodeProcess, admin_client

pytestmark = pytest.mark.interop

AGENT_TONE = 1400.0
DISK_KB = 2048
"""The recordings disk: room for a few seconds of journal and stored audio, filled by the tests."""


@pytest.fixture(scope="module")
def recordings_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with small_tmpfs(tmp_path_factory.mktemp("disk") / "recordings", DISK_KB) as path:
        yield path


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, recordings_dir: Path) -> Iterator[NodeProcess]:
    data = tmp_path_factory.mktemp("node") / "data"
    data.mkdir()
    n = NodeProcess(data, env={"CALLCENTER_RECORDINGS_DIR": str(recordings_dir)}).start()
    with admin_client(n) as api:
        for queue in api.get("/api/queues").json():  # a short wrap-up, nothing spoken over the tones
            api.patch(f"/api/queues/{queue['id']}", json={"wrapup": 1, "announce_every": None})
    yield n
    n.stop()


@pytest.fixture
async def agent(clients: Clients) -> AgentClient:
    """agent1's softphone, available, its microphone playing AGENT_TONE."""
    return await clients.agent("agent1", AGENT_TONE)


def _failures(node: NodeProcess, call_id: str) -> list[dict[str, Any]]:
    return [line for line in node.logs() if line.get("msg") == FAILURES["disk_full"] and line.get("call_id") == call_id]


def _metric(node: NodeProcess, sample: str) -> float:
    for line in httpx.get(f"{node.http}/metrics", timeout=10).text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[1])
    raise AssertionError(f"{sample} not on /metrics")


DISK_FULL = 'callcenter_recording_failures_total{reason="disk_full"}'


def _left_behind(recordings_dir: Path) -> list[Path]:
    """Journals and temp files of unfinished stores: what a failed recording must not leave."""
    return [*recordings_dir.glob("tenant-*/journal/*"), *recordings_dir.glob("tenant-*/**/.*.tmp")]


def _check_failed(node: NodeProcess, call_id: str) -> None:
    """What people see of a failed recording: the API's status, a clear 409 for the audio, the QA list."""
    with admin_client(node) as api:
        assert api.get(f"/api/calls/{call_id}/recording").json()["status"] == "failed"
        audio = api.get(f"/api/calls/{call_id}/recording/audio")
        assert audio.status_code == 409 and audio.json()["error_id"] == "recording-not-available"
        assert "disk was full" in audio.json()["message"]
        listed = {item["call_id"]: item for item in api.get("/api/qa/calls").json()["items"]}
        assert listed[call_id]["recording"]["status"] == "failed"
        assert api.get("/healthz").status_code == 200  # nothing crashed


async def _hears_both_ways(caller: Caller, agent: AgentClient) -> None:
    await asyncio.sleep(1.0)  # audio from after the failure
    assert caller.hears(AGENT_TONE), "the caller no longer hears the agent"
    assert detect_tone(agent.heard_pcm(0.5), CALLER_TONE), "the agent no longer hears the caller"


async def _hang_up(caller: Caller, agent: AgentClient, call_id: str) -> None:
    await caller.hang_up()
    await agent.expect("call_ended", call_id=call_id)
    await agent.expect("state", state="available", timeout=15)


async def test_a_disk_that_fills_during_the_call_fails_the_recording_not_the_call(
        node: NodeProcess, recordings_dir: Path, harness: EndpointHarness, agent: AgentClient) -> None:
    failures = _metric(node, DISK_FULL)
    caller, offer = await answered_by(agent, harness)
    call_id = offer["call_id"]
    await eventually(lambda: list(recordings_dir.glob("tenant-*/journal/*.ccj")), 10)  # being recorded
    filler = fill(recordings_dir)
    try:
        await eventually(lambda: _failures(node, call_id), 10)
        await _hears_both_ways(caller, agent)
        assert _left_behind(recordings_dir) == []  # its journal went, giving the space back
        await _hang_up(caller, agent, call_id)
        await asyncio.sleep(1.0)  # the journal writer ran a few more times: still one line
        assert len(_failures(node, call_id)) == 1
        assert _metric(node, DISK_FULL) == failures + 1
        _check_failed(node, call_id)
    finally:
        filler.unlink()

    # space again: the next call is recorded as usual
    caller, offer = await answered_by(agent, harness)
    await asyncio.sleep(2.0)
    await _hang_up(caller, agent, offer["call_id"])
    with admin_client(node) as api:
        await eventually(lambda: api.get(f"/api/calls/{offer['call_id']}/recording").json()["status"] == "complete",
                         20)
    assert _metric(node, DISK_FULL) == failures + 1


async def test_no_space_for_the_finished_file_fails_the_recording_and_keeps_nothing(
        node: NodeProcess, recordings_dir: Path, harness: EndpointHarness, agent: AgentClient) -> None:
    """The journal has room, the stored file has none: a full tmpfs of its own is mounted where the
    finished recordings of this year go, so the disk fills exactly at the finishing step."""
    failures = _metric(node, DISK_FULL)
    tenant_dir = next(recordings_dir.glob("tenant-*"))
    with small_tmpfs(tenant_dir / f"{datetime.now(timezone.utc):%Y}", 64) as stored:
        filler = fill(stored)
        caller, offer = await answered_by(agent, harness)
        call_id = offer["call_id"]
        await asyncio.sleep(2.0)
        await _hears_both_ways(caller, agent)
        await _hang_up(caller, agent, call_id)
        await eventually(lambda: _failures(node, call_id), 20)
        assert _failures(node, call_id)[0]["stage"] == "storing"
        assert _left_behind(recordings_dir) == []
        assert [p for p in stored.rglob("*") if p != filler and p.is_file()] == []
        assert _metric(node, DISK_FULL) == failures + 1
        _check_failed(node, call_id)
    errors = [line for line in node.logs() if line.get("level") in ("ERROR", "CRITICAL")]
    assert [line["msg"] for line in errors if line["msg"] not in FAILURES.values()] == []  # no stack traces
