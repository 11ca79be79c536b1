"""Recordings over HTTP: metadata, playback and download (decrypted as a stream, HTTP Range),
waveform, transcript, search, transcription progress, pause/resume, legal hold, tenant settings.

Who may listen: QA, supervisors and admins of the call's tenant; an agent for the calls they
took, if the tenant allows it. Everyone else gets 404 for other tenants' calls and 403 for
their own tenant's calls they may not hear. Every playback and download is in the audit log.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter import desk
from callcenter.api.audit import record_audit
from callcenter.api.bounds import CallId
from callcenter.api.deps import AppContext, get_ctx, get_db, require_roles
from callcenter.api.errors import ApiError, forbidden, invalid, not_found
from callcenter.models import CallEvent, CallRecord, Recording, Role, Tenant, Transcript
from callcenter.recording_service import TenantKeys
from callcenter.security import Principal
from callcenter.transcripts import search_call_ids
from recordings.archive import waveform
from recordings.codec import FORMATS
from recordings.crypto import EncryptedFile
from recordings.policy import PolicyError, validate_policy
from recordings.storage import LocalStorage, RecordingStorage

log = logging.getLogger(__name__)

router = APIRouter(tags=["recordings"])
listeners = require_roles("qa", "supervisor", "admin", "agent")
reviewers = require_roles("qa", "supervisor", "admin")
controllers = require_roles("supervisor", "admin", "agent")
holders = require_roles("supervisor", "admin")
admin = require_roles("admin")

MAX_BUCKETS = 4000
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def _archive(ctx: AppContext) -> tuple[RecordingStorage, TenantKeys]:
    """The node's storage and keys; an API served without a node builds its own from settings."""
    if ctx.recording_archive is None:
        ctx.recording_archive = (ctx.recordings.storage, ctx.recordings.keys) if ctx.recordings is not None else \
            (LocalStorage(ctx.settings.effective_recordings_dir), TenantKeys(ctx.engine, ctx.settings.effective_master_key))
    storage, keys = ctx.recording_archive
    return storage, keys


def _took_call(db: Session, principal: Principal, call: CallRecord) -> bool:
    agent = desk.agent_for_user(db, principal.user_id)
    if agent is None:
        return False
    if call.agent_id == agent.id:
        return True
    return (db.scalar(select(func.count()).select_from(CallEvent).where(
        CallEvent.call_id == call.id, CallEvent.agent_id == agent.id, CallEvent.kind == "answered")) or 0) > 0


def _call(db: Session, principal: Principal, call_id: str) -> CallRecord:
    call = db.get(CallRecord, call_id)
    if call is None or call.tenant_id != principal.tenant_id:
        raise not_found("call")
    return call


def _may_hear(db: Session, principal: Principal, call: CallRecord) -> None:
    if principal.role != Role.AGENT:
        return
    tenant = db.get(Tenant, principal.tenant_id)
    if tenant is None or not tenant.agents_hear_own_calls or not _took_call(db, principal, call):
        raise forbidden()


def _recording(db: Session, principal: Principal, call_id: str) -> Recording:
    call = _call(db, principal, call_id)
    _may_hear(db, principal, call)
    row = db.scalars(select(Recording).where(Recording.call_id == call.id, Recording.tenant_id == principal.tenant_id)
                     .order_by(Recording.started_at.desc())).first()
    if row is None:
        raise not_found("recording")
    return row


def recording_out(row: Recording) -> dict[str, Any]:
    return {"id": row.id, "call_id": row.call_id, "status": row.status, "format": row.format,
            "mime": FORMATS[row.format].mime if row.format in FORMATS else "application/octet-stream",
            "duration": row.duration, "started_at": row.started_at, "ended_at": row.ended_at,
            "agent_answered_s": row.agent_answered_s, "pauses": row.pauses, "legal_hold": row.legal_hold,
            "size": row.size, "sha256": row.sha256, "purged_at": row.purged_at}


def _stored(row: Recording) -> str:
    if row.storage_key is None:
        detail = {"purged": "purged by the retention policy",
                  "failed": "recording it failed (the recordings disk was full or could not be written)",
                  }.get(row.status, "still being recorded")
        raise ApiError(409, "recording-not-available", f"the recording has no audio to play: {detail}")
    return row.storage_key


def _missing(row: Recording) -> ApiError:
    """A row whose file is gone from storage (deleted by hand, a storage not mounted): an operator's
    problem to look at, and for the client a recording without audio, never a 500."""
    log.error("recording file missing from storage", extra={"call_id": row.call_id, "recording_id": row.id,
                                                            "storage_key": row.storage_key})
    return ApiError(409, "recording-not-available", "the recording has no audio to play: its file is missing "
                    "from storage")


@router.get("/api/calls/{call_id}/recording")
def get_recording(call_id: CallId, principal: Principal = Depends(listeners),
                  db: Session = Depends(get_db)) -> dict[str, Any]:
    """The call's recording: status (``recording``, ``complete``, ``incomplete``: the node stopped
    mid-call, ``failed``: the recordings disk was full, no audio kept, ``purged``), format, length,
    pauses, legal hold, checksum."""
    return recording_out(_recording(db, principal, call_id))


@router.get("/api/calls/{call_id}/recording/audio")
def get_audio(call_id: CallId, request: Request, download: bool = False,
              range_: str | None = Header(None, alias="range", max_length=100),
              principal: Principal = Depends(listeners), db: Session = Depends(get_db),
              ctx: AppContext = Depends(get_ctx)) -> StreamingResponse:
    """The recording's audio (left channel caller, right agent), decrypted as it streams.
    Supports HTTP Range (players seek with it); ``download=1`` asks the browser to save it."""
    row = _recording(db, principal, call_id)
    storage, keys = _archive(ctx)
    try:
        raw = storage.open(_stored(row))
    except FileNotFoundError:
        raise _missing(row) from None
    try:
        audio = EncryptedFile(raw, keys.get(row.tenant_id))
    except BaseException:
        raw.close()
        raise
    size = audio.size
    start, end = 0, size
    status = 200
    if range_:
        match = _RANGE.match(range_.strip())
        if match is None or match.group(1) == match.group(2) == "":
            raise ApiError(416, "bad-range", f"unsupported Range header {range_!r}")
        if match.group(1):
            start = int(match.group(1))
            end = min(int(match.group(2)) + 1, size) if match.group(2) else size
        else:  # the last N bytes
            start = max(size - int(match.group(2)), 0)
        if start >= size or start >= end:
            raise ApiError(416, "bad-range", f"range {range_!r} is outside the {size} bytes of the recording")
        status = 206
    if start == 0:  # one entry per playback or download, not per range request of the player
        record_audit(db, principal, "recording.download" if download else "recording.play", f"call:{call_id}",
                     {"recording_id": row.id, "range": range_})
        db.commit()
    fmt = FORMATS.get(row.format)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start), "Cache-Control": "private, no-store"}
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    if download:
        extension = fmt.extension if fmt is not None else "bin"
        headers["Content-Disposition"] = f'attachment; filename="call-{call_id}.{extension}"'

    def body() -> Iterator[bytes]:
        try:
            yield from audio.read_range(start, end)
        finally:
            raw.close()

    return StreamingResponse(body(), status_code=status, headers=headers,
                             media_type=fmt.mime if fmt is not None else "application/octet-stream")


@router.get("/api/calls/{call_id}/recording/peaks")
def get_peaks(call_id: CallId, buckets: int = Query(800, ge=10, le=MAX_BUCKETS),
              principal: Principal = Depends(listeners),
              db: Session = Depends(get_db), ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Per-channel loudness in ``buckets`` slices, for drawing the waveform."""
    row = _recording(db, principal, call_id)
    storage, keys = _archive(ctx)
    try:
        peaks = waveform(storage, keys.get(row.tenant_id), _stored(row), buckets)
    except FileNotFoundError:
        raise _missing(row) from None
    return {"duration": row.duration, **peaks}


@router.get("/api/calls/{call_id}/transcript")
def get_transcript(call_id: CallId, principal: Principal = Depends(listeners),
                   db: Session = Depends(get_db)) -> dict[str, Any]:
    """The words by speaker with their times, the talk analytics, and the job's progress."""
    row = _recording(db, principal, call_id)
    transcript = db.get(Transcript, row.id)
    if transcript is None:
        return {"status": "none", "progress": 0.0, "words": [], "analytics": {}}
    record_audit(db, principal, "transcript.read", f"call:{call_id}", {"recording_id": row.id})
    db.commit()
    return {"status": transcript.status, "progress": transcript.progress, "words": transcript.words,
            "analytics": transcript.analytics, "error": transcript.error}


@router.get("/api/transcripts/search")
def search_transcripts(q: str = Query(min_length=1, max_length=200), limit: int = Query(50, ge=1, le=500),
                       principal: Principal = Depends(reviewers), db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    """Calls whose transcript contains every word of ``q`` (word prefixes), newest first."""
    ids = search_call_ids(db, principal.tenant_id, q)
    rows = db.scalars(select(CallRecord).where(CallRecord.id.in_(ids), CallRecord.tenant_id == principal.tenant_id)
                      .order_by(CallRecord.received_at.desc()).limit(limit)).all()
    return [{"call_id": r.id, "caller": r.caller, "agent_id": r.agent_id, "queue": r.queue,
             "received_at": r.received_at} for r in rows]


@router.get("/api/transcriptions")
def transcription_progress(principal: Principal = Depends(reviewers), db: Session = Depends(get_db)) -> dict[str, Any]:
    """How far transcription is: jobs by status, and the running ones with their progress."""
    counts = dict(db.execute(select(Transcript.status, func.count()).where(Transcript.tenant_id == principal.tenant_id)
                             .group_by(Transcript.status)).all())
    running = db.scalars(select(Transcript).where(Transcript.tenant_id == principal.tenant_id,
                                                  Transcript.status == "running")).all()
    failed = db.scalars(select(Transcript).where(Transcript.tenant_id == principal.tenant_id,
                                                 Transcript.status == "failed")
                        .order_by(Transcript.updated_at.desc()).limit(20)).all()
    return {"counts": {s: counts.get(s, 0) for s in ("pending", "running", "done", "failed")},
            "running": [{"call_id": t.call_id, "recording_id": t.recording_id, "progress": t.progress}
                        for t in running],
            "failed": [{"call_id": t.call_id, "recording_id": t.recording_id, "error": t.error} for t in failed]}


@router.post("/api/calls/{call_id}/recording/pause")
def pause_recording(call_id: CallId, principal: Principal = Depends(controllers), db: Session = Depends(get_db),
                    ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Stop keeping the live call's audio (e.g. while the caller reads out a card number)."""
    return _pause(call_id, True, principal, db, ctx)


@router.post("/api/calls/{call_id}/recording/resume")
def resume_recording(call_id: CallId, principal: Principal = Depends(controllers), db: Session = Depends(get_db),
                     ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    return _pause(call_id, False, principal, db, ctx)


def _pause(call_id: str, paused: bool, principal: Principal, db: Session, ctx: AppContext) -> dict[str, Any]:
    call = _call(db, principal, call_id)
    if principal.role == Role.AGENT:
        tenant = db.get(Tenant, principal.tenant_id)
        if tenant is None or not tenant.recording_pause_allowed or not _took_call(db, principal, call):
            raise forbidden()
    service = ctx.recordings
    live = service.live.get(call_id) if service is not None else None
    if live is None or live.tenant_id != principal.tenant_id:
        raise ApiError(409, "recording-not-live", "this call is not being recorded right now")
    reason = "agent" if principal.role == Role.AGENT else "api"
    service.call_on_loop(service.pause if paused else service.resume, call_id, reason)
    record_audit(db, principal, "recording.pause" if paused else "recording.resume", f"call:{call_id}", {})
    db.commit()
    return {"call_id": call_id, "paused": paused}


class LegalHoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    legal_hold: bool


@router.put("/api/calls/{call_id}/recording/legal-hold")
def put_legal_hold(call_id: CallId, body: LegalHoldIn, principal: Principal = Depends(holders),
                   db: Session = Depends(get_db)) -> dict[str, Any]:
    """Keep the recording past its retention (or let retention apply again)."""
    row = _recording(db, principal, call_id)
    row.legal_hold = body.legal_hold
    record_audit(db, principal, "recording.legal_hold", f"call:{call_id}", {"legal_hold": body.legal_hold})
    db.commit()
    return recording_out(row)


class RecordingSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recording_policy: dict[str, Any] | None = None
    recording_format: str | None = Field(default=None, pattern="^(opus|flac)$")
    retention_days: int | None = Field(default=None, ge=1, le=36500)
    keep_forever: bool = False
    agents_hear_own_calls: bool | None = None
    recording_pause_allowed: bool | None = None
    transcription_mode: str | None = Field(default=None, pattern="^(vocabulary|free)$")
    transcription_vocabulary: list[Annotated[str, Field(max_length=100)]] | None = Field(default=None, max_length=2000)


def _settings_out(tenant: Tenant) -> dict[str, Any]:
    return {"recording_policy": tenant.recording_policy, "recording_format": tenant.recording_format,
            "retention_days": tenant.retention_days, "agents_hear_own_calls": tenant.agents_hear_own_calls,
            "recording_pause_allowed": tenant.recording_pause_allowed,
            "transcription_mode": tenant.transcription_mode, "transcription_vocabulary": tenant.transcription_vocabulary}


@router.get("/api/recording-settings")
def get_recording_settings(principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> dict[str, Any]:
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    return _settings_out(tenant)


@router.put("/api/recording-settings")
def put_recording_settings(body: RecordingSettingsIn, principal: Principal = Depends(admin),
                           db: Session = Depends(get_db)) -> dict[str, Any]:
    """Which calls are recorded, the file format, retention, who may listen, what transcription hears."""
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    if body.recording_policy is not None:
        try:
            tenant.recording_policy = validate_policy(body.recording_policy)
        except PolicyError as exc:
            raise invalid(str(exc)) from exc
    if body.recording_format is not None:
        tenant.recording_format = body.recording_format
    if body.keep_forever:
        tenant.retention_days = None
    elif body.retention_days is not None:
        tenant.retention_days = body.retention_days
    for name in ("agents_hear_own_calls", "recording_pause_allowed", "transcription_mode"):
        value = getattr(body, name)
        if value is not None:
            setattr(tenant, name, value)
    if body.transcription_vocabulary is not None:
        tenant.transcription_vocabulary = [w.strip() for w in body.transcription_vocabulary if w.strip()]
    record_audit(db, principal, "recording_settings.update", f"tenant:{tenant.id}",
                 body.model_dump(exclude_none=True))
    db.commit()
    return _settings_out(tenant)
