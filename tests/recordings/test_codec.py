"""Stereo encode/decode through PyAV (channels kept apart, streaming into the encrypted writer), peaks."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from recordings.codec import FORMATS, Pcm, decode, encode, mulaw_stereo_to_pcm, peaks
from recordings.crypto import EncryptedFile, EncryptedWriter
from sip_bridge.g711 import pcm_to_ulaw, ulaw_to_pcm

RATE = 8000
KEY = bytes(32)


def tone(freq: float, seconds: float = 2.0, amplitude: float = 8000.0) -> Pcm:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def dominant_hz(samples: Pcm) -> float:
    middle = samples[len(samples) // 4:-len(samples) // 4].astype(np.float64)  # skip codec start-up
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    return float(np.fft.rfftfreq(len(middle), 1 / RATE)[np.argmax(spectrum)])


class NonSeekable:
    """A write-only sink, like the encrypted writer PyAV really gets."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def write(self, data: bytes, /) -> int:
        return self.buffer.write(data)

    def flush(self) -> None:
        pass


class ReadOnly:
    """A read-only, non-seekable source, like a decrypting reader."""

    def __init__(self, data: bytes) -> None:
        self._inp = io.BytesIO(data)

    def read(self, size: int = -1, /) -> bytes:
        return self._inp.read(size)


def test_formats() -> None:
    assert {name: (f.extension, f.mime) for name, f in FORMATS.items()} == {
        "opus": ("ogg", "audio/ogg"), "flac": ("flac", "audio/flac")}


def test_mulaw_stereo_is_split_into_channels() -> None:
    caller, agent = tone(1000, 0.1), tone(440, 0.1)
    interleaved = np.column_stack((np.frombuffer(pcm_to_ulaw(caller.tobytes()), np.uint8),
                                   np.frombuffer(pcm_to_ulaw(agent.tobytes()), np.uint8))).tobytes()
    left, right = mulaw_stereo_to_pcm(interleaved)
    assert left.dtype == np.int16 and right.dtype == np.int16
    assert left.tobytes() == ulaw_to_pcm(pcm_to_ulaw(caller.tobytes()))
    assert right.tobytes() == ulaw_to_pcm(pcm_to_ulaw(agent.tobytes()))
    with pytest.raises(ValueError):
        mulaw_stereo_to_pcm(b"\xff")


@pytest.mark.parametrize("fmt", ["opus", "flac"])
def test_round_trip_keeps_channels_apart(fmt: str) -> None:
    caller, agent = tone(1000), tone(440)
    out = NonSeekable()
    assert encode(caller, agent, fmt, out) == pytest.approx(2.0)
    data = out.buffer.getvalue()
    left, right = decode(ReadOnly(data))
    assert len(left) == len(right) == len(caller)
    assert dominant_hz(left) == pytest.approx(1000, abs=5)
    assert dominant_hz(right) == pytest.approx(440, abs=5)
    if fmt == "flac":
        assert np.array_equal(left, caller) and np.array_equal(right, agent)
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.audio[0]
        assert container.format.name == FORMATS[fmt].container
        assert (stream.codec_context.name, stream.channels) == (fmt, 2)
        assert container.duration is not None and container.duration / 1e6 == pytest.approx(2.0, abs=0.05)


def test_encoding_streams_into_the_encrypted_writer() -> None:
    caller, agent = tone(1000), tone(440)
    stored = io.BytesIO()
    writer = EncryptedWriter(stored, KEY, record_size=1024)
    encode(caller, agent, "opus", writer)
    writer.close()
    plain = b"".join(EncryptedFile(io.BytesIO(stored.getvalue()), KEY))
    assert plain.startswith(b"OggS")
    left, right = decode(io.BytesIO(plain))
    assert dominant_hz(left) == pytest.approx(1000, abs=5) and dominant_hz(right) == pytest.approx(440, abs=5)


def test_encode_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        encode(tone(440), tone(440), "mp3", NonSeekable())
    with pytest.raises(ValueError):
        encode(tone(440, 1.0), tone(440, 2.0), "opus", NonSeekable())


def test_peaks() -> None:
    caller = np.zeros(8000, dtype=np.int16)
    caller[4000:4010] = -32768
    agent = tone(440, 1.0, amplitude=16384)
    result = peaks(caller, agent, 100)
    assert set(result) == {"caller", "agent"}
    assert len(result["caller"]) == len(result["agent"]) == 100
    assert result["caller"][50] == 1.0 and sum(result["caller"]) == 1.0
    assert all(0.49 <= v <= 0.5 for v in result["agent"])
    short = peaks(np.array([16384, 0], dtype=np.int16), np.zeros(0, dtype=np.int16), 4)
    assert short == {"caller": [0.5, 0.5, 0.0, 0.0], "agent": [0.0] * 4}
    with pytest.raises(ValueError):
        peaks(caller, agent, 0)
