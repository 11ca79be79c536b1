"""From journal to stored recording, and back to audio: compress, encrypt, store; open, decrypt, decode.

Synchronous (runs in worker threads). The stored object's name carries the recording's date
and id; storing again under the same name replaces the file atomically, so finishing a
journal twice (a crash between storing and forgetting the journal) is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from .codec import FORMATS, decode, encode, mulaw_stereo_to_pcm, peaks
from .crypto import EncryptedFile, EncryptedWriter
from .journal import read_journal
from .storage import RecordingStorage, StoredObject


@dataclass
class Archived:
    stored: StoredObject
    duration: float
    header: dict[str, Any]
    events: list[dict[str, Any]]
    truncated: bool


def object_name(recording_id: str, started_at: datetime, fmt: str) -> str:
    return f"{started_at:%Y/%m/%d}/{recording_id}.{FORMATS[fmt].extension}.ccr"


def store_audio(storage: RecordingStorage, key: bytes, tenant_id: int, recording_id: str, started_at: datetime,
                caller: np.ndarray, agent: np.ndarray, fmt: str) -> tuple[StoredObject, float]:
    """Encode the two channels to ``fmt``, encrypt with ``key`` and store; returns the object and seconds."""
    duration = 0.0

    def write(out: Any) -> None:
        nonlocal duration
        writer = EncryptedWriter(out, key)
        duration = encode(caller, agent, fmt, writer)
        writer.close()

    stored = storage.store(tenant_id, object_name(recording_id, started_at, fmt), write)
    return stored, duration


def archive_journal(storage: RecordingStorage, key: bytes, tenant_id: int, recording_id: str,
                    started_at: datetime, fmt: str) -> Archived:
    """Store what the journal holds (all of it, or up to a torn end after a crash)."""
    journal = read_journal(storage.journal_path(tenant_id, recording_id), key)
    caller, agent = mulaw_stereo_to_pcm(journal.audio)
    stored, duration = store_audio(storage, key, tenant_id, recording_id, started_at, caller, agent, fmt)
    return Archived(stored, duration, journal.header, journal.events, journal.truncated)


def load_channels(storage: RecordingStorage, key: bytes, storage_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Caller and agent as 8 kHz int16 PCM."""
    with storage.open(storage_key) as raw:
        plain = EncryptedFile(raw, key)
        return decode(_Chunks(iter(plain)))


def waveform(storage: RecordingStorage, key: bytes, storage_key: str, buckets: int) -> dict[str, Any]:
    caller, agent = load_channels(storage, key, storage_key)
    return peaks(caller, agent, buckets)


class _Chunks:
    """A read()-able file over decrypted chunks (what PyAV reads from)."""

    def __init__(self, chunks: Any) -> None:
        self._chunks = chunks
        self._buf = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buf) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf += chunk
        if size < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:size], self._buf[size:]
        return out
