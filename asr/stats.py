"""Process-wide speech recognition counters (for metrics)."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AsrStats:
    """A snapshot of the counters of this process (all engines together)."""

    sessions: int  # live sessions now
    sessions_total: int  # sessions opened since the process started
    utterances: int  # results delivered
    mean_latency: float | None  # seconds from the VAD's end of speech to the result; None before the first
    max_latency: float | None


class _Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # sessions may live on several loops/threads
        self.live = 0
        self.total = 0
        self.utterances = 0
        self.latency_sum = 0.0
        self.latency_max: float | None = None

    def session_opened(self) -> None:
        with self._lock:
            self.live += 1
            self.total += 1

    def session_closed(self) -> None:
        with self._lock:
            self.live -= 1

    def utterance(self, latency: float) -> None:
        with self._lock:
            self.utterances += 1
            self.latency_sum += latency
            self.latency_max = latency if self.latency_max is None else max(self.latency_max, latency)

    def snapshot(self) -> AsrStats:
        with self._lock:
            mean = self.latency_sum / self.utterances if self.utterances else None
            return AsrStats(self.live, self.total, self.utterances, mean, self.latency_max)


counters = _Counters()


def asr_stats() -> AsrStats:
    """Live sessions, utterances and latency of this process so far."""
    return counters.snapshot()
