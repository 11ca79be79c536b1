"""Vosk recognizers, and a pool that keeps free-mode ones warm between calls.

A new free-mode recognizer is slow for its first seconds of speech: vosk
builds its decoding-graph caches (on-the-fly composition of the lexicon and
language model) per recognizer. Measured with the small Korean model: a fresh
recognizer decodes an utterance 4-5x slower than one that has already heard
speech. Free-mode sessions therefore hand their recognizer back to the pool
when they close (after ``Reset()``) and the next session takes it. Grammar
recognizers are built per grammar and cost well under a millisecond: they are
not pooled.

Everything here runs in the engine's worker threads.
"""

from __future__ import annotations

import threading

import vosk

from .vad import SAMPLE_RATE


class Recognizer:
    """A vosk recognizer plus the count of samples it has been fed.

    Vosk's word times count from the recognizer's creation (``Reset`` and
    ``FinalResult`` do not restart them), so a reused recognizer's times need
    this count to be turned into times within a session.
    """

    __slots__ = ("rec", "samples", "grammar")

    def __init__(self, model: vosk.Model, grammar: str | None) -> None:
        if grammar is None:
            self.rec = vosk.KaldiRecognizer(model, float(SAMPLE_RATE))
        else:
            self.rec = vosk.KaldiRecognizer(model, float(SAMPLE_RATE), grammar)
        self.rec.SetWords(True)
        self.grammar = grammar
        self.samples = 0

    def accept(self, audio: bytes) -> None:
        if audio:
            self.rec.AcceptWaveform(audio)
            self.samples += len(audio) // 2

    def final(self) -> str:
        return str(self.rec.FinalResult())

    def reset(self) -> None:
        self.rec.Reset()


class RecognizerPool:
    """Hands out recognizers; keeps up to ``max_idle`` warm free-mode ones for reuse."""

    def __init__(self, model: vosk.Model, max_idle: int) -> None:
        self._model = model
        self._max_idle = max_idle
        self._idle: list[Recognizer] = []
        self._lock = threading.Lock()
        self.created = 0
        self.reused = 0
        self._closed = False

    def acquire(self, grammar: str | None) -> Recognizer:
        with self._lock:
            if grammar is None and self._idle:
                self.reused += 1
                return self._idle.pop()
            self.created += 1
        return Recognizer(self._model, grammar)

    def release(self, recognizer: Recognizer) -> None:
        """Take a recognizer back (free mode: reset and keep it if there is room; else let it be freed)."""
        if recognizer.grammar is not None:
            return
        recognizer.reset()
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(recognizer)

    @property
    def idle(self) -> int:
        return len(self._idle)

    def clear(self) -> None:
        """Drop the idle recognizers and keep no more (the engine is closing)."""
        with self._lock:
            self._closed = True
            self._idle.clear()
