"""Agents' SIP phones register to the platform and the platform rings them, over loopback.

The phone is sipp (``tests/scenarios/agent_*.xml``) or baresip; the platform an
in-process endpoint with a :class:`~sip_bridge.registrar.Registrar` and an
agent directory built here.  sipp runs one scenario per process: the phone's
registration is the main scenario, and the platform's INVITE (a Call-ID sipp
does not know) goes to the out-of-call scenario given with ``-oocsf``.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sip_bridge.call import DialError
from sip_bridge.endpoint import CONTACT_NO_RESPONSE, SipEndpoint
from sip_bridge.registrar import AgentCredentials, Registrar, sip_ha1
from sip_bridge.tones import detect_tone, goertzel_power, sine
from sip_bridge.transaction import Flow
from tests.sip_bridge.test_interop_trunks import eventually, media_port
from tests.support.baresip import Baresip, write_wav
from tests.support.endpoint import NUMBER, EndpointHarness, routing_table, talk_and_hang_up
from tests.support.node import free_port
from tests.support.sipp import SippResult, scenario, sipp_async

pytestmark = pytest.mark.interop

AGENT = "demo.agent2"
PASSWORD = "agent2-secret"
BARESIP_AGENT = "demo.agent3"
BARESIP_PASSWORD = "agent3-secret"
CUSTOMER = "01012345678"  # the caller ID the agent's phone shows
TONE = 1000.0  # the platform's tone, echoed by sipp
BARESIP_TONE = 1000.0  # what baresip says
PLATFORM_TONE = 440.0  # what the platform says to baresip
TALK = 1.5


class Directory:
    """The platform's agent logins: tenant 1 (``demo``), HA1 only."""

    def __init__(self) -> None:
        self.agents = {user: AgentCredentials(user, sip_ha1(user, password), tenant_id=1, agent_id=user.split(".")[1])
                       for user, password in ((AGENT, PASSWORD), (BARESIP_AGENT, BARESIP_PASSWORD))}

    def credentials(self, sip_user: str) -> AgentCredentials | None:
        return self.agents.get(sip_user)


@dataclass
class Platform:
    harness: EndpointHarness
    registrar: Registrar
    changes: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def endpoint(self) -> SipEndpoint:
        return self.harness.endpoint


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    h = EndpointHarness(routing_table())
    registrar = Registrar(Directory())
    p = Platform(h, registrar)
    registrar.add_listener(lambda user, reachable: p.changes.append((user, reachable)))
    h.endpoint = SipEndpoint(h.endpoint.config, h.endpoint.routing, h.observer, h._on_call, registrar=registrar)
    await h.endpoint.start()
    yield p
    await h.endpoint.stop()


def phone(workdir: Path, platform: Platform, scenario_name: str, port: int, *args: str,
          user: str = AGENT, password: str = PASSWORD, timeout: float = 30.0) -> asyncio.Task[SippResult]:
    """sipp as an agent's phone on ``port``, registering as ``user`` with ``password``."""
    return asyncio.ensure_future(sipp_async(
        workdir, platform.harness.target, "-sf", scenario(scenario_name), "-s", user, "-au", user, "-ap", password,
        "-m", "1", "-p", str(port), "-cp", str(free_port()), *args, timeout=timeout))


async def test_sipp_phone_registers_and_answers_a_call(platform: Platform, tmp_path: Path) -> None:
    registrar, endpoint = platform.registrar, platform.endpoint
    port = free_port()
    sipp = phone(tmp_path, platform, "agent_register_answer.xml", port, "-oocsf", scenario("agent_answer_call.xml"),
                 "-rtp_echo", "-mp", media_port())
    try:
        await eventually(lambda: registrar.reachable(AGENT), 10, "registered")
        (binding,) = registrar.bindings(AGENT)
        assert binding.flow == Flow("udp", ("127.0.0.1", port))  # where the REGISTER came from
        assert str(binding.uri) == f"sip:{AGENT}@127.0.0.1:{port}"
        assert (binding.tenant_id, binding.agent_id, binding.user_agent) == (1, "agent2", "sipp agent phone")
        assert 295 <= binding.expires_in(asyncio.get_running_loop().time()) <= 300
        assert platform.changes == [(AGENT, True)]
        counts = endpoint.stats.messages
        assert (counts[("out", "REGISTER", "401")], counts[("out", "REGISTER", "200")]) == (1, 1)

        with pytest.raises(DialError) as other_tenant:  # tenant 2 cannot ring tenant 1's agent
            await endpoint.dial_contact(2, AGENT, caller_id=CUSTOMER)
        assert (other_tenant.value.status, other_tenant.value.cause) == (0, "unreachable")
        assert registrar.reachable(AGENT)

        call = await asyncio.wait_for(endpoint.dial_contact(1, AGENT, caller_id=CUSTOMER, timeout=10), 15)
        assert (call.direction, call.dialed, call.caller, call.tenant_id, call.trunk_id) == \
            ("outbound", AGENT, CUSTOMER, 1, None)
        assert call.answered_at is not None and call.sip_status == 200 and call.codec == "PCMU"
        assert counts[("in", "INVITE", "180")] == 1

        call.send_audio(sine(TONE, 1.0))
        echoed = await talk_and_hang_up(call, 1.3)
        assert detect_tone(echoed, TONE), f"{len(echoed)} bytes, {goertzel_power(echoed, TONE):.2f} at {TONE}"

        ended = await platform.harness.observer.next_ended(5)
        assert ended is call and (call.end_cause, call.hangup_side) == ("normal_clearing", "platform")
        assert [kind for kind, c in platform.harness.observer.events if c is call] == ["started", "answered", "ended"]
        await eventually(lambda: counts[("in", "BYE", "200")] == 1, 5, "BYE answered by the phone")

        # Done with the phone: an OPTIONS on its registration's Call-ID lets the scenario go on to unregister.
        response = await endpoint.request("OPTIONS", binding.target, binding.flow, call_id=binding.call_id)
        assert response is not None and response.status == 200
        result = await sipp
        assert result.successful == 1 and result.failed == 0, result
        assert "Aborting" not in result.errors, result  # the out-of-call scenario (the call) went as written
        assert registrar.bindings(AGENT) == []
        assert platform.changes == [(AGENT, True), (AGENT, False)]
    finally:
        sipp.cancel()


def refusing_phone(workdir: Path, status_line: str) -> str:
    """agent_reject_call.xml answering ``status_line`` instead of 486 Busy Here."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "agent_reject_call.xml"
    text = Path(scenario("agent_reject_call.xml")).read_text()
    path.write_text(text.replace("SIP/2.0 486 Busy Here", f"SIP/2.0 {status_line}"))
    return str(path)


@pytest.mark.parametrize(("refusal", "status", "cause", "reachable"), [
    ("486 Busy Here", 486, "busy", True),
    ("603 Decline", 603, "declined", True),
    ("480 Temporarily Unavailable", 480, "unavailable", False),
    ("503 Service Unavailable", 503, "failed", False),
    (None, 480, "no_answer", True),
], ids=["busy", "declined", "phone says 480", "phone says 503", "rings without answer"])
async def test_phone_that_does_not_take_the_call(platform: Platform, tmp_path: Path, refusal: str | None,
                                                 status: int, cause: str, reachable: bool) -> None:
    """486/603 and ringing out leave the agent reachable; 480/503 from the phone itself drop its binding."""
    registrar, endpoint = platform.registrar, platform.endpoint
    ooc = scenario("agent_ring_no_answer.xml") if refusal is None else refusing_phone(tmp_path / "ooc", refusal)
    sipp = phone(tmp_path, platform, "agent_register_answer.xml", free_port(), "-oocsf", ooc)
    try:
        await eventually(lambda: registrar.reachable(AGENT), 10, "registered")
        binding = registrar.contact_for(AGENT)
        assert binding is not None
        # callers' IDs as the ACD has them: absent, or with spaces (escaped in From, never a malformed INVITE)
        caller = "" if status == 486 else "+86 10 8888 0000"
        with pytest.raises(DialError) as info:
            await asyncio.wait_for(endpoint.dial_contact(1, AGENT, caller_id=caller, timeout=1.5), 10)
        assert (info.value.status, info.value.cause) == (status, cause)
        call = await platform.harness.observer.next_ended(5)
        assert call.caller == caller
        assert (call.end_cause, call.answered_at, call.trunk_id) == (cause, None, None)
        assert call.hangup_side == ("callee" if status in (486, 603) else "platform")
        assert registrar.reachable(AGENT) is reachable
        assert platform.changes == [(AGENT, True)] + ([] if reachable else [(AGENT, False)])
        counts = endpoint.stats.messages
        assert counts[("out", "CANCEL", "")] == (1 if cause == "no_answer" else 0)

        response = await endpoint.request("OPTIONS", binding.target, binding.flow, call_id=binding.call_id)
        assert response is not None and response.status == 200
        result = await sipp
        assert result.successful == 1 and result.failed == 0, result
        assert "Aborting" not in result.errors, result  # the out-of-call scenario got its ACK
        assert not registrar.reachable(AGENT)
    finally:
        sipp.cancel()


@pytest.mark.parametrize(("user", "password"), [(AGENT, "wrong"), ("demo.nobody", "whatever")],
                         ids=["wrong password", "unknown user"])
async def test_bad_credentials_get_403_and_no_binding(platform: Platform, tmp_path: Path, user: str,
                                                      password: str) -> None:
    result = await phone(tmp_path, platform, "agent_register_rejected.xml", free_port(), user=user, password=password)
    assert result.successful == 1, result  # challenged, then 403
    counts = platform.endpoint.stats.messages
    assert (counts[("out", "REGISTER", "401")], counts[("out", "REGISTER", "403")]) == (1, 1)
    assert counts[("out", "REGISTER", "200")] == 0
    assert platform.registrar.registered_users() == [] and platform.changes == []


async def test_phone_that_stopped_answering_is_unreachable(platform: Platform, tmp_path: Path) -> None:
    """The phone registered and went away: the INVITE gets no response at all."""
    registrar, endpoint = platform.registrar, platform.endpoint
    result = await phone(tmp_path, platform, "agent_register.xml", free_port())
    assert result.successful == 1, result  # registered, then sipp exited: the binding points at a dead port
    assert registrar.reachable(AGENT) and platform.changes == [(AGENT, True)]

    started = time.monotonic()
    with pytest.raises(DialError) as info:
        await asyncio.wait_for(endpoint.dial_contact(1, AGENT, caller_id=CUSTOMER, timeout=20), 30)
    took = time.monotonic() - started
    assert (info.value.status, info.value.cause) == (0, "unreachable")
    assert CONTACT_NO_RESPONSE - 0.5 < took < CONTACT_NO_RESPONSE + 2  # not the 20 s ring time, not Timer B
    assert not registrar.reachable(AGENT)
    assert platform.changes == [(AGENT, True), (AGENT, False)]
    call = await platform.harness.observer.next_ended(5)
    assert (call.direction, call.dialed, call.trunk_id, call.end_cause, call.answered_at) == \
        ("outbound", AGENT, None, "unreachable", None)
    assert endpoint.active_calls == 0

    with pytest.raises(DialError) as again:  # no binding left: fails at once, no call attempt
        await asyncio.wait_for(endpoint.dial_contact(1, AGENT, caller_id=CUSTOMER), 1)
    assert (again.value.status, again.value.cause) == (0, "unreachable")
    assert [kind for kind, _ in platform.harness.observer.events] == ["started", "ended"]


# -- baresip as the agent's phone ----------------------------------------------------


class RegisteringBaresip(Baresip):
    """baresip with an account that registers to the platform (digest) and answers calls itself."""

    def __init__(self, workdir: Path, source_wav: Path, *, user: str, password: str, registrar: str) -> None:
        super().__init__(workdir, source_wav, user=user, answermode="auto")
        self.password = password
        self.registrar = registrar

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.registrar}"

    def _write_config(self) -> None:
        super()._write_config()
        (self.config_dir / "accounts").write_text(
            f"<{self.aor}>;auth_pass={self.password};regint=60;answermode=auto;audio_codecs=pcmu,pcma\n")


@pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip is not installed")
async def test_baresip_phone_registers_and_answers(platform: Platform, tmp_path: Path) -> None:
    registrar, endpoint = platform.registrar, platform.endpoint
    source = write_wav(tmp_path / "baresip-says.wav", sine(BARESIP_TONE, 20.0))
    baresip = RegisteringBaresip(tmp_path, source, user=BARESIP_AGENT, password=BARESIP_PASSWORD,
                                 registrar=platform.harness.target)
    try:
        await baresip.start()
        await eventually(lambda: registrar.reachable(BARESIP_AGENT), 10, "baresip registered")
        (binding,) = registrar.bindings(BARESIP_AGENT)
        assert binding.flow == Flow("udp", ("127.0.0.1", baresip.sip_port))
        counts = endpoint.stats.messages
        assert (counts[("out", "REGISTER", "401")], counts[("out", "REGISTER", "200")]) == (1, 1)  # digest
        assert binding.uri.user is not None and binding.uri.user.startswith(BARESIP_AGENT)  # baresip's own cuser
        assert binding.expires_in(asyncio.get_running_loop().time()) <= 60  # baresip asked for regint

        call = await asyncio.wait_for(endpoint.dial_contact(1, BARESIP_AGENT, caller_id=NUMBER, timeout=10), 15)
        assert (call.direction, call.dialed, call.trunk_id) == ("outbound", BARESIP_AGENT, None)
        assert call.answered_at is not None and call.codec in ("PCMU", "PCMA")
        await baresip.wait_event("CALL_ESTABLISHED")
        call.play(sine(PLATFORM_TONE, 10.0), interruptible=False)
        heard = await talk_and_hang_up(call, TALK, collect_timeout=5)
        await baresip.wait_event("CALL_CLOSED")  # baresip got our BYE
        ended = await platform.harness.observer.next_ended(10)
        assert ended is call and (call.end_cause, call.hangup_side) == ("normal_clearing", "platform")

        platform_heard = heard
        assert len(platform_heard) >= 16000 * (TALK - 0.5)
        assert detect_tone(platform_heard, BARESIP_TONE), goertzel_power(platform_heard, BARESIP_TONE)

        assert await baresip.stop() == 0  # quitting unregisters
        baresip_heard = baresip.heard()
        assert len(baresip_heard) >= 16000 * (TALK - 0.5)
        assert detect_tone(baresip_heard, PLATFORM_TONE), goertzel_power(baresip_heard, PLATFORM_TONE)
        await eventually(lambda: not registrar.reachable(BARESIP_AGENT), 5, "baresip unregistered")
        assert platform.changes == [(BARESIP_AGENT, True), (BARESIP_AGENT, False)]
    finally:
        await baresip.stop()
