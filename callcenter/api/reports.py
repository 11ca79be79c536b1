"""Historical reports and call search (supervisor, admin; call search also qa).

``GET /api/reports/intervals``: interval report per queue or agent, optionally split by channel
(``by_channel``) or of one channel (``channel``), with satisfaction and chat figures (definitions
in ``callcenter.reports``), JSON or ``format=csv``. ``GET /api/calls/search``: call records by
number, agent, queue, disposition and date range, JSON or a streamed CSV export. Only the
caller's tenant's rows are ever read.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from callcenter import csat, reports
from callcenter.api.bounds import Instant, Offset, as_db_id
from callcenter.api.deps import AppContext, get_ctx, get_db, require_roles
from callcenter.api.errors import invalid
from callcenter.models import (AcdQueue, Agent, AgentStateChange, CallEvent, CallRecord, ChatConversation,
                               CsatResponse, IvrTrace, User)
from callcenter.security import Principal

router = APIRouter(tags=["reports"])
supervisors = require_roles("supervisor", "admin")
searchers = require_roles("supervisor", "admin", "qa")

MAX_RANGE = timedelta(days=93)
LOOKBACK = timedelta(days=1)
"""Calls received this long before ``since`` may still have entered a queue after it."""
LOOKAHEAD = timedelta(days=1)
"""State changes this long after ``until`` are read too: a call queued before ``until`` may end
(and its after-contact work start) after it."""
SEARCH_LIMIT = 100
SEARCH_MAX = 1000
CSV_CHUNK = 500
VISITOR_GONE = frozenset({"visitor_left", "visitor_ended"})
"""A chat's end causes that mean the visitor went (before any agent took it: abandoned)."""


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise invalid(f"unknown time zone {name!r}") from exc


def _parse_local(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    # For reports a time without offset is local time in ``tz``.
    if value is None:
        return None
    return value.replace(tzinfo=tz).astimezone(timezone.utc) if value.tzinfo is None \
        else value.astimezone(timezone.utc)


def _iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return _utc(parsed)


def queue_entry(trace: dict[str, Any] | None) -> tuple[str, datetime, datetime | None] | None:
    """(queue, entered at, abandoned at) from an IVR trace's first ``queue`` step."""
    for step in (trace or {}).get("steps") or []:
        if step.get("type") != "queue":
            continue
        exit_ = str(step.get("exit") or "")
        at = _iso(step.get("at"))
        if not exit_.startswith("queue: ") or at is None:
            continue
        abandoned = next((_iso(e.get("at")) for e in step.get("events") or [] if e.get("event") == "abandoned"), None)
        return exit_.removeprefix("queue: "), at, abandoned
    return None


def _chat_facts(record: CallRecord, conversation: ChatConversation | None, events: list[reports.Event],
                rating: CsatResponse | None) -> reports.CallFacts | None:
    """A chat's figures: in the queue from its ``queued`` event (else, when an agent took it, from its
    arrival; a chat the bot alone answered never queued), the agent's answer from its ``answered``
    event (else the record's answer and agent), abandoned when the visitor left before any agent."""
    queue = record.queue or (conversation.queue if conversation is not None else None)
    answered_at = record.answered_at or (conversation.answered_at if conversation is not None else None)
    queued = next((e for e in events if e.kind == "queued"), None)
    if not queue or (queued is None and answered_at is None):
        return None
    if answered_at is not None and record.agent_id is not None and not any(
            e.kind == "answered" and e.agent_id is not None for e in events):
        events = sorted([*events, reports.Event("answered", answered_at, record.agent_id, {"queue": queue})],
                        key=lambda e: e.at)
    ended_at = record.ended_at or (conversation.ended_at if conversation is not None else None)
    left = answered_at is None and ended_at is not None and (
        record.hangup_side == "caller" or (conversation is not None and conversation.end_cause in VISITOR_GONE))
    return reports.CallFacts(
        record.id, queue, queued.at if queued is not None else record.received_at, ended_at, record.hangup_side,
        events, ended_at if left else None, channel="chat", csat=rating.rating if rating else None,
        csat_agent=rating.agent_id if rating else None,
        first_response_at=conversation.first_response_at if conversation is not None else None)


def load_calls(db: Session, tenant_id: int, since: datetime, until: datetime) -> list[reports.CallFacts]:
    """The tenant's queued calls that may have entered a queue in [since, until), and its chats (those
    that entered earlier too: their agents' chats at once count where they were connected)."""
    records = db.scalars(select(CallRecord).where(
        CallRecord.tenant_id == tenant_id, CallRecord.received_at >= since - LOOKBACK,
        CallRecord.received_at < until)).all()
    ids = [r.id for r in records]
    traces: dict[str, dict[str, Any]] = {}
    events: dict[str, list[reports.Event]] = defaultdict(list)
    conversations: dict[str, ChatConversation] = {}
    chat_ids = {r.id for r in records if r.channel == "chat"}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for trace in db.scalars(select(IvrTrace).where(IvrTrace.tenant_id == tenant_id,
                                                       IvrTrace.call_id.in_(chunk))):
            traces[trace.call_id] = trace.trace
        for ev in db.scalars(select(CallEvent).where(CallEvent.tenant_id == tenant_id, CallEvent.call_id.in_(chunk))
                             .order_by(CallEvent.at, CallEvent.id)):
            events[ev.call_id].append(reports.Event(ev.kind, ev.at, ev.agent_id, ev.detail))
        chats = [i for i in chunk if i in chat_ids]
        if chats:
            for conversation in db.scalars(select(ChatConversation).where(ChatConversation.tenant_id == tenant_id,
                                                                          ChatConversation.id.in_(chats))):
                conversations[conversation.id] = conversation
    ratings = csat.ratings_of(db, tenant_id, ids)
    out = []
    for r in records:
        rating = ratings.get(r.id)
        if r.channel == "chat":
            chat = _chat_facts(r, conversations.get(r.id), events.get(r.id, []), rating)
            if chat is not None:
                out.append(chat)
            continue
        entry = queue_entry(traces.get(r.id))
        call_events = events.get(r.id, [])
        if entry is not None:
            queue, entered, abandoned = entry
        else:
            first = next((e for e in call_events if e.kind == "answered" and e.agent_id is not None
                          and not (e.detail or {}).get("consult")), None)
            queue = str((first.detail or {}).get("queue") or "") if first is not None else ""
            queue = queue or (r.queue or "")
            if not queue:
                continue
            entered, abandoned = r.answered_at or r.received_at, None
        if not since <= entered < until:
            continue
        out.append(reports.CallFacts(r.id, queue, entered, r.ended_at, r.hangup_side, call_events, abandoned,
                                     csat=rating.rating if rating else None,
                                     csat_agent=rating.agent_id if rating else None))
    return out


def load_states(db: Session, tenant_id: int, since: datetime, until: datetime) -> list[reports.StateChange]:
    """State changes in [since, until + LOOKAHEAD) plus each agent's last change before ``since``."""
    last = (select(AgentStateChange.agent_id, func.max(AgentStateChange.at).label("at"))
            .where(AgentStateChange.tenant_id == tenant_id, AgentStateChange.at < since)
            .group_by(AgentStateChange.agent_id).subquery())
    before = select(AgentStateChange).join(last, and_(last.c.agent_id == AgentStateChange.agent_id,
                                                      last.c.at == AgentStateChange.at)) \
        .where(AgentStateChange.tenant_id == tenant_id)
    within = select(AgentStateChange).where(AgentStateChange.tenant_id == tenant_id, AgentStateChange.at >= since,
                                            AgentStateChange.at < until + LOOKAHEAD)
    rows = list(db.scalars(before)) + list(db.scalars(within))
    return [reports.StateChange(c.agent_id, c.old_state, c.new_state, c.at)
            for c in sorted(rows, key=lambda c: (c.at, c.id))]


def _agents(db: Session, tenant_id: int) -> dict[int, tuple[str, dict[str, int]]]:
    rows = db.execute(select(Agent.id, User.username, Agent.skills).join(User, User.id == Agent.user_id)
                      .where(Agent.tenant_id == tenant_id)).all()
    return {a: (u, s or {}) for a, u, s in rows}


def build_report(db: Session, tenant_id: int, *, by: Literal["queue", "agent"], interval: str, since: datetime,
                 until: datetime, tz: ZoneInfo, sl_threshold: float, short_abandon: float,
                 by_channel: bool = False, channel: str | None = None) -> dict[str, Any]:
    """The report as the API answers it; ``channel`` keeps only that channel's contacts (and, for a
    chat report, no agent states: occupancy is voice work)."""
    agents = _agents(db, tenant_id)
    queues = {q.name: str((q.config or {}).get("skill") or q.name)
              for q in db.scalars(select(AcdQueue).where(AcdQueue.tenant_id == tenant_id))}
    queue_agents = {name: [a for a, (_, skills) in agents.items() if skill in skills] for name, skill in queues.items()}
    calls = load_calls(db, tenant_id, since, until)
    if channel is not None:
        calls = [c for c in calls if c.channel == channel]
    states = load_states(db, tenant_id, since, until) if channel != "chat" else []
    report = reports.interval_report(
        calls, states, by=by, since=since,
        until=until, tz=tz, interval=interval, sl_threshold=sl_threshold, short_abandon=short_abandon,
        keys=sorted(queues) if by == "queue" else (), queue_agents=queue_agents, by_channel=by_channel)
    if by == "agent":
        for row in (*report.rows, *report.totals):
            row["agent"] = agents.get(row["agent_id"], ("", {}))[0] or None
    return {"by": by, "interval": interval, "tz": tz.key, "since": since.astimezone(tz).isoformat(),
            "until": until.astimezone(tz).isoformat(), "sl_threshold": sl_threshold,
            "short_abandon": short_abandon, "by_channel": by_channel, "channel": channel,
            "rows": report.rows, "totals": report.totals}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    # Spreadsheet formula injection: a cell must not start a formula (phone numbers like +82... stay).
    if text[:1] in ("=", "@", "\t", "\r") or (text[:1] in ("+", "-") and not text[1:2].isdigit()):
        return "'" + text
    return text


def _csv_line(values: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow([_cell(v) for v in values])
    return buf.getvalue()


@router.get("/api/reports/intervals")
def intervals(
    by: Literal["queue", "agent"] = Query(default="queue"),
    interval: Literal["15", "30", "60", "day"] = Query(default="60"),
    since: Instant | None = Query(default=None, description="start; local time in tz if no offset; "
                                                             "default: today's local midnight"),
    until: Instant | None = Query(default=None, description="end (exclusive); default: since + 1 day"),
    tz: str = Query(default="UTC", max_length=64),
    sl_threshold: float = Query(default=20.0, ge=0, le=3600),
    short_abandon: float = Query(default=5.0, ge=0, le=600),
    by_channel: bool = Query(default=False, description="split every row by channel (voice, chat)"),
    channel: Literal["voice", "chat"] | None = Query(default=None, description="only this channel's contacts"),
    format: Literal["json", "csv"] = Query(default="json"),
    principal: Principal = Depends(supervisors),
    db: Session = Depends(get_db),
) -> Any:
    """Interval report of the caller's tenant (metric definitions: ``callcenter.reports``)."""
    zone = _zone(tz)
    start = _parse_local(since, zone)
    if start is None:
        local_now = datetime.now(zone)
        start = local_now.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc)
    end = _parse_local(until, zone) or start + timedelta(days=1)
    if start >= end:
        raise invalid("since must be before until")
    if end - start > MAX_RANGE:
        raise invalid(f"the range may be at most {MAX_RANGE.days} days")
    body = build_report(db, principal.tenant_id, by=by, interval=interval, since=start, until=end, tz=zone,
                        sl_threshold=sl_threshold, short_abandon=short_abandon, by_channel=by_channel,
                        channel=channel)
    if format == "json":
        return body
    keys = ["queue"] if by == "queue" else ["agent_id", "agent"]
    if by_channel:
        keys.append("channel")
    columns = ["interval_start", "interval_end", *keys, *reports.METRICS]
    lines = [_csv_line(columns)] + [_csv_line([row.get(c) for c in columns]) for row in body["rows"]]
    return StreamingResponse(iter(lines), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="report-{by}-{interval}.csv"'})


SEARCH_COLUMNS = ["id", "received_at", "answered_at", "ended_at", "direction", "caller", "dialed", "queue",
                  "agent_id", "agent", "disposition", "end_cause", "hangup_side", "duration", "wrapup_at"]


def _search_stmt(tenant_id: int, *, number: str | None, agent_id: int | None, queue: str | None,
                 disposition: str | None, since: datetime | None, until: datetime | None) -> Any:
    stmt = select(CallRecord, User.username).outerjoin(Agent, Agent.id == CallRecord.agent_id) \
        .outerjoin(User, User.id == Agent.user_id).where(CallRecord.tenant_id == tenant_id)
    if number:
        pattern = "%" + number.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(CallRecord.caller.like(pattern, escape="\\"),
                              CallRecord.dialed.like(pattern, escape="\\")))
    if agent_id is not None:
        stmt = stmt.where(CallRecord.agent_id == agent_id)
    if queue:
        stmt = stmt.where(CallRecord.queue == queue)
    if disposition:
        stmt = stmt.where(CallRecord.disposition == disposition)
    if since is not None:
        stmt = stmt.where(CallRecord.received_at >= since)
    if until is not None:
        stmt = stmt.where(CallRecord.received_at < until)
    return stmt.order_by(CallRecord.received_at.desc(), CallRecord.id.desc())


def _search_row(record: CallRecord, username: str | None) -> dict[str, Any]:
    return {"id": record.id, "received_at": record.received_at, "answered_at": record.answered_at,
            "ended_at": record.ended_at, "direction": record.direction, "caller": record.caller,
            "dialed": record.dialed, "queue": record.queue, "agent_id": record.agent_id, "agent": username,
            "disposition": record.disposition, "end_cause": record.end_cause, "hangup_side": record.hangup_side,
            "duration": record.duration, "wrapup_at": record.wrapup_at}


@router.get("/api/calls/search")
def search_calls(
    number: str | None = Query(default=None, max_length=64, description="part of the caller or dialed number"),
    agent: str | None = Query(default=None, max_length=100, description="agent username (or agent id)"),
    queue: str | None = Query(default=None, max_length=64),
    disposition: str | None = Query(default=None, max_length=64),
    since: Instant | None = Query(default=None, description="received_at >= since (UTC if no offset)"),
    until: Instant | None = Query(default=None, description="received_at < until (UTC if no offset)"),
    limit: int | None = Query(default=None, ge=1, le=1_000_000,
                              description=f"JSON: default {SEARCH_LIMIT}, at most {SEARCH_MAX}; CSV: default all"),
    offset: Offset = 0,
    format: Literal["json", "csv"] = Query(default="json"),
    principal: Principal = Depends(searchers),
    db: Session = Depends(get_db),
    ctx: AppContext = Depends(get_ctx),
) -> Any:
    """The tenant's call records matching every given filter, newest first."""
    since, until = _utc(since), _utc(until)
    if since and until and since >= until:
        raise invalid("since must be before until")
    agent_id: int | None = None
    if agent:
        agent_id = db.scalar(select(Agent.id).join(User, User.id == Agent.user_id)
                             .where(Agent.tenant_id == principal.tenant_id, User.username == agent))
        given_id = as_db_id(agent)
        if agent_id is None and given_id is not None:
            agent_id = db.scalar(select(Agent.id).where(Agent.tenant_id == principal.tenant_id,
                                                        Agent.id == given_id))
        if agent_id is None:
            agent_id = -1  # no such agent in this tenant: nothing matches
    stmt = _search_stmt(principal.tenant_id, number=number, agent_id=agent_id, queue=queue, disposition=disposition,
                        since=since, until=until)
    if format == "json":
        if limit is not None and limit > SEARCH_MAX:
            raise invalid(f"limit may be at most {SEARCH_MAX} (use format=csv for more)")
        rows = db.execute(stmt.offset(offset).limit(limit or SEARCH_LIMIT)).all()
        return [_search_row(r, u) for r, u in rows]

    if until is None:  # a fixed end, so calls arriving during the export do not shift the pages
        stmt = stmt.where(CallRecord.received_at < datetime.now(timezone.utc))

    def generate() -> Iterator[str]:
        yield _csv_line(SEARCH_COLUMNS)
        done, position = 0, offset
        while limit is None or done < limit:
            size = CSV_CHUNK if limit is None else min(CSV_CHUNK, limit - done)
            with ctx.sessions() as session:  # one short session per chunk: the request's is closed by now
                rows = session.execute(stmt.offset(position).limit(size)).all()
                lines = [_csv_line([_search_row(r, u)[c] for c in SEARCH_COLUMNS]) for r, u in rows]
            yield "".join(lines)
            done, position = done + len(rows), position + len(rows)
            if len(rows) < size:
                return

    return StreamingResponse(generate(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="calls.csv"'})
