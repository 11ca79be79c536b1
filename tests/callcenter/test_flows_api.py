"""Flows, calendars and prompts through the HTTP API: admin only, per tenant, versions kept."""

from __future__ import annotations

import json
import subprocess

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import Number

from .conftest import World

FLOW = {"name": "main", "start": "menu", "nodes": [
    {"id": "menu", "type": "menu", "prompt": "Press 1", "options": [{"key": "1", "next": "q"}]},
    {"id": "q", "type": "queue", "queue": "sales"},
]}
FLOW_YAML = """name: main
start: bye
nodes:
  - id: bye
    type: hangup
    prompt: Goodbye
"""


def _number(world: World, tenant_id: int, number: str) -> None:
    with Session(world.engine) as db:
        db.add(Number(tenant_id=tenant_id, number=number))
        db.commit()


def _published(world: World, number: str) -> int | None:
    with Session(world.engine) as db:
        return db.scalar(select(Number.flow_version_id).where(Number.number == number))


def test_import_versions_publish_and_roll_back(world: World) -> None:
    _number(world, world.tenant_a, "4001110000")
    admin = world.login("admin")
    first = world.client.post("/api/flows", params={"number": "4001110000"}, json=FLOW, headers=admin)
    assert first.status_code == 201 and first.json() == {"flow": "main", "version": 1, "published_on": "4001110000"}
    v1 = _published(world, "4001110000")
    second = world.client.post("/api/flows", params={"number": "4001110000"}, content=FLOW_YAML,
                               headers={**admin, "Content-Type": "application/yaml"})
    assert second.json()["version"] == 2 and _published(world, "4001110000") != v1
    assert world.client.get("/api/flows/main", params={"version": 1}, headers=admin).json()["nodes"][0]["id"] == "menu"
    assert world.client.get("/api/flows/main", headers=admin).json()["start"] == "bye"
    back = world.client.post("/api/flows/main/publish", json={"version": 1, "number": "4001110000"}, headers=admin)
    assert back.status_code == 200 and _published(world, "4001110000") == v1
    listing = world.client.get("/api/flows", headers=admin).json()
    assert listing == [{"name": "main", "latest_version": 2, "versions": [1, 2],
                        "published": [{"number": "4001110000", "version": 1}]}]
    assert len(world.routing_changes) == 3
    audit = [a["action"] for a in world.client.get("/api/audit", headers=admin).json()]
    assert {"flow.import", "flow.publish"} <= set(audit)


def test_an_invalid_flow_is_refused_and_the_published_version_stays(world: World) -> None:
    _number(world, world.tenant_a, "4001110001")
    admin = world.login("admin")
    world.client.post("/api/flows", params={"number": "4001110001"}, json=FLOW, headers=admin)
    live = _published(world, "4001110001")
    bad = {**FLOW, "nodes": [{**FLOW["nodes"][0], "timeout": -1}, FLOW["nodes"][1]]}
    reply = world.client.post("/api/flows", params={"number": "4001110001"}, json=bad, headers=admin)
    assert reply.status_code == 422 and reply.json()["error_id"] == "invalid-flow"
    assert reply.json()["issues"] == [{"node": "menu", "field": "timeout", "reason": "Input should be greater than 0",
                                       "line": 1, "type": "greater_than", "ctx": {"gt": 0}}]
    assert _published(world, "4001110001") == live
    assert world.client.get("/api/flows", headers=admin).json()[0]["versions"] == [1]
    check = world.client.post("/api/flows/validate", json=FLOW, headers=admin)
    assert check.json() == {"valid": True, "name": "main", "nodes": 2, "warnings": [
        {"node": "menu", "field": field, "code": "unhandled", "reason": reason} for field, reason in (
            ("no_input", "no 'no_input' branch: after the last silent attempt the caller is hung up"),
            ("no_match", "no 'no_match' branch: after the last wrong answer the caller is hung up"))]}


def test_preconditions_use_the_tenants_own_calendars_and_hosts(world: World) -> None:
    admin = world.login("admin")
    flow = {"name": "crm", "start": "hours", "nodes": [
        {"id": "hours", "type": "business_hours", "calendar": "office", "open": "ask", "closed": "ask"},
        {"id": "ask", "type": "http", "url": "https://crm.alpha.example/lookup"},
    ]}
    refused = world.client.post("/api/flows/validate", json=flow, headers=admin).json()
    assert [(i["node"], i["field"]) for i in refused["issues"]] == [("hours", "calendar"), ("ask", "url")]
    calendar = {"timezone": "Asia/Shanghai", "weekly": {"mon": ["09:00-18:00"]}, "holidays": ["2026-10-01"]}
    assert world.client.put("/api/calendars/office", json=calendar, headers=admin).status_code == 200
    patched = world.client.patch("/api/tenant", json={"http_allow_hosts": ["*.alpha.example"]}, headers=admin)
    assert patched.json()["http_allow_hosts"] == ["*.alpha.example"]
    assert world.client.post("/api/flows/validate", json=flow, headers=admin).json()["valid"] is True
    # Tenant B has neither: the same flow is refused there.
    beta = world.login("admin", tenant="beta")
    assert world.client.post("/api/flows/validate", json=flow, headers=beta).status_code == 422
    bad_zone = world.client.put("/api/calendars/x", json={"timezone": "Mars/Base"}, headers=admin)
    assert bad_zone.status_code == 422 and "Mars/Base" in bad_zone.json()["message"]


def test_other_tenants_flows_and_numbers_are_out_of_reach(world: World) -> None:
    _number(world, world.tenant_b, "4002220000")
    beta = world.login("admin", tenant="beta")
    assert world.client.post("/api/flows", params={"number": "4002220000"}, json=FLOW, headers=beta).status_code == 201
    admin = world.login("admin")
    assert world.client.get("/api/flows/main", headers=admin).status_code == 404
    assert world.client.get("/api/flows", headers=admin).json() == []
    hijack = world.client.post("/api/flows", params={"number": "4002220000"}, json=FLOW, headers=admin)
    assert hijack.status_code == 422 and "not a number of this tenant" in hijack.json()["message"]
    world.client.post("/api/flows", json=FLOW, headers=admin)
    steal = world.client.post("/api/flows/main/publish", json={"version": 1, "number": "4002220000"}, headers=admin)
    assert steal.status_code == 422


def test_only_admins_manage_flows(world: World) -> None:
    for role in ("agent", "supervisor", "qa"):
        headers = world.login(role)
        assert world.client.get("/api/flows", headers=headers).status_code == 403
        assert world.client.post("/api/flows", json=FLOW, headers=headers).status_code == 403
        assert world.client.put("/api/calendars/x", json={"timezone": "UTC"}, headers=headers).status_code == 403
        assert world.client.get("/api/prompts", headers=headers).status_code == 403
    assert world.client.get("/api/flows").status_code == 401


def test_prompt_upload_is_converted_and_usable_in_a_flow(world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    admin = world.login("admin")
    wav = tmp_path / "hello.wav"
    subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", str(wav), "synth", "1", "sine", "440"], check=True)
    reply = world.client.put("/api/prompts/hello", files={"file": ("hello.wav", wav.read_bytes(), "audio/wav")},
                             headers=admin)
    assert reply.status_code == 200, reply.text
    assert world.client.get("/api/prompts", headers=admin).json() == ["hello"]
    flow = {"name": "p", "start": "p", "nodes": [{"id": "p", "type": "play", "prompt": {"file": "hello"}}]}
    assert world.client.post("/api/flows/validate", json=flow, headers=admin).json()["valid"] is True
    beta = world.login("admin", tenant="beta")
    refused = world.client.post("/api/flows/validate", content=json.dumps(flow), headers=beta).json()
    assert refused["issues"][0]["reason"] == "no uploaded prompt named 'hello' in this tenant"
    garbage = world.client.put("/api/prompts/junk", files={"file": ("junk.wav", b"not audio", "audio/wav")},
                               headers=admin)
    assert garbage.status_code == 422
