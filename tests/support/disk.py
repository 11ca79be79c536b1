"""A small filesystem a test can fill: a size-limited tmpfs mounted for the test's duration.

Mounting needs root (CI runs the tests as root, as for the loopback capture of tests/support/sniff.py);
where mounting is refused, the test is skipped and says why.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHUNK = 64 * 1024


@contextmanager
def small_tmpfs(path: Path, size_kb: int) -> Iterator[Path]:
    """``path`` (created if missing) as a tmpfs of ``size_kb`` KiB for the block, unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a {size_kb} KiB tmpfs at {path} ({mounted.stderr.strip() or 'mount failed'}): "
                    "the disk-full tests need root and permission to mount")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], capture_output=True)


def fill(directory: Path) -> Path:
    """Write zeros into ``directory`` until its filesystem has no space left; returns the filler
    file (delete it to give the space back)."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        size = CHUNK
        while size:
            try:
                os.write(fd, bytes(size))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size //= 2  # down to the last byte the filesystem takes
    finally:
        os.close(fd)
    return filler
