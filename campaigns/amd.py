"""Answering-machine detection on the first seconds of an answered outbound call (sans-I/O).

Audio in, a verdict out: 16-bit little-endian mono PCM at 8 kHz, fed in 20 ms frames. Time is
counted in frames fed, never read from a clock (the runner feeds ``bytes(320)`` for every 20 ms
without a packet), so a recording fed faster than real time gets exactly the same decisions.

How :class:`MachineDetector` decides, in the spirit of Asterisk's ``AMD()`` application:

* each frame is *voiced* when its energy is ``voice_snr_db`` above the noise floor and above
  ``min_voice_dbfs``. The floor is the quietest frame of the last ~1 s (speech always has gaps
  between syllables, so the floor follows the line noise even while someone talks, and rises to
  a new steady noise within ~1 s). The zeros fed before the first packet say nothing about the
  line and are left out, so line noise that comes with the first packet is the floor at once,
  not speech; zeros after it (a phone with DTX sends nothing while its user is silent) are
  silence and part of the floor;
* a *word* starts after ``min_word_ms`` of voiced frames (clicks and pops are shorter) and ends
  after ``word_gap_ms`` without one (the hangover);
* the *greeting* runs from the start of the first word to the end of the last one, pauses
  shorter than ``after_greeting_silence_ms`` included.

Verdicts, the first that applies:

* ``person`` / ``short-greeting``: ``after_greeting_silence_ms`` of silence after a greeting no
  longer than ``max_greeting_ms``: a person said "喂？" or "hello?" and waits for an answer.
  With the defaults this comes ~0.8 s after the person stops talking;
* ``machine`` / ``long-greeting``: the greeting grew longer than ``max_greeting_ms`` without
  such a silence ("您好，您拨打的用户暂时无法接通，请在提示音后留言…");
* ``machine`` / ``max-words``: more than ``max_words`` words before such a silence;
* ``initial_silence_verdict`` / ``initial-silence``: nobody spoke for ``initial_silence_ms``.
  Asterisk calls that a machine. The default here is ``person``: answering machines start their
  greeting within a second, while many people (in China especially) answer an unknown number and
  wait for the caller to speak; hanging up on them loses the contact and counts as an abandoned
  call, sending a silent line to an agent costs a few agent seconds.

:class:`GreetingEnd` runs after a ``machine`` verdict and says when to start leaving a message:
when the beep has ended (a steady tone for ``beep_min_ms``), after ``message_after_silence_ms``
of silence, or after ``max_greeting_wait_ms`` whatever happens.

Per frame this costs one numpy dot product and a few comparisons (the benchmark,
``./dev bench amd``, measures it); :class:`GreetingEnd` adds a 160-point FFT for loud frames only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Verdict = Literal["person", "machine"]

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 160
FRAME_BYTES = FRAME_SAMPLES * 2  # 320
_FULL_SCALE_POWER = 32768.0 * 32768.0
_SILENCE_DBFS = -100.0  # a frame of zeros
_FLOOR_BLOCK_FRAMES = 10  # the floor is the minimum of 0.2 s blocks ...
_FLOOR_BLOCKS = 4  # ... over the last 4 blocks and the current one: a 0.8-1 s window
_WINDOW = np.hanning(FRAME_SAMPLES).astype(np.float32)
_BIN_HZ = SAMPLE_RATE / FRAME_SAMPLES  # 50 Hz per FFT bin


def _frames(ms: int) -> int:
    return max(1, round(ms / FRAME_MS))


@dataclass(frozen=True, slots=True)
class AmdSettings:
    """Thresholds of :class:`MachineDetector` and :class:`GreetingEnd`; durations in ms, whole 20 ms frames."""

    voice_snr_db: float = 9.0
    """A frame is voiced this far above the noise floor ..."""
    min_voice_dbfs: float = -50.0
    """... and above this level (line hiss and G.711 idle codes are below it)."""
    min_word_ms: int = 80
    """Voiced this long to start a word: clicks, pops and key thumps are shorter."""
    word_gap_ms: int = 100
    """Unvoiced this long ends a word (shorter dips are within a word)."""
    after_greeting_silence_ms: int = 800
    """Silence after a short greeting that makes it a person (Asterisk's afterGreetingSilence and
    default). Recorded greetings mostly pause less between phrases; one that pauses longer after a
    short first phrase ("Hello. … You have reached …") is taken for a person. Longer is safer
    against that, but every person hears that much more silence before an agent speaks."""
    max_greeting_ms: int = 2500
    """The longest greeting a person says before waiting for an answer: "喂？" or "hello?" takes
    ~0.5 s, "喂，你好，请问哪位？" ~1.5-2 s."""
    max_words: int = 4
    """More words than this before a silence is a machine."""
    initial_silence_ms: int = 3500
    """Nobody speaks this long after the answer: ``initial_silence_verdict``."""
    initial_silence_verdict: Verdict = "person"
    """A silent answer is most often a cautious person (see the module docstring)."""
    beep_min_ms: int = 150
    """A steady tone at least this long is the beep of an answering machine."""
    beep_min_hz: float = 300.0
    beep_max_hz: float = 2500.0
    """Beeps are 400-2000 Hz (most ~1 kHz); the range leaves a margin."""
    beep_min_tone_share: float = 0.85
    """Share of a frame's energy in the three FFT bins (50 Hz each) around its peak for a tone frame
    (a sine: > 0.99; speech: median ~0.4, 90% of frames below 0.7)."""
    message_after_silence_ms: int = 1500
    """Silence after the greeting that means no beep is coming: start the message."""
    max_greeting_wait_ms: int = 30000
    """:class:`GreetingEnd` gives up waiting after this much audio (greetings run 5-20 s)."""

    def __post_init__(self) -> None:
        durations = ("min_word_ms", "word_gap_ms", "after_greeting_silence_ms", "max_greeting_ms",
                     "initial_silence_ms", "beep_min_ms", "message_after_silence_ms", "max_greeting_wait_ms")
        for name in durations:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_words < 1:
            raise ValueError(f"max_words must be at least 1, got {self.max_words}")
        if not 0 < self.beep_min_hz < self.beep_max_hz <= SAMPLE_RATE / 2:
            raise ValueError(f"need 0 < beep_min_hz < beep_max_hz <= 4000, got {self.beep_min_hz}-{self.beep_max_hz}")
        if self.initial_silence_verdict not in ("person", "machine"):
            raise ValueError(f"initial_silence_verdict must be person or machine, got {self.initial_silence_verdict!r}")


@dataclass(frozen=True, slots=True)
class AmdResult:
    verdict: Verdict
    seconds: float
    """Audio fed when the verdict was reached (seconds since the answer)."""
    reason: str
    """short-greeting, long-greeting, max-words, initial-silence, timeout or timeout-silence."""


def _frame_power(frame: memoryview | bytes) -> float:
    """Mean power of one frame relative to full scale (0.0 for digital silence)."""
    samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
    return float(np.dot(samples, samples)) / (samples.size * _FULL_SCALE_POWER)


class _VoiceActivity:
    """Voiced or not, per frame, against a noise floor that follows the line (minimum statistics)."""

    def __init__(self, settings: AmdSettings, *, mid_call: bool = False) -> None:
        """``mid_call``: the line has been heard already, and is assumed quiet (silence just below
        ``min_voice_dbfs``) until its own quietest frames replace that within ~1 s; otherwise the
        first frames of a greeting would be the floor."""
        self._snr_db = settings.voice_snr_db
        self._min_dbfs = settings.min_voice_dbfs
        self._heard = mid_call
        self._blocks: list[float] = [settings.min_voice_dbfs - settings.voice_snr_db] if mid_call else []
        self._older_min = min(self._blocks, default=math.inf)  # min of self._blocks
        self._block_min = math.inf
        self._block_len = 0

    def voiced(self, power: float) -> bool:
        if power <= 0.0:
            if not self._heard:  # filler before the first packet says nothing about the line
                return False
            dbfs = _SILENCE_DBFS
        else:
            self._heard = True
            dbfs = 10.0 * math.log10(power)
        self._block_min = min(self._block_min, dbfs)
        floor = min(self._block_min, self._older_min)
        self._block_len += 1
        if self._block_len == _FLOOR_BLOCK_FRAMES:
            self._blocks.append(self._block_min)
            if len(self._blocks) > _FLOOR_BLOCKS:
                del self._blocks[0]
            self._older_min = min(self._blocks)
            self._block_min = math.inf
            self._block_len = 0
        # the floor includes this frame, so the first frame of a new line is never voice
        return dbfs >= floor + self._snr_db and dbfs >= self._min_dbfs


class _FrameSplitter:
    """Cuts fed bytes into whole 20 ms frames, keeping a partial one for the next call (ptime 30 ms)."""

    def __init__(self) -> None:
        self._pending = b""

    def split(self, pcm: bytes) -> list[memoryview]:
        data = self._pending + pcm if self._pending else pcm
        whole = len(data) - len(data) % FRAME_BYTES
        self._pending = bytes(data[whole:])
        view = memoryview(data)
        return [view[i:i + FRAME_BYTES] for i in range(0, whole, FRAME_BYTES)]


class MachineDetector:
    """Person or answering machine, from the audio received after the answer; one per answered call.

    Feed every frame from the answer on to :meth:`feed`; it returns the verdict at the frame that
    decides it (and the same result on later calls), ``None`` before. At the caller's deadline,
    :meth:`timeout` decides on what it has.
    """

    def __init__(self, settings: AmdSettings = AmdSettings()) -> None:
        self.settings = settings
        self._vad = _VoiceActivity(settings)
        self._splitter = _FrameSplitter()
        self._min_word = _frames(settings.min_word_ms)
        self._word_gap = _frames(settings.word_gap_ms)
        self._after_greeting = _frames(settings.after_greeting_silence_ms)
        self._max_greeting = _frames(settings.max_greeting_ms)
        self._initial_silence = _frames(settings.initial_silence_ms)
        self._frame = 0  # frames fed
        self._voiced_run = 0
        self._in_word = False
        self._words = 0
        self._greeting_start = 0  # first frame of the first word (valid once _words > 0)
        self._last_voiced = 0  # last voiced frame of a word (1-based, like _frame)
        self._result: AmdResult | None = None

    @property
    def result(self) -> AmdResult | None:
        return self._result

    def feed(self, pcm: bytes) -> AmdResult | None:
        """Process received audio (normally one or more whole 20 ms frames); the verdict once reached."""
        if self._result is not None:
            return self._result
        for frame in self._splitter.split(pcm):
            self._step(self._vad.voiced(_frame_power(frame)))
            if self._result is not None:
                break
        return self._result

    def timeout(self) -> AmdResult:
        """The caller's deadline: the verdict so far, or one made now on what was heard."""
        if self._result is None:
            if self._words == 0:
                self._decide(self.settings.initial_silence_verdict, "timeout-silence")
            else:  # a greeting still short enough for a person (a long one is decided already)
                self._decide("person", "timeout")
        assert self._result is not None
        return self._result

    def _decide(self, verdict: Verdict, reason: str) -> None:
        self._result = AmdResult(verdict, round(self._frame * FRAME_MS / 1000, 2), reason)

    def _step(self, voiced: bool) -> None:
        self._frame += 1
        if voiced:
            self._voiced_run += 1
            if self._in_word:
                self._last_voiced = self._frame
            elif self._voiced_run >= self._min_word:
                self._in_word = True
                self._words += 1
                self._last_voiced = self._frame
                if self._words == 1:
                    self._greeting_start = self._frame - self._voiced_run + 1
        else:
            self._voiced_run = 0
            if self._in_word and self._frame - self._last_voiced >= self._word_gap:
                self._in_word = False
        if self._words == 0:
            if self._frame >= self._initial_silence:
                self._decide(self.settings.initial_silence_verdict, "initial-silence")
            return
        if self._last_voiced - self._greeting_start + 1 > self._max_greeting:
            self._decide("machine", "long-greeting")
        elif self._words > self.settings.max_words:
            self._decide("machine", "max-words")
        elif self._frame - self._last_voiced >= self._after_greeting and self._voiced_run == 0:
            # (not while a sound may yet become the next word: the pause would end one frame later)
            self._decide("person", "short-greeting")


class _ToneTracker:
    """Follows tone frames: ``steady`` counts consecutive ones at one frequency (the peak bin moves
    by at most one 50 Hz bin), so a beep is a long enough steady run."""

    def __init__(self, settings: AmdSettings) -> None:
        self._min_bin = math.ceil(settings.beep_min_hz / _BIN_HZ)
        self._max_bin = math.floor(settings.beep_max_hz / _BIN_HZ)
        self._min_share = settings.beep_min_tone_share
        self._peak: int | None = None  # bin of the last frame's tone
        self.steady = 0

    def update(self, frame: memoryview | bytes, loud: bool) -> bool:
        """Whether ``frame`` is a tone (quiet frames are not looked at)."""
        peak = self._tone_bin(frame) if loud else None
        if peak is None:
            self.steady = 0
        elif self._peak is not None and abs(peak - self._peak) <= 1:
            self.steady += 1
        else:
            self.steady = 1
        self._peak = peak
        return peak is not None

    def _tone_bin(self, frame: memoryview | bytes) -> int | None:
        """The FFT bin of the frame's tone, or None if its energy is not concentrated at one frequency."""
        spectrum = np.fft.rfft(np.frombuffer(frame, dtype="<i2").astype(np.float32) * _WINDOW)
        power = spectrum.real ** 2 + spectrum.imag ** 2
        peak = int(np.argmax(power))
        if not self._min_bin <= peak <= self._max_bin:
            return None
        # a Hann-windowed sine puts >99% of its energy within one bin either side of its peak
        share = float(power[peak - 1:peak + 2].sum()) / float(power.sum())
        return peak if share >= self._min_share else None


class GreetingEnd:
    """After a ``machine`` verdict: when to start leaving the message.

    Feed the frames that follow the verdict; :meth:`feed` turns True (and stays True) at the first
    frame after the beep (a steady 300-2500 Hz tone of ``beep_min_ms`` or longer), after
    ``message_after_silence_ms`` of silence, or once ``max_greeting_wait_ms`` of audio was fed.
    :attr:`reason` says which: ``beep``, ``silence`` or ``max-wait``.
    """

    def __init__(self, settings: AmdSettings = AmdSettings()) -> None:
        self._vad = _VoiceActivity(settings, mid_call=True)
        self._tone = _ToneTracker(settings)
        self._splitter = _FrameSplitter()
        self._beep_frames = _frames(settings.beep_min_ms)
        self._silence_frames = _frames(settings.message_after_silence_ms)
        self._max_frames = _frames(settings.max_greeting_wait_ms)
        self._frame = 0
        self._quiet_run = 0
        self._beep_heard = False
        self.reason: str | None = None

    @property
    def seconds(self) -> float:
        """Audio fed so far."""
        return self._frame * FRAME_MS / 1000

    def feed(self, pcm: bytes) -> bool:
        if self.reason is not None:
            return True
        for frame in self._splitter.split(pcm):
            self._frame += 1
            sound = self._vad.voiced(_frame_power(frame))
            tone = self._tone.update(frame, sound)
            self._beep_heard = self._beep_heard or self._tone.steady >= self._beep_frames
            if self._beep_heard and not tone:  # (a beep in several tones ends after the last)
                self.reason = "beep"
            elif sound:
                self._quiet_run = 0
            else:
                self._quiet_run += 1
                if self._quiet_run >= self._silence_frames:
                    self.reason = "silence"
            if self.reason is None and self._frame >= self._max_frames:
                self.reason = "max-wait"
            if self.reason is not None:
                return True
        return False
