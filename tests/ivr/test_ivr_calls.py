"""The IVR over SIP: sipp callers into a real node (``callcenter demo``) with the Korean vosk model.

Every assertion is on what a user sees: the call record's IVR trace (as the CLI and the
API show it), the API's answer to a bad flow, and the audio the caller hears.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from sip_bridge.call import Call
from sip_bridge.tones import sine
from tests.support.endpoint import EndpointHarness, routing_table
from tests.support.node import NodeProcess, admin_client, free_port
from tests.support.pcap import espeak_pcm, ivr_call_scenario, write_rtp_pcap
from tests.support.sipp import sipp

pytestmark = pytest.mark.interop

DEMO = "4001234567"
SILENT_NUMBER = "4009990001"
CLOSED_NUMBER = "4009990002"
BARGE_NUMBER = "4009990003"
VOICEMAIL_NUMBER = "4009990004"
SENSITIVE_NUMBER = "4009990005"
TRANSFER_NUMBER = "4009990006"
TRANSFER_TO = "01012345678"
LONG_PROMPT = ("This announcement is deliberately long so that the caller can interrupt it. " * 4).strip()


@pytest.fixture(scope="module")
def node(module_node: NodeProcess) -> NodeProcess:
    return module_node


@pytest.fixture(scope="module")
def api(node: NodeProcess) -> Iterator[httpx.Client]:
    with admin_client(node) as client:
        flows = {SILENT_NUMBER: SILENT_FLOW, CLOSED_NUMBER: CLOSED_FLOW, BARGE_NUMBER: BARGE_FLOW,
                 VOICEMAIL_NUMBER: VOICEMAIL_FLOW, SENSITIVE_NUMBER: SENSITIVE_FLOW, TRANSFER_NUMBER: TRANSFER_FLOW}
        for number in flows:
            assert client.post("/api/numbers", json={"number": number}).status_code == 201
        assert client.put("/api/calendars/never", json={"timezone": "Asia/Shanghai", "weekly": {}}).status_code == 200
        for number, flow in flows.items():
            reply = client.post("/api/flows", params={"number": number}, json=flow)
            assert reply.status_code == 201, reply.text
        yield client


SILENT_FLOW = {
    "name": "silent", "start": "menu",
    "nodes": [
        {"id": "menu", "type": "menu", "prompt": "Press 1.", "timeout": 1.5, "retries": 1,
         "options": [{"key": "1", "next": "one"}], "no_input": "nobody", "no_match": "nobody"},
        {"id": "one", "type": "queue", "queue": "one"},
        {"id": "nobody", "type": "queue", "queue": "nobody-home"},
    ],
}
CLOSED_FLOW = {
    "name": "closed", "start": "hours",
    "nodes": [
        {"id": "hours", "type": "business_hours", "calendar": "never", "open": "open", "closed": "closed"},
        {"id": "open", "type": "queue", "queue": "open"},
        {"id": "closed", "type": "play", "prompt": "We are closed.", "next": "bye"},
        {"id": "bye", "type": "hangup"},
    ],
}
BARGE_FLOW = {
    "name": "barge", "start": "long",
    "nodes": [
        {"id": "long", "type": "play", "prompt": LONG_PROMPT, "barge_in": True, "next": "wait"},
        {"id": "wait", "type": "gather", "variable": "entered",
         "digits": {"min": 1, "max": 1, "first_timeout": 10}, "next": "done"},
        {"id": "done", "type": "hangup"},
    ],
}
VOICEMAIL_FLOW = {
    "name": "voicemail", "start": "record",
    "nodes": [
        {"id": "record", "type": "voicemail", "prompt": "Please leave a message.", "next": "bye"},
        {"id": "bye", "type": "hangup", "prompt": "Thank you."},
    ],
}
SENSITIVE_FLOW = {
    "name": "card", "start": "ask_card",
    "nodes": [
        {"id": "ask_card", "type": "sensitive", "subflow": "card", "next": "to_queue"},
        {"id": "to_queue", "type": "queue", "queue": "cards"},
    ],
    "subflows": {"card": {"start": "digits", "nodes": [
        {"id": "digits", "type": "gather", "prompt": "Enter your card number.", "variable": "card",
         "digits": {"min": 1, "max": 1, "first_timeout": 8}},
    ]}},
}
TRANSFER_FLOW = {
    "name": "transfer", "start": "out",
    "nodes": [
        {"id": "out", "type": "transfer", "number": TRANSFER_TO, "timeout": 10, "on_failure": "failed"},
        {"id": "failed", "type": "queue", "queue": "transfer-failed"},
    ],
}


def call(node: NodeProcess, workdir: Path, number: str, steps: list[tuple[str, object]], *,
         platform_hangs_up: bool = False) -> dict[str, Any]:
    """One sipp call with ``steps``; returns the call's record with its IVR trace (CLI ``cdr show``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    before = {r["id"] for r in node.cdrs()}
    xml = ivr_call_scenario(workdir / "caller.xml", steps, platform_hangs_up=platform_hangs_up)
    result = sipp(workdir, node.sip, "-sf", str(xml), "-s", number, "-m", "1", timeout=90)
    assert result.successful == 1 and result.failed == 0, result
    deadline = time.monotonic() + 10
    while True:
        new = [r for r in node.cdrs() if r["id"] not in before and r["ended_at"] and r["dialed"] == number]
        if new and new[0]["ivr_result"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(new) == 1
    out = subprocess.run([sys.executable, "-m", "callcenter", "cdr", "show", new[0]["id"], "--data-dir",
                          str(node.data_dir)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def events(record: dict[str, Any], node_id: str) -> list[dict[str, Any]]:
    return [e for s in record["ivr_trace"]["steps"] if s["node"] == node_id for e in s.get("events", [])]


def test_dtmf_2_ends_in_the_support_queue(node: NodeProcess, api: httpx.Client, tmp_path: Path) -> None:
    record = call(node, tmp_path, DEMO, [("pause", 1000), ("pcap", "pcap/dtmf_2833_2.pcap"), ("pause", 1500)])
    trace = record["ivr_trace"]
    assert record["ivr_result"] == "queue: support"
    assert trace["result"] == "queue: support" and trace["steps"][-1]["exit"] == "queue: support"
    assert [s["node"] for s in trace["steps"]] == ["greeting", "hours", "menu", "support"]
    assert {"event": "dtmf", "digit": "2"}.items() <= events(record, "menu")[-1].items()
    assert record["hangup_side"] == "caller" and record["end_cause"] == "normal_clearing"
    # The flow simulator (the same engine on a simulated call) takes the call's path to the same end.
    demo = json.loads((Path(__file__).parents[2] / "callcenter/data/demo-flow.json").read_text())
    simulated = api.post("/api/flows/simulate", json={"document": demo, "keys": ["2"]}).json()
    assert simulated["path"] == [s["node"] for s in trace["steps"]] and simulated["result"]["text"] == trace["result"]


@pytest.mark.parametrize(("spoken", "queue"), [("판매", "sales"), ("상담", "support")])
def test_a_spoken_menu_phrase_takes_its_branch(node: NodeProcess, tmp_path: Path, spoken: str, queue: str) -> None:
    """Korean speech from espeak-ng, as PCMA RTP from sipp, spoken while the menu prompt plays."""
    speech = write_rtp_pcap(tmp_path / "speech.pcap", espeak_pcm(spoken, "ko"))
    record = call(node, tmp_path, DEMO, [("pause", 3500), ("pcap", str(speech)), ("pause", 2000)])
    assert record["ivr_result"] == f"queue: {queue}"
    recognition = [e for e in events(record, "menu") if e["event"] == "recognition"]
    assert recognition and recognition[-1]["phrase"] == spoken
    assert any(e["event"] == "barge_in" for e in events(record, "menu"))  # speech stopped the prompt


def test_silence_walks_the_no_input_branch(node: NodeProcess, api: httpx.Client, tmp_path: Path) -> None:
    silence = write_rtp_pcap(tmp_path / "silence.pcap", bytes(9 * 16000))
    record = call(node, tmp_path, SILENT_NUMBER, [("pcap", str(silence))])
    assert record["ivr_result"] == "queue: nobody-home"
    assert [e["attempt"] for e in events(record, "menu") if e["event"] == "no_input"] == [1, 2]


def test_outside_business_hours_the_closed_branch_plays(node: NodeProcess, api: httpx.Client,
                                                        tmp_path: Path) -> None:
    record = call(node, tmp_path, CLOSED_NUMBER, [("pause", 500)], platform_hangs_up=True)
    assert [s["node"] for s in record["ivr_trace"]["steps"]] == ["hours", "closed", "bye"]
    assert events(record, "hours")[0]["open"] is False
    assert record["ivr_result"] == "hangup" and record["hangup_side"] == "platform"


def loud(frame: bytes) -> bool:
    return float(np.abs(np.frombuffer(frame, "<i2")).max()) > 500


async def prompt_stop_after(node: NodeProcess, interrupt: Callable[[Call], None]) -> float:
    """Seconds from the caller's interruption to the last prompt audio they hear.

    The caller is our SIP stack dialing the node; it listens to a long barge-in prompt
    and interrupts after a second of it.
    """
    harness = EndpointHarness(routing_table(outbound_port=node.sip_port))
    await harness.endpoint.start()
    try:
        leg = await harness.endpoint.dial(1, BARGE_NUMBER, caller_id="13800138000")
        loop = asyncio.get_running_loop()
        heard: list[tuple[float, bool]] = []
        interrupted_at: float | None = None
        async for frame in leg.audio():
            heard.append((loop.time(), loud(frame)))
            if interrupted_at is None and sum(1 for _, is_loud in heard if is_loud) >= 50:
                interrupt(leg)
                interrupted_at = loop.time()
            if interrupted_at is not None and loop.time() - interrupted_at > 1.5:
                break
        await leg.hangup()
    finally:
        await harness.endpoint.stop()
    assert interrupted_at is not None, "the prompt was never heard"
    return max(t for t, is_loud in heard if is_loud) - interrupted_at


async def test_barge_in_stops_the_prompt_within_200_ms(node: NodeProcess, api: httpx.Client) -> None:
    delay = await prompt_stop_after(node, lambda leg: leg.send_dtmf("5"))
    assert delay <= 0.200, f"prompt went on {1000 * delay:.0f} ms after the key"


async def test_speaking_stops_a_barge_in_prompt(node: NodeProcess, api: httpx.Client) -> None:
    """Voice (a loud 300 Hz tone stands in for it) stops a play node's prompt: the voice detector hears it."""
    delay = await prompt_stop_after(node, lambda leg: leg.send_audio(sine(300.0, 1.0, amplitude=0.3)))
    assert delay <= 0.300, f"prompt went on {1000 * delay:.0f} ms after the caller spoke"


BAD_FLOW = json.dumps({
    "name": "demo", "start": "greeting",
    "nodes": [
        {"id": "greeting", "type": "play", "prompt": "Hello", "next": "menu"},
        {"id": "menu", "type": "menu", "prompt": "Press 1",
         "options": [{"key": "1", "next": "nowhere"}]},
    ],
}, indent=2)


def test_an_invalid_import_is_refused_and_the_old_flow_keeps_answering(node: NodeProcess, api: httpx.Client,
                                                                         tmp_path: Path) -> None:
    reply = api.post("/api/flows", params={"number": DEMO}, content=BAD_FLOW,
                     headers={"Content-Type": "application/json"})
    assert reply.status_code == 422
    body = reply.json()
    assert body["error_id"] == "invalid-flow"
    line = next(n for n, text in enumerate(BAD_FLOW.splitlines(), 1) if "nowhere" in text)
    assert body["issues"] == [{"node": "menu", "field": "options.0.next", "reason": "unknown node 'nowhere'",
                               "line": line}]
    path = tmp_path / "bad.json"
    path.write_text(BAD_FLOW)
    cli = subprocess.run([sys.executable, "-m", "callcenter", "flows", "import", str(path), "--tenant", "demo",
                          "--number", DEMO, "--data-dir", str(node.data_dir)], capture_output=True, text=True)
    assert cli.returncode == 1
    assert f"line {line}: node 'menu' field 'options.0.next': unknown node 'nowhere'" in cli.stderr
    assert "nothing was stored" in cli.stderr
    assert [f["latest_version"] for f in api.get("/api/flows").json() if f["name"] == "demo"] == [1]
    record = call(node, tmp_path / "after", DEMO,
                  [("pause", 1000), ("pcap", "pcap/dtmf_2833_2.pcap"), ("pause", 1500)])
    assert record["ivr_result"] == "queue: support"


def test_voicemail_records_the_caller_after_the_beep(node: NodeProcess, api: httpx.Client, tmp_path: Path) -> None:
    speech = write_rtp_pcap(tmp_path / "message.pcap", espeak_pcm("안녕하세요 메시지를 남깁니다", "ko"))
    record = call(node, tmp_path, VOICEMAIL_NUMBER,
                  [("pause", 3500), ("pcap", str(speech)), ("pcap", "pcap/dtmf_2833_pound.pcap")],
                  platform_hangs_up=True)
    assert [s["node"] for s in record["ivr_trace"]["steps"]] == ["record", "bye"]
    [message] = record["voicemails"]
    with wave.open(message["path"]) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    assert w.getframerate() == 8000 and abs(len(audio) / 8000 - message["seconds"]) < 0.1
    assert 2.0 < message["seconds"] < 8.0
    assert np.abs(audio).max() > 3000  # the caller's speech, not silence


def test_a_sensitive_section_never_stores_the_digits(node: NodeProcess, api: httpx.Client, tmp_path: Path) -> None:
    record = call(node, tmp_path, SENSITIVE_NUMBER,
                  [("pause", 1500), ("pcap", "pcap/dtmf_2833_7.pcap"), ("pause", 1500)])
    assert record["ivr_result"] == "queue: cards"
    digits = events(record, "digits")
    assert [e for e in digits if e["event"] == "digits"] and all(e["digits"] == "***" for e in digits
                                                                  if e["event"] == "digits")
    log = node.log_path.read_text()
    call_lines = [line for line in log.splitlines() if record["id"] in line]
    assert call_lines and not any('"7"' in line or "digit" in line.lower() for line in call_lines)


def test_transfer_dials_out_through_a_trunk_and_bridges(node: NodeProcess, api: httpx.Client,
                                                         tmp_path: Path) -> None:
    port = free_port()
    trunk = api.post("/api/trunks", json={"name": "branch-office", "outbound_host": "127.0.0.1",
                                          "outbound_port": port, "priority": 1})
    assert trunk.status_code == 201, trunk.text
    workdir = tmp_path / "uas"
    workdir.mkdir()
    # -aa: sipp answers the node's OPTIONS keepalives itself (each would otherwise be a "call")
    uas = subprocess.Popen(["sipp", "-sn", "uas", "-aa", "-i", "127.0.0.1", "-p", str(port), "-nostdin",
                            "-trace_stat", "-stf", "stat.csv"], cwd=workdir, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        record = call(node, tmp_path / "caller", TRANSFER_NUMBER, [("pause", 4000)])
    finally:
        uas.terminate()
        uas.wait(10)
    assert record["ivr_result"] == f"transfer: {TRANSFER_TO}"
    [outbound] = [r for r in node.cdrs() if r["dialed"] == TRANSFER_TO]
    assert outbound["answered_at"] and outbound["caller"] == TRANSFER_NUMBER and outbound["trunk"] == "branch-office"
    # the caller's BYE ended the branch office's leg too
    assert outbound["end_cause"] == "bridged_peer_hangup" and outbound["hangup_side"] == "platform"
    api.delete(f"/api/trunks/{trunk.json()['id']}")


def test_the_demo_never_hangs_up_on_a_silent_caller(node: NodeProcess, tmp_path: Path) -> None:
    """40 s of silent audio: the menu gives up asking (three times 5 s after its prompt, about 32 s in)
    and queues the caller; the platform never hangs up, the caller does."""
    silence = write_rtp_pcap(tmp_path / "silence.pcap", bytes(40 * 16000))
    record = call(node, tmp_path, DEMO, [("pcap", str(silence))])
    assert record["hangup_side"] == "caller"
    assert record["ivr_result"] == "queue: support"
    assert [e["attempt"] for e in events(record, "menu") if e["event"] == "no_input"] == [1, 2, 3]
