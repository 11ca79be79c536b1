"""Call-record store for the SIP node: group commit on one writer thread.

The event loop never touches the database: each call enqueues an operation and awaits a
future. The writer thread takes everything queued, applies it in order in one
transaction, commits, then resolves the futures, so a burst of N calls costs one
commit (one fsync) instead of N. If a batch fails, its operations are retried one by
one so a single bad row only fails its own awaitable.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, insert, select, update
from sqlalchemy.orm import Session, aliased

from callcenter.metrics import CDR_BATCH_SECONDS, CDR_BATCH_SIZE, CDR_WRITE_ERRORS
from callcenter.models import (
    Agent,
    CallEvent,
    CallRecord,
    Direction,
    HangupSide,
    IvrTrace,
    Tenant,
    Trunk,
    User,
    Voicemail,
    utcnow,
)

log = logging.getLogger(__name__)

MAX_BATCH = 500
"""Operations per transaction; bounds the time any single commit holds the write lock."""

_table: Table = CallRecord.__table__  # type: ignore[assignment]
_events: Table = CallEvent.__table__  # type: ignore[assignment]


@dataclass
class _Op:
    kind: str  # "insert" | "answer" | "end" | "agent" | "event"
    record_id: str
    values: dict[str, Any]
    future: asyncio.Future[None]
    loop: asyncio.AbstractEventLoop


_STOP = object()


def _clip(values: dict[str, Any], table: Table = _table) -> dict[str, Any]:
    """Cut strings to their column's length. Caller, dialed number and Call-ID come from
    the SIP peer and have no length limit; PostgreSQL rejects an over-long value (SQLite
    stores it), which would lose the whole record. Record ids are ours and never cut."""
    out = dict(values)
    for key, value in values.items():
        if key not in ("id", "call_id") and isinstance(value, str):
            length = getattr(table.c[key].type, "length", None)
            if length is not None and len(value) > length:
                out[key] = value[:length]
    return out


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")


class CallRecordStore:
    """Writes call records off the event loop with group commit: one writer thread,
    queued operations committed together; each awaitable resolves when its row is
    committed (durable)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._queue: queue.SimpleQueue[_Op | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def start(self) -> None:
        """Start the writer thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="cdr-writer", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Commit everything already queued, then stop the writer thread."""
        if self._closed:
            return
        self._closed = True
        if self._thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    async def call_started(
        self,
        *,
        record_id: str,
        sip_call_id: str,
        tenant_id: int | None,
        trunk_id: int | None,
        direction: str,
        caller: str,
        dialed: str,
        received_at: datetime,
    ) -> None:
        """Insert the record of a new call; returns once committed."""
        _require_aware("received_at", received_at)
        if direction not in {d.value for d in Direction}:
            raise ValueError(f"direction must be inbound or outbound, not {direction!r}")
        await self._submit(
            "insert",
            record_id,
            {
                "id": record_id,
                "sip_call_id": sip_call_id,
                "tenant_id": tenant_id,
                "trunk_id": trunk_id,
                "direction": direction,
                "caller": caller,
                "dialed": dialed,
                "received_at": received_at,
            },
        )

    async def call_answered(self, record_id: str, *, answered_at: datetime, codec: str | None) -> None:
        """Record the answer time and negotiated codec (first answer wins)."""
        _require_aware("answered_at", answered_at)
        await self._submit("answer", record_id, {"answered_at": answered_at, "codec": codec})

    async def call_ended(
        self,
        record_id: str,
        *,
        ended_at: datetime,
        end_cause: str,
        hangup_side: str | None,
        sip_status: int | None,
    ) -> None:
        """Record the end of a call (first end wins: a late timeout does not overwrite a BYE)."""
        _require_aware("ended_at", ended_at)
        if hangup_side is not None and hangup_side not in {h.value for h in HangupSide}:
            raise ValueError(f"hangup_side must be caller, callee, platform or None, not {hangup_side!r}")
        await self._submit(
            "end",
            record_id,
            {"ended_at": ended_at, "end_cause": end_cause, "hangup_side": hangup_side, "sip_status": sip_status},
        )

    async def call_agent(self, record_id: str, *, agent_id: int, queue: str | None) -> None:
        """Record the agent who answered and the queue the call came from. A later call
        overwrites both (after a transfer the record names the last agent; every answer
        is also in the call's events)."""
        await self._submit("agent", record_id, {"agent_id": agent_id, "queue": queue})

    async def call_event(
        self,
        record_id: str,
        *,
        tenant_id: int,
        kind: str,
        at: datetime,
        agent_id: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Add one entry to the call's event list (offered, answered, hold, transfer, ...).

        Written in submission order with the other operations, so an event submitted
        after ``call_started`` of its call lands after the record's insert even in the
        same batch; an event of a call that has no record fails alone.
        """
        _require_aware("at", at)
        if not kind:
            raise ValueError("an event needs a kind")
        values = {"call_id": record_id, "tenant_id": tenant_id, "kind": kind, "at": at, "agent_id": agent_id,
                  "detail": detail}
        await self._submit("event", record_id, values)

    def close_dangling(self) -> int:
        """At start-up, before serving: end every record left open by a previous run."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(_table)
                .where(_table.c.ended_at.is_(None))
                .values(ended_at=utcnow(), end_cause="interrupted")
            )
        count = int(result.rowcount or 0)
        if count:
            log.warning("closed call records left open by a previous run", extra={"count": count})
        return count

    # -- internals ------------------------------------------------------------------

    async def _submit(self, kind: str, record_id: str, values: dict[str, Any]) -> None:
        if self._closed:
            raise RuntimeError("CallRecordStore is closed")
        if self._thread is None:
            raise RuntimeError("CallRecordStore.start() was not awaited")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        values = _clip(values, _events if kind == "event" else _table)
        self._queue.put(_Op(kind, record_id, values, future, loop))
        # Shield: a cancelled caller must not hide the outcome of a write already queued.
        await asyncio.shield(future)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            batch: list[_Op] = []
            if first is _STOP:
                stopping = True
            else:
                batch.append(first)  # type: ignore[arg-type]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    continue
                batch.append(item)  # type: ignore[arg-type]
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[_Op]) -> None:
        started = time.perf_counter()
        try:
            with self._engine.connect() as conn:
                self._durable(conn)
                with conn.begin():
                    self._durable_tx(conn)
                    self._apply(conn, batch)
        except Exception as exc:
            log.warning("call-record batch failed, retrying one by one", extra={"error": repr(exc), "size": len(batch)})
            self._commit_individually(batch)
            return
        CDR_BATCH_SECONDS.observe(time.perf_counter() - started)
        CDR_BATCH_SIZE.observe(len(batch))
        for op in batch:
            self._resolve(op, None)

    def _commit_individually(self, batch: list[_Op]) -> None:
        for op in batch:
            try:
                with self._engine.connect() as conn:
                    self._durable(conn)
                    with conn.begin():
                        self._durable_tx(conn)
                        self._apply(conn, [op])
            except Exception as exc:
                CDR_WRITE_ERRORS.inc()
                log.error(
                    "call-record write failed",
                    extra={"call_id": op.record_id, "op": op.kind, "error": repr(exc)},
                )
                self._resolve(op, exc)
            else:
                self._resolve(op, None)

    @staticmethod
    def _durable(conn: Connection) -> None:
        # The awaitable promises durability: with WAL, synchronous=FULL fsyncs each
        # commit. Group commit is what makes that affordable.
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA synchronous=FULL")
            conn.commit()  # ends SQLAlchemy's autobegin so the batch gets its own begin()

    @staticmethod
    def _durable_tx(conn: Connection) -> None:
        # PostgreSQL: the server, database or role may run with synchronous_commit=off
        # (a common tuning), where COMMIT returns before the WAL is flushed. Force it on
        # for this transaction only (SET LOCAL: the pooled connection keeps its setting).
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO on")

    @staticmethod
    def _apply(conn: Connection, batch: list[_Op]) -> None:
        # Consecutive inserts into one table go in one executemany; order across kinds is
        # preserved so started -> answered -> event -> ended for one call in one batch
        # lands correctly (an event row needs its record inserted first).
        pending: list[dict[str, Any]] = []
        pending_table = _table

        def flush() -> None:
            if pending:
                conn.execute(insert(pending_table), pending)
                pending.clear()

        for op in batch:
            if op.kind in ("insert", "event"):
                table = _table if op.kind == "insert" else _events
                if table is not pending_table:
                    flush()
                    pending_table = table
                pending.append(op.values)
                continue
            flush()
            if op.kind == "answer":
                stmt = update(_table).where(_table.c.id == op.record_id, _table.c.answered_at.is_(None))
            elif op.kind == "end":
                stmt = update(_table).where(_table.c.id == op.record_id, _table.c.ended_at.is_(None))
            else:  # "agent": the last answer wins
                stmt = update(_table).where(_table.c.id == op.record_id)
            result = conn.execute(stmt.values(**op.values))
            if not result.rowcount:
                log.info("call-record update matched nothing", extra={"call_id": op.record_id, "op": op.kind})
        flush()

    @staticmethod
    def _resolve(op: _Op, exc: BaseException | None) -> None:
        def _set() -> None:
            if op.future.done():
                return
            if exc is None:
                op.future.set_result(None)
            else:
                op.future.set_exception(exc)

        try:
            op.loop.call_soon_threadsafe(_set)
        except RuntimeError:
            pass  # loop already closed: nobody is waiting any more


_AgentUser = aliased(User, name="agent_user")


def _record_query() -> Any:
    return (
        select(CallRecord, Tenant.slug, Trunk.name, IvrTrace.result, _AgentUser.username)
        .outerjoin(Tenant, Tenant.id == CallRecord.tenant_id)
        .outerjoin(Trunk, Trunk.id == CallRecord.trunk_id)
        .outerjoin(IvrTrace, IvrTrace.call_id == CallRecord.id)
        .outerjoin(Agent, Agent.id == CallRecord.agent_id)
        .outerjoin(_AgentUser, _AgentUser.id == Agent.user_id)
    )


def _agent_ref(agent_id: int | None, username: str | None) -> dict[str, Any] | None:
    return {"id": agent_id, "username": username} if agent_id is not None else None


def _record_dict(rec: CallRecord, tenant_slug: str | None, trunk_name: str | None,
                 ivr_result: str | None, agent_username: str | None) -> dict[str, Any]:
    return {
        "id": rec.id,
        "sip_call_id": rec.sip_call_id,
        "tenant": tenant_slug,
        "trunk": trunk_name,
        "direction": rec.direction,
        "caller": rec.caller,
        "dialed": rec.dialed,
        "received_at": rec.received_at.isoformat(),
        "answered_at": rec.answered_at.isoformat() if rec.answered_at else None,
        "ended_at": rec.ended_at.isoformat() if rec.ended_at else None,
        "duration": rec.duration,
        "end_cause": rec.end_cause,
        "hangup_side": rec.hangup_side,
        "sip_status": rec.sip_status,
        "codec": rec.codec,
        "ivr_result": ivr_result,
        "agent": _agent_ref(rec.agent_id, agent_username),
        "queue": rec.queue,
        "disposition": rec.disposition,
    }


def call_events(db: Session, call_id: str) -> list[dict[str, Any]]:
    """The call's events, oldest first: ``{at, kind, agent: {id, username} | None, detail}``."""
    rows = db.execute(
        select(CallEvent, User.username)
        .outerjoin(Agent, Agent.id == CallEvent.agent_id)
        .outerjoin(User, User.id == Agent.user_id)
        .where(CallEvent.call_id == call_id)
        .order_by(CallEvent.at, CallEvent.id)
    ).all()
    return [{"at": e.at.isoformat(), "kind": e.kind, "agent": _agent_ref(e.agent_id, username), "detail": e.detail}
            for e, username in rows]


def recent_records(engine: Engine, limit: int = 100, tenant_id: int | None = None) -> list[dict[str, Any]]:
    """Newest-first call records as plain dicts (tenant slug, trunk name, IVR result and agent resolved)."""
    stmt = _record_query().order_by(CallRecord.received_at.desc(), CallRecord.id.desc()).limit(limit)
    if tenant_id is not None:
        stmt = stmt.where(CallRecord.tenant_id == tenant_id)
    with Session(engine) as db:
        return [_record_dict(*row) for row in db.execute(stmt).all()]


def record_detail(engine: Engine, call_id: str, tenant_id: int | None = None) -> dict[str, Any] | None:
    """One call record with its IVR trace, voicemails, wrap-up and events; None if missing
    (or of another tenant when ``tenant_id`` is given)."""
    stmt = _record_query().where(CallRecord.id == call_id)
    if tenant_id is not None:
        stmt = stmt.where(CallRecord.tenant_id == tenant_id)
    with Session(engine) as db:
        row = db.execute(stmt).first()
        if row is None:
            return None
        rec = row[0]
        trace = db.get(IvrTrace, call_id)
        voicemails = db.scalars(select(Voicemail).where(Voicemail.call_id == call_id).order_by(Voicemail.id))
        return {**_record_dict(*row), "ivr_trace": trace.trace if trace is not None else None,
                "voicemails": [{"path": v.path, "seconds": v.seconds, "created_at": v.created_at.isoformat()}
                               for v in voicemails],
                "wrapup_notes": rec.wrapup_notes,
                "wrapup_at": rec.wrapup_at.isoformat() if rec.wrapup_at else None,
                "events": call_events(db, call_id)}
