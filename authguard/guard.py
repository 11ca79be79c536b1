"""Failed authentication counted per source and per (source, account), with bans (sans-I/O).

Brute force against SIP digest (``svcrack``) and against the sign-in form looks the same:
many wrong secrets from one address.  Following OWASP's guidance, nothing here ever
locks an *account* for everyone: a ban is either on a whole source address (it failed
for too many accounts, or too often) or on one account *from one source*.  The real
user, signing in from anywhere else, is never affected by an attacker's guesses.

The caller passes the time (epoch seconds: bans are stored and outlive a restart) and
tells what happened; :class:`AuthGuard` answers whether a request may proceed and
reports each ban it starts to its ``on_ban`` listener (the node logs it, audits it and
stores it).  Memory is bounded: a flood of new addresses cannot grow the tables.
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

logger = logging.getLogger(__name__)

#: Failure histories kept at once; beyond it the least recently failed is forgotten.
MAX_TRACKED = 100_000


@dataclass(frozen=True)
class Thresholds:
    """When failures become a ban (the ``ban_*`` settings)."""

    #: Seconds over which failures are counted.
    window: float = 300.0
    #: Failures for one account from one source within the window that ban that pair.
    account_failures: int = 5
    #: Failures from one source (any accounts) within the window that ban the source.
    source_failures: int = 20
    #: Seconds a ban lasts.
    period: float = 900.0

    def __post_init__(self) -> None:
        if self.window <= 0 or self.period <= 0:
            raise ValueError("ban window and period must be positive")
        if self.account_failures < 1 or self.source_failures < 1:
            raise ValueError("ban thresholds must be at least 1")


@dataclass(frozen=True)
class Ban:
    """A source (``account`` None) or one account from a source, refused until ``until``."""

    protocol: str
    source: str
    account: str | None
    failures: int
    since: float
    until: float
    tenant_id: int | None = None
    #: The stored ban's id, once the node has written it.
    id: int | None = None

    def covers(self, source: str, account: str | None) -> bool:
        return self.source == source and (self.account is None or self.account == account)

    def retry_after(self, now: float) -> int:
        """Whole seconds until the ban ends (at least 1), for Retry-After."""
        return max(1, int(self.until - now + 0.999))


BanListener = Callable[[Ban], None]


class AuthGuard:
    """Counts failures of one protocol (``sip`` or ``http``) and keeps its bans.

    ``exempt(source)`` names addresses never banned (configured networks); their failures
    are counted but start no ban. ``account_only(source)`` names addresses that only get
    per-account bans: a carrier's, whose calls must keep flowing even if someone there (or
    someone spoofing its address over UDP) guesses phone secrets.
    """

    def __init__(self, protocol: str, thresholds: Thresholds = Thresholds(), *,
                 on_ban: BanListener | None = None, exempt: Callable[[str], bool] | None = None,
                 account_only: Callable[[str], bool] | None = None, max_tracked: int = MAX_TRACKED) -> None:
        self.protocol = protocol
        self.thresholds = thresholds
        self.on_ban = on_ban
        self.exempt = exempt
        self.account_only = account_only
        self.max_tracked = max_tracked
        #: (source, account) -> failure times; account None: all failures of the source.
        self._failures: OrderedDict[tuple[str, str | None], deque[float]] = OrderedDict()
        #: Active bans by (source, account); account None bans the whole source.
        self._bans: dict[tuple[str, str | None], Ban] = {}
        self._local_ids = itertools.count(-1, -1)

    # -- queries -------------------------------------------------------------------------
    def blocked(self, source: str, account: str | None, now: float) -> Ban | None:
        """The ban refusing ``source`` (for ``account``, if given) at ``now``, or None."""
        if not self._bans:
            return None
        for key in ((source, None), (source, account)) if account is not None else ((source, None),):
            ban = self._bans.get(key)
            if ban is not None:
                if ban.until > now:
                    return ban
                del self._bans[key]
        return None

    def bans(self, now: float) -> list[Ban]:
        """Active bans, oldest first."""
        for key in [k for k, b in self._bans.items() if b.until <= now]:
            del self._bans[key]
        return sorted(self._bans.values(), key=lambda b: b.since)

    # -- what happened -------------------------------------------------------------------
    def failed(self, source: str, account: str | None, now: float, *, tenant_id: int | None = None) -> Ban | None:
        """Count a failed authentication; the ban it starts, if any (also given to ``on_ban``)."""
        t = self.thresholds
        per_source = self._count((source, None), now)
        per_account = self._count((source, account), now) if account is not None else 0
        if self.exempt is not None and self.exempt(source):
            return None
        ban: Ban | None = None
        whole_source = self.account_only is None or not self.account_only(source)
        if whole_source and per_source >= t.source_failures and (source, None) not in self._bans:
            ban = Ban(self.protocol, source, None, per_source, now, now + t.period, None)
            self._failures.pop((source, None), None)
        elif account is not None and per_account >= t.account_failures and (source, account) not in self._bans \
                and (source, None) not in self._bans:
            ban = Ban(self.protocol, source, account, per_account, now, now + t.period, tenant_id)
            self._failures.pop((source, account), None)
        if ban is not None:
            ban = replace(ban, id=next(self._local_ids))
            self._bans[(ban.source, ban.account)] = ban
            if self.on_ban is not None:
                try:
                    self.on_ban(ban)
                except Exception:  # storing or auditing must never stop the ban itself
                    logger.exception("ban listener failed", extra={"source": source})
        return ban

    def succeeded(self, source: str, account: str) -> None:
        """A correct secret: that account's count from that source starts again."""
        self._failures.pop((source, account), None)

    # -- the node's bookkeeping ----------------------------------------------------------
    def restore(self, bans: Iterable[Ban], now: float) -> None:
        """Reinstate stored bans (after a restart) that have not ended."""
        for ban in bans:
            if ban.protocol == self.protocol and ban.until > now:
                self._bans[(ban.source, ban.account)] = ban

    def identify(self, ban: Ban, ban_id: int) -> Ban | None:
        """Give an active ban the id it was stored under; the updated ban, or None if it is gone."""
        key = (ban.source, ban.account)
        current = self._bans.get(key)
        if current is None or current.since != ban.since:
            return None
        self._bans[key] = updated = replace(current, id=ban_id)
        return updated

    def lift(self, ban_id: int) -> Ban | None:
        """End a ban early (an operator's decision); the lifted ban, or None if none has that id."""
        for key, ban in self._bans.items():
            if ban.id == ban_id:
                del self._bans[key]
                self._failures.pop(key, None)
                return ban
        return None

    def _count(self, key: tuple[str, str | None], now: float) -> int:
        """Record a failure at ``now`` under ``key``; how many fall within the window."""
        times = self._failures.pop(key, None)
        if times is None:
            times = deque(maxlen=max(self.thresholds.account_failures, self.thresholds.source_failures))
            while len(self._failures) >= self.max_tracked:
                self._failures.popitem(last=False)
        times.append(now)
        self._failures[key] = times  # most recently failed last
        horizon = now - self.thresholds.window
        while times and times[0] <= horizon:
            times.popleft()
        return len(times)
