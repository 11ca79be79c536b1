"""Energy-based voice activity detection with endpointing, on 20 ms frames of 8 kHz PCM.

Pure and cheap (one numpy dot product per frame, a few microseconds), so it
runs on the event loop for every frame of every listening call. All timing is
counted in frames, never read from a clock: feeding a recording faster than
real time gives exactly the same decisions.

How it decides, per frame:

* frame energy in dBFS (digital silence is clamped to ``SILENCE_DBFS``);
* noise floor = the quietest frame of the last ~2 s ("minimum statistics"):
  speech always has gaps between syllables and words, so the floor follows the
  line noise even while someone talks, and it rises to a new steady noise
  within ~2 s;
* a frame is *loud* when it is both ``start_snr_db`` above the floor and above
  ``min_level_dbfs`` (an absolute gate: digital silence, G.711 idle codes and
  line hiss, all below about -60 dBFS, never count as speech however clean
  the line is);
* speech starts after ``start_ms`` of consecutive loud frames. This is also the
  minimum speech duration: clicks, pops and key thumps are shorter and never
  start an utterance;
* during speech a lower threshold applies (``continue_snr_db``, hysteresis),
  and speech ends after ``hangover_ms`` without a frame above it, or after
  ``max_speech_ms`` (steady noise must not keep an utterance open forever).

The default hangover (200 ms) is what keeps the final result within ~300 ms of
the caller going quiet: 200 ms hangover + up to one frame + ~10-30 ms of final
decoding. Pauses between words are shorter than that in connected speech;
a longer pause splits the utterance.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 8000
FRAME_MS = 20
SAMPLES_PER_FRAME = SAMPLE_RATE * FRAME_MS // 1000  # 160
FRAME_BYTES = SAMPLES_PER_FRAME * 2  # 320: 16-bit little-endian mono
SILENCE_DBFS = -100.0
_FULL_SCALE_POWER = 32768.0 * 32768.0
_FLOOR_BLOCK_FRAMES = 25  # 0.5 s blocks for the running minimum
_FLOOR_BLOCKS = 4  # + the current block: a ~2-2.5 s window


class VadEvent(enum.Enum):
    START = "start"
    END = "end"


@dataclass(frozen=True, slots=True)
class VadConfig:
    """Detector settings; durations are rounded to whole 20 ms frames."""

    start_ms: int = 80
    hangover_ms: int = 200
    max_speech_ms: int = 15000
    start_snr_db: float = 10.0
    continue_snr_db: float = 6.0
    min_level_dbfs: float = -50.0
    continue_min_level_dbfs: float = -55.0

    @property
    def start_frames(self) -> int:
        return max(1, round(self.start_ms / FRAME_MS))

    @property
    def hangover_frames(self) -> int:
        return max(1, round(self.hangover_ms / FRAME_MS))

    @property
    def max_speech_frames(self) -> int:
        return max(self.start_frames + 1, round(self.max_speech_ms / FRAME_MS))


def frame_energy_dbfs(frame: bytes) -> float:
    """Mean power of a frame of 16-bit little-endian PCM, in dB relative to full scale."""
    samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
    if samples.size == 0:
        return SILENCE_DBFS
    power = float(np.dot(samples, samples)) / samples.size
    if power <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 10.0 * math.log10(power / _FULL_SCALE_POWER))


class Vad:
    """Feed every frame to :meth:`process`; it returns START or END at the frame that decides it."""

    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config or VadConfig()
        self.frame_index = -1  # index of the last processed frame
        self.in_speech = False
        self.speech_start_frame: int | None = None  # first loud frame of the current/last utterance
        self.last_loud_frame: int | None = None  # last frame of speech (before the hangover)
        self.end_forced = False  # the last END came from max_speech_ms, not silence
        self._loud_run = 0
        self._quiet_run = 0
        self._blocks: list[float] = []
        self._block_min = math.inf
        self._block_len = 0

    @property
    def noise_floor_dbfs(self) -> float:
        """The current noise floor estimate (the minimum frame energy of the last ~2 s)."""
        floor = min([self._block_min, *self._blocks])
        return SILENCE_DBFS if floor == math.inf else floor

    @property
    def quiet_frames(self) -> int:
        """During speech: frames since the last voiced one (the hangover so far); 0 otherwise."""
        return self._quiet_run if self.in_speech else 0

    def reset(self) -> None:
        """Forget any utterance in progress (the noise floor is kept)."""
        self.in_speech = False
        self._loud_run = 0
        self._quiet_run = 0

    def _update_floor(self, energy: float) -> float:
        if energy < self._block_min:
            self._block_min = energy
        self._block_len += 1
        floor = min(self._block_min, *self._blocks) if self._blocks else self._block_min
        if self._block_len >= _FLOOR_BLOCK_FRAMES:
            self._blocks.append(self._block_min)
            if len(self._blocks) > _FLOOR_BLOCKS:
                del self._blocks[0]
            self._block_min = math.inf
            self._block_len = 0
        return floor

    def process(self, frame: bytes) -> VadEvent | None:
        """Process one 20 ms frame (320 bytes); the event it decides, if any."""
        return self.process_energy(frame_energy_dbfs(frame))

    def process_energy(self, energy: float) -> VadEvent | None:
        """Same as :meth:`process`, from a frame energy in dBFS (for callers that already have it)."""
        cfg = self.config
        self.frame_index += 1
        # the floor includes the current frame, so a frame can never be louder than a floor
        # made only of itself: the very first frames of a stream cannot start speech
        floor = self._update_floor(energy)
        if not self.in_speech:
            loud = energy >= floor + cfg.start_snr_db and energy >= cfg.min_level_dbfs
            self._loud_run = self._loud_run + 1 if loud else 0
            if self._loud_run >= cfg.start_frames:
                self.in_speech = True
                self.end_forced = False
                self.speech_start_frame = self.frame_index - self._loud_run + 1
                self.last_loud_frame = self.frame_index
                self._loud_run = 0
                self._quiet_run = 0
                return VadEvent.START
            return None
        voiced = energy >= floor + cfg.continue_snr_db and energy >= cfg.continue_min_level_dbfs
        if voiced:
            self._quiet_run = 0
            self.last_loud_frame = self.frame_index
        else:
            self._quiet_run += 1
        assert self.speech_start_frame is not None
        too_long = self.frame_index - self.speech_start_frame + 1 >= cfg.max_speech_frames
        if self._quiet_run >= cfg.hangover_frames or too_long:
            self.in_speech = False
            self.end_forced = too_long and self._quiet_run < cfg.hangover_frames
            self._quiet_run = 0
            return VadEvent.END
        return None
