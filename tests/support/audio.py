"""Test audio for the ASR and IVR tests and the ASR benchmark: espeak-ng speech, 8 kHz, through G.711.

``espeak-ng -v ko`` -> sox to 8 kHz 16-bit mono -> A-law encode/decode (what a
PCMA call delivers) -> padded with silence before and after.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from asr.vad import FRAME_BYTES, SAMPLE_RATE
from sip_bridge.g711 import alaw_to_pcm, pcm_to_alaw, pcm_to_ulaw, ulaw_to_pcm

CACHE = Path(tempfile.gettempdir()) / "callcenter-asr-test-audio"


def tools_missing() -> str | None:
    """Why test audio cannot be made here, or None."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def speak(text: str, *, speed: int = 150, voice: str = "ko") -> bytes:
    """``text`` spoken by espeak-ng as 16-bit 8 kHz mono PCM (no padding, no G.711); cached on disk."""
    CACHE.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha1(f"{voice}|{speed}|{text}".encode()).hexdigest()[:16]
    raw_path = CACHE / f"{key}.raw"
    if not raw_path.exists():
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:  # private names: parallel runs may share the cache
            wav, raw = Path(tmp) / "say.wav", Path(tmp) / "say.raw"
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True,
                           capture_output=True)
            subprocess.run(["sox", str(wav), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
                            "-L", "-t", "raw", str(raw)], check=True, capture_output=True)
            raw.replace(raw_path)
    return raw_path.read_bytes()


def g711_round_trip(pcm: bytes, codec: str = "PCMA") -> bytes:
    if codec == "PCMU":
        return ulaw_to_pcm(pcm_to_ulaw(pcm))
    return alaw_to_pcm(pcm_to_alaw(pcm))


def silence(seconds: float) -> bytes:
    return bytes(int(seconds * SAMPLE_RATE) * 2)


def utterance(text: str, *, speed: int = 150, before: float = 0.5, after: float = 1.0, codec: str = "PCMA") -> bytes:
    """Padded, G.711 round-tripped speech, a whole number of 20 ms frames long."""
    pcm = g711_round_trip(silence(before) + speak(text, speed=speed) + silence(after), codec)
    return pcm[:len(pcm) - len(pcm) % FRAME_BYTES]


def frames(pcm: bytes) -> list[bytes]:
    return [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]


def speech_end_seconds(pcm: bytes, threshold_dbfs: float = -50.0) -> float:
    """Where the speech in ``pcm`` really ends: the end of the last 5 ms above the threshold."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    win = SAMPLE_RATE // 200
    n = len(x) // win
    power = (x[:n * win].reshape(n, win) ** 2).mean(axis=1) / 32768.0 ** 2
    loud = np.nonzero(10 * np.log10(power + 1e-12) > threshold_dbfs)[0]
    return 0.0 if loud.size == 0 else float((loud[-1] + 1) * win / SAMPLE_RATE)


def trim(pcm: bytes, threshold_dbfs: float = -50.0) -> bytes:
    """``pcm`` without the quiet 5 ms steps before its first and after its last loud one."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    win = SAMPLE_RATE // 200
    n = len(x) // win
    power = (x[:n * win].reshape(n, win) ** 2).mean(axis=1) / 32768.0 ** 2
    loud = np.nonzero(10 * np.log10(power + 1e-12) > threshold_dbfs)[0]
    if loud.size == 0:
        return b""
    return pcm[loud[0] * win * 2:(loud[-1] + 1) * win * 2]


def tone(seconds: float, *, freq: float = 440.0, dbfs: float = -20.0) -> bytes:
    n = int(seconds * SAMPLE_RATE)
    amp = 32767 * 10 ** (dbfs / 20) * np.sqrt(2)  # sine RMS = amplitude / sqrt 2
    t = np.arange(n) / SAMPLE_RATE
    return bytes(np.clip(amp * np.sin(2 * np.pi * freq * t), -32768, 32767).astype("<i2").tobytes())


def noise(seconds: float, *, dbfs: float = -60.0, seed: int = 1) -> bytes:
    n = int(seconds * SAMPLE_RATE)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n) * 32768 * 10 ** (dbfs / 20)
    return np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()
