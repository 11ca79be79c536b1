"""The timer heap: groups by instant, cancellation, compaction."""

from __future__ import annotations

from acd.timers import TimerHeap


def test_timers_come_out_in_groups_of_one_instant() -> None:
    heap = TimerHeap()
    fired: list[str] = []
    for due, name in ((5, "b"), (3, "a"), (5, "c"), (9, "d")):
        heap.schedule(due, lambda owner, n: owner.append(n), name)
    assert heap.next_due() == 3
    assert [t.due for t in heap.pop_due_group(4)] == [3]
    group = heap.pop_due_group(10)
    for timer in group:
        timer.fire(fired, *timer.args)
    assert fired == ["b", "c"]  # scheduling order within the instant
    assert heap.pop_due_group(8) == []
    assert len(heap) == 1


def test_cancelled_timers_are_skipped_and_compacted() -> None:
    heap = TimerHeap()
    timers = [heap.schedule(float(i), print) for i in range(3000)]
    for timer in timers[:2500]:
        heap.cancel(timer)
    heap.cancel(timers[0])  # twice: no effect
    assert len(heap) == 500
    assert heap.next_due() == 2500
    group = heap.pop_due_group(2500)
    heap.cancel(group[0])  # cancelling a popped timer does not disturb the count
    assert len(heap) == 499
