"""A recorded, transcribed call put straight into a node's data folder, for tests of what comes
after the call (the QA page, the API) without placing the call.

The audio is stored exactly as the node stores it (encoded, encrypted with the tenant's key
under the node's master key in ``data_dir``); the transcript is the one given, not recognised.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from callcenter import qa
from callcenter.models import CallEvent, CallRecord, Recording, Transcript
from callcenter.recording_service import TenantKeys
from callcenter.settings import Settings
from callcenter.transcripts import index_transcript
from recordings.archive import store_audio
from recordings.storage import LocalStorage
from recordings.talk import talk_stats


@dataclass
class RecordedCall:
    call_id: str
    recording_id: str
    duration: float


def make_recorded_call(engine: Engine, data_dir: Path, tenant_id: int, *, caller_pcm: bytes, agent_pcm: bytes,
                       words: list[dict[str, Any]], agent_id: int | None = None, queue: str | None = "sales",
                       started_at: datetime | None = None, fmt: str = "opus",
                       evaluate: bool = True) -> RecordedCall:
    """A finished call with its two-channel recording (16-bit 8 kHz PCM per side, padded to the same
    length), its transcript ``words`` ({"word", "start", "end", "conf", "speaker"}) and, with
    ``evaluate``, the automatic QA evaluation."""
    settings = Settings(data_dir=data_dir)
    storage = LocalStorage(settings.effective_recordings_dir)
    keys = TenantKeys(engine, settings.effective_master_key)
    caller = np.frombuffer(caller_pcm, dtype="<i2").astype(np.int16)
    agent = np.frombuffer(agent_pcm, dtype="<i2").astype(np.int16)
    length = max(len(caller), len(agent))
    caller, agent = np.pad(caller, (0, length - len(caller))), np.pad(agent, (0, length - len(agent)))
    started = started_at or datetime.now(timezone.utc) - timedelta(minutes=5)
    call_id, recording_id = str(uuid.uuid4()), str(uuid.uuid4())
    stored, duration = store_audio(storage, keys.get(tenant_id), tenant_id, recording_id, started, caller, agent, fmt)
    ended = started + timedelta(seconds=duration)
    with Session(engine) as db:
        db.add(CallRecord(id=call_id, sip_call_id=f"{call_id}@test", tenant_id=tenant_id, direction="inbound",
                          caller="13800138000", dialed="4001234567", received_at=started, answered_at=started,
                          ended_at=ended, end_cause="normal_clearing", hangup_side="caller", agent_id=agent_id,
                          queue=queue, codec="PCMA"))
        db.flush()
        if agent_id is not None:
            db.add(CallEvent(call_id=call_id, tenant_id=tenant_id, at=started, kind="answered", agent_id=agent_id,
                             detail={"queue": queue}))
        db.add(Recording(id=recording_id, tenant_id=tenant_id, call_id=call_id, status="complete", format=fmt,
                         storage_key=stored.key, size=stored.size, sha256=stored.sha256, duration=duration,
                         started_at=started, ended_at=ended, agent_answered_s=0.0, pauses=[], legal_hold=False))
        db.flush()
        talk = talk_stats(caller, agent)
        transcript = Transcript(recording_id=recording_id, tenant_id=tenant_id, call_id=call_id, status="done",
                                progress=1.0, words=words, text=" ".join(w["word"] for w in words),
                                analytics=talk.as_json())
        db.add(transcript)
        db.flush()
        index_transcript(db, transcript)
        db.commit()
        if evaluate:
            qa.auto_evaluate(db, tenant_id, call_id)
            db.commit()
    return RecordedCall(call_id, recording_id, duration)
