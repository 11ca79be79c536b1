"""The journal of an in-progress recording: encrypted, append-only, readable after a crash.

One CCR1 record per append (``EncryptedWriter(record_size=None)``), each
starting with a type byte: ``H`` + JSON header (first record), ``A`` +
interleaved mu-law block (caller, agent, caller, agent, ... 8 kHz), ``E`` +
JSON event (pause/resume with the sample offset). Records are authenticated one
by one, so a node killed mid-write loses only the record being written: the
reader keeps every complete record before it and reports ``truncated``.

``flush()`` hands appended records to the kernel, which is what survives the
process being killed (SIGKILL, OOM); ``sync()`` also fsyncs, for surviving a
power loss, and is too slow to do for every block.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recordings.crypto import EncryptedWriter, RecordReader
from recordings.errors import RecordingCorrupt
from recordings.storage import make_private_dirs

HEADER = b"H"
AUDIO = b"A"
EVENT = b"E"


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class JournalWriter:
    """Appends a live recording to a new journal file (O_EXCL: never appends to another call's journal)."""

    def __init__(self, path: Path, key: bytes, header: dict[str, Any]) -> None:
        make_private_dirs(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        self.path = path
        self._file = os.fdopen(fd, "wb")
        try:
            self._writer = EncryptedWriter(self._file, key, record_size=None)
            self._writer.write_record(HEADER + _json(header))
            self.flush()  # a crash before the first audio still leaves a journal that says whose it is
        except BaseException:
            self.abandon()  # e.g. no space left: no half-written journal for the recovery to trip on
            raise

    def append_audio(self, block: bytes) -> None:
        """Append an interleaved stereo mu-law block (even length: one byte per channel per sample)."""
        if len(block) % 2:
            raise ValueError(f"interleaved stereo block must have an even length, got {len(block)}")
        self._writer.write_record(AUDIO + block)

    def append_event(self, event: dict[str, Any]) -> None:
        """Append a JSON event (pause/resume with its sample offset) in order with the audio."""
        self._writer.write_record(EVENT + _json(event))

    def flush(self) -> None:
        """Write what was appended to the OS: it then survives the process being killed."""
        self._writer.flush()

    def sync(self) -> None:
        """Flush and fsync: it then survives a power loss too."""
        self.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Flush and close; a journal gets no final record (it is converted, then removed)."""
        self._writer.close(final=False)
        self._file.close()

    def abandon(self) -> None:
        """Close without raising and delete the file: the recording failed (a full disk), and what
        is buffered could not be written anyway. Frees the journal's space for other calls."""
        try:
            self._file.close()  # closes the descriptor even when the final flush fails
        except OSError:
            pass
        self.path.unlink(missing_ok=True)


@dataclass
class Journal:
    """A journal read back: ``audio`` is all ``A`` blocks concatenated (interleaved 2-channel mu-law)."""

    header: dict[str, Any]
    audio: bytes
    events: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False


def _parse(record: bytes, index: int) -> dict[str, Any]:
    try:
        value = json.loads(record[1:])
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise RecordingCorrupt(f"journal record {index}: not a JSON object")
    return value


def read_journal(path: Path, key: bytes) -> Journal:
    """Everything a journal holds; a torn last record (killed mid-write) is dropped and ``truncated`` set.

    RecordingCorrupt when even the header cannot be read (wrong key, not a journal).
    """
    with path.open("rb") as inp:
        reader = RecordReader(inp, key, require_final=False)
        records = iter(reader)
        first = next(records, None)
        if first is None or first[:1] != HEADER:
            raise RecordingCorrupt(f"{path}: journal header cannot be read (wrong key, damaged or empty)")
        journal = Journal(header=_parse(first, 0), audio=b"")
        audio = bytearray()
        for index, record in enumerate(records, start=1):
            kind, body = record[:1], record[1:]
            if kind == AUDIO:
                # blocks are written whole and even, but an odd one must not swap the channels of all after it
                audio += body[:len(body) - len(body) % 2]
            elif kind == EVENT:
                journal.events.append(_parse(record, index))
            else:
                raise RecordingCorrupt(f"journal record {index}: unknown type {kind!r}")
    journal.audio = bytes(audio)
    journal.truncated = reader.truncated
    return journal
