"""CLI: cdr list, user add, demo (idempotent), serve handing over to callcenter.node.run."""

from __future__ import annotations

import json
import sys
import types
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from callcenter.cli import main
from callcenter.db import make_engine, migrate
from callcenter.demo import ensure_demo_tenant
from callcenter.models import AuditLog, CallRecord, Number, Tenant, Trunk, User
from callcenter.security import verify_password

from .conftest import add_tenant
from .test_migrations import HEAD

T0 = datetime(2025, 5, 1, 9, 0, tzinfo=timezone.utc)


def _seed_calls(engine: Engine, tenant_id: int) -> list[str]:
    ids = []
    with Session(engine) as db:
        for i in range(3):
            rid = str(uuid.uuid4())
            ids.append(rid)
            answered = T0 + timedelta(minutes=i, seconds=1) if i != 1 else None
            db.add(CallRecord(id=rid, sip_call_id=f"c{i}", tenant_id=tenant_id, direction="inbound",
                              caller="100", dialed="4001234567", received_at=T0 + timedelta(minutes=i),
                              answered_at=answered, ended_at=T0 + timedelta(minutes=i, seconds=11),
                              end_cause="normal_clearing", hangup_side="caller", sip_status=200, codec="PCMA"))
        db.commit()
    return ids


def test_cdr_list_json_newest_first(engine: Engine, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _seed_calls(engine, add_tenant(engine, "alpha"))
    assert main(["cdr", "list", "--data-dir", str(data_dir), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == ids[::-1]
    assert rows[0]["tenant"] == "alpha" and rows[0]["duration"] == 10.0 and rows[1]["duration"] is None
    expected = {"id", "sip_call_id", "tenant", "trunk", "direction", "caller", "dialed", "received_at",
                "answered_at", "ended_at", "duration", "end_cause", "hangup_side", "sip_status", "codec", "ivr_result",
                "agent", "queue", "disposition", "node", "agent_node"}
    assert set(rows[0]) == expected
    assert main(["cdr", "list", "--data-dir", str(data_dir), "--json", "--limit", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_cdr_list_table_and_database_url(engine: Engine, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _seed_calls(engine, add_tenant(engine, "alpha"))
    url = f"sqlite:///{data_dir}/callcenter.db"
    assert main(["cdr", "list", "--data-dir", "/nonexistent", "--database-url", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["received_at", "direction", "caller"] and len(lines) == 4


def test_cdr_list_without_database_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cdr", "list", "--data-dir", str(tmp_path / "none"), "--json"]) == 2
    assert "no database" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_user_add_prints_password_once(engine: Engine, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_tenant(engine, "alpha")
    args = ["user", "add", "--data-dir", str(data_dir), "--tenant", "alpha", "--username", "sue", "--role", "qa"]
    assert main(args) == 0
    password = capsys.readouterr().out.strip().rsplit("password: ", 1)[1]
    with Session(engine) as db:
        user = db.scalars(select(User).where(User.username == "sue")).one()
        assert user.role == "qa" and verify_password(user.password_hash, password)
        assert db.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "user.create")) == 1
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err


def test_ensure_demo_tenant_is_idempotent(engine: Engine) -> None:
    created = ensure_demo_tenant(engine)
    password = created.admin
    assert password and set(created.agents) == {"agent1", "agent2"} and created.operator
    again = ensure_demo_tenant(engine)
    assert again.admin is None and again.agents == {} and again.operator is None
    with Session(engine) as db:
        assert db.scalar(select(func.count()).select_from(Tenant).where(Tenant.kind == "customer")) == 1
        operator = db.scalars(select(User).join(Tenant).where(Tenant.slug == "platform")).one()
        assert operator.role == "operator" and verify_password(operator.password_hash, created.operator)
        assert db.scalar(select(func.count()).select_from(Trunk)) == 1
        assert db.scalar(select(func.count()).select_from(Number)) == 2  # the English and the Mandarin menus
        admin = db.scalars(select(User).where(User.role == "admin")).one()
        assert admin.role == "admin" and verify_password(admin.password_hash, password)
        tenant = db.scalars(select(Tenant).where(Tenant.kind == "customer")).one()
        assert tenant.slug == "demo" and tenant.outbound_prefixes
        trunk = db.scalars(select(Trunk)).one()
        assert trunk.inbound_ips == ["127.0.0.1", "::1"] and trunk.outbound_port == 5070


@pytest.fixture
def fake_node(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    import logging

    from callcenter.logs import _JsonHandler

    calls: list[object] = []
    module = types.ModuleType("callcenter.node")
    module.run = lambda settings: calls.append(settings)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "callcenter.node", module)
    import callcenter

    monkeypatch.setattr(callcenter, "node", module, raising=False)
    yield calls
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _JsonHandler)]:
        root.removeHandler(handler)


def test_demo_command_prints_password_only_when_created(
    tmp_path: Path, fake_node: list[object], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["demo", "--data-dir", str(tmp_path / "d"), "--sip-port", "5999", "--log-level", "warning"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "Demo tenant ready: number 4001234567 (Mandarin menu: 4001234568), admin login: tenant=demo user=admin password=" in first
    assert "Platform operator: company platform, user operator, password " in first
    assert "page http://127.0.0.1:8000/operator" in first and first.count("password=") == 1  # tests parse it
    assert main(args) == 0
    again = capsys.readouterr().out
    assert "Demo tenant exists" in again and "Platform operator" not in again
    assert len(fake_node) == 2
    settings = fake_node[0]
    assert settings.sip_port == 5999 and settings.log_level == "WARNING"  # type: ignore[attr-defined]


def test_serve_migrates_and_runs_node(tmp_path: Path, fake_node: list[object], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_HTTP_PORT", "8123")
    assert main(["serve", "--data-dir", str(tmp_path / "d")]) == 0
    assert fake_node[0].http_port == 8123  # type: ignore[attr-defined]
    engine = make_engine(f"sqlite:///{tmp_path}/d/callcenter.db")
    migrate(engine)  # already at head
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD


def test_bad_settings_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "invalid settings" in capsys.readouterr().err


def test_flows_import_publish_export_and_list(engine: Engine, data_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    ensure_demo_tenant(engine)
    flow = tmp_path / "hello.yaml"
    flow.write_text("name: hello\nstart: bye\nnodes:\n  - {id: bye, type: hangup, prompt: Hello}\n")
    args = ["--data-dir", str(data_dir)]
    assert main(["flows", "import", str(flow), "--tenant", "demo", "--number", "4001234567", *args]) == 0
    assert "flow 'hello' version 1 stored, published on 4001234567" in capsys.readouterr().out
    assert main(["flows", "export", "hello", "--tenant", "demo", *args]) == 0
    assert json.loads(capsys.readouterr().out)["nodes"] == [{"id": "bye", "type": "hangup", "prompt": {"tts": "Hello"}}]
    assert main(["flows", "publish", "demo", "--tenant", "demo", "--version", "1", "--number", "4001234567",
                 *args]) == 0
    capsys.readouterr()
    assert main(["flows", "list", "--tenant", "demo", *args]) == 0
    listing = {f["name"]: f for f in json.loads(capsys.readouterr().out)}
    assert listing["demo"]["published"] == [{"number": "4001234567", "version": 1}]
    assert listing["hello"]["published"] == []
    assert main(["flows", "import", str(flow), "--tenant", "nobody", *args]) == 2
    assert "no tenant 'nobody'" in capsys.readouterr().err


def test_tenant_asr_model_refuses_a_path_that_is_not_a_model(engine: Engine, data_dir: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    ensure_demo_tenant(engine)
    args = ["--data-dir", str(data_dir)]
    assert main(["tenant", "asr-model", "demo", str(tmp_path), *args]) == 2
    assert "vosk" in capsys.readouterr().err.lower()
    from asr import bundled_model_path

    model = bundled_model_path()
    assert model is not None
    assert main(["tenant", "asr-model", "demo", str(model), *args]) == 0
    with Session(engine) as db:
        assert db.scalar(select(Tenant.asr_model).where(Tenant.slug == "demo")) == str(model.resolve())
    assert main(["tenant", "asr-model", "demo", "--clear", *args]) == 0
