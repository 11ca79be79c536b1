"""Where recording files live: an interface an object store could implement, and the local-disk backend.

Keys are relative posix paths under the storage root, always starting with the
tenant's folder (``tenant-3/2026/11/23/<id>.ogg.ccr``), so one tenant's files
can be listed, moved or wiped together. Journals (in-progress recordings) are
always files, appended live: ``tenant-<id>/journal/<recording id>.ccj`` on a single
node; in a cluster, where every node mounts the same folder, each node has its own
journal folder, ``tenant-<id>/journal/<node>/<recording id>.ccj``, so that a node
finishes only its own journals at start, and a survivor those of a node that died.
Files are stored already encrypted (recordings/crypto.py); the storage layer
only guarantees atomicity, privacy of the files on disk and integrity hashes.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from recordings.crypto import Sink

JOURNAL_DIR = "journal"
JOURNAL_SUFFIX = ".ccj"
TEMP_SUFFIX = ".tmp"
STALE_TEMP_SECONDS = 3600.0
_TENANT_DIR = re.compile(r"tenant-(\d+)")
_RECORDING_ID = re.compile(r"[A-Za-z0-9_-]+")
_NODE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
"""A cluster node's name (``Settings.node_id``): also a folder name."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What the database keeps about a stored file: its key, and size and sha256 of the stored bytes."""

    key: str
    size: int
    sha256: str


class RecordingStorage(Protocol):
    """Storage backend for recordings (local disk now; an object store could implement it later)."""

    def journal_path(self, tenant_id: int, recording_id: str) -> Path:
        """Local path of a recording's journal (journals are always local files)."""
        ...

    def list_journals(self) -> list[tuple[int, str, Path]]:
        """(tenant id, recording id, path) of every journal of this node: at startup, the
        recordings a crash interrupted."""
        ...

    def journal_ids(self) -> set[str]:
        """Recording ids of the journals of every node (live recordings anywhere in the cluster)."""
        ...

    def for_node(self, node: str) -> RecordingStorage:
        """The same storage seen as node ``node`` (its journals): a survivor finishing them."""
        ...

    def remove_journal(self, tenant_id: int, recording_id: str) -> None:
        """Delete a journal once its recording is stored (no error if it is gone)."""
        ...

    def store(self, tenant_id: int, key_name: str, write: Callable[[Sink], None]) -> StoredObject:
        """Atomically store what ``write`` writes as ``tenant-<id>/<key_name>``: all of it or nothing."""
        ...

    def open(self, key: str) -> BinaryIO:
        """The stored bytes, readable and seekable (range requests)."""
        ...

    def delete(self, key: str) -> None:
        """Delete a stored file; no error if it is missing (retention jobs may repeat)."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a stored file is there (consistency checks against the database)."""
        ...

    def size(self, key: str) -> int:
        """Size of the stored bytes (Content-Length, quota accounting)."""
        ...

    def remove_stale_temp(self) -> list[Path]:
        """Remove what interrupted ``store`` calls left (at startup)."""
        ...

    def orphans(self, known_keys: set[str]) -> list[str]:
        """Keys of stored files not in ``known_keys`` (checked at startup)."""
        ...


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700 (``mkdir(parents=True)`` uses 0777 for parents)."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


class _HashingSink:
    """Passes writes through to the temp file while counting and hashing them (no second read pass)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        self._out.write(data)
        self.hash.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self._out.flush()


class LocalStorage:
    """RecordingStorage on a local directory: ``root/tenant-<id>/...``, directories 0700 and files 0600.
    ``node``: this node's name in a cluster (its own journal folder); None on a single node."""

    def __init__(self, root: Path, node: str | None = None) -> None:
        if node is not None and not _NODE.fullmatch(node):
            raise ValueError(f"invalid node name {node!r}")
        self.root = root
        self.node = node
        make_private_dirs(root)

    def for_node(self, node: str) -> LocalStorage:
        return LocalStorage(self.root, node)

    def _tenant_dir(self, tenant_id: int) -> str:
        if tenant_id < 0:
            raise ValueError(f"invalid tenant id {tenant_id}")
        return f"tenant-{tenant_id}"

    def _path(self, key: str) -> Path:
        """The file of ``key``; ValueError for keys that could leave the root or the tenant folders."""
        parts = key.split("/")
        if (len(parts) < 2 or not _TENANT_DIR.fullmatch(parts[0])
                or any(part in ("", ".", "..") or "\0" in part for part in parts)):
            raise ValueError(f"invalid storage key {key!r}")
        return self.root.joinpath(*parts)

    def journal_path(self, tenant_id: int, recording_id: str) -> Path:
        if not _RECORDING_ID.fullmatch(recording_id):
            raise ValueError(f"invalid recording id {recording_id!r}")
        directory = self.root / self._tenant_dir(tenant_id) / JOURNAL_DIR
        if self.node is not None:
            directory /= self.node
        return directory / f"{recording_id}{JOURNAL_SUFFIX}"

    def list_journals(self) -> list[tuple[int, str, Path]]:
        found = []
        for path in sorted(self.root.glob(self._journal_pattern())):
            tenant = _TENANT_DIR.fullmatch(path.relative_to(self.root).parts[0])
            recording_id = path.name[:-len(JOURNAL_SUFFIX)]
            if tenant and _RECORDING_ID.fullmatch(recording_id) and path.is_file():
                found.append((int(tenant.group(1)), recording_id, path))
        return found

    def _journal_pattern(self) -> str:
        node = "" if self.node is None else f"{self.node}/"
        return f"tenant-*/{JOURNAL_DIR}/{node}*{JOURNAL_SUFFIX}"

    def journal_ids(self) -> set[str]:
        found: set[str] = set()
        for pattern in (f"tenant-*/{JOURNAL_DIR}/*{JOURNAL_SUFFIX}", f"tenant-*/{JOURNAL_DIR}/*/*{JOURNAL_SUFFIX}"):
            found.update(path.name[:-len(JOURNAL_SUFFIX)] for path in self.root.glob(pattern))
        return found

    def remove_journal(self, tenant_id: int, recording_id: str) -> None:
        self.journal_path(tenant_id, recording_id).unlink(missing_ok=True)

    def store(self, tenant_id: int, key_name: str, write: Callable[[Sink], None]) -> StoredObject:
        """Write to a temp file beside the target, fsync, rename over it (an existing file is replaced)."""
        key = f"{self._tenant_dir(tenant_id)}/{key_name}"
        path = self._path(key)
        if key_name.split("/", 1)[0] == JOURNAL_DIR or _is_temp(path.name):
            raise ValueError(f"invalid storage key {key!r}: reserved for journals or temp files")
        make_private_dirs(path.parent)
        fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as out:
                sink = _HashingSink(out)
                write(sink)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return StoredObject(key=key, size=sink.size, sha256=sink.hash.hexdigest())

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def _tenant_files(self) -> list[Path]:
        """Every file in the tenant folders outside the journal folders (stored files and temp files)."""
        files: list[Path] = []
        for tenant in sorted(self.root.iterdir()):
            if not (_TENANT_DIR.fullmatch(tenant.name) and tenant.is_dir()):
                continue
            for directory, subdirs, names in os.walk(tenant):
                if Path(directory) == tenant and JOURNAL_DIR in subdirs:
                    subdirs.remove(JOURNAL_DIR)
                subdirs.sort()
                files.extend(Path(directory) / name for name in sorted(names))
        return files

    def orphans(self, known_keys: set[str]) -> list[str]:
        """Keys of stored files the database does not know (crash between store() and commit, or lost rows).

        A recording being finalised right now is stored before its row is
        committed, so callers should only act on orphans that stay orphans.
        """
        keys = (path.relative_to(self.root).as_posix() for path in self._tenant_files() if not _is_temp(path.name))
        return [key for key in keys if key not in known_keys]

    def remove_stale_temp(self, max_age_s: float = STALE_TEMP_SECONDS) -> list[Path]:
        """Delete temp files left by store() calls that died (older than ``max_age_s``); returns them."""
        cutoff = time.time() - max_age_s
        removed = []
        for path in self._tenant_files():
            if not _is_temp(path.name):
                continue
            try:
                stale = path.stat().st_mtime < cutoff
            except FileNotFoundError:  # its store() just finished or cleaned up
                continue
            if stale:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed
