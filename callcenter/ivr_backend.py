"""The IVR engine's services backed by this node: database lookups and writes off the event
loop, compiled flow versions cached (they never change), and the queue the IVR hands
calls to until the ACD takes them.

A call must not fail because the database is unavailable: traces and voicemails go through
the call-record store (held and written when it is back), and the lookups a call makes
(the flow published on a number, calendars, a tenant's CRM hosts) fall back to what was read
last; :meth:`DbBackend.warm` reads them all at start, so even the first call after a restart
finds them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import wave
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from callcenter.db_health import OutageNotice, database_unavailable
from callcenter.models import BusinessCalendarRow, FlowVersion, Number, Tenant
from callcenter.surveys import store_rating, survey_version
from ivr.calendar import BusinessCalendar
from ivr.compiler import CompiledFlow, compile_flow
from ivr.runtime import FlowRun
from ivr.services import HttpPolicy
from ivr.trace import Trace
from sip_bridge.call import CallError
from sip_bridge.tones import sine

logger = logging.getLogger(__name__)

PUBLISHED_TTL = 2.0
RETRY_AFTER = 2.0
"""While the database is unavailable, lookups try it again at most this often (one that hangs
instead of refusing costs a connect timeout each time); in between they use what was read last."""

T = TypeVar("T")


class CallWrites(Protocol):
    """What the IVR writes about a call (``CallRecordStore``): held through database outages."""

    async def ivr_trace(self, record_id: str, *, tenant_id: int | None, flow_version_id: int | None,
                        result: str | None, trace: dict[str, Any]) -> None: ...

    async def voicemail(self, record_id: str, *, tenant_id: int | None, path: str, seconds: float) -> None: ...


class DbBackend:
    """TenantDirectory, TraceSink, VoicemailSink, RatingSink and FlowLoader on the node's database;
    and the tenants' survey flows (call control's ``Surveys``)."""

    def __init__(self, engine: Engine, records: CallWrites, *, allow_private_http: bool = False) -> None:
        self.engine = engine
        self.records = records
        self.allow_private_http = allow_private_http
        self._flows: dict[int, tuple[CompiledFlow, int]] = {}
        self._published: dict[str, tuple[int | None, float]] = {}
        #: what the last successful reads said, for when the database is unavailable
        self._calendars: dict[tuple[int | None, str], BusinessCalendar | None] = {}
        self._policies: dict[int | None, HttpPolicy] = {}
        self._surveys: dict[int, int | None] = {}
        self._outage = OutageNotice(logger, "database unavailable: calls use the flows, calendars and CRM "
                                            "hosts read last", "database available again: IVR lookups read it")
        self._failed_at = 0.0

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def _read(self, fn: Callable[..., T], *args: Any, last: Callable[[], T]) -> T:
        """``fn(*args)`` in a worker thread; while the database is unavailable, ``last()`` (what
        the previous read said; a KeyError there means there is nothing to fall back to)."""
        if self._outage.down and time.monotonic() - self._failed_at < RETRY_AFTER:
            with suppress(KeyError):
                return last()
        try:
            value = await self._db(fn, *args)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            self._failed_at = time.monotonic()
            try:
                fallback = last()
            except KeyError:
                raise exc from None
            self._outage.failed(exc)
            return fallback
        self._outage.ok()
        return value

    async def warm(self) -> None:
        """Read every number's flow, calendar and tenant policy now (at start), so that calls find
        them even if the database goes away before anyone asked."""
        published, calendars, policies = await self._db(self._read_all)
        expires = time.monotonic() + PUBLISHED_TTL
        self._published.update({number: (version, expires) for number, version in published.items()})
        self._calendars.update(calendars)
        self._policies.update(policies)
        for version_id in {v for v in published.values() if v is not None}:
            await self.load(version_id)

    def _read_all(self) -> tuple[dict[str, int | None], dict[tuple[int | None, str], BusinessCalendar | None],
                                 dict[int | None, HttpPolicy]]:
        with Session(self.engine) as db:
            published = {n.number: n.flow_version_id for n in db.scalars(select(Number))}
            calendars: dict[tuple[int | None, str], BusinessCalendar | None] = {
                (c.tenant_id, c.name): BusinessCalendar.model_validate(c.definition)
                for c in db.scalars(select(BusinessCalendarRow))}
            policies: dict[int | None, HttpPolicy] = {t.id: self._policy_of(t) for t in db.scalars(select(Tenant))}
        return published, calendars, policies

    # -- FlowLoader ------------------------------------------------------------------------
    async def load(self, version_id: int) -> tuple[CompiledFlow, int]:
        cached = self._flows.get(version_id)
        if cached is None:
            cached = self._flows[version_id] = await self._db(self._load, version_id)
        return cached

    def _load(self, version_id: int) -> tuple[CompiledFlow, int]:
        with Session(self.engine) as db:
            row = db.get(FlowVersion, version_id)
            if row is None:
                raise LookupError(f"flow version {version_id} does not exist")
            return compile_flow(row.document), row.version

    async def published_version(self, number: str) -> int | None:
        """The flow version live on a number, read at most every PUBLISHED_TTL seconds per number,
        so a publish by the CLI takes effect within that (through the API: at once, see forget())."""
        now = time.monotonic()
        cached = self._published.get(number)
        if cached is not None and cached[1] > now:
            return cached[0]
        version = await self._read(self._published_version, number,
                                   last=lambda: self._published[number][0])
        self._published[number] = (version, now + PUBLISHED_TTL)
        return version

    def forget_published(self) -> None:
        """Numbers or flows changed through the API: read them again on the next call."""
        self._published.clear()

    def _published_version(self, number: str) -> int | None:
        with Session(self.engine) as db:
            return db.scalar(select(Number.flow_version_id).where(Number.number == number))

    # -- TenantDirectory -------------------------------------------------------------------
    async def calendar(self, tenant_id: int | None, name: str) -> BusinessCalendar | None:
        key = (tenant_id, name)
        calendar = await self._read(self._calendar, tenant_id, name, last=lambda: self._calendars[key])
        self._calendars[key] = calendar
        return calendar

    def _calendar(self, tenant_id: int | None, name: str) -> BusinessCalendar | None:
        with Session(self.engine) as db:
            row = db.scalar(select(BusinessCalendarRow).where(BusinessCalendarRow.tenant_id == tenant_id,
                                                              BusinessCalendarRow.name == name))
            return BusinessCalendar.model_validate(row.definition) if row is not None else None

    async def http_policy(self, tenant_id: int | None) -> HttpPolicy:
        policy = await self._read(self._http_policy, tenant_id, last=lambda: self._policies[tenant_id])
        self._policies[tenant_id] = policy
        return policy

    def _http_policy(self, tenant_id: int | None) -> HttpPolicy:
        with Session(self.engine) as db:
            return self._policy_of(db.get(Tenant, tenant_id) if tenant_id is not None else None)

    def _policy_of(self, tenant: Tenant | None) -> HttpPolicy:
        hosts = tuple(tenant.http_allow_hosts or ()) if tenant is not None else ()
        return HttpPolicy(allow_hosts=hosts, allow_private=self.allow_private_http)

    # -- surveys -----------------------------------------------------------------------------
    async def survey_flow(self, tenant_id: int) -> CompiledFlow | None:
        """The tenant's survey flow (the newest version of the flow it picked), None without one."""
        version_id = await self._read(self._survey_version, tenant_id, last=lambda: self._surveys[tenant_id])
        self._surveys[tenant_id] = version_id
        return (await self.load(version_id))[0] if version_id is not None else None

    def _survey_version(self, tenant_id: int) -> int | None:
        with Session(self.engine) as db:
            return survey_version(db, tenant_id)

    # -- RatingSink ----------------------------------------------------------------------------
    async def rate(self, run: FlowRun, rating: int) -> bool:
        if run.tenant_id is None:
            return False
        try:
            return await self._db(store_rating, self.engine, run.tenant_id, run.variables, rating)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            logger.error("survey rating lost: database unavailable", extra={"call_id": run.call.id})
            return False

    # -- TraceSink ---------------------------------------------------------------------------
    async def save(self, trace: Trace) -> None:
        await self.records.ivr_trace(trace.call_id, tenant_id=trace.tenant_id, flow_version_id=trace.flow_version_id,
                                     result=trace.result, trace=trace.as_dict())

    # -- VoicemailSink -------------------------------------------------------------------------
    async def store(self, run: FlowRun, path: Path, seconds: float) -> None:
        await self.records.voicemail(run.call.id, tenant_id=run.tenant_id, path=str(path), seconds=seconds)


def make_hold_music(path: Path) -> None:
    """A soft arpeggio, 8 kHz WAV: what callers hear while they wait."""
    notes = (523.25, 659.25, 783.99, 659.25)
    gap = bytes(2 * 400)  # 50 ms
    pcm = b"".join(sine(f, 0.45, amplitude=0.12) + gap for f in notes * 2) + bytes(2 * 8000)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.wav")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(pcm)
    tmp.replace(path)


class HoldQueue:
    """Where the IVR's queue node puts callers while no ACD is attached: hold music, with a
    short announcement every ``announce_every`` seconds, until the caller hangs up."""

    def __init__(self, music: Path, announcement: Path | None, announce_every: float = 30.0) -> None:
        self.music = music
        self.announcement = announcement
        self.announce_every = announce_every

    async def enqueue(self, run: FlowRun, queue: str, priority: int, variables: dict[str, Any]) -> str | None:
        call = run.call
        logger.info("call waiting in queue %s (priority %d)", queue, priority, extra={"call_id": call.id})
        loop = asyncio.get_running_loop()
        next_announcement = loop.time() + self.announce_every
        try:
            while not call.ended:
                if self.announcement is not None and loop.time() >= next_announcement:
                    await call.play(self.announcement, interruptible=False)
                    next_announcement = loop.time() + self.announce_every
                await call.play(self.music, interruptible=False)
        except CallError:
            pass
        return None
