"""Satisfaction ratings (``callcenter.csat``) and the report figures by channel: CSAT, chats handled and
abandoned, agents' first response, handle time and chats at once, checked against hand-computed values.

The data set (UTC, 2026-03-10, queue sales, agents a1 and a2 of tenant alpha):

  V1 call queued 10:00:00, a1 answers 10:00:10, hangs up 10:02:00 (handle 110), the caller rates 5 in
     the survey until 10:02:10
  V2 call queued 10:05:00, the caller hangs up 10:06:00 -> abandoned (60 s)
  H1 chat queued 10:10:30, a1 takes it 10:10:40 (no answered event: from the record), first answer
     10:10:50 (10 s), ends 10:20:40 (handle 600); rated 4
  H2 chat queued 10:12:05, a1 answers 10:15:00 (wait 175, an answered event), first answer 10:15:30
     (30 s), ends 10:17:00 (handle 120); rated 2
  H5 chat queued 10:13:00, a2 answers 10:13:10, ends 10:14:10 (handle 60); no agent message
  H3 chat queued 10:30:10, the visitor leaves 10:32:10 unanswered -> abandoned (120 s)
  H4 chat answered by the bot alone (never queued) -> not in the report
  beta: one rated chat alpha must never see.

a1's chats at once: H1 10:10:40-10:20:40 and H2 10:15:00-10:17:00 -> 720 chat-seconds in 600 s with a
chat (1.2 on average), at most 2; a2: H5, 60 s alone (1.0). Queue: 780 / 660 = 1.18, at most 2.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from callcenter import csat, reports, surveys
from callcenter.api.acd import create_agent
from callcenter.api.reports import build_report
from callcenter.flows import import_flow
from callcenter.models import (AcdQueue, CallEvent, CallRecord, ChatConversation, CsatResponse, IvrTrace, Tenant,
                               utcnow)

from .conftest import World, add_tenant

UTC = timezone.utc
DAY = {"since": "2026-03-10T00:00:00", "until": "2026-03-11T00:00:00", "tz": "UTC"}


def at(hms: str) -> datetime:
    h, m, s = (int(x) for x in hms.split(":"))
    return datetime(2026, 3, 10, h, m, s, tzinfo=UTC)


def _voice(db: Session, tenant_id: int, call_id: str, queued: datetime, ended: datetime, hangup: str,
           agent_id: int | None = None, answered: datetime | None = None) -> None:
    received = queued - timedelta(seconds=20)
    db.add(CallRecord(id=call_id, sip_call_id=f"sip-{call_id}", tenant_id=tenant_id, direction="inbound",
                      caller="13800138000", dialed="4001234567", received_at=received, answered_at=received,
                      ended_at=ended, hangup_side=hangup, agent_id=agent_id, queue="sales" if agent_id else None))
    db.flush()
    db.add(IvrTrace(call_id=call_id, tenant_id=tenant_id, result="queue: sales", updated_at=queued,
                    trace={"steps": [{"node": "q", "type": "queue", "at": queued.isoformat(), "exit": "queue: sales"}]}))
    if answered is not None:
        db.add(CallEvent(call_id=call_id, tenant_id=tenant_id, at=answered, kind="answered", agent_id=agent_id,
                         detail={"queue": "sales"}))


def _chat(db: Session, tenant_id: int, chat_id: str, received: datetime, *, queued: datetime | None,
          answered: datetime | None = None, agent_id: int | None = None, first_response: datetime | None = None,
          ended: datetime, end_cause: str = "agent_ended", answered_event: bool = False) -> None:
    db.add(ChatConversation(id=chat_id, tenant_id=tenant_id, visitor_id=f"v-{chat_id}", queue="sales",
                            status="ended", agent_id=agent_id, created_at=received, answered_at=answered,
                            first_response_at=first_response, ended_at=ended, end_cause=end_cause))
    db.flush()
    db.add(CallRecord(id=chat_id, sip_call_id=f"chat-{chat_id}", tenant_id=tenant_id, direction="inbound",
                      caller="", dialed="web", received_at=received, answered_at=answered, ended_at=ended,
                      agent_id=agent_id, queue="sales", channel="chat"))
    db.flush()
    if queued is not None:
        db.add(CallEvent(call_id=chat_id, tenant_id=tenant_id, at=queued, kind="queued", detail={"queue": "sales"}))
    if answered_event:
        db.add(CallEvent(call_id=chat_id, tenant_id=tenant_id, at=answered, kind="answered", agent_id=agent_id,
                         detail={"queue": "sales"}))


@pytest.fixture
def contacts(engine: Engine) -> dict[str, int]:
    alpha, beta = add_tenant(engine, "alpha"), add_tenant(engine, "beta")
    with Session(engine) as db, db.begin():
        tenant = db.get(Tenant, alpha)
        assert tenant is not None
        db.add(AcdQueue(tenant_id=alpha, name="sales", config={}))
        a1, _, _ = create_agent(db, tenant, "a1", {"sales": 5})
        a2, _, _ = create_agent(db, tenant, "a2", {"sales": 5})
        _voice(db, alpha, "V1", at("10:00:00"), at("10:02:10"), "platform", a1.id, at("10:00:10"))
        db.add(CallEvent(call_id="V1", tenant_id=alpha, at=at("10:02:00"), kind="survey", agent_id=a1.id,
                         detail={"flow": "demo-survey"}))
        _voice(db, alpha, "V2", at("10:05:00"), at("10:06:00"), "caller")
        _chat(db, alpha, "H1", at("10:10:00"), queued=at("10:10:30"), answered=at("10:10:40"), agent_id=a1.id,
              first_response=at("10:10:50"), ended=at("10:20:40"))
        _chat(db, alpha, "H2", at("10:12:00"), queued=at("10:12:05"), answered=at("10:15:00"), agent_id=a1.id,
              first_response=at("10:15:30"), ended=at("10:17:00"), answered_event=True)
        _chat(db, alpha, "H5", at("10:12:50"), queued=at("10:13:00"), answered=at("10:13:10"), agent_id=a2.id,
              ended=at("10:14:10"))
        _chat(db, alpha, "H3", at("10:30:00"), queued=at("10:30:10"), ended=at("10:32:10"), end_cause="visitor_left")
        _chat(db, alpha, "H4", at("10:40:00"), queued=None, ended=at("10:41:00"), end_cause="visitor_ended")
        _chat(db, beta, "B1", at("10:10:00"), queued=at("10:10:05"), answered=at("10:10:10"),
              ended=at("10:11:00"))
        for contact, rating in (("V1", 5), ("H1", 4), ("H2", 2)):
            csat.record_rating(db, tenant_id=alpha, contact_id=contact, rating=rating,
                               channel="chat" if contact.startswith("H") else "voice")
        csat.record_rating(db, tenant_id=beta, contact_id="B1", channel="chat", rating=1)
        return {"alpha": alpha, "beta": beta, "a1": a1.id, "a2": a2.id}


def _report(engine: Engine, tenant_id: int, **kwargs: Any) -> dict[str, Any]:
    with Session(engine) as db:
        return build_report(db, tenant_id, interval="60", since=at("00:00:00"), until=at("00:00:00") + timedelta(days=1),
                            tz=ZoneInfo("UTC"), sl_threshold=20.0, short_abandon=5.0, **kwargs)


def _ten(body: dict[str, Any], **match: Any) -> dict[str, Any]:
    return next(r for r in body["rows"] if r["interval_start"] == "2026-03-10T10:00:00+00:00"
                and all(r.get(k) == v for k, v in match.items()))


def test_queue_rows_split_by_channel(engine: Engine, contacts: dict[str, int]) -> None:
    body = _report(engine, contacts["alpha"], by="queue", by_channel=True)
    voice, chat = _ten(body, queue="sales", channel="voice"), _ten(body, queue="sales", channel="chat")
    assert {k: voice[k] for k in ("CONTACTS_QUEUED", "CONTACTS_HANDLED", "CONTACTS_ABANDONED", "AVG_HANDLE_TIME",
                                  *reports.CSAT_METRICS, *reports.CHAT_METRICS)} == {
        "CONTACTS_QUEUED": 2, "CONTACTS_HANDLED": 1, "CONTACTS_ABANDONED": 1, "AVG_HANDLE_TIME": 110.0,
        "CSAT_AVERAGE": 5.0, "CSAT_RESPONSES": 1, "CSAT_RESPONSE_RATE": 100.0,
        "AVG_FIRST_RESPONSE_TIME_AGENT": None, "AVG_CHAT_CONCURRENCY": None, "MAX_CHAT_CONCURRENCY": 0}
    assert {k: chat[k] for k in ("CONTACTS_QUEUED", "CONTACTS_HANDLED", "CONTACTS_ABANDONED", "AVG_QUEUE_ANSWER_TIME",
                                 "SERVICE_LEVEL", "AVG_HANDLE_TIME", "OCCUPANCY", *reports.CSAT_METRICS,
                                 *reports.CHAT_METRICS)} == {
        "CONTACTS_QUEUED": 4, "CONTACTS_HANDLED": 3, "CONTACTS_ABANDONED": 1, "AVG_QUEUE_ANSWER_TIME": 65.0,
        "SERVICE_LEVEL": 50.0, "AVG_HANDLE_TIME": 260.0, "OCCUPANCY": None,
        "CSAT_AVERAGE": 3.0, "CSAT_RESPONSES": 2, "CSAT_RESPONSE_RATE": 66.67,
        "AVG_FIRST_RESPONSE_TIME_AGENT": 20.0, "AVG_CHAT_CONCURRENCY": 1.18, "MAX_CHAT_CONCURRENCY": 2}
    total = next(t for t in body["totals"] if t["queue"] == "sales" and t["channel"] == "chat")
    assert (total["CONTACTS_HANDLED"], total["MAX_CHAT_CONCURRENCY"], total["CSAT_RESPONSES"]) == (3, 2, 2)


def test_both_channels_in_one_row_and_one_channel_alone(engine: Engine, contacts: dict[str, int]) -> None:
    both = _ten(_report(engine, contacts["alpha"], by="queue"), queue="sales")
    assert "channel" not in both
    assert (both["CONTACTS_QUEUED"], both["CONTACTS_HANDLED"], both["CONTACTS_ABANDONED"]) == (6, 4, 2)
    assert (both["CSAT_AVERAGE"], both["CSAT_RESPONSES"], both["CSAT_RESPONSE_RATE"]) == (3.67, 3, 75.0)
    chats = _ten(_report(engine, contacts["alpha"], by="queue", channel="chat"), queue="sales")
    assert (chats["CONTACTS_QUEUED"], chats["CSAT_RESPONSES"], chats["OCCUPANCY"]) == (4, 2, None)


def test_agent_rows_by_channel(engine: Engine, contacts: dict[str, int]) -> None:
    body = _report(engine, contacts["alpha"], by="agent", by_channel=True)
    a1_chat = _ten(body, agent_id=contacts["a1"], channel="chat")
    assert a1_chat["agent"] == "a1"
    assert {k: a1_chat[k] for k in ("CONTACTS_HANDLED", "AVG_HANDLE_TIME", *reports.CSAT_METRICS,
                                    *reports.CHAT_METRICS)} == {
        "CONTACTS_HANDLED": 2, "AVG_HANDLE_TIME": 360.0, "CSAT_AVERAGE": 3.0, "CSAT_RESPONSES": 2,
        "CSAT_RESPONSE_RATE": 100.0, "AVG_FIRST_RESPONSE_TIME_AGENT": 20.0, "AVG_CHAT_CONCURRENCY": 1.2,
        "MAX_CHAT_CONCURRENCY": 2}
    a1_voice = _ten(body, agent_id=contacts["a1"], channel="voice")
    assert (a1_voice["CONTACTS_HANDLED"], a1_voice["CSAT_AVERAGE"], a1_voice["MAX_CHAT_CONCURRENCY"]) == (1, 5.0, 0)
    a2_chat = _ten(body, agent_id=contacts["a2"], channel="chat")
    assert (a2_chat["CONTACTS_HANDLED"], a2_chat["AVG_CHAT_CONCURRENCY"], a2_chat["MAX_CHAT_CONCURRENCY"]) == \
        (1, 1.0, 1)


def test_chat_load_splits_at_bucket_edges() -> None:
    spans = reports.buckets(at("10:00:00"), at("12:00:00"), UTC, "60")
    loads = reports.chat_load([(at("10:50:00"), at("11:10:00")), (at("10:55:00"), at("11:00:00")),
                               (at("11:00:00"), at("11:05:00"))], spans)
    # 10:50-10:55 one, 10:55-11:00 two; 11:00-11:05 two (the one ending at 11:00 does not overlap), 11:05-11:10 one
    assert loads == [reports.ChatLoad(900.0, 600.0, 2), reports.ChatLoad(900.0, 600.0, 2)]


def test_report_api_csv_by_channel_and_tenants_apart(world: World) -> None:
    alpha = world.tenant_a
    with Session(world.engine) as db, db.begin():
        db.add(AcdQueue(tenant_id=alpha, name="sales", config={}))
        _chat(db, alpha, "H1", at("10:10:00"), queued=at("10:10:30"), answered=at("10:10:40"), ended=at("10:20:40"))
        _chat(db, world.tenant_b, "B1", at("10:10:00"), queued=at("10:10:05"), ended=at("10:11:00"))
        csat.record_rating(db, tenant_id=alpha, contact_id="H1", channel="chat", rating=4)
        with pytest.raises(LookupError):  # another tenant's contact
            csat.record_rating(db, tenant_id=alpha, contact_id="B1", channel="chat", rating=4)
    resp = world.client.get("/api/reports/intervals", params={**DAY, "by_channel": "true", "format": "csv"},
                            headers=world.login("supervisor"))
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0] == ["interval_start", "interval_end", "queue", "channel", *reports.METRICS]
    ten = {r[3]: dict(zip(rows[0], r)) for r in rows if r[0] == "2026-03-10T10:00:00+00:00"}
    assert set(ten) == {"voice", "chat"}
    assert (ten["chat"]["CONTACTS_QUEUED"], ten["chat"]["CSAT_AVERAGE"], ten["voice"]["CONTACTS_QUEUED"]) == \
        ("1", "4.0", "0")
    beta = world.client.get("/api/reports/intervals", params=DAY, headers=world.login("admin", tenant="beta")).json()
    assert all(r["CSAT_RESPONSES"] == 0 for r in beta["rows"])


def test_one_rating_per_contact_and_bounds(engine: Engine, contacts: dict[str, int]) -> None:
    with Session(engine) as db:
        with pytest.raises(csat.AlreadyRated, match="already been rated"):
            csat.record_rating(db, tenant_id=contacts["alpha"], contact_id="H1", channel="chat", rating=5)
        h5: dict[str, Any] = {"tenant_id": contacts["alpha"], "contact_id": "H5", "channel": "chat"}
        bad_ratings: tuple[Any, ...] = (0, 6, 4.5, True, "5")  # what a client may send
        for bad in bad_ratings:
            with pytest.raises(ValueError, match="whole number from 1 to 5"):
                csat.record_rating(db, **h5, rating=bad)
        with pytest.raises(ValueError, match="channel"):
            csat.record_rating(db, tenant_id=contacts["alpha"], contact_id="H5", channel="email", rating=3)
        row = csat.record_rating(db, tenant_id=contacts["alpha"], contact_id="H5", channel="chat", rating=3,
                                 comment="  快  ")
        assert (row.agent_id, row.queue, row.comment) == (contacts["a2"], "sales", "快")  # from the record


def test_today_csat_in_the_tenants_day(engine: Engine, contacts: dict[str, int]) -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    now = utcnow()
    with Session(engine) as db, db.begin():
        start, _ = csat.local_day(shanghai, now)
        db.add(CsatResponse(tenant_id=contacts["alpha"], contact_id="H5", channel="chat", queue="sales", rating=1,
                            created_at=start - timedelta(seconds=1)))  # yesterday there: not counted
    with Session(engine) as db:
        today = csat.today_csat(db, contacts["alpha"], "Asia/Shanghai", now)
    assert (today["CSAT_AVERAGE"], today["CSAT_RESPONSES"]) == (3.67, 3)
    assert today["channels"] == {"voice": {"CSAT_AVERAGE": 5.0, "CSAT_RESPONSES": 1},
                                 "chat": {"CSAT_AVERAGE": 3.0, "CSAT_RESPONSES": 2}}
    assert today["queues"] == [{"queue": "sales", "CSAT_AVERAGE": 3.67, "CSAT_RESPONSES": 3}]


def test_the_tenant_admin_picks_the_survey_flow(world: World) -> None:
    survey = {"name": "survey", "start": "r", "nodes": [{"id": "r", "type": "survey", "prompt": "Rate us."}]}
    with Session(world.engine) as db, db.begin():
        import_flow(db, world.tenant_a, survey, frozenset())
        newest = import_flow(db, world.tenant_a, survey, frozenset())
    admin = world.login("admin")
    resp = world.client.patch("/api/tenant", json={"survey_flow": "nope"}, headers=admin)
    assert (resp.status_code, resp.json()["error_id"], resp.json()["params"]) == (422, "unknown-flow", {"flow": "nope"})
    assert world.client.patch("/api/tenant", json={"survey_flow": "survey"}, headers=admin).json()["survey_flow"] \
        == "survey"
    with Session(world.engine) as db:
        assert surveys.survey_version(db, world.tenant_a) == newest.version_id
        assert surveys.survey_version(db, world.tenant_b) is None
    assert world.client.patch("/api/tenant", json={"name": "Alpha Co"}, headers=admin).json()["survey_flow"] == "survey"
    assert world.client.patch("/api/tenant", json={"survey_flow": None}, headers=admin).json()["survey_flow"] is None
    assert world.client.patch("/api/tenant", json={"survey_flow": "survey"},
                              headers=world.login("supervisor")).status_code == 403
