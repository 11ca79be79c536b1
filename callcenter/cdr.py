"""Call-record store for the SIP node: group commit on one writer thread.

The event loop never touches the database: each call enqueues an operation and awaits a
future. The writer thread takes everything queued, applies it in order in one
transaction, commits, then resolves the futures, so a burst of N calls costs one
commit (one fsync) instead of N. If a batch fails, its operations are retried one by
one so a single bad row only fails its own awaitable.

When the database is unavailable (stopped, restarting, unreachable: see
``callcenter.db_health``) nothing fails and no call waits: the writer logs once
("database unavailable, N call-record operations waiting"), resolves every awaitable at
once, keeps the operations in memory in their order and tries again every
``RETRY_INTERVAL`` seconds; when a write succeeds it writes them all, then says so once.
A commit that failed as the connection went may have landed: the operations of that batch
that add a row check for it first, so each lands exactly once (updates are idempotent). At
most ``backlog`` operations are held (the ``call_record_backlog`` setting); beyond it they
are dropped, counted (``callcenter_cdr_dropped_operations_total``) and logged once per outage.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Engine, Table, case, insert, literal, select, update
from sqlalchemy.orm import Session, aliased

from callcenter.db_health import database_unavailable
from callcenter.metrics import CDR_BATCH_SECONDS, CDR_BATCH_SIZE, CDR_DROPPED, CDR_PENDING, CDR_WRITE_ERRORS
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
    UTCDateTime,
    Voicemail,
    utcnow,
)

log = logging.getLogger(__name__)

MAX_BATCH = 500
"""Operations per transaction; bounds the time any single commit holds the write lock."""
DEFAULT_BACKLOG = 100_000
"""Operations held in memory during an outage (the ``call_record_backlog`` setting's default):
a few hundred bytes each, an IVR trace a few kilobytes."""
RETRY_INTERVAL = 1.0
"""Seconds between attempts to write while the database is unavailable."""
COMMIT_WAIT = 2.0
"""Longest a caller waits for its commit; a database that hangs instead of refusing must not hold
up the call, whose operation keeps its place in the queue."""

_table: Table = CallRecord.__table__  # type: ignore[assignment]
_events: Table = CallEvent.__table__  # type: ignore[assignment]
_traces: Table = IvrTrace.__table__  # type: ignore[assignment]
_voicemails: Table = Voicemail.__table__  # type: ignore[assignment]
_INSERTS = {"insert": _table, "event": _events, "voicemail": _voicemails}
"""Operations that add a row: consecutive ones of a table go in one executemany."""
_TABLES = {**_INSERTS, "trace": _traces}


@dataclass
class _Op:
    kind: str  # "insert" | "answer" | "end" | "agent" | "event" | "trace" | "voicemail"
    record_id: str
    values: dict[str, Any]
    future: asyncio.Future[None] | None  # None: nobody waits (held during an outage, or resolved)
    loop: asyncio.AbstractEventLoop | None
    maybe_applied: bool = False
    """Part of a transaction that failed as the connection went: its commit may have landed."""


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
    committed (durable), or at once while the database is unavailable (the operation is
    then held in memory and written, in order, when it is back).

    Besides the records themselves (start, answer, agent, end) it writes what hangs off them
    during a call: the call's events, its IVR trace and its voicemails, so that all of it
    survives an outage the same way and lands after the record it belongs to.
    """

    def __init__(self, engine: Engine, *, backlog: int = DEFAULT_BACKLOG, node_id: str | None = None) -> None:
        self._engine = engine
        self._backlog = backlog
        self.node_id = node_id
        """This node's name in a cluster, written into the records it starts; None on a single node."""
        self._queue: queue.SimpleQueue[_Op | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        # -- writer thread only, except _outage (read on the loop: a plain bool) --
        self._pending: deque[_Op] = deque()
        self._outage = False
        self._outage_started = 0.0
        self._next_attempt = 0.0
        self._dropped_calls: set[str] = set()
        self._drop_logged = False

    @property
    def database_down(self) -> bool:
        """Whether the writer is holding operations for want of the database."""
        return self._outage

    @property
    def pending(self) -> int:
        """Operations submitted and not written yet (``callcenter_cdr_pending_operations``)."""
        return len(self._pending) + self._queue.qsize()

    async def start(self) -> None:
        """Start the writer thread."""
        if self._thread is not None:
            return
        CDR_PENDING.set_function(lambda: self.pending)
        self._thread = threading.Thread(target=self._run, name="cdr-writer", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Commit everything already queued (one more try if the database is down), then stop the
        writer thread."""
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
                "node_id": self.node_id,
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

    async def call_agent(self, record_id: str, *, agent_id: int, queue: str | None,
                         handed_over: bool = False) -> None:
        """Record the agent who answered, the queue the call came from and, in a cluster, the
        node where the agent's side of the call was when it is not the call's node: this node,
        when the caller was ``handed_over`` by the node it came in on (else None: the same
        node). A later call overwrites all three (after a transfer the record names the last
        agent; every answer is also in the call's events)."""
        await self._submit("agent", record_id, {"agent_id": agent_id, "queue": queue,
                                                "agent_node": self.node_id if handed_over else None})

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

    async def ivr_trace(self, record_id: str, *, tenant_id: int | None, flow_version_id: int | None,
                        result: str | None, trace: dict[str, Any]) -> None:
        """Save the call's IVR trace as it is now (a later save of the same call replaces it)."""
        await self._submit("trace", record_id, {
            "call_id": record_id, "tenant_id": tenant_id, "flow_version_id": flow_version_id, "result": result,
            # a copy: the live trace keeps growing while this waits for the writer
            "trace": copy.deepcopy(trace), "updated_at": utcnow()})

    async def voicemail(self, record_id: str, *, tenant_id: int | None, path: str, seconds: float) -> None:
        """Attach a voicemail (a WAV file already written) to the call's record."""
        await self._submit("voicemail", record_id, {"call_id": record_id, "tenant_id": tenant_id, "path": path,
                                                     "seconds": seconds, "created_at": utcnow()})

    def close_dangling(self) -> int:
        """At start-up, before serving: end every record a previous run of this node left open
        (only this node's: in a cluster the others' records are their live calls)."""
        mine = _table.c.node_id.is_(None) if self.node_id is None else _table.c.node_id == self.node_id
        with self._engine.begin() as conn:
            result = conn.execute(
                update(_table)
                .where(_table.c.ended_at.is_(None), mine)
                .values(ended_at=utcnow(), end_cause="interrupted")
            )
        count = int(result.rowcount or 0)
        if count:
            log.warning("closed call records left open by a previous run", extra={"count": count, "node": self.node_id})
        return count

    def close_node(self, node_id: str, *, died_at: datetime, received_before: datetime,
                   end_cause: str = "node_lost") -> int:
        """A survivor's cleanup after node ``node_id`` died: end its open records received before
        ``received_before`` (later ones belong to a new run of that node), as hung up by the
        platform at ``died_at`` (or at their answer or arrival, if that came later: the death
        time is an estimate). Blocking; returns how many were closed."""
        _require_aware("died_at", died_at)
        _require_aware("received_before", received_before)
        c = _table.c
        ended = case((c.answered_at > died_at, c.answered_at), (c.received_at > died_at, c.received_at),
                     else_=literal(died_at, UTCDateTime()))
        with self._engine.begin() as conn:
            result = conn.execute(
                update(_table)
                .where(c.node_id == node_id, c.ended_at.is_(None), c.received_at < received_before)
                .values(ended_at=ended, end_cause=end_cause, hangup_side=HangupSide.PLATFORM.value)
            )
        return int(result.rowcount or 0)

    # -- the event loop's side ---------------------------------------------------------

    async def _submit(self, kind: str, record_id: str, values: dict[str, Any]) -> None:
        if self._closed:
            raise RuntimeError("CallRecordStore is closed")
        if self._thread is None:
            raise RuntimeError("CallRecordStore.start() was not awaited")
        values = _clip(values, _TABLES.get(kind, _table))
        if self._outage:  # held in memory until the database is back: the call does not wait for it
            self._queue.put(_Op(kind, record_id, values, None, None))
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        future.add_done_callback(_retrieve)  # a caller that stopped waiting must not leave an unread error
        self._queue.put(_Op(kind, record_id, values, future, loop))
        # Not cancelled with the caller: a write already queued keeps its place and outcome.
        done, _ = await asyncio.wait({future}, timeout=COMMIT_WAIT)
        if done:
            future.result()

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            wait = max(0.0, self._next_attempt - time.monotonic()) if self._pending else None
            stopping = self._take(wait)
            if self._pending and (stopping or time.monotonic() >= self._next_attempt):
                self._write_pending()
        if self._pending:
            log.error("call-record operations lost: the database was unavailable when the node stopped",
                      extra={"operations": len(self._pending)})
            for op in self._pending:
                self._resolve(op, None)

    def _take(self, wait: float | None) -> bool:
        """Move what was queued into ``_pending`` (waiting up to ``wait`` s for the first item,
        None: for ever); True once the stop marker came."""
        try:
            first = self._queue.get(timeout=wait) if wait != 0 else self._queue.get_nowait()
        except queue.Empty:
            return False
        stopping = False
        item: _Op | object = first
        while True:
            if item is _STOP:
                stopping = True
            else:
                self._admit(item)  # type: ignore[arg-type]
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return stopping

    def _admit(self, op: _Op) -> None:
        if op.record_id in self._dropped_calls or len(self._pending) >= self._backlog:
            self._drop(op)
            return
        self._pending.append(op)
        if self._outage:
            self._resolve(op, None)

    def _drop(self, op: _Op) -> None:
        """The backlog is full: this operation is lost (and the rest of its call's, which would
        fail without it); the call itself goes on."""
        CDR_DROPPED.inc()
        if op.kind == "end":
            self._dropped_calls.discard(op.record_id)
        else:
            self._dropped_calls.add(op.record_id)
        if not self._drop_logged:
            self._drop_logged = True
            log.error("call-record backlog full: further call records are lost until the database is back",
                      extra={"call_id": op.record_id, "backlog": self._backlog})
        self._resolve(op, None)

    def _write_pending(self) -> None:
        written = 0
        while self._pending:
            batch = list(islice(self._pending, MAX_BATCH))
            done = self._commit(batch)
            written += done
            if done < len(batch):  # the database is unavailable: try again later
                self._hold()
                return
        if self._outage:
            self._outage = False
            self._dropped_calls.clear()
            self._drop_logged = False
            log.info("database available again: held call-record operations written",
                     extra={"operations": written,
                            "outage_seconds": round(time.monotonic() - self._outage_started, 1)})

    def _hold(self) -> None:
        """Keep everything pending for the next try; the first time, say so once."""
        self._next_attempt = time.monotonic() + RETRY_INTERVAL
        if self._outage:
            return
        self._outage = True
        self._outage_started = time.monotonic()
        log.warning("database unavailable, %d call-record operations waiting", len(self._pending),
                    extra={"operations": len(self._pending), "backlog": self._backlog})
        for op in self._pending:  # the calls go on; their records follow when the database is back
            self._resolve(op, None)

    def _commit(self, batch: list[_Op]) -> int:
        """Write the first ``len(batch)`` pending operations; how many are done (committed, or failed
        alone) and popped. Fewer than all means the database is unavailable."""
        started = time.perf_counter()
        try:
            self._transaction(batch)
        except Exception as exc:
            if database_unavailable(exc):
                for op in batch:  # the commit may have landed before the connection went: check first
                    op.maybe_applied = True
                return 0
            log.warning("call-record batch failed, retrying one by one", extra={"error": repr(exc), "size": len(batch)})
            return self._commit_individually(batch)
        CDR_BATCH_SECONDS.observe(time.perf_counter() - started)
        CDR_BATCH_SIZE.observe(len(batch))
        for op in batch:
            self._pending.popleft()
            self._resolve(op, None)
        return len(batch)

    def _commit_individually(self, batch: list[_Op]) -> int:
        for done, op in enumerate(batch):
            try:
                self._transaction([op])
            except Exception as exc:
                if database_unavailable(exc):
                    op.maybe_applied = True
                    return done
                CDR_WRITE_ERRORS.inc()
                log.error(
                    "call-record write failed",
                    extra={"call_id": op.record_id, "op": op.kind, "error": repr(exc)},
                )
                self._pending.popleft()
                self._resolve(op, exc)
            else:
                self._pending.popleft()
                self._resolve(op, None)
        return len(batch)

    def _transaction(self, batch: list[_Op]) -> None:
        with self._engine.connect() as conn:
            self._durable(conn)
            with conn.begin():
                self._durable_tx(conn)
                self._apply(conn, batch)

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
            if op.maybe_applied and _already_written(conn, op):
                continue  # the commit that failed under it had landed: exactly once
            if op.kind in _INSERTS:
                table = _INSERTS[op.kind]
                if table is not pending_table:
                    flush()
                    pending_table = table
                pending.append(op.values)
                continue
            flush()
            if op.kind == "trace":
                _save_trace(conn, op)
                continue
            if op.kind == "answer":
                stmt = update(_table).where(_table.c.id == op.record_id, _table.c.answered_at.is_(None))
            elif op.kind == "end":
                stmt = update(_table).where(_table.c.id == op.record_id, _table.c.ended_at.is_(None))
            else:  # "agent": the last answer wins
                stmt = update(_table).where(_table.c.id == op.record_id)
            result = conn.execute(stmt.values(**op.values))
            if not result.rowcount and not op.maybe_applied:
                log.info("call-record update matched nothing", extra={"call_id": op.record_id, "op": op.kind})
        flush()

    @staticmethod
    def _resolve(op: _Op, exc: BaseException | None) -> None:
        future, loop = op.future, op.loop
        if future is None or loop is None:
            return
        op.future = None  # resolved once: held operations are resolved when the outage starts

        def _set() -> None:
            if future.done():
                return
            if exc is None:
                future.set_result(None)
            else:
                future.set_exception(exc)

        try:
            loop.call_soon_threadsafe(_set)
        except RuntimeError:
            pass  # loop already closed: nobody is waiting any more


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _already_written(conn: Connection, op: _Op) -> bool:
    """For a row-adding operation retried after a commit that failed midway: is its row there?"""
    v = op.values
    if op.kind == "insert":
        found = select(_table.c.id).where(_table.c.id == op.record_id)
    elif op.kind == "event":
        found = select(_events.c.id).where(_events.c.call_id == op.record_id, _events.c.kind == v["kind"],
                                           _events.c.at == v["at"])
    elif op.kind == "voicemail":
        found = select(_voicemails.c.id).where(_voicemails.c.call_id == op.record_id,
                                               _voicemails.c.path == v["path"])
    else:
        return False  # updates and the trace's upsert are idempotent
    return conn.execute(found.limit(1)).first() is not None


def _save_trace(conn: Connection, op: _Op) -> None:
    v = op.values
    result = conn.execute(update(_traces).where(_traces.c.call_id == op.record_id)
                          .values(result=v["result"], trace=v["trace"], updated_at=v["updated_at"]))
    if not result.rowcount:
        conn.execute(insert(_traces).values(**v))


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
        "node": rec.node_id,
        "agent_node": rec.agent_node,
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
