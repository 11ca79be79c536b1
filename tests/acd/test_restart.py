"""Snapshot and restore: what a new process takes over from a dead one."""

from __future__ import annotations

import json

import pytest

from acd import (
    AcdEngine,
    AcdEvent,
    AgentState,
    AgentStateChanged,
    AgentStateRequested,
    CallbackFailed,
    CallbackRequested,
    CallEnded,
    CallQueued,
    DialCallback,
    OfferAccepted,
    QueueConfig,
    Strategy,
)
from tests.acd.floor import Floor, offers

A = AgentState


def restarted(floor: Floor, now: float) -> tuple[AcdEngine, list[AcdEvent]]:
    snapshot = json.loads(json.dumps(floor.engine.snapshot()))  # it must survive JSON
    events: list[AcdEvent] = []
    return AcdEngine.restore(snapshot, now, on_event=events.append), events


def test_work_of_the_dead_process_is_released_and_the_rest_kept() -> None:
    names = ("ringing", "talking", "wrapping", "asked", "lunch", "off", "idle")
    floor = Floor(QueueConfig("sales", wrapup=60, announce_every=None), agents={n: {"sales": 1} for n in names},
                  logged_in=False)
    for at, n in enumerate(names[:4], start=1):
        floor.available(n, at)
        assert offers(floor.call(f"k-{n}", "sales", at)) == [(f"k-{n}", n)]
    for n in ("talking", "wrapping", "asked"):
        floor.engine.handle(OfferAccepted(f"k-{n}", n, 5))
    floor.engine.handle(CallEnded("k-wrapping", 8))
    floor.engine.handle(AgentStateRequested("asked", "break", 9, "lunch"))
    floor.engine.handle(AgentStateRequested("lunch", "break", 9, "lunch"))
    floor.engine.handle(AgentStateRequested("off", "offline", 9))
    floor.available("idle", 9)

    engine, events = restarted(floor, 100)
    views = {v.agent_id: (v.state, v.reason, v.since, v.call_id) for v in engine.agents()}
    assert views == {
        "ringing": (A.AVAILABLE, "restart", 100, None), "talking": (A.AVAILABLE, "restart", 100, None),
        "wrapping": (A.AVAILABLE, "restart", 100, None),
        "asked": (A.BREAK, "lunch", 100, None),  # the break asked for during the call
        "lunch": (A.BREAK, "lunch", 9, None), "off": (A.OFFLINE, None, 0, None),
        "idle": (A.AVAILABLE, None, 9, None)}
    assert sorted((e.agent_id, e.old, e.new, e.reason) for e in events if isinstance(e, AgentStateChanged)) == [
        ("asked", A.ON_CALL, A.BREAK, "lunch"), ("ringing", A.RESERVED, A.AVAILABLE, "restart"),
        ("talking", A.ON_CALL, A.AVAILABLE, "restart"), ("wrapping", A.WRAP_UP, A.AVAILABLE, "restart")]
    assert engine.waiting() == []  # live calls died with the process
    assert engine.advance(100) == []
    assert engine.next_deadline() is None


def test_callbacks_resume_in_their_original_order() -> None:
    floor = Floor(QueueConfig("sales", announce_every=None, callback_retry_delay=60),
                  agents={"a": {"sales": 1}, "b": {"sales": 1}}, logged_in=False)
    for i in range(4):
        floor.call(f"k{i}", "sales", i)
    for i in (2, 0, 3, 1):  # requested in another order than they queued
        floor.engine.handle(CallbackRequested(f"k{i}", f"555010{i}", 10 + i))
    assert floor.available("a", 20) == [DialCallback("k0", "a", "5550100")]  # dialing at the crash
    floor.available("b", 21)
    floor.engine.handle(CallbackFailed("k1", 22))  # b's dial failed: k1 retries at 82
    assert [(w.call_id, w.retry_at) for w in floor.engine.waiting()] == [
        ("k0", None), ("k1", 82), ("k2", None), ("k3", None)]
    floor.engine.handle(AgentStateRequested("b", "offline", 23))  # b dials k2 first, then logs off

    engine, _ = restarted(floor, 50)
    views = engine.waiting()
    assert [(w.call_id, w.position, w.is_callback, w.enqueued_at, w.retry_at) for w in views] == [
        ("k0", 1, True, 0, None), ("k1", 2, True, 1, 82), ("k2", 3, True, 2, None), ("k3", 4, True, 3, None)]
    assert engine.next_deadline() == 50  # routing pending: a is available again
    assert engine.advance(50) == [DialCallback("k0", "a", "5550100")]
    engine.handle(AgentStateRequested("b", "available", 51))
    assert engine.next_deadline() == 82
    # b dials k2 at once (k1 is still sitting out its retry delay)
    assert engine.agents()[1].call_id == "k2"
    assert engine.handle(CallbackFailed("k0", 60)) == [DialCallback("k3", "a", "5550103")]  # k0, k1 sit out
    assert engine.advance(82) == []
    assert engine.handle(CallbackFailed("k3", 90)) == [DialCallback("k1", "a", "5550101")]  # k1 is back first


def test_restore_keeps_cursors_counters_and_sequence() -> None:
    floor = Floor(QueueConfig("sales", strategy=Strategy.ROUND_ROBIN, wrapup=0, announce_every=None),
                  agents={"a": {"sales": 1}, "b": {"sales": 1}, "c": {"sales": 1}})
    floor.call("k1", "sales", 1)
    floor.engine.handle(OfferAccepted("k1", "a", 2))
    floor.engine.handle(CallEnded("k1", 3))
    engine, _ = restarted(floor, 10)
    assert engine.queue_stats("sales", 10).answered == 1
    assert engine.agents()[0].agent_id == "a"
    assert offers(engine.handle(CallQueued("k2", "sales", 0, 11))) == [("k2", "b")]  # after a, as before


def test_a_clock_behind_the_snapshot_shifts_every_time() -> None:
    """After a reboot the monotonic clock starts again near zero."""
    floor = Floor(QueueConfig("sales", announce_every=None, callback_retry_delay=60),
                  agents={"a": {"sales": 1}}, logged_in=False)
    floor.call("k1", "sales", 1000)
    floor.engine.handle(CallbackRequested("k1", "5550100", 1005))
    floor.available("a", 1010)
    floor.engine.handle(CallbackFailed("k1", 1020))  # retry at 1080
    engine, _ = restarted(floor, 5)  # the snapshot was taken at 1020
    view, = engine.waiting()
    assert (view.enqueued_at, view.retry_at) == (-15, 65)
    assert engine.agents()[0].since == 5  # released by the failed dial at 1020


def test_a_snapshot_of_another_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        AcdEngine.restore({"format": 99}, 0)
