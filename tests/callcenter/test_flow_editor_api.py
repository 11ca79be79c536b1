"""What the console's flow editor uses: versions with their numbers, YAML export, validation
warnings, the flow schema and the simulator."""

from __future__ import annotations

import yaml
from sqlalchemy.orm import Session

from callcenter.models import AcdQueue, Number

from .conftest import World

FLOW = {"name": "main", "start": "hours", "nodes": [
    {"id": "hours", "type": "business_hours", "calendar": "office", "open": "menu", "closed": "bye"},
    {"id": "menu", "type": "menu", "prompt": "Press 1 for sales", "options": [{"key": "1", "next": "sales"}],
     "no_input": "bye"},
    {"id": "sales", "type": "queue", "queue": "sales", "priority": 5},
    {"id": "bye", "type": "hangup"},
    {"id": "orphan", "type": "hangup"},
]}
OFFICE = {"timezone": "Asia/Shanghai", "weekly": {"mon": ["09:00-18:00"]}}


def test_versions_export_and_warnings(world: World) -> None:
    admin = world.login("admin")
    with Session(world.engine) as db:
        db.add_all([Number(tenant_id=world.tenant_a, number="4001110000", description="hotline"),
                    Number(tenant_id=world.tenant_a, number="4001110001")])
        db.commit()
    assert world.client.put("/api/calendars/office", json=OFFICE, headers=admin).status_code == 200
    checked = world.client.post("/api/flows/validate", json=FLOW, headers=admin).json()
    assert {(w["node"], w["field"], w["code"]) for w in checked["warnings"]} == \
        {("menu", "no_match", "unhandled"), ("orphan", "", "unreachable")}
    world.client.post("/api/flows", params={"number": "4001110000"}, json=FLOW, headers=admin)
    world.client.post("/api/flows", json={**FLOW, "nodes": FLOW["nodes"][:4]}, headers=admin)
    versions = world.client.get("/api/flows/main/versions", headers=admin).json()
    assert [(v["version"], v["created_by"], v["published_on"]) for v in versions["versions"]] == \
        [(1, "admin", ["4001110000"]), (2, "admin", [])]
    assert versions["numbers"] == [
        {"number": "4001110000", "description": "hotline", "flow": "main", "version": 1},
        {"number": "4001110001", "description": "", "flow": None, "version": None}]
    exported = world.client.get("/api/flows/main", params={"version": 1, "format": "yaml"}, headers=admin)
    assert exported.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(exported.text)["nodes"][4]["id"] == "orphan"
    assert world.client.get("/api/flows/nope/versions", headers=admin).status_code == 404
    other = world.login("admin", tenant="beta")
    assert world.client.get("/api/flows/main/versions", headers=other).status_code == 404
    assert world.client.get("/api/flows/main/versions", headers=world.login("supervisor")).status_code == 403


def test_schema_and_simulation(world: World) -> None:
    admin = world.login("admin")
    schema = world.client.get("/api/flow-schema", headers=admin).json()
    assert "MenuNode" in schema["schema"]["$defs"] and "menu" in schema["node_types"]
    world.client.put("/api/calendars/office", json=OFFICE, headers=admin)
    with Session(world.engine) as db:
        db.add(AcdQueue(tenant_id=world.tenant_a, name="sales", config={"skill": "selling", "min_proficiency": 2}))
        db.commit()
    body = {"document": FLOW, "keys": ["1"], "at": "2026-12-07T10:00:00"}  # a Monday, in the calendar's zone
    out = world.client.post("/api/flows/simulate", json=body, headers=admin).json()
    assert out["path"] == ["hours", "menu", "sales"] and out["error"] is None
    assert out["result"]["queue"] == "sales" and out["result"]["skill"] == "selling"
    assert out["result"]["min_proficiency"] == 2 and out["result"]["strategy"] == "longest_idle"
    assert out["result"]["priority"] == 5
    closed = world.client.post("/api/flows/simulate", json={**body, "at": "2026-12-07T02:00:00Z"},
                               headers=admin).json()  # 10:00 in Shanghai
    assert closed["path"] == ["hours", "menu", "sales"]
    night = world.client.post("/api/flows/simulate", json={**body, "at": "2026-12-07T20:00:00+08:00"},
                              headers=admin).json()
    assert night["path"] == ["hours", "bye"] and night["result"]["kind"] == "hangup"
    waiting = world.client.post("/api/flows/simulate", json={**body, "keys": []}, headers=admin).json()
    assert waiting["error"]["code"] == "needs-input" and waiting["error"]["node"] == "menu"
    other = world.login("admin", tenant="beta")  # beta has no calendar 'office'
    missing = world.client.post("/api/flows/simulate", json=body, headers=other).json()
    assert missing["error"]["code"] == "missing-calendar"
    bad = world.client.post("/api/flows/simulate", json={"document": {"name": "x"}}, headers=admin)
    assert bad.status_code == 422 and bad.json()["error_id"] == "invalid-flow"
    for wrong in ({**body, "keys": ["1a"]}, {**body, "speech": ["x" * 201]}, {**body, "keys": ["1"] * 101},
                  {**body, "http": {"crm": {"status": 42}}}):
        assert world.client.post("/api/flows/simulate", json=wrong, headers=admin).status_code == 422
    assert world.client.post("/api/flows/simulate", json=body, headers=world.login("agent")).status_code == 403
