"""SIP over TLS with SRTP on a demo node (``callcenter demo --sip-tls-*``), with baresip as the
carrier's caller and as an agent's desk phone, and tshark listening on the loopback interface.

What is asserted is what people hear (tones both ways, in baresip's recording of what it
decoded, at our caller and in the node's call recording) and what an eavesdropper on the
wire gets: no SIP in the clear on the TLS port, and SRTP toward the phone (every G.711
packet carries the 10-byte authentication tag and its payload does not decode to the tone).
Then the policies: a trunk or an agent's phone that must use TLS or SRTP and does not.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from callcenter.settings import Settings
from recordings.codec import decode
from sip_bridge.call import DialError
from sip_bridge.g711 import decoder_for
from sip_bridge.tones import detect_tone, goertzel_power, sine
from tests.support.baresip import Baresip, write_wav
from tests.support.capture import TLS_APPLICATION_DATA, LoopbackCapture, Packet, tcp_stream, tshark_missing
from tests.support.endpoint import EndpointHarness, routing_table
from tests.support.node import NodeProcess, admin_client, free_port
from tests.support.sipp import scenario, sipp
from tests.support.tls import CertFiles, TestCa

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip is not installed"),
    pytest.mark.skipif(tshark_missing() is not None, reason=str(tshark_missing())),
]

DEMO = "4001234567"
LINE_TEST = "4009990000"  # a number without a flow: greeting, then the caller's own audio back
CALLER = "13800138000"
PHONE_TONE = 1000.0  # what baresip says
CALLER_TONE = 440.0  # what the plain caller says to the agent's phone
SRTP_PACKET = 12 + 160 + 10  # RTP header, 20 ms of G.711, HMAC-SHA1-80 tag
CODECS = {0: "PCMU", 8: "PCMA"}


@dataclass
class Pki:
    ca: TestCa
    node: CertFiles
    phone_pem: Path
    """baresip's certificate and key in one file, as baresip 1.0 reads them."""


@dataclass
class TlsNode:
    node: NodeProcess
    tls_port: int

    @property
    def tls_target(self) -> str:
        return f"127.0.0.1:{self.tls_port};transport=tls"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca = TestCa(tmp_path_factory.mktemp("pki"))
    phone = ca.issue("phone")
    combined = ca.directory / "phone-combined.pem"
    combined.write_bytes(phone.cert.read_bytes() + phone.key.read_bytes())
    return Pki(ca, ca.issue("node"), combined)


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[TlsNode]:
    data = tmp_path_factory.mktemp("tls-node") / "data"
    data.mkdir()
    port = free_port()
    node = NodeProcess(data, extra_args=["--sip-tls-port", str(port), "--sip-tls-cert", str(pki.node.cert),
                                         "--sip-tls-key", str(pki.node.key), "--sip-tls-ca-file", str(pki.ca.ca_file)])
    node.start()
    yield TlsNode(node, port)
    node.stop()


@pytest.fixture(scope="module")
def api(tls_node: TlsNode) -> Iterator[httpx.Client]:
    with admin_client(tls_node.node) as client:
        support = next(q for q in client.get("/api/queues").json() if q["name"] == "support")
        assert client.patch(f"/api/queues/{support['id']}",
                            json={"wrapup": 2, "announce_every": None}).status_code == 200
        assert client.post("/api/numbers", json={"number": LINE_TEST}).status_code == 201
        # Inbound only here: a trunk that requires TLS would also have to go out over TLS.
        assert client.patch(f"/api/trunks/{carrier(client)['id']}", json={"outbound_host": None}).status_code == 200
        yield client


def carrier(api: httpx.Client) -> dict[str, Any]:
    return next(t for t in api.get("/api/trunks").json() if t["name"] == "demo-carrier")


def agent(api: httpx.Client, username: str) -> dict[str, Any]:
    return next(a for a in api.get("/api/agents").json() if a["username"] == username)


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def logged(node: NodeProcess, start: str) -> int:
    return sum(1 for line in node.logs() if str(line.get("msg", "")).startswith(start))


def set_policy(tls_node: TlsNode, api: httpx.Client, path: str, reloaded: str, **policy: bool) -> None:
    """PATCH a trunk's or an agent's policy and wait until the node has applied it."""
    before = logged(tls_node.node, reloaded)
    reply = api.patch(path, json=policy)
    assert reply.status_code == 200, reply.text
    assert {k: reply.json()[k] for k in policy} == policy
    wait_for(lambda: logged(tls_node.node, reloaded) > before, what=reloaded)


def carrier_policy(tls_node: TlsNode, api: httpx.Client, *, tls: bool, srtp: bool) -> None:
    set_policy(tls_node, api, f"/api/trunks/{carrier(api)['id']}", "routing loaded", require_tls=tls,
               require_srtp=srtp)


def agent_policy(tls_node: TlsNode, api: httpx.Client, username: str, *, tls: bool, srtp: bool) -> None:
    set_policy(tls_node, api, f"/api/agents/{agent(api, username)['id']}", "ACD configuration reloaded",
               require_tls=tls, require_srtp=srtp)


@pytest.fixture
def capture(tmp_path: Path) -> Iterator[LoopbackCapture]:
    with LoopbackCapture(tmp_path / "loopback.pcap", "udp or tcp") as cap:
        yield cap


def secure_baresip(tmp_path: Path, pki: Pki, **kwargs: Any) -> Baresip:
    source = write_wav(tmp_path / "phone-says.wav", sine(PHONE_TONE, 60.0))
    return Baresip(tmp_path, source, certificate=pki.phone_pem, ca_file=pki.ca.ca_file, mediaenc="srtp-mand",
                   **kwargs)


class TlsDeskPhone(Baresip):
    """baresip as an agent's desk phone registered over TLS (digest), answering by itself."""

    def __init__(self, workdir: Path, source_wav: Path, *, registrar: str, password: str, **kwargs: Any) -> None:
        super().__init__(workdir, source_wav, answermode="auto", **kwargs)
        self.registrar, self.password = registrar, password

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.registrar}"

    def account_params(self) -> str:
        return (f'auth_pass={self.password};regint=60;outbound="sip:{self.registrar};transport=tls";'
                + super().account_params().replace("regint=0;", ""))


def assert_nothing_in_the_clear(packets: list[Packet], tls_port: int, phone: Baresip) -> None:
    """The TLS port carried TLS records only; the phone's media was SRTP both ways."""
    signalling = tcp_stream(packets, tls_port)
    assert TLS_APPLICATION_DATA in signalling, f"no TLS records on port {tls_port} ({len(signalling)} bytes)"
    for clear in (b"SIP/2.0", b"INVITE sip:", b"REGISTER sip:", b"Digest ", b"a=crypto", b"inline:"):
        assert clear not in signalling, f"{clear!r} in the clear on the TLS port"

    def at_phone(port: int) -> bool:
        return phone.rtp_low <= port <= phone.rtp_high

    media = [p for p in packets if p.protocol == "udp" and len(p.payload) >= 12 and p.payload[0] >> 6 == 2
             and p.payload[1] & 0x7F in CODECS and (at_phone(p.src_port) or at_phone(p.dst_port))]
    for direction, leg in (("to the phone", [p for p in media if at_phone(p.dst_port)]),
                           ("from the phone", [p for p in media if at_phone(p.src_port)])):
        assert len(leg) >= 100, f"{len(leg)} RTP packets {direction}"
        assert {len(p.payload) for p in leg} == {SRTP_PACKET}, f"not all SRTP {direction}"
        pcm = b"".join(decoder_for(CODECS[p.payload[1] & 0x7F])(p.payload[12:12 + 160]) for p in leg)
        for tone in (PHONE_TONE, CALLER_TONE):
            assert goertzel_power(pcm, tone) < 0.05, f"{tone} Hz audible in the packets {direction}"


# -- baresip calls in over TLS with SRTP -------------------------------------------------------


async def test_baresip_calls_in_over_tls_with_srtp_and_hears_itself_before_and_after_hold(
        tls_node: TlsNode, api: httpx.Client, pki: Pki, capture: LoopbackCapture, tmp_path: Path) -> None:
    carrier_policy(tls_node, api, tls=True, srtp=True)
    phone = secure_baresip(tmp_path, pki)
    try:
        await phone.start()
        await phone.dial(f"sip:{LINE_TEST}@{tls_node.tls_target}")
        await phone.wait_event("CALL_ESTABLISHED")
        await asyncio.sleep(9.0)  # the greeting (about 5 s), then the echo of the phone's tone
        assert (await phone.command("hold"))["ok"]
        await asyncio.sleep(1.5)
        assert (await phone.command("resume"))["ok"]  # a re-INVITE each: SRTP carries on
        await asyncio.sleep(3.0)
        await phone.hangup()
        await phone.wait_event("CALL_CLOSED")
        assert await phone.stop() == 0
    finally:
        await phone.stop()
        carrier_policy(tls_node, api, tls=False, srtp=False)
    capture.stop()

    before_hold, after_resume = phone.heard(0), phone.heard(-1)
    for heard in (before_hold, after_resume):
        tail = heard[-32000:]
        assert len(heard) >= 32000 and detect_tone(tail, PHONE_TONE), goertzel_power(tail, PHONE_TONE)
    record = next(r for r in tls_node.node.cdrs() if r["dialed"] == LINE_TEST)
    assert (record["direction"], record["caller"], record["end_cause"]) == ("inbound", "baresip", "normal_clearing")
    assert record["answered_at"] is not None

    packets = capture.packets()
    assert_nothing_in_the_clear(packets, tls_node.tls_port, phone)
    plain_sip = [p for p in packets if tls_node.node.sip_port in (p.src_port, p.dst_port)
                 and LINE_TEST.encode() in p.payload]
    assert plain_sip == [], "the call's signalling went over the plain SIP port"


# -- baresip as an agent's phone over TLS with SRTP, a plain caller -----------------------------


async def test_an_agent_phone_on_tls_and_srtp_talks_with_a_plain_caller(
        tls_node: TlsNode, api: httpx.Client, pki: Pki, capture: LoopbackCapture, tmp_path: Path) -> None:
    node = tls_node.node
    _, sip_user, secret = node.agents["agent2"]
    agent_policy(tls_node, api, "agent2", tls=True, srtp=True)
    phone = TlsDeskPhone(tmp_path, write_wav(tmp_path / "phone-says.wav", sine(PHONE_TONE, 60.0)),
                         registrar=f"127.0.0.1:{tls_node.tls_port}", password=secret, user=sip_user,
                         certificate=pki.phone_pem, ca_file=pki.ca.ca_file, mediaenc="srtp-mand")
    caller = EndpointHarness(routing_table(outbound_port=node.sip_port))
    await caller.endpoint.start()
    try:
        await phone.start()
        wait_for(lambda: (agent(api, "agent2")["live"] or {}).get("state") == "available", what="agent2 available")
        leg = await caller.endpoint.dial(1, DEMO, caller_id=CALLER)
        await asyncio.sleep(1.0)
        leg.send_dtmf("2")  # support: agent2
        received, tone = b"", sine(CALLER_TONE, 60.0)
        loop = asyncio.get_running_loop()
        deadline, answered_at = loop.time() + 40, None
        async for frame in leg.audio():
            leg.send_audio(tone[len(received):len(received) + len(frame)])  # one frame each, in phase
            received += frame
            if answered_at is None and detect_tone(received[-16000:], PHONE_TONE):
                answered_at = loop.time()  # the phone's tone: the bridge is up; talk two more seconds
            if (answered_at is not None and loop.time() > answered_at + 2.0) or loop.time() > deadline:
                break
        await leg.hangup()
        await phone.wait_event("CALL_ESTABLISHED", 1)
        await phone.wait_event("CALL_CLOSED")  # the node's BYE, over TLS
        assert await phone.stop() == 0
    finally:
        await caller.endpoint.stop()
        await phone.stop()
        agent_policy(tls_node, api, "agent2", tls=False, srtp=False)
    capture.stop()

    assert answered_at is not None, \
        f"the caller never heard the phone ({goertzel_power(received[-16000:], PHONE_TONE):.2f})"
    phone_heard = phone.heard()[-24000:-4000]
    assert detect_tone(phone_heard, CALLER_TONE), goertzel_power(phone_heard, CALLER_TONE)

    # The node's recording got the payloads in the clear on both channels.
    call = next(c for c in api.get("/api/calls", params={"limit": 10}).json()
                if c["dialed"] == DEMO and c["direction"] == "inbound")
    wait_for(lambda: api.get(f"/api/calls/{call['id']}/recording").json().get("status") in ("complete", "incomplete"),
             timeout=60, what="the recording")
    caller_pcm, agent_pcm = decode(io.BytesIO(api.get(f"/api/calls/{call['id']}/recording/audio").content))
    for channel, said in ((caller_pcm, CALLER_TONE), (agent_pcm, PHONE_TONE)):
        pcm = channel.astype("<i2").tobytes()
        assert len(channel) > 8000 and detect_tone(pcm, said), goertzel_power(pcm, said)

    packets = capture.packets()
    assert_nothing_in_the_clear(packets, tls_node.tls_port, phone)


# -- policies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("tls", "srtp", "status", "cause"), [
    (True, False, 403, "forbidden"),
    (False, True, 488, "incompatible_codec"),
], ids=["TLS required, INVITE over UDP: 403", "SRTP required, plain offer: 488"])
async def test_a_call_from_a_trunk_that_does_not_meet_its_policy_is_refused(
        tls_node: TlsNode, api: httpx.Client, tls: bool, srtp: bool, status: int, cause: str) -> None:
    caller = EndpointHarness(routing_table(outbound_port=tls_node.node.sip_port))
    refusal = "INVITE from trunk demo-carrier over UDP refused: the trunk requires TLS"
    refusals = logged(tls_node.node, refusal)
    carrier_policy(tls_node, api, tls=tls, srtp=srtp)
    await caller.endpoint.start()
    try:
        with pytest.raises(DialError) as refused:
            await asyncio.wait_for(caller.endpoint.dial(1, DEMO, caller_id=CALLER, timeout=10), 20)
    finally:
        await caller.endpoint.stop()
        carrier_policy(tls_node, api, tls=False, srtp=False)
    assert refused.value.status == status
    record = next(r for r in tls_node.node.cdrs() if r["dialed"] == DEMO)
    assert (record["end_cause"], record["sip_status"]) == (cause, status)
    assert logged(tls_node.node, refusal) - refusals == (1 if tls else 0)  # the one clear log line


def test_a_register_over_udp_for_an_agent_whose_phone_must_use_tls_gets_403(tls_node: TlsNode, api: httpx.Client,
                                                                               tmp_path: Path) -> None:
    node = tls_node.node
    _, sip_user, secret = node.agents["agent1"]
    agent_policy(tls_node, api, "agent1", tls=True, srtp=False)
    try:
        result = sipp(tmp_path, node.sip, "-sf", scenario("agent_register_rejected.xml"), "-s", sip_user,
                      "-au", sip_user, "-ap", secret, "-m", "1", timeout=30)
    finally:
        agent_policy(tls_node, api, "agent1", tls=False, srtp=False)
    assert result.successful == 1, result  # challenged, right secret, then 403: not over UDP
    assert any(line.get("msg") == "REGISTER over UDP refused: this agent's phone must use TLS"
               and line.get("sip_user") == sip_user for line in node.logs())
    assert (agent(api, "agent1")["live"] or {}).get("state") != "available"


def test_policies_are_validated_by_the_api(api: httpx.Client) -> None:
    trunk = api.post("/api/trunks", json={"name": "tls-out", "outbound_host": "sip.example.com",
                                          "outbound_transport": "tls", "require_tls": True, "require_srtp": True})
    assert trunk.status_code == 201, trunk.text
    body = trunk.json()
    assert (body["outbound_port"], body["require_tls"], body["require_srtp"]) == (5061, True, True)
    clash = api.patch(f"/api/trunks/{body['id']}", json={"outbound_transport": "udp"})
    assert clash.status_code == 422 and "outbound_transport to tls" in clash.json()["message"]
    assert api.patch(f"/api/trunks/{body['id']}", json={"require_tls": None}).status_code == 422
    assert api.patch(f"/api/trunks/{body['id']}", json={"outbound_transport": "sctp"}).status_code == 422
    assert api.delete(f"/api/trunks/{body['id']}").status_code == 204
    assert api.patch(f"/api/agents/{agent(api, 'agent1')['id']}", json={"require_srtp": "maybe"}).status_code == 422
    created = api.post("/api/agents", json={"username": "secure1", "require_tls": True})
    assert created.status_code == 201, created.text
    assert (created.json()["require_tls"], created.json()["require_srtp"]) == (True, False)
    assert api.delete(f"/api/agents/{created.json()['id']}").status_code == 204


def test_sip_tls_is_off_by_default_and_its_files_are_checked_when_set(pki: Pki, tmp_path: Path) -> None:
    default = Settings(data_dir=tmp_path)
    assert (default.sip_tls_port, default.sip_tls_cert, default.sip_tls_key, default.sip_tls_ca_file) == \
        (5061, None, None, None)
    assert Settings(data_dir=tmp_path, sip_tls_cert=pki.node.cert, sip_tls_key=pki.node.key,
                    sip_tls_ca_file=pki.ca.ca_file).sip_tls_cert == pki.node.cert
    with pytest.raises(ValidationError, match="sip_tls_cert and sip_tls_key go together"):
        Settings(data_dir=tmp_path, sip_tls_cert=pki.node.cert)
    with pytest.raises(ValidationError, match=r"SIP TLS: cannot read .*nowhere\.pem"):
        Settings(data_dir=tmp_path, sip_tls_ca_file=tmp_path / "nowhere.pem")


def test_unusable_tls_files_stop_the_node_at_start_with_the_reason(tmp_path: Path, pki: Pki) -> None:
    other = pki.ca.issue("other")
    out = subprocess.run([sys.executable, "-m", "callcenter", "serve", "--data-dir", str(tmp_path / "data"),
                          "--sip-tls-cert", str(pki.node.cert), "--sip-tls-key", str(other.key)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out
    assert "SIP TLS: certificate" in out.stderr and "the private key does not belong to the certificate" in out.stderr
