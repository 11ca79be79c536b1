"""Talk analytics on synthetic channels: tone bursts on 20 ms frame boundaries make every figure exact."""

from __future__ import annotations

import numpy as np
import pytest

from recordings.talk import speech_segments, talk_stats
from tests.support.audio import g711_round_trip, noise, silence, tone


def channel(total: float, *bursts: tuple[float, float], rate: int = 8000) -> np.ndarray:
    """``total`` seconds of digital silence with a -20 dBFS tone from start to end of each burst."""
    pcm = np.zeros(round(total * rate), dtype=np.int16)
    for start, end in bursts:
        n = round((end - start) * rate)
        t = np.arange(n) / rate
        pcm[round(start * rate):round(start * rate) + n] = (32767 * 0.1 * np.sqrt(2) * np.sin(2 * np.pi * 440 * t))
    return pcm


def test_talk_silence_and_overtalk_are_counted_per_frame() -> None:
    caller = channel(4.0, (1.0, 2.0))
    agent = channel(4.0, (1.5, 3.0))
    stats = talk_stats(caller, agent)
    assert stats.duration_s == 4.0
    assert stats.caller_talk_s == 1.0 and stats.agent_talk_s == 1.5
    assert stats.overtalk_s == 0.5  # 1.5-2.0
    assert stats.silence_s == 2.0  # 0-1 and 3-4
    assert stats.silence_ratio == 0.5 and stats.overtalk_ratio == 0.125
    assert stats.agent_talk_ratio == 0.6  # 1.5 / (1.5 + 1.0)
    assert stats.speech_segments == {"caller": [(1.0, 2.0)], "agent": [(1.5, 3.0)]}


def test_only_the_part_after_the_answer_counts() -> None:
    caller = channel(6.0, (0.5, 1.0), (3.0, 4.0))  # talks to the IVR, then to the agent
    agent = channel(6.0, (0.2, 1.4), (2.0, 2.8))  # the IVR's prompt, then the agent
    stats = talk_stats(caller, agent, start_s=1.8)
    assert stats.duration_s == 4.2
    assert stats.caller_talk_s == 1.0 and stats.agent_talk_s == 0.8
    assert stats.silence_s == 2.4 and stats.overtalk_s == 0.0
    assert stats.speech_segments == {"caller": [(3.0, 4.0)], "agent": [(2.0, 2.8)]}


def test_an_utterance_running_across_the_answer_is_cut_there() -> None:
    stats = talk_stats(channel(4.0, (1.0, 2.5)), channel(4.0), start_s=2.0)
    assert stats.caller_talk_s == 0.5
    assert stats.speech_segments["caller"] == [(2.0, 2.5)]


def test_speech_still_going_at_the_end_is_counted() -> None:
    stats = talk_stats(channel(3.0, (2.0, 3.0)), channel(3.0))
    assert stats.caller_talk_s == 1.0 and stats.speech_segments["caller"] == [(2.0, 3.0)]


def test_without_speech_there_is_no_talk_ratio() -> None:
    line = np.frombuffer(g711_round_trip(noise(5.0, dbfs=-65.0)), dtype="<i2")  # hiss and idle codes: not talk
    stats = talk_stats(line, line)
    assert stats.caller_talk_s == stats.agent_talk_s == 0.0
    assert stats.silence_ratio == 1.0 and stats.overtalk_ratio == 0.0
    assert stats.agent_talk_ratio is None
    assert stats.speech_segments == {"caller": [], "agent": []}


@pytest.mark.parametrize("start_s", [0.0, 9.0])
def test_nothing_counted_has_no_ratios(start_s: float) -> None:
    pcm = channel(2.0, (0.5, 1.5)) if start_s else np.zeros(0, dtype=np.int16)
    stats = talk_stats(pcm, pcm, start_s=start_s)
    assert stats.duration_s == 0.0
    assert stats.silence_ratio is None and stats.overtalk_ratio is None and stats.agent_talk_ratio is None


def test_a_shorter_channel_is_silent_where_it_has_no_audio() -> None:
    stats = talk_stats(channel(2.0, (0.5, 1.5)), channel(4.0, (2.5, 3.5)))
    assert stats.duration_s == 4.0
    assert (stats.caller_talk_s, stats.agent_talk_s, stats.silence_s) == (1.0, 1.0, 2.0)


def test_clicks_are_not_talk() -> None:
    caller = channel(3.0, (1.0, 1.04), (2.0, 2.04))  # 40 ms: shorter than the VAD's 80 ms minimum
    assert talk_stats(caller, channel(3.0)).caller_talk_s == 0.0


def test_other_sample_rates_use_20_ms_frames_too() -> None:
    stats = talk_stats(channel(3.0, (1.0, 2.0), rate=16000), channel(3.0, rate=16000), rate=16000)
    assert stats.duration_s == 3.0 and stats.caller_talk_s == 1.0


def test_speech_segments_of_one_channel() -> None:
    pcm = np.frombuffer(silence(0.5) + tone(0.6) + silence(1.0) + tone(0.4) + silence(0.5), dtype="<i2")
    assert speech_segments(pcm) == [(0.5, 1.1), (2.1, 2.5)]
