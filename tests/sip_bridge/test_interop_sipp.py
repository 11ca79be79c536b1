"""The SIP bridge against sipp (Debian sip-tester) as the carrier, over loopback.

Each test names the situation it pins down; the endpoint runs in the test's
event loop with a scripted call handler, sipp in a subprocess.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sip_bridge.call import Call
from sip_bridge.tones import sine
from tests.support.endpoint import NUMBER, EndpointHarness, routing_table
from tests.support.sipp import expect_status_scenario, scenario, sipp_async

pytestmark = pytest.mark.interop


async def test_uac_pcap_calls_answered_with_audio_and_dtmf(harness: EndpointHarness, tmp_path: Path) -> None:
    digits: list[str] = []
    heard: list[bytes] = []

    async def listen(call: Call) -> None:
        await call.answer()

        async def collect_audio() -> None:
            async for frame in call.audio():
                heard.append(frame)

        task = asyncio.ensure_future(collect_audio())
        async for event in call.dtmf():
            digits.append(event.digit)
        task.cancel()

    harness.handler = listen
    result = await sipp_async(tmp_path, harness.target, "-sn", "uac_pcap", "-s", NUMBER, "-m", "3", "-r", "3")
    assert result.successful == 3 and result.failed == 0, result
    ended = [await harness.observer.next_ended() for _ in range(3)]
    assert all(c.end_cause == "normal_clearing" and c.hangup_side == "caller" for c in ended)
    assert all(c.codec == "PCMA" for c in ended)
    assert digits == ["1", "1", "1"]  # sipp's dtmf_2833_1.pcap, once per call
    speech = sum(1 for f in heard if max(abs(int.from_bytes(f[i:i + 2], "little", signed=True))
                                         for i in range(0, len(f), 64)) > 500)
    assert speech > 3 * 120  # sipp's g711a.pcap: 236 packets, about 190 of them speech


async def test_cancel_before_answer_gets_487(harness: EndpointHarness, tmp_path: Path) -> None:
    async def ring_forever(call: Call) -> None:
        await call.wait_ended()

    harness.handler = ring_forever
    result = await sipp_async(tmp_path, harness.target, "-sf", scenario("uac_cancel.xml"), "-s", NUMBER, "-m", "1")
    assert result.successful == 1, result
    call = await harness.observer.next_ended()
    assert (call.end_cause, call.hangup_side, call.sip_status) == ("cancelled", "caller", 487)
    assert call.answered_at is None


async def test_platform_hangs_up_with_bye(harness: EndpointHarness, tmp_path: Path) -> None:
    async def greet_and_hang_up(call: Call) -> None:
        await call.answer()
        await call.play(sine(440.0, 0.5))
        await call.hangup()

    harness.handler = greet_and_hang_up
    result = await sipp_async(tmp_path, harness.target, "-sf", scenario("uac_wait_bye.xml"), "-s", NUMBER, "-m", "1")
    assert result.successful == 1, result
    call = await harness.observer.next_ended()
    assert (call.end_cause, call.hangup_side) == ("normal_clearing", "platform")


async def test_reinvite_hold_and_resume(harness: EndpointHarness, tmp_path: Path) -> None:
    result = await sipp_async(tmp_path, harness.target, "-sf", scenario("uac_hold.xml"), "-s", NUMBER, "-m", "1")
    assert result.successful == 1, result
    call = await harness.observer.next_ended()
    assert call.end_cause == "normal_clearing" and not call.on_hold


async def test_info_dtmf_relay(harness: EndpointHarness, tmp_path: Path) -> None:
    digits: list[str] = []

    async def collect(call: Call) -> None:
        await call.answer()
        async for event in call.dtmf():
            digits.append(event.digit)

    harness.handler = collect
    result = await sipp_async(tmp_path, harness.target, "-sf", scenario("uac_info_dtmf.xml"), "-s", NUMBER,
                              "-m", "1")
    assert result.successful == 1, result
    await harness.observer.next_ended()
    assert digits == ["5", "#"]


@pytest.mark.parametrize(("situation", "status", "kwargs"), [
    ("unknown_number", 404, {"service": "999"}),
    ("bye_unknown_dialog", 481, {"method": "BYE", "to_tag": "nosuchdialog"}),
    ("unsupported_method", 405, {"method": "SUBSCRIBE"}),
    ("unsupported_extension", 420, {"extra_headers": "Require: 100rel, foo\n"}),
    ("no_common_codec", 488, {"codecs": "9", "rtpmap": "a=rtpmap:9 G722/8000"}),
    ("options_ping", 200, {"method": "OPTIONS"}),
])
async def test_answers(harness: EndpointHarness, tmp_path: Path, situation: str, status: int,
                       kwargs: dict[str, str]) -> None:
    service = kwargs.pop("service", NUMBER)
    path = expect_status_scenario(tmp_path / f"{situation}.xml", status, **kwargs)
    result = await sipp_async(tmp_path, harness.target, "-sf", path, "-s", service, "-m", "1")
    assert result.successful == 1, result


async def test_caller_not_on_any_trunk_gets_403_whether_or_not_number_exists(tmp_path: Path) -> None:
    h = EndpointHarness(routing_table(inbound_ips=("192.0.2.1",)))
    await h.endpoint.start()
    try:
        for service in (NUMBER, "999"):
            path = expect_status_scenario(tmp_path / f"forbidden_{service}.xml", 403)
            result = await sipp_async(tmp_path, h.target, "-sf", path, "-s", service, "-m", "1")
            assert result.successful == 1, result
    finally:
        await h.endpoint.stop()


async def test_digest_authenticated_trunk(tmp_path: Path) -> None:
    # sipp 3.6 answers only the first challenge and knows only MD5
    h = EndpointHarness(routing_table(inbound_ips=(), digest_user="carrier", digest_password="s3cret"),
                        digest_algorithms=("MD5",))
    await h.endpoint.start()
    try:
        result = await sipp_async(tmp_path, h.target, "-sf", scenario("uac_auth.xml"), "-s", NUMBER, "-m", "1",
                                  "-au", "carrier", "-ap", "s3cret")
        assert result.successful == 1, result
        call = await h.observer.next_ended()
        assert call.answered_at is not None and call.trunk_id == 1
        bad = await sipp_async(tmp_path, h.target, "-sf", scenario("uac_auth_rejected.xml"), "-s", NUMBER,
                               "-m", "1", "-au", "carrier", "-ap", "wrong")
        assert bad.successful == 1, bad
    finally:
        await h.endpoint.stop()


async def test_capacity_full_gets_503_retry_after(tmp_path: Path) -> None:
    h = EndpointHarness(routing_table(), max_calls=0)
    await h.endpoint.start()
    try:
        path = expect_status_scenario(tmp_path / "busy.xml", 503)
        result = await sipp_async(tmp_path, h.target, "-sf", path, "-s", NUMBER, "-m", "1")
        assert result.successful == 1, result
        call = await h.observer.next_ended()
        assert (call.end_cause, call.sip_status) == ("capacity", 503)
    finally:
        await h.endpoint.stop()


async def test_outbound_dial_to_sipp_uas(harness: EndpointHarness, tmp_path: Path) -> None:
    from tests.support.node import free_port

    port = free_port()
    harness.endpoint.routing = routing_table(outbound_port=port)
    uas = asyncio.ensure_future(sipp_async(tmp_path, "", "-sn", "uas", "-p", str(port), "-m", "1"))
    await asyncio.sleep(0.5)
    call = await harness.endpoint.dial(1, "18005551234", caller_id="4001234567")
    assert call.answered_at is not None and call.direction == "outbound" and call.codec == "PCMU"
    call.send_audio(sine(1000.0, 0.4))
    await asyncio.sleep(0.6)
    await call.hangup()
    result = await uas
    assert result.successful == 1, result
    ended = await harness.observer.next_ended()
    assert ended is call and call.end_cause == "normal_clearing"


async def test_outbound_dial_blocked_by_dialing_rules(harness: EndpointHarness) -> None:
    from sip_bridge.call import DialError

    harness.endpoint.routing = routing_table(outbound_port=5999, prefixes=("1800",))
    with pytest.raises(DialError) as info:
        await harness.endpoint.dial(1, "0099123456789")
    assert info.value.cause == "dialing_rule"



async def test_calls_over_tcp(harness: EndpointHarness, tmp_path: Path) -> None:
    result = await sipp_async(tmp_path, harness.target, "-sn", "uac", "-t", "t1", "-s", NUMBER, "-m", "3", "-r", "3")
    assert result.successful == 3 and result.failed == 0, result
    for _ in range(3):
        call = await harness.observer.next_ended()
        assert call.end_cause == "normal_clearing" and call.answered_at is not None


async def test_rate_limit_answers_503_per_source(tmp_path: Path) -> None:
    h = EndpointHarness(routing_table(), rate_limit=0.01, rate_burst=2)
    await h.endpoint.start()
    try:
        ok = expect_status_scenario(tmp_path / "ok.xml", 200, method="OPTIONS")
        assert (await sipp_async(tmp_path, h.target, "-sf", ok, "-s", NUMBER, "-m", "2")).successful == 2
        limited = expect_status_scenario(tmp_path / "limited.xml", 503, method="OPTIONS")
        result = await sipp_async(tmp_path, h.target, "-sf", limited, "-s", NUMBER, "-m", "1")
        assert result.successful == 1, result
        assert h.endpoint.stats.rate_limited == 1
    finally:
        await h.endpoint.stop()


async def test_inbound_call_dials_a_second_leg_and_bridges(harness: EndpointHarness, tmp_path: Path) -> None:
    """Caller (sipp uac_pcap) -> node -> outbound leg (sipp uas); the two legs bridged, media relayed."""
    from tests.support.node import free_port

    port = free_port()
    harness.endpoint.routing = routing_table(outbound_port=port)
    legs: list[Call] = []

    async def transfer(call: Call) -> None:
        await call.answer()
        leg = await call.dial("18005551234")
        legs.append(leg)
        call.bridge(leg)
        await call.wait_ended()

    harness.handler = transfer
    uas = asyncio.ensure_future(sipp_async(tmp_path / "uas", "", "-sn", "uas", "-rtp_echo", "-p", str(port),
                                          "-m", "1"))
    await asyncio.sleep(0.5)
    result = await sipp_async(tmp_path / "uac", harness.target, "-sn", "uac_pcap", "-s", NUMBER, "-m", "1")
    assert result.successful == 1, result
    assert (await uas).successful == 1
    first, second = await harness.observer.next_ended(), await harness.observer.next_ended()
    inbound = first if first.direction == "inbound" else second
    (leg,) = legs
    assert leg.caller == NUMBER and leg.dialed == "18005551234"
    assert inbound.hangup_side == "caller" and leg.end_cause == "bridged_peer_hangup"
    assert leg.stream is not None and leg.stream.sent_packets >= 230  # g711a.pcap holds 236 packets, relayed


async def test_key_press_interrupts_prompt(harness: EndpointHarness, tmp_path: Path) -> None:
    """Barge-in: sipp's uac_pcap presses 1 after 8 s; a 20 s interruptible prompt stops there."""
    outcome: list[tuple[bool, str | None]] = []

    async def long_prompt(call: Call) -> None:
        await call.answer()
        completed = await call.play(sine(440.0, 20.0))
        event = await call.next_dtmf(timeout=1)
        outcome.append((completed, event.digit if event else None))
        await call.wait_ended()

    harness.handler = long_prompt
    result = await sipp_async(tmp_path, harness.target, "-sn", "uac_pcap", "-s", NUMBER, "-m", "1")
    assert result.successful == 1, result
    await harness.observer.next_ended()
    assert outcome == [(False, "1")]
