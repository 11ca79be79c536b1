"""One call's recognition stream: VAD on the event loop, decoding in a worker.

Threading model: everything in :class:`SpeechSession` runs on the event loop
except :meth:`SpeechSession._run_op`, which runs in the engine's worker pool
and is the only code touching the vosk recognizer. At most one operation per
session is in flight, so the recognizer is never used by two threads at once
and audio reaches it in order; sessions run in parallel with each other
(vosk releases the GIL while decoding).

A wedged pool (every worker busy or stuck) must not leave a caller waiting for a
result that never comes: with ``timeout``, an operation not finished that many
seconds after it was handed to the pool marks the session ``stalled`` (a loop
timer, nothing blocks): pending and later :meth:`SpeechSession.result` calls
return None, audio is no longer taken, and ``on_stall(True)`` tells the engine;
``on_stall(False)`` follows when that operation finally finishes.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from .recognition import Recognition, build_recognition
from .recognizers import Recognizer, RecognizerPool
from .stats import counters
from .vad import FRAME_BYTES, FRAME_MS, SAMPLE_RATE, Vad, VadConfig, VadEvent

logger = logging.getLogger(__name__)

PREROLL_MS = 300  # audio kept from before the VAD's start decision, so the first syllable is not lost
DEFAULT_BATCH_MS = 100  # audio handed to the worker at least this much at a time while speech goes on


class _Kind(enum.Enum):
    CREATE = "create"
    AUDIO = "audio"
    FINAL = "final"
    RESET = "reset"
    CLOSE = "close"


@dataclass(slots=True)
class _Segment:
    """A stretch of an utterance decoded as one vosk utterance (FinalResult at its end)."""

    start_frame: int  # session frame index of its first frame given to the recognizer
    rec_offset: int  # samples given to the recognizer (by this session) before it


@dataclass(slots=True)
class _Utterance:
    segment: _Segment | None  # the segment being fed; None after an early final until speech resumes
    results: list[tuple[_Segment, str]] = field(default_factory=list)
    finals_pending: int = 0
    ended: bool = False
    abandoned: bool = False
    speech_ended: float = 0.0


@dataclass(slots=True)
class _Op:
    kind: _Kind
    audio: bytes = b""
    utterance: _Utterance | None = None
    segment: _Segment | None = None


class SpeechSession:
    """Streaming recognition for one call; create it with :meth:`SpeechEngine.session`.

    Feed every received 20 ms frame with :meth:`feed`; await :meth:`result` for
    each utterance. ``speech_started`` is set as soon as the VAD hears the
    caller start (barge-in) and cleared once that utterance's result has been
    taken by :meth:`result` with nothing newer under way.

    ``early_final_ms`` (free mode): when the caller has been quiet this long
    inside an utterance, the audio so far is finalised at once, while the VAD's
    hangover still runs. If the caller goes on, the rest is decoded as a new
    segment and the texts are joined in one Recognition; if not, the result is
    ready when the hangover ends instead of one FinalResult later (free-mode
    FinalResult takes 20-100 ms). Not for grammar mode, where a split would
    break multi-word phrases (and FinalResult takes a few ms).
    """

    def __init__(self, *, recognizers: RecognizerPool, pool: Executor, grammar: str | None,
                 phrases: dict[str, str] | None,
                 call_id: str | None, on_speech_start: Callable[[], None] | None,
                 vad_config: VadConfig | None = None, batch_ms: int = DEFAULT_BATCH_MS,
                 early_final_ms: int | None = None,
                 on_close: Callable[[SpeechSession], None] | None = None,
                 timeout: float | None = None, on_stall: Callable[[bool], None] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._recognizers = recognizers
        self._pool = pool
        self._grammar = grammar
        self._phrases = phrases
        self.call_id = call_id
        self._on_speech_start = on_speech_start
        self._on_close = on_close
        self._log_extra = {"call_id": call_id}
        self.speech_started = asyncio.Event()
        self.paused = False
        self.closed = False
        self.stalled = False
        """An operation waited longer than ``timeout`` in the pool: this session gives no more results."""
        self._broken = False
        self._timeout = timeout
        self._on_stall = on_stall
        self._watchdog: asyncio.TimerHandle | None = None
        self._inflight_stalled = False
        self._vad = Vad(vad_config)
        self._early_final_frames: int | None = None
        if early_final_ms is not None and early_final_ms // FRAME_MS < self._vad.config.hangover_frames:
            self._early_final_frames = max(1, early_final_ms // FRAME_MS)
        self._preroll: deque[bytes] = deque(maxlen=PREROLL_MS // FRAME_MS)
        self._buf = bytearray()
        self._buf_start = 0  # session frame index of the first frame in _buf
        self._batch_bytes = max(1, batch_ms // FRAME_MS) * FRAME_BYTES
        self._carry = b""
        self._frames = 0  # frames passed to feed(), paused ones included: the session's clock
        self._queued_samples = 0  # samples handed to the recognizer so far, in order
        self._utterance: _Utterance | None = None
        self._undelivered = 0  # ended utterances whose result is not out yet
        self._ops: deque[_Op] = deque([_Op(_Kind.CREATE)])
        self._inflight: asyncio.Future[str | None] | None = None
        self._rec: Recognizer | None = None  # owned by the worker ops
        self._rec_base = 0  # samples the recognizer had heard before this session (reused ones)
        self._results: deque[Recognition] = deque()
        self._waiters: deque[asyncio.Future[Recognition | None]] = deque()
        counters.session_opened()
        self._pump()

    def __del__(self) -> None:
        # a session dropped without close() must not stay in the live count forever
        if not getattr(self, "closed", True):
            self.closed = True
            counters.session_closed()

    # -- public API ---------------------------------------------------------------------
    @property
    def grammar_mode(self) -> bool:
        return self._grammar is not None

    @property
    def phrases(self) -> list[str]:
        """The phrases this session listens for as given (usable ones only); [] in free mode."""
        return list(self._phrases.values()) if self._phrases is not None else []

    @property
    def audio_decoded(self) -> float:
        """Seconds of audio handed to the recognizer so far (speech and its pre-roll only)."""
        return self._queued_samples / SAMPLE_RATE

    @property
    def in_speech(self) -> bool:
        """Whether the VAD is inside an utterance right now."""
        return self._vad.in_speech

    def feed(self, frame: bytes) -> None:
        """Take one frame of received audio (16-bit LE mono 8 kHz; 320 bytes for 20 ms).

        Runs on the event loop and returns at once: the VAD decision is a few
        microseconds, decoding happens in a worker. Other sizes are re-cut
        into 20 ms frames.
        """
        if self.closed or self._broken or self.stalled:
            return
        if len(frame) == FRAME_BYTES and not self._carry:
            self._feed_frame(frame)
        else:
            data = self._carry + frame
            cut = len(data) - len(data) % FRAME_BYTES
            self._carry = data[cut:]
            for i in range(0, cut, FRAME_BYTES):
                self._feed_frame(data[i:i + FRAME_BYTES])
        self._pump()

    async def result(self, timeout: float | None = None) -> Recognition | None:
        """The next utterance's result; None on timeout or once the session is closed."""
        if self._results:
            return self._take(self._results.popleft())
        if self.closed or self._broken or self.stalled:
            return None
        waiter: asyncio.Future[Recognition | None] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait({waiter}, timeout=timeout)
        except asyncio.CancelledError:
            handed = waiter.result() if waiter.done() and not waiter.cancelled() else None
            if handed is not None:
                self._results.appendleft(handed)  # handed to us as we were cancelled: keep it
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            if not waiter.done():
                waiter.cancel()
        if waiter.cancelled():
            return None
        rec = waiter.result()
        return self._take(rec) if rec is not None else None

    def pause(self) -> None:
        """Stop listening: audio fed from now on is dropped before the VAD and never decoded.

        An utterance in progress is abandoned (no result); the pre-roll is
        emptied so nothing from before the pause is prepended after it.
        """
        if self.paused or self.closed:
            return
        self.paused = True
        self._preroll.clear()
        self._carry = b""
        if self._utterance is not None:
            self._utterance.abandoned = True
            self._utterance = None
            self._vad.reset()
            self._buf.clear()
            self._ops.append(_Op(_Kind.RESET))
            self._maybe_clear_started()
            self._pump()
        logger.debug("speech recognition paused", extra=self._log_extra)

    def resume(self) -> None:
        """Listen again after :meth:`pause`."""
        if not self.paused or self.closed:
            return
        self.paused = False
        self._vad.reset()
        logger.debug("speech recognition resumed", extra=self._log_extra)

    def close(self) -> None:
        """Stop for good: pending :meth:`result` calls return None; the recognizer is freed in the worker."""
        if self.closed:
            return
        self.closed = True
        counters.session_closed()
        self._ops.clear()
        self._buf.clear()
        self._preroll.clear()
        self._results.clear()
        if self._utterance is not None:
            self._utterance.abandoned = True
            self._utterance = None
        self._undelivered = 0
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        self._ops.append(_Op(_Kind.CLOSE))
        self._pump()
        if self._on_close is not None:
            self._on_close(self)

    # -- event loop side ----------------------------------------------------------------
    def _feed_frame(self, frame: bytes) -> None:
        index = self._frames
        self._frames += 1
        if self.paused:
            return
        event = self._vad.process(frame)
        if event is VadEvent.START:
            self._start_utterance(index)
            self._buf += frame
            self._speech_start()
            return
        utterance = self._utterance
        if utterance is None:
            self._preroll.append(frame)
            return
        if not self._buf:
            self._buf_start = index
        self._buf += frame
        if event is VadEvent.END:
            self._end_utterance(utterance)
        elif utterance.segment is None:  # finalised early, the hangover runs
            if self._vad.quiet_frames == 0:  # the caller goes on: a new segment, with the pause before it
                utterance.segment = _Segment(start_frame=self._buf_start, rec_offset=self._queued_samples)
        elif self._vad.quiet_frames == self._early_final_frames:
            self._finalize_segment(utterance)

    def _start_utterance(self, index: int) -> None:
        self._buf.clear()
        for frame in self._preroll:
            self._buf += frame
        self._buf_start = index - len(self._preroll)
        self._preroll.clear()
        self._utterance = _Utterance(_Segment(start_frame=self._buf_start, rec_offset=self._queued_samples))

    def _speech_start(self) -> None:
        self.speech_started.set()
        logger.debug("speech started", extra=self._log_extra)
        if self._on_speech_start is not None:
            try:
                self._on_speech_start()
            except Exception:  # a broken barge-in callback must not stop recognition
                logger.exception("on_speech_start callback failed", extra=self._log_extra)

    def _finalize_segment(self, utterance: _Utterance) -> None:
        """Queue the FinalResult of the segment being fed, with the audio not yet handed over."""
        audio = bytes(self._buf)
        self._buf.clear()
        self._queued_samples += len(audio) // 2
        utterance.finals_pending += 1
        self._ops.append(_Op(_Kind.FINAL, audio, utterance, utterance.segment))
        utterance.segment = None

    def _end_utterance(self, utterance: _Utterance) -> None:
        self._utterance = None
        utterance.ended = True
        utterance.speech_ended = self._loop.time()
        self._undelivered += 1
        if utterance.segment is not None:
            self._finalize_segment(utterance)
        else:  # finalised early and nothing said since: that result is the answer, the pause is dropped
            self._buf.clear()
        logger.debug("speech ended", extra={**self._log_extra, "forced": self._vad.end_forced})
        if utterance.finals_pending == 0:
            self._deliver(utterance)

    def _pump(self) -> None:
        """Start the next worker operation if none is in flight."""
        if self._inflight is not None or self._broken:
            return
        if self.stalled and not (self._ops and self._ops[0].kind is _Kind.CLOSE):
            return  # nothing more for a pool that does not answer, except freeing the recognizer
        if self._ops:
            op = self._ops.popleft()
        elif self._utterance is not None and self._utterance.segment is not None \
                and len(self._buf) >= self._batch_bytes:
            op = _Op(_Kind.AUDIO, bytes(self._buf))
            self._buf.clear()
            self._queued_samples += len(op.audio) // 2
        else:
            return
        try:
            fut = self._loop.run_in_executor(self._pool, self._run_op, op)
        except RuntimeError:  # the engine's pool is shut down
            self._rec = None
            self._broken = True
            self._wake_waiters()
            return
        self._inflight = fut
        fut.add_done_callback(functools.partial(self._op_done, op))
        if self._timeout is not None:
            self._watchdog = self._loop.call_later(self._timeout, self._stall)

    def _stall(self) -> None:
        """The operation in flight got no answer within ``timeout``: give up on this session."""
        self._watchdog = None
        self._inflight_stalled = True
        if not self.stalled:
            self.stalled = True
            logger.debug("speech recognition stalled", extra={**self._log_extra, "timeout_s": self._timeout})
            self._wake_waiters()
        if self._on_stall is not None:
            self._on_stall(True)

    def _op_done(self, op: _Op, fut: asyncio.Future[str | None]) -> None:
        self._inflight = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._inflight_stalled:
            self._inflight_stalled = False
            if self._on_stall is not None:
                self._on_stall(False)
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            logger.error("speech recognition failed: %s", exc, exc_info=exc, extra=self._log_extra)
            self._broken = True
            self._wake_waiters()
            return
        utterance = op.utterance
        if op.kind is _Kind.FINAL and utterance is not None and not utterance.abandoned and not self.closed \
                and not self.stalled:
            raw = fut.result()
            assert raw is not None and op.segment is not None
            utterance.results.append((op.segment, raw))
            utterance.finals_pending -= 1
            if utterance.ended and utterance.finals_pending == 0:
                self._deliver(utterance)
        self._pump()

    def _deliver(self, utterance: _Utterance) -> None:
        self._undelivered -= 1
        segments = [(raw, seg.start_frame * FRAME_MS / 1000 - (self._rec_base + seg.rec_offset) / SAMPLE_RATE)
                    for seg, raw in utterance.results]
        rec = build_recognition(segments, phrases=self._phrases, speech_ended=utterance.speech_ended,
                                now=self._loop.time())
        counters.utterance(rec.latency)
        # the text itself only at debug: free-mode transcripts may hold personal data
        logger.info("speech recognised", extra={**self._log_extra, "phrase": rec.phrase, "words": len(rec.words),
                                                "segments": len(segments), "confidence": round(rec.confidence, 3),
                                                "latency_ms": round(rec.latency * 1000, 1)})
        logger.debug("speech recognised text", extra={**self._log_extra, "text": rec.text})
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(rec)
                return
        self._results.append(rec)

    def _take(self, rec: Recognition) -> Recognition:
        self._maybe_clear_started()
        return rec

    def _maybe_clear_started(self) -> None:
        if not self._vad.in_speech and self._undelivered == 0 and not self._results:
            self.speech_started.clear()

    def _wake_waiters(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    # -- worker side --------------------------------------------------------------------
    def _run_op(self, op: _Op) -> str | None:
        """Runs in the worker pool; the only code that touches the recognizer."""
        if op.kind is _Kind.CREATE:
            self._rec = self._recognizers.acquire(self._grammar)
            self._rec_base = self._rec.samples
            return None
        rec = self._rec
        if op.kind is _Kind.CLOSE:
            self._rec = None
            if rec is not None:
                self._recognizers.release(rec)  # free mode: kept warm for the next call; else freed here
            return None
        assert rec is not None
        if op.kind is _Kind.RESET:
            rec.reset()
            return None
        rec.accept(op.audio)
        if op.kind is _Kind.FINAL:
            return rec.final()
        return None
