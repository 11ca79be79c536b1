"""One heap of cancellable timers on the engine's timeline.

A timer holds a plain function and its arguments, called by the owner as
``fire(owner, *args)``, rather than a closure: a loaded floor keeps tens of thousands of
timers pending, and closures (function, cells) would triple the objects CPython's cycle
collector walks on every full collection.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any


class Timer:
    """A pending call; a cancelled timer stays in the heap, skipped when it surfaces."""

    __slots__ = ("due", "fire", "args", "cancelled", "in_heap")

    def __init__(self, due: float, fire: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.due = due
        self.fire = fire
        self.args = args
        self.cancelled = False
        self.in_heap = True


class TimerHeap:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cancelled = 0

    def schedule(self, due: float, fire: Callable[..., None], *args: Any) -> Timer:
        timer = Timer(due, fire, args)
        heapq.heappush(self._heap, (due, next(self._seq), timer))
        return timer

    def reschedule(self, timer: Timer, due: float) -> Timer:
        """Arm a timer that has fired again (periodic timers reuse their object)."""
        assert not timer.in_heap, "only a fired timer can be rescheduled"
        timer.due, timer.cancelled, timer.in_heap = due, False, True
        heapq.heappush(self._heap, (due, next(self._seq), timer))
        return timer

    def cancel(self, timer: Timer | None) -> None:
        if timer is None or timer.cancelled:
            return
        timer.cancelled = True
        if timer.in_heap:
            self._cancelled += 1
            if self._cancelled > 1024 and self._cancelled > len(self._heap) // 2:
                self._compact()

    def next_due(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)[2].in_heap = False
            self._cancelled -= 1
        return heap[0][0] if heap else None

    def pop_due_group(self, until: float) -> list[Timer]:
        """The live timers sharing the earliest due time, if that time is <= ``until``.

        Timers due at the same instant are applied together before routing, so a decision
        never sees half of what happened at that instant. A timer of the group cancelled by
        an earlier one of the group must not fire: the caller checks ``cancelled``."""
        due = self.next_due()
        if due is None or due > until:
            return []
        group: list[Timer] = []
        heap = self._heap
        while heap and heap[0][0] == due:
            timer = heapq.heappop(heap)[2]
            timer.in_heap = False
            if timer.cancelled:
                self._cancelled -= 1
            else:
                group.append(timer)
        return group

    def pending(self) -> list[Timer]:
        """The live timers in firing order (due time, then the order they were set in):
        scheduling them again in this order into an empty heap fires them alike."""
        return [entry[2] for entry in sorted(self._heap, key=lambda entry: entry[:2]) if not entry[2].cancelled]

    def __len__(self) -> int:
        return len(self._heap) - self._cancelled

    def _compact(self) -> None:
        for entry in self._heap:
            if entry[2].cancelled:
                entry[2].in_heap = False
        self._heap = [entry for entry in self._heap if not entry[2].cancelled]
        heapq.heapify(self._heap)
        self._cancelled = 0
