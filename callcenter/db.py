"""Engine construction and schema migration (alembic, shipped inside the package)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000
PG_CONNECT_TIMEOUT_S = 5
"""libpq waits for ever on a server that does not answer (a host gone, packets dropped): a connect
gives up after this, so the node sees an outage instead of hanging in it."""
MIGRATION_LOCK_ID = 0x63616C6C  # "call": pg_advisory lock key serialising migrate() across nodes


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        # WAL: readers (API) never block the CDR writer. NORMAL is durable against
        # process crashes; the CDR writer asks for FULL on its own connection.
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cur.close()


def make_engine(url: str) -> Engine:
    """Create a sync engine; SQLite gets WAL, synchronous=NORMAL, foreign keys, busy_timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": PG_CONNECT_TIMEOUT_S})
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def alembic_config(url: str | None = None) -> Config:
    """Alembic config pointing at the migrations inside the installed package."""
    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # '%' must be escaped for ConfigParser interpolation (passwords in URLs).
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine_or_url: Engine | str) -> None:
    """Upgrade the database to the latest revision (idempotent)."""
    if isinstance(engine_or_url, str):
        engine = make_engine(engine_or_url)
        try:
            migrate(engine)
        finally:
            engine.dispose()
        return
    if engine_or_url.dialect.name == "sqlite":
        _migrate_sqlite(engine_or_url)
        return
    cfg = alembic_config()
    with engine_or_url.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Nodes sharing one database may start together: without this, concurrent
            # upgrades race on CREATE TABLE (DuplicateTable / UniqueViolation). DDL is
            # transactional here, so the lock is held until this upgrade commits and the
            # next node then finds the database at head.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_ID})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _migrate_sqlite(engine: Engine) -> None:
    """Upgrade with foreign keys off, as SQLite's ALTER TABLE documentation prescribes.

    Batch mode rebuilds a table (create copy, DROP TABLE, rename). With foreign keys
    on, that DROP TABLE is an implicit DELETE which fires the ON DELETE actions of the
    tables referencing it: rebuilding call_records would empty ivr_traces and
    voicemails. The pragma only takes effect outside a transaction, so it is set before
    the upgrade begins; foreign_key_check then proves the result consistent before commit.
    """
    cfg = alembic_config()
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.commit()  # ends SQLAlchemy's autobegin so the upgrade gets its own begin()
        try:
            if conn.exec_driver_sql("PRAGMA foreign_keys").scalar() != 0:
                raise RuntimeError("could not turn SQLite foreign keys off for the migration")
            conn.commit()
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"migration left rows with broken foreign keys: {broken[:5]}")
        finally:
            conn.rollback()
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")  # the pooled connection goes back as it came
            conn.commit()
