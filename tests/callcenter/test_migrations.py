"""The hand-written migration: applies on an empty database, is idempotent, matches the models."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, delete, insert, inspect, select, text
from sqlalchemy.orm import Session

from callcenter.db import alembic_config, make_engine, migrate
from callcenter.models import DEFAULT_DISPOSITIONS, Base, CallRecord, Tenant

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()
"""The newest migration: every upgrade ends there."""


def schema_diff(engine: Engine) -> list[object]:
    """What alembic autogenerate would change to make the database match the models
    (types included); [] when the migrations and the models agree."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": _modelled})
        return list(compare_metadata(context, Base.metadata))


def _modelled(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Leave out the full-text search objects, which only the migration knows (SQLite's FTS5 table
    and its shadow tables, PostgreSQL's expression index)."""
    return not (name or "").startswith(("transcript_fts", "ix_transcripts_fts"))


def test_migrate_empty_database_creates_every_table(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/new/cc.db")
    migrate(engine)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_migrate_twice_is_a_no_op(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/cc.db")
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]


def test_migration_matches_models(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/cc.db")
    migrate(engine)
    assert schema_diff(engine) == []


def test_migrate_from_url_does_not_depend_on_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    migrate(f"sqlite:///{tmp_path}/cc.db")
    assert "call_records" in inspect(make_engine(f"sqlite:///{tmp_path}/cc.db")).get_table_names()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/cc.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0


# -- 0004 on a database in use at 0003 -------------------------------------------------

CALL_0003 = "0f9c3d3e-0003-4000-8000-000000000001"


def seed_0003(engine: Engine) -> None:
    """Migrate to 0003 only and store a tenant, an agent and a call with IVR trace and
    voicemail in the 0003 schema (reflected: the models are already at head)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    at = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
    if engine.dialect.name == "sqlite":
        at = at.replace(tzinfo=None)  # SQLite keeps naive UTC
    meta = MetaData()
    meta.reflect(engine)
    t = meta.tables
    with engine.begin() as conn:
        conn.execute(insert(t["tenants"]).values(id=1, name="Old", slug="old", outbound_prefixes=[], created_at=at))
        conn.execute(insert(t["users"]).values(id=1, tenant_id=1, username="ann", password_hash="x", role="agent",
                                              active=True, created_at=at))
        conn.execute(insert(t["agents"]).values(id=1, tenant_id=1, user_id=1, skills={"sales": 3}))
        conn.execute(insert(t["call_records"]).values(id=CALL_0003, sip_call_id="c1", tenant_id=1,
                                                     direction="inbound", caller="100", dialed="200",
                                                     received_at=at, answered_at=at, ended_at=at))
        conn.execute(insert(t["ivr_traces"]).values(call_id=CALL_0003, tenant_id=1, trace={"steps": []},
                                                    updated_at=at))
        conn.execute(insert(t["voicemails"]).values(tenant_id=1, call_id=CALL_0003, path="vm.wav", seconds=1.5,
                                                    created_at=at))


def check_0004_kept_the_0003_data(engine: Engine) -> None:
    """After migrate(): head, schema as the models, nothing of seed_0003 lost, new defaults."""
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
        # call_records is rebuilt on SQLite: its children must survive the DROP TABLE
        assert conn.execute(text("SELECT count(*) FROM ivr_traces")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM voicemails")).scalar() == 1
    assert schema_diff(engine) == []
    with Session(engine) as db:
        tenant = db.get(Tenant, 1)
        assert tenant is not None
        assert tenant.dispositions == list(DEFAULT_DISPOSITIONS) and tenant.recording_pause_allowed is False
        record = db.get(CallRecord, CALL_0003)
        assert record is not None and record.caller == "100" and record.duration == 0.0
        assert (record.agent_id, record.queue, record.disposition, record.wrapup_notes) == (None,) * 4
        record.agent_id, record.queue = 1, "sales"
        db.commit()
    with engine.begin() as conn:  # the new foreign key acts: deleting the agent keeps the call
        conn.execute(delete(Base.metadata.tables["agents"]))
    with Session(engine) as db:
        assert db.scalar(select(CallRecord.agent_id).where(CallRecord.id == CALL_0003)) is None


def test_0004_upgrades_a_0003_database_in_use(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/cc.db")
    seed_0003(engine)
    migrate(engine)
    check_0004_kept_the_0003_data(engine)
    with engine.connect() as conn:  # migrate() turned foreign keys off for the rebuild, and on again
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
