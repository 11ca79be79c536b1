"""G.711 mu-law and A-law (ITU-T G.711) through numpy lookup tables.

PCM is signed 16-bit little-endian mono. The tables are built once, vectorised,
from the segment/quantisation rules of the classic reference coder (the one
CPython's ``audioop`` uses), so results match it bit for bit: encoding works on
the top 14 (mu-law) or 13 (A-law) bits of the sample.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

SILENCE = {"PCMU": 0xFF, "PCMA": 0xD5}

_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159  # 14-bit magnitude limit
_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])

_PCM = np.dtype("<i2")


def _all_samples() -> npt.NDArray[np.int32]:
    """Every 16-bit sample, indexed by its unsigned bit pattern."""
    return np.arange(1 << 16, dtype=np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_encoder() -> npt.NDArray[np.uint8]:
    value = _all_samples() >> 2
    mask = np.where(value < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(value), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, magnitude)
    # a clipped full-scale magnitude lands past the last segment: the reference
    # coder then emits the largest code
    code = np.where(segment >= 8, 0x7F, (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    return (code ^ mask).astype(np.uint8)


def _build_ulaw_decoder() -> npt.NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _ULAW_BIAS - magnitude, magnitude - _ULAW_BIAS).astype(np.int16)


def _build_alaw_encoder() -> npt.NDArray[np.uint8]:
    value = _all_samples() >> 3
    negative = value < 0
    mask = np.where(negative, 0x55, 0xD5)
    magnitude = np.where(negative, -value - 1, value)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, magnitude)
    shift = np.where(segment < 2, 1, segment)
    code = (segment << 4) | ((magnitude >> shift) & 0x0F)
    return (code ^ mask).astype(np.uint8)


def _build_alaw_decoder() -> npt.NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code & 0x70) >> 4
    base = ((code & 0x0F) << 4) + np.where(segment == 0, 8, 0x108)
    magnitude = np.where(segment > 1, base << np.maximum(segment - 1, 0), base)
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


_ULAW_ENCODE = _build_ulaw_encoder()
_ULAW_DECODE = _build_ulaw_decoder().astype(_PCM)
_ALAW_ENCODE = _build_alaw_encoder()
_ALAW_DECODE = _build_alaw_decoder().astype(_PCM)


def _pcm_indices(pcm: bytes) -> npt.NDArray[np.uint16]:
    if len(pcm) % 2:
        raise ValueError(f"16-bit PCM must have an even number of bytes, got {len(pcm)}")
    return np.frombuffer(pcm, dtype="<u2")


def ulaw_to_pcm(data: bytes) -> bytes:
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)].tobytes()


def pcm_to_ulaw(pcm: bytes) -> bytes:
    return _ULAW_ENCODE[_pcm_indices(pcm)].tobytes()


def alaw_to_pcm(data: bytes) -> bytes:
    return _ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)].tobytes()


def pcm_to_alaw(pcm: bytes) -> bytes:
    return _ALAW_ENCODE[_pcm_indices(pcm)].tobytes()


_DECODERS: dict[str, Callable[[bytes], bytes]] = {"PCMU": ulaw_to_pcm, "PCMA": alaw_to_pcm}
_ENCODERS: dict[str, Callable[[bytes], bytes]] = {"PCMU": pcm_to_ulaw, "PCMA": pcm_to_alaw}


def decoder_for(codec: str) -> Callable[[bytes], bytes]:
    """G.711 payload -> PCM function for an SDP codec name ("PCMU"/"PCMA")."""
    try:
        return _DECODERS[codec.upper()]
    except KeyError:
        raise ValueError(f"unsupported codec {codec!r}, expected PCMU or PCMA") from None


def encoder_for(codec: str) -> Callable[[bytes], bytes]:
    """PCM -> G.711 payload function for an SDP codec name ("PCMU"/"PCMA")."""
    try:
        return _ENCODERS[codec.upper()]
    except KeyError:
        raise ValueError(f"unsupported codec {codec!r}, expected PCMU or PCMA") from None
