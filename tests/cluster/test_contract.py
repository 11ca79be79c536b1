"""One contract for both implementations: the in-memory log and leases (single node) behave
as the Redis ones (cluster), down to ids, blocking reads, restarts of a stream and bad input."""

from __future__ import annotations

import asyncio

import pytest

from cluster import START, Deduper, owner_key, parse_id

from .conftest import Backend

FAR_AHEAD = "99999999999999-0"
"""A cursor beyond any id the stream made: what a reader holds after Redis restarted empty."""


async def test_appended_events_come_back_in_order_with_their_command_ids(backend: Backend) -> None:
    ids = [await backend.log.append(1, {"n": n, "text": "파란"}, f"cmd-{n}") for n in range(250)]
    assert [parse_id(i) for i in ids] == sorted({parse_id(i) for i in ids})
    got = []
    after = START
    while batch := await backend.log.read(1, after, 0):
        got += batch
        after = batch[-1].entry_id
    assert [(e.entry_id, e.command_id, e.event) for e in got] == [
        (i, f"cmd-{n}", {"n": n, "text": "파란"}) for n, i in enumerate(ids)]


async def test_a_read_waits_for_the_next_append(backend: Backend) -> None:
    first = await backend.log.append(1, {"n": 1}, "a")
    reader = asyncio.create_task(backend.log.read(1, first, 5000))
    await asyncio.sleep(0.1)
    assert not reader.done()
    second = await backend.log.append(1, {"n": 2}, "b")
    assert [e.entry_id for e in await reader] == [second]


async def test_a_read_with_nothing_new_returns_nothing_when_its_time_is_up(backend: Backend) -> None:
    last = await backend.log.append(1, {"n": 1}, "a")
    assert await backend.log.read(1, last, 100) == []
    assert await backend.log.read(2, START, 0) == []


async def test_tenants_have_separate_logs(backend: Backend) -> None:
    await backend.log.append(1, {"tenant": 1}, "x")
    await backend.log.append(2, {"tenant": 2}, "x")
    assert [e.event for e in await backend.log.range(2, START)] == [{"tenant": 2}]


async def test_range_replays_what_follows_a_position_and_trim_forgets_what_precedes_it(backend: Backend) -> None:
    ids = [await backend.log.append(1, {"n": n}, f"c{n}") for n in range(5)]
    assert [e.event["n"] for e in await backend.log.range(1, ids[1])] == [2, 3, 4]
    assert await backend.log.trim(1, ids[2]) == 3
    assert [e.event["n"] for e in await backend.log.range(1, START)] == [3, 4]


async def test_a_log_trimmed_empty_is_not_mistaken_for_one_that_started_again(backend: Backend) -> None:
    ids = [await backend.log.append(1, {"n": n}, f"c{n}") for n in range(3)]
    await backend.log.trim(1, ids[-1])
    assert await backend.log.read(1, ids[-1], 0) == []
    newer = await backend.log.append(1, {"n": 3}, "c3")
    assert [e.entry_id for e in await backend.log.read(1, ids[-1], 0)] == [newer]


async def test_a_cursor_beyond_the_stream_reads_it_from_the_start(backend: Backend) -> None:
    """The stream started again (Redis restarted empty, its clock behind): nothing is skipped."""
    entry = await backend.log.append(1, {"n": 1}, "a")
    assert [e.entry_id for e in await backend.log.read(1, FAR_AHEAD, 100)] == [entry]
    assert [e.entry_id for e in await backend.log.range(1, FAR_AHEAD)] == [entry]


async def test_an_append_repeated_by_a_sender_after_a_timeout_is_applied_once(backend: Backend) -> None:
    for command in ("hangup-1", "hangup-1", "queue-2", "hangup-1"):
        await backend.log.append(1, {"command": command}, command)
    dedupe = Deduper()
    applied = [e.command_id for e in await backend.log.range(1, START) if dedupe.first(e.command_id)]
    assert applied == ["hangup-1", "queue-2"]


@pytest.mark.parametrize(("event", "command_id", "error"), [
    (["not", "a", "dict"], "c", "an event is a dict, not list"),
    ({"when": object()}, "c", "event for tenant 1 is not JSON"),
    ({"x": float("nan")}, "c", "event for tenant 1 is not JSON"),
    ({"blob": "x" * 70_000}, "c", "event for tenant 1 is larger than 65536 bytes"),
    ({"n": 1}, "", "a command id is a string of 1 to 200 characters"),
    ({"n": 1}, "c" * 201, "a command id is a string of 1 to 200 characters"),
])
async def test_a_bad_event_is_refused_with_a_reason_and_nothing_is_appended(
        backend: Backend, event: object, command_id: str, error: str) -> None:
    with pytest.raises((TypeError, ValueError), match=error):
        await backend.log.append(1, event, command_id)  # type: ignore[arg-type]
    assert await backend.log.range(1, START) == []


async def test_a_malformed_position_is_refused(backend: Backend) -> None:
    for bad in ("", "12", "a-b", "$"):
        with pytest.raises(ValueError, match="not a stream id"):
            await backend.log.read(1, bad, 0)


async def test_a_lease_has_one_holder_and_each_acquisition_a_higher_epoch(backend: Backend) -> None:
    a, b = backend.leases("a"), backend.leases("b")
    key = owner_key(9)
    first = await a.acquire(key)
    assert first is not None
    assert await b.acquire(key) is None
    assert await a.renew(key, first)
    assert not await b.renew(key, first)
    assert not await b.release(key, first)
    assert await a.release(key, first)
    assert not await a.renew(key, first)
    second = await b.acquire(key)
    assert second is not None and second > first
    assert await a.acquire(key) is None
    assert not await a.release(key, second)


async def test_a_lease_not_renewed_lapses_after_its_ttl(backend: Backend) -> None:
    short = backend.short_leases(0.2)
    epoch = await short.acquire(owner_key(3))
    assert epoch is not None
    await asyncio.sleep(0.3)
    assert not await short.renew(owner_key(3), epoch)
    assert await short.acquire(owner_key(3)) is not None
