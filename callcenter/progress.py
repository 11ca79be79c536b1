"""A progress bar for long CLI jobs: redrawn in place on a terminal, a line every 10 % in a log."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

WIDTH = 30


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """``update(done)`` from any thread; ``done`` and ``total`` in the job's own unit (``unit``)."""

    def __init__(self, total: float, unit: str, *, out: TextIO | None = None, label: str = "") -> None:
        self.total = max(total, 1e-9)
        self.unit = unit
        self.label = label
        self.out = out or sys.stderr
        self._tty = self.out.isatty()
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self._last_line = -1
        self._last_draw = 0.0
        self.note = ""

    def update(self, done: float, note: str | None = None) -> None:
        with self._lock:
            if note is not None:
                self.note = note
            fraction = min(max(done / self.total, 0.0), 1.0)
            now = time.monotonic()
            if self._tty:
                if now - self._last_draw < 0.1 and fraction < 1.0:
                    return
                self._last_draw = now
                self.out.write("\r" + self._line(done, fraction, now) + "\x1b[K")
            else:
                decile = int(fraction * 10)
                if decile == self._last_line:
                    return
                self._last_line = decile
                self.out.write(self._line(done, fraction, now) + "\n")
            self.out.flush()

    def _line(self, done: float, fraction: float, now: float) -> str:
        filled = int(fraction * WIDTH)
        elapsed = now - self._start
        eta = elapsed / fraction - elapsed if fraction > 0 else None
        parts = [f"{self.label}[{'#' * filled}{'-' * (WIDTH - filled)}] {fraction * 100:3.0f}%",
                 f"{done:.1f}/{self.total:.1f} {self.unit}", f"elapsed {_clock(elapsed)}",
                 f"ETA {_clock(eta)}" if eta is not None else "ETA --"]
        if self.note:
            parts.append(self.note)
        return "  ".join(parts)

    def close(self) -> None:
        if self._tty:
            self.out.write("\n")
            self.out.flush()
