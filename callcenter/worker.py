"""``callcenter worker``: a process that only transcribes (no SIP, no HTTP), taking jobs from the
queue the nodes share (``callcenter.transcription``), with the nodes' settings (database,
recordings folder, master key, speech model). It prints what it takes and how it goes; SIGTERM or
SIGINT stop it after the jobs it is running are finished.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from asr import bundled_model_path, load_model
from recordings.storage import LocalStorage

from .models import Recording, Tenant
from .recording_service import TenantKeys
from .settings import Settings
from .transcription import ModelFor, QueueWorker, worker_name

PROGRESS_EVERY = 0.25
"""A job's progress is printed at each quarter."""


def tenant_model_for(engine: Engine, default: Path | None) -> ModelFor:
    """The vosk model of a tenant's recordings: its own (``tenant asr-model``) or ``default``
    (loaded once per path: ``asr.load_model``); None: neither is set."""

    def model_for(tenant_id: int) -> Any:
        with Session(engine) as db:
            path = db.scalar(select(Tenant.asr_model).where(Tenant.id == tenant_id)) or default
        return load_model(Path(path)) if path else None

    return model_for


class PrintReporter:
    """What the worker does, one line each, on ``out``."""

    def __init__(self, engine: Engine, out: TextIO) -> None:
        self.engine = engine
        self.out = out
        self.counts = {"done": 0, "failed": 0, "lost": 0}
        self._shown: dict[str, float] = {}
        self._lock = threading.Lock()

    def _print(self, line: str) -> None:
        with self._lock:
            print(line, file=self.out, flush=True)

    def taken(self, recording_id: str) -> None:
        with Session(self.engine) as db:
            row = db.execute(select(Recording.duration, Tenant.slug).join(Tenant, Tenant.id == Recording.tenant_id)
                             .where(Recording.id == recording_id)).first()
        what = f"tenant {row.slug}, {row.duration or 0:.1f} s of audio" if row is not None else "recording gone"
        self._shown[recording_id] = 0.0
        self._print(f"took {recording_id} ({what})")

    def progress(self, recording_id: str, fraction: float) -> None:
        if fraction - self._shown.get(recording_id, 0.0) >= PROGRESS_EVERY and fraction < 1.0:
            self._shown[recording_id] = fraction
            self._print(f"{recording_id} {fraction:.0%}")

    def finished(self, recording_id: str, status: str, seconds: float) -> None:
        self._shown.pop(recording_id, None)
        with self._lock:
            self.counts[status] = self.counts.get(status, 0) + 1
            totals = ", ".join(f"{n} {kind}" for kind, n in self.counts.items())
        self._print(f"{recording_id} {status} in {seconds:.1f} s ({totals})")


def run_worker(settings: Settings, engine: Engine, threads: int, out: TextIO) -> dict[str, int]:
    """Take and run jobs until SIGTERM/SIGINT; returns how many jobs ended each way."""
    storage = LocalStorage(settings.effective_recordings_dir)
    keys = TenantKeys(engine, settings.effective_master_key)
    model_for = tenant_model_for(engine, settings.asr_model or bundled_model_path())
    reporter = PrintReporter(engine, out)
    name = worker_name("worker", settings.node_id)
    worker = QueueWorker(engine, storage, keys, model_for, worker=name, threads=threads, reporter=reporter)
    stop = threading.Event()

    def stopping(signum: int, _frame: Any) -> None:
        if not stop.is_set():
            print(f"{signal.Signals(signum).name}: stopping after the jobs running", file=out, flush=True)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stopping)
    worker.start()
    database = make_url(settings.effective_database_url).render_as_string(hide_password=True)
    print(f"callcenter worker ready: {name}, {threads} thread(s), database {database}, "
          f"recordings {settings.effective_recordings_dir}", file=out, flush=True)
    while not stop.wait(1.0):
        pass
    started = time.monotonic()
    worker.stop()
    print(f"stopped ({time.monotonic() - started:.1f} s to finish)", file=out, flush=True)
    return reporter.counts
