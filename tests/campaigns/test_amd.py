"""Answering-machine detection on espeak-ng greetings and synthetic sound: counted in frames, no clock."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from campaigns.amd import (
    FRAME_BYTES,
    AmdResult,
    AmdSettings,
    GreetingEnd,
    MachineDetector,
)
from tests.support.audio import (
    frames,
    g711_round_trip,
    noise,
    silence,
    speak,
    speech_end_seconds,
    tone,
    tools_missing,
    trim,
)

DEFAULTS = AmdSettings()
CMN_MACHINE = "您好，您拨打的用户暂时无法接通，请在提示音后留言。"
EN_MACHINE = ("Hi, you have reached John Smith. I can't come to the phone right now. "
              "Please leave a message after the tone.")


@pytest.fixture(scope="module")
def speech_tools() -> None:
    if why := tools_missing():
        pytest.skip(f"cannot make test speech: {why}")


@cache
def said(text: str, voice: str) -> bytes:
    """``text`` spoken at espeak's default speed, without its leading and trailing silence."""
    return trim(speak(text, voice=voice))


def seconds(pcm: bytes) -> float:
    return len(pcm) / 2 / 8000


def mix(pcm: bytes, dbfs: float) -> bytes:
    """``pcm`` with line noise at ``dbfs`` under it."""
    hiss = noise(seconds(pcm) + 0.01, dbfs=dbfs)[:len(pcm)]
    total = np.frombuffer(pcm, "<i2").astype(np.int32) + np.frombuffer(hiss, "<i2").astype(np.int32)
    return total.clip(-32768, 32767).astype("<i2").tobytes()


def detect(pcm: bytes, settings: AmdSettings = DEFAULTS) -> AmdResult | None:
    detector = MachineDetector(settings)
    for frame in frames(pcm):
        if (result := detector.feed(frame)) is not None:
            return result
    return None


def burst(ms: int, dbfs: float = -20.0) -> bytes:
    """Noise standing in for ``ms`` of speech: 160 ms "syllables" with 40 ms dips 20 dB lower
    (a flat sound would become the noise floor, as steady line noise does, within ~1 s)."""
    loud = noise(ms / 1000, dbfs=dbfs, seed=ms)
    n = len(loud) // 2
    gain = np.where(np.arange(n) % 1600 < 1280, 1.0, 0.1)  # samples: 200 ms periods
    return (np.frombuffer(loud, "<i2") * gain).round().astype("<i2").tobytes()


def on_line(pcm: bytes) -> bytes:
    """``pcm`` on a quiet line (-65 dBFS hiss), as a real call delivers it: synthetic bursts are
    flat, so on digital silence the first one would be the only level heard, the noise floor."""
    return mix(pcm, dbfs=-65.0)


# --- persons and machines, spoken -------------------------------------------------------------

@pytest.mark.parametrize(("text", "voice"), [("喂？", "cmn"), ("你好，哪位？", "cmn"), ("hello?", "en-us")])
def test_short_greeting_then_silence_is_a_person_0_8_s_after_it(speech_tools: None, text: str, voice: str) -> None:
    greeting = silence(0.5) + said(text, voice)
    result = detect(greeting + silence(4.0))
    assert result is not None and result.verdict == "person" and result.reason == "short-greeting"
    assert result.seconds == pytest.approx(speech_end_seconds(greeting) + 0.8, abs=0.1)


def test_wei_is_decided_well_under_3_s_after_the_answer(speech_tools: None) -> None:
    result = detect(silence(0.8) + said("喂？", "cmn") + silence(4.0))
    assert result is not None and result.verdict == "person" and result.seconds < 2.0


def test_hello_said_twice_is_one_greeting_decided_after_the_second(speech_tools: None) -> None:
    hello = said("hello?", "en-us")
    greeting = silence(0.5) + hello + silence(0.6) + hello
    result = detect(greeting + silence(3.0))
    assert result is not None and result.verdict == "person"
    assert result.seconds > seconds(greeting)


@pytest.mark.parametrize(("text", "voice"), [(CMN_MACHINE, "cmn"), (EN_MACHINE, "en-us")])
def test_long_greeting_is_a_machine_before_it_ends(speech_tools: None, text: str, voice: str) -> None:
    result = detect(silence(0.5) + said(text, voice) + silence(2.0))
    assert result is not None and result.verdict == "machine" and result.reason == "long-greeting"
    assert result.seconds < 3.5


@pytest.mark.parametrize(("text", "voice", "truth"), [("喂？", "cmn", "person"), ("hello?", "en-us", "person"),
                                                      (CMN_MACHINE, "cmn", "machine"), (EN_MACHINE, "en-us", "machine")])
@pytest.mark.parametrize("codec", ["PCMA", "PCMU"])
def test_noisy_g711_line(speech_tools: None, text: str, voice: str, truth: str, codec: str) -> None:
    pcm = g711_round_trip(mix(silence(0.6) + said(text, voice) + silence(3.0), dbfs=-45.0), codec)
    result = detect(bytes(FRAME_BYTES * 10) + pcm)  # 0.2 s without packets first
    assert result is not None and result.verdict == truth


# --- the rules, on synthetic sound ------------------------------------------------------------

def test_decisions_are_frame_exact() -> None:
    # a 300 ms word from 1.0 s: person once 800 ms have passed since its last voiced frame
    result = detect(on_line(silence(1.0) + burst(300) + silence(2.0)))
    assert result == AmdResult("person", 2.1, "short-greeting")


def test_speech_longer_than_the_longest_greeting_is_a_machine() -> None:
    result = detect(on_line(silence(1.0) + burst(4000)))
    assert result == AmdResult("machine", 3.52, "long-greeting")  # 1.0 s + 2.5 s + one frame


def test_many_words_without_a_long_pause_is_a_machine() -> None:
    words = (burst(120) + silence(0.2)) * 5
    result = detect(on_line(silence(0.5) + words + silence(2.0)))
    assert result is not None and (result.verdict, result.reason) == ("machine", "max-words")


def test_clicks_are_not_words() -> None:
    clicks = (burst(40) + silence(0.5)) * 6
    assert detect(on_line(clicks + silence(2.0))) == AmdResult("person", 3.5, "initial-silence")


def test_initial_silence_verdict_is_a_setting() -> None:
    assert detect(silence(5.0)) == AmdResult("person", 3.5, "initial-silence")
    machine = AmdSettings(initial_silence_verdict="machine", initial_silence_ms=3000)
    assert detect(silence(5.0), machine) == AmdResult("machine", 3.0, "initial-silence")


def test_line_noise_after_missing_packets_is_not_speech() -> None:
    # the runner feeds zeros until the first packet: the noise that then arrives is the floor
    assert detect(silence(0.4) + noise(5.0, dbfs=-40.0)) == AmdResult("person", 3.5, "initial-silence")


def test_speech_in_line_noise_is_found() -> None:
    pcm = mix(silence(1.0) + burst(300, dbfs=-25.0) + silence(2.0), dbfs=-40.0)
    result = detect(pcm)
    assert result is not None and result.reason == "short-greeting" and result.seconds == pytest.approx(2.1, abs=0.06)


def test_timeout_decides_on_what_was_heard() -> None:
    quiet = MachineDetector()
    assert quiet.feed(on_line(silence(1.0))) is None
    assert quiet.timeout() == AmdResult("person", 1.0, "timeout-silence")

    talking = MachineDetector()
    assert talking.feed(on_line(silence(0.5) + burst(1000))) is None
    assert talking.timeout() == AmdResult("person", 1.5, "timeout")
    assert talking.result == talking.timeout() == talking.feed(burst(3000))


def test_feed_takes_any_packet_size() -> None:
    pcm = on_line(silence(1.0) + burst(300) + silence(2.0))
    detector = MachineDetector()
    results = [detector.feed(pcm[i:i + 480]) for i in range(0, len(pcm), 480)]  # ptime 30 ms
    assert next(r for r in results if r is not None) == detect(pcm)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="after_greeting_silence_ms"):
        AmdSettings(after_greeting_silence_ms=0)
    with pytest.raises(ValueError, match="beep_min_hz"):
        AmdSettings(beep_min_hz=3000.0)


# --- GreetingEnd ------------------------------------------------------------------------------

def started_at(pcm: bytes, settings: AmdSettings = DEFAULTS) -> tuple[float, str | None]:
    """When GreetingEnd says to start the message, in seconds of ``pcm``, and why."""
    waiter = GreetingEnd(settings)
    for frame in frames(pcm):
        if waiter.feed(frame):
            break
    return waiter.seconds, waiter.reason


@pytest.mark.parametrize("freq", [400.0, 1000.0, 2000.0])
def test_message_starts_when_the_beep_ends(speech_tools: None, freq: float) -> None:
    greeting_rest = said(EN_MACHINE, "en-us")[len(silence(2.5)):]
    before_beep = greeting_rest + silence(0.4) + tone(0.5, freq=freq, dbfs=-25.0)
    at, reason = started_at(mix(before_beep + silence(3.0), dbfs=-50.0))
    assert reason == "beep"
    assert seconds(before_beep) <= at <= seconds(before_beep) + 0.04


def test_message_starts_after_silence_when_there_is_no_beep(speech_tools: None) -> None:
    greeting_rest = said(CMN_MACHINE, "cmn")[len(silence(2.5)):]
    at, reason = started_at(greeting_rest + silence(3.0))
    assert reason == "silence"
    assert at == pytest.approx(speech_end_seconds(greeting_rest) + 1.5, abs=0.06)


def test_a_short_blip_is_not_the_beep() -> None:
    pcm = on_line(burst(500) + silence(0.3) + tone(0.1, freq=1000.0) + silence(3.0))
    at, reason = started_at(pcm)
    assert reason == "silence" and at == pytest.approx(0.9 + 1.5, abs=0.04)


def test_a_beep_in_two_tones_ends_after_the_second() -> None:
    beeps = tone(0.2, freq=1000.0) + tone(0.2, freq=1400.0)
    at, reason = started_at(on_line(burst(500) + silence(0.3) + beeps + silence(2.0)))
    assert reason == "beep" and 1.2 <= at <= 1.24


def test_waiting_for_the_greeting_end_has_a_limit() -> None:
    endless = on_line(burst(300) * 40)  # 12 s of sound, never silent
    assert started_at(endless, AmdSettings(max_greeting_wait_ms=5000)) == (5.0, "max-wait")
