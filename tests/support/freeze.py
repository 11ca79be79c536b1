"""Some threads of another process stopped while the rest of it runs on: a stuck worker pool, for real.

``ptrace`` stops one thread of a process without the others (``SIGSTOP`` would stop them all).
Threads are picked by their OS name (``/proc/PID/task/TID/comm``), which is how the node names
its pools (``asr``: the speech recognizers). A thread is only held while it sleeps in a futex
wait, as an idle pool worker does: never where it could hold Python's GIL and freeze the whole
process. Needs root (or CAP_SYS_PTRACE); where ptrace is refused the test is skipped.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000
"""waitpid flag: wait for threads too (``__WALL``)."""
FUTEX = {"x86_64": 202, "aarch64": 98}
"""The futex system call's number: an idle thread sleeps in it."""

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


def threads_named(pid: int, name: str) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return sorted(int(t.name) for t in tasks.iterdir() if (t / "comm").read_text().strip() == name)


def _ptrace(request: int, tid: int) -> None:
    if _libc.ptrace(request, tid, None, None) != 0:
        err = ctypes.get_errno()
        if request == PTRACE_SEIZE and err == 1:  # EPERM
            pytest.skip("ptrace is not permitted here: freezing a worker thread needs root or CAP_SYS_PTRACE")
        raise OSError(err, f"ptrace({request:#x}, {tid}): {os.strerror(err)}")


def _stop(pid: int, tid: int, attempts: int = 200) -> None:
    futex = FUTEX[os.uname().machine]
    for _ in range(attempts):
        _ptrace(PTRACE_SEIZE, tid)
        _ptrace(PTRACE_INTERRUPT, tid)
        os.waitpid(tid, WALL)
        if Path(f"/proc/{pid}/task/{tid}/syscall").read_text().split()[0] == str(futex):
            return
        _ptrace(PTRACE_DETACH, tid)  # busy (it may hold the GIL): let it run and try again
        time.sleep(0.01)
    raise RuntimeError(f"thread {tid} never went idle")


@contextmanager
def frozen_threads(pid: int, name: str) -> Iterator[list[int]]:
    """Every thread of ``pid`` named ``name``, stopped for the block, then let go."""
    tids = threads_named(pid, name)
    if not tids:
        raise RuntimeError(f"process {pid} has no thread named {name!r}")
    held: list[int] = []
    try:
        for tid in tids:
            _stop(pid, tid)
            held.append(tid)
        yield tids
    finally:
        for tid in held:
            _ptrace(PTRACE_DETACH, tid)
