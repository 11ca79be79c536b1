"""The per-process speech engine: one vosk model, one worker pool, many sessions."""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import sys
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from types import TracebackType

import vosk

from .errors import AsrError
from .matching import normalize_phrase
from .models import UNK, knows_word, load_model, usable_phrases
from .recognizers import RecognizerPool
from .session import DEFAULT_BATCH_MS, SpeechSession
from .stats import AsrStats, asr_stats
from .vad import VadConfig

logger = logging.getLogger(__name__)

__all__ = ["SpeechEngine", "SpeechSession"]

DISABLED_WARNING = ("speech recognition disabled: no vosk model configured (set CALLCENTER_ASR_MODEL or the "
                    "tenant's asr_model); DTMF menus keep working")
WORKER_NAME = b"asr"
"""The recognizer threads' name in the OS (``top -H``, ``ps -L``, ``/proc/PID/task/*/comm``)."""
_PR_SET_NAME = 15


def _name_worker() -> None:
    """Name the pool's thread in the OS too, so a busy or stuck recognizer pool is found at a glance
    (Python 3.11 names threads for itself only)."""
    if sys.platform.startswith("linux"):
        with suppress(Exception):
            ctypes.CDLL(None).prctl(_PR_SET_NAME, WORKER_NAME, 0, 0, 0)


class SpeechEngine:
    """Loads the model and decodes every session's audio in its own thread pool.

    Recognition never runs on the event loop nor in the loop's default
    executor (that one serves file and DNS work that must not queue behind
    decoding). Without a model path the engine is simply unavailable.

    ``timeout``: the pool counts as **wedged** while an operation handed to it
    (making a recognizer, decoding a batch, a final result) has not finished
    that many seconds later, whether it waits for a worker (all busy) or a
    worker is stuck in it. Its session then gives no results (see
    :class:`SpeechSession`), :attr:`wedged` is True until that operation
    finishes, and callers (the IVR) take keys only meanwhile. One warning when
    it starts, one line when it ends. None: no limit.
    """

    def __init__(self, model_path: Path | None, *, workers: int | None = None,
                 vad_config: VadConfig | None = None, batch_ms: int = DEFAULT_BATCH_MS,
                 warm_free_recognizers: int | None = None, free_early_final_ms: int | None = 100,
                 timeout: float | None = None) -> None:
        self.model_path = Path(model_path) if model_path is not None else None
        self.workers = workers or os.cpu_count() or 1
        self.timeout = timeout
        self._stalled_ops = 0
        # idle free-mode recognizers kept warm for the next call (~40 MB each with the small
        # Korean model; a cold one decodes its first utterances several times slower)
        self.warm_free_recognizers = 2 * self.workers if warm_free_recognizers is None else warm_free_recognizers
        # free mode: finalise at this much silence, before the hangover ends (see SpeechSession); None: off
        self.free_early_final_ms = free_early_final_ms
        self.vad_config = vad_config
        self.batch_ms = batch_ms
        self._model: vosk.Model | None = None
        self._recognizers: RecognizerPool | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._has_unk = False
        self._started = False
        self._closed = False
        self._sessions: weakref.WeakSet[SpeechSession] = weakref.WeakSet()

    @property
    def available(self) -> bool:
        """True once a model is loaded and until :meth:`close`."""
        return self._model is not None and self._pool is not None and not self._closed

    @property
    def model(self) -> vosk.Model | None:
        return self._model

    @property
    def wedged(self) -> bool:
        """An operation has been in the pool longer than ``timeout`` and has not finished yet."""
        return self._stalled_ops > 0

    def _stall(self, stalled: bool) -> None:
        """A session's operation passed ``timeout`` (True), or such an operation finished (False)."""
        self._stalled_ops += 1 if stalled else -1
        if stalled and self._stalled_ops == 1:
            logger.warning("speech recognition wedged: an operation got no answer from the recognizer pool within "
                           "%.1f s; menus take keys only until it answers", self.timeout,
                           extra={"workers": self.workers, "model_path": str(self.model_path)})
        elif not stalled and self._stalled_ops == 0:
            logger.info("speech recognition answers again", extra={"model_path": str(self.model_path)})

    async def start(self) -> None:
        """Load the model in the engine's pool (about 1.6 s); raises AsrError on a bad model path.

        Without a model path, logs one warning and leaves the engine unavailable.
        """
        if self._started:
            return
        self._started = True
        if self.model_path is None:
            logger.warning(DISABLED_WARNING)
            return
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="asr", initializer=_name_worker)
        try:
            self._model = await asyncio.get_running_loop().run_in_executor(self._pool, load_model, self.model_path)
        except BaseException:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            raise
        self._recognizers = RecognizerPool(self._model, max_idle=self.warm_free_recognizers)
        self._has_unk = knows_word(self._model, UNK)
        if not self._has_unk:
            logger.info("the vosk model has no [unk] word: in grammar mode, speech outside the phrases is "
                        "recognised as the closest phrase", extra={"model_path": str(self.model_path)})
        logger.info("speech recognition ready", extra={"model_path": str(self.model_path), "workers": self.workers})

    def session(self, phrases: list[str] | None = None, *, call_id: str | None = None,
                on_speech_start: Callable[[], None] | None = None) -> SpeechSession:
        """A recognition stream for one call (must be called on the event loop).

        ``phrases``: grammar mode, the recogniser only considers these phrases
        (those with a word outside the model's vocabulary are dropped and
        logged); None: free mode (any speech, much slower and less accurate).
        ``on_speech_start`` is called on the loop as soon as the VAD decides
        the caller started talking (barge-in).
        """
        if not self.available:
            raise AsrError("speech recognition is not available (no model loaded, or the engine is closed)")
        assert self._model is not None and self._pool is not None and self._recognizers is not None
        grammar: str | None = None
        phrase_map: dict[str, str] | None = None
        if phrases is not None:
            kept, dropped = usable_phrases(self._model, phrases)
            if dropped:
                logger.info("phrases not in the model's vocabulary are not listened for",
                            extra={"call_id": call_id, "dropped": dropped})
            if not kept:
                logger.warning("no usable phrase: this menu can only be answered by DTMF",
                               extra={"call_id": call_id})
            phrase_map = {}
            for phrase in phrases:
                norm = normalize_phrase(phrase)
                if norm in kept:
                    phrase_map.setdefault(norm, phrase)
            # always with [unk]: a model without it just ignores the word, and an empty
            # grammar ("[]") crashes vosk 0.3.45 (segmentation fault) when no phrase is usable
            grammar = json.dumps(kept + [UNK], ensure_ascii=False)
        session = SpeechSession(recognizers=self._recognizers, pool=self._pool, grammar=grammar, phrases=phrase_map,
                                call_id=call_id, on_speech_start=on_speech_start, vad_config=self.vad_config,
                                batch_ms=self.batch_ms, on_close=self._sessions.discard,
                                early_final_ms=self.free_early_final_ms if grammar is None else None,
                                timeout=self.timeout, on_stall=self._stall)
        self._sessions.add(session)
        return session

    @property
    def idle_free_recognizers(self) -> int:
        """Warm free-mode recognizers waiting for the next free-mode session."""
        return self._recognizers.idle if self._recognizers is not None else 0

    @property
    def live_sessions(self) -> int:
        """Open sessions of this engine."""
        return len(self._sessions)

    def stats(self) -> AsrStats:
        """The process-wide counters (all engines)."""
        return asr_stats()

    def close(self) -> None:
        """Close every session and shut the pool down (queued recognizer frees still run)."""
        if self._closed:
            return
        self._closed = True
        for session in list(self._sessions):
            session.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False)
        if self._recognizers is not None:
            self._recognizers.clear()

    async def __aenter__(self) -> SpeechEngine:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()
