"""Interval reports and call search: figures checked against hand-computed expectations.

The data set (all times local Asia/Seoul, UTC+9, on 2026-03-10 unless said otherwise):

sales (agent a1 has the skill):
  C1 queued 09:00:00, a1 answers 09:00:10 (wait 10), hold 09:01:00-09:01:30, ends 09:03:10,
     a1 wrap_up 09:03:10-09:03:40   -> talk 150, hold 30, acw 30, handle 210; SL met
  C2 queued 09:10:00, a1 misses it 09:10:15 (ring-no-answer), answers 09:10:30 (wait 30, SL missed),
     ends 09:12:30, wrap_up 09:12:30-09:12:50 -> talk 120, acw 20, handle 140
  C3 queued 09:20:00, caller hangs up 09:20:03 (trace ``abandoned`` event) -> short abandon (3 <= 5)
  C4 queued 09:30:00, caller hangs up 09:31:00 (no trace event, hangup_side caller) -> abandoned (60)
  C9 queued 2026-03-09 23:59:00 -> before the report range
support (a1 and a2 have the skill):
  C5 queued 09:40:00, a1 declines 09:40:03, a2 answers 09:40:05 (wait 5), transfers to a1 at 09:42:05,
     a2 wrap_up 09:42:05-09:42:15; a1 answers 09:42:20, call ends 09:44:20, a1 wrap_up 09:44:20-09:44:30
     -> a2 leg talk 120 acw 10 (130), a1 leg talk 120 acw 10 (130); call handle 260, transferred
  C6 queued 09:59:50 (spans the 10:00 boundary), a2 answers 10:00:05 (wait 15), ends 10:05:05,
     wrap_up 10:05:05-10:05:25 -> talk 300, acw 20, handle 320; belongs to the 09:00 hour
  C7 queued 23:59:58 (local midnight), a2 answers 2026-03-11 00:00:08 (wait 10), ends 00:01:08, no ACW
  C8 queued 2026-03-11 00:00:30, sent to voicemail at 00:02:00 (platform) -> offered only
tenant beta: one sales call at 09:05 that alpha must never see.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from callcenter import reports
from callcenter.api.acd import create_agent
from callcenter.models import AcdQueue, AgentStateChange, CallEvent, CallRecord, IvrTrace, Tenant

from .conftest import World

SEOUL = ZoneInfo("Asia/Seoul")


def kst(hms: str, day: int = 10) -> datetime:
    h, m, s = (int(x) for x in hms.split(":"))
    return datetime(2026, 3, day, h, m, s, tzinfo=SEOUL).astimezone(timezone.utc)


def _call(db: Session, tenant_id: int, call_id: str, queue: str, queued: datetime, ended: datetime | None,
          hangup: str | None, *, events: Sequence[tuple[str, datetime, int | None, dict[str, Any] | None]] = (),
          abandoned_at: datetime | None = None, agent_id: int | None = None, disposition: str | None = None,
          caller: str = "+821012345678", trace: bool = True) -> None:
    received = queued - timedelta(seconds=20)
    db.add(CallRecord(id=call_id, sip_call_id=f"sip-{call_id}", tenant_id=tenant_id, direction="inbound",
                      caller=caller, dialed="4001234567", received_at=received,
                      answered_at=received + timedelta(seconds=1), ended_at=ended,
                      end_cause="normal_clearing" if ended else None, hangup_side=hangup, agent_id=agent_id,
                      queue=queue if agent_id else None, disposition=disposition))
    db.flush()
    if trace:
        step: dict[str, Any] = {"node": "q", "type": "queue", "at": queued.isoformat(), "exit": f"queue: {queue}"}
        if abandoned_at is not None:
            step["events"] = [{"event": "abandoned", "at": abandoned_at.isoformat(), "queue": queue}]
        db.add(IvrTrace(call_id=call_id, tenant_id=tenant_id, result=f"queue: {queue}", updated_at=queued,
                        trace={"flow": "main", "version": 1, "result": f"queue: {queue}",
                               "steps": [{"node": "start", "type": "menu", "at": received.isoformat()}, step]}))
    for kind, at, agent, detail in events:
        db.add(CallEvent(call_id=call_id, tenant_id=tenant_id, at=at, kind=kind, agent_id=agent, detail=detail))


def _states(db: Session, tenant_id: int, agent_id: int, changes: list[tuple[str, str, datetime]]) -> None:
    for old, new, at in changes:
        db.add(AgentStateChange(tenant_id=tenant_id, agent_id=agent_id, old_state=old, new_state=new, at=at,
                                reason=None))


@pytest.fixture
def data(world: World) -> dict[str, int]:
    with Session(world.engine) as db:
        alpha = db.get(Tenant, world.tenant_a)
        beta = db.get(Tenant, world.tenant_b)
        assert alpha is not None and beta is not None
        for name in ("sales", "support"):
            db.add(AcdQueue(tenant_id=alpha.id, name=name, config={}))
        db.add(AcdQueue(tenant_id=beta.id, name="sales", config={}))
        a1, _, _ = create_agent(db, alpha, "a1", {"sales": 5, "support": 2})
        a2, _, _ = create_agent(db, alpha, "a2", {"support": 4})
        b1, _, _ = create_agent(db, beta, "b1", {"sales": 5})
        t = alpha.id
        _call(db, t, "C1", "sales", kst("09:00:00"), kst("09:03:10"), "caller", agent_id=a1.id,
              disposition="resolved", caller="+821011110001",
              events=[("answered", kst("09:00:10"), a1.id, {"queue": "sales"}),
                      ("hold", kst("09:01:00"), a1.id, None), ("unhold", kst("09:01:30"), a1.id, None),
                      ("wrapup", kst("09:03:35"), a1.id, {"disposition": "resolved"})])
        _call(db, t, "C2", "sales", kst("09:10:00"), kst("09:12:30"), "callee", agent_id=a1.id,
              disposition="follow_up", caller="+821011110002",
              events=[("missed", kst("09:10:15"), a1.id, {"queue": "sales", "reason": "no_answer"}),
                      ("answered", kst("09:10:30"), a1.id, {"queue": "sales"})])
        _call(db, t, "C3", "sales", kst("09:20:00"), kst("09:20:03"), "caller", abandoned_at=kst("09:20:03"),
              caller="+821011110003")
        _call(db, t, "C4", "sales", kst("09:30:00"), kst("09:31:00"), "caller", caller="+821011110004")
        _call(db, t, "C9", "sales", kst("23:59:00", day=9), kst("23:59:30", day=9), "caller", caller="+82109")
        _call(db, t, "C5", "support", kst("09:40:00"), kst("09:44:20"), "caller", agent_id=a1.id,
              caller="+821011110005",
              events=[("declined", kst("09:40:03"), a1.id, {"queue": "support", "reason": "declined"}),
                      ("answered", kst("09:40:05"), a2.id, {"queue": "support"}),
                      ("transfer", kst("09:42:05"), a2.id, {"to": "agent", "target": "a1"}),
                      ("answered", kst("09:42:20"), a1.id, {"queue": "agent:x"})])
        _call(db, t, "C6", "support", kst("09:59:50"), kst("10:05:05"), "caller", agent_id=a2.id,
              caller="+821011110006", events=[("answered", kst("10:00:05"), a2.id, {"queue": "support"})])
        _call(db, t, "C7", "support", kst("23:59:58"), kst("00:01:08", day=11), "caller", agent_id=a2.id,
              caller="+821011110007", events=[("answered", kst("00:00:08", day=11), a2.id, {"queue": "support"})])
        _call(db, t, "C8", "support", kst("00:00:30", day=11), kst("00:02:00", day=11), "platform",
              caller="+821011110008")
        _call(db, beta.id, "B1", "sales", kst("09:05:00"), kst("09:06:00"), "caller", agent_id=b1.id,
              caller="+821011110001", disposition="resolved",
              events=[("answered", kst("09:05:02"), b1.id, {"queue": "sales"})])
        _states(db, t, a1.id, [
            ("offline", "available", kst("08:50:00")),
            ("available", "reserved", kst("09:00:05")), ("reserved", "on_call", kst("09:00:10")),
            ("on_call", "wrap_up", kst("09:03:10")), ("wrap_up", "available", kst("09:03:40")),
            ("available", "reserved", kst("09:10:05")), ("reserved", "break", kst("09:10:15")),
            ("break", "available", kst("09:10:20")), ("available", "reserved", kst("09:10:25")),
            ("reserved", "on_call", kst("09:10:30")), ("on_call", "wrap_up", kst("09:12:30")),
            ("wrap_up", "available", kst("09:12:50")),
            ("available", "reserved", kst("09:40:01")), ("reserved", "break", kst("09:40:03")),
            ("break", "available", kst("09:40:10")),
            ("available", "reserved", kst("09:42:15")), ("reserved", "on_call", kst("09:42:20")),
            ("on_call", "wrap_up", kst("09:44:20")), ("wrap_up", "available", kst("09:44:30")),
            ("available", "offline", kst("09:50:00")),
        ])
        _states(db, t, a2.id, [
            ("offline", "available", kst("09:30:00")),
            ("available", "reserved", kst("09:40:00")), ("reserved", "on_call", kst("09:40:05")),
            ("on_call", "wrap_up", kst("09:42:05")), ("wrap_up", "available", kst("09:42:15")),
            ("available", "reserved", kst("09:59:55")), ("reserved", "on_call", kst("10:00:05")),
            ("on_call", "wrap_up", kst("10:05:05")), ("wrap_up", "available", kst("10:05:25")),
            ("available", "reserved", kst("23:59:59")), ("reserved", "on_call", kst("00:00:08", day=11)),
            ("on_call", "wrap_up", kst("00:01:08", day=11)), ("wrap_up", "available", kst("00:01:08", day=11)),
            ("available", "offline", kst("00:30:00", day=11)),
        ])
        _states(db, beta.id, b1.id, [("offline", "available", kst("09:00:00")),
                                     ("available", "on_call", kst("09:05:02"))])
        db.commit()
        return {"a1": a1.id, "a2": a2.id, "b1": b1.id}


def _get(world: World, path: str, role: str = "supervisor", **params: Any) -> Any:
    resp = world.client.get(path, params=params, headers=world.login(role))
    assert resp.status_code == 200, resp.text
    return resp


def _rows(body: dict[str, Any], key: str, value: Any) -> dict[str, dict[str, Any]]:
    return {r["interval_start"]: r for r in body["rows"] if r[key] == value}


DAY = {"since": "2026-03-10T00:00:00", "until": "2026-03-11T00:00:00", "tz": "Asia/Seoul"}


def test_hourly_queue_report(world: World, data: dict[str, int]) -> None:
    body = _get(world, "/api/reports/intervals", by="queue", interval="60", **DAY).json()
    assert body["tz"] == "Asia/Seoul" and body["since"] == "2026-03-10T00:00:00+09:00"
    assert len(body["rows"]) == 24 * 2  # every hour for both configured queues
    sales = _rows(body, "queue", "sales")
    assert list(sales)[0] == "2026-03-10T00:00:00+09:00"
    nine = sales["2026-03-10T09:00:00+09:00"]
    assert nine["interval_end"] == "2026-03-10T10:00:00+09:00"
    assert {k: nine[k] for k in reports.QUEUE_METRICS} == {
        "CONTACTS_QUEUED": 4, "CONTACTS_HANDLED": 2, "CONTACTS_ABANDONED": 1, "CONTACTS_ABANDONED_SHORT": 1,
        "AVG_QUEUE_ANSWER_TIME": 20.0,          # (10 + 30) / 2
        "AVG_HANDLE_TIME": 175.0,               # (210 + 140) / 2
        "SUM_TALK_TIME": 270.0, "SUM_HOLD_TIME": 30.0, "SUM_AFTER_CONTACT_WORK_TIME": 50.0,
        "SERVICE_LEVEL": 33.33,                 # 1 within 20 s / (4 - 1 short abandon)
        "OCCUPANCY": 16.21,                     # a1: busy 480 / (480 + idle 2481)
        "CONTACTS_TRANSFERRED_OUT": 0, "AGENT_NON_RESPONSE": 1,
    }
    assert sales["2026-03-10T08:00:00+09:00"]["OCCUPANCY"] == 0.0  # a1 available 08:50-09:00
    assert sales["2026-03-10T08:00:00+09:00"]["SERVICE_LEVEL"] is None
    support = _rows(body, "queue", "support")
    assert {k: support["2026-03-10T09:00:00+09:00"][k] for k in reports.QUEUE_METRICS} == {
        "CONTACTS_QUEUED": 2, "CONTACTS_HANDLED": 2, "CONTACTS_ABANDONED": 0, "CONTACTS_ABANDONED_SHORT": 0,
        "AVG_QUEUE_ANSWER_TIME": 10.0,          # (5 + 15) / 2
        "AVG_HANDLE_TIME": 290.0,               # (260 + 320) / 2
        "SUM_TALK_TIME": 540.0, "SUM_HOLD_TIME": 0.0, "SUM_AFTER_CONTACT_WORK_TIME": 40.0,
        "SERVICE_LEVEL": 100.0,
        "OCCUPANCY": 12.84,                     # a1 + a2: 610 / (610 + 4141)
        "CONTACTS_TRANSFERRED_OUT": 1, "AGENT_NON_RESPONSE": 1,
    }
    ten = support["2026-03-10T10:00:00+09:00"]  # C6's talk happens here, but C6 belongs to 09:00
    assert ten["CONTACTS_QUEUED"] == 0 and ten["CONTACTS_HANDLED"] == 0 and ten["AVG_HANDLE_TIME"] is None
    assert ten["OCCUPANCY"] == 8.9  # a2: on_call 300 + wrap 20 / (320 + available 3275)
    eleven_pm = support["2026-03-10T23:00:00+09:00"]
    assert eleven_pm["CONTACTS_QUEUED"] == 1 and eleven_pm["CONTACTS_HANDLED"] == 1  # C7, 23:59:58
    assert eleven_pm["AVG_QUEUE_ANSWER_TIME"] == 10.0 and eleven_pm["AVG_HANDLE_TIME"] == 60.0
    totals = {t["queue"]: t for t in body["totals"]}
    assert totals["sales"]["CONTACTS_QUEUED"] == 4  # C9 (the day before) is outside the range
    assert totals["support"]["CONTACTS_QUEUED"] == 3 and totals["support"]["CONTACTS_HANDLED"] == 3
    assert totals["support"]["AVG_HANDLE_TIME"] == 213.33  # (260 + 320 + 60) / 3


def test_quarter_hours_and_interval_boundary(world: World, data: dict[str, int]) -> None:
    body = _get(world, "/api/reports/intervals", by="queue", interval="15", tz="Asia/Seoul",
                since="2026-03-10T09:00:00", until="2026-03-10T10:00:00").json()
    sales = _rows(body, "queue", "sales")
    support = _rows(body, "queue", "support")
    assert list(sales) == [f"2026-03-10T09:{m:02d}:00+09:00" for m in (0, 15, 30, 45)]
    assert [sales[k]["CONTACTS_QUEUED"] for k in sales] == [2, 1, 1, 0]
    assert sales["2026-03-10T09:15:00+09:00"]["CONTACTS_ABANDONED_SHORT"] == 1
    assert sales["2026-03-10T09:30:00+09:00"]["CONTACTS_ABANDONED"] == 1
    assert sales["2026-03-10T09:30:00+09:00"]["SERVICE_LEVEL"] == 0.0
    assert [support[k]["CONTACTS_QUEUED"] for k in support] == [0, 0, 1, 1]
    last = support["2026-03-10T09:45:00+09:00"]  # C6 queued 09:59:50, answered 10:00:05
    assert last["CONTACTS_HANDLED"] == 1 and last["AVG_QUEUE_ANSWER_TIME"] == 15.0
    assert last["AVG_HANDLE_TIME"] == 320.0 and last["SERVICE_LEVEL"] == 100.0
    # occupancy is time-based: a2 in 09:45-10:00 is available 09:45:00-09:59:55 (895 s), then reserved
    assert last["OCCUPANCY"] == 0.0


def test_day_report_follows_local_midnight(world: World, data: dict[str, int]) -> None:
    body = _get(world, "/api/reports/intervals", by="queue", interval="day", tz="Asia/Seoul",
                since="2026-03-10T00:00:00", until="2026-03-12T00:00:00").json()
    support = _rows(body, "queue", "support")
    assert list(support) == ["2026-03-10T00:00:00+09:00", "2026-03-11T00:00:00+09:00"]
    d10, d11 = support.values()
    assert (d10["CONTACTS_QUEUED"], d10["CONTACTS_HANDLED"], d10["AVG_QUEUE_ANSWER_TIME"]) == (3, 3, 10.0)
    assert d10["SERVICE_LEVEL"] == 100.0 and d10["CONTACTS_TRANSFERRED_OUT"] == 1
    # C8 (voicemail) is offered but neither handled nor abandoned
    assert (d11["CONTACTS_QUEUED"], d11["CONTACTS_HANDLED"], d11["CONTACTS_ABANDONED"]) == (1, 0, 0)
    assert d11["SERVICE_LEVEL"] == 0.0 and d11["AVG_QUEUE_ANSWER_TIME"] is None
    # the same calls by UTC day: 2026-03-10 UTC is 09:00 KST on the 10th to 09:00 KST on the 11th
    utc = _get(world, "/api/reports/intervals", by="queue", interval="day", tz="UTC",
               since="2026-03-10T00:00:00", until="2026-03-11T00:00:00").json()
    assert _rows(utc, "queue", "support")["2026-03-10T00:00:00+00:00"]["CONTACTS_QUEUED"] == 4
    # an offset in since/until is honoured whatever tz says
    same = _get(world, "/api/reports/intervals", by="queue", interval="day", tz="Asia/Seoul",
                since="2026-03-09T15:00:00Z", until="2026-03-10T15:00:00Z").json()
    assert _rows(same, "queue", "support")["2026-03-10T00:00:00+09:00"] == d10


def test_agent_report(world: World, data: dict[str, int]) -> None:
    body = _get(world, "/api/reports/intervals", by="agent", interval="60", **DAY).json()
    a1 = _rows(body, "agent_id", data["a1"])["2026-03-10T09:00:00+09:00"]
    a2 = _rows(body, "agent_id", data["a2"])["2026-03-10T09:00:00+09:00"]
    assert a1["agent"] == "a1" and a2["agent"] == "a2"
    assert {k: a1[k] for k in reports.QUEUE_METRICS} == {
        "CONTACTS_QUEUED": None, "CONTACTS_HANDLED": 3, "CONTACTS_ABANDONED": None,
        "CONTACTS_ABANDONED_SHORT": None,
        "AVG_QUEUE_ANSWER_TIME": 60.0,          # (10 + 30 + 140) / 3, C5 measured from its queue entry
        "AVG_HANDLE_TIME": 160.0,               # (210 + 140 + 130) / 3
        "SUM_TALK_TIME": 390.0, "SUM_HOLD_TIME": 30.0, "SUM_AFTER_CONTACT_WORK_TIME": 60.0,
        "SERVICE_LEVEL": None, "OCCUPANCY": 16.21, "CONTACTS_TRANSFERRED_OUT": 0,
        "AGENT_NON_RESPONSE": 2,                # missed C2, declined C5
    }
    assert {k: a2[k] for k in reports.QUEUE_METRICS} == {
        "CONTACTS_QUEUED": None, "CONTACTS_HANDLED": 2, "CONTACTS_ABANDONED": None,
        "CONTACTS_ABANDONED_SHORT": None,
        "AVG_QUEUE_ANSWER_TIME": 10.0, "AVG_HANDLE_TIME": 225.0,  # (130 + 320) / 2
        "SUM_TALK_TIME": 420.0, "SUM_HOLD_TIME": 0.0, "SUM_AFTER_CONTACT_WORK_TIME": 30.0,
        "SERVICE_LEVEL": None, "OCCUPANCY": 7.26,  # 130 / (130 + 1660)
        "CONTACTS_TRANSFERRED_OUT": 1, "AGENT_NON_RESPONSE": 0,
    }
    assert data["b1"] not in {r["agent_id"] for r in body["rows"]}
    day = _get(world, "/api/reports/intervals", by="agent", interval="day", tz="Asia/Seoul",
               since="2026-03-10T00:00:00", until="2026-03-12T00:00:00").json()
    a2_days = _rows(day, "agent_id", data["a2"])
    assert a2_days["2026-03-10T00:00:00+09:00"]["CONTACTS_HANDLED"] == 3  # C5, C6, C7 (queued 23:59:58)
    assert a2_days["2026-03-10T00:00:00+09:00"]["OCCUPANCY"] == 0.86     # 450 / (450 + 51734)
    assert a2_days["2026-03-11T00:00:00+09:00"]["CONTACTS_HANDLED"] == 0
    assert a2_days["2026-03-11T00:00:00+09:00"]["OCCUPANCY"] == 3.35     # 60 / (60 + 1732)
    assert _rows(day, "agent_id", data["a1"])["2026-03-10T00:00:00+09:00"]["OCCUPANCY"] == 13.48  # 480 / 3561


def test_thresholds_are_parameters(world: World, data: dict[str, int]) -> None:
    body = _get(world, "/api/reports/intervals", by="queue", interval="60", sl_threshold=30, short_abandon=2,
                **DAY).json()
    nine = _rows(body, "queue", "sales")["2026-03-10T09:00:00+09:00"]
    assert nine["SERVICE_LEVEL"] == 50.0  # C1 and C2 within 30 s / 4 offered (no short abandon)
    assert (nine["CONTACTS_ABANDONED"], nine["CONTACTS_ABANDONED_SHORT"]) == (2, 0)


def test_interval_csv(world: World, data: dict[str, int]) -> None:
    resp = _get(world, "/api/reports/intervals", by="queue", interval="60", format="csv", **DAY)
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(resp.text)))
    assert rows[0] == ["interval_start", "interval_end", "queue", *reports.METRICS]
    assert len(rows) == 1 + 48
    nine = next(r for r in rows if r[0] == "2026-03-10T09:00:00+09:00" and r[2] == "sales")
    assert nine[3:3 + len(reports.QUEUE_METRICS)] == ["4", "2", "1", "1", "20.0", "175.0", "270.0", "30.0", "50.0",
                                                   "33.33", "16.21", "0", "1"]
    empty = next(r for r in rows if r[0] == "2026-03-10T01:00:00+09:00" and r[2] == "sales")
    assert empty[7] == "" and empty[12] == ""  # AVG_QUEUE_ANSWER_TIME, SERVICE_LEVEL: no calls


def test_report_validation(world: World, data: dict[str, int]) -> None:
    headers = world.login("supervisor")
    for params in ({"tz": "Mars/Olympus"}, {"interval": "20"}, {"by": "trunk"},
                   {"since": "2026-03-10T00:00:00", "until": "2026-03-09T00:00:00"},
                   {"since": "2026-01-01T00:00:00", "until": "2026-06-01T00:00:00"}):
        resp = world.client.get("/api/reports/intervals", params=params, headers=headers)
        assert resp.status_code == 422 and resp.json()["error_id"] == "invalid-request", params


def test_call_search(world: World, data: dict[str, int]) -> None:
    path = "/api/calls/search"
    alpha_all = _get(world, path, since="2026-03-01T00:00:00Z").json()
    assert {c["id"] for c in alpha_all} == {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9"}
    assert [c["id"] for c in alpha_all][:2] == ["C8", "C7"]  # newest first
    assert [c["id"] for c in _get(world, path, number="11110001").json()] == ["C1"]  # not beta's B1
    assert {c["id"] for c in _get(world, path, agent="a1").json()} == {"C1", "C2", "C5"}
    assert {c["id"] for c in _get(world, path, agent=str(data["a2"])).json()} == {"C6", "C7"}
    assert _get(world, path, agent="b1").json() == []  # another tenant's agent
    assert [c["id"] for c in _get(world, path, queue="sales").json()] == ["C2", "C1"]
    first = _get(world, path, disposition="resolved").json()
    assert [c["id"] for c in first] == ["C1"] and first[0]["agent"] == "a1"
    assert first[0]["duration"] == 209.0  # the SIP leg: IVR answer 08:59:41 to 09:03:10
    window = _get(world, path, since=kst("09:30:00").isoformat(), until=kst("10:00:00").isoformat()).json()
    assert [c["id"] for c in window] == ["C6", "C5"]  # by received_at (queued - 20 s): C4 came at 09:29:40
    page = _get(world, path, limit=2, offset=1).json()
    assert [c["id"] for c in page] == ["C7", "C6"]
    beta = world.client.get(path, headers=world.login("admin", tenant="beta")).json()
    assert [c["id"] for c in beta] == ["B1"]


def test_call_search_csv(world: World, data: dict[str, int]) -> None:
    resp = _get(world, "/api/calls/search", role="qa", queue="support", format="csv")
    assert resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["id"] for r in rows] == ["C7", "C6", "C5"]
    assert rows[2]["agent"] == "a1" and rows[2]["caller"] == "+821011110005" and rows[2]["queue"] == "support"
    assert rows[1]["duration"] == "" or float(rows[1]["duration"]) > 0
    everything = list(csv.reader(io.StringIO(_get(world, "/api/calls/search", format="csv").text)))
    assert everything[0][:3] == ["id", "received_at", "answered_at"] and len(everything) == 1 + 9
    limited = list(csv.reader(io.StringIO(_get(world, "/api/calls/search", format="csv", limit=3).text)))
    assert len(limited) == 1 + 3


@pytest.mark.parametrize("role", ["admin", "supervisor"])
def test_report_roles_allowed(world: World, data: dict[str, int], role: str) -> None:
    _get(world, "/api/reports/intervals", role=role, **DAY)
    _get(world, "/api/calls/search", role=role)


def test_report_roles_refused(world: World, data: dict[str, int]) -> None:
    for role, path, status in (("agent", "/api/reports/intervals", 403), ("agent", "/api/calls/search", 403),
                               ("qa", "/api/reports/intervals", 403)):
        resp = world.client.get(path, headers=world.login(role))
        assert resp.status_code == status and resp.json()["error_id"] == "forbidden", (role, path)
    for path in ("/api/reports/intervals", "/api/calls/search"):
        assert world.client.get(path).status_code == 401
    assert _get(world, "/api/calls/search", role="qa").status_code == 200


def test_other_tenant_sees_only_its_own(world: World, data: dict[str, int]) -> None:
    body = world.client.get("/api/reports/intervals", params={"by": "queue", "interval": "day", **DAY},
                            headers=world.login("admin", tenant="beta")).json()
    assert [(r["queue"], r["CONTACTS_QUEUED"], r["CONTACTS_HANDLED"]) for r in body["rows"]] == [("sales", 1, 1)]
    agents = world.client.get("/api/reports/intervals", params={"by": "agent", "interval": "day", **DAY},
                              headers=world.login("admin", tenant="beta")).json()
    assert {r["agent"] for r in agents["rows"]} == {"b1"}
    assert world.client.get("/api/calls/C1", headers=world.login("admin", tenant="beta")).status_code == 404


# -- the pure functions ------------------------------------------------------------------------------
def test_buckets_across_dst() -> None:
    ny = ZoneInfo("America/New_York")
    spring = reports.buckets(datetime(2026, 3, 8, tzinfo=ny), datetime(2026, 3, 9, tzinfo=ny), ny, "60")
    assert len(spring) == 23  # 02:00 does not exist
    assert [b.label()["interval_start"][11:] for b in spring[1:3]] == ["01:00:00-05:00", "03:00:00-04:00"]
    fall = reports.buckets(datetime(2026, 11, 1, tzinfo=ny), datetime(2026, 11, 2, tzinfo=ny), ny, "60")
    assert len(fall) == 25  # 01:00 twice, with different offsets
    assert [b.label()["interval_start"][11:] for b in fall[1:3]] == ["01:00:00-04:00", "01:00:00-05:00"]
    assert all(b.end - b.start == timedelta(hours=1) for b in fall)
    days = reports.buckets(datetime(2026, 3, 7, tzinfo=ny), datetime(2026, 3, 10, tzinfo=ny), ny, "day")
    assert [(b.end - b.start) / timedelta(hours=1) for b in days] == [24, 23, 24]
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30: hours start at :30 UTC
    hours = reports.buckets(datetime(2026, 3, 10, 4, 10, tzinfo=kolkata),
                            datetime(2026, 3, 10, 6, 0, tzinfo=kolkata), kolkata, "60")
    assert [b.label()["interval_start"] for b in hours] == [
        "2026-03-10T04:10:00+05:30", "2026-03-10T05:00:00+05:30"]  # clipped to since


def test_leg_with_open_hold_and_no_wrapup() -> None:
    t0 = datetime(2026, 3, 10, tzinfo=timezone.utc)
    call = reports.CallFacts("x", "q", t0, t0 + timedelta(seconds=100), "caller", [
        reports.Event("answered", t0 + timedelta(seconds=10), 7, {"queue": "q"}),
        reports.Event("answered", t0 + timedelta(seconds=20), None, {"consult": True}),
        reports.Event("hold", t0 + timedelta(seconds=40), 7),
    ])
    (leg,) = reports.legs(call)
    assert (leg.talk, leg.hold, leg.acw, leg.transferred) == (30.0, 60.0, 0.0, False)


def test_queue_entry_without_ivr_trace(world: World, data: dict[str, int]) -> None:
    """No trace queue step: the queue comes from the agent's answered event, the entry time
    from the record's answered_at (the IVR's answer: queued - 19 s in ``_call``)."""
    with Session(world.engine) as db:
        _call(db, world.tenant_a, "C10", "sales", kst("10:00:19", day=12), kst("10:01:12", day=12), "caller",
              agent_id=data["a1"], trace=False,
              events=[("answered", kst("10:00:12", day=12), data["a1"], {"queue": "sales"})])
        db.commit()
    body = _get(world, "/api/reports/intervals", by="queue", interval="60", tz="Asia/Seoul",
                since="2026-03-12T10:00:00", until="2026-03-12T11:00:00").json()
    (row,) = [r for r in body["rows"] if r["queue"] == "sales"]
    assert (row["CONTACTS_QUEUED"], row["CONTACTS_HANDLED"], row["AVG_QUEUE_ANSWER_TIME"]) == (1, 1, 12.0)
    assert (row["AVG_HANDLE_TIME"], row["SERVICE_LEVEL"], row["OCCUPANCY"]) == (60.0, 100.0, None)
