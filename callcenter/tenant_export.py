"""A tenant's data as one zip file: what the customer takes with them before their tenant is deleted.

Layout (JSON Lines for what grows with traffic, JSON for configuration)::

    manifest.json                 tenant, time of export, counts, this layout's version
    config/tenant.json            settings, dispositions, quotas, time zone
    config/<table>.json           users (no password hashes), agents (no SIP secrets), numbers,
                                  flows with every version, queues, calendars, trunks (no
                                  passwords), QA forms
    calls.jsonl                   call records, each with its events
    ivr_traces.jsonl, voicemails.jsonl, recordings.jsonl, transcripts.jsonl, qa_evaluations.jsonl
    recordings/<call id>.<ext>    the audio, decrypted (Ogg Opus or FLAC: caller left, agent right)
    prompts/<name>.wav, voicemail/<file>

Recordings are decrypted with the tenant's data key: the customer has no use for files only this
platform's master key opens.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Callable, Iterable
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import (
    AcdQueue,
    Agent,
    Base,
    BusinessCalendarRow,
    CallEvent,
    CallRecord,
    Flow,
    FlowVersion,
    IvrTrace,
    Number,
    QaEvaluation,
    QaForm,
    Recording,
    Tenant,
    Transcript,
    Trunk,
    User,
    Voicemail,
    utcnow,
)
from recordings.codec import FORMATS
from recordings.crypto import EncryptedFile
from recordings.storage import RecordingStorage

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
SECRET_COLUMNS = frozenset({"password_hash", "sip_ha1", "inbound_password", "register_password", "recording_key"})
"""Never exported: hashes and secrets are the platform's, and useless (or dangerous) elsewhere."""


def _value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (datetime, date)) else value


def row_dict(row: Base) -> dict[str, Any]:
    """A row's columns as JSON values, secrets left out."""
    return {c.name: _value(getattr(row, c.key)) for c in row.__table__.columns  # type: ignore[attr-defined]
            if c.name not in SECRET_COLUMNS}


def _json(zf: zipfile.ZipFile, name: str, value: Any) -> None:
    zf.writestr(name, json.dumps(value, ensure_ascii=False, indent=2))


def _jsonl(zf: zipfile.ZipFile, name: str, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with zf.open(name, "w") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
            count += 1
    return count


def _files(zf: zipfile.ZipFile, folder: Path, prefix: str) -> int:
    if not folder.is_dir():
        return 0
    count = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        zf.write(path, f"{prefix}/{path.relative_to(folder).as_posix()}")
        count += 1
    return count


def write_export(db: Session, tenant: Tenant, out: IO[bytes], storage: RecordingStorage,
                 tenant_key: Callable[[], bytes], data_dir: Path) -> dict[str, int]:
    """Write the tenant's zip to ``out``; returns the counts of the manifest. ``tenant_key`` gives
    the recording data key (asked only when there is a recording to decrypt)."""
    tid = tenant.id

    def rows(model: type[Base], *order: Any) -> list[dict[str, Any]]:
        return [row_dict(r) for r in db.scalars(select(model).where(model.tenant_id == tid)  # type: ignore[attr-defined]
                                                .order_by(*order))]

    counts: dict[str, int] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        _json(zf, "config/tenant.json", row_dict(tenant))
        flows = rows(Flow, Flow.name)
        versions = rows(FlowVersion, FlowVersion.flow_id, FlowVersion.version)
        for flow in flows:
            flow["versions"] = [v for v in versions if v["flow_id"] == flow["id"]]
        config: dict[str, list[dict[str, Any]]] = {
            "users": rows(User, User.username), "agents": rows(Agent, Agent.id), "numbers": rows(Number, Number.number),
            "flows": flows, "queues": rows(AcdQueue, AcdQueue.name),
            "calendars": rows(BusinessCalendarRow, BusinessCalendarRow.name), "trunks": rows(Trunk, Trunk.name),
            "qa_forms": rows(QaForm, QaForm.id)}
        for name, value in config.items():
            _json(zf, f"config/{name}.json", value)
            counts[name] = len(value)
        events: dict[str, list[dict[str, Any]]] = {}
        for event in rows(CallEvent, CallEvent.at):
            events.setdefault(event["call_id"], []).append(event)
        counts["calls"] = _jsonl(zf, "calls.jsonl", ({**call, "events": events.get(call["id"], [])}
                                                     for call in rows(CallRecord, CallRecord.received_at)))
        counts["ivr_traces"] = _jsonl(zf, "ivr_traces.jsonl", rows(IvrTrace, IvrTrace.updated_at))
        counts["voicemails"] = _jsonl(zf, "voicemails.jsonl", rows(Voicemail, Voicemail.created_at))
        counts["transcripts"] = _jsonl(zf, "transcripts.jsonl", rows(Transcript, Transcript.created_at))
        counts["qa_evaluations"] = _jsonl(zf, "qa_evaluations.jsonl", rows(QaEvaluation, QaEvaluation.created_at))
        recordings = list(db.scalars(select(Recording).where(Recording.tenant_id == tid)
                                     .order_by(Recording.started_at)))
        counts["recordings"] = _jsonl(zf, "recordings.jsonl", map(row_dict, recordings))
        counts["recording_files"] = 0
        for rec in recordings:
            if rec.storage_key is None or rec.status == "purged":
                continue
            fmt = FORMATS.get(rec.format)
            try:
                with storage.open(rec.storage_key) as raw, \
                        zf.open(f"recordings/{rec.call_id}.{fmt.extension if fmt else 'bin'}", "w") as target:
                    for block in EncryptedFile(raw, tenant_key()):
                        target.write(block)
                counts["recording_files"] += 1
            except FileNotFoundError:
                logger.error("recording file missing from storage: not exported",
                             extra={"tenant": tenant.slug, "recording_id": rec.id, "call_id": rec.call_id})
        counts["prompts"] = _files(zf, data_dir / "prompts" / f"tenant-{tid}", "prompts")
        counts["voicemail_files"] = _files(zf, data_dir / "voicemail" / f"tenant-{tid}", "voicemail")
        _json(zf, "manifest.json", {"format_version": FORMAT_VERSION, "tenant": tenant.slug, "name": tenant.name,
                                    "exported_at": utcnow().isoformat(), "counts": counts})
    return counts
