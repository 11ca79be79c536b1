"""The operator and the tenants' lifecycle over the API: create (first admin), quotas, suspend,
resume, export, delete (nothing left in any table nor on disk), usage; roles kept apart both ways."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import inspect, select, text, update
from sqlalchemy.orm import Session

from callcenter import tenancy
from callcenter.call_notes import CallNotes
from callcenter.models import (
    PLATFORM_SLUG,
    AuditLog,
    CallRecord,
    Role,
    Tenant,
    Transcript,
    Trunk,
    User,
    Voicemail,
    utcnow,
)
from callcenter.recording_service import RecordingService, TenantKeys
from callcenter.settings import Settings
from callcenter.transcription import run_job
from recordings.storage import LocalStorage
from tests.support.audio import tone
from tests.support.recordings import make_recorded_call

from .conftest import PASSWORD, World, add_user


@pytest.fixture
def operator(world: World) -> dict[str, str]:
    """An operator's bearer headers (company platform, user ops)."""
    with Session(world.engine) as db:
        platform_id = tenancy.ensure_platform(db).id
        db.commit()
    add_user(world.engine, platform_id, "ops", Role.OPERATOR)
    return world.login("ops", tenant=PLATFORM_SLUG)


def _create(world: World, operator: dict[str, str], slug: str = "acme", **quotas: int) -> dict[str, object]:
    reply = world.client.post("/api/operator/tenants", json={"slug": slug, "name": slug.title(), **quotas},
                              headers=operator)
    assert reply.status_code == 201, reply.text
    return reply.json()


def test_operator_creates_a_tenant_whose_admin_signs_in_with_the_password_shown_once(
        world: World, operator: dict[str, str]) -> None:
    created = _create(world, operator, quota_concurrent_calls=3, quota_agents=1)
    admin = created["admin"]
    assert admin["username"] == "admin" and len(admin["password"]) >= 16
    assert created["tenant"]["status"] == "active" and created["tenant"]["quota_concurrent_calls"] == 3
    assert created["tenant"]["timezone"] == "Asia/Shanghai" and created["tenant"]["today"]["calls"] == 0
    with Session(world.engine) as db:
        stored = db.scalar(select(User.password_hash).join(Tenant).where(Tenant.slug == "acme"))
    assert stored is not None and stored.startswith("$argon2id$") and admin["password"] not in stored
    headers = world.login("admin", tenant="acme", password=admin["password"])
    me = world.client.get("/api/me", headers=headers).json()
    assert me["role"] == "admin" and me["tenant"]["slug"] == "acme"
    # the platform tenant is nobody's customer: not listed, not taken, not managed
    listed = [t["slug"] for t in world.client.get("/api/operator/tenants", headers=operator).json()]
    assert listed == ["acme", "alpha", "beta"]
    reserved = world.client.post("/api/operator/tenants", json={"slug": "platform", "name": "P"}, headers=operator)
    assert reserved.status_code == 409 and reserved.json()["error_id"] == "slug-reserved"
    assert world.client.get("/api/operator/tenants/platform", headers=operator).status_code == 404
    again = world.client.post("/api/operator/tenants", json={"slug": "acme", "name": "Other"}, headers=operator)
    assert again.status_code == 409 and again.json()["error_id"] == "tenant-slug-taken"
    bad_zone = world.client.post("/api/operator/tenants", json={"slug": "zed", "name": "Zed", "timezone": "Mars/Base"},
                                 headers=operator)
    assert bad_zone.status_code == 422 and bad_zone.json()["error_id"] == "invalid-timezone"
    # quotas edited; the agents' quota holds where agents are made
    patched = world.client.patch("/api/operator/tenants/acme", json={"quota_agents": 1, "quota_concurrent_calls": None},
                                 headers=operator).json()
    assert patched["quota_agents"] == 1 and patched["quota_concurrent_calls"] is None
    assert world.client.post("/api/agents", json={"username": "ann", "skills": {}}, headers=headers).status_code == 201
    over = world.client.post("/api/agents", json={"username": "bob", "skills": {}}, headers=headers)
    assert over.status_code == 409 and over.json()["error_id"] == "quota-exceeded"
    assert "quota of 1 agents" in over.json()["message"]
    with Session(world.engine) as db:
        actions = db.scalars(select(AuditLog.action).join(Tenant, Tenant.id == AuditLog.tenant_id)
                             .where(Tenant.slug == PLATFORM_SLUG)).all()
    assert {"tenant.create", "tenant.update"} <= set(actions)


def test_operator_and_tenant_roles_are_kept_apart_both_ways(world: World, operator: dict[str, str]) -> None:
    me = world.client.get("/api/me", headers=operator).json()
    assert me["role"] == "operator" and me["tenant"]["slug"] == PLATFORM_SLUG and me["user"]["locale"] is None
    assert world.client.patch("/api/me", json={"locale": "zh-CN"}, headers=operator).json()["user"]["locale"] == "zh-CN"
    assert world.client.patch("/api/me", json={"locale": "fr"}, headers=operator).status_code == 422
    tenant_routes, operator_routes = [], []
    routes = [inner for r in world.client.app.routes  # type: ignore[attr-defined]
              for inner in (r.original_router.routes if hasattr(r, "original_router") else [r])]
    for route in routes:
        if not isinstance(route, APIRoute) or route.path in ("/api/me", "/api/logout"):
            continue
        checks = [dep.call.role_check for dep in route.dependant.dependencies if hasattr(dep.call, "role_check")]
        if not any(checks):
            continue  # public
        path = route.path.replace("{slug}", "alpha")
        for name in ("{", "}"):
            path = path.replace(name, "" if name == "}" else "1")
        method = sorted(route.methods)[0]
        (operator_routes if path.startswith("/api/operator") else tenant_routes).append((method, path))
    assert len(tenant_routes) > 50 and len(operator_routes) >= 8
    for method, path in tenant_routes:
        reply = world.client.request(method, path, headers=operator)
        assert reply.status_code == 403, (method, path, reply.text)
    for role in ("admin", "supervisor", "agent", "qa"):
        headers = world.login(role)
        for method, path in operator_routes:
            reply = world.client.request(method, path, headers=headers)
            assert reply.status_code == 403, (role, method, path, reply.text)
    # an admin cannot make an operator in their own tenant
    made = world.client.post("/api/users", json={"username": "x", "password": "longenough", "role": "operator"},
                             headers=world.login("admin"))
    assert made.status_code == 422


def test_suspended_tenant_cannot_sign_in_and_its_sessions_end_until_resumed(
        world: World, operator: dict[str, str]) -> None:
    admin = world.login("admin")
    assert world.client.get("/api/tenant", headers=admin).status_code == 200
    world.routing_changes.clear()
    suspended = world.client.post("/api/operator/tenants/alpha/suspend", headers=operator)
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    assert world.routing_changes  # the node reloads routing: its calls are refused from now on
    assert world.client.get("/api/tenant", headers=admin).status_code == 401
    refused = world.client.post("/api/login", json={"tenant": "alpha", "username": "admin", "password": PASSWORD})
    assert refused.status_code == 403 and refused.json()["error_id"] == "tenant-suspended"
    wrong = world.client.post("/api/login", json={"tenant": "alpha", "username": "admin", "password": "nope-nope"})
    assert wrong.status_code == 401  # the status is only told to whoever knows the password
    assert world.client.get("/api/tenant", headers=world.login("admin", tenant="beta")).status_code == 200
    assert world.client.post("/api/operator/tenants/alpha/resume", headers=operator).json()["status"] == "active"
    assert world.client.get("/api/tenant", headers=world.login("admin")).status_code == 200


def _tenant_rows(world: World, tenant_id: int) -> dict[str, int]:
    """Rows holding ``tenant_id`` in every table with a tenant column (the FTS index included)."""
    found = {}
    with world.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            columns = {c["name"] for c in inspect(conn).get_columns(table)}
            key = "tenant_id" if "tenant_id" in columns else "id" if table == "tenants" else None
            if key is not None:
                count = conn.execute(text(f'SELECT count(*) FROM "{table}" WHERE {key} = :t'), {"t": tenant_id}).scalar()
                if count:
                    found[table] = count
    return found


def test_export_then_delete_leaves_nothing_of_the_tenant(world: World, operator: dict[str, str],
                                                          data_dir: Path) -> None:
    check_export_then_delete(world, operator, data_dir)


def check_export_then_delete(world: World, operator: dict[str, str], data_dir: Path) -> None:
    """Tenant alpha with a recorded, transcribed call, a voicemail, a prompt and a trunk: deleting is
    refused before an export; the export has it all (decrypted audio, no secrets); after the delete
    no table holds a row of it and its folders are gone (also run on PostgreSQL)."""
    tid = world.tenant_a
    call = make_recorded_call(world.engine, data_dir, tid, caller_pcm=tone(1.0, freq=1000),
                              agent_pcm=tone(1.0, freq=600), words=[
                                  {"word": "hello", "start": 0.1, "end": 0.5, "conf": 0.9, "speaker": "agent"}])
    voicemail = data_dir / "voicemail" / f"tenant-{tid}" / "vm.wav"
    voicemail.parent.mkdir(parents=True)
    voicemail.write_bytes(b"RIFF")
    prompt = data_dir / "prompts" / f"tenant-{tid}" / "welcome.wav"
    prompt.parent.mkdir(parents=True)
    prompt.write_bytes(b"RIFF")
    with Session(world.engine) as db:
        db.add(Voicemail(tenant_id=tid, call_id=call.call_id, path=str(voicemail), seconds=1.0, created_at=utcnow()))
        db.add(Trunk(tenant_id=tid, name="carrier", inbound_ips=["127.0.0.1"], inbound_password="s3cret"))
        db.commit()
    recordings = Settings(data_dir=data_dir).effective_recordings_dir / f"tenant-{tid}"
    assert recordings.is_dir() and _tenant_rows(world, tid)

    early = world.client.delete("/api/operator/tenants/alpha", headers=operator)
    assert early.status_code == 409 and early.json()["error_id"] == "export-required"

    reply = world.client.get("/api/operator/tenants/alpha/export", headers=operator)
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(reply.content)) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        users = json.loads(zf.read("config/users.json"))
        trunks = json.loads(zf.read("config/trunks.json"))
        calls = [json.loads(line) for line in zf.read("calls.jsonl").splitlines()]
        audio = zf.read(f"recordings/{call.call_id}.ogg")
    assert {"config/tenant.json", "config/flows.json", "config/numbers.json", "config/queues.json",
            "config/agents.json", "config/calendars.json", "ivr_traces.jsonl", "transcripts.jsonl",
            "recordings.jsonl", "voicemail/vm.wav", "prompts/welcome.wav"} <= names
    assert manifest["tenant"] == "alpha" and manifest["counts"]["recording_files"] == 1
    assert audio[:4] == b"OggS"  # decrypted: the customer can play it
    assert users and all("password_hash" not in u for u in users)
    assert trunks[0]["name"] == "carrier" and "inbound_password" not in trunks[0]
    assert [c["id"] for c in calls] == [call.call_id]

    assert world.client.delete("/api/operator/tenants/alpha", headers=operator).status_code == 204
    assert _tenant_rows(world, tid) == {}
    assert not recordings.exists() and not voicemail.parent.exists() and not prompt.parent.exists()
    assert _tenant_rows(world, world.tenant_b)  # the other tenant untouched
    assert world.client.get("/api/operator/tenants/alpha", headers=operator).status_code == 404
    with Session(world.engine) as db:
        deleted = db.scalar(select(AuditLog).where(AuditLog.action == "tenant.delete"))
        assert deleted is not None and deleted.target == "tenant:alpha"
        assert db.get(Tenant, deleted.tenant_id).slug == PLATFORM_SLUG  # type: ignore[union-attr]


def test_usage_per_tenant_per_day_as_json_and_csv(world: World, operator: dict[str, str]) -> None:
    admin = world.login("admin")
    assert world.client.patch("/api/tenant", json={"timezone": "Mars/Base"}, headers=admin).status_code == 422
    assert world.client.patch("/api/tenant", json={"timezone": "UTC"}, headers=admin).json()["timezone"] == "UTC"
    assert world.client.get("/api/me", headers=admin).json()["tenant"]["timezone"] == "UTC"
    now = utcnow()
    day = (now - timedelta(minutes=10)).date().isoformat()
    with Session(world.engine) as db:
        trunk = Trunk(tenant_id=world.tenant_a, name="carrier", inbound_ips=["127.0.0.1"])
        db.add(trunk)
        db.flush()
        for i, (direction, talk, cause) in enumerate([("inbound", 120, "normal_clearing"),
                                                      ("inbound", 60, "normal_clearing"),
                                                      ("outbound", 30, "normal_clearing"), ("inbound", 0, "quota")]):
            start = now - timedelta(minutes=10) + timedelta(seconds=i)  # the first three overlap
            db.add(CallRecord(id=str(uuid.uuid4()), sip_call_id=f"u{i}", tenant_id=world.tenant_a, trunk_id=trunk.id,
                              direction=direction, caller="1", dialed="2", received_at=start,
                              answered_at=start if talk else None, ended_at=start + timedelta(seconds=talk),
                              end_cause=cause))
        db.commit()
    rows = world.client.get("/api/operator/usage", params={"tenant": "alpha"}, headers=operator).json()
    assert len(rows) == 31 and {r["tenant"] for r in rows} == {"alpha"}
    today = next(r for r in rows if r["day"] == day)
    assert (today["calls"], today["calls_refused"], today["inbound_minutes"], today["outbound_minutes"],
            today["peak_concurrent_calls"]) == (4, 1, 3.0, 0.5, 3)
    csv = world.client.get("/api/operator/usage", params={"format": "csv", "from": today["day"], "to": today["day"]},
                           headers=operator)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0].startswith("tenant,day,calls,calls_refused,inbound_minutes")
    assert lines[1].startswith(f"alpha,{today['day']},4,1,3.0,0.5,3,") and lines[2].startswith("beta,")
    backwards = world.client.get("/api/operator/usage", params={"from": "2026-02-01", "to": "2026-01-01"},
                                 headers=operator)
    assert backwards.status_code == 422


async def test_storage_and_transcription_quotas_stop_recording_and_transcribing(world: World,
                                                                                data_dir: Path) -> None:
    tid = world.tenant_a
    call = make_recorded_call(world.engine, data_dir, tid, caller_pcm=tone(1.0, freq=1000),
                              agent_pcm=tone(1.0, freq=600), words=[], evaluate=False)
    events: list[dict[str, object]] = []

    async def call_event(record_id: str, **values: object) -> None:
        events.append({"call_id": record_id, **values})

    settings = Settings(data_dir=data_dir)
    storage = LocalStorage(settings.effective_recordings_dir)
    keys = TenantKeys(world.engine, settings.effective_master_key)
    service = RecordingService(world.engine, storage, keys,
                               notes=CallNotes(SimpleNamespace(call_event=call_event)))  # type: ignore[arg-type]
    assert not service._quota_reached(tid)
    with Session(world.engine) as db:
        db.execute(update(Tenant).where(Tenant.id == tid).values(quota_recording_mb=0, quota_transcription_minutes=0))
        db.commit()
    assert not service._quota_reached(world.tenant_b)
    next_call = SimpleNamespace(id=str(uuid.uuid4()))
    assert await service._ensure(next_call, tid, "opus") is None  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert [(e["call_id"], e["kind"], e["detail"]) for e in events] == [(next_call.id, "recording_skipped",
                                                                        {"reason": "quota"})]
    assert not service.live and not list(storage.list_journals())
    status = run_job(world.engine, storage, keys, lambda _: pytest.fail("no model needed"), call.recording_id)
    with Session(world.engine) as db:
        transcript = db.get(Transcript, call.recording_id)
    assert status == "failed" and transcript is not None and transcript.status == "failed"
    assert transcript.error is not None and transcript.error.startswith("quota: 0 of the tenant's 0 transcription")
