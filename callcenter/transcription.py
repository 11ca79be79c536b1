"""Transcription jobs: each stored recording's channels through vosk, then the automatic QA evaluation.

A job is the recording's ``transcripts`` row: ``pending`` until a worker claims it (an
atomic ``pending -> running`` update, so the node and a ``callcenter transcribe`` run never
do the same one twice), ``done`` or ``failed`` after. Jobs run in worker threads (vosk
decodes outside the GIL); progress is written to the row every few percent, for the API
and the CLI's progress bar.

**A queue shared by every node (PostgreSQL).** The rows are the queue: a worker takes the oldest
job nobody works on with ``SELECT ... FOR UPDATE SKIP LOCKED`` (:func:`take_next`), so
concurrent workers never wait for each other nor take the same job; any node's workers and
``callcenter worker`` processes take from it alike. A job taken carries its worker's name and a
lease (``LEASE_SECONDS``) that :class:`JobLeases` renews while the job runs: a job whose worker
died (a node killed, a worker process gone) is taken again once its lease has passed, and the
dead worker's late result, if it comes back after all, is refused (the row is no longer its).
On SQLite (one node) the node's workers are handed the recordings it stores, as before, and a
node's start puts the jobs it left running back in line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Engine, and_, or_, select, update
from sqlalchemy.orm import Session

from recordings.archive import load_channels
from recordings.qa_forms import parse_form, phrases_of
from recordings.recorder import RATE
from recordings.storage import RecordingStorage
from recordings.talk import talk_stats
from recordings.transcribe import DEFAULT_VOCABULARY, transcribe

from . import qa
from .db_health import OutageNotice, database_unavailable
from .models import QaForm, Recording, Tenant, Transcript
from .recording_service import TenantKeys
from .tenancy import transcription_over_quota
from .transcripts import index_transcript

logger = logging.getLogger(__name__)

PROGRESS_STEP = 0.05
"""Progress is stored when it moved this much (a row update per step, not per chunk)."""
LEASE_SECONDS = 60.0
"""How long a taken job stays its worker's without a renewal; renewed every quarter of it."""
POLL_SECONDS = 2.0
"""An idle queue worker looks for jobs this often (at once when its own node stores a recording)."""

ModelFor = Callable[[int], Any]
"""The vosk model a tenant's recordings are transcribed with (None: transcription is off)."""


def worker_name(kind: str, node: str | None = None) -> str:
    """How a worker signs the jobs it takes: ``node n1 (host/pid)``, ``worker (host/pid)``."""
    who = f"{kind} {node}" if node else kind
    return f"{who} ({socket.gethostname()}/{os.getpid()})"[:100]


def _running_values(worker: str | None) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    return {"status": "running", "progress": 0.0, "updated_at": now, "worker": worker,
            "lease_until": now + timedelta(seconds=LEASE_SECONDS)}


def claim(engine: Engine, recording_id: str, worker: str | None = None) -> bool:
    """Take the job if nobody has: pending -> running."""
    with Session(engine) as db:
        claimed = db.execute(update(Transcript).where(Transcript.recording_id == recording_id,
                                                      Transcript.status == "pending")
                             .values(**_running_values(worker)))
        db.commit()
        return bool(claimed.rowcount)  # type: ignore[attr-defined]


def _takeable(now: datetime) -> ColumnElement[bool]:
    """Jobs nobody works on: waiting, or running under a lease that has passed (its worker died)."""
    return or_(Transcript.status == "pending",
               and_(Transcript.status == "running", Transcript.lease_until < now))


def take_next(engine: Engine, worker: str) -> str | None:
    """The oldest job nobody works on, now ``worker``'s (running, leased); None when there is none.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` skips the rows other workers are taking at this very
    moment, so each worker gets a different job without waiting. SQLite has no row locks: the
    update checks the job is still free, and the next one is tried when another process was faster.
    """
    skip_locked = engine.dialect.name == "postgresql"
    for _attempt in range(5):
        now = datetime.now(timezone.utc)
        with Session(engine) as db:
            query = select(Transcript.recording_id).where(_takeable(now)).order_by(Transcript.created_at).limit(1)
            recording_id = db.scalar(query.with_for_update(skip_locked=True) if skip_locked else query)
            if recording_id is None:
                return None
            taken = db.execute(update(Transcript).where(Transcript.recording_id == recording_id, _takeable(now))
                               .values(**_running_values(worker)))
            db.commit()
            if taken.rowcount:  # type: ignore[attr-defined]
                return str(recording_id)
    return None


class JobLeases:
    """Renews the leases of the jobs a worker is running, from a thread of its own (a job's steps may
    each take longer than a lease); see the module."""

    def __init__(self, engine: Engine, worker: str, period: float = LEASE_SECONDS / 4) -> None:
        self.engine = engine
        self.worker = worker
        self.period = period
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outage = OutageNotice(logger, "database unavailable: transcription leases not renewed",
                                    "database available again: transcription leases renewed")

    def hold(self, recording_id: str) -> None:
        with self._lock:
            self._held.add(recording_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="transcription-leases", daemon=True)
                self._thread.start()

    def release(self, recording_id: str) -> None:
        with self._lock:
            self._held.discard(recording_id)

    def renew(self) -> None:
        """Extend the lease of every job held (blocking)."""
        with self._lock:
            held = list(self._held)
        if not held:
            return
        with Session(self.engine) as db:
            db.execute(update(Transcript).where(Transcript.recording_id.in_(held), Transcript.worker == self.worker,
                                                Transcript.status == "running")
                       .values(lease_until=datetime.now(timezone.utc) + timedelta(seconds=LEASE_SECONDS)))
            db.commit()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.renew()
                self._outage.ok()
            except Exception as exc:
                self._outage.failed(exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def vocabulary(db: Session, tenant: Tenant) -> list[str] | None:
    """What transcription listens for: common call-center words, the tenant's own and every phrase
    its QA forms look for; None in free mode."""
    qa.ensure_default_form(db, tenant.id)
    if tenant.transcription_mode == "free":
        return None
    words = [*DEFAULT_VOCABULARY, *(tenant.transcription_vocabulary or [])]
    for definition in db.scalars(select(QaForm.definition).where(QaForm.tenant_id == tenant.id,
                                                                 QaForm.active.is_(True))):
        words.extend(phrases_of(parse_form(definition)))
    return list(dict.fromkeys(w for w in words if w.strip()))


def run_job(engine: Engine, storage: RecordingStorage, keys: TenantKeys, model_for: ModelFor,
            recording_id: str, on_progress: Callable[[float], None] | None = None, worker: str | None = None) -> str:
    """Transcribe a claimed recording; returns the final status (``done`` or ``failed``), or
    ``lost`` when ``worker`` no longer holds the job at the end (its lease passed and another
    worker took it: that one's result counts)."""
    try:
        with Session(engine) as db:
            row = db.get(Recording, recording_id)
            tenant = db.get(Tenant, row.tenant_id) if row is not None else None
            if row is None or tenant is None or row.storage_key is None:
                raise LookupError("the recording has no stored audio (purged?)")
            over = transcription_over_quota(db, tenant)
            if over is not None:  # failed, with the reason: `callcenter transcribe` takes it again later
                logger.info("transcription skipped: %s", over, extra={"recording_id": recording_id,
                                                                      "tenant_id": tenant.id})
                _update(engine, recording_id, worker, status="failed", error=over)
                return "failed"
            model = model_for(tenant.id)
            if model is None:
                raise LookupError("no speech model is configured for this tenant (asr_model)")
            storage_key, answered, tenant_id, call_id = row.storage_key, row.agent_answered_s, tenant.id, row.call_id
            vocab = vocabulary(db, tenant)
            db.commit()  # a tenant's first transcript brings its default QA form
        caller, agent = load_channels(storage, keys.get(tenant_id), storage_key)
        saved = [0.0]

        def progress(fraction: float) -> None:
            if on_progress is not None:
                on_progress(fraction)
            if fraction - saved[0] >= PROGRESS_STEP:
                saved[0] = fraction
                _update(engine, recording_id, worker, progress=round(fraction, 3))

        words = transcribe(model, caller, agent, vocabulary=vocab, on_progress=progress)
        talk = talk_stats(caller, agent, rate=RATE, start_s=answered or 0.0)
        with Session(engine) as db:
            transcript = db.get(Transcript, recording_id, with_for_update=True)
            assert transcript is not None
            if worker is not None and (transcript.worker != worker or transcript.status != "running"):
                logger.warning("transcription result dropped: the job was taken again meanwhile",
                               extra={"recording_id": recording_id, "worker": worker, "taken_by": transcript.worker})
                return "lost"
            transcript.words = [{"word": w.word, "start": round(w.start, 2), "end": round(w.end, 2),
                                 "conf": round(w.conf, 3), "speaker": w.speaker} for w in words]
            transcript.text = " ".join(w.word for w in words)
            transcript.analytics = talk.as_json()
            transcript.status, transcript.progress, transcript.error = "done", 1.0, None
            transcript.updated_at = datetime.now(timezone.utc)
            index_transcript(db, transcript)
            db.commit()
    except Exception as exc:
        logger.exception("transcription failed", extra={"recording_id": recording_id})
        _update(engine, recording_id, worker, status="failed", error=str(exc) or type(exc).__name__)
        return "failed"
    try:  # the transcript stands even if scoring fails (a broken form): QA can still listen and score
        with Session(engine) as db:
            qa.auto_evaluate(db, tenant_id, call_id)
            db.commit()
    except Exception:
        logger.exception("automatic QA evaluation failed", extra={"recording_id": recording_id})
    return "done"


def _update(engine: Engine, recording_id: str, worker: str | None, **values: Any) -> None:
    """Write to the job's row while ``worker`` holds it (None: whoever does)."""
    mine = Transcript.worker == worker if worker is not None else Transcript.recording_id.is_not(None)
    with Session(engine) as db:
        db.execute(update(Transcript).where(Transcript.recording_id == recording_id, mine)
                   .values(updated_at=datetime.now(timezone.utc), **values))
        db.commit()


def requeue_interrupted(engine: Engine) -> list[str]:
    """Jobs a stopped process left running go back to pending; returns every pending job."""
    with Session(engine) as db:
        db.execute(update(Transcript).where(Transcript.status == "running").values(status="pending"))
        db.commit()
        return list(db.scalars(select(Transcript.recording_id).where(Transcript.status == "pending")
                               .order_by(Transcript.created_at)))


class JobReporter(Protocol):
    """Told what a queue worker does (from its threads)."""

    def taken(self, recording_id: str) -> None: ...

    def progress(self, recording_id: str, fraction: float) -> None: ...

    def finished(self, recording_id: str, status: str, seconds: float) -> None: ...


class LogReporter:
    """A node's queue workers: one log line per job."""

    def taken(self, recording_id: str) -> None:
        pass

    def progress(self, recording_id: str, fraction: float) -> None:
        pass

    def finished(self, recording_id: str, status: str, seconds: float) -> None:
        logger.info("transcription %s", status, extra={"recording_id": recording_id, "seconds": round(seconds, 2)})


class QueueWorker:
    """``threads`` threads taking jobs from the queue (:func:`take_next`) one at a time until
    stopped; :meth:`stop` lets each finish the job it is running. A database outage is waited out."""

    def __init__(self, engine: Engine, storage: RecordingStorage, keys: TenantKeys, model_for: ModelFor, *,
                 worker: str, threads: int, reporter: JobReporter | None = None,
                 poll: float = POLL_SECONDS) -> None:
        self.engine = engine
        self.storage = storage
        self.keys = keys
        self.model_for = model_for
        self.worker = worker
        self.reporter = reporter or LogReporter()
        self.poll = poll
        self.leases = JobLeases(engine, worker)
        self._threads = [threading.Thread(target=self._run, name=f"transcribe-{i}", daemon=True)
                         for i in range(threads)]
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._outage = OutageNotice(logger, "database unavailable: transcription waits for it",
                                    "database available again: transcription goes on")

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        """Look for jobs now (a recording was stored); any thread."""
        self._wake.set()

    def stop(self) -> None:
        """Stop taking jobs, and wait for the jobs running to finish (blocking)."""
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()
        self.leases.stop()

    def _next(self) -> str | None:
        try:
            recording_id = take_next(self.engine, self.worker)
        except Exception as exc:
            if not database_unavailable(exc):
                logger.exception("taking a transcription job failed")
            self._outage.failed(exc)
            return None
        self._outage.ok()
        return recording_id

    def _run(self) -> None:
        while not self._stopping.is_set():
            recording_id = self._next()
            if recording_id is None:
                self._wake.wait(self.poll)
                self._wake.clear()
                continue
            self.reporter.taken(recording_id)
            self.leases.hold(recording_id)
            started = time.monotonic()
            try:
                status = run_job(self.engine, self.storage, self.keys, self.model_for, recording_id,
                                 partial(self.reporter.progress, recording_id), worker=self.worker)
            finally:
                self.leases.release(recording_id)
            self.reporter.finished(recording_id, status, time.monotonic() - started)


class TranscriptionService:
    """The node's transcription workers. PostgreSQL: :class:`QueueWorker` threads on the queue every
    node shares (a recording stored here wakes them). SQLite: recordings are handed to the workers
    as they are stored, and the jobs a previous run left running are queued again at start."""

    def __init__(self, engine: Engine, storage: RecordingStorage, keys: TenantKeys, model_for: ModelFor,
                 workers: int, *, worker: str | None = None) -> None:
        self.engine = engine
        self.storage = storage
        self.keys = keys
        self.model_for = model_for
        self.worker = worker or worker_name("node")
        self.queue = QueueWorker(engine, storage, keys, model_for, worker=self.worker, threads=workers) \
            if engine.dialect.name == "postgresql" else None
        self.leases = JobLeases(engine, self.worker)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="transcribe")
        self._jobs: set[asyncio.Future[str]] = set()

    async def start(self) -> None:
        if self.queue is not None:
            self.queue.start()
            return
        for recording_id in await asyncio.to_thread(requeue_interrupted, self.engine):
            self.submit(recording_id)

    def submit(self, recording_id: str) -> None:
        """Queue a stored recording (on the loop)."""
        if self.queue is not None:
            self.queue.wake()
            return
        job = asyncio.get_running_loop().run_in_executor(self._pool, self._run, recording_id)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    def _run(self, recording_id: str) -> str:
        if not claim(self.engine, recording_id, self.worker):
            return "skipped"
        started = time.monotonic()
        self.leases.hold(recording_id)
        try:
            status = run_job(self.engine, self.storage, self.keys, self.model_for, recording_id, worker=self.worker)
        finally:
            self.leases.release(recording_id)
        logger.info("transcription %s", status, extra={"recording_id": recording_id,
                                                       "seconds": round(time.monotonic() - started, 2)})
        return status

    async def stop(self) -> None:
        if self.queue is not None:
            await asyncio.to_thread(self.queue.stop)
            return
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)
        self.leases.stop()


def backlog(engine: Engine, *, since: datetime | None, tenant_id: int | None, redo: bool) -> list[tuple[str, float]]:
    """Stored recordings to transcribe, as (recording id, seconds), marked pending: those never
    transcribed or failed, and with ``redo`` also the done ones. Jobs running elsewhere are left."""
    with Session(engine) as db:
        query = select(Recording).where(Recording.storage_key.is_not(None),
                                        Recording.status.in_(("complete", "incomplete")))
        if since is not None:
            query = query.where(Recording.started_at >= since)
        if tenant_id is not None:
            query = query.where(Recording.tenant_id == tenant_id)
        chosen = []
        for row in db.scalars(query.order_by(Recording.started_at)):
            transcript = db.get(Transcript, row.id)
            if transcript is None:
                db.add(Transcript(recording_id=row.id, tenant_id=row.tenant_id, call_id=row.call_id,
                                  status="pending", progress=0.0, words=[], text="", analytics={}))
            elif transcript.status == "running" or (transcript.status == "done" and not redo):
                continue
            else:
                transcript.status, transcript.progress = "pending", 0.0
            chosen.append((row.id, row.duration or 0.0))
        db.commit()
        return chosen


def run_backlog(engine: Engine, storage: RecordingStorage, keys: TenantKeys, model_for: ModelFor,
                jobs: list[tuple[str, float]], workers: int,
                on_progress: Callable[[float, dict[str, int]], None]) -> dict[str, int]:
    """Transcribe ``jobs`` in ``workers`` threads; ``on_progress(audio seconds done, counts)``."""
    done_fraction = {rid: 0.0 for rid, _ in jobs}
    seconds = dict(jobs)
    counts = {"done": 0, "failed": 0, "skipped": 0, "lost": 0}
    worker = worker_name("transcribe")
    leases = JobLeases(engine, worker)

    def report() -> None:
        on_progress(sum(seconds[r] * f for r, f in done_fraction.items()), dict(counts))

    def one(recording_id: str) -> None:
        def progress(fraction: float) -> None:
            done_fraction[recording_id] = fraction
            report()

        status = "skipped"
        if claim(engine, recording_id, worker):
            leases.hold(recording_id)
            try:
                status = run_job(engine, storage, keys, model_for, recording_id, progress, worker=worker)
            finally:
                leases.release(recording_id)
        done_fraction[recording_id] = 1.0
        counts[status] += 1
        report()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="transcribe") as pool:
        list(pool.map(one, [rid for rid, _ in jobs]))
    leases.stop()
    return counts
