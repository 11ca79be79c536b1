"""When to acquire, renew, give up and release tenants' leases (sans-I/O: time in, requests out).

A lease is a Redis key that lives ``ttl`` seconds unless renewed. The holder cannot see that
key expire: it only knows when it *sent* its last request that Redis confirmed. The key's
time to live started when Redis ran that request, so not before it was sent, and so the key
lives at least until ``sent + ttl``. The holder stops acting as owner at ``sent +
renew_deadline``, a margin ``ttl - renew_deadline`` before the earliest instant another node
could take the lease over, as Kubernetes' leader election does with its RenewDeadline. The
margin absorbs clock-rate drift and a late timer; a holder stopped for longer than that (a
paused process) is what the fencing epoch is for (see :mod:`cluster.lease`).

The invariant, checked after every step by the tests: a tenant is only *held* (reported
gained and not yet lost) while ``now < sent + renew_deadline`` for a request Redis
confirmed, and a lost lease is reported at that instant at the latest.

The caller feeds it the clock (:meth:`LeaseSchedule.poll`) and the answers to the requests
it asked for, and carries out what comes back: :class:`Acquire`, :class:`Renew` and
:class:`Release` go to Redis, :class:`Gained` and :class:`Lost` to whoever acts as owner.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

TTL = 3.0
"""Seconds a lease key lives in Redis without renewal: a dead owner's tenants are free again
within 3 s of its last renewal."""
RENEW_PERIOD = 1.0
"""The owner renews every second: two renewals may fail (a Redis restart, a lost packet)
before the renew deadline."""
RENEW_DEADLINE = 2.0
"""The owner gives a lease up when no renewal sent in the last 2 s was confirmed: 1 s before
the key could lapse, so two nodes never both believe they own a tenant."""
RETRY_PERIOD = 0.5
"""Candidates try to acquire every 0.5 s, a failed renewal is retried after 0.5 s, and no
request may take longer than 0.5 s. A dead owner's tenant has a new owner within TTL +
RETRY_PERIOD = 3.5 s of the dead owner's last renewal (the issue asks for 10 s)."""

TAKEN = "taken"
"""Lost: Redis says the lease is no longer ours (it lapsed, or Redis lost its data)."""
UNREACHABLE = "unreachable"
"""Lost: no renewal was confirmed before the renew deadline (Redis unreachable or too slow)."""
RELEASED = "released"
"""Lost: we gave it up (no longer wanted: drain, or stopping)."""


@dataclass(frozen=True)
class LeaseTiming:
    ttl: float = TTL
    renew_period: float = RENEW_PERIOD
    renew_deadline: float = RENEW_DEADLINE
    retry_period: float = RETRY_PERIOD

    def __post_init__(self) -> None:
        if not 0 < self.renew_period < self.renew_deadline < self.ttl:
            raise ValueError("lease timings need 0 < renew_period < renew_deadline < ttl")
        if self.retry_period <= 0:
            raise ValueError("the lease retry period must be positive")

    @property
    def request_timeout(self) -> float:
        """Seconds one request to Redis may take before it counts as failed."""
        return self.retry_period


@dataclass(frozen=True)
class Acquire:
    tenant: int
    attempt: int


@dataclass(frozen=True)
class Renew:
    tenant: int
    epoch: int
    attempt: int


@dataclass(frozen=True)
class Release:
    tenant: int
    epoch: int


@dataclass(frozen=True)
class Gained:
    tenant: int
    epoch: int


@dataclass(frozen=True)
class Lost:
    tenant: int
    epoch: int
    reason: str


Output = Acquire | Renew | Release | Gained | Lost


@dataclass
class _Lease:
    next_try: float
    epoch: int | None = None
    """Held when set."""
    valid_until: float = 0.0
    renew_at: float = 0.0
    attempt: int | None = None
    """The request in flight, if any."""


@dataclass(frozen=True)
class _Attempt:
    tenant: int
    sent: float
    epoch: int | None
    """The epoch a renewal is for (None for an acquisition)."""


class LeaseSchedule:
    """The leases one node wants, and what to do about each of them at a given time (see module)."""

    def __init__(self, timing: LeaseTiming | None = None) -> None:
        self.timing = timing or LeaseTiming()
        self._leases: dict[int, _Lease] = {}
        self._attempts: dict[int, _Attempt] = {}
        self._numbers = itertools.count(1)
        self._out: list[Output] = []

    @property
    def held(self) -> dict[int, int]:
        """Tenant -> epoch of the leases held (as of the last call)."""
        return {t: lease.epoch for t, lease in self._leases.items() if lease.epoch is not None}

    @property
    def wanted(self) -> list[int]:
        return list(self._leases)

    def owns(self, tenant: int, epoch: int, now: float) -> bool:
        """Whether ``tenant`` is held at ``epoch`` and its renew deadline has not passed: ask
        before acting as owner, the clock may have moved since the last :meth:`poll`."""
        lease = self._leases.get(tenant)
        return lease is not None and lease.epoch == epoch and now < lease.valid_until

    def want(self, tenant: int, now: float) -> None:
        """Try to acquire ``tenant`` (from the next :meth:`poll`) and keep it."""
        self._leases.setdefault(tenant, _Lease(next_try=now))

    def drop(self, tenant: int, now: float) -> None:
        """Stop wanting ``tenant``: reported lost, then released if held."""
        lease = self._leases.pop(tenant, None)
        if lease is not None and lease.epoch is not None:
            self._give_up(tenant, lease.epoch, RELEASED)

    def _answer(self, attempt: int, now: float) -> tuple[_Attempt, _Lease | None]:
        """The request answered, and its lease if the answer is still awaited (else None)."""
        self._expire(now)
        sent = self._attempts.pop(attempt)
        lease = self._leases.get(sent.tenant)
        if lease is None or lease.attempt != attempt:
            return sent, None
        lease.attempt = None
        return sent, lease

    def acquired(self, attempt: int, epoch: int | None, now: float) -> None:
        """Redis answered an :class:`Acquire`: our ``epoch``, or None (someone else holds it)."""
        sent, lease = self._answer(attempt, now)
        if epoch is None:
            if lease is not None:
                lease.next_try = sent.sent + self.timing.retry_period
            return
        if lease is None or now >= sent.sent + self.timing.renew_deadline:
            # nobody waits for it any more, or it came too late to be safe: give it back
            self._out.append(Release(sent.tenant, epoch))
            if lease is not None:
                lease.next_try = now + self.timing.retry_period
            return
        lease.epoch = epoch
        lease.valid_until = sent.sent + self.timing.renew_deadline
        lease.renew_at = sent.sent + self.timing.renew_period
        self._out.append(Gained(sent.tenant, epoch))

    def renewed(self, attempt: int, ok: bool, now: float) -> None:
        """Redis answered a :class:`Renew`: extended (``ok``), or the key is not ours any more."""
        sent, lease = self._answer(attempt, now)
        if lease is None or lease.epoch != sent.epoch:
            if ok and sent.epoch is not None:
                self._out.append(Release(sent.tenant, sent.epoch))  # extended a lease already given up
            return
        assert lease.epoch is not None
        if ok:
            lease.valid_until = max(lease.valid_until, sent.sent + self.timing.renew_deadline)
            lease.renew_at = sent.sent + self.timing.renew_period
            return
        self._out.append(Lost(sent.tenant, lease.epoch, TAKEN))
        lease.epoch = None
        lease.next_try = now

    def failed(self, attempt: int, now: float) -> None:
        """A request got no answer (Redis unreachable, or slower than ``request_timeout``)."""
        sent, lease = self._answer(attempt, now)
        if lease is None:
            return
        if lease.epoch is not None:
            lease.renew_at = now + self.timing.retry_period
        else:
            lease.next_try = sent.sent + self.timing.retry_period

    def _expire(self, now: float) -> None:
        for tenant, lease in self._leases.items():
            if lease.epoch is not None and now >= lease.valid_until:
                # Release too: if only the answers were slow, the key is freed before its TTL
                self._give_up(tenant, lease.epoch, UNREACHABLE)
                lease.epoch = None
                lease.attempt = None
                lease.next_try = now + self.timing.retry_period

    def _give_up(self, tenant: int, epoch: int, reason: str) -> None:
        """Report the lease lost and release it; one gained since the last :meth:`poll` (its
        :class:`Gained` not yet handed out: the node was not polled in time) is only released,
        so that nobody acts as the owner of an epoch already past its deadline, perhaps after
        another node gained a newer one."""
        unreported = Gained(tenant, epoch)
        if unreported in self._out:
            self._out.remove(unreported)
        else:
            self._out.append(Lost(tenant, epoch, reason))
        self._out.append(Release(tenant, epoch))

    def _send(self, tenant: int, lease: _Lease, now: float) -> int:
        attempt = next(self._numbers)
        self._attempts[attempt] = _Attempt(tenant, now, lease.epoch)
        lease.attempt = attempt
        return attempt

    def poll(self, now: float) -> list[Output]:
        """Everything to do at ``now``, in order (a :class:`Lost` before its :class:`Release`)."""
        self._expire(now)
        for tenant, lease in self._leases.items():
            if lease.attempt is not None:
                continue
            if lease.epoch is not None and now >= lease.renew_at:
                self._out.append(Renew(tenant, lease.epoch, self._send(tenant, lease, now)))
            elif lease.epoch is None and now >= lease.next_try:
                self._out.append(Acquire(tenant, self._send(tenant, lease, now)))
        out, self._out = self._out, []
        return out

    def next_wakeup(self) -> float | None:
        """When :meth:`poll` next has something to do, if no answer comes first."""
        times: list[float] = []
        for lease in self._leases.values():
            if lease.epoch is not None:
                times.append(lease.valid_until)
                if lease.attempt is None:
                    times.append(lease.renew_at)
            elif lease.attempt is None:
                times.append(lease.next_try)
        return min(times, default=None)
