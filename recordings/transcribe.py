"""Transcription of a finished recording with vosk, one channel at a time.

Synchronous and CPU-bound: run it in a worker thread, never on the event
loop. Audio is fed in fixed 0.5 s chunks, never in whatever sizes the file
decoder happens to return, so the endpoints vosk finds, and therefore the
words, are the same run after run.

Vocabulary mode (a vosk grammar of the given phrases) is what the QA rules
need: free-mode recognition of the small Korean model is poor on telephone
audio. Measured with espeak-ng Korean speech through G.711 at 130/150/175
words per minute, PCMA and PCMU, with ``DEFAULT_VOCABULARY`` plus the phrases
of ``recordings.qa_forms.DEFAULT_FORM``:

* free mode turns "안녕하세요 고객님 이 통화는 녹음됩니다" into "한 염파 매겨 록 리 ...";
* in vocabulary mode "안녕하세요", "녹음 됩니다" (said as 녹음됩니다), "행복한
  하루 되세요" (said on its own), "환불" and "몰라요" are found when said;
* the model has no ``[unk]`` word, so speech outside the vocabulary is
  decoded as the nearest vocabulary words, at confidences up to 1.0 that do
  not tell them apart: short words come back in calls that never said them
  ("바보" in "환불 받고 싶어요"; "녹음" for espeak's "고객님"; "녹음 됩니다"
  for espeak's "감사합니다", which is itself never recognised). Rules for
  things that must *not* be said therefore listen for phrases measured not to
  appear by accident (see DEFAULT_FORM), and the vocabulary carries common
  call-center words so that ordinary speech has something closer to land on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import numpy as np
import vosk

from asr.models import UNK, usable_phrases
from asr.vad import SAMPLE_RATE

from .qa_forms import Speaker
from .qa_rules import Word
from .talk import speech_segments

__all__ = ["CHUNK_SECONDS", "DEFAULT_VOCABULARY", "transcribe", "transcribe_channel"]

logger = logging.getLogger(__name__)

#: Audio is fed to vosk in chunks of this length (fixed, so the result does not depend on I/O sizes).
CHUNK_SECONDS = 0.5
_CHUNK_BYTES = int(CHUNK_SECONDS * SAMPLE_RATE) * 2
#: Audio decoded before the VAD's first loud frame of a segment (as the live ASR's pre-roll) and
#: after its last voiced one, so first and last syllables are whole.
PAD_BEFORE_S = 0.3
PAD_AFTER_S = 0.3

#: Words a call-center conversation is mostly made of, for vocabulary mode together with the
#: tenant's own vocabulary and every phrase its QA forms look for. Without them the grammar
#: would hold little more than the QA phrases, and everything said would be heard as one of
#: those. Each is a word of the bundled Korean model (phrases with an unknown word are dropped).
DEFAULT_VOCABULARY: tuple[str, ...] = (
    "고객님", "상담원", "고객센터", "환불", "주문", "배송", "취소", "결제", "변경", "교환", "반품", "해지", "요금",
    "카드", "문의", "확인", "접수", "처리", "완료", "통화", "내용이", "전화번호", "본인", "이름", "네", "예",
    "아니요", "잠시만요", "기다려 주세요", "확인해 드리겠습니다", "죄송합니다", "되었습니다", "입니다", "됩니다",
    "있습니다", "주세요", "싶어요", "받고", "언제", "오늘", "내일",
)


def _spans(pcm: np.ndarray) -> list[tuple[int, int]]:
    """Sample ranges to decode: the VAD's speech segments, padded, overlapping ones merged."""
    before, after = int(PAD_BEFORE_S * SAMPLE_RATE), int(PAD_AFTER_S * SAMPLE_RATE)
    spans: list[tuple[int, int]] = []
    for start_s, end_s in speech_segments(pcm, rate=SAMPLE_RATE):
        start = max(0, round(start_s * SAMPLE_RATE) - before)
        end = min(len(pcm), round(end_s * SAMPLE_RATE) + after)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def _words(result: str, speaker: Speaker, shift: float) -> list[Word]:
    return [Word(word=w["word"], start=round(float(w["start"]) + shift, 3), end=round(float(w["end"]) + shift, 3),
                 conf=float(w["conf"]), speaker=speaker)
            for w in json.loads(result).get("result", []) if w["word"] != UNK]


def _recognizer(model: vosk.Model, vocabulary: list[str] | None) -> vosk.KaldiRecognizer | None:
    """A recogniser for the vocabulary (None: free mode); None when no phrase of it is usable with the model."""
    if vocabulary is None:
        rec = vosk.KaldiRecognizer(model, float(SAMPLE_RATE))
    else:
        kept, dropped = usable_phrases(model, vocabulary)
        if dropped:
            logger.info("vocabulary phrases with words the model does not know are not listened for",
                        extra={"dropped": dropped})
        if not kept:  # and an empty grammar crashes vosk 0.3.45 (see asr.engine)
            logger.warning("no vocabulary phrase is usable with this model: nothing to listen for")
            return None
        rec = vosk.KaldiRecognizer(model, float(SAMPLE_RATE), json.dumps(kept + [UNK], ensure_ascii=False))
    rec.SetWords(True)
    return rec


def transcribe_channel(model: vosk.Model, pcm: np.ndarray, speaker: Speaker, *, vocabulary: list[str] | None,
                       on_progress: Callable[[float], None] | None = None) -> list[Word]:
    """The words of one channel (16-bit PCM at 8 kHz), times in seconds from the start of ``pcm``.

    ``vocabulary``: grammar mode over its phrases the model can say (the
    others are logged and ignored; with none left nothing can be recognised
    and the result is empty); None: free mode. ``[unk]`` (speech outside the
    grammar, for models that have it) is left out of the result.

    Only the VAD's speech segments (padded by ``PAD_BEFORE_S`` / ``PAD_AFTER_S``)
    are decoded, each ending with ``FinalResult()``, in ``CHUNK_SECONDS`` chunks
    with ``Result()`` taken at every endpoint vosk finds inside. ``on_progress``
    gets the fraction of that audio decoded after every chunk, and 1.0 at the end.
    """
    rec = _recognizer(model, vocabulary)
    spans = _spans(pcm) if rec is not None else []
    audio = np.ascontiguousarray(pcm, dtype="<i2").tobytes()
    total = sum(end - start for start, end in spans)
    fed = 0  # samples given to the recogniser: its word times count in those, from its creation
    words: list[Word] = []
    for start, end in spans:
        assert rec is not None
        shift = (start - fed) / SAMPLE_RATE
        for offset in range(start * 2, end * 2, _CHUNK_BYTES):
            chunk = audio[offset:min(offset + _CHUNK_BYTES, end * 2)]
            if rec.AcceptWaveform(chunk):  # an endpoint inside the segment: that utterance is final
                words.extend(_words(rec.Result(), speaker, shift))
            fed += len(chunk) // 2
            if on_progress is not None and fed < total:
                on_progress(fed / total)
        words.extend(_words(rec.FinalResult(), speaker, shift))
    if on_progress is not None:
        on_progress(1.0)
    return words


def transcribe(model: vosk.Model, caller_pcm: np.ndarray, agent_pcm: np.ndarray, *, vocabulary: list[str] | None,
               on_progress: Callable[[float], None] | None = None) -> list[Word]:
    """Both channels' words, merged by start time; ``on_progress`` runs from 0 to 1 over both channels."""
    total = len(caller_pcm) + len(agent_pcm)
    caller_share = len(caller_pcm) / total if total else 0.5

    def report(base: float, share: float) -> Callable[[float], None] | None:
        if on_progress is None:
            return None
        callback = on_progress
        return lambda fraction: callback(base + share * fraction)

    words = transcribe_channel(model, caller_pcm, "caller", vocabulary=vocabulary,
                               on_progress=report(0.0, caller_share))
    words += transcribe_channel(model, agent_pcm, "agent", vocabulary=vocabulary,
                                on_progress=report(caller_share, 1.0 - caller_share))
    return sorted(words, key=lambda w: w.start)
