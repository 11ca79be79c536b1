"""Local recording storage: atomic stores with hashes, private modes, key validation, journals, orphans."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

import pytest

from recordings.crypto import Sink
from recordings.storage import LocalStorage, RecordingStorage, StoredObject


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def put(storage: RecordingStorage, tenant_id: int, name: str, data: bytes) -> StoredObject:
    def write(out: Sink) -> None:
        out.write(data[:10])
        out.write(data[10:])

    return storage.store(tenant_id, name, write)


def test_store_round_trip(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "rec")
    data = os.urandom(100_000)
    stored = put(storage, 3, "2026/11/23/abc.ogg.ccr", data)
    assert stored == StoredObject("tenant-3/2026/11/23/abc.ogg.ccr", len(data), hashlib.sha256(data).hexdigest())
    assert (tmp_path / "rec/tenant-3/2026/11/23/abc.ogg.ccr").read_bytes() == data
    assert storage.exists(stored.key) and storage.size(stored.key) == len(data)
    with storage.open(stored.key) as f:
        f.seek(50_000)
        assert f.read(10) == data[50_000:50_010]
    # storing again replaces the file atomically
    assert put(storage, 3, "2026/11/23/abc.ogg.ccr", b"new").size == 3
    storage.delete(stored.key)
    assert not storage.exists(stored.key)
    storage.delete(stored.key)  # already gone: no error


def test_files_and_directories_are_private(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "rec")
    put(storage, 3, "2026/11/23/abc.ogg.ccr", b"x")
    root = tmp_path / "rec"
    for directory in (root, root / "tenant-3", root / "tenant-3/2026", root / "tenant-3/2026/11/23"):
        assert mode(directory) == 0o700, directory
    assert mode(root / "tenant-3/2026/11/23/abc.ogg.ccr") == 0o600


def test_failed_store_leaves_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    put(storage, 1, "a.ccr", b"old")

    def write(out: Sink) -> None:
        out.write(b"partial")
        raise RuntimeError("encoder died")

    with pytest.raises(RuntimeError):
        storage.store(1, "a.ccr", write)
    assert (tmp_path / "tenant-1/a.ccr").read_bytes() == b"old"
    assert sorted(p.name for p in (tmp_path / "tenant-1").iterdir()) == ["a.ccr"]


@pytest.mark.parametrize("key", ["../etc/passwd", "/etc/passwd", "tenant-1/../../x", "tenant-1/../tenant-2/a.ccr",
                                 "tenant-1", "tenant-1/", "tenant-1//a", "tenant-1/./a", "other/a.ccr", "",
                                 "tenant-x/a", "tenant-1/a\0b"])
def test_keys_outside_the_tenant_folders_are_rejected(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path)
    for call in (storage.open, storage.delete, storage.exists, storage.size):
        with pytest.raises(ValueError):
            call(key)


@pytest.mark.parametrize("name", ["../x.ccr", "/abs.ccr", "a/../../x.ccr", "", "journal/x.ccr", ".a.ccr.1.tmp"])
def test_store_rejects_bad_names(tmp_path: Path, name: str) -> None:
    storage = LocalStorage(tmp_path / "rec")
    with pytest.raises(ValueError):
        put(storage, 1, name, b"x")
    assert list(tmp_path.rglob("*.ccr")) == []


def test_journals(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    path = storage.journal_path(4, "r-1")
    assert path == tmp_path / "tenant-4/journal/r-1.ccj"
    for tenant, rid in ((4, "r-1"), (2, "r-9")):
        p = storage.journal_path(tenant, rid)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"j")
    assert storage.list_journals() == [(2, "r-9", tmp_path / "tenant-2/journal/r-9.ccj"), (4, "r-1", path)]
    storage.remove_journal(4, "r-1")
    storage.remove_journal(4, "r-1")
    assert [j[:2] for j in storage.list_journals()] == [(2, "r-9")]
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(ValueError):
            storage.journal_path(1, bad)


def test_orphans_and_stale_temp_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    known = put(storage, 1, "2026/01/02/a.ogg.ccr", b"a").key
    orphan = put(storage, 2, "2026/01/02/b.flac.ccr", b"b").key
    journal = storage.journal_path(1, "live")
    journal.parent.mkdir()
    journal.write_bytes(b"j")
    stale = tmp_path / "tenant-1/2026/01/02/.c.ogg.ccr.abc.tmp"
    fresh = tmp_path / "tenant-1/2026/01/02/.d.ogg.ccr.def.tmp"
    stale.write_bytes(b"t")
    fresh.write_bytes(b"t")
    hour_ago = time.time() - 3700
    os.utime(stale, (hour_ago, hour_ago))
    (tmp_path / "unrelated.txt").write_text("not a tenant file")

    assert storage.orphans({known}) == [orphan]
    assert storage.orphans({known, orphan}) == []
    assert storage.remove_stale_temp() == [stale]
    assert not stale.exists() and fresh.exists() and journal.exists()
