"""The result of one utterance, built from vosk's JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .matching import match_phrase
from .models import UNK

Word = tuple[str, float, float, float]  # (word, start_s, end_s, confidence)


@dataclass(frozen=True, slots=True)
class Recognition:
    """What the caller said in one utterance.

    ``text`` is "" when the utterance decoded to nothing (a mumble, a cough):
    that is a no-match, not a no-input. Word times are seconds from the first
    frame fed to the session (paused frames count), so they point into the call.
    ``speech_ended`` is the event-loop time at which the VAD decided the
    caller had stopped, ``latency`` the seconds from then until this result
    was available on the loop.
    """

    text: str
    confidence: float
    words: list[Word] = field(default_factory=list)
    phrase: str | None = None
    speech_ended: float = 0.0
    latency: float = 0.0


def parse_vosk_result(raw: str, *, time_offset: float) -> tuple[str, float, list[Word]]:
    """(text, mean word confidence, words) from a vosk FinalResult with words enabled.

    ``[unk]`` (the grammar's "anything else") is left out of the text and the
    words: it is not something the caller said that we could act on.
    """
    data = json.loads(raw)
    words: list[Word] = []
    for item in data.get("result", []):
        word = str(item.get("word", ""))
        if not word or word == UNK:
            continue
        words.append((word, float(item.get("start", 0.0)) + time_offset, float(item.get("end", 0.0)) + time_offset,
                      float(item.get("conf", 0.0))))
    if words:
        text = " ".join(w[0] for w in words)
    else:  # words disabled or all [unk]: fall back on the text itself
        text = " ".join(t for t in str(data.get("text", "")).split() if t != UNK)
    confidence = sum(w[3] for w in words) / len(words) if words else 0.0
    return text, confidence, words


def build_recognition(segments: list[tuple[str, float]], *, phrases: dict[str, str] | None, speech_ended: float,
                      now: float) -> Recognition:
    """A :class:`Recognition` from the vosk results of an utterance's segments, in order.

    ``segments``: (raw FinalResult JSON, time offset to add to its word times);
    an utterance usually has one, more when it was finalised early at a pause
    and went on. ``phrases`` maps normalised phrase -> phrase as the caller
    gave it (grammar mode).
    """
    texts: list[str] = []
    words: list[Word] = []
    for raw, offset in segments:
        text, _, seg_words = parse_vosk_result(raw, time_offset=offset)
        if text:
            texts.append(text)
        words.extend(seg_words)
    text = " ".join(texts)
    confidence = sum(w[3] for w in words) / len(words) if words else 0.0
    phrase = None
    if phrases is not None:
        matched = match_phrase(text, list(phrases))
        phrase = phrases[matched] if matched is not None else None
    return Recognition(text=text, confidence=confidence, words=words, phrase=phrase, speech_ended=speech_ended,
                       latency=max(0.0, now - speech_ended))
