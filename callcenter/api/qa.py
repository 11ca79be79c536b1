"""Quality assurance over HTTP: forms, recorded calls and agents' chats to review (each with the
customer's satisfaction rating), evaluations, calibration, disputes, reports, and the QA page (``/qa``).

QA, supervisors and admins of a tenant work on all its calls; agents see only the evaluations
of their own calls (``/api/qa/my-evaluations``) and dispute them. Other tenants' rows, and
other agents' evaluations for an agent, are 404 (never 403). Every change is audited.
Thin wrappers around ``callcenter.qa``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

import recordings
from callcenter import csat, desk, qa
from callcenter.api.audit import record_audit
from callcenter.api.bounds import EARLIEST, LATEST, CallId, DbId, Instant, Offset, as_db_id, check_instant
from callcenter.api.deps import get_db, public, require_roles
from callcenter.api.errors import ApiError, invalid, not_found
from callcenter.chat_search import search_conversations
from callcenter.models import (Agent, CallRecord, ChatAttachment, ChatConversation, ChatMessage, QaDispute,
                               QaEvaluation, QaForm, Recording, Role, Transcript, User, utcnow)
from callcenter.security import Principal
from callcenter.transcripts import search_call_ids

router = APIRouter(tags=["qa"])
reviewers = require_roles("qa", "supervisor", "admin")
agents_only = require_roles("agent")
everyone = require_roles("qa", "supervisor", "admin", "agent")

WEB = Path(recordings.__file__).parent / "web"
ASSETS = frozenset({"qa.js", "qa.css"})
MAX_PAGE = 200
DISPUTE_STATUSES = ("open", "accepted", "rejected")
ANSWER_MAX = 1_000_000
"""Largest answer to a scale question (forms' scales are far smaller)."""
MAX_CHAT_MATCHES = 1000
"""Chats a phrase search (``q``) may find (the newest)."""
MAX_TRANSCRIPT = 5000
"""Messages of a chat the review shows (the first ones)."""


# -- helpers -------------------------------------------------------------------------------


def _qa_error(exc: qa.QaError) -> ApiError:
    return ApiError(exc.status, exc.error_id, exc.message)


def _utc(value: datetime | None) -> datetime | None:
    """A query time without offset means UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _own_agent_id(db: Session, principal: Principal) -> int:
    agent = desk.agent_for_user(db, principal.user_id)
    if agent is None or agent.tenant_id != principal.tenant_id:
        raise ApiError(403, "no-agent-profile", "this user has no agent profile")
    return agent.id


def _agent_names(db: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(db.execute(select(Agent.id, User.username).join(User, User.id == Agent.user_id)
                           .where(Agent.id.in_(wanted))).all())


def _user_names(db: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(db.execute(select(User.id, User.username).where(User.id.in_(wanted))).all())


def _ref(key: int | None, names: dict[int, str]) -> dict[str, Any] | None:
    return {"id": key, "username": names.get(key)} if key is not None else None


def form_out(row: QaForm) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "version": row.version, "active": row.active,
            "created_at": row.created_at, "definition": row.definition}


def dispute_out(d: QaDispute, users: dict[int, str]) -> dict[str, Any]:
    return {"id": d.id, "evaluation_id": d.evaluation_id, "agent_id": d.agent_id, "comment": d.comment,
            "status": d.status, "resolution": d.resolution, "resolved_by": _ref(d.resolved_by, users),
            "created_at": d.created_at, "resolved_at": d.resolved_at}


def evaluations_out(db: Session, rows: list[QaEvaluation]) -> list[dict[str, Any]]:
    """Evaluations as the API shows them, with their form, agent, evaluator and disputes."""
    if not rows:
        return []
    forms = {f.id: f for f in db.scalars(select(QaForm).where(QaForm.id.in_({e.form_id for e in rows})))}
    disputes: dict[int, list[QaDispute]] = {}
    for d in db.scalars(select(QaDispute).where(QaDispute.evaluation_id.in_([e.id for e in rows]))
                        .order_by(QaDispute.created_at, QaDispute.id)):
        disputes.setdefault(d.evaluation_id, []).append(d)
    agents = _agent_names(db, {e.agent_id for e in rows})
    users = _user_names(db, {e.evaluator_id for e in rows} |
                        {d.resolved_by for ds in disputes.values() for d in ds})
    out = []
    for e in rows:
        form = forms.get(e.form_id)
        out.append({
            "id": e.id, "call_id": e.call_id, "form_id": e.form_id,
            "form": {"id": form.id, "name": form.name, "version": form.version} if form else None,
            "kind": e.kind, "agent": _ref(e.agent_id, agents), "evaluator": _ref(e.evaluator_id, users),
            "answers": e.answers, "score": e.score, "section_scores": e.section_scores,
            "auto_failed": e.auto_failed, "comment": e.comment, "created_at": e.created_at,
            "disputes": [dispute_out(d, users) for d in disputes.get(e.id, [])],
        })
    return out


def _evaluation_for(db: Session, principal: Principal, evaluation_id: int) -> QaEvaluation:
    """The evaluation if the caller may see it: reviewers any of the tenant, agents their own."""
    row = db.get(QaEvaluation, evaluation_id)
    if row is None or row.tenant_id != principal.tenant_id:
        raise not_found("evaluation")
    if principal.role == Role.AGENT.value:
        agent = desk.agent_for_user(db, principal.user_id)
        if agent is None or row.agent_id != agent.id:
            raise not_found("evaluation")
    return row


def _call_of(db: Session, principal: Principal, call_id: str) -> CallRecord:
    record = db.get(CallRecord, call_id)
    if record is None or record.tenant_id != principal.tenant_id:
        raise not_found("call")
    return record


def _call_summary(record: CallRecord, agents: dict[int, str]) -> dict[str, Any]:
    return {"call_id": record.id, "channel": record.channel, "direction": record.direction, "caller": record.caller,
            "dialed": record.dialed, "received_at": record.received_at, "answered_at": record.answered_at,
            "ended_at": record.ended_at, "agent": _ref(record.agent_id, agents), "queue": record.queue,
            "disposition": record.disposition}


def _attachment_out(row: ChatAttachment | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"id": row.id, "filename": row.filename, "content_type": row.content_type, "size": row.size,
            "url": f"/api/chat/attachments/{row.id}"}


def chat_transcript(db: Session, tenant_id: int, conversation_id: str) -> dict[str, Any] | None:
    """A chat as the review shows it instead of a recording: the visitor and its messages (the first
    ``MAX_TRANSCRIPT``), oldest first, with the agents' names and attachments."""
    conversation = db.get(ChatConversation, conversation_id)
    if conversation is None or conversation.tenant_id != tenant_id:
        return None
    messages = list(db.scalars(select(ChatMessage).where(ChatMessage.conversation_id == conversation_id)
                               .order_by(ChatMessage.seq).limit(MAX_TRANSCRIPT)))
    agents = _agent_names(db, {m.agent_id for m in messages})
    files = {a.id: a for a in db.scalars(select(ChatAttachment).where(
        ChatAttachment.conversation_id == conversation_id, ChatAttachment.tenant_id == tenant_id))}
    return {
        "conversation": {"name": conversation.name, "phone": conversation.phone, "question": conversation.question,
                         "page_url": conversation.page_url, "locale": conversation.locale,
                         "created_at": conversation.created_at, "answered_at": conversation.answered_at,
                         "ended_at": conversation.ended_at, "end_cause": conversation.end_cause},
        "messages": [{"seq": m.seq, "sender": m.sender, "agent": agents.get(m.agent_id) if m.agent_id else None,
                      "text": m.text, "attachment": _attachment_out(files.get(m.attachment_id or "")),
                      "created_at": m.created_at} for m in messages],
        "more": len(messages) == MAX_TRANSCRIPT,
    }


# -- the page ------------------------------------------------------------------------------


@router.get("/qa", dependencies=[Depends(public)], include_in_schema=False)
def qa_page() -> FileResponse:
    """The QA page; it logs in through the API (the page itself holds no data)."""
    return FileResponse(WEB / "qa.html", headers={"Cache-Control": "no-cache"})


@router.get("/qa/static/{name}", dependencies=[Depends(public)], include_in_schema=False)
def qa_asset(name: str) -> FileResponse:
    if name not in ASSETS or not (WEB / name).is_file():
        raise not_found("file")
    return FileResponse(WEB / name, headers={"Cache-Control": "no-cache"})


# -- forms ---------------------------------------------------------------------------------


@router.get("/api/qa/forms")
def list_forms(include_inactive: bool = False, principal: Principal = Depends(reviewers),
               db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    """The tenant's forms (active ones; ``include_inactive`` adds the older versions). A tenant
    that never had a form gets the standard one."""
    qa.ensure_default_form(db, principal.tenant_id)
    db.commit()
    stmt = select(QaForm).where(QaForm.tenant_id == principal.tenant_id)
    if not include_inactive:
        stmt = stmt.where(QaForm.active.is_(True))
    return [form_out(f) for f in db.scalars(stmt.order_by(QaForm.name, QaForm.version.desc()))]


@router.post("/api/qa/forms", status_code=201)
def create_form(definition: dict[str, Any] = Body(...), principal: Principal = Depends(reviewers),
                db: Session = Depends(get_db)) -> dict[str, Any]:
    """A new form; a name the tenant already has makes a new version of that form."""
    try:
        row = qa.save_form(db, principal.tenant_id, definition)
    except qa.QaError as exc:
        raise _qa_error(exc) from exc
    record_audit(db, principal, "qa_form.create", f"qa_form:{row.id}", {"name": row.name, "version": row.version})
    db.commit()
    return form_out(row)


@router.get("/api/qa/forms/{form_id}")
def get_form(form_id: DbId, principal: Principal = Depends(reviewers), db: Session = Depends(get_db)) -> dict[str, Any]:
    row = db.get(QaForm, form_id)
    if row is None or row.tenant_id != principal.tenant_id:
        raise not_found("form")
    return form_out(row)


@router.put("/api/qa/forms/{form_id}")
def update_form(form_id: DbId, definition: dict[str, Any] = Body(...), principal: Principal = Depends(reviewers),
                db: Session = Depends(get_db)) -> dict[str, Any]:
    """Edit a form: the answer is its new version (a new id); evaluations keep the old one."""
    row = db.get(QaForm, form_id)
    if row is None or row.tenant_id != principal.tenant_id:
        raise not_found("form")
    try:
        new = qa.save_form(db, principal.tenant_id, definition, replaces=row)
    except qa.QaError as exc:
        raise _qa_error(exc) from exc
    record_audit(db, principal, "qa_form.update", f"qa_form:{new.id}",
                 {"name": new.name, "version": new.version, "previous_id": row.id})
    db.commit()
    return form_out(new)


@router.delete("/api/qa/forms/{form_id}", status_code=204)
def deactivate_form(form_id: DbId, principal: Principal = Depends(reviewers),
                    db: Session = Depends(get_db)) -> Response:
    """Stop using a form for new evaluations (its evaluations stay)."""
    row = db.get(QaForm, form_id)
    if row is None or row.tenant_id != principal.tenant_id:
        raise not_found("form")
    row.active = False
    record_audit(db, principal, "qa_form.deactivate", f"qa_form:{row.id}", {"name": row.name, "version": row.version})
    db.commit()
    return Response(status_code=204)


# -- calls to review -----------------------------------------------------------------------


@router.get("/api/qa/options")
def options(principal: Principal = Depends(everyone), db: Session = Depends(get_db)) -> dict[str, Any]:
    """What the page's filters offer: the tenant's agents and queues (agents get only themselves)."""
    me = desk.agent_for_user(db, principal.user_id)
    if principal.role == Role.AGENT.value:
        return {"agents": [], "queues": [], "me": {"role": principal.role, "agent_id": me.id if me else None}}
    agents = db.execute(select(Agent.id, User.username).join(User, User.id == Agent.user_id)
                        .where(Agent.tenant_id == principal.tenant_id).order_by(User.username)).all()
    queues = db.scalars(select(CallRecord.queue).where(CallRecord.tenant_id == principal.tenant_id,
                                                       CallRecord.queue.is_not(None)).distinct()).all()
    return {"agents": [{"id": a, "username": u} for a, u in agents], "queues": sorted(q for q in queues if q),
            "me": {"role": principal.role, "agent_id": me.id if me else None}}


def _latest(kind: str) -> Any:
    """Subquery: per call, the newest evaluation of ``kind`` (its id)."""
    return (select(QaEvaluation.call_id.label("call_id"), func.max(QaEvaluation.id).label("eid"))
            .where(QaEvaluation.kind == kind).group_by(QaEvaluation.call_id).subquery())


def _auto_avg() -> Any:
    return (select(QaEvaluation.call_id.label("call_id"), func.avg(QaEvaluation.score).label("score"))
            .where(QaEvaluation.kind == "auto").group_by(QaEvaluation.call_id).subquery())


@router.get("/api/qa/calls")
def list_calls(
    agent: str | None = Query(default=None, max_length=100, description="agent id or username"),
    queue: str | None = Query(default=None, max_length=64),
    since: Instant | None = Query(default=None, description="received_at >= since (UTC if no offset)"),
    until: Instant | None = Query(default=None, description="received_at < until (UTC if no offset)"),
    min_score: float | None = Query(default=None, ge=0, le=100),
    max_score: float | None = Query(default=None, ge=0, le=100),
    q: str | None = Query(default=None, max_length=200,
                          description="words said in the call or written in the chat (transcript search)"),
    channel: Literal["voice", "chat"] | None = Query(default=None, description="calls or chats only"),
    limit: int = Query(default=50, ge=1, le=MAX_PAGE),
    offset: Offset = 0,
    principal: Principal = Depends(reviewers),
    db: Session = Depends(get_db),
) -> dict[str, Any]:
    """The tenant's recorded calls and the chats an agent took, newest first, with their facts,
    recording and transcript status (chats: none), the customer's satisfaction rating (``csat``),
    automatic score (mean over the active forms' automatic evaluations) and newest manual score.
    The score filters apply to the manual score, or the automatic one for contacts nobody reviewed."""
    since, until = _utc(since), _utc(until)
    if since and until and since >= until:
        raise invalid("since must be before until")
    if min_score is not None and max_score is not None and min_score > max_score:
        raise invalid("min_score must not be above max_score")
    tenant = principal.tenant_id
    newest_rec = (select(Recording.call_id.label("call_id"), func.max(Recording.started_at).label("started"))
                  .where(Recording.tenant_id == tenant).group_by(Recording.call_id).subquery())
    rec = aliased(Recording)
    manual_latest = _latest("manual")
    manual = aliased(QaEvaluation)
    auto = _auto_avg()
    effective = func.coalesce(manual.score, auto.c.score)
    stmt: Select[Any] = (
        select(CallRecord, rec, manual.score, auto.c.score)
        .outerjoin(newest_rec, newest_rec.c.call_id == CallRecord.id)
        .outerjoin(rec, and_(rec.call_id == CallRecord.id, rec.started_at == newest_rec.c.started,
                             rec.tenant_id == tenant))
        .outerjoin(manual_latest, manual_latest.c.call_id == CallRecord.id)
        .outerjoin(manual, manual.id == manual_latest.c.eid)
        .outerjoin(auto, auto.c.call_id == CallRecord.id)
        .where(CallRecord.tenant_id == tenant,
               or_(rec.id.is_not(None), and_(CallRecord.channel == "chat", CallRecord.agent_id.is_not(None))))
    )
    conditions: list[ColumnElement[bool]] = []
    if channel:
        conditions.append(CallRecord.channel == channel)
    if agent:
        agent_pk = as_db_id(agent)
        if agent_pk is not None:
            conditions.append(CallRecord.agent_id == agent_pk)
        else:
            agent_id = db.scalar(select(Agent.id).join(User, User.id == Agent.user_id)
                                 .where(Agent.tenant_id == tenant, User.username == agent))
            conditions.append(CallRecord.agent_id == (agent_id if agent_id is not None else -1))
    if queue:
        conditions.append(CallRecord.queue == queue)
    if since is not None:
        conditions.append(CallRecord.received_at >= since)
    if until is not None:
        conditions.append(CallRecord.received_at < until)
    if min_score is not None:
        conditions.append(effective >= min_score)
    if max_score is not None:
        conditions.append(effective <= max_score)
    if q and q.strip():
        ids = [*search_call_ids(db, tenant, q), *(c.id for c in search_conversations(db, tenant, q, MAX_CHAT_MATCHES))]
        conditions.append(CallRecord.id.in_(ids) if ids else CallRecord.id.is_(None))
    if conditions:
        stmt = stmt.where(*conditions)
    total = db.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.execute(stmt.order_by(CallRecord.received_at.desc(), CallRecord.id.desc())
                      .limit(limit).offset(offset)).all()
    records = [r[0] for r in rows]
    facts = qa.facts_of_calls(db, records)
    transcripts = {t.recording_id: t for t in db.scalars(select(Transcript).where(
        Transcript.recording_id.in_([r[1].id for r in rows if r[1] is not None])))} if rows else {}
    ratings = csat.ratings_of(db, tenant, (r.id for r in records))
    counts = dict(db.execute(select(QaEvaluation.call_id, func.count()).where(
        QaEvaluation.call_id.in_([r.id for r in records]), QaEvaluation.tenant_id == tenant,
        QaEvaluation.kind == "manual").group_by(QaEvaluation.call_id)).all()) if rows else {}
    agents = _agent_names(db, {r.agent_id for r in records})
    items = []
    for record, recording, manual_score, auto_score in rows:
        transcript = transcripts.get(recording.id) if recording is not None else None
        items.append({
            **_call_summary(record, agents),
            "facts": facts[record.id],
            "recording": None if recording is None else {
                "id": recording.id, "status": recording.status, "duration": recording.duration,
                "format": recording.format},
            "transcript": {"status": transcript.status, "progress": transcript.progress} if transcript else None,
            "csat": csat.rating_out(ratings.get(record.id)),
            "auto_score": float(auto_score) if auto_score is not None else None,
            "manual_score": manual_score,
            "manual_evaluations": counts.get(record.id, 0),
        })
    return {"total": total, "limit": limit, "offset": offset, "items": items}


@router.get("/api/qa/calls/{call_id}")
def get_call(call_id: CallId, principal: Principal = Depends(reviewers),
             db: Session = Depends(get_db)) -> dict[str, Any]:
    """Everything the review page shows: the call's facts, its recording and transcript status (a
    chat: its transcript, ``chat``), the customer's satisfaction rating (``csat``), evaluations
    (newest first) and the forms (the active ones and those the evaluations used)."""
    record = _call_of(db, principal, call_id)
    qa.ensure_default_form(db, principal.tenant_id)
    db.commit()
    agents = _agent_names(db, {record.agent_id})
    recording = db.scalars(select(Recording).where(Recording.call_id == call_id,
                                                   Recording.tenant_id == principal.tenant_id)
                           .order_by(Recording.started_at.desc())).first()
    transcript = db.get(Transcript, recording.id) if recording is not None else None
    evaluations = list(db.scalars(select(QaEvaluation).where(QaEvaluation.tenant_id == principal.tenant_id,
                                                             QaEvaluation.call_id == call_id)
                                  .order_by(QaEvaluation.created_at.desc(), QaEvaluation.id.desc())))
    used = {e.form_id for e in evaluations}
    forms = db.scalars(select(QaForm).where(QaForm.tenant_id == principal.tenant_id,
                                            or_(QaForm.active.is_(True), QaForm.id.in_(used)))
                       .order_by(QaForm.name, QaForm.version.desc())).all()
    facts = qa.facts_of_calls(db, [record])[record.id]
    return {
        "call": {**_call_summary(record, agents), "facts": facts, "wrapup_notes": record.wrapup_notes,
                 "end_cause": record.end_cause, "hangup_side": record.hangup_side},
        "recording": None if recording is None else {
            "id": recording.id, "call_id": recording.call_id, "status": recording.status,
            "format": recording.format, "duration": recording.duration, "started_at": recording.started_at,
            "ended_at": recording.ended_at, "agent_answered_s": recording.agent_answered_s,
            "pauses": recording.pauses, "legal_hold": recording.legal_hold, "size": recording.size},
        "transcript": None if transcript is None else {"status": transcript.status, "progress": transcript.progress},
        "chat": chat_transcript(db, principal.tenant_id, record.id) if record.channel == "chat" else None,
        "csat": csat.rating_out(csat.ratings_of(db, principal.tenant_id, [record.id]).get(record.id)),
        "evaluations": evaluations_out(db, evaluations),
        "forms": [form_out(f) for f in forms],
    }


# -- evaluations ---------------------------------------------------------------------------


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: (Annotated[str, Field(max_length=64)] | Annotated[int, Field(ge=-ANSWER_MAX, le=ANSWER_MAX)]
            | Annotated[float, Field(ge=-ANSWER_MAX, le=ANSWER_MAX)] | None) = None
    comment: str = Field(default="", max_length=qa.MAX_COMMENT)


class EvaluationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    form_id: DbId
    answers: dict[str, AnswerIn] = Field(max_length=500)
    comment: str = Field(default="", max_length=qa.MAX_COMMENT)


@router.post("/api/qa/calls/{call_id}/evaluations", status_code=201)
def submit_evaluation(call_id: CallId, body: EvaluationIn, principal: Principal = Depends(reviewers),
                      db: Session = Depends(get_db)) -> dict[str, Any]:
    """A person's evaluation of the call. Changing an automatic answer needs a comment on it
    (422 ``override-needs-comment``); every question needs an answer (422 ``answers-missing``)."""
    _call_of(db, principal, call_id)
    try:
        row = qa.submit_evaluation(db, principal.tenant_id, principal.user_id, call_id, body.form_id,
                                   {k: v.model_dump() for k, v in body.answers.items()}, body.comment)
    except LookupError as exc:
        raise not_found("form") from exc
    except qa.QaError as exc:
        raise _qa_error(exc) from exc
    overridden = sorted(k for k, a in row.answers.items() if a.get("overridden"))
    record_audit(db, principal, "qa_evaluation.create", f"call:{call_id}",
                 {"evaluation_id": row.id, "form_id": row.form_id, "score": row.score, "overridden": overridden})
    db.commit()
    return evaluations_out(db, [row])[0]


@router.get("/api/qa/evaluations/{evaluation_id}")
def get_evaluation(evaluation_id: DbId, principal: Principal = Depends(everyone),
                   db: Session = Depends(get_db)) -> dict[str, Any]:
    """One evaluation with its form definition; an agent sees only the evaluations of their calls."""
    row = _evaluation_for(db, principal, evaluation_id)
    out = evaluations_out(db, [row])[0]
    form = db.get(QaForm, row.form_id)
    out["form_definition"] = form.definition if form is not None else None
    return out


@router.get("/api/qa/calls/{call_id}/calibration")
def get_calibration(call_id: CallId, principal: Principal = Depends(reviewers),
                    db: Session = Depends(get_db)) -> dict[str, Any]:
    """How the people who evaluated the call agree: per form version, the spread of their scores
    (min, max, mean, population standard deviation) and per question the answers and agreement."""
    _call_of(db, principal, call_id)
    return qa.calibration(db, principal.tenant_id, call_id)


@router.get("/api/qa/my-evaluations")
def my_evaluations(limit: int = Query(default=100, ge=1, le=500), principal: Principal = Depends(agents_only),
                   db: Session = Depends(get_db)) -> dict[str, Any]:
    """The evaluations of the calling agent's calls (by people and automatic), newest first, with
    their disputes, the calls' facts and the forms they used."""
    agent_id = _own_agent_id(db, principal)
    rows = list(db.scalars(select(QaEvaluation).where(QaEvaluation.tenant_id == principal.tenant_id,
                                                      QaEvaluation.agent_id == agent_id)
                           .order_by(QaEvaluation.created_at.desc(), QaEvaluation.id.desc()).limit(limit)))
    out = evaluations_out(db, rows)
    calls = {c.id: c for c in db.scalars(select(CallRecord).where(CallRecord.id.in_({e.call_id for e in rows})))}
    agents = _agent_names(db, {agent_id})
    ratings = csat.ratings_of(db, principal.tenant_id, calls)
    for item in out:
        call = calls.get(item["call_id"])
        item["call"] = {**_call_summary(call, agents), "csat": csat.rating_out(ratings.get(call.id))} \
            if call is not None else None
    forms = db.scalars(select(QaForm).where(QaForm.id.in_({e.form_id for e in rows}))).all() if rows else []
    return {"agent_id": agent_id, "evaluations": out, "forms": [form_out(f) for f in forms]}


# -- disputes ------------------------------------------------------------------------------


class DisputeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    comment: str = Field(min_length=1, max_length=qa.MAX_COMMENT)


class ResolutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    status: str = Field(pattern="^(accepted|rejected)$")
    resolution: str = Field(min_length=1, max_length=qa.MAX_COMMENT)


def _disputes_out(db: Session, rows: list[QaDispute]) -> list[dict[str, Any]]:
    evaluations = {e.id: e for e in db.scalars(select(QaEvaluation).where(
        QaEvaluation.id.in_({d.evaluation_id for d in rows})))} if rows else {}
    forms = {f.id: f for f in db.scalars(select(QaForm).where(
        QaForm.id.in_({e.form_id for e in evaluations.values()})))} if evaluations else {}
    calls = {c.id: c for c in db.scalars(select(CallRecord).where(
        CallRecord.id.in_({e.call_id for e in evaluations.values()})))} if evaluations else {}
    agents = _agent_names(db, {d.agent_id for d in rows})
    users = _user_names(db, {d.resolved_by for d in rows} | {e.evaluator_id for e in evaluations.values()})
    out = []
    for d in rows:
        e = evaluations.get(d.evaluation_id)
        form = forms.get(e.form_id) if e else None
        call = calls.get(e.call_id) if e else None
        out.append({**dispute_out(d, users), "agent": _ref(d.agent_id, agents),
                    "call_id": e.call_id if e else None,
                    "call": {"caller": call.caller, "received_at": call.received_at, "queue": call.queue}
                    if call else None,
                    "evaluation": None if e is None else {
                        "id": e.id, "kind": e.kind, "score": e.score, "auto_failed": e.auto_failed,
                        "evaluator": _ref(e.evaluator_id, users),
                        "form": {"id": form.id, "name": form.name, "version": form.version} if form else None}})
    return out


@router.post("/api/qa/evaluations/{evaluation_id}/disputes", status_code=201)
def open_dispute(evaluation_id: DbId, body: DisputeIn, principal: Principal = Depends(agents_only),
                 db: Session = Depends(get_db)) -> dict[str, Any]:
    """An agent objects to an evaluation of one of their calls (one open dispute at a time)."""
    row = _evaluation_for(db, principal, evaluation_id)
    already = db.scalar(select(QaDispute.id).where(QaDispute.evaluation_id == row.id, QaDispute.status == "open"))
    if already is not None:
        raise ApiError(409, "dispute-open", "this evaluation already has an open dispute")
    dispute = QaDispute(tenant_id=principal.tenant_id, evaluation_id=row.id, agent_id=row.agent_id,
                        comment=body.comment, status="open", resolution="", created_at=utcnow())
    db.add(dispute)
    db.flush()
    record_audit(db, principal, "qa_dispute.create", f"qa_evaluation:{row.id}", {"dispute_id": dispute.id})
    db.commit()
    return _disputes_out(db, [dispute])[0]


@router.get("/api/qa/disputes")
def list_disputes(status: str | None = Query(default=None, pattern="^(open|accepted|rejected)$"),
                  limit: int = Query(default=200, ge=1, le=1000), principal: Principal = Depends(everyone),
                  db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    """Disputes of the tenant, oldest open first (agents: their own)."""
    stmt = select(QaDispute).where(QaDispute.tenant_id == principal.tenant_id)
    if principal.role == Role.AGENT.value:
        stmt = stmt.where(QaDispute.agent_id == _own_agent_id(db, principal))
    if status:
        stmt = stmt.where(QaDispute.status == status)
    rows = list(db.scalars(stmt.order_by(QaDispute.created_at, QaDispute.id).limit(limit)))
    return _disputes_out(db, rows)


@router.put("/api/qa/disputes/{dispute_id}")
def resolve_dispute(dispute_id: DbId, body: ResolutionIn, principal: Principal = Depends(reviewers),
                    db: Session = Depends(get_db)) -> dict[str, Any]:
    """Accept or reject an open dispute, saying why. Accepting changes no score by itself:
    a corrected evaluation is a new evaluation of the call."""
    dispute = db.get(QaDispute, dispute_id)
    if dispute is None or dispute.tenant_id != principal.tenant_id:
        raise not_found("dispute")
    if dispute.status != "open":
        raise ApiError(409, "dispute-resolved", f"this dispute was already {dispute.status}")
    dispute.status = body.status
    dispute.resolution = body.resolution
    dispute.resolved_by = principal.user_id
    dispute.resolved_at = utcnow()
    record_audit(db, principal, f"qa_dispute.{body.status}", f"qa_dispute:{dispute.id}",
                 {"evaluation_id": dispute.evaluation_id})
    db.commit()
    return _disputes_out(db, [dispute])[0]


# -- reports -------------------------------------------------------------------------------

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _bound(value: str | None, name: str) -> datetime | None:
    """``YYYY-MM-DD`` (midnight UTC) or an ISO time; None when absent."""
    if not value:
        return None
    try:
        if _DAY.match(value):
            parsed = datetime.combine(date.fromisoformat(value), time(), tzinfo=timezone.utc)
        else:
            parsed = datetime.fromisoformat(value)
        return _utc(check_instant(parsed))
    except ValueError as exc:
        raise invalid(f"{name}: a date (YYYY-MM-DD) or a time (ISO 8601) from {EARLIEST.year} to {LATEST.year}, "
                      f"not {value!r}") from exc


@router.get("/api/qa/reports")
def get_report(by: str = Query(default="agent", pattern="^(agent|queue|question)$"),
               interval: str = Query(default="day", pattern="^(day|week)$"),
               since: str | None = Query(default=None, max_length=40,
                                         description="calls received from (date or time, UTC)"),
               until: str | None = Query(default=None, max_length=40,
                                         description="calls received before (date or time, UTC)"),
               principal: Principal = Depends(reviewers), db: Session = Depends(get_db)) -> dict[str, Any]:
    """Average score per agent, queue or question, per day or week (Monday) of the call. Each
    call counts once per form: its newest evaluation by a person, else its automatic one;
    ``manual`` and ``auto`` say how many of each every figure holds."""
    start, end = _bound(since, "since"), _bound(until, "until")
    if start and end and start >= end:
        raise invalid("since must be before until")
    try:
        return qa.report(db, principal.tenant_id, by, interval, start, end)
    except qa.QaError as exc:
        raise _qa_error(exc) from exc
