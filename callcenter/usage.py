"""What each tenant used per day: the basis of billing, computed from the call records,
recordings and transcripts (nothing is counted twice or kept apart from them).

Days are the tenant's own (``tenants.timezone``): a call belongs to the day it came in, a recording
to the day it started, a transcription to the day it finished. Calls are carrier calls (legs
through one of the tenant's trunks, as ``callcenter.tenant_calls`` counts them): the agents' own
legs are part of those calls. Minutes are talk time (answer to hang-up), unrounded; a carrier's
per-call rounding is the invoice's business.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.models import (
    CallRecord,
    Direction,
    Recording,
    Tenant,
    Transcript,
    utcnow,
)

REFUSED_CAUSES = frozenset({"quota", "suspended", "capacity", "not_found", "forbidden", "rejected"})
"""Calls answered with an error at once: counted as calls (and as refused), never as in progress."""
QUOTA_CAUSES = frozenset({"quota", "suspended"})


@dataclass
class DayUsage:
    tenant: str
    day: date
    calls: int = 0
    calls_refused: int = 0
    """Refused for the tenant's quota or suspension."""
    inbound_minutes: float = 0.0
    outbound_minutes: float = 0.0
    peak_concurrent_calls: int = 0
    recording_bytes: int = 0
    """Size of the recordings made that day (as stored, encrypted)."""
    transcription_minutes: float = 0.0


COLUMNS = tuple(f.name for f in fields(DayUsage))


def _window(tz: ZoneInfo, start: date, end: date) -> tuple[datetime, datetime]:
    return (datetime.combine(start, time(), tz), datetime.combine(end + timedelta(days=1), time(), tz))


def tenant_usage(db: Session, tenant: Tenant, start: date, end: date) -> list[DayUsage]:
    """One row per day from ``start`` to ``end`` (inclusive) in the tenant's time zone."""
    tz = ZoneInfo(tenant.timezone)
    since, until = _window(tz, start, end)
    days = {start + timedelta(days=n): DayUsage(tenant.slug, start + timedelta(days=n))
            for n in range((end - start).days + 1)}

    def day_of(moment: datetime) -> DayUsage | None:
        return days.get(moment.astimezone(tz).date())

    now = utcnow()
    moves: list[tuple[datetime, int]] = []
    calls = db.execute(select(CallRecord.received_at, CallRecord.answered_at, CallRecord.ended_at,
                              CallRecord.direction, CallRecord.end_cause)
                       .where(CallRecord.tenant_id == tenant.id, CallRecord.trunk_id.is_not(None),
                              CallRecord.received_at >= since, CallRecord.received_at < until))
    for received, answered, ended, direction, cause in calls:
        row = day_of(received)
        if row is None:
            continue
        row.calls += 1
        if cause in QUOTA_CAUSES:
            row.calls_refused += 1
        if answered is not None and ended is not None:
            minutes = max(0.0, (ended - answered).total_seconds()) / 60
            if direction == Direction.OUTBOUND.value:
                row.outbound_minutes += minutes
            else:
                row.inbound_minutes += minutes
        if cause not in REFUSED_CAUSES:
            moves += [(received, 1), (ended or now, -1)]
    current = 0
    for moment, step in sorted(moves, key=lambda m: (m[0], m[1])):  # an end before a start at the same time
        current += step
        if step > 0 and (row := day_of(moment)) is not None:
            row.peak_concurrent_calls = max(row.peak_concurrent_calls, current)
    for started, size in db.execute(select(Recording.started_at, Recording.size)
                                    .where(Recording.tenant_id == tenant.id, Recording.started_at >= since,
                                           Recording.started_at < until)):
        if (row := day_of(started)) is not None:
            row.recording_bytes += size or 0
    for finished, seconds in db.execute(select(Transcript.updated_at, Recording.duration)
                                        .join(Recording, Recording.id == Transcript.recording_id)
                                        .where(Transcript.tenant_id == tenant.id, Transcript.status == "done",
                                               Transcript.updated_at >= since, Transcript.updated_at < until)):
        if (row := day_of(finished)) is not None:
            row.transcription_minutes += (seconds or 0.0) / 60
    for row in days.values():
        row.inbound_minutes = round(row.inbound_minutes, 2)
        row.outbound_minutes = round(row.outbound_minutes, 2)
        row.transcription_minutes = round(row.transcription_minutes, 2)
    return list(days.values())


def today(tenant: Tenant) -> date:
    """The date now in the tenant's time zone."""
    return utcnow().astimezone(ZoneInfo(tenant.timezone)).date()


def transcribed_minutes_this_month(db: Session, tenant: Tenant) -> float:
    """Minutes of the tenant's recordings transcribed since the first of this month (its time zone)."""
    tz = ZoneInfo(tenant.timezone)
    first = datetime.combine(today(tenant).replace(day=1), time(), tz)
    seconds = db.scalar(select(func.coalesce(func.sum(Recording.duration), 0.0))
                        .join(Transcript, Transcript.recording_id == Recording.id)
                        .where(Transcript.tenant_id == tenant.id, Transcript.status == "done",
                               Transcript.updated_at >= first))
    return float(seconds or 0.0) / 60


def to_csv(rows: list[DayUsage]) -> str:
    """The rows as CSV with a header line (``COLUMNS``), dates in ISO 8601."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**asdict(row), "day": row.day.isoformat()})
    return out.getvalue()

