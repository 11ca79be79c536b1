"""The IVR engine's services backed by this node: database lookups and writes off the event
loop, compiled flow versions cached (they never change), and the queue the IVR hands
calls to until the ACD takes them."""

from __future__ import annotations

import asyncio
import logging
import time
import wave
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from callcenter.models import BusinessCalendarRow, FlowVersion, IvrTrace, Number, Tenant, Voicemail, utcnow
from ivr.calendar import BusinessCalendar
from ivr.compiler import CompiledFlow, compile_flow
from ivr.runtime import FlowRun
from ivr.services import HttpPolicy
from ivr.trace import Trace
from sip_bridge.call import CallError
from sip_bridge.tones import sine

logger = logging.getLogger(__name__)

PUBLISHED_TTL = 2.0


class DbBackend:
    """TenantDirectory, TraceSink, VoicemailSink and FlowLoader on the node's database."""

    def __init__(self, engine: Engine, *, allow_private_http: bool = False) -> None:
        self.engine = engine
        self.allow_private_http = allow_private_http
        self._flows: dict[int, tuple[CompiledFlow, int]] = {}
        self._published: dict[str, tuple[int | None, float]] = {}

    async def _db(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

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
        version = await self._db(self._published_version, number)
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
        return await self._db(self._calendar, tenant_id, name)

    def _calendar(self, tenant_id: int | None, name: str) -> BusinessCalendar | None:
        with Session(self.engine) as db:
            row = db.scalar(select(BusinessCalendarRow).where(BusinessCalendarRow.tenant_id == tenant_id,
                                                              BusinessCalendarRow.name == name))
            return BusinessCalendar.model_validate(row.definition) if row is not None else None

    async def http_policy(self, tenant_id: int | None) -> HttpPolicy:
        return await self._db(self._http_policy, tenant_id)

    def _http_policy(self, tenant_id: int | None) -> HttpPolicy:
        with Session(self.engine) as db:
            tenant = db.get(Tenant, tenant_id) if tenant_id is not None else None
            hosts = tuple(tenant.http_allow_hosts or ()) if tenant is not None else ()
            return HttpPolicy(allow_hosts=hosts, allow_private=self.allow_private_http)

    # -- TraceSink ---------------------------------------------------------------------------
    async def save(self, trace: Trace) -> None:
        await self._db(self._save, trace.call_id, trace.tenant_id, trace.flow_version_id, trace.result,
                       trace.as_dict())

    def _save(self, call_id: str, tenant_id: int | None, version_id: int | None, result: str | None,
              body: dict[str, Any]) -> None:
        with Session(self.engine) as db, db.begin():
            row = db.get(IvrTrace, call_id)
            if row is None:
                db.add(IvrTrace(call_id=call_id, tenant_id=tenant_id, flow_version_id=version_id, result=result,
                                trace=body, updated_at=utcnow()))
            else:
                row.result, row.trace, row.updated_at = result, body, utcnow()

    # -- VoicemailSink -------------------------------------------------------------------------
    async def store(self, run: FlowRun, path: Path, seconds: float) -> None:
        await self._db(self._store_voicemail, run.tenant_id, run.call.id, str(path), seconds)

    def _store_voicemail(self, tenant_id: int | None, call_id: str, path: str, seconds: float) -> None:
        with Session(self.engine) as db, db.begin():
            db.add(Voicemail(tenant_id=tenant_id, call_id=call_id, path=path, seconds=seconds, created_at=utcnow()))


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
