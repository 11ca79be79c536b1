"""The QA API: forms, automatic and manual evaluations, calibration, disputes, reports, roles.

Calls, recordings and transcripts are hand-made rows (no audio): what the page and the
transcription job would find in the database after a call.
"""

from __future__ import annotations

import copy
import statistics
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from callcenter import qa
from callcenter.models import AuditLog, CallEvent, CallRecord, QaEvaluation, QaForm, Recording, Transcript
from callcenter.transcripts import index_transcript

from .conftest import World

DAY1 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)  # a Monday
DAY2 = DAY1 + timedelta(days=1)
DAY8 = DAY1 + timedelta(days=7)  # the next Monday

FORM: dict[str, Any] = {
    "name": "Test review", "scoring": "question",
    "sections": [
        {"id": "opening", "title": "Opening", "weight": 30, "questions": [
            {"id": "greeting", "text": "Did the agent greet the caller?", "type": "yes_no", "weight": 10,
             "auto": {"rule": "phrase_said", "speaker": "agent", "phrases": ["hello"], "within_first_s": 30}},
            {"id": "name", "text": "Did the agent give their name?", "type": "yes_no", "weight": 10,
             "auto": {"rule": "phrase_said", "speaker": "agent", "phrases": ["ann"]}},
        ]},
        {"id": "conduct", "title": "Conduct", "weight": 70, "questions": [
            {"id": "polite", "text": "No rude words?", "type": "yes_no", "weight": 20, "auto_fail": True,
             "auto": {"rule": "phrase_not_said", "speaker": "agent", "phrases": ["stupid"]}},
            {"id": "hold", "text": "Hold under a minute?", "type": "yes_no", "weight": 10,
             "auto": {"rule": "metric", "metric": "hold_seconds", "max": 60}},
            {"id": "empathy", "text": "How empathic was the agent?", "type": "scale", "min": 1, "max": 5,
             "weight": 10, "allow_na": True},
        ]},
    ],
}


def near(value: float) -> Any:
    """Scores are stored in percent with one decimal."""
    return pytest.approx(value, abs=0.05)


def w(word: str, start: float, speaker: str, conf: float = 0.95) -> dict[str, Any]:
    return {"word": word, "start": start, "end": start + 0.4, "conf": conf, "speaker": speaker}


GOOD_CALL = [w("hello", 1.0, "agent"), w("this", 1.5, "agent"), w("is", 2.0, "agent"), w("ann", 2.5, "agent"),
             w("hi", 4.0, "caller"), w("refund", 4.5, "caller"), w("please", 5.0, "caller"),
             w("sure", 7.0, "agent")]
RUDE_CALL = [w("what", 1.0, "agent"), w("refund", 2.0, "caller"), w("stupid", 3.0, "agent")]


# -- fixtures & helpers ---------------------------------------------------------------------

def _agent(world: World, username: str, tenant: str = "alpha") -> tuple[int, dict[str, str]]:
    made = world.client.post("/api/agents", json={"username": username, "skills": {"sales": 3}},
                             headers=world.login("admin", tenant=tenant))
    assert made.status_code == 201, made.text
    return made.json()["id"], world.login(username, tenant=tenant, password=made.json()["password"])


def _recorded_call(engine: Engine, tenant_id: int, agent_id: int | None, words: list[dict[str, Any]], *,
                   at: datetime = DAY1, queue: str | None = "sales", talk_s: float = 60.0,
                   holds: tuple[tuple[float, float], ...] = (), transcript_status: str = "done") -> str:
    """A finished call with a recording row and its transcript; ``holds`` in seconds after the answer."""
    call_id = str(uuid.uuid4())
    answered = at + timedelta(seconds=5)
    with Session(engine) as db:
        db.add(CallRecord(id=call_id, sip_call_id=f"{call_id}@t", tenant_id=tenant_id, direction="inbound",
                          caller="13800138000", dialed="4001234567", received_at=at, answered_at=answered,
                          ended_at=answered + timedelta(seconds=talk_s), agent_id=agent_id, queue=queue))
        db.flush()
        for start, end in holds:
            db.add(CallEvent(call_id=call_id, tenant_id=tenant_id, at=answered + timedelta(seconds=start),
                             kind="hold", agent_id=agent_id))
            db.add(CallEvent(call_id=call_id, tenant_id=tenant_id, at=answered + timedelta(seconds=end),
                             kind="unhold", agent_id=agent_id))
        recording = Recording(tenant_id=tenant_id, call_id=call_id, status="complete", format="opus",
                              storage_key=None, duration=talk_s, started_at=answered,
                              ended_at=answered + timedelta(seconds=talk_s), agent_answered_s=0.0, pauses=[])
        db.add(recording)
        db.flush()
        transcript = Transcript(recording_id=recording.id, tenant_id=tenant_id, call_id=call_id,
                                status=transcript_status, progress=1.0 if transcript_status == "done" else 0.3,
                                words=words, text=" ".join(x["word"] for x in words),
                                analytics={"silence_ratio": 0.2, "overtalk_ratio": 0.01, "agent_talk_ratio": 0.5})
        db.add(transcript)
        db.flush()
        index_transcript(db, transcript)
        db.commit()
    return call_id


def _auto(engine: Engine, tenant_id: int, call_id: str) -> list[int]:
    with Session(engine) as db:
        rows = qa.auto_evaluate(db, tenant_id, call_id)
        db.commit()
        return [r.id for r in rows]


def _form(world: World, headers: dict[str, str], definition: dict[str, Any] = FORM) -> dict[str, Any]:
    made = world.client.post("/api/qa/forms", json=definition, headers=headers)
    assert made.status_code == 201, made.text
    return made.json()


def _only_test_form(world: World, headers: dict[str, str]) -> dict[str, Any]:
    """The test form as the tenant's one active form (the default one deactivated)."""
    for f in world.client.get("/api/qa/forms", headers=headers).json():
        assert world.client.delete(f"/api/qa/forms/{f['id']}", headers=headers).status_code == 204
    return _form(world, headers)


def _answers(**values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"greeting": {"value": "yes"}, "name": {"value": "yes"}, "polite": {"value": "yes"},
                           "hold": {"value": "yes"}, "empathy": {"value": 5}}
    for key, value in values.items():
        out[key] = value if isinstance(value, dict) else {"value": value}
    return out


def _audits(engine: Engine, action: str) -> list[AuditLog]:
    with Session(engine) as db:
        return list(db.scalars(select(AuditLog).where(AuditLog.action == action)).all())


# -- forms -----------------------------------------------------------------------------------

def test_a_tenant_starts_with_the_default_form_and_edits_make_versions(world: World) -> None:
    headers = world.login("qa")
    forms = world.client.get("/api/qa/forms", headers=headers).json()
    assert len(forms) == 1 and forms[0]["version"] == 1 and forms[0]["active"] is True
    assert world.client.get("/api/qa/forms", headers=headers).json() == forms  # created once
    made = _form(world, headers)
    assert (made["name"], made["version"], made["active"]) == ("Test review", 1, True)
    assert made["definition"] == FORM
    edited = copy.deepcopy(FORM)
    edited["sections"][0]["questions"][0]["weight"] = 20
    second = world.client.put(f"/api/qa/forms/{made['id']}", json=edited, headers=world.login("supervisor"))
    assert second.status_code == 200, second.text
    assert second.json()["id"] != made["id"] and second.json()["version"] == 2
    first = world.client.get(f"/api/qa/forms/{made['id']}", headers=headers).json()
    assert first["active"] is False and first["definition"] == FORM  # the old version is kept as it was
    active = {(f["name"], f["version"]) for f in world.client.get("/api/qa/forms", headers=headers).json()}
    assert ("Test review", 2) in active and ("Test review", 1) not in active
    everything = world.client.get("/api/qa/forms?include_inactive=true", headers=headers).json()
    assert ("Test review", 1) in {(f["name"], f["version"]) for f in everything}
    # Editing the old version again: someone else's edit would be lost.
    stale = world.client.put(f"/api/qa/forms/{made['id']}", json=edited, headers=headers)
    assert stale.status_code == 409 and stale.json()["error_id"] == "form-outdated"
    renamed = world.client.put(f"/api/qa/forms/{second.json()['id']}", json={**edited, "name": "Other"},
                               headers=headers)
    assert renamed.status_code == 422 and "name" in renamed.json()["message"]
    assert len(_audits(world.engine, "qa_form.create")) == 1
    assert len(_audits(world.engine, "qa_form.update")) == 1


def test_invalid_forms_are_422_naming_the_path(world: World) -> None:
    headers = world.login("admin")
    bad = copy.deepcopy(FORM)
    bad["sections"][1]["questions"][0]["type"] = "maybe"
    resp = world.client.post("/api/qa/forms", json=bad, headers=headers)
    assert resp.status_code == 422 and resp.json()["error_id"] == "invalid-form"
    assert "sections[1].questions[0]" in resp.json()["message"] or "polite" in resp.json()["message"], resp.json()
    no_sections = world.client.post("/api/qa/forms", json={"name": "x", "scoring": "question"}, headers=headers)
    assert no_sections.status_code == 422 and "sections" in no_sections.json()["message"]
    made = _form(world, headers)
    bad_rule = copy.deepcopy(FORM)
    bad_rule["sections"][0]["questions"][0]["auto"]["rule"] = "telepathy"
    resp = world.client.put(f"/api/qa/forms/{made['id']}", json=bad_rule, headers=headers)
    assert resp.status_code == 422 and "sections[0].questions[0]" in resp.json()["message"], resp.json()
    assert world.client.get(f"/api/qa/forms/{made['id']}", headers=headers).json()["active"] is True
    assert world.client.post("/api/qa/forms", json=[1, 2], headers=headers).status_code == 422


# -- automatic evaluation ------------------------------------------------------------------

def test_auto_evaluation_answers_from_the_transcript(world: World) -> None:
    ann, _ = _agent(world, "ann")
    headers = world.login("qa")
    form = _only_test_form(world, headers)
    good = _recorded_call(world.engine, world.tenant_a, ann, GOOD_CALL, holds=((10, 40),))
    rude = _recorded_call(world.engine, world.tenant_a, ann, RUDE_CALL, holds=((5, 95),))
    assert len(_auto(world.engine, world.tenant_a, good)) == 1
    assert len(_auto(world.engine, world.tenant_a, rude)) == 1

    shown = world.client.get(f"/api/qa/calls/{good}", headers=headers).json()
    assert shown["call"]["facts"] == {"hold_seconds": 30.0, "handle_seconds": 60.0}
    assert shown["recording"]["status"] == "complete" and shown["transcript"]["status"] == "done"
    assert [f["id"] for f in shown["forms"]] == [form["id"]]
    (auto,) = shown["evaluations"]
    assert auto["kind"] == "auto" and auto["evaluator"] is None and auto["agent"] == {"id": ann, "username": "ann"}
    answers = auto["answers"]
    assert {k: a["value"] for k, a in answers.items()} == {"greeting": "yes", "name": "yes", "polite": "yes",
                                                           "hold": "yes", "empathy": None}
    assert all(a["auto_value"] == a["value"] and a["overridden"] is False and a["comment"] == ""
               for a in answers.values())
    assert [e["start"] for e in answers["greeting"]["evidence"]] == [1.0]  # where "hello" was said
    assert answers["greeting"]["reason"] and answers["hold"]["reason"]
    assert auto["score"] == near(100.0) and auto["auto_failed"] is False

    (rude_eval,) = world.client.get(f"/api/qa/calls/{rude}", headers=headers).json()["evaluations"]
    values = {k: a["value"] for k, a in rude_eval["answers"].items()}
    assert values == {"greeting": "no", "name": "no", "polite": "no", "hold": "no", "empathy": None}
    assert [e["start"] for e in rude_eval["answers"]["polite"]["evidence"]] == [3.0]  # the rude word
    assert rude_eval["auto_failed"] is True and rude_eval["score"] == 0

    # Evaluating again replaces the automatic evaluation (same row, disputes stay attached).
    again = _auto(world.engine, world.tenant_a, good)
    assert again == [auto["id"]]
    with Session(world.engine) as db:
        assert db.scalar(select(QaEvaluation.id).where(QaEvaluation.call_id == good)) == auto["id"]


def test_no_auto_evaluation_before_the_transcript_is_done(world: World) -> None:
    call = _recorded_call(world.engine, world.tenant_a, None, [], transcript_status="running")
    assert _auto(world.engine, world.tenant_a, call) == []
    with pytest.raises(LookupError):
        _auto(world.engine, world.tenant_b, call)  # not beta's call


def test_a_recording_without_call_record_is_still_evaluated(world: World) -> None:
    _only_test_form(world, world.login("qa"))
    call = _recorded_call(world.engine, world.tenant_a, None, GOOD_CALL)
    with Session(world.engine) as db:  # recordings have no foreign key to the call record
        db.delete(db.get(CallRecord, call))
        db.commit()
    assert len(_auto(world.engine, world.tenant_a, call)) == 1
    with Session(world.engine) as db:
        evaluation = db.scalars(select(QaEvaluation).where(QaEvaluation.call_id == call)).one()
        assert evaluation.agent_id is None and evaluation.answers["greeting"]["value"] == "yes"


def test_the_call_list_filters_and_pages(world: World) -> None:
    ann, _ = _agent(world, "ann")
    bob, _ = _agent(world, "bob")
    headers = world.login("qa")
    _only_test_form(world, headers)
    good = _recorded_call(world.engine, world.tenant_a, ann, GOOD_CALL, at=DAY1)
    rude = _recorded_call(world.engine, world.tenant_a, bob, RUDE_CALL, at=DAY2, queue="support")
    plain = _recorded_call(world.engine, world.tenant_a, bob, GOOD_CALL[:1], at=DAY8, transcript_status="running")
    _recorded_call(world.engine, world.tenant_b, None, GOOD_CALL, at=DAY1)  # beta's: never listed
    for call in (good, rude):
        _auto(world.engine, world.tenant_a, call)

    def ids(query: str = "") -> list[str]:
        resp = world.client.get(f"/api/qa/calls{query}", headers=headers)
        assert resp.status_code == 200, resp.text
        return [c["call_id"] for c in resp.json()["items"]]

    assert ids() == [plain, rude, good]  # newest first
    listed = world.client.get("/api/qa/calls", headers=headers).json()
    assert listed["total"] == 3
    row = next(c for c in listed["items"] if c["call_id"] == good)
    assert row["agent"] == {"id": ann, "username": "ann"} and row["queue"] == "sales"
    assert row["recording"]["status"] == "complete" and row["recording"]["duration"] == 60.0
    assert row["transcript"] == {"status": "done", "progress": 1.0}
    assert row["auto_score"] == near(100.0) and row["manual_score"] is None
    assert row["facts"] == {"hold_seconds": 0.0, "handle_seconds": 60.0}
    assert next(c for c in listed["items"] if c["call_id"] == plain)["auto_score"] is None
    assert ids(f"?agent={bob}") == [plain, rude] and ids("?agent=ann") == [good]
    assert ids("?queue=support") == [rude]
    assert ids("?since=2025-03-04T00:00:00&until=2025-03-10T00:00:00Z") == [rude]
    assert ids("?min_score=50") == [good] and ids("?max_score=50") == [rude]
    assert ids("?q=refund") == [rude, good] and ids("?q=stupid") == [rude] and ids("?q=nothing") == []
    assert ids("?limit=2") == [plain, rude] and ids("?limit=2&offset=2") == [good]
    assert world.client.get("/api/qa/calls?limit=2", headers=headers).json()["total"] == 3
    # A person's score takes over from the automatic one in the score filter.
    form_id = world.client.get(f"/api/qa/calls/{rude}", headers=headers).json()["forms"][0]["id"]
    body = {"form_id": form_id, "answers": _answers(greeting={"value": "yes", "comment": "said hi first"},
                                                   name={"value": "yes", "comment": "said it"},
                                                   polite={"value": "yes", "comment": "it was about a product"},
                                                   hold={"value": "yes", "comment": "system was down"})}
    assert world.client.post(f"/api/qa/calls/{rude}/evaluations", json=body, headers=headers).status_code == 201
    assert ids("?min_score=50") == [rude, good]
    assert world.client.get("/api/qa/calls?since=2025-03-05T00:00:00&until=2025-03-01T00:00:00",
                            headers=headers).status_code == 422


# -- manual evaluation ---------------------------------------------------------------------

def test_a_manual_evaluation_keeps_the_auto_answers_and_needs_comments_on_overrides(world: World) -> None:
    ann, _ = _agent(world, "ann")
    headers = world.login("qa")
    form = _only_test_form(world, headers)
    call = _recorded_call(world.engine, world.tenant_a, ann, GOOD_CALL)
    _auto(world.engine, world.tenant_a, call)
    url = f"/api/qa/calls/{call}/evaluations"

    refused = world.client.post(url, json={"form_id": form["id"], "answers": _answers(name="no")}, headers=headers)
    assert refused.status_code == 422 and refused.json()["error_id"] == "override-needs-comment"
    assert "answers.name" in refused.json()["message"] and "comment" in refused.json()["message"]
    missing = _answers()
    del missing["empathy"]
    resp = world.client.post(url, json={"form_id": form["id"], "answers": missing}, headers=headers)
    assert resp.status_code == 422 and resp.json()["error_id"] == "answers-missing"
    assert "answers.empathy" in resp.json()["message"]
    for bad, where in [(_answers(empathy=7), "answers.empathy"), (_answers(greeting="maybe"), "answers.greeting"),
                       (_answers(polite="na"), "answers.polite"), (_answers(empathy="3"), "answers.empathy"),
                       ({**_answers(), "nope": {"value": "yes"}}, "answers.nope")]:
        resp = world.client.post(url, json={"form_id": form["id"], "answers": bad}, headers=headers)
        assert resp.status_code == 422 and where in resp.json()["message"], (bad, resp.json())
    assert world.client.post(url, json={"form_id": 9999, "answers": _answers()}, headers=headers).status_code == 404

    body = {"form_id": form["id"], "comment": "good call overall",
            "answers": _answers(name={"value": "no", "comment": "only said it to the supervisor"}, empathy=4)}
    saved = world.client.post(url, json=body, headers=headers)
    assert saved.status_code == 201, saved.text
    got = saved.json()
    assert got["kind"] == "manual" and got["evaluator"]["username"] == "qa"
    assert got["agent"] == {"id": ann, "username": "ann"} and got["comment"] == "good call overall"
    name = got["answers"]["name"]
    assert (name["value"], name["auto_value"], name["overridden"]) == ("no", "yes", True)
    assert name["comment"] == "only said it to the supervisor" and name["evidence"]
    greeting = got["answers"]["greeting"]
    assert (greeting["value"], greeting["auto_value"], greeting["overridden"]) == ("yes", "yes", False)
    assert [e["start"] for e in greeting["evidence"]] == [1.0]
    assert got["answers"]["empathy"] == {"value": 4, "auto_value": None, "evidence": [], "reason": "",
                                         "comment": "", "overridden": False}
    # question scoring: weights 10, 10, 20, 10, 10; name "no"; empathy 4 of 1..5 = 0.75
    expected = (10 + 0 + 20 + 10 + 10 * 0.75) / 60 * 100
    assert got["score"] == near(expected)
    again = world.client.get(f"/api/qa/evaluations/{got['id']}", headers=headers).json()
    assert again["answers"] == got["answers"] and again["form_definition"] == FORM
    (audit,) = _audits(world.engine, "qa_evaluation.create")
    assert audit.detail["overridden"] == ["name"] and audit.detail["evaluation_id"] == got["id"]
    listed = world.client.get("/api/qa/calls", headers=headers).json()["items"][0]
    assert listed["manual_score"] == near(expected) and listed["manual_evaluations"] == 1

    # An edited form is a new version: the old one no longer takes evaluations; the stored one keeps its version.
    edited = copy.deepcopy(FORM)
    edited["sections"][0]["questions"][1]["weight"] = 5
    new = world.client.put(f"/api/qa/forms/{form['id']}", json=edited, headers=headers).json()
    old = world.client.post(url, json=body, headers=headers)
    assert old.status_code == 409 and old.json()["error_id"] == "form-inactive"
    shown = world.client.get(f"/api/qa/calls/{call}", headers=headers).json()
    assert {f["id"]: f["active"] for f in shown["forms"]} == {form["id"]: False, new["id"]: True}
    assert {e["form_id"] for e in shown["evaluations"]} == {form["id"]}


def test_section_scoring_and_auto_fail(world: World) -> None:
    headers = world.login("qa")
    sectioned = copy.deepcopy(FORM)
    sectioned["scoring"] = "section"
    sectioned["name"] = "By section"
    form = _form(world, headers, sectioned)
    call = _recorded_call(world.engine, world.tenant_a, None, [])
    url = f"/api/qa/calls/{call}/evaluations"
    got = world.client.post(url, json={"form_id": form["id"], "answers": _answers(name="no", empathy="na")},
                            headers=headers).json()
    # opening: (10 + 0) / 20 = 50; conduct: (20 + 10) / 30 = 100 (empathy N/A left out); 30/70 weights
    assert got["score"] == near((50 * 30 + 100 * 70) / 100)
    failed = world.client.post(url, json={"form_id": form["id"], "answers": _answers(polite="no")},
                               headers=headers).json()
    assert failed["auto_failed"] is True and failed["score"] == 0


# -- calibration ---------------------------------------------------------------------------

def test_calibration_shows_the_spread_between_evaluators(world: World) -> None:
    headers = {"qa": world.login("qa"), "supervisor": world.login("supervisor"), "admin": world.login("admin")}
    form = _only_test_form(world, headers["qa"])
    call = _recorded_call(world.engine, world.tenant_a, None, GOOD_CALL)
    _auto(world.engine, world.tenant_a, call)
    url = f"/api/qa/calls/{call}/evaluations"
    plans = {"qa": _answers(empathy=5),
             "supervisor": _answers(empathy=3),
             "admin": _answers(empathy=1, hold={"value": "no", "comment": "too long"})}
    scores = {}
    for who, answers in plans.items():
        resp = world.client.post(url, json={"form_id": form["id"], "answers": answers}, headers=headers[who])
        assert resp.status_code == 201, resp.text
        scores[who] = resp.json()["score"]
    assert scores["qa"] == near(100.0)
    assert scores["supervisor"] == near((50 + 5) / 60 * 100)
    assert scores["admin"] == near(40 / 60 * 100)

    data = world.client.get(f"/api/qa/calls/{call}/calibration", headers=headers["qa"]).json()
    (only,) = data["forms"]
    assert only["form"]["id"] == form["id"] and only["auto_score"] == near(100.0)
    assert [e["evaluator"]["username"] for e in only["evaluations"]] == ["qa", "supervisor", "admin"]
    totals = only["totals"]
    values = list(scores.values())
    assert totals["count"] == 3
    assert totals["min"] == near(min(values)) and totals["max"] == near(max(values))
    assert totals["spread"] == near(max(values) - min(values))
    assert totals["mean"] == near(statistics.fmean(values))
    assert totals["stdev"] == near(statistics.pstdev(values))
    questions = {q["id"]: q for q in only["questions"]}
    assert questions["greeting"]["agreement"] == 1.0 and questions["greeting"]["distinct"] == 1
    assert questions["hold"]["agreement"] == near(2 / 3) and questions["hold"]["majority"] == "yes"
    assert questions["hold"]["auto_value"] == "yes"
    assert questions["empathy"]["distinct"] == 3 and questions["empathy"]["agreement"] == near(1 / 3)
    assert [v["value"] for v in questions["empathy"]["values"]] == [5, 3, 1]
    empty = _recorded_call(world.engine, world.tenant_a, None, [])
    assert world.client.get(f"/api/qa/calls/{empty}/calibration", headers=headers["qa"]).json()["forms"] == []


# -- disputes ------------------------------------------------------------------------------

def test_an_agent_disputes_an_evaluation_and_qa_resolves_it(world: World) -> None:
    ann, as_ann = _agent(world, "ann")
    bob, as_bob = _agent(world, "bob")
    headers = world.login("qa")
    form = _only_test_form(world, headers)
    call = _recorded_call(world.engine, world.tenant_a, ann, GOOD_CALL)
    bobs = _recorded_call(world.engine, world.tenant_a, bob, RUDE_CALL)
    _auto(world.engine, world.tenant_a, call)
    _auto(world.engine, world.tenant_a, bobs)
    manual = world.client.post(f"/api/qa/calls/{call}/evaluations",
                               json={"form_id": form["id"], "answers": _answers(empathy=2)}, headers=headers).json()

    mine = world.client.get("/api/qa/my-evaluations", headers=as_ann).json()
    assert mine["agent_id"] == ann
    assert [(e["kind"], e["call_id"]) for e in mine["evaluations"]] == [("manual", call), ("auto", call)]
    assert mine["evaluations"][0]["call"]["caller"] == "13800138000"
    assert [f["id"] for f in mine["forms"]] == [form["id"]] and mine["forms"][0]["definition"] == FORM
    assert world.client.get(f"/api/qa/evaluations/{manual['id']}", headers=as_ann).status_code == 200
    bobs_eval = world.client.get("/api/qa/my-evaluations", headers=as_bob).json()["evaluations"][0]["id"]
    for path in (f"/api/qa/evaluations/{bobs_eval}",):
        resp = world.client.get(path, headers=as_ann)
        assert resp.status_code == 404 and resp.json()["error_id"] == "evaluation-not-found"
    resp = world.client.post(f"/api/qa/evaluations/{bobs_eval}/disputes", json={"comment": "x"}, headers=as_ann)
    assert resp.status_code == 404

    url = f"/api/qa/evaluations/{manual['id']}/disputes"
    assert world.client.post(url, json={"comment": "  "}, headers=as_ann).status_code == 422
    opened = world.client.post(url, json={"comment": "I was very empathic"}, headers=as_ann)
    assert opened.status_code == 201, opened.text
    dispute = opened.json()
    assert dispute["status"] == "open" and dispute["agent"] == {"id": ann, "username": "ann"}
    assert dispute["evaluation"]["score"] == manual["score"] and dispute["call_id"] == call
    again = world.client.post(url, json={"comment": "again"}, headers=as_ann)
    assert again.status_code == 409 and again.json()["error_id"] == "dispute-open"
    assert world.client.post(url, json={"comment": "me too"}, headers=headers).status_code == 403  # agents only

    assert [d["id"] for d in world.client.get("/api/qa/disputes?status=open", headers=headers).json()] == [dispute["id"]]
    assert world.client.get("/api/qa/disputes?status=rejected", headers=headers).json() == []
    assert [d["id"] for d in world.client.get("/api/qa/disputes", headers=as_ann).json()] == [dispute["id"]]
    assert world.client.get("/api/qa/disputes", headers=as_bob).json() == []
    resolve = f"/api/qa/disputes/{dispute['id']}"
    assert world.client.put(resolve, json={"status": "accepted", "resolution": "ok"}, headers=as_ann).status_code == 403
    assert world.client.put(resolve, json={"status": "maybe", "resolution": "x"}, headers=headers).status_code == 422
    assert world.client.put(resolve, json={"status": "accepted", "resolution": ""}, headers=headers).status_code == 422
    done = world.client.put(resolve, json={"status": "accepted", "resolution": "re-scored empathy"}, headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "accepted" and done.json()["resolved_by"]["username"] == "qa"
    assert done.json()["resolved_at"] is not None
    twice = world.client.put(resolve, json={"status": "rejected", "resolution": "no"}, headers=headers)
    assert twice.status_code == 409 and twice.json()["error_id"] == "dispute-resolved"
    shown = world.client.get("/api/qa/my-evaluations", headers=as_ann).json()["evaluations"][0]["disputes"]
    assert [(d["status"], d["resolution"]) for d in shown] == [("accepted", "re-scored empathy")]
    assert world.client.post(url, json={"comment": "one more thing"}, headers=as_ann).status_code == 201  # resolved: a new one may open
    assert len(_audits(world.engine, "qa_dispute.create")) == 2
    assert len(_audits(world.engine, "qa_dispute.accepted")) == 1
    beta = world.login("admin", tenant="beta")
    assert world.client.put(resolve, json={"status": "rejected", "resolution": "x"}, headers=beta).status_code == 404


# -- reports -------------------------------------------------------------------------------

def test_reports_average_manual_scores_falling_back_to_auto(world: World) -> None:
    ann, _ = _agent(world, "ann")
    bob, _ = _agent(world, "bob")
    headers = world.login("qa")
    form = _only_test_form(world, headers)
    # ann: day 1 a good call (auto 100) reviewed by a person at 75, day 2 a good call only auto (100);
    # bob: day 1 a rude call (auto 0), day 8 a good call in "support" reviewed at 100 then at 50.
    a1 = _recorded_call(world.engine, world.tenant_a, ann, GOOD_CALL, at=DAY1)
    a2 = _recorded_call(world.engine, world.tenant_a, ann, GOOD_CALL, at=DAY2)
    b1 = _recorded_call(world.engine, world.tenant_a, bob, RUDE_CALL, at=DAY1)
    b8 = _recorded_call(world.engine, world.tenant_a, bob, GOOD_CALL, at=DAY8, queue="support")
    for call in (a1, a2, b1, b8):
        _auto(world.engine, world.tenant_a, call)

    def evaluate(call: str, **values: Any) -> float:
        resp = world.client.post(f"/api/qa/calls/{call}/evaluations",
                                 json={"form_id": form["id"], "answers": _answers(**values)}, headers=headers)
        assert resp.status_code == 201, resp.text
        return float(resp.json()["score"])

    a1_score = evaluate(a1, greeting={"value": "no", "comment": "mumbled"}, empathy=3)  # (0+10+20+10+5)/60
    assert a1_score == near(75.0)
    evaluate(b8)
    b8_score = evaluate(b8, empathy=1, hold={"value": "no", "comment": "long"})  # the newest counts: 40/60
    assert b8_score == near(200 / 3)

    def get(query: str) -> dict[str, Any]:
        resp = world.client.get(f"/api/qa/reports?{query}", headers=headers)
        assert resp.status_code == 200, resp.text
        return resp.json()

    by_agent = get("by=agent&interval=day&since=2025-03-01&until=2025-03-31")
    assert by_agent["periods"] == ["2025-03-03", "2025-03-04", "2025-03-10"]
    assert by_agent["sources"] == {"manual": 2, "auto": 2}
    series = {s["label"]: s for s in by_agent["series"]}
    assert series["ann"]["average"] == near((75 + 100) / 2)
    assert (series["ann"]["count"], series["ann"]["manual"], series["ann"]["auto"]) == (2, 1, 1)
    assert [(p["period"], p["average"], p["manual"], p["auto"]) for p in series["ann"]["points"]] == [
        ("2025-03-03", near(75.0), 1, 0), ("2025-03-04", near(100.0), 0, 1)]
    assert series["bob"]["average"] == near((0 + 200 / 3) / 2)
    assert [(p["period"], p["average"]) for p in series["bob"]["points"]] == [
        ("2025-03-03", near(0.0)), ("2025-03-10", near(200 / 3))]

    weekly = {s["label"]: s for s in get("by=agent&interval=week")["series"]}
    assert [(p["period"], p["average"], p["count"]) for p in weekly["ann"]["points"]] == [
        ("2025-03-03", near(87.5), 2)]

    by_queue = {s["label"]: s for s in get("by=queue&interval=week")["series"]}
    assert by_queue["sales"]["average"] == near((75 + 100 + 0) / 3)
    assert by_queue["support"]["average"] == near(200 / 3)

    by_question = {s["key"]: s for s in get("by=question&interval=day")["series"]}
    # greeting: a1 manual "no" 0, a2 auto yes 100, b1 auto no 0, b8 manual yes 100
    assert by_question["Test review/greeting"]["average"] == near(50.0)
    assert by_question["Test review/greeting"]["label"] == "Did the agent greet the caller?"
    # empathy: answered only by people (a1: 3 -> 50, b8: 1 -> 0)
    assert by_question["Test review/empathy"]["average"] == near(25.0)
    assert by_question["Test review/empathy"]["auto"] == 0

    only_day2 = get("by=agent&since=2025-03-04&until=2025-03-05")
    assert [(s["label"], s["average"]) for s in only_day2["series"]] == [("ann", near(100.0))]
    assert world.client.get("/api/qa/reports?by=colour", headers=headers).status_code == 422
    assert world.client.get("/api/qa/reports?since=yesterday", headers=headers).status_code == 422


# -- roles & tenants -------------------------------------------------------------------------

def test_agents_get_403_on_qa_endpoints_and_other_tenants_404(world: World) -> None:
    ann, as_ann = _agent(world, "ann")
    headers = world.login("qa")
    form = _only_test_form(world, headers)
    call = _recorded_call(world.engine, world.tenant_a, ann, GOOD_CALL)
    (auto_id,) = _auto(world.engine, world.tenant_a, call)
    qa_only = [("GET", "/api/qa/forms", None), ("POST", "/api/qa/forms", FORM), ("GET", f"/api/qa/forms/{form['id']}", None),
               ("PUT", f"/api/qa/forms/{form['id']}", FORM), ("DELETE", f"/api/qa/forms/{form['id']}", None),
               ("GET", "/api/qa/calls", None), ("GET", f"/api/qa/calls/{call}", None),
               ("POST", f"/api/qa/calls/{call}/evaluations", {"form_id": form["id"], "answers": _answers()}),
               ("GET", f"/api/qa/calls/{call}/calibration", None), ("GET", "/api/qa/reports", None),
               ("PUT", "/api/qa/disputes/1", {"status": "accepted", "resolution": "x"})]
    for method, path, body in qa_only:
        resp = world.client.request(method, path, json=body, headers=as_ann)
        assert resp.status_code == 403 and resp.json()["error_id"] == "forbidden", (method, path)
        assert world.client.request(method, path, json=body).status_code == 401, (method, path)
    # The agent role without an agent profile has nothing of its own.
    assert world.client.get("/api/qa/my-evaluations", headers=world.login("agent")).status_code == 403
    for role in ("qa", "supervisor", "admin"):
        assert world.client.get("/api/qa/my-evaluations", headers=world.login(role)).status_code == 403

    beta = world.login("admin", tenant="beta")
    for method, path, body in [("GET", f"/api/qa/forms/{form['id']}", None),
                               ("PUT", f"/api/qa/forms/{form['id']}", FORM),
                               ("DELETE", f"/api/qa/forms/{form['id']}", None),
                               ("GET", f"/api/qa/calls/{call}", None),
                               ("GET", f"/api/qa/calls/{call}/calibration", None),
                               ("GET", f"/api/qa/evaluations/{auto_id}", None),
                               ("POST", f"/api/qa/calls/{call}/evaluations",
                                {"form_id": form["id"], "answers": _answers()})]:
        resp = world.client.request(method, path, json=body, headers=beta)
        assert resp.status_code == 404, (method, path, resp.text)
    assert world.client.get("/api/qa/calls", headers=beta).json()["total"] == 0
    assert [f["name"] for f in world.client.get("/api/qa/forms", headers=beta).json()] != ["Test review"]
    beta_form = world.client.get("/api/qa/forms", headers=beta).json()[0]["id"]
    resp = world.client.post(f"/api/qa/calls/{call}/evaluations", json={"form_id": beta_form, "answers": {}},
                             headers=headers)
    assert resp.status_code == 404 and resp.json()["error_id"] == "form-not-found"  # beta's form, alpha's call
    with Session(world.engine) as db:
        assert db.scalar(select(QaForm.tenant_id).where(QaForm.id == beta_form)) == world.tenant_b


def test_the_page_and_its_files_are_public_and_whitelisted(world: World) -> None:
    page = world.client.get("/qa")
    assert page.status_code == 200 and 'src="/qa/static/qa.js"' in page.text
    assert world.client.get("/qa/static/qa.js").headers["content-type"].startswith(("text/javascript",
                                                                                     "application/javascript"))
    assert world.client.get("/qa/static/qa.css").status_code == 200
    for name in ("qa.html", "..%2F__init__.py", "nope.js"):
        assert world.client.get(f"/qa/static/{name}").status_code == 404
