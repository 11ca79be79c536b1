"""The node's brute-force bans: an :class:`~authguard.AuthGuard` for SIP and one for HTTP sign-in,
each ban and security event logged, counted, audited and stored.

The SIP guard lives on the event loop (the endpoint and the registrar call it there); the
HTTP guard is called from the API's worker threads, behind a lock.  Bans are written to the
``auth_bans`` table so that a restart does not lift them and the operator can list and lift
them from another process (``callcenter bans``): the node picks up lifts from the table
every :data:`SYNC_INTERVAL` seconds while it has bans.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from authguard import AuthGuard, Ban, Thresholds
from sip_bridge.routing import address_in

from .metrics import SECURITY_EVENTS
from .models import AuditLog, AuthBan, utcnow
from .settings import Settings

logger = logging.getLogger(__name__)

#: Seconds between looks at the table for bans lifted by the operator (only while bans are active).
SYNC_INTERVAL = 2.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(window=settings.ban_window, account_failures=settings.ban_account_failures,
                      source_failures=settings.ban_source_failures, period=settings.ban_period)


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


def _describe(ban: Ban) -> str:
    return f"{ban.protocol}:{ban.source}" + (f" as {ban.account}" if ban.account is not None else "")


def ban_from_row(row: AuthBan) -> Ban:
    return Ban(row.protocol, row.source, row.account, row.failures, row.since.timestamp(), row.until.timestamp(),
               row.tenant_id, row.id)


def active_bans(db: Session, now: datetime | None = None, tenant_id: int | None = None) -> list[AuthBan]:
    """Bans in force, oldest first; with ``tenant_id`` only those on that tenant's accounts."""
    query = select(AuthBan).where(AuthBan.lifted_at.is_(None), AuthBan.until > (now or utcnow()))
    if tenant_id is not None:
        query = query.where(AuthBan.tenant_id == tenant_id)
    return list(db.scalars(query.order_by(AuthBan.since, AuthBan.id)))


def lift_ban(db: Session, ban_id: int, by: str, tenant_id: int | None = None,
             user_id: int | None = None) -> AuthBan | None:
    """Mark a ban in force lifted (audited, as ``user_id`` if a user did it); None if there is
    none with that id (for that tenant). The caller commits."""
    query = select(AuthBan).where(AuthBan.id == ban_id, AuthBan.lifted_at.is_(None), AuthBan.until > utcnow())
    if tenant_id is not None:
        query = query.where(AuthBan.tenant_id == tenant_id)
    row = db.scalars(query).first()
    if row is None:
        return None
    row.lifted_at, row.lifted_by = utcnow(), by[:100]
    db.add(AuditLog(tenant_id=row.tenant_id, user_id=user_id, action="security.ban_lifted",
                    target=f"ban:{row.id}", detail={"by": by, "protocol": row.protocol, "source": row.source,
                                                   "account": row.account}, at=utcnow()))
    return row


class BanService:
    """Counts failed authentications of SIP and HTTP sign-in and enforces the bans."""

    def __init__(self, engine: Engine, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        limits = thresholds(settings)
        self._exempt_networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in settings.ban_exempt_networks)
        self._carriers: tuple[Network, ...] = ()
        #: Used on the event loop only (the SIP endpoint and registrar).
        self.sip = AuthGuard("sip", limits, on_ban=self._banned, exempt=self._exempt, account_only=self._carrier)
        self._http = AuthGuard("http", limits, on_ban=self._banned, exempt=self._exempt)
        self._http_lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bans")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sync: asyncio.Task[None] | None = None

    # -- who is never banned -------------------------------------------------------------
    def trust(self, networks: Iterable[Network]) -> None:
        """The trunks' carrier networks (replaced whenever the routing is reloaded): they only
        get per-account bans, so inbound calls never stop because of guesses from there."""
        self._carriers = tuple(networks)

    def _exempt(self, source: str) -> bool:
        return address_in(source, self._exempt_networks)

    def _carrier(self, source: str) -> bool:
        return address_in(source, self._carriers)

    # -- HTTP sign-in (API worker threads) -----------------------------------------------
    def login_blocked(self, source: str, account: str) -> Ban | None:
        with self._http_lock:
            return self._http.blocked(source, account, self.clock())

    def login_failed(self, source: str, account: str, tenant_id: int | None) -> None:
        with self._http_lock:
            self._http.failed(source, account, self.clock(), tenant_id=tenant_id)

    def login_succeeded(self, source: str, account: str) -> None:
        with self._http_lock:
            self._http.succeeded(source, account)

    # -- events ----------------------------------------------------------------------------
    def _banned(self, ban: Ban) -> None:
        logger.warning("security event: %s banned for %.0f s after %d failed authentications", _describe(ban),
                       ban.until - ban.since, ban.failures,
                       extra={"security_event": "auth.ban", "protocol": ban.protocol, "source": ban.source,
                              "account": ban.account, "failures": ban.failures, "tenant_id": ban.tenant_id,
                              "until": _at(ban.until).isoformat()})
        SECURITY_EVENTS.labels(event=f"{ban.protocol}.ban").inc()
        self._in_background(lambda: self._store_ban(ban))

    def security_event(self, event: str, *, source: str | None, tenant_id: int | None,
                       detail: dict[str, object]) -> None:
        """An attack noticed by protocol code: counted and audited (the caller has logged it)."""
        SECURITY_EVENTS.labels(event=event).inc()
        row = AuditLog(tenant_id=tenant_id, user_id=None, action=f"security.{event}"[:64],
                       target=f"source:{source}" if source else "node", detail=dict(detail), at=utcnow())
        self._in_background(lambda: self._write(row))

    # -- storage ---------------------------------------------------------------------------
    def _in_background(self, work: Callable[[], None]) -> None:
        """Database work on the service's own writer thread: never on the event loop, and never
        under the HTTP guard's lock (the loop takes that lock too)."""
        self._writer.submit(self._guarded, work)

    @staticmethod
    def _guarded(work: Callable[[], None]) -> None:
        try:
            work()
        except Exception:  # the database may be down: the ban holds in memory all the same
            logger.exception("storing a security event failed")

    def _write(self, row: AuditLog) -> None:
        with Session(self.engine) as db:
            db.add(row)
            db.commit()

    def _store_ban(self, ban: Ban) -> None:
        with Session(self.engine) as db:
            row = AuthBan(protocol=ban.protocol, source=ban.source[:64],
                          account=ban.account[:200] if ban.account is not None else None, tenant_id=ban.tenant_id,
                          failures=ban.failures, since=_at(ban.since), until=_at(ban.until))
            db.add(row)
            db.flush()
            db.add(AuditLog(tenant_id=ban.tenant_id, user_id=None, action="security.ban", target=f"ban:{row.id}",
                            detail={"protocol": ban.protocol, "source": ban.source, "account": ban.account,
                                    "failures": ban.failures, "until": _at(ban.until).isoformat()}, at=utcnow()))
            db.commit()
            ban_id = row.id
        self._apply(lambda guard: guard.identify(ban, ban_id), ban.protocol)

    def _apply(self, change: Callable[[AuthGuard], object], protocol: str) -> None:
        """Change a guard from any thread: the SIP one on its loop, the HTTP one under its lock."""
        if protocol == "http":
            with self._http_lock:
                change(self._http)
        elif self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(change, self.sip)
        else:
            change(self.sip)

    def lifted(self, ban_id: int, protocol: str) -> None:
        """A ban was lifted in the table (by the API here): stop enforcing it now."""
        self._apply(lambda guard: guard.lift(ban_id), protocol)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Reinstate the bans in force and follow the operator's lifts."""
        self._loop = asyncio.get_running_loop()
        try:
            rows = await self._loop.run_in_executor(None, self._load)
        except Exception:
            logger.exception("loading bans failed; starting without them")
            rows = []
        now = self.clock()
        self.sip.restore((b for b in rows if b.protocol == "sip"), now)
        with self._http_lock:
            self._http.restore((b for b in rows if b.protocol == "http"), now)
        if rows:
            logger.info("%d ban(s) in force reinstated", len(rows))
        self._sync = self._loop.create_task(self._follow_lifts())

    async def stop(self) -> None:
        if self._sync is not None:
            self._sync.cancel()
            self._sync = None
        await asyncio.get_running_loop().run_in_executor(None, self._writer.shutdown)

    def _load(self) -> list[Ban]:
        with Session(self.engine) as db:
            return [ban_from_row(row) for row in active_bans(db)]

    async def _follow_lifts(self) -> None:
        assert self._loop is not None
        while True:
            await asyncio.sleep(SYNC_INTERVAL)
            now = self.clock()
            with self._http_lock:
                ids = {b.id: "http" for b in self._http.bans(now) if b.id is not None and b.id > 0}
            ids.update({b.id: "sip" for b in self.sip.bans(now) if b.id is not None and b.id > 0})
            if not ids:
                continue
            try:
                gone = await self._loop.run_in_executor(None, self._lifted_among, list(ids))
            except Exception:
                logger.debug("cannot check lifted bans now", exc_info=True)
                continue
            for ban_id in gone:
                self.lifted(ban_id, ids[ban_id])
                logger.info("ban %d lifted by the operator", ban_id)

    def _lifted_among(self, ids: list[int]) -> list[int]:
        with Session(self.engine) as db:
            return list(db.scalars(select(AuthBan.id).where(AuthBan.id.in_(ids), AuthBan.lifted_at.is_not(None))))


def lift_bans_on(db: Session, source: str, by: str) -> list[AuthBan]:
    """Lift every ban in force on ``source`` (the CLI's ``--source``); the lifted ones."""
    return [row for ban in active_bans(db) if ban.source == source
            if (row := lift_ban(db, ban.id, by)) is not None]
