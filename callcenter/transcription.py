"""Transcription jobs: each stored recording's channels through vosk, then the automatic QA evaluation.

A job is the recording's ``transcripts`` row: ``pending`` until a worker claims it (an
atomic ``pending -> running`` update, so the node and a ``callcenter transcribe`` run never
do the same one twice), ``done`` or ``failed`` after. Jobs run in worker threads (vosk
decodes outside the GIL); progress is written to the row every few percent, for the API
and the CLI's progress bar.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from recordings.archive import load_channels
from recordings.qa_forms import parse_form, phrases_of
from recordings.recorder import RATE
from recordings.storage import RecordingStorage
from recordings.talk import talk_stats
from recordings.transcribe import DEFAULT_VOCABULARY, transcribe

from . import qa
from .models import QaForm, Recording, Tenant, Transcript
from .recording_service import TenantKeys
from .transcripts import index_transcript

logger = logging.getLogger(__name__)

PROGRESS_STEP = 0.05
"""Progress is stored when it moved this much (a row update per step, not per chunk)."""

ModelFor = Callable[[int], Any]
"""The vosk model a tenant's recordings are transcribed with (None: transcription is off)."""


def claim(engine: Engine, recording_id: str) -> bool:
    """Take the job if nobody has: pending -> running."""
    with Session(engine) as db:
        claimed = db.execute(update(Transcript).where(Transcript.recording_id == recording_id,
                                                      Transcript.status == "pending")
                             .values(status="running", progress=0.0, updated_at=datetime.now(timezone.utc)))
        db.commit()
        return bool(claimed.rowcount)  # type: ignore[attr-defined]


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
            recording_id: str, on_progress: Callable[[float], None] | None = None) -> str:
    """Transcribe a claimed recording; returns the final status (``done`` or ``failed``)."""
    try:
        with Session(engine) as db:
            row = db.get(Recording, recording_id)
            tenant = db.get(Tenant, row.tenant_id) if row is not None else None
            if row is None or tenant is None or row.storage_key is None:
                raise LookupError("the recording has no stored audio (purged?)")
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
                _update(engine, recording_id, progress=round(fraction, 3))

        words = transcribe(model, caller, agent, vocabulary=vocab, on_progress=progress)
        talk = talk_stats(caller, agent, rate=RATE, start_s=answered or 0.0)
        with Session(engine) as db:
            transcript = db.get(Transcript, recording_id)
            assert transcript is not None
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
        _update(engine, recording_id, status="failed", error=str(exc) or type(exc).__name__)
        return "failed"
    try:  # the transcript stands even if scoring fails (a broken form): QA can still listen and score
        with Session(engine) as db:
            qa.auto_evaluate(db, tenant_id, call_id)
            db.commit()
    except Exception:
        logger.exception("automatic QA evaluation failed", extra={"recording_id": recording_id})
    return "done"


def _update(engine: Engine, recording_id: str, **values: Any) -> None:
    with Session(engine) as db:
        db.execute(update(Transcript).where(Transcript.recording_id == recording_id)
                   .values(updated_at=datetime.now(timezone.utc), **values))
        db.commit()


def requeue_interrupted(engine: Engine) -> list[str]:
    """Jobs a stopped process left running go back to pending; returns every pending job."""
    with Session(engine) as db:
        db.execute(update(Transcript).where(Transcript.status == "running").values(status="pending"))
        db.commit()
        return list(db.scalars(select(Transcript.recording_id).where(Transcript.status == "pending")
                               .order_by(Transcript.created_at)))


class TranscriptionService:
    """The node's transcription workers: recordings are queued as they are stored."""

    def __init__(self, engine: Engine, storage: RecordingStorage, keys: TenantKeys, model_for: ModelFor,
                 workers: int) -> None:
        self.engine = engine
        self.storage = storage
        self.keys = keys
        self.model_for = model_for
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="transcribe")
        self._jobs: set[asyncio.Future[str]] = set()

    async def start(self) -> None:
        for recording_id in await asyncio.to_thread(requeue_interrupted, self.engine):
            self.submit(recording_id)

    def submit(self, recording_id: str) -> None:
        """Queue a stored recording (on the loop)."""
        job = asyncio.get_running_loop().run_in_executor(self._pool, self._run, recording_id)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    def _run(self, recording_id: str) -> str:
        if not claim(self.engine, recording_id):
            return "skipped"
        started = time.monotonic()
        status = run_job(self.engine, self.storage, self.keys, self.model_for, recording_id)
        logger.info("transcription %s", status, extra={"recording_id": recording_id,
                                                       "seconds": round(time.monotonic() - started, 2)})
        return status

    async def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)


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
    counts = {"done": 0, "failed": 0, "skipped": 0}

    def report() -> None:
        on_progress(sum(seconds[r] * f for r, f in done_fraction.items()), dict(counts))

    def one(recording_id: str) -> None:
        def progress(fraction: float) -> None:
            done_fraction[recording_id] = fraction
            report()

        status = run_job(engine, storage, keys, model_for, recording_id, progress) \
            if claim(engine, recording_id) else "skipped"
        done_fraction[recording_id] = 1.0
        counts[status] += 1
        report()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="transcribe") as pool:
        list(pool.map(one, [rid for rid, _ in jobs]))
    return counts
