"""Finished recordings as stereo audio files (left = caller, right = agent) through PyAV.

Ogg Opus is the default: 32 kb/s for both channels (~14 MB per hour, a
quarter of the journal's 128 kb/s mu-law), and browsers play it. FLAC is the
lossless choice, and bigger than the mu-law it came from: ~140-165 kb/s for
continuous 8 kHz speech.

Measured (one core, PyAV 18.1 / FFmpeg 8, 60 s of stereo 8 kHz espeak-ng
Korean speech, the agent channel a shifted copy of the caller's):

* encode: Opus 0.44-0.47 s (~130x real time: ~28 s for an hour-long call),
  FLAC ~0.025 s; encrypting on the way (EncryptedWriter) adds nothing visible;
* decode: Opus 0.13 s, FLAC 0.03 s;
* decode(encode(x)): FLAC is bit-exact. Opus keeps speech recognisable but not
  the waveform (a perceptual codec): correlation with the original 0.945 per
  channel, SNR 9.7 dB, no delay (cross-correlation peaks at lag 0), exactly
  the same number of samples.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import av
import numpy as np
import numpy.typing as npt

from recordings.crypto import Sink
from sip_bridge.g711 import ulaw_to_pcm

Pcm = npt.NDArray[np.int16]

SAMPLE_RATE = 8000
_CHUNK_SECONDS = 1  # PCM handed to the encoder at a time: memory stays flat however long the call
_COPY_CHUNK = 1 << 16


class Source(Protocol):
    """What decode reads from: a binary file, or a reader decrypting a stored file as it goes (no seek needed)."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Format:
    """How one stored format is made and served."""

    codec: str
    container: str
    extension: str
    mime: str
    options: dict[str, str]
    bit_rate: int | None
    # The FLAC muxer seeks back at the end to fill in the total sample count (the duration players
    # show) and the MD5; on a non-seekable output it leaves them blank, so FLAC is encoded to a
    # temporary file first and then copied. The Ogg muxer only ever appends: Opus streams straight out.
    needs_seek: bool


FORMATS: dict[str, Format] = {
    # compression_level 0 (libopus complexity): measured on 71 s of espeak speech, 0.10 CPU s to
    # encode instead of 0.26 at the default 10, same size, same SNR (12.3 dB) and the same words
    # recognised; finishing recordings is most of what recording costs, so the cheap setting wins.
    "opus": Format(codec="libopus", container="ogg", extension="ogg", mime="audio/ogg",
                   options={"application": "voip", "compression_level": "0"}, bit_rate=32000, needs_seek=False),
    "flac": Format(codec="flac", container="flac", extension="flac", mime="audio/flac",
                   options={}, bit_rate=None, needs_seek=True),
}


def mulaw_stereo_to_pcm(block: bytes) -> tuple[Pcm, Pcm]:
    """Interleaved (caller, agent) mu-law bytes -> 16-bit PCM per channel."""
    if len(block) % 2:
        raise ValueError(f"interleaved stereo mu-law must have an even length, got {len(block)}")
    pcm = np.frombuffer(ulaw_to_pcm(block), dtype="<i2")
    return pcm[0::2].astype(np.int16), pcm[1::2].astype(np.int16)


def _frames(caller: Pcm, agent: Pcm, rate: int) -> Iterator[av.AudioFrame]:
    """Packed s16 stereo frames of ``_CHUNK_SECONDS`` (PyAV re-chunks them to the codec's frame size)."""
    chunk = rate * _CHUNK_SECONDS
    for start in range(0, len(caller), chunk):
        packed = np.column_stack((caller[start:start + chunk], agent[start:start + chunk])).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(packed.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = rate
        frame.pts = start
        yield frame


def _encode_to(caller: Pcm, agent: Pcm, spec: Format, out: Sink, rate: int) -> None:
    with av.open(out, "w", format=spec.container) as container:
        stream = container.add_stream(spec.codec, rate=rate, layout="stereo", options=spec.options)
        assert isinstance(stream, av.AudioStream)
        if spec.bit_rate is not None:
            stream.codec_context.bit_rate = spec.bit_rate
        for frame in _frames(caller, agent, rate):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def encode(caller: Pcm, agent: Pcm, fmt: str, out: Sink, rate: int = SAMPLE_RATE) -> float:
    """Encode the two channels as one stereo file in ``fmt`` onto ``out`` (may be non-seekable); the duration in s."""
    try:
        spec = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown recording format {fmt!r}, expected one of {sorted(FORMATS)}") from None
    if len(caller) != len(agent):
        raise ValueError(f"channels differ in length: caller {len(caller)}, agent {len(agent)} samples")
    if spec.needs_seek:
        with tempfile.TemporaryFile() as temp:
            _encode_to(caller, agent, spec, temp, rate)
            temp.seek(0)
            shutil.copyfileobj(temp, out, _COPY_CHUNK)
    else:
        _encode_to(caller, agent, spec, out, rate)
    return len(caller) / rate


def decode(inp: Source, rate: int = SAMPLE_RATE) -> tuple[Pcm, Pcm]:
    """A stored audio file back to 16-bit PCM per channel at ``rate`` (Opus always decodes at 48 kHz)."""
    resampler = av.AudioResampler(format="s16p", layout="stereo", rate=rate)
    chunks: list[Pcm] = []
    with av.open(inp, "r") as container:
        for frame in container.decode(audio=0):
            chunks.extend(np.asarray(out.to_ndarray(), dtype=np.int16) for out in resampler.resample(frame))
    chunks.extend(np.asarray(out.to_ndarray(), dtype=np.int16) for out in resampler.resample(None))
    pcm = np.concatenate(chunks, axis=1) if chunks else np.zeros((2, 0), dtype=np.int16)
    return pcm[0].copy(), pcm[1].copy()


def _channel_peaks(samples: Pcm, buckets: int) -> list[float]:
    if len(samples) == 0:
        return [0.0] * buckets
    magnitude = np.abs(samples.astype(np.int32))  # abs(-32768) overflows int16
    starts = np.arange(buckets) * len(samples) // buckets
    # with fewer samples than buckets, reduceat gives an empty bucket the sample at its start
    loudest = np.maximum.reduceat(magnitude, starts)
    return [round(float(v), 3) for v in loudest / 32768.0]


def peaks(caller: Pcm, agent: Pcm, buckets: int) -> dict[str, list[float]]:
    """Per-channel loudest sample in each of ``buckets`` equal slices (0..1): the player's waveform."""
    if buckets < 1:
        raise ValueError(f"buckets must be at least 1, got {buckets}")
    return {"caller": _channel_peaks(caller, buckets), "agent": _channel_peaks(agent, buckets)}
