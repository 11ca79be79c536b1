"""Quality assurance: evaluation forms, automatic and manual evaluations, calibration, reports.

Plain functions on a SQLAlchemy session, used by the HTTP API (``api/qa.py``), by the
transcription job (``auto_evaluate`` once a transcript is done) and by the chat service
(``evaluate_chat`` once a chat has ended: the text rules run over its messages). They flush but never commit:
the caller owns the transaction. Errors: ``LookupError`` (no such call, form or evaluation
*in this tenant*: answer 404) and ``QaError`` (bad input: answer with its ``status`` and
``error_id``, 422 unless said otherwise).

The scoring and the automatic rules are pure functions in ``recordings.qa_forms`` and
``recordings.qa_rules``; this module feeds them rows and stores what they answer.
"""

from __future__ import annotations

import dataclasses
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import (Agent, CallEvent, CallRecord, ChatConversation, ChatMessage, QaEvaluation, QaForm,
                               Recording, Transcript, User, utcnow)
from recordings import qa_forms, qa_rules
from recordings.talk import TalkStats

MAX_COMMENT = 4000
NA = "na"
CHAT_SPEAKERS: dict[str, qa_forms.Speaker] = {"agent": "agent", "visitor": "caller"}
"""Whose words a chat message's sender writes, for the text rules (the bot's and system notices: nobody's)."""
_IDEOGRAPH = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CHAT_TOKEN = re.compile(f"[{_IDEOGRAPH}]|[^\\W_{_IDEOGRAPH}]+")
"""One Chinese character (or kana), or a run of other letters and digits: the text rules match a
phrase against consecutive tokens, so 您好 is found in 您好，请问 and "thank you" in "Thank you!"."""


class QaError(ValueError):
    """Bad input, with the HTTP status and stable error id the API answers with."""

    def __init__(self, message: str, error_id: str = "invalid-request", status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.error_id = error_id
        self.status = status


# -- forms ---------------------------------------------------------------------------------


def parse(definition: Mapping[str, Any]) -> qa_forms.Form:
    """The parsed form, or QaError naming the faulty path."""
    try:
        return qa_forms.parse_form(dict(definition))
    except qa_forms.FormError as exc:
        raise QaError(str(exc), "invalid-form") from exc


def active_forms(db: Session, tenant_id: int) -> list[QaForm]:
    return list(db.scalars(select(QaForm).where(QaForm.tenant_id == tenant_id, QaForm.active.is_(True))
                           .order_by(QaForm.name, QaForm.id)).all())


def ensure_default_form(db: Session, tenant_id: int) -> QaForm:
    """The tenant's first active form; a tenant that never had a form gets ``DEFAULT_FORM``."""
    forms = db.scalars(select(QaForm).where(QaForm.tenant_id == tenant_id).order_by(QaForm.id)).all()
    for form in forms:
        if form.active:
            return form
    if forms:
        return forms[-1]
    definition = dict(qa_forms.DEFAULT_FORM)
    parsed = parse(definition)
    row = QaForm(tenant_id=tenant_id, name=parsed.name, version=1, definition=definition, active=True,
                 created_at=utcnow())
    db.add(row)
    db.flush()
    return row


def save_form(db: Session, tenant_id: int, definition: Mapping[str, Any], *,
              replaces: QaForm | None = None) -> QaForm:
    """Store a validated form definition.

    A form is known by its name: saving a name the tenant already has makes a new version
    (version + 1) and deactivates the older ones; evaluations keep pointing at the version
    they used. ``replaces`` (an edit of that row) must be the newest version of its form
    (else 409 ``form-outdated``) and keeps its name.
    """
    parsed = parse(definition)
    name = parsed.name
    if replaces is not None:
        if name != replaces.name:
            raise QaError(f"name: a form keeps its name ({replaces.name!r}); save {name!r} as a new form instead",
                          "invalid-form")
    versions = db.scalars(select(QaForm).where(QaForm.tenant_id == tenant_id, QaForm.name == name)
                          .order_by(QaForm.version.desc())).all()
    latest = versions[0] if versions else None
    if replaces is not None and latest is not None and latest.id != replaces.id:
        raise QaError(f"form {name!r} was changed meanwhile: version {replaces.version} is not the newest "
                      f"(version {latest.version}); reload it", "form-outdated", 409)
    for old in versions:
        old.active = False
    row = QaForm(tenant_id=tenant_id, name=name, version=(latest.version + 1) if latest else 1,
                 definition=dict(definition), active=True, created_at=utcnow())
    db.add(row)
    db.flush()
    return row


def questions_of(form: qa_forms.Form) -> list[qa_forms.Question]:
    return form.questions()


# -- call facts ----------------------------------------------------------------------------


def _hold_seconds(events: Iterable[CallEvent], end: datetime | None) -> float:
    held_since: datetime | None = None
    total = 0.0
    for event in events:
        if event.kind == "hold" and held_since is None:
            held_since = event.at
        elif event.kind == "unhold" and held_since is not None:
            total += max(0.0, (event.at - held_since).total_seconds())
            held_since = None
    if held_since is not None and end is not None:  # still on hold when the call ended
        total += max(0.0, (end - held_since).total_seconds())
    return total


def call_facts(db: Session, call_id: str) -> qa_rules.CallFacts:
    """Hold time (from the call's hold/unhold events) and handle time (answer to end)."""
    record = db.get(CallRecord, call_id)
    events = db.scalars(select(CallEvent).where(CallEvent.call_id == call_id, CallEvent.kind.in_(("hold", "unhold")))
                        .order_by(CallEvent.at, CallEvent.id)).all()
    end = record.ended_at if record is not None else None
    return qa_rules.CallFacts(hold_seconds=_hold_seconds(events, end),
                              handle_seconds=record.duration if record is not None else None)


def facts_of_calls(db: Session, records: Iterable[CallRecord]) -> dict[str, dict[str, float | None]]:
    """``call_facts`` for many calls in one query: ``{call_id: {"hold_seconds", "handle_seconds"}}``."""
    by_id = {r.id: r for r in records}
    held: dict[str, list[CallEvent]] = defaultdict(list)
    if by_id:
        for event in db.scalars(select(CallEvent).where(CallEvent.call_id.in_(list(by_id)),
                                                        CallEvent.kind.in_(("hold", "unhold")))
                                .order_by(CallEvent.at, CallEvent.id)):
            held[event.call_id].append(event)
    return {cid: {"hold_seconds": _hold_seconds(held[cid], r.ended_at), "handle_seconds": r.duration}
            for cid, r in by_id.items()}


# -- automatic evaluation ------------------------------------------------------------------


def _call(db: Session, tenant_id: int, call_id: str) -> CallRecord:
    record = db.get(CallRecord, call_id)
    if record is None or record.tenant_id != tenant_id:
        raise LookupError(call_id)
    return record


def done_transcript(db: Session, tenant_id: int, call_id: str) -> tuple[Transcript, Recording] | None:
    """The finished transcript of the call's newest recording that has one."""
    row = db.execute(select(Transcript, Recording).join(Recording, Recording.id == Transcript.recording_id)
                     .where(Transcript.call_id == call_id, Transcript.tenant_id == tenant_id,
                            Transcript.status == "done")
                     .order_by(Recording.started_at.desc())).first()
    return (row[0], row[1]) if row is not None else None


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _score(form: qa_forms.Form, values: Mapping[str, Any]) -> qa_forms.ScoreResult:
    try:
        return qa_forms.score(form, {qid: qa_forms.Answer(value=v) for qid, v in values.items() if v is not None})
    except qa_forms.AnswerError as exc:
        raise QaError(f"answers.{exc}") from exc


def _apply_score(evaluation: QaEvaluation, result: qa_forms.ScoreResult) -> None:
    evaluation.score = result.total
    evaluation.section_scores = _jsonable(result.sections)
    evaluation.auto_failed = bool(result.auto_failed)


def auto_evaluate(db: Session, tenant_id: int, call_id: str) -> list[QaEvaluation]:
    """The automatic evaluation of the call with every active form of the tenant, from its finished
    transcript (none yet: nothing is evaluated; a tenant without forms gets the default one). An
    earlier automatic evaluation of the same call and form is replaced in place (its disputes stay
    attached). LookupError for another tenant's call."""
    record = db.get(CallRecord, call_id)
    if record is not None and record.tenant_id != tenant_id:
        raise LookupError(call_id)
    # No call record at all (recordings have no foreign key to it): still evaluated, without an agent.
    found = done_transcript(db, tenant_id, call_id)
    if found is None:
        return []
    transcript, recording = found
    words = [qa_rules.Word(word=str(w["word"]), start=float(w["start"]), end=float(w["end"]),
                           conf=float(w.get("conf", 1.0)), speaker=w["speaker"]) for w in transcript.words]
    duration = recording.duration or max((w.end for w in words), default=0.0)
    return _store_auto(db, tenant_id, call_id, record.agent_id if record is not None else None, words, duration,
                       TalkStats.from_json(transcript.analytics or {}), call_facts(db, call_id))


def chat_words(messages: Iterable[tuple[str, str, datetime]], start: datetime) -> list[qa_rules.Word]:
    """A chat's messages (sender, text, time) as the text rules' words: the agent's as the agent's
    speech, the visitor's as the caller's, each token at its message's seconds after ``start``
    (when the agent took the chat; earlier messages at 0), with full confidence."""
    words = []
    for sender, text, at in messages:
        speaker = CHAT_SPEAKERS.get(sender)
        if speaker is None:
            continue
        offset = max(0.0, (at - start).total_seconds())
        words += [qa_rules.Word(word=token, start=offset, end=offset, conf=1.0, speaker=speaker)
                  for token in _CHAT_TOKEN.findall(text or "")]
    return words


def evaluate_chat(db: Session, tenant_id: int, conversation_id: str) -> list[QaEvaluation]:
    """The automatic evaluation of a chat (call it once the chat has ended) with every active form of
    the tenant, as for a transcribed call: phrase rules over its messages (:func:`chat_words`); hold
    is 0 and handle time the agent's answer to the end; talk metrics (silence, over-talk, talk
    ratio) have no answer. An earlier one of the same chat and form is replaced. LookupError for
    another tenant's chat."""
    conversation = db.get(ChatConversation, conversation_id)
    if conversation is None or conversation.tenant_id != tenant_id:
        raise LookupError(conversation_id)
    messages = db.execute(select(ChatMessage.sender, ChatMessage.text, ChatMessage.created_at)
                          .where(ChatMessage.conversation_id == conversation_id).order_by(ChatMessage.seq)).all()
    start = conversation.answered_at or conversation.created_at
    end = conversation.ended_at or max((at for _, _, at in messages), default=start)
    handle = (end - conversation.answered_at).total_seconds() \
        if conversation.answered_at is not None and conversation.ended_at is not None else None
    record = db.get(CallRecord, conversation_id)
    agent_id = record.agent_id if record is not None and record.agent_id is not None else conversation.agent_id
    return _store_auto(db, tenant_id, conversation_id, agent_id,
                       chat_words(((s, t, at) for s, t, at in messages), start),
                       max(0.0, (end - start).total_seconds()), TalkStats.from_json({}),
                       qa_rules.CallFacts(hold_seconds=0.0, handle_seconds=handle))


def _store_auto(db: Session, tenant_id: int, call_id: str, agent_id: int | None, words: list[qa_rules.Word],
                duration: float, talk: TalkStats, facts: qa_rules.CallFacts) -> list[QaEvaluation]:
    """Evaluate a contact automatically with every active form and store it (replacing the earlier
    automatic evaluation of the same contact and form in place: its disputes stay attached)."""
    ensure_default_form(db, tenant_id)
    out: list[QaEvaluation] = []
    for form_row in active_forms(db, tenant_id):
        form = parse(form_row.definition)
        autos = qa_rules.auto_answers(form, words, duration, talk, facts)
        answers: dict[str, Any] = {}
        for question in questions_of(form):
            auto = autos.get(question.id)
            value = auto.value if auto is not None else None
            answers[question.id] = {"value": value, "auto_value": value,
                                    "evidence": _jsonable(auto.evidence) if auto is not None else [],
                                    "reason": auto.reason if auto is not None else "",
                                    "comment": "", "overridden": False}
        evaluation = db.scalars(select(QaEvaluation).where(
            QaEvaluation.tenant_id == tenant_id, QaEvaluation.call_id == call_id,
            QaEvaluation.form_id == form_row.id, QaEvaluation.kind == "auto")
            .order_by(QaEvaluation.id.desc())).first()
        if evaluation is None:
            evaluation = QaEvaluation(tenant_id=tenant_id, call_id=call_id, form_id=form_row.id, kind="auto")
            db.add(evaluation)
        evaluation.agent_id = agent_id
        evaluation.evaluator_id = None
        evaluation.answers = answers
        evaluation.comment = ""
        evaluation.created_at = utcnow()
        _apply_score(evaluation, _score(form, {qid: a["value"] for qid, a in answers.items()}))
        out.append(evaluation)
    db.flush()
    return out


# -- manual evaluation ---------------------------------------------------------------------


def check_value(question: qa_forms.Question, value: Any) -> str | int:
    """The answer ``value`` for ``question`` as stored, or QaError saying what is allowed."""
    where = f"answers.{question.id}"
    if value == NA:
        if not question.allow_na:
            raise QaError(f"{where}: N/A is not allowed for this question")
        return NA
    if question.type == "yes_no":
        if value not in ("yes", "no"):
            raise QaError(f"{where}: answer 'yes' or 'no'{' or na' if question.allow_na else ''}, not {value!r}")
        return value
    assert question.min is not None and question.max is not None  # parse_form checks scale questions
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise QaError(f"{where}: answer a whole number from {question.min} to {question.max}, not {value!r}")
    if not question.min <= value <= question.max:
        raise QaError(f"{where}: {value} is outside {question.min} to {question.max}")
    return int(value)


def latest_auto(db: Session, tenant_id: int, call_id: str, form_id: int) -> QaEvaluation | None:
    return db.scalars(select(QaEvaluation).where(
        QaEvaluation.tenant_id == tenant_id, QaEvaluation.call_id == call_id, QaEvaluation.form_id == form_id,
        QaEvaluation.kind == "auto").order_by(QaEvaluation.id.desc())).first()


def submit_evaluation(db: Session, tenant_id: int, evaluator_id: int, call_id: str, form_id: int,
                      answers: Mapping[str, Mapping[str, Any]], comment: str = "") -> QaEvaluation:
    """A person's evaluation of a call with one of the tenant's active forms.

    ``answers``: ``{question_id: {"value", "comment"}}``, every question answered. The automatic
    answer, its evidence and reason are kept next to the person's; a value that differs from
    the automatic one is an override and needs a comment (``override-needs-comment``).
    """
    record = _call(db, tenant_id, call_id)
    form_row = db.get(QaForm, form_id)
    if form_row is None or form_row.tenant_id != tenant_id:
        raise LookupError(form_id)
    if not form_row.active:
        raise QaError(f"form {form_row.name!r} version {form_row.version} is no longer in use; "
                      "evaluate with its newest version", "form-inactive", 409)
    if len(comment) > MAX_COMMENT:
        raise QaError(f"comment: at most {MAX_COMMENT} characters")
    form = parse(form_row.definition)
    questions = questions_of(form)
    known = {q.id for q in questions}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise QaError(f"answers.{unknown[0]}: no such question in form {form_row.name!r}")
    auto = latest_auto(db, tenant_id, call_id, form_id)
    auto_answers: Mapping[str, Any] = auto.answers if auto is not None else {}
    stored: dict[str, Any] = {}
    missing = []
    for question in questions:
        given = answers.get(question.id)
        if given is None or given.get("value") is None:
            missing.append(question.id)
            continue
        value = check_value(question, given.get("value"))
        note = str(given.get("comment") or "").strip()
        if len(note) > MAX_COMMENT:
            raise QaError(f"answers.{question.id}.comment: at most {MAX_COMMENT} characters")
        previous = auto_answers.get(question.id) or {}
        auto_value = previous.get("auto_value")
        overridden = auto_value is not None and value != auto_value
        if overridden and not note:
            raise QaError(f"answers.{question.id}: the automatic answer was {auto_value!r}; say in a comment "
                          f"why it is {value!r}", "override-needs-comment")
        stored[question.id] = {"value": value, "auto_value": auto_value, "evidence": previous.get("evidence", []),
                               "reason": previous.get("reason", ""), "comment": note, "overridden": overridden}
    if missing:
        raise QaError(f"answers.{missing[0]}: an answer is required" +
                      (f" (and for {len(missing) - 1} more question(s))" if len(missing) > 1 else ""),
                      "answers-missing")
    evaluation = QaEvaluation(tenant_id=tenant_id, call_id=call_id, form_id=form_id, agent_id=record.agent_id,
                              evaluator_id=evaluator_id, kind="manual", answers=stored, comment=comment.strip(),
                              created_at=utcnow())
    _apply_score(evaluation, _score(form, {qid: a["value"] for qid, a in stored.items()}))
    db.add(evaluation)
    db.flush()
    return evaluation


# -- calibration ---------------------------------------------------------------------------


def _usernames(db: Session, user_ids: Iterable[int | None]) -> dict[int, str]:
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    return dict(db.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


def calibration(db: Session, tenant_id: int, call_id: str) -> dict[str, Any]:
    """How far the people who evaluated the call agree, per form version.

    ``totals``: count, min, max, spread (max - min), mean and population standard deviation
    of the scores; per question the answer of every evaluator, the automatic answer and the
    agreement (share of evaluators giving the most common answer).
    """
    _call(db, tenant_id, call_id)
    evaluations = db.scalars(select(QaEvaluation).where(
        QaEvaluation.tenant_id == tenant_id, QaEvaluation.call_id == call_id, QaEvaluation.kind == "manual")
        .order_by(QaEvaluation.created_at, QaEvaluation.id)).all()
    names = _usernames(db, (e.evaluator_id for e in evaluations))
    by_form: dict[int, list[QaEvaluation]] = defaultdict(list)
    for evaluation in evaluations:
        by_form[evaluation.form_id].append(evaluation)
    out = []
    for form_id, group in sorted(by_form.items()):
        form_row = db.get(QaForm, form_id)
        assert form_row is not None
        form = parse(form_row.definition)
        auto = latest_auto(db, tenant_id, call_id, form_id)
        scores = [e.score for e in group if e.score is not None]
        totals = {"count": len(group), "min": min(scores) if scores else None, "max": max(scores) if scores else None,
                  "spread": (max(scores) - min(scores)) if scores else None,
                  "mean": statistics.fmean(scores) if scores else None,
                  "stdev": statistics.pstdev(scores) if scores else None}
        questions = []
        for question in questions_of(form):
            values = [{"evaluation_id": e.id, "evaluator": _user_ref(e.evaluator_id, names),
                       "value": (e.answers.get(question.id) or {}).get("value"),
                       "comment": (e.answers.get(question.id) or {}).get("comment", "")} for e in group]
            given = [v["value"] for v in values if v["value"] is not None]
            counts = Counter(given)
            top = counts.most_common(1)[0] if counts else None
            questions.append({
                "id": question.id, "text": question.text,
                "values": values,
                "auto_value": ((auto.answers.get(question.id) or {}).get("auto_value") if auto is not None else None),
                "distinct": len(counts),
                "majority": top[0] if top else None,
                "agreement": (top[1] / len(given)) if top else None,
            })
        out.append({"form": {"id": form_row.id, "name": form_row.name, "version": form_row.version},
                    "evaluations": [{"id": e.id, "evaluator": _user_ref(e.evaluator_id, names), "score": e.score,
                                     "auto_failed": e.auto_failed, "created_at": e.created_at} for e in group],
                    "totals": totals, "questions": questions,
                    "auto_score": auto.score if auto is not None else None})
    return {"call_id": call_id, "forms": out}


def _user_ref(user_id: int | None, names: Mapping[int, str]) -> dict[str, Any] | None:
    return {"id": user_id, "username": names.get(user_id)} if user_id is not None else None


# -- reports -------------------------------------------------------------------------------

REPORT_BY = ("agent", "queue", "question")
INTERVALS = ("day", "week")


def question_score(question: qa_forms.Question, value: Any) -> float | None:
    """0-100 for one answer (yes 100, no 0, a scale linearly); None for N/A or no answer."""
    if value is None or value == NA:
        return None
    if question.type == "yes_no":
        return 100.0 if value == "yes" else 0.0
    low, high = question.min or 0, question.max or 0
    return 100.0 if high == low else 100.0 * (float(value) - low) / (high - low)


def _period(day: date, interval: str) -> str:
    if interval == "week":
        day = day - timedelta(days=day.weekday())  # the week's Monday
    return day.isoformat()


def chosen_evaluations(db: Session, tenant_id: int, since: datetime | None = None,
                       until: datetime | None = None) -> list[tuple[QaEvaluation, CallRecord]]:
    """Per call and form, the evaluation reports count: the newest by a person, else the automatic one.
    Calls are picked by ``received_at`` in [since, until)."""
    stmt = (select(QaEvaluation, CallRecord).join(CallRecord, CallRecord.id == QaEvaluation.call_id)
            .where(QaEvaluation.tenant_id == tenant_id, CallRecord.tenant_id == tenant_id))
    if since is not None:
        stmt = stmt.where(CallRecord.received_at >= since)
    if until is not None:
        stmt = stmt.where(CallRecord.received_at < until)
    best: dict[tuple[str, str], tuple[QaEvaluation, CallRecord]] = {}
    form_names = dict(db.execute(select(QaForm.id, QaForm.name).where(QaForm.tenant_id == tenant_id)).all())
    for evaluation, record in db.execute(stmt.order_by(QaEvaluation.id)).all():
        # Versions of one form count as one form: the newest evaluation wins across them.
        key = (record.id, form_names.get(evaluation.form_id, str(evaluation.form_id)))
        held = best.get(key)
        if held is None or evaluation.kind == "manual" or held[0].kind == "auto":
            best[key] = (evaluation, record)
    return list(best.values())


def report(db: Session, tenant_id: int, by: str, interval: str = "day", since: datetime | None = None,
           until: datetime | None = None) -> dict[str, Any]:
    """Average score per agent, queue or question and per day or week (of the call), between
    ``since`` and ``until``. Each call counts once per form: with its newest evaluation by a
    person, else its automatic one; every figure says how many of each it holds."""
    if by not in REPORT_BY:
        raise QaError(f"by: one of {', '.join(REPORT_BY)}")
    if interval not in INTERVALS:
        raise QaError(f"interval: one of {', '.join(INTERVALS)}")
    chosen = chosen_evaluations(db, tenant_id, since, until)
    # (key, period) -> list of (score, kind)
    cells: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    labels: dict[str, str] = {}
    forms: dict[int, qa_forms.Form] = {}
    agent_names: dict[int, str] = {}
    if by == "agent":
        agent_ids = {e.agent_id for e, _ in chosen if e.agent_id is not None}
        if agent_ids:
            agent_names = dict(db.execute(select(Agent.id, User.username).join(User, User.id == Agent.user_id)
                                          .where(Agent.id.in_(agent_ids))).all())
    form_rows = {f.id: f for f in db.scalars(select(QaForm).where(QaForm.tenant_id == tenant_id))}
    for evaluation, record in chosen:
        period = _period(record.received_at.date(), interval)
        kind = evaluation.kind
        if by == "question":
            form_row = form_rows.get(evaluation.form_id)
            if form_row is None:
                continue
            form = forms.get(form_row.id) or forms.setdefault(form_row.id, parse(form_row.definition))
            for question in questions_of(form):
                value = question_score(question, (evaluation.answers.get(question.id) or {}).get("value"))
                if value is None:
                    continue
                key = f"{form_row.name}/{question.id}"
                labels.setdefault(key, question.text)
                cells[(key, period)].append((value, kind))
            continue
        if evaluation.score is None:
            continue
        if by == "agent":
            key = str(evaluation.agent_id) if evaluation.agent_id is not None else "none"
            labels[key] = agent_names.get(evaluation.agent_id, "(no agent)") if evaluation.agent_id else "(no agent)"
        else:
            key = record.queue or "none"
            labels[key] = record.queue or "(no queue)"
        cells[(key, period)].append((evaluation.score, kind))

    def summary(items: list[tuple[float, str]]) -> dict[str, Any]:
        return {"average": statistics.fmean(s for s, _ in items) if items else None, "count": len(items),
                "manual": sum(1 for _, k in items if k == "manual"), "auto": sum(1 for _, k in items if k == "auto")}

    periods = sorted({p for _, p in cells})
    series = []
    for key in sorted(labels, key=lambda k: (labels[k].lower(), k)):
        points = [{"period": p, **summary(cells[(key, p)])} for p in periods if (key, p) in cells]
        everything = [item for p in periods for item in cells.get((key, p), [])]
        series.append({"key": key, "label": labels[key], **summary(everything), "points": points})
    return {"by": by, "interval": interval, "since": since, "until": until, "periods": periods,
            "sources": {"manual": sum(1 for e, _ in chosen if e.kind == "manual"),
                        "auto": sum(1 for e, _ in chosen if e.kind == "auto")},
            "series": series}
