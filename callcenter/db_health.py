"""Telling a database outage from a statement the database refuses, and noticing both ends of it.

An outage (PostgreSQL stopped or restarting, the network to it gone, every pooled
connection taken) shows up as ``OperationalError`` or ``InterfaceError`` from the driver,
as a ``DBAPIError`` whose connection SQLAlchemy invalidated, or as the pool's
``TimeoutError``. Those are worth waiting out; an ``IntegrityError`` or ``DataError`` is
about one row and waiting changes nothing. :func:`database_unavailable` is that test.

:class:`DatabaseHealth` watches the node's engine (every connection the API, the call
records and the ACD use): a failed connect or a connection found dead opens an outage, the
next healthy checkout (``pool_pre_ping`` pings it first) closes it. Each outage is logged
twice, when it starts and when it ends, and counted; ``callcenter_database_up`` says
where things stand now.

Redis (cluster mode) the same way: :func:`redis_unavailable` tells an unreachable or restarting
Redis from anything else; the node's one ``cluster.redis_link.RedisLink`` logs each outage's
start and end once, and :func:`watch_redis` shows it as ``callcenter_redis_up``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from sqlalchemy import Engine, event
from sqlalchemy import exc as sa_exc

from callcenter.metrics import DATABASE_OUTAGES, DATABASE_UP, redis_up

try:  # redis-py: only cluster mode needs it (the ``cluster`` extra)
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    REDIS_DOWN: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError)
except ImportError:  # pragma: no cover - a single node without redis-py installed
    REDIS_DOWN = ()

logger = logging.getLogger(__name__)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be used right now (as opposed to refusing one
    statement or row). ``PendingRollbackError`` counts: our sessions only reach it after a
    flush failed under them, which a connection lost mid-request does."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError,
                            sa_exc.PendingRollbackError))


def redis_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says Redis cannot be reached now (down, restarting, still loading its data,
    or not answering in time), as opposed to refusing one command."""
    return isinstance(exc, REDIS_DOWN)


class RedisState(Protocol):
    @property
    def available(self) -> bool: ...


def watch_redis(link: RedisState) -> None:
    """``callcenter_redis_up`` follows ``link`` (the node's ``RedisLink``, which logs each outage)."""
    redis_up(lambda: link.available)


class OutageNotice:
    """One log line when a part of the node starts failing for lack of the database, one when it
    works again; nothing for the failures in between (a call per second must not mean a log
    line per second). Safe to use from several threads."""

    def __init__(self, log: logging.Logger, failing: str, recovered: str) -> None:
        self._log = log
        self._failing = failing
        self._recovered = recovered
        self._since: float | None = None
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException, **extra: Any) -> bool:
        """Note a failure; True (and one warning logged) if it starts an outage."""
        with self._lock:
            if self._since is not None:
                return False
            self._since = time.monotonic()
        self._log.warning(self._failing, extra={"error": _short(exc), **extra})
        return True

    def ok(self, **extra: Any) -> bool:
        """Note a success; True (and one line logged) if it ends an outage."""
        with self._lock:
            if self._since is None:
                return False
            seconds, self._since = time.monotonic() - self._since, None
        self._log.info(self._recovered, extra={"outage_seconds": round(seconds, 1), **extra})
        return True


def _short(exc: BaseException) -> str:
    """The driver's message without SQLAlchemy's background link: one line for the log."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class DatabaseHealth:
    """Follows the engine's connections: outage start and end, logged and counted (see module)."""

    def __init__(self, engine: Engine) -> None:
        self._notice = OutageNotice(logger, "database unavailable", "database available again")
        DATABASE_UP.set(1)
        event.listen(engine, "handle_error", self._error)
        event.listen(engine, "checkout", self._checkout)

    @property
    def up(self) -> bool:
        return not self._notice.down

    def _error(self, context: Any) -> None:
        # a connect that failed (no connection at all) or a connection found dead; not a bad statement,
        # nor a stale pooled connection the pre-ping replaces (if replacing it fails, that connect counts)
        if context.is_pre_ping:
            return
        if context.is_disconnect or context.connection is None:
            if self._notice.failed(context.sqlalchemy_exception or context.original_exception):
                DATABASE_OUTAGES.inc()
                DATABASE_UP.set(0)

    def _checkout(self, *_args: Any) -> None:
        if self._notice.ok():
            DATABASE_UP.set(1)
