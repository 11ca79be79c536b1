"""SIP over TLS between two SIP endpoints on loopback: outbound TLS to trunks checks their
certificates, a failed check fails the trunk over to the next one, and a call set up over
TLS with SRTP carries audio both ways and ends with a BYE over the same connection.

Certificates come from a test CA made in tmp_path (``tests/support/tls.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sip_bridge.call import Call, DialError
from sip_bridge.media import RtpStream
from sip_bridge.routing import Number, RoutingTable, Tenant, Trunk
from sip_bridge.tls import TlsConfigError, client_context, server_context
from sip_bridge.tones import detect_tone, goertzel_power, sine
from tests.support.endpoint import NUMBER, EndpointHarness, routing_table, talk_and_hang_up
from tests.support.tls import TestCa

pytestmark = pytest.mark.interop

CALLER_TONE, CALLEE_TONE = 440.0, 1000.0


def tls_trunk(trunk_id: int, port: int, *, host: str = "127.0.0.1", require_srtp: bool = False) -> Trunk:
    return Trunk(id=trunk_id, tenant_id=1, name=f"tls-{trunk_id}", outbound_host=host, outbound_port=port,
                 outbound_transport="tls", require_tls=True, require_srtp=require_srtp, priority=trunk_id)


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path / "ca")


@pytest.fixture
async def callees(ca: TestCa, tmp_path: Path) -> AsyncIterator[dict[str, EndpointHarness]]:
    """Carriers listening on TLS: one with a good certificate, one whose certificate names another
    host, one signed by a CA we do not trust. Each answers, says CALLEE_TONE and listens."""
    stranger = TestCa(tmp_path / "stranger", "someone else's CA")
    certs = {"good": ca.issue("good"), "wrong name": ca.issue("wrong", dns=("elsewhere.example",), ips=()),
             "unknown CA": stranger.issue("stranger")}
    harnesses = {}
    for name, cert in certs.items():
        h = EndpointHarness(routing_table(), tls_port=0, tls_server=server_context(cert.cert, cert.key))
        await h.endpoint.start()
        harnesses[name] = h
    yield harnesses
    for h in harnesses.values():
        await h.endpoint.stop()


async def answer_with_tone(call: Call) -> None:
    await call.answer()
    call.play(sine(CALLEE_TONE, 10.0), interruptible=False)
    await call.wait_ended()


@pytest.mark.parametrize("bad", ["wrong name", "unknown CA"])
async def test_a_trunk_whose_certificate_fails_verification_fails_over_to_the_next(
        ca: TestCa, callees: dict[str, EndpointHarness], bad: str, caplog: pytest.LogCaptureFixture) -> None:
    good = callees["good"]
    good.handler = answer_with_tone
    routing = RoutingTable(trunks=[tls_trunk(1, callees[bad].endpoint.config.tls_port),
                                   tls_trunk(2, good.endpoint.config.tls_port, require_srtp=True)],
                           numbers={NUMBER: Number(NUMBER, 1)}, tenants={1: Tenant(1, "demo", ("4",))})
    caller = EndpointHarness(routing, tls_client=client_context(ca.ca_file))
    await caller.endpoint.start()
    try:
        with caplog.at_level(logging.WARNING, logger="sip_bridge"):
            call = await asyncio.wait_for(caller.endpoint.dial(1, NUMBER, caller_id="01012345678", timeout=10), 20)
        assert call.trunk_id == 2 and call.answered_at is not None
        failed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("trunk tls-1 failed")]
        assert len(failed) == 1 and "CERTIFICATE_VERIFY_FAILED" in failed[0], failed
        assert callees[bad].observer.events == []  # the INVITE never went to the unverified peer

        # The call went over TLS and its media is SRTP (the trunk requires it): our offer was RTP/SAVP.
        inbound = await asyncio.wait_for(good.calls.get(), 5)
        stream = inbound.stream
        assert isinstance(stream, RtpStream) and stream.params is not None and stream.params.srtp is not None
        assert call.stream is not None and call.stream.params is not None and call.stream.params.srtp is not None
        leg_flow = caller.endpoint.legs[call.id].flow
        assert leg_flow is not None and leg_flow.transport == "tls"

        call.send_audio(sine(CALLER_TONE, 1.5))
        heard = await talk_and_hang_up(call, 1.5, collect_timeout=5)
        assert detect_tone(heard[-8000:], CALLEE_TONE), goertzel_power(heard[-8000:], CALLEE_TONE)
        ended = await good.observer.next_ended(5)  # our BYE arrived over the TLS connection
        assert ended is inbound and (ended.end_cause, ended.hangup_side) == ("normal_clearing", "caller")
        assert stream.srtp_rejected == 0 and stream.received > 0
    finally:
        await caller.endpoint.stop()


async def test_no_trunk_with_a_verifiable_certificate_means_the_call_fails(
        ca: TestCa, callees: dict[str, EndpointHarness]) -> None:
    routing = RoutingTable(trunks=[tls_trunk(1, callees["wrong name"].endpoint.config.tls_port)],
                           numbers={}, tenants={1: Tenant(1, "demo", ("4",))})
    caller = EndpointHarness(routing, tls_client=client_context(ca.ca_file))
    await caller.endpoint.start()
    try:
        with pytest.raises(DialError) as info:
            await asyncio.wait_for(caller.endpoint.dial(1, NUMBER, timeout=10), 20)
        assert (info.value.status, info.value.cause) == (502, "trunk_error")
        assert "certificate verify failed" in str(info.value)
        ended = await caller.observer.next_ended(5)
        assert ended.end_cause == "trunk_error"
    finally:
        await caller.endpoint.stop()


def test_unusable_certificate_files_are_refused_with_the_reason(ca: TestCa, tmp_path: Path) -> None:
    one, other = ca.issue("one"), ca.issue("other")
    with pytest.raises(TlsConfigError, match="the private key does not belong to the certificate"):
        server_context(one.cert, other.key)
    with pytest.raises(TlsConfigError, match=r"cannot read .*missing\.pem: No such file or directory"):
        server_context(tmp_path / "missing.pem", one.key)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(TlsConfigError, match="not a PEM certificate and private key"):
        server_context(garbage, one.key)
    with pytest.raises(TlsConfigError, match="garbage.pem"):
        client_context(garbage)
    with pytest.raises(TlsConfigError, match="cannot read"):
        client_context(tmp_path / "missing-ca.pem")
    context = server_context(one.cert, one.key)
    assert context.minimum_version.name == "TLSv1_2"
    assert client_context(ca.ca_file).minimum_version.name == "TLSv1_2"

