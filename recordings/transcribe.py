"""Transcription of a finished recording with vosk, one channel at a time.

Synchronous and CPU-bound: run it in a worker thread, never on the event loop.

Only speech is decoded: the VAD's segments of the channel (:func:`recordings.talk.speech_segments`,
the detector the live ASR uses), padded, each ended with ``FinalResult()``, fed
in fixed 0.5 s chunks. Decoding the whole channel instead made the words depend
on how long the silences around them were (most likely because vosk's feature
normalisation and speaker adaptation then run over them): with espeak speech, the same three
utterances (agent "안녕하세요 고객님 이 통화는 녹음됩니다", caller "환불 받고
싶어요", agent "행복한 하루 보내세요") laid out with 0.5-2 s of lead and
0.8-1.5 s gaps, at three speeds, two codecs, with and without Opus, gave the
disclosure in 63/72 layouts, the closing in 57/72 and "환불" at confidence
0.6 or more in 68/72; decoded by segments, all three in 72/72. Fixed chunks
keep the result independent of the sizes the file decoder returns.

Not everything is repeatable: Kaldi dithers the audio (random noise, its
default, which the bundled model's mfcc.conf does not turn off), so
confidences vary by a few hundredths between runs and a doubtful word can
change (free mode: whole words). The QA answers of the test conversation
were the same in 60 runs (10 for each of three speeds and two codecs).

Vocabulary mode (a vosk grammar) is what the QA rules need: free mode turns
espeak's "안녕하세요 고객님 이 통화는 녹음됩니다" into "한 염파 매겨 록 ...".
Measured with ``DEFAULT_VOCABULARY`` + the phrases of ``DEFAULT_FORM``,
espeak-ng speech at 130/150/175 words per minute through PCMA/PCMU, with and
without an Opus round trip, one utterance per channel (min_conf 0.6):

* "안녕하세요" 24/24 when said, 1 false hit in 300 other utterances;
  "환불" 24/24, 1/300; "몰라요" 20/24, 9/300 (8 of them on "주문한 물건이
  아직 안 왔어요");
* "녹음 됩니다" 25/36, but also heard in espeak's "감사합니다" and "네
  알겠습니다" every time; "감사합니다" itself is never recognised from espeak;
* "하루 보내세요" / "하루 되세요" found in "행복한/좋은 하루 보내세요" always,
  in "감사합니다 좋은 하루 되세요" 9/12;
* the model has no ``[unk]`` word, so speech outside the vocabulary lands on
  the nearest vocabulary words, often at confidence 1.0: "바보" came back in
  47 of 324 utterances that never said it, "녹음" alone in over a quarter.
  Hence DEFAULT_FORM's choice of phrases, and a vocabulary of common
  call-center words for ordinary speech to land on instead.
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
#: Measured as ``list(DEFAULT_VOCABULARY) + phrases_of(DEFAULT_FORM)``: every word added changes
#: what is heard elsewhere (adding "좋은" and "행복한" lost "하루 보내세요" at 175 words per
#: minute in 13 of 24 layouts), so changes here need the measurement redone.
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
