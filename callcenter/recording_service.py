"""Call recording on the node: who is recorded, the live recordings, their journal, finishing,
recovery after a crash, and the retention purge.

The media path only copies payloads into a :class:`recordings.recorder.CallRecording`
(the legs' audio taps); every half second the ready blocks of all live recordings go to one
writer thread, which encrypts and appends them to each recording's journal. A SIGKILL
therefore loses at most the last half second. When the call ends, the journal is compressed,
encrypted and stored in a worker thread, the database row completed, and transcription
queued. At start, journals left by a crash are finished the same way and marked incomplete.

Faults leave the call alone. A full recordings disk (``ENOSPC``, or a quota) while the journal
is written, while it is created or while the finished file is stored marks that recording
``failed``: one error line with the call's id, ``callcenter_recording_failures_total{reason=
"disk_full"}``, and its journal deleted at once, which gives the space back to the other
calls' recordings; the call is not recorded again. While the database is unavailable,
recordings go on from the tenant policies and keys read at start; their rows are written when
it is back (the journal stays until then, so a node stopped meanwhile finishes it at start).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from recordings.archive import Archived, archive_journal
from recordings.crypto import generate_key, load_master_key, unwrap_key, wrap_key
from recordings.journal import JournalWriter, read_journal
from recordings.policy import records
from recordings.recorder import CHANNELS, RATE, CallRecording, pauses_from_events
from recordings.storage import RecordingStorage
from sip_bridge.call import Call

from .call_notes import CallNotes
from .db_health import OutageNotice, database_unavailable
from .metrics import RECORDING_FAILURES
from .models import Recording, Tenant, Transcript
from .tenancy import recording_over_quota
from .transcripts import unindex_transcript

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.5
PURGE_INTERVAL = 3600.0
FINISHING_WORKERS = max(1, min(2, (os.cpu_count() or 2) - 1))
"""Threads compressing finished recordings: Opus encoding holds the GIL part of the time, so a
core is left to the event loop."""
ROW_RETRY = 5.0
"""Seconds between attempts to write a recording's row while the database is unavailable."""
FAILURES = {
    "disk_full": "recording failed: no space left on the recordings disk; the call goes on unrecorded",
    "io_error": "recording failed: the recordings disk could not be written; the call goes on unrecorded",
}
for _reason in FAILURES:
    RECORDING_FAILURES.labels(reason=_reason)  # the series exist (at 0) for alert rules before any failure


def failure_reason(exc: OSError) -> str:
    return "disk_full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "io_error"


class TenantKeys:
    """The tenants' recording data keys, unwrapped once; a tenant's key is made on first use."""

    def __init__(self, engine: Engine, master_key: str) -> None:
        self._engine = engine
        self._master = load_master_key(master_key)
        self._keys: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def get(self, tenant_id: int) -> bytes:
        """The tenant's data key (blocking: call from a worker thread)."""
        key = self._keys.get(tenant_id)
        if key is not None:
            return key
        with self._lock, Session(self._engine) as db:
            wrapped = db.scalar(select(Tenant.recording_key).where(Tenant.id == tenant_id))
            if wrapped is None:
                # only set where still empty: two nodes racing both read back the winner's key
                db.execute(update(Tenant).where(Tenant.id == tenant_id, Tenant.recording_key.is_(None))
                           .values(recording_key=wrap_key(self._master, generate_key(), tenant_id)))
                db.commit()
                wrapped = db.scalar(select(Tenant.recording_key).where(Tenant.id == tenant_id))
            if wrapped is None:
                raise LookupError(f"tenant {tenant_id} does not exist")
            key = self._keys[tenant_id] = unwrap_key(self._master, wrapped, tenant_id)
            return key

    def forget(self, tenant_id: int) -> None:
        """Drop a deleted tenant's key (a tenant made later under the same id gets a key of its own)."""
        with self._lock:
            self._keys.pop(tenant_id, None)

    def load_existing(self) -> None:
        """Unwrap every tenant's key that exists now (blocking), so recordings start without the database."""
        with self._lock, Session(self._engine) as db:
            wrapped = db.execute(select(Tenant.id, Tenant.recording_key).where(Tenant.recording_key.is_not(None)))
            for tenant_id, key in wrapped:
                if tenant_id not in self._keys and key is not None:
                    self._keys[tenant_id] = unwrap_key(self._master, key, tenant_id)


@dataclass
class LiveRecording:
    recording: CallRecording
    journal: JournalWriter
    tenant_id: int
    call: Call
    fmt: str
    started_at: datetime
    agent_leg: Call | None = None
    failed: bool = False
    """The disk refused it (see RecordingService._fail): no more writes, nothing to finish."""


class RecordingService:
    """Starts, pauses and finishes the node's call recordings."""

    def __init__(self, engine: Engine, storage: RecordingStorage, keys: TenantKeys, *,
                 on_stored: Callable[[str], None] | None = None, notes: CallNotes | None = None) -> None:
        self.engine = engine
        self.storage = storage
        self.keys = keys
        self.on_stored = on_stored
        """Called on the loop with each stored recording's id (transcription queues it)."""
        self.notes = notes
        """Where a call not recorded for its tenant's storage quota gets a ``recording_skipped`` event."""
        self.live: dict[str, LiveRecording] = {}
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recording-io")
        self._finishers = ThreadPoolExecutor(max_workers=FINISHING_WORKERS, thread_name_prefix="recording-finish")
        self._tasks: set[asyncio.Task[Any]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._purger: asyncio.Task[None] | None = None
        self._starting: dict[str, asyncio.Future[LiveRecording | None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        #: calls whose recording failed, or was not started for the quota: not started again (until the call ends)
        self._failed: set[str] = set()
        #: each tenant's recording policy and format as last read, for when the database is unavailable
        self._policies: dict[int, tuple[dict[str, Any], str] | None] = {}
        self._db_outage = OutageNotice(logger, "database unavailable: recordings go on, their rows are written "
                                               "when it is back", "database available again: recording rows written")
        self._stopping = asyncio.Event()

    def call_on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn`` on the node's loop from another thread (the HTTP API's) and return its result."""
        assert self._loop is not None

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=5)

    # -- node lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.keys.load_existing)
        self._policies.update(await loop.run_in_executor(None, self._all_settings))
        recovered = await loop.run_in_executor(self._finishers, self.recover)
        for recording_id in recovered:
            self._stored(recording_id)
        self._flusher = loop.create_task(self._flush_loop())
        self._purger = loop.create_task(self._purge_loop())

    async def stop(self) -> None:
        """Finish every live recording (a clean stop leaves complete files)."""
        self._stopping.set()
        for task in (self._flusher, self._purger):
            if task is not None:
                task.cancel()
        for live in list(self.live.values()):
            await self._finish(live)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._io.shutdown(wait=True)
        self._finishers.shutdown(wait=True)

    # -- starting --------------------------------------------------------------------------
    def ivr_started(self, call: Call, tenant_id: int) -> None:
        """The IVR took the call: record from its answer if the tenant records the IVR part."""
        self._spawn(self._record_ivr(call, tenant_id))

    async def _record_ivr(self, call: Call, tenant_id: int) -> None:
        settings = await self._policy(call, tenant_id)
        if settings is None or not settings[0].get("ivr") or not records(settings[0], None, random.random()):
            return
        await call.wait_answered()
        live = await self._ensure(call, tenant_id, settings[1])
        if live is not None and live.agent_leg is None:
            call.tap(live.recording.caller, sent=live.recording.agent)  # what the IVR says is the "agent" side

    async def agent_answered(self, call: Call, agent_leg: Call, tenant_id: int, queue: str | None) -> None:
        """An agent took the call (also the next one after a transfer): their leg is the agent channel."""
        live = self.live.get(call.id)
        if live is None:
            if call.id in self._failed:
                return
            settings = await self._policy(call, tenant_id)
            if settings is None or not records(settings[0], queue, random.random()):
                return
            live = await self._ensure(call, tenant_id, settings[1])
            if live is None:
                return
        if live.agent_leg is not None and live.agent_leg is not agent_leg:
            live.agent_leg.tap(None)
        live.agent_leg = agent_leg
        live.recording.agent.restart()
        live.recording.agent_answered()
        call.tap(live.recording.caller)
        agent_leg.tap(live.recording.agent)

    async def _ensure(self, call: Call, tenant_id: int, fmt: str) -> LiveRecording | None:
        """The call's live recording, created once even when two starts race."""
        live = self.live.get(call.id)
        if live is not None:
            return live
        pending = self._starting.get(call.id)
        if pending is not None:
            return await pending
        future: asyncio.Future[LiveRecording | None] = asyncio.get_running_loop().create_future()
        self._starting[call.id] = future
        try:
            live = None
            if await asyncio.to_thread(self._quota_reached, tenant_id):
                self._not_recorded(call, tenant_id)
            else:
                live = await self._create(call, tenant_id, fmt)
            future.set_result(live)
            return live
        except Exception as exc:
            if database_unavailable(exc):  # the tenant's first recording needs its key made: not now
                self._db_outage.failed(exc)
                logger.info("recording not started: database unavailable", extra={"call_id": call.id})
            else:
                logger.exception("recording could not start", extra={"call_id": call.id})
            future.set_result(None)
            return None
        finally:
            del self._starting[call.id]

    def _quota_reached(self, tenant_id: int) -> bool:
        """Whether the tenant's stored recordings reached its storage quota; False while the database
        is unavailable (recordings go on through an outage, as with the policy last read)."""
        try:
            with Session(self.engine) as db:
                tenant = db.get(Tenant, tenant_id)
                return tenant is not None and recording_over_quota(db, tenant)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            return False

    def _not_recorded(self, call: Call, tenant_id: int) -> None:
        self._failed.add(call.id)
        logger.info("call not recorded: the tenant's recording storage quota is reached",
                    extra={"call_id": call.id, "tenant_id": tenant_id})
        if self.notes is not None:
            self.notes.record_event(tenant_id, call.id, "recording_skipped", None, {"reason": "quota"})

    async def _create(self, call: Call, tenant_id: int, fmt: str) -> LiveRecording | None:
        recording_id = str(uuid.uuid4())
        started_at = datetime.now(timezone.utc)
        header = {"recording_id": recording_id, "tenant_id": tenant_id, "call_id": call.id,
                  "started_at": started_at.isoformat(), "format": fmt, "rate": RATE, "encoding": "mulaw",
                  "channels": list(CHANNELS)}
        # journal first, then the row: recovery works from journals, so no row is ever without audio
        try:
            journal = await asyncio.get_running_loop().run_in_executor(self._io, self._open_journal, tenant_id,
                                                                       recording_id, header)
        except OSError as exc:
            self._report_failure(call, recording_id, exc, "starting")
            self._spawn(self._write_row(self._mark_failed, tenant_id, recording_id, call.id, fmt, started_at))
            return None
        try:
            await asyncio.to_thread(self._insert_row, recording_id, tenant_id, call.id, fmt, started_at)
        except Exception as exc:
            if not database_unavailable(exc):
                await asyncio.get_running_loop().run_in_executor(self._io, journal.abandon)
                raise
            self._db_outage.failed(exc)  # recorded all the same: finishing writes the row
        if call.ended:  # nothing to record: the journal goes, then the row (recovery copes with either left)
            await asyncio.get_running_loop().run_in_executor(self._io, journal.abandon)
            self._spawn(self._write_row(self._forget, recording_id))
            return None
        loop = asyncio.get_running_loop()
        recording = CallRecording(recording_id, clock=loop.time, source=call)
        live = self.live[call.id] = LiveRecording(recording, journal, tenant_id, call, fmt, started_at)
        logger.info("recording started", extra={"call_id": call.id, "recording_id": recording_id})
        return live

    def _open_journal(self, tenant_id: int, recording_id: str, header: dict[str, Any]) -> JournalWriter:
        writer = JournalWriter(self.storage.journal_path(tenant_id, recording_id), self.keys.get(tenant_id), header)
        writer.flush()
        return writer

    def _insert_row(self, recording_id: str, tenant_id: int, call_id: str, fmt: str, started_at: datetime) -> None:
        with Session(self.engine) as db:
            db.add(Recording(id=recording_id, tenant_id=tenant_id, call_id=call_id, status="recording", format=fmt,
                             started_at=started_at, pauses=[], legal_hold=False))
            db.commit()

    async def _policy(self, call: Call, tenant_id: int) -> tuple[dict[str, Any], str] | None:
        """The tenant's recording policy and file format (read once per call: changes apply to
        the next calls); while the database is unavailable, as last read."""
        try:
            settings = await asyncio.to_thread(self._settings, tenant_id)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            self._db_outage.failed(exc)
            if tenant_id not in self._policies:
                logger.info("call not recorded: database unavailable", extra={"call_id": call.id})
            return self._policies.get(tenant_id)
        self._policies[tenant_id] = settings
        return settings

    def _settings(self, tenant_id: int) -> tuple[dict[str, Any], str] | None:
        with Session(self.engine) as db:
            tenant = db.get(Tenant, tenant_id)
            if tenant is None:
                return None
            return tenant.recording_policy or {}, tenant.recording_format or "opus"

    def _all_settings(self) -> dict[int, tuple[dict[str, Any], str] | None]:
        with Session(self.engine) as db:
            return {t.id: (t.recording_policy or {}, t.recording_format or "opus") for t in db.scalars(select(Tenant))}

    # -- pause -----------------------------------------------------------------------------
    def pause(self, call_id: str, reason: str) -> bool | None:
        """Stop keeping audio; None if the call has no live recording, False if already paused so."""
        live = self.live.get(call_id)
        if live is None:
            return None
        return live.recording.pause(reason)

    def resume(self, call_id: str, reason: str) -> bool | None:
        live = self.live.get(call_id)
        if live is None:
            return None
        return live.recording.resume(reason)

    # -- writing ---------------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            # one more loop turn reads the sockets first: after a stall of the loop, packets queued
            # meanwhile must find their places before the blocks they belong to are written
            await asyncio.sleep(0.001)
            batch = self._take_blocks()
            if batch:
                try:
                    failed = await loop.run_in_executor(self._io, _write_blocks, batch)
                except Exception:
                    logger.exception("writing recording journals failed")
                    continue
                for live, exc in failed:
                    self._fail(live, exc, "recording")

    def _take_blocks(self) -> list[tuple[LiveRecording, bytes, list[dict[str, Any]]]]:
        batch = []
        for live in self.live.values():
            block = live.recording.take()
            events = live.recording.drain_events()
            if block or events:
                batch.append((live, block, events))
        return batch

    # -- failing ---------------------------------------------------------------------------
    def _fail(self, live: LiveRecording, exc: OSError, stage: str) -> None:
        """The disk refused the recording: stop it (the call goes on), say so once, then (off the
        loop) delete its journal and mark its row failed."""
        if live.failed:
            return
        live.failed = True
        if self.live.get(live.call.id) is live:
            del self.live[live.call.id]
            live.call.tap(None)
            if live.agent_leg is not None:
                live.agent_leg.tap(None)
        recording_id = live.recording.recording_id
        self._report_failure(live.call, recording_id, exc, stage)
        self._spawn(self._discard(live))

    def _report_failure(self, call: Call, recording_id: str, exc: OSError, stage: str) -> None:
        reason = failure_reason(exc)
        RECORDING_FAILURES.labels(reason=reason).inc()
        if not call.ended:
            self._failed.add(call.id)
        logger.error(FAILURES[reason], extra={"call_id": call.id, "recording_id": recording_id, "reason": reason,
                                              "stage": stage, "error": str(exc)})

    async def _discard(self, live: LiveRecording) -> None:
        await asyncio.get_running_loop().run_in_executor(self._io, live.journal.abandon)
        await self._write_row(self._mark_failed, live.tenant_id, live.recording.recording_id, live.call.id,
                              live.fmt, live.started_at)

    def _mark_failed(self, tenant_id: int, recording_id: str, call_id: str, fmt: str, started_at: datetime) -> None:
        with Session(self.engine) as db:
            row = db.get(Recording, recording_id)
            if row is None:  # failed before its row was written
                row = Recording(id=recording_id, tenant_id=tenant_id, call_id=call_id, format=fmt,
                                started_at=started_at, pauses=[], legal_hold=False)
                db.add(row)
            row.status, row.ended_at = "failed", datetime.now(timezone.utc)
            db.commit()

    async def _write_row(self, write: Callable[..., None], *args: Any) -> bool:
        """``write(*args)`` in a worker thread; while the database is unavailable, again every
        ROW_RETRY seconds until it works (True) or the node stops (False)."""
        while True:
            try:
                await asyncio.to_thread(write, *args)
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                self._db_outage.failed(exc)
                try:
                    await asyncio.wait_for(self._stopping.wait(), ROW_RETRY)
                except TimeoutError:
                    continue
                return False
            self._db_outage.ok()
            return True

    # -- finishing -------------------------------------------------------------------------
    def call_ended(self, call: Call) -> None:
        self._failed.discard(call.id)
        live = self.live.get(call.id)
        if live is not None:
            self._spawn(self._finish(live))

    async def _finish(self, live: LiveRecording) -> None:
        if self.live.get(live.call.id) is not live:
            return
        del self.live[live.call.id]
        live.call.tap(None)
        if live.agent_leg is not None:
            live.agent_leg.tap(None)
        recording = live.recording
        recording_id = recording.recording_id
        block = recording.close()
        loop = asyncio.get_running_loop()
        failed = await loop.run_in_executor(self._io, _write_blocks, [(live, block, recording.drain_events())])
        if live.failed:  # the journal writer found the disk full meanwhile: taken care of
            return
        try:
            if failed:
                raise failed[0][1]
            await loop.run_in_executor(self._io, live.journal.close)
            archived = await loop.run_in_executor(self._finishers, self._store, live.tenant_id, recording_id,
                                                  live.started_at, live.fmt)
        except OSError as exc:  # no space for the journal's end or for the stored file
            self._fail(live, exc, "storing")
            return
        except Exception:
            # the journal stays: the next start finishes it (marked incomplete)
            logger.exception("recording could not be stored", extra={"call_id": live.call.id,
                                                                      "recording_id": recording_id})
            return
        if not await self._write_row(self._complete_row, live.tenant_id, recording_id, live.started_at, live.fmt,
                                     False, archived):
            return  # stopping with the database down: the journal stays, the next start finishes it
        await loop.run_in_executor(self._io, self.storage.remove_journal, live.tenant_id, recording_id)
        logger.info("recording stored", extra={"call_id": live.call.id, "recording_id": recording_id})
        self._stored(recording_id)

    def _store(self, tenant_id: int, recording_id: str, started_at: datetime, fmt: str,
               storage: RecordingStorage | None = None) -> Archived:
        """The journal (of ``storage``'s node; None: this node's) compressed, encrypted and stored."""
        return archive_journal(storage or self.storage, self.keys.get(tenant_id), tenant_id, recording_id, started_at,
                               fmt)

    def _archive(self, storage: RecordingStorage, tenant_id: int, recording_id: str, started_at: datetime,
                 fmt: str) -> None:
        """Store an interrupted recording's journal as incomplete, complete the row, forget the journal
        (this order: a crash in between leaves the journal, and finishing it again replaces the same file)."""
        archived = self._store(tenant_id, recording_id, started_at, fmt, storage)
        self._complete_row(tenant_id, recording_id, started_at, fmt, True, archived)
        storage.remove_journal(tenant_id, recording_id)

    def _complete_row(self, tenant_id: int, recording_id: str, started_at: datetime, fmt: str, incomplete: bool,
                      archived: Archived) -> None:
        pauses, agent_answered_s = pauses_from_events(archived.events, archived.duration)
        stored = archived.stored
        with Session(self.engine) as db:
            row = db.get(Recording, recording_id)
            if row is None:  # the node died between the journal and the row
                header = archived.header
                row = Recording(id=recording_id, tenant_id=tenant_id, call_id=header["call_id"], format=fmt,
                                started_at=started_at, legal_hold=False)
                db.add(row)
            row.status = "incomplete" if incomplete or archived.truncated else "complete"
            row.storage_key, row.size, row.sha256 = stored.key, stored.size, stored.sha256
            row.duration = round(archived.duration, 3)
            row.ended_at = started_at + timedelta(seconds=archived.duration)
            row.pauses = pauses
            row.agent_answered_s = agent_answered_s
            if db.get(Transcript, recording_id) is None:
                db.add(Transcript(recording_id=recording_id, tenant_id=tenant_id, call_id=row.call_id,
                                  status="pending", progress=0.0, words=[], text="", analytics={}))
            db.commit()

    def _forget(self, recording_id: str) -> None:
        with Session(self.engine) as db:
            db.execute(delete(Recording).where(Recording.id == recording_id))
            db.commit()

    def _stored(self, recording_id: str) -> None:
        if self.on_stored is not None:
            self.on_stored(recording_id)

    # -- recovery ---------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """At start (blocking): finish the journals a crash of this node left (incomplete), drop rows
        that never got audio; returns the recordings stored."""
        self.storage.remove_stale_temp()
        stored = self.finish_journals(self.storage)
        self._drop_silent_rows()
        with Session(self.engine) as db:
            keys = {k for k in db.scalars(select(Recording.storage_key)) if k is not None}
        strays = self.storage.orphans(keys)
        if strays:  # not deleted: a database restored from an older backup must not cost recordings
            logger.warning("%d stored recordings have no database row", len(strays), extra={"files": strays[:20]})
        return stored

    def finish_node(self, node: str) -> list[str]:
        """A survivor's cleanup after cluster node ``node`` died (blocking): its recordings, from
        their journals on the shared storage, stored as incomplete exactly as that node's own start
        would have; returns the recordings stored (hand them to :meth:`stored`)."""
        stored = self.finish_journals(self.storage.for_node(node))
        self._drop_silent_rows()
        if stored:
            logger.warning("recordings of a lost node finished as incomplete", extra={"node": node,
                                                                                      "recordings": len(stored)})
        return stored

    def stored(self, recording_ids: list[str]) -> None:
        """Recordings finished outside this service's own calls (:meth:`finish_node`): queue their
        transcription (on the loop)."""
        for recording_id in recording_ids:
            self._stored(recording_id)

    def finish_journals(self, storage: RecordingStorage) -> list[str]:
        """Store every journal of ``storage``'s node as an incomplete recording (blocking): this
        node's after a crash, or another node's after it died. Returns the recordings stored."""
        stored = []
        for tenant_id, recording_id, path in storage.list_journals():
            try:
                with Session(self.engine) as db:
                    row = db.get(Recording, recording_id)
                    started_at = row.started_at if row is not None else None
                    fmt = row.format if row is not None else None
                if started_at is None or fmt is None:
                    header = read_journal(path, self.keys.get(tenant_id)).header
                    started_at = datetime.fromisoformat(header["started_at"])
                    fmt = header.get("format", "opus")
                self._archive(storage, tenant_id, recording_id, started_at, fmt)
                stored.append(recording_id)
                logger.warning("recording left by a stopped node kept as incomplete",
                               extra={"recording_id": recording_id})
            except Exception:
                logger.exception("a recording journal could not be recovered", extra={"recording_id": recording_id,
                                                                                       "path": str(path)})
        return stored

    def _drop_silent_rows(self) -> None:
        """Delete the rows of recordings that never got audio: ``recording`` with no journal on any
        node (a journal is always written before its row, and removed after the row is completed)."""
        known = self.storage.journal_ids()
        with Session(self.engine) as db:
            silent = [r for r in db.scalars(select(Recording.id).where(Recording.status == "recording"))
                      if r not in known]
            if silent:
                db.execute(delete(Recording).where(Recording.id.in_(silent)))
                db.commit()

    # -- retention ---------------------------------------------------------------------------
    async def _purge_loop(self) -> None:
        while True:
            try:
                purged = await asyncio.to_thread(purge_expired, self.engine, self.storage, datetime.now(timezone.utc))
                if purged:
                    logger.info("retention purge removed %d recordings", purged)
            except Exception:
                logger.exception("retention purge failed")
            await asyncio.sleep(PURGE_INTERVAL)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _write_blocks(batch: list[tuple[LiveRecording, bytes, list[dict[str, Any]]]]) -> list[tuple[LiveRecording,
                                                                                                 OSError]]:
    """Append each recording's blocks and events to its journal; the recordings the disk refused
    (each alone: the others are still written)."""
    failed = []
    for live, block, events in batch:
        journal = live.journal
        try:
            for event in events:
                journal.append_event(event)
            if block:
                journal.append_audio(block)
            journal.flush()
        except OSError as exc:
            failed.append((live, exc))
    return failed


def purge_expired(engine: Engine, storage: RecordingStorage, now: datetime) -> int:
    """Delete the files (and transcripts) of recordings past their tenant's retention, except
    those on legal hold; the rows stay, marked purged, so call history still shows them."""
    purged = 0
    with Session(engine) as db:
        for tenant in db.scalars(select(Tenant).where(Tenant.retention_days.is_not(None))):
            cutoff = now - timedelta(days=tenant.retention_days or 0)
            expired = db.scalars(select(Recording).where(
                Recording.tenant_id == tenant.id, Recording.started_at < cutoff, Recording.legal_hold.is_(False),
                Recording.status.in_(("complete", "incomplete")))).all()
            for row in expired:
                if row.storage_key:
                    storage.delete(row.storage_key)
                transcript = db.get(Transcript, row.id)
                if transcript is not None:
                    unindex_transcript(db, transcript)
                    db.delete(transcript)
                row.status, row.purged_at, row.storage_key = "purged", now, None
                purged += 1
            db.commit()
    return purged
