"""The VAD on synthetic frames: decisions are counted in frames, so no clock is involved."""

from __future__ import annotations

import pytest

from asr.vad import FRAME_BYTES, SILENCE_DBFS, Vad, VadConfig, VadEvent, frame_energy_dbfs
from sip_bridge.g711 import SILENCE, alaw_to_pcm, ulaw_to_pcm
from tests.support.audio import frames, g711_round_trip, noise, silence, tone


def run(vad: Vad, pcm: bytes) -> list[tuple[int, VadEvent]]:
    events = []
    for frame in frames(pcm):
        event = vad.process(frame)
        if event is not None:
            events.append((vad.frame_index, event))
    return events


def test_energy_of_digital_silence_and_full_scale() -> None:
    assert frame_energy_dbfs(bytes(FRAME_BYTES)) == SILENCE_DBFS
    assert frame_energy_dbfs(tone(0.02, dbfs=-20.0)) == pytest.approx(-20.0, abs=0.5)


def test_digital_silence_never_starts_speech() -> None:
    vad = Vad()
    assert run(vad, silence(10.0)) == []
    assert not vad.in_speech


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_g711_idle_codes_never_start_speech(codec: str) -> None:
    decode = ulaw_to_pcm if codec == "PCMU" else alaw_to_pcm
    idle = decode(bytes([SILENCE[codec]]) * 8000 * 5)
    # idle code jitter: the smallest codes either side of zero, as a quiet line delivers them
    jitter = g711_round_trip(noise(5.0, dbfs=-75.0), codec)
    assert run(Vad(), idle + jitter) == []


@pytest.mark.parametrize("dbfs", [-70.0, -60.0, -52.0])
def test_low_noise_never_starts_speech(dbfs: float) -> None:
    assert run(Vad(), noise(10.0, dbfs=dbfs)) == []


def test_tone_burst_starts_and_ends_an_utterance() -> None:
    cfg = VadConfig()
    vad = Vad(cfg)
    events = run(vad, silence(1.0) + tone(0.6) + silence(1.0))
    burst_first, burst_last = 50, 79  # frames of the tone
    assert events == [(burst_first + cfg.start_frames - 1, VadEvent.START),
                      (burst_last + cfg.hangover_frames, VadEvent.END)]
    assert vad.speech_start_frame == burst_first
    assert vad.last_loud_frame == burst_last
    assert not vad.end_forced


def test_bursts_over_low_noise() -> None:
    pcm = noise(1.0, dbfs=-60.0)
    for _ in range(3):
        pcm += tone(0.4, dbfs=-25.0) + noise(1.0, dbfs=-60.0, seed=len(pcm))
    events = run(Vad(), pcm)
    assert [e for _, e in events] == [VadEvent.START, VadEvent.END] * 3


def test_clicks_are_too_short_to_be_speech() -> None:
    cfg = VadConfig()
    click = tone((cfg.start_frames - 1) * 0.02, dbfs=-6.0)
    pcm = silence(1.0)
    for _ in range(10):
        pcm += click + silence(0.3)
    assert run(Vad(cfg), pcm) == []


def test_a_pause_shorter_than_the_hangover_does_not_split_an_utterance() -> None:
    cfg = VadConfig()
    gap = (cfg.hangover_frames - 2) * 0.02
    events = run(Vad(cfg), silence(1.0) + tone(0.3) + silence(gap) + tone(0.3) + silence(1.0))
    assert [e for _, e in events] == [VadEvent.START, VadEvent.END]


def test_a_pause_longer_than_the_hangover_splits_it() -> None:
    cfg = VadConfig()
    gap = (cfg.hangover_frames + 5) * 0.02
    events = run(Vad(cfg), silence(1.0) + tone(0.3) + silence(gap) + tone(0.3) + silence(1.0))
    assert [e for _, e in events] == [VadEvent.START, VadEvent.END, VadEvent.START, VadEvent.END]


def test_steady_loud_noise_is_absorbed_into_the_floor() -> None:
    # noise that is there from the first frame is the floor, not speech
    assert run(Vad(), noise(5.0, dbfs=-35.0)) == []


def test_noise_appearing_later_ends_within_the_floor_window() -> None:
    vad = Vad()
    events = run(vad, silence(1.0) + noise(6.0, dbfs=-35.0))
    assert [e for _, e in events] == [VadEvent.START, VadEvent.END]
    assert events[1][0] - events[0][0] < 150  # the floor caught up within ~3 s
    assert not vad.in_speech


def test_endless_speech_is_cut_at_max_speech() -> None:
    cfg = VadConfig(max_speech_ms=1000)
    vad = Vad(cfg)
    # a warbling tone keeps every frame loud; the floor stays at the silence before it
    pcm = silence(0.5) + b"".join(tone(0.1, freq=300 + 50 * (i % 5)) for i in range(15))
    for frame in frames(pcm):
        event = vad.process(frame)
        if event is VadEvent.END:
            break
    assert event is VadEvent.END
    assert vad.end_forced and vad.speech_start_frame is not None
    assert vad.frame_index - vad.speech_start_frame + 1 == cfg.max_speech_frames


def test_reset_forgets_the_utterance() -> None:
    vad = Vad()
    run(vad, silence(1.0) + tone(0.2))
    assert vad.in_speech
    vad.reset()
    assert not vad.in_speech
    assert run(vad, silence(1.0)) == []


def test_timing_is_frame_counted() -> None:
    """The same audio gives the same decisions whatever the pace it is fed at."""
    pcm = silence(0.7) + tone(0.5) + silence(0.7)
    assert run(Vad(), pcm) == run(Vad(), pcm)
