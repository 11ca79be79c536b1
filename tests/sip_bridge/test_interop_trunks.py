"""Outbound trunk behaviour against sipp acting as the carrier, over loopback.

Each test names the situation it pins down.  The carrier's side is a sipp
scenario in ``tests/scenarios/carrier_*.xml`` (sipp checks digest credentials
itself with ``verifyauth``); the platform is an in-process endpoint, plus a
:class:`~sip_bridge.trunks.TrunkMonitor` for registration and keepalives.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sip_bridge.call import Call, DialError
from sip_bridge.tones import detect_tone, goertzel_power, sine
from sip_bridge.trunks import TrunkMonitor
from tests.support.endpoint import NUMBER, EndpointHarness, routing_table, talk_and_hang_up
from tests.support.node import free_port, rtp_range
from tests.support.sipp import SippResult, scenario, sipp_async

pytestmark = pytest.mark.interop

DIALED = "18005550100"
USERNAME = "trunkuser"
PASSWORD = "s3cret"
TONE = 1000.0


def carrier(workdir: Path, port: int, *args: str, timeout: float = 20.0) -> asyncio.Task[SippResult]:
    """sipp as the carrier (UAS) on ``port``, each in its own directory (its own stat.csv)."""
    return asyncio.ensure_future(sipp_async(workdir, "", "-p", str(port), "-cp", str(free_port()), *args,
                                            timeout=timeout))


async def bound(port: int, timeout: float = 5.0) -> None:
    """Wait until something (sipp) holds UDP ``port`` on loopback."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing listening on udp 127.0.0.1:{port} after {timeout} s")


async def eventually(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until ``predicate()``; the time it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not {what} within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


def media_port() -> str:
    """A port for sipp's -mp: it binds it and +2 (RTP), +1 and +3 (RTCP), and does not retry.

    Taken outside every in-process endpoint's range, and checked, since other
    processes on this host may hold ports anywhere.
    """
    for _ in range(50):
        low = rtp_range(4)[0]
        sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
        try:
            for offset, s in enumerate(sockets):
                s.bind(("127.0.0.1", low + offset))
            return str(low)
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free media port block for sipp")


async def talk_and_listen(call: Call, seconds: float = 1.0) -> bytes:
    """Send a tone, and collect what comes back until the call ends."""
    frames: list[bytes] = []

    async def collect() -> None:
        async for frame in call.audio():
            frames.append(frame)

    collector = asyncio.ensure_future(collect())
    call.send_audio(sine(TONE, seconds))
    await asyncio.wait_for(call.wait_ended(), 10)
    await asyncio.wait_for(collector, 2)
    return b"".join(frames)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def digest_matches(header: str, *, method: str, password: str) -> dict[str, str]:
    """RFC 2617 3.2.2 (qop=auth), computed independently of sip_bridge.digest."""
    params = {name: quoted or token for name, quoted, token in re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', header)}
    ha1 = md5(f"{params['username']}:{params['realm']}:{password}")
    ha2 = md5(f"{method}:{params['uri']}")
    expected = md5(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{params['qop']}:{ha2}")
    assert params["response"] == expected, f"bad digest response in {header}"
    return params


# -- registration --------------------------------------------------------------------

async def start_registering(tmp_path: Path, password: str,
                            granted: int) -> tuple[EndpointHarness, TrunkMonitor, asyncio.Task[SippResult]]:
    """The registrar (sipp, knowing USERNAME/PASSWORD) and a monitor registering with ``password``."""
    port = free_port()
    h = EndpointHarness(routing_table(outbound_port=port, register=True, outbound_username=USERNAME,
                                      outbound_password=password, register_expires=600),
                        options_interval=60.0)
    await h.endpoint.start()
    # -m 2: the first OPTIONS keepalive, and the registration (one Call-ID for every REGISTER)
    sipp = carrier(tmp_path, port, "-sf", scenario("carrier_register_digest.xml"), "-m", "2",
                   "-key", "username", USERNAME, "-key", "password", PASSWORD, "-key", "expires", str(granted))
    await bound(port)
    monitor = TrunkMonitor(h.endpoint)
    monitor.update(h.endpoint.routing.trunks)
    return h, monitor, sipp


async def test_register_with_digest_then_refresh(tmp_path: Path) -> None:
    """401 challenge answered and verified by the carrier; 200 grants 6 s; refreshed at ~80 % of that."""
    granted = 6
    h, monitor, sipp = await start_registering(tmp_path, PASSWORD, granted)
    counts = h.endpoint.stats.messages
    try:
        await eventually(lambda: 1 in monitor.registered, 5, "registration answered")
        assert monitor.registered[1] is True
        registered_at = time.monotonic()
        await eventually(lambda: counts[("in", "REGISTER", "200")] == 2, granted + 2, "refreshed")
        refresh_after = time.monotonic() - registered_at
        # about 80 % of our binding's expiry (not of the other node's hour listed before it)
        assert granted * 0.65 < refresh_after < granted * 0.95, refresh_after
        assert monitor.registered[1] is True and h.endpoint.trunk_state[1] == "up"
        assert counts[("in", "REGISTER", "401")] == 2  # each round is challenged afresh
        result = await sipp
        assert result.successful == 2 and result.failed == 0, result
    finally:
        monitor.stop()
        await h.endpoint.stop()
        sipp.cancel()


async def test_register_with_wrong_password_is_refused(tmp_path: Path) -> None:
    h, monitor, sipp = await start_registering(tmp_path, "wrong", 6)
    counts = h.endpoint.stats.messages
    try:
        await eventually(lambda: 1 in monitor.registered, 5, "registration answered")
        assert monitor.registered[1] is False
        assert counts[("in", "REGISTER", "403")] == 1 and counts[("in", "REGISTER", "200")] == 0
        result = await sipp  # sipp took the 403 branch: its verifyauth rejected the credentials
        assert result.successful == 2, result
    finally:
        monitor.stop()
        await h.endpoint.stop()
        sipp.cancel()


async def test_register_interval_too_brief_asks_again_for_min_expires(tmp_path: Path) -> None:
    """423 with Min-Expires: 3600 -> the REGISTER is re-sent asking for 3600 s (sipp checks) -> 200."""
    port = free_port()
    h = EndpointHarness(routing_table(outbound_port=port, register=True, outbound_username=USERNAME,
                                      outbound_password=PASSWORD, register_expires=60),
                        options_interval=60.0)
    await h.endpoint.start()
    monitor = TrunkMonitor(h.endpoint)
    sipp = carrier(tmp_path, port, "-sf", scenario("carrier_register_interval_too_brief.xml"), "-m", "2")
    try:
        await bound(port)
        monitor.update(h.endpoint.routing.trunks)
        await eventually(lambda: 1 in monitor.registered, 5, "registration answered")
        assert monitor.registered[1] is True
        result = await sipp
        assert result.successful == 2 and result.failed == 0, result
        assert h.endpoint.stats.messages[("in", "REGISTER", "423")] == 1
    finally:
        monitor.stop()
        await h.endpoint.stop()
        sipp.cancel()


# -- OPTIONS keepalive ---------------------------------------------------------------

async def test_options_keepalive_marks_trunk_up_down_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Answered OPTIONS: up.  Carrier gone: down once the OPTIONS transaction times out
    (Timer F = 64*T1), and dial() no longer uses the trunk.  Carrier back: up again.

    T1 is the RTT estimate (RFC 3261 17.1.1.1); on loopback 50 ms is generous and
    brings Timer F from 32 s to 3.2 s.  (An ICMP port-unreachable does not help: the
    UDP transport ignores it, so "down" always means Timer F.)
    """
    monkeypatch.setattr("sip_bridge.transaction.T1", 0.05)
    port = free_port()
    h = EndpointHarness(routing_table(outbound_port=port), options_interval=0.2)
    await h.endpoint.start()
    monitor = TrunkMonitor(h.endpoint)
    state = h.endpoint.trunk_state
    try:
        first = carrier(tmp_path / "first", port, "-sf", scenario("carrier_answers_options.xml"), "-m", "1")
        await bound(port)
        monitor.update(h.endpoint.routing.trunks)
        await eventually(lambda: state.get(1) == "up", 3, "up")
        result = await first  # answered one keepalive and left
        assert result.successful == 1, result

        took = await eventually(lambda: state.get(1) == "down", 8, "down")
        assert took > 64 * 0.05 - 0.5  # a timeout, not an immediate verdict
        with pytest.raises(DialError) as info:
            await h.endpoint.dial(1, DIALED, timeout=2)
        assert (info.value.cause, info.value.status) == ("no_trunk", 503)

        again = carrier(tmp_path / "again", port, "-sf", scenario("carrier_answers_options.xml"), "-m", "1")
        await eventually(lambda: state.get(1) == "up", 5, "up again")
        assert (await again).successful == 1
    finally:
        monitor.stop()
        await h.endpoint.stop()


# -- outbound calls ------------------------------------------------------------------

@pytest.mark.parametrize("challenge", [401, 407])
async def test_outbound_invite_answers_digest_challenge(tmp_path: Path, challenge: int) -> None:
    """The carrier challenges the INVITE; the re-sent INVITE carries valid credentials, is
    answered, audio flows both ways (the carrier echoes it) and the carrier hangs up."""
    port = free_port()
    h = EndpointHarness(routing_table(outbound_port=port, outbound_username=USERNAME, outbound_password=PASSWORD))
    await h.endpoint.start()
    sipp = carrier(tmp_path, port, "-sf", scenario(f"carrier_invite_digest_{challenge}.xml"), "-m", "1",
                   "-key", "username", USERNAME, "-key", "password", PASSWORD,
                   "-rtp_echo", "-mp", media_port(), "-trace_msg")
    try:
        await bound(port)
        call = await asyncio.wait_for(h.endpoint.dial(1, DIALED, caller_id=NUMBER, timeout=5), 10)
        assert call.trunk_id == 1 and call.sip_status == 200
        echoed = await talk_and_listen(call)
        assert detect_tone(echoed, TONE), f"{len(echoed)} bytes, {goertzel_power(echoed, TONE):.2f} at {TONE}"
        assert (call.end_cause, call.hangup_side) == ("normal_clearing", "callee")
        assert (await h.observer.next_ended(5)) is call
        result = await sipp
        assert result.successful == 1, result
        if challenge == 407:  # sipp's verifyauth reads only Authorization: check the digest here
            trace = "\n".join(p.read_text(errors="replace") for p in tmp_path.glob("*_messages.log"))
            headers = re.findall(r"^Proxy-Authorization: (.*)$", trace, re.M)
            assert len(headers) == 1, trace[-3000:]
            params = digest_matches(headers[0], method="INVITE", password=PASSWORD)
            assert (params["username"], params["realm"], params["qop"]) == (USERNAME, "carrier", "auth")
    finally:
        await h.endpoint.stop()
        sipp.cancel()


async def test_outbound_invite_with_wrong_password_fails_with_403(tmp_path: Path) -> None:
    port = free_port()
    h = EndpointHarness(routing_table(outbound_port=port, outbound_username=USERNAME, outbound_password="wrong"))
    await h.endpoint.start()
    sipp = carrier(tmp_path, port, "-sf", scenario("carrier_invite_digest_401.xml"), "-m", "1",
                   "-key", "username", USERNAME, "-key", "password", PASSWORD, "-mp", media_port())
    try:
        await bound(port)
        with pytest.raises(DialError) as info:
            await asyncio.wait_for(h.endpoint.dial(1, DIALED, timeout=5), 10)
        assert info.value.status == 403
        call = await h.observer.next_ended(5)
        assert call.sip_status == 403 and call.answered_at is None
        assert (await sipp).successful == 1
    finally:
        await h.endpoint.stop()
        sipp.cancel()


async def test_failover_from_503_to_second_trunk(tmp_path: Path) -> None:
    """Trunk 1 (priority 1) answers 503: the same call goes out through trunk 2."""
    first, second = free_port(), free_port()
    h = EndpointHarness(routing_table(outbound_port=first, failover_ports=(second,)))
    await h.endpoint.start()
    unavailable = carrier(tmp_path / "first", first, "-sf", scenario("carrier_unavailable.xml"), "-m", "1")
    answering = carrier(tmp_path / "second", second, "-sn", "uas", "-m", "1", "-rtp_echo", "-mp", media_port())
    try:
        await bound(first)
        await bound(second)
        call = await asyncio.wait_for(h.endpoint.dial(1, DIALED, caller_id=NUMBER, timeout=5), 10)
        assert call.trunk_id == 2 and call.answered_at is not None
        call.send_audio(sine(TONE, 1.0))
        echoed = await talk_and_hang_up(call, 1.2)
        assert detect_tone(echoed, TONE), f"{len(echoed)} bytes, {goertzel_power(echoed, TONE):.2f} at {TONE}"
        assert (await unavailable).successful == 1
        assert (await answering).successful == 1
        ended = await h.observer.next_ended(5)
        assert ended is call and ended.trunk_id == 2 and ended.end_cause == "normal_clearing"
        assert [kind for kind, _ in h.observer.events] == ["started", "answered", "ended"]  # one call record
        assert h.endpoint.trunk_state.get(1) != "down"  # a 503 came from a live carrier
    finally:
        await h.endpoint.stop()
        unavailable.cancel()
        answering.cancel()


class Witness(asyncio.DatagramProtocol):
    """A second carrier that must not be asked: records whatever reaches it."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.received.append(data)


async def test_busy_is_final_no_failover(tmp_path: Path) -> None:
    port = free_port()
    loop = asyncio.get_running_loop()
    transport, witness = await loop.create_datagram_endpoint(Witness, local_addr=("127.0.0.1", 0))
    h = EndpointHarness(routing_table(outbound_port=port,
                                      failover_ports=(transport.get_extra_info("sockname")[1],)))
    await h.endpoint.start()
    sipp = carrier(tmp_path, port, "-sf", scenario("carrier_busy.xml"), "-m", "1")
    try:
        await bound(port)
        with pytest.raises(DialError) as info:
            await asyncio.wait_for(h.endpoint.dial(1, DIALED, caller_id=NUMBER, timeout=5), 10)
        assert (info.value.status, info.value.cause) == (486, "busy")
        call = await h.observer.next_ended(5)
        assert (call.sip_status, call.end_cause, call.hangup_side, call.trunk_id) == (486, "busy", "callee", 1)
        assert call.answered_at is None
        assert (await sipp).successful == 1  # it got our ACK
        await asyncio.sleep(0.3)
        assert witness.received == []  # busy is the callee's answer: no other trunk tried
    finally:
        transport.close()
        await h.endpoint.stop()
        sipp.cancel()


# -- media supervision ---------------------------------------------------------------

async def test_rtp_timeout_hangs_up_silent_call(tmp_path: Path) -> None:
    """The caller sends no RTP at all: the platform hangs up after rtp_timeout (BYE)."""
    h = EndpointHarness(routing_table(), rtp_timeout=1.0)
    await h.endpoint.start()
    try:
        result = await sipp_async(tmp_path, h.target, "-sf", scenario("uac_wait_bye.xml"), "-s", NUMBER,
                                  "-m", "1", "-mp", media_port(), "-cp", str(free_port()), timeout=15)
        assert result.successful == 1, result  # sipp got our BYE and answered it
        call = await h.observer.next_ended(5)
        assert (call.end_cause, call.hangup_side) == ("rtp_timeout", "platform")
        assert call.answered_at is not None and call.ended_at is not None
        assert 1.0 <= (call.ended_at - call.answered_at).total_seconds() < 4.0
    finally:
        await h.endpoint.stop()
