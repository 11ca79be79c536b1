"""GET /api/calls: newest first, since/until/limit filters."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy.orm import Session

from callcenter.models import CallRecord

from .conftest import World

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)


def _seed(world: World, n: int) -> list[str]:
    ids = []
    with Session(world.engine) as db:
        for i in range(n):
            rid = str(uuid.uuid4())
            ids.append(rid)
            db.add(CallRecord(id=rid, sip_call_id=f"c{i}", tenant_id=world.tenant_a, direction="inbound",
                              caller="1", dialed="2", received_at=T0 + timedelta(minutes=i),
                              answered_at=T0 + timedelta(minutes=i, seconds=1),
                              ended_at=T0 + timedelta(minutes=i, seconds=31)))
        db.commit()
    return ids


def test_newest_first_with_filters(world: World) -> None:
    ids = _seed(world, 5)
    headers = world.login("supervisor")
    rows = world.client.get("/api/calls", headers=headers).json()
    assert [r["id"] for r in rows] == ids[::-1]
    assert rows[0]["duration"] == 30.0
    since = (T0 + timedelta(minutes=1)).isoformat()
    until = (T0 + timedelta(minutes=3)).isoformat()
    rows = world.client.get("/api/calls", params={"since": since, "until": until}, headers=headers).json()
    assert [r["id"] for r in rows] == [ids[2], ids[1]]
    rows = world.client.get("/api/calls", params={"limit": 2}, headers=headers).json()
    assert [r["id"] for r in rows] == [ids[4], ids[3]]
    naive = "2025-03-01T08:03:00"  # no offset: UTC
    assert len(world.client.get("/api/calls", params={"since": naive}, headers=headers).json()) == 2


def test_get_one_and_unknown(world: World) -> None:
    ids = _seed(world, 1)
    headers = world.login("qa")
    assert world.client.get(f"/api/calls/{ids[0]}", headers=headers).json()["sip_call_id"] == "c0"
    resp = world.client.get("/api/calls/does-not-exist", headers=headers)
    assert resp.status_code == 404 and resp.json()["error_id"] == "call-not-found"


def test_bad_limit(world: World) -> None:
    resp = world.client.get("/api/calls", params={"limit": 0}, headers=world.login("admin"))
    assert resp.status_code == 422 and resp.json()["error_id"] == "invalid-request"
