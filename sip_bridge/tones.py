"""Tone generation and detection on 16-bit little-endian mono PCM (numpy).

Detection uses single-bin DFT power at the frequencies of interest: the value
the Goertzel recurrence computes, evaluated here as one vectorised dot
product instead of a per-sample Python loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

DTMF_LOW = (697.0, 770.0, 852.0, 941.0)
DTMF_HIGH = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYPAD = ("123A", "456B", "789C", "*0#D")
DTMF_BLOCK_MS = 20
DTMF_MIN_BLOCKS = 2  # 40 ms: the shortest tone a receiver must accept
DTMF_MIN_LEVEL_DBFS = -40.0  # quieter blocks are silence
DTMF_MIN_TONE_SHARE = 0.6  # the two tones must carry this share of the block's energy
# Twist: level of the high tone relative to the low one. Lines attenuate high
# frequencies, so a weaker high tone is tolerated more.
DTMF_MAX_HIGH_WEAKER_DB = 8.0
DTMF_MAX_HIGH_STRONGER_DB = 4.0

_FULL_SCALE = 32767.0


def _samples(pcm: bytes) -> npt.NDArray[np.float64]:
    if len(pcm) % 2:
        raise ValueError(f"16-bit PCM must have an even number of bytes, got {len(pcm)}")
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def sine(freq: float | Sequence[float], duration: float, *, rate: int = 8000,
         amplitude: float = 0.3) -> bytes:
    """Sum of sines, each at ``amplitude`` of full scale, clipped to 16 bits."""
    if duration < 0:
        raise ValueError(f"duration must not be negative, got {duration}")
    freqs = [float(freq)] if isinstance(freq, (int, float)) else [float(f) for f in freq]
    t = np.arange(round(duration * rate)) / rate
    signal = np.zeros_like(t)
    for f in freqs:
        signal += np.sin(2 * np.pi * f * t)
    pcm = np.clip(np.round(signal * amplitude * _FULL_SCALE), -32768, 32767)
    return pcm.astype("<i2").tobytes()


def _dtmf_frequencies(digit: str) -> tuple[float, float]:
    for row, keys in enumerate(DTMF_KEYPAD):
        column = keys.find(digit.upper()) if len(digit) == 1 else -1
        if column >= 0:
            return DTMF_LOW[row], DTMF_HIGH[column]
    raise ValueError(f"not a DTMF digit: {digit!r}")


def dtmf_tone(digit: str, duration: float = 0.1, rate: int = 8000) -> bytes:
    return sine(_dtmf_frequencies(digit), duration, rate=rate, amplitude=0.3)


def _bin_power(blocks: npt.NDArray[np.float64], freqs: Sequence[float],
               rate: int) -> npt.NDArray[np.float64]:
    """Share of each block's energy at each frequency: 1.0 for a pure sine.
    ``blocks`` has shape (n_blocks, n); the result (n_blocks, len(freqs))."""
    n = blocks.shape[1]
    basis = np.exp(-2j * np.pi * np.outer(np.arange(n), freqs) / rate)
    energy = np.einsum("ij,ij->i", blocks, blocks)
    power = 2 * np.abs(blocks @ basis) ** 2 / (n * np.maximum(energy, 1e-12))[:, None]
    return np.minimum(power, 1.0)


def goertzel_power(pcm: bytes, freq: float, rate: int = 8000) -> float:
    """Share (0..1) of the signal's energy at ``freq``; 0.0 for silence."""
    x = _samples(pcm)
    if not x.any():
        return 0.0
    return float(_bin_power(x[None, :], [freq], rate)[0, 0])


def detect_tone(pcm: bytes, freq: float, rate: int = 8000, threshold: float = 0.5) -> bool:
    return goertzel_power(pcm, freq, rate) >= threshold


def detect_dtmf(pcm: bytes, rate: int = 8000) -> str:
    """In-band DTMF digits, in order. A digit counts after DTMF_MIN_BLOCKS
    consecutive 20 ms blocks agree, and is reported once until the tone stops."""
    x = _samples(pcm)
    size = rate * DTMF_BLOCK_MS // 1000
    count = len(x) // size
    if count == 0:
        return ""
    blocks = x[:count * size].reshape(count, size)
    power = _bin_power(blocks, DTMF_LOW + DTMF_HIGH, rate)
    low, high = power[:, :4], power[:, 4:]
    row, column = low.argmax(axis=1), high.argmax(axis=1)
    low_power, high_power = low.max(axis=1), high.max(axis=1)
    mean_square = np.einsum("ij,ij->i", blocks, blocks) / size
    loud = mean_square >= (_FULL_SCALE * 10 ** (DTMF_MIN_LEVEL_DBFS / 20)) ** 2
    twist_db = 10 * np.log10(np.maximum(high_power, 1e-12) / np.maximum(low_power, 1e-12))
    valid = (loud & (low_power + high_power >= DTMF_MIN_TONE_SHARE)
             & (twist_db >= -DTMF_MAX_HIGH_WEAKER_DB) & (twist_db <= DTMF_MAX_HIGH_STRONGER_DB))
    digits = []
    previous, run = "", 0
    for i in range(count):  # per block, not per sample
        key = DTMF_KEYPAD[row[i]][column[i]] if valid[i] else ""
        run = run + 1 if key == previous else 1
        previous = key
        if key and run == DTMF_MIN_BLOCKS:
            digits.append(key)
    return "".join(digits)
