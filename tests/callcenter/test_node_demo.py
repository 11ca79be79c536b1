"""The demo node as a user runs it (``callcenter demo`` in a subprocess), driven by sipp."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support.endpoint import NUMBER
from tests.support.node import NodeProcess
from tests.support.sipp import expect_status_scenario, sipp

pytestmark = pytest.mark.interop


def test_demo_takes_20_pcap_calls_and_records_them(node: NodeProcess, tmp_path: Path) -> None:
    result = sipp(tmp_path / "sipp", node.sip, "-sn", "uac_pcap", "-s", NUMBER, "-m", "20", "-r", "10")
    assert result.successful == 20 and result.failed == 0, result
    deadline = time.monotonic() + 10
    while True:
        records = [r for r in node.cdrs() if r["dialed"] == NUMBER]
        if len(records) == 20 and all(r["ended_at"] for r in records) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(records) == 20
    for r in records:
        assert r["end_cause"] == "normal_clearing" and r["hangup_side"] == "caller"
        assert r["codec"] == "PCMA" and r["tenant"] == "demo" and r["direction"] == "inbound"
        # sipp's uac_pcap talks for 8 s, sends a digit and waits 1 s before its BYE
        assert 8.5 <= r["duration"] <= 12.0, r
    received = [r["received_at"] for r in records]
    assert received == sorted(received, reverse=True)  # newest first
    metrics = httpx.get(f"{node.http}/metrics").text
    assert 'callcenter_calls_total{result="normal_clearing"} 20.0' in metrics
    assert "callcenter_rtp_packets_total" in metrics
    assert httpx.get(f"{node.http}/healthz").json()["status"] == "ok"


def test_unknown_number_gets_404_and_a_record(node: NodeProcess, tmp_path: Path) -> None:
    result = sipp(tmp_path, node.sip, "-sn", "uac", "-s", "999", "-m", "1")
    assert result.failed == 1  # the built-in uac expects 200
    assert "404" in result.errors or "404" in result.output, result
    path = expect_status_scenario(tmp_path / "expect404.xml", 404)
    assert sipp(tmp_path, node.sip, "-sf", path, "-s", "999", "-m", "1").successful == 1
    records = node.cdrs()
    assert {(r["dialed"], r["end_cause"], r["sip_status"]) for r in records} == {("999", "not_found", 404)}


def test_demo_is_idempotent_and_prints_password_once(node: NodeProcess) -> None:
    assert node.admin_password
    node.stop()
    again = NodeProcess(node.data_dir, sip_port=node.sip_port, http_port=node.http_port).start()
    try:
        assert again.admin_password is None
        login = httpx.post(f"{again.http}/api/login",
                           json={"tenant": "demo", "username": "admin", "password": node.admin_password})
        assert login.status_code == 200, login.text
    finally:
        again.stop()


def test_sigkill_during_calls_leaves_every_record_closed(node: NodeProcess, tmp_path: Path) -> None:
    import subprocess

    workdir = tmp_path / "sipp"
    sipp(workdir, node.sip, "-sn", "uac", "-s", "999", "-m", "1")  # makes pcap dir, one closed record
    proc = subprocess.Popen(["sipp", node.sip, "-sn", "uac_pcap", "-s", NUMBER, "-m", "6", "-r", "3", "-i",
                             "127.0.0.1", "-nostdin", "-timeout", "30s"], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            live = httpx.get(f"{node.http}/metrics").text
            if "callcenter_active_calls 6.0" in live:
                break
            time.sleep(0.2)
        node.kill()
    finally:
        proc.kill()
        proc.wait()
    restarted = NodeProcess(node.data_dir).start()
    try:
        records = restarted.cdrs()
    finally:
        restarted.stop()
    calls = [r for r in records if r["dialed"] == NUMBER]
    assert len(calls) == 6
    assert all(r["ended_at"] and r["end_cause"] == "interrupted" for r in calls), calls
    assert any(r["end_cause"] == "not_found" for r in records)
