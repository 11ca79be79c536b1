"""Journals: round trip, torn tails, a writer killed with SIGKILL, unreadable headers."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from recordings.crypto import EncryptedWriter
from recordings.errors import RecordingCorrupt
from recordings.journal import JournalWriter, read_journal

KEY = bytes(range(32))
HEADER = {"recording_id": "r1", "tenant_id": 3, "call_id": "c1", "started_at": "2026-11-23T10:00:00+00:00",
          "rate": 8000, "encoding": "mulaw", "channels": ["caller", "agent"]}
ROOT = Path(__file__).resolve().parents[2]


def block(i: int) -> bytes:
    return bytes([i % 256, 255 - i % 256]) * 80  # 10 ms of interleaved stereo


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "tenant-3/journal/r1.ccj"
    writer = JournalWriter(path, KEY, HEADER)
    writer.append_audio(block(0))
    writer.append_event({"type": "pause", "sample": 80})
    writer.append_audio(block(1))
    writer.sync()
    writer.close()
    journal = read_journal(path, KEY)
    assert journal.header == HEADER
    assert journal.audio == block(0) + block(1)
    assert journal.events == [{"type": "pause", "sample": 80}]
    assert not journal.truncated
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert b"mulaw" not in path.read_bytes()


def test_header_is_on_disk_before_any_audio(tmp_path: Path) -> None:
    path = tmp_path / "r1.ccj"
    writer = JournalWriter(path, KEY, HEADER)
    journal = read_journal(path, KEY)
    assert (journal.header, journal.audio, journal.truncated) == (HEADER, b"", False)
    writer.close()


def test_existing_journal_is_never_appended_to(tmp_path: Path) -> None:
    path = tmp_path / "r1.ccj"
    JournalWriter(path, KEY, HEADER).close()
    with pytest.raises(FileExistsError):
        JournalWriter(path, KEY, HEADER)
    writer = JournalWriter(tmp_path / "r2.ccj", KEY, HEADER)
    with pytest.raises(ValueError):
        writer.append_audio(b"odd")
    writer.close()


def test_torn_tail_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "r1.ccj"
    writer = JournalWriter(path, KEY, HEADER)
    for i in range(5):
        writer.append_audio(block(i))
    writer.close()
    whole = path.read_bytes()
    path.write_bytes(whole[:-7])
    journal = read_journal(path, KEY)
    assert journal.truncated and journal.header == HEADER
    assert journal.audio == b"".join(block(i) for i in range(4))


def test_odd_block_is_cut_to_keep_channels_aligned(tmp_path: Path) -> None:
    path = tmp_path / "r1.ccj"
    with path.open("wb") as f:
        writer = EncryptedWriter(f, KEY, record_size=None)
        writer.write_record(b'H{"rate":8000}')
        writer.write_record(b"A" + b"\x01\x02\x03")
        writer.write_record(b"A" + b"\x04\x05")
        writer.close(final=False)
    assert read_journal(path, KEY).audio == b"\x01\x02\x04\x05"


def test_unreadable_header_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "r1.ccj"
    JournalWriter(path, KEY, HEADER).close()
    with pytest.raises(RecordingCorrupt):
        read_journal(path, bytes(32))
    whole = path.read_bytes()
    for damaged in (b"", whole[:10], whole[:-1]):
        path.write_bytes(damaged)
        with pytest.raises(RecordingCorrupt):
            read_journal(path, KEY)


CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from recordings.journal import JournalWriter
    from tests.recordings.test_journal import HEADER, KEY, block

    writer = JournalWriter(Path(sys.argv[1]), KEY, HEADER)
    i = 0
    while True:
        writer.append_audio(block(i))
        if i % 3 == 0:
            writer.append_event({"n": i})
        writer.flush()
        print(i, flush=True)
        i += 1
""")


def test_journal_of_a_killed_writer_keeps_every_flushed_block(tmp_path: Path) -> None:
    path = tmp_path / "r1.ccj"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.stdout is not None
    flushed = -1
    try:
        for line in child.stdout:
            flushed = int(line)
            if flushed >= 300:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL and flushed >= 300
    journal = read_journal(path, KEY)  # the child was still writing: the tail may be torn, it must still read
    blocks = len(journal.audio) // len(block(0))
    assert blocks > flushed
    assert journal.audio == b"".join(block(i) for i in range(blocks))
    assert journal.header == HEADER
    assert [e["n"] for e in journal.events] == list(range(0, blocks, 3))[:len(journal.events)]
    assert len(journal.events) >= flushed // 3 + 1
