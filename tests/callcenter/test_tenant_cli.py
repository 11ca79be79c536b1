"""``callcenter tenant create|list|show|update|suspend|resume|export|delete`` and ``operator add``:
the same lifecycle as the operator API (``callcenter.tenancy``), from the command line."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from callcenter.cli import main
from callcenter.models import PLATFORM_SLUG, AuditLog, Tenant, User
from callcenter.security import verify_password


def _password(output: str) -> str:
    match = re.search(r"password (\S+) \(shown once\)", output)
    assert match, output
    return match.group(1)


def test_tenant_lifecycle_and_operator_from_the_cli(engine: Engine, data_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    db_flags = ["--data-dir", str(data_dir)]

    def run(*argv: str) -> tuple[int, str, str]:
        status = main([*argv, *db_flags])
        out, err = capsys.readouterr()
        return status, out, err

    status, out, _ = run("operator", "add", "ops")
    assert status == 0 and "company platform, user ops" in out and out.rstrip().endswith("/operator")
    ops_password = _password(out)
    status, out, _ = run("tenant", "create", "acme", "--name", "Acme", "--concurrent-calls", "2", "--agents", "3")
    assert status == 0 and "company acme, user admin" in out
    acme_password = _password(out)
    with Session(engine) as db:
        users = {(u.username, u.role): u.password_hash for u in db.scalars(select(User))}
    assert verify_password(users[("ops", "operator")], ops_password)
    assert verify_password(users[("admin", "admin")], acme_password)

    assert run("tenant", "create", "platform", "--name", "P")[0] == 2
    assert run("user", "add", "--tenant", "platform", "--username", "x", "--role", "admin")[0] == 2
    rows = [json.loads(line) for line in run("tenant", "list", "--json")[1].splitlines()]
    assert [(r["slug"], r["quota_concurrent_calls"], r["quota_agents"], r["status"]) for r in rows] == \
        [("acme", 2, 3, "active")]
    assert run("tenant", "update", "acme", "--concurrent-calls", "none", "--recording-mb", "100")[0] == 0
    shown = json.loads(run("tenant", "show", "acme")[1])
    assert (shown["quota_concurrent_calls"], shown["quota_agents"], shown["quota_recording_mb"]) == (None, 3, 100)
    assert shown["today"]["calls"] == 0

    assert run("tenant", "suspend", "acme")[0] == 0
    assert json.loads(run("tenant", "show", "acme")[1])["status"] == "suspended"
    assert run("tenant", "resume", "acme")[0] == 0
    status, _, err = run("tenant", "delete", "acme")
    assert status == 2 and "export tenant 'acme' before deleting it" in err
    archive = tmp_path / "acme.zip"
    status, out, _ = run("tenant", "export", "acme", "--output", str(archive))
    assert status == 0 and "exported" in out
    with zipfile.ZipFile(archive) as zf:
        assert json.loads(zf.read("manifest.json"))["tenant"] == "acme"
    assert run("tenant", "delete", "acme")[0] == 0
    assert run("tenant", "show", "acme")[0] == 2
    with Session(engine) as db:
        assert db.scalar(select(Tenant.id).where(Tenant.slug == "acme")) is None
        actions = set(db.scalars(select(AuditLog.action).join(Tenant, Tenant.id == AuditLog.tenant_id)
                                 .where(Tenant.slug == PLATFORM_SLUG)))
    assert {"operator.create", "tenant.create", "tenant.update", "tenant.suspend", "tenant.resume", "tenant.export",
            "tenant.delete"} <= actions


def test_a_deleted_tenant_id_is_never_given_again(engine: Engine, data_dir: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    db_flags = ["--data-dir", str(data_dir)]
    assert main(["tenant", "create", "first", "--name", "First", *db_flags]) == 0
    with Session(engine) as db:
        first = db.scalar(select(Tenant.id).where(Tenant.slug == "first"))
    assert main(["tenant", "export", "first", "--output", str(tmp_path / "f.zip"), *db_flags]) == 0
    assert main(["tenant", "delete", "first", *db_flags]) == 0
    assert main(["tenant", "create", "second", "--name", "Second", *db_flags]) == 0
    with Session(engine) as db:
        second = db.scalar(select(Tenant.id).where(Tenant.slug == "second"))
    assert first is not None and second is not None and second > first
