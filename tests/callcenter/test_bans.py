"""Brute force against a demo node, with the attackers' own tools: SIPVicious' ``svcrack`` on an
agent's SIP secret, wrong passwords at the sign-in form, a page of another site opening the
softphone's WebSocket. Each attack fails; real users elsewhere are never locked out."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import datetime
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support.node import NodeProcess, admin_client
from tests.support.sipp import sipp, scenario

pytestmark = pytest.mark.interop

BAN_PERIOD = 15.0
SVCRACK = Path(sys.executable).parent / "sipvicious_svcrack"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    data = tmp_path_factory.mktemp("bans") / "data"
    data.mkdir()
    n = NodeProcess(data, env={"CALLCENTER_BAN_PERIOD": str(BAN_PERIOD), "CALLCENTER_BAN_ACCOUNT_FAILURES": "5",
                               "CALLCENTER_BAN_SOURCE_FAILURES": "12"}).start()
    yield n
    n.stop()


def register(node: NodeProcess, workdir: Path, source: str, secret: str | None = None) -> bool:
    """Whether agent1's phone at ``source`` registers (sipp, digest) within a few seconds."""
    _, sip_user, right = node.agents["agent1"]
    result = sipp(workdir, node.sip, "-sf", scenario("agent_register.xml"), "-s", sip_user, "-au", sip_user,
                  "-ap", secret or right, "-m", "1", "-i", source, "-recv_timeout", "3000", timeout=15)
    return result.successful == 1


def bans(node: NodeProcess) -> list[dict[str, object]]:
    out = subprocess.run([sys.executable, "-m", "callcenter", "bans", "list", "--data-dir", str(node.data_dir),
                          "--json"], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


def wait_for(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def login(node: NodeProcess, source: str, username: str, password: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=node.http, transport=transport, timeout=30) as client:
        return client.post("/api/login", json={"tenant": "demo", "username": username, "password": password})


def test_svcrack_is_banned_before_it_finds_the_secret_while_a_phone_elsewhere_registers(
        node: NodeProcess, tmp_path: Path) -> None:
    _, sip_user, secret = node.agents["agent1"]
    words = tmp_path / "words.txt"
    words.write_text("".join(f"guess{i}\n" for i in range(30)) + secret + "\n")
    crack = subprocess.run([str(SVCRACK), "-u", sip_user, "-d", str(words), "-b", "127.0.0.1", "--maximumtime", "4",
                            f"udp://{node.sip}"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert secret not in crack.stdout + crack.stderr
    assert "found nothing" in crack.stdout + crack.stderr
    # the ban is on (127.0.0.1, demo.agent1), listed while in force (BAN_PERIOD: ask first)...
    [ban] = [b for b in bans(node) if b["protocol"] == "sip"]
    assert (ban["source"], ban["account"], ban["failures"]) == ("127.0.0.1", sip_user, 5)
    with admin_client(node) as admin:
        assert [b["account"] for b in admin.get("/api/security/bans").json()] == [sip_user]
        audit = admin.get("/api/audit", params={"action": "security.ban"}).json()
        assert audit and audit[0]["detail"]["account"] == sip_user and audit[0]["detail"]["source"] == "127.0.0.1"
    event = next(line for line in node.logs() if line.get("security_event") == "auth.ban")
    assert (event["source"], event["account"]) == ("127.0.0.1", sip_user)
    # ...the right secret from there is dropped now...
    assert not register(node, tmp_path / "banned", "127.0.0.1")
    # ...while the agent's phone at another address registers as usual
    assert register(node, tmp_path / "phone", "127.0.0.2")
    # the ban ends after its period
    time.sleep(max(0.0, datetime.fromisoformat(str(ban["until"])).timestamp() - time.time()))
    assert register(node, tmp_path / "later", "127.0.0.1")


def test_the_operator_lifts_a_sip_ban_and_the_node_applies_it(node: NodeProcess, tmp_path: Path) -> None:
    for i in range(5):
        assert not register(node, tmp_path / f"wrong{i}", "127.0.0.3", secret=f"wrong-{i}")
    assert not register(node, tmp_path / "right", "127.0.0.3")
    [ban] = [b for b in bans(node) if b["source"] == "127.0.0.3"]
    lifted = subprocess.run([sys.executable, "-m", "callcenter", "bans", "lift", str(ban["id"]), "--data-dir",
                             str(node.data_dir)], capture_output=True, text=True)
    assert lifted.returncode == 0, lifted.stderr
    assert "1 ban(s) lifted" in lifted.stdout
    wait_for(lambda: register(node, tmp_path / "after", "127.0.0.3"), timeout=10)
    assert not [b for b in bans(node) if b["source"] == "127.0.0.3"]
    again = subprocess.run([sys.executable, "-m", "callcenter", "bans", "lift", str(ban["id"]), "--data-dir",
                            str(node.data_dir)], capture_output=True, text=True)
    assert again.returncode == 2 and "no ban in force" in again.stderr


def test_wrong_sign_ins_then_the_right_one_get_429_while_the_user_signs_in_from_elsewhere(
        node: NodeProcess) -> None:
    password = node.staff["supervisor"]
    for _ in range(5):
        assert login(node, "127.0.0.5", "supervisor", "not-it").status_code == 401
    refused = login(node, "127.0.0.5", "supervisor", password)
    assert refused.status_code == 429
    assert refused.json()["error_id"] == "too-many-attempts"
    assert 1 <= int(refused.headers["retry-after"]) <= BAN_PERIOD
    assert login(node, "127.0.0.6", "supervisor", password).status_code == 200
    # the tenant's admin sees the ban in the audit log and lifts it
    with admin_client(node) as admin:
        [ban] = [b for b in admin.get("/api/security/bans").json() if b["protocol"] == "http"]
        assert (ban["source"], ban["account"]) == ("127.0.0.5", "demo/supervisor")
        assert any(a["detail"].get("account") == "demo/supervisor"
                   for a in admin.get("/api/audit", params={"action": "security.ban"}).json())
        assert admin.delete(f"/api/security/bans/{ban['id']}").status_code == 204
        assert admin.delete(f"/api/security/bans/{ban['id']}").status_code == 404
        assert admin.get("/api/audit", params={"action": "security.ban_lifted"}).json()
    assert login(node, "127.0.0.5", "supervisor", password).status_code == 200


def test_a_source_guessing_many_accounts_is_banned_whole(node: NodeProcess) -> None:
    for i in range(12):
        assert login(node, "127.0.0.7", f"user{i}", "guess").status_code == 401
    assert login(node, "127.0.0.7", "qa", node.staff["qa"]).status_code == 429
    assert login(node, "127.0.0.8", "qa", node.staff["qa"]).status_code == 200
    ban = next(b for b in bans(node) if b["source"] == "127.0.0.7")
    assert ban["account"] is None and ban["tenant_id"] is None  # a whole source: the operator's business


def test_a_websocket_from_another_sites_page_is_refused(node: NodeProcess) -> None:
    token = login(node, "127.0.0.9", "agent1", node.agents["agent1"][0]).json()["token"]
    own = node.http

    async def open_with(origin: str, path: str) -> str:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{node.http_port}{path}", origin=origin,  # type: ignore[arg-type]
                                          additional_headers={"Cookie": f"cc_session={token}"}) as ws:
                return "open" if json.loads(await asyncio.wait_for(ws.recv(), 10)) else "empty"
        except websockets.InvalidStatus as exc:
            return f"refused {exc.response.status_code}"
        except websockets.ConnectionClosed as exc:
            return f"closed {exc.rcvd.code if exc.rcvd else None}"

    for path in ("/api/agent/ws", "/api/supervisor/ws"):
        assert asyncio.run(open_with("http://evil.example", path)) == "refused 403"
    assert asyncio.run(open_with(own, "/api/agent/ws")) == "open"
    assert asyncio.run(open_with(own, "/api/supervisor/ws")) == "closed 4403"  # an agent, not a supervisor


def test_a_scanner_calling_from_an_address_no_trunk_allows_is_dropped_once_banned(node: NodeProcess) -> None:
    import socket

    def invite(sock: socket.socket, i: int) -> bytes:
        port = sock.getsockname()[1]
        sock.sendto((f"INVITE sip:4001234567@{node.sip} SIP/2.0\r\n"
                     f"Via: SIP/2.0/UDP 127.0.0.4:{port};branch=z9hG4bKscan{i}\r\nMax-Forwards: 70\r\n"
                     f"From: <sip:100@127.0.0.4>;tag=s{i}\r\nTo: <sip:4001234567@{node.sip}>\r\n"
                     f"Call-ID: scan-{i}@127.0.0.4\r\nCSeq: 1 INVITE\r\nContact: <sip:100@127.0.0.4:{port}>\r\n"
                     "Content-Length: 0\r\n\r\n").encode(), ("127.0.0.1", node.sip_port))
        finals = b""
        try:
            while not finals:
                reply = sock.recv(4096)
                if not reply.startswith(b"SIP/2.0 1"):
                    finals = reply
        except TimeoutError:
            pass
        return finals

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.4", 0))
        sock.settimeout(2)
        for i in range(12):
            assert invite(sock, i).startswith(b"SIP/2.0 403")
        assert invite(sock, 12) == b""  # dropped: a banned scanner learns nothing
    ban = next(b for b in bans(node) if b["source"] == "127.0.0.4")
    assert ban["account"] is None and ban["protocol"] == "sip"
