"""The lease timing decisions on a fake clock: when to renew, when to give up, what a late answer means.

The property tests run two nodes' schedules against one in-memory lease table, with requests
that take random times to reach the store and to come back, and nodes that stop being polled
for a while (a paused process): never two owners at once, epochs only growing, and a lease
never held past the renew deadline of its last confirmed request.
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.lease import MemoryLeases, owner_key
from cluster.lease_schedule import (
    RELEASED,
    RENEW_DEADLINE,
    RENEW_PERIOD,
    RETRY_PERIOD,
    TAKEN,
    TTL,
    UNREACHABLE,
    Acquire,
    Gained,
    LeaseSchedule,
    LeaseTiming,
    Lost,
    Release,
    Renew,
)

T = TypeVar("T")


def only(outs: list[Any], kind: type[T]) -> T:
    """The one thing a poll asked for, of the kind expected."""
    [out] = outs
    assert isinstance(out, kind), out
    return out


def test_the_timings_leave_a_second_between_giving_up_and_the_key_lapsing() -> None:
    assert (TTL, RENEW_PERIOD, RENEW_DEADLINE, RETRY_PERIOD) == (3.0, 1.0, 2.0, 0.5)
    assert TTL - RENEW_DEADLINE == 1.0
    LeaseTiming()


def test_timings_out_of_order_are_refused() -> None:
    for bad in (dict(renew_deadline=3.0), dict(renew_period=2.5), dict(retry_period=0.0)):
        try:
            LeaseTiming(**bad)  # type: ignore[arg-type]
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad}")


def _acquire(s: LeaseSchedule, now: float, epoch: int = 5) -> Acquire:
    s.want(1, now)
    out = only(s.poll(now), Acquire)
    s.acquired(out.attempt, epoch, now + 0.01)
    return out


def test_a_lease_is_gained_and_renewed_every_second_from_when_each_renewal_was_sent() -> None:
    s = LeaseSchedule()
    _acquire(s, 10.0)
    assert s.poll(10.01) == [Gained(1, 5)]
    assert s.next_wakeup() == 11.0
    assert s.poll(10.99) == []
    renew = only(s.poll(11.0), Renew)
    assert renew == Renew(1, 5, renew.attempt)
    s.renewed(renew.attempt, True, 11.3)
    assert s.next_wakeup() == 12.0
    assert s.owns(1, 5, 12.99) and not s.owns(1, 5, 13.0)


def test_an_owner_whose_renewals_get_no_answer_gives_up_at_the_renew_deadline_before_the_ttl() -> None:
    s = LeaseSchedule()
    _acquire(s, 10.0)
    s.poll(10.01)
    renew = only(s.poll(11.0), Renew)  # sent, never answered: a paused Redis, a partition
    assert s.poll(11.99) == []
    assert s.owns(1, 5, 11.999)
    assert not s.owns(1, 5, 12.0)
    assert s.poll(12.0) == [Lost(1, 5, UNREACHABLE), Release(1, 5)]
    assert 12.0 < 10.0 + TTL  # the key can lapse at 13.0 at the earliest
    # the answer that finally comes is not believed; the extended key is given back
    s.renewed(renew.attempt, True, 12.5)
    assert s.poll(12.5)[0] == Release(1, 5)
    assert s.held == {}


def test_a_paused_owner_finds_its_lease_gone_when_it_resumes_before_the_keeper_runs() -> None:
    s = LeaseSchedule()
    _acquire(s, 10.0)
    s.poll(10.01)
    # nothing polled from 10.01 to 15: the process was stopped
    assert not s.owns(1, 5, 15.0)
    assert s.poll(15.0)[:2] == [Lost(1, 5, UNREACHABLE), Release(1, 5)]


def test_a_renewal_refused_means_the_lease_is_lost_now_and_sought_again_at_once() -> None:
    s = LeaseSchedule()
    _acquire(s, 10.0)
    s.poll(10.01)
    renew = only(s.poll(11.0), Renew)
    s.renewed(renew.attempt, False, 11.01)
    out = s.poll(11.01)
    assert out[0] == Lost(1, 5, TAKEN)
    assert isinstance(out[1], Acquire)


def test_a_failed_renewal_is_retried_after_the_retry_period_until_the_deadline() -> None:
    s = LeaseSchedule()
    _acquire(s, 10.0)
    s.poll(10.01)
    renew = only(s.poll(11.0), Renew)
    s.failed(renew.attempt, 11.0)
    assert s.poll(11.4) == []
    again = only(s.poll(11.5), Renew)
    s.renewed(again.attempt, True, 11.6)
    assert s.owns(1, 5, 13.4) and not s.owns(1, 5, 13.5)


def test_an_acquisition_answered_after_the_renew_deadline_is_given_back_not_gained() -> None:
    s = LeaseSchedule()
    s.want(1, 10.0)
    acq = only(s.poll(10.0), Acquire)
    s.acquired(acq.attempt, 9, 12.0)
    out = s.poll(12.0)
    assert out == [Release(1, 9)]
    assert s.held == {}


def test_a_lease_gained_and_past_its_deadline_before_the_next_poll_is_only_given_back() -> None:
    s = LeaseSchedule()
    _acquire(s, 10.0)  # answered at 10.01; the node is paused until after the renew deadline
    assert s.poll(12.5) == [Release(1, 5)]  # never reported gained, so nothing to lose


def test_a_refused_acquisition_is_tried_again_every_retry_period() -> None:
    s = LeaseSchedule()
    s.want(1, 10.0)
    acq = only(s.poll(10.0), Acquire)
    s.acquired(acq.attempt, None, 10.01)
    assert s.next_wakeup() == 10.5
    assert s.poll(10.49) == []
    assert isinstance(s.poll(10.5)[0], Acquire)


def test_dropping_a_lease_tells_the_owner_before_releasing_it() -> None:
    s = LeaseSchedule()
    _acquire(s, 10.0)
    s.poll(10.01)
    s.drop(1, 10.5)
    assert s.poll(10.5) == [Lost(1, 5, RELEASED), Release(1, 5)]
    assert s.next_wakeup() is None


def test_an_acquisition_answered_after_the_lease_was_dropped_is_given_back() -> None:
    s = LeaseSchedule()
    s.want(1, 10.0)
    acq = only(s.poll(10.0), Acquire)
    s.drop(1, 10.1)
    s.acquired(acq.attempt, 3, 10.2)
    assert s.poll(10.2) == [Release(1, 3)]


def _now(coro: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never waits (the memory lease store's)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise AssertionError("the coroutine waited")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Node:
    schedule: LeaseSchedule
    leases: MemoryLeases
    sent: dict[int, float] = field(default_factory=dict)
    """Attempt -> when it was sent."""
    confirmed: dict[int, float] = field(default_factory=dict)
    """Epoch -> when the last request the store confirmed for it was sent."""


@dataclass(order=True)
class Flight:
    at: float
    seq: int
    node: int = field(compare=False)
    out: Acquire | Renew | Release = field(compare=False)
    delay: float = field(compare=False)
    """How long its answer takes to come back."""
    answered: bool = field(compare=False, default=False)
    """False: on its way to the store; True: its answer (``result``) on its way back."""
    result: Any = field(compare=False, default=None)


latency = st.one_of(st.floats(0.0, 0.3), st.floats(0.0, 2.5))
moves = st.lists(st.tuples(
    st.integers(0, 1),  # which node
    st.floats(0.0, 1.2),  # time passing
    latency,  # how long a request takes to reach the store
    latency,  # and its answer to come back
    st.booleans(),  # whether that node runs meanwhile (False: paused, polls and answers wait)
), min_size=1, max_size=120)


@settings(max_examples=300, deadline=None)
@given(moves)
def test_two_nodes_never_own_a_tenant_at_once_and_epochs_only_grow(
        steps: list[tuple[int, float, float, float, bool]]) -> None:
    clock = Clock()
    table = MemoryLeases("n0", TTL, clock)
    nodes = [Node(LeaseSchedule(), table), Node(LeaseSchedule(), table.for_node("n1"))]
    flights: list[Flight] = []
    gained: list[int] = []
    seqs = iter(range(1_000_000))
    key = owner_key(1)
    for n in nodes:
        n.schedule.want(1, clock.now)

    def carry_out(node_index: int, outs: list[Any], to_store: float, back: float) -> None:
        node = nodes[node_index]
        for out in outs:
            if isinstance(out, Gained):
                assert not gained or out.epoch > gained[-1]
                gained.append(out.epoch)
            elif not isinstance(out, Lost):
                flights.append(Flight(clock.now + to_store, next(seqs), node_index, out, back))
                if not isinstance(out, Release):
                    node.sent[out.attempt] = clock.now

    def arrive(f: Flight) -> None:
        node, o = nodes[f.node], f.out
        if not f.answered:
            if isinstance(o, Acquire):
                result: Any = _now(node.leases.acquire(key))
            elif isinstance(o, Renew):
                result = _now(node.leases.renew(key, o.epoch))
            else:
                _now(node.leases.release(key, o.epoch))
                return
            flights.append(Flight(clock.now + f.delay, next(seqs), f.node, o, 0.0, True, result))
            return
        assert not isinstance(o, Release)
        sent = node.sent[o.attempt]
        if isinstance(o, Acquire):
            if f.result is not None:
                node.confirmed[f.result] = sent
            node.schedule.acquired(o.attempt, f.result, clock.now)
            return
        if f.result:
            node.confirmed[o.epoch] = max(node.confirmed[o.epoch], sent)
        node.schedule.renewed(o.attempt, f.result, clock.now)

    for paused_or_not, dt, to_store, back, runs in steps:
        end = clock.now + dt
        while True:
            flights.sort()
            if not flights or flights[0].at > end:
                break
            f = flights.pop(0)
            if f.answered and f.node == paused_or_not and not runs and f.at < end:
                f.at = end  # a paused process reads its answers when it runs again
                flights.append(f)
                continue
            clock.now = f.at
            arrive(f)
        clock.now = end
        for j, node in enumerate(nodes):
            if j != paused_or_not or runs:
                carry_out(j, node.schedule.poll(clock.now), to_store, back)
        owners = [j for j, node in enumerate(nodes)
                  if 1 in node.schedule.held and node.schedule.owns(1, node.schedule.held[1], clock.now)]
        assert len(owners) <= 1, f"two owners at {clock.now}"
        for j in owners:
            assert clock.now < nodes[j].confirmed[nodes[j].schedule.held[1]] + RENEW_DEADLINE
