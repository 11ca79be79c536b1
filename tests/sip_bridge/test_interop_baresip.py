"""The SIP bridge against baresip, a second independent SIP user agent, over loopback.

baresip runs headless (see :mod:`tests.support.baresip`): its microphone is a
WAV of a 1 kHz tone and what it hears is recorded to a WAV.  The platform
plays 440 Hz.  Each direction of audio is checked where a user would notice
it: the platform's ``call.audio()`` must carry baresip's 1 kHz tone, and
baresip's recording must carry the platform's 440 Hz.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from sip_bridge.call import Call
from sip_bridge.tones import detect_tone, goertzel_power, sine
from tests.support.baresip import Baresip, write_wav
from tests.support.endpoint import NUMBER, EndpointHarness, routing_table, talk_and_hang_up

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("baresip") is None, reason="baresip is not installed"),
]

BARESIP_TONE = 1000.0  # what baresip says (its aufile source)
PLATFORM_TONE = 440.0  # what the platform says
TALK = 1.5  # seconds of conversation before someone hangs up
CALLEE = "18005550100"  # baresip's account when the platform calls it


def heard(pcm: bytes, freq: float) -> str:
    """For assertion messages: how much of the audio's energy is at each tone."""
    return (f"{len(pcm) / 16000:.2f} s, share at {freq:.0f} Hz {goertzel_power(pcm, freq):.2f}, "
            f"at {BARESIP_TONE:.0f} Hz {goertzel_power(pcm, BARESIP_TONE):.2f}, "
            f"at {PLATFORM_TONE:.0f} Hz {goertzel_power(pcm, PLATFORM_TONE):.2f}")


@pytest.fixture
async def baresip_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Baresip]]:
    source = write_wav(tmp_path / "baresip-says.wav", sine(BARESIP_TONE, 20.0))
    started: list[Baresip] = []

    def make(**kwargs: str) -> Baresip:
        peer = Baresip(tmp_path, source, **kwargs)
        started.append(peer)
        return peer

    yield make
    for peer in started:
        await peer.stop()


async def test_baresip_calls_in_and_hangs_up(harness: EndpointHarness,
                                             baresip_factory: Callable[..., Baresip]) -> None:
    received: list[bytes] = []

    async def talk(call: Call) -> None:
        await call.answer()
        call.play(sine(PLATFORM_TONE, 10.0), interruptible=False)
        async for frame in call.audio():
            received.append(frame)

    harness.handler = talk
    baresip = await baresip_factory().start()
    await baresip.dial(f"sip:{NUMBER}@{harness.target}")
    await baresip.wait_event("CALL_ESTABLISHED")
    await asyncio.sleep(TALK)
    await baresip.hangup()  # BYE from the far side
    await baresip.wait_event("CALL_CLOSED")

    call = await harness.observer.next_ended(10)
    assert (call.direction, call.caller, call.dialed) == ("inbound", "baresip", NUMBER)
    assert (call.end_cause, call.hangup_side) == ("normal_clearing", "caller")
    assert call.answered_at is not None and call.codec in ("PCMU", "PCMA")
    assert [kind for kind, c in harness.observer.events if c is call] == ["started", "answered", "ended"]

    platform_heard = b"".join(received)
    assert len(platform_heard) >= 16000 * (TALK - 0.5), heard(platform_heard, BARESIP_TONE)
    assert detect_tone(platform_heard, BARESIP_TONE), heard(platform_heard, BARESIP_TONE)

    assert await baresip.stop() == 0
    baresip_heard = baresip.heard()
    assert len(baresip_heard) >= 16000 * (TALK - 0.5), heard(baresip_heard, PLATFORM_TONE)
    assert detect_tone(baresip_heard, PLATFORM_TONE), heard(baresip_heard, PLATFORM_TONE)


async def test_platform_dials_baresip_which_auto_answers(harness: EndpointHarness,
                                                         baresip_factory: Callable[..., Baresip]) -> None:
    baresip = await baresip_factory(user=CALLEE, answermode="auto").start()
    harness.endpoint.routing = routing_table(outbound_port=baresip.sip_port)

    call = await asyncio.wait_for(harness.endpoint.dial(1, CALLEE, caller_id=NUMBER, timeout=10), 15)
    assert call.answered_at is not None and call.direction == "outbound" and call.trunk_id == 1
    await baresip.wait_event("CALL_ESTABLISHED")
    call.play(sine(PLATFORM_TONE, 10.0), interruptible=False)
    heard = await talk_and_hang_up(call, TALK, collect_timeout=5)
    closed = await baresip.wait_event("CALL_CLOSED")  # baresip got our BYE
    assert closed.get("peeruri", "").startswith(f"sip:{NUMBER}@"), closed

    ended = await harness.observer.next_ended(10)
    assert ended is call
    assert (call.end_cause, call.hangup_side, call.sip_status) == ("normal_clearing", "platform", 200)

    platform_heard = heard
    assert len(platform_heard) >= 16000 * (TALK - 0.5), heard(platform_heard, BARESIP_TONE)
    assert detect_tone(platform_heard, BARESIP_TONE), heard(platform_heard, BARESIP_TONE)

    assert await baresip.stop() == 0
    baresip_heard = baresip.heard()
    assert len(baresip_heard) >= 16000 * (TALK - 0.5), heard(baresip_heard, PLATFORM_TONE)
    assert detect_tone(baresip_heard, PLATFORM_TONE), heard(baresip_heard, PLATFORM_TONE)
