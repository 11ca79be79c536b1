"""The endpoints the tenant console (``/admin``) added: an agent's password reset shown once, break
reasons, audit filters by user and time, a prompt's audio and a TTS preview, and the page itself."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.orm import Session

from callcenter.api.browser_security import CONTENT_SECURITY_POLICY
from callcenter.models import AuditLog

from .conftest import World


def test_agent_password_reset_is_shown_once_and_ends_sessions(world: World) -> None:
    admin = world.login("admin")
    created = world.client.post("/api/agents", json={"username": "ann"}, headers=admin).json()
    ann = world.login("ann", password=created["password"])
    reply = world.client.patch(f"/api/agents/{created['id']}", json={"reset_password": True}, headers=admin)
    assert reply.status_code == 200, reply.text
    password = reply.json()["password"]
    assert password != created["password"] and "sip_password" not in reply.json()
    assert world.client.get("/api/dispositions", headers=ann).status_code == 401  # the old session is over
    world.login("ann", password=password)
    assert "password" not in str(world.client.get("/api/agents", headers=admin).json())
    audit = world.client.get("/api/audit", params={"action": "agent.update"}, headers=admin).json()
    assert password not in str(audit)


def test_break_reasons_are_replaced_by_admins_and_read_by_all(world: World) -> None:
    admin, agent = world.login("admin"), world.login("agent")
    assert world.client.get("/api/break-reasons", headers=agent).json() == ["break", "lunch", "training", "meeting"]
    reply = world.client.put("/api/break-reasons", json=["lunch", "coaching"], headers=admin)
    assert reply.status_code == 200 and reply.json() == ["lunch", "coaching"]
    assert world.client.get("/api/break-reasons", headers=agent).json() == ["lunch", "coaching"]
    assert world.client.put("/api/break-reasons", json=["lunch"], headers=agent).status_code == 403
    for bad in ([], ["Lunch Break"], ["x", "x"]):
        assert world.client.put("/api/break-reasons", json=bad, headers=admin).status_code == 422, bad
    beta = world.login("admin", tenant="beta")
    assert world.client.get("/api/break-reasons", headers=beta).json() == ["break", "lunch", "training", "meeting"]


def test_audit_filters_by_user_and_time(world: World) -> None:
    admin = world.login("admin")
    for reasons in (["a"], ["b"]):
        world.client.put("/api/break-reasons", json=reasons, headers=admin)
    with Session(world.engine) as db:  # the first change happened yesterday
        first = min(r.id for r in db.query(AuditLog).filter(AuditLog.action == "break_reasons.update"))
        db.execute(update(AuditLog).where(AuditLog.id == first)
                   .values(at=datetime.now(timezone.utc) - timedelta(days=1)))
        db.commit()
    since = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    rows = world.client.get("/api/audit", params={"action": "break_reasons.update", "since": since},
                            headers=admin).json()
    assert [r["detail"]["after"] for r in rows] == [["b"]]
    rows = world.client.get("/api/audit", params={"action": "break_reasons.update", "until": since},
                            headers=admin).json()
    assert [r["detail"]["after"] for r in rows] == [["a"]]
    mine = world.client.get("/api/audit", params={"user_id": world.users["admin"]}, headers=admin).json()
    assert sorted(r["action"] for r in mine) == ["break_reasons.update", "break_reasons.update", "login"]
    assert world.client.get("/api/audit", params={"user_id": world.users["qa"]}, headers=admin).json() == []


def test_prompt_audio_and_tts_preview(world: World, tmp_path: Path) -> None:
    admin = world.login("admin")
    wav = tmp_path / "hello.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(wav), "synth", "0.3", "sine", "440"], check=True)
    world.client.put("/api/prompts/hello", files={"file": ("hello.wav", wav.read_bytes(), "audio/wav")},
                     headers=admin)
    audio = world.client.get("/api/prompts/hello/audio", headers=admin)
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert audio.content[:4] == b"RIFF"
    beta = world.login("admin", tenant="beta")
    assert world.client.get("/api/prompts/hello/audio", headers=beta).status_code == 404
    assert world.client.get("/api/prompts/hello/audio", headers=world.login("agent")).status_code == 403
    spoken = world.client.post("/api/prompts/tts-preview", json={"text": "Hello", "voice": "en"}, headers=admin)
    assert spoken.status_code == 200 and spoken.content[:4] == b"RIFF"
    assert world.client.post("/api/prompts/tts-preview", json={"text": "Hello", "voice": "xx"},
                             headers=admin).status_code == 422


def test_admin_page_is_served_under_the_policy(world: World) -> None:
    page = world.client.get("/admin")
    assert page.status_code == 200 and "/static/admin.js" in page.text
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    html = page.text.lower()
    assert "<style" not in html and " style=" not in html and "javascript:" not in html
    for tag in html.split("<script")[1:]:
        assert " src=" in tag.split(">", 1)[0] and tag.split(">", 1)[1].startswith("</script")
    for asset in ("admin.js", "admin_ui.js", "admin.css", "i18n/zh-CN/admin.json"):
        assert world.client.get(f"/static/{asset}").status_code == 200, asset


def test_a_queue_change_names_the_field_it_refuses(world: World) -> None:
    admin = world.login("admin")
    queue = world.client.post("/api/queues", json={"name": "sales"}, headers=admin).json()
    reply = world.client.patch(f"/api/queues/{queue['id']}", json={"relax": [{"after": -5}], "wrapup": 5},
                               headers=admin)
    assert reply.status_code == 422
    assert [d["loc"] for d in reply.json()["details"]] == [["body", "relax", 0, "after"]]
    assert world.client.get("/api/queues", headers=admin).json()[0]["wrapup"] == 10  # nothing stored
