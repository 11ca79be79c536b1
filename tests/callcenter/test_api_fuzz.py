"""schemathesis over the OpenAPI of a demo node with two tenants' tokens of every role (issue 18): no
request answers 5xx, and no request with one tenant's token reads or changes the other tenant's objects.

One fresh node per role (an admin's run renames, deletes and re-passwords what the other roles
would need). Each node holds two tenants: ``demo`` and ``rival``, the rival made with the operator's
lifecycle (``tenancy.create``). Both have a recorded, transcribed, evaluated and disputed call and a
sign-in ban; the rival also its own users of every role, agent, trunk, number, queue, QA form, flow,
calendar and prompt, each carrying a marker (``q7zx`` in every name and text, its number, its
caller's number) that nothing of the demo has.

Per node, in this order (the operator's runs share the admin's node: no extra node):

1. The demo tenant's user of the node's role over the whole OpenAPI: every operation whose path
   takes ids called with the rival's objects (up to ``CROSSINGS`` requests, each a valid request
   otherwise: schemathesis's examples phase, filled in), for the admin schemathesis's coverage phase
   (boundary values just inside and outside every bound, wrong types, missing fields: the admin
   reaches every handler that validates input, the other roles mostly meet 403; run by the other
   roles it cost a minute of the suite for little) and a bounded fuzzing
   phase, positive and negative, whose path parameters are half the time generated, a third the
   rival's rows, a sixth the demo's own.
2. The other direction, the rival's user of the same role: only the operations whose path takes
   ids, the same crossing examples (with the demo's objects) and a fuzzing phase of
   ``RIVAL_EXAMPLES`` per operation. Chosen for the time budget (~30 s for the whole module): a
   full second run per role would add ~25 s a node, and an operation without path parameters
   names no object, so only what it shows matters, which run 1 checks.
3. Admin node only: the platform operator over ``/api/operator/*`` and ``/api/me``, tenant slugs
   half the time the node's, without deleting or suspending tenants: no 5xx, and both tenants
   still work afterwards; then the demo admin over ``/api/operator/*``: 401 or 403 only.

The ``tenant_isolation`` check of runs 1 and 2, besides "no 5xx": a request whose path names one of
the other tenant's objects (an id or name the other tenant had when the run started and the
caller's tenant does not have) never answers 2xx; no 2xx body contains one of the other tenant's
markers (outside the caller's own names: ``PUT /api/calendars/cal-q7zx`` by the demo makes its
own calendar). After each run the other tenant's rows (every table with a ``tenant_id``, and its
``tenants`` row) and files (recordings, prompts, voicemail) are exactly what they were before it.
The manual runs with thousands of requests per role are in the README (issue 17).
"""
from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import re
import sqlite3
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import engine
from schemathesis.engine import Status, events
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from callcenter import flows, qa, tenancy
from callcenter.acd_config import QueueSettings
from callcenter.db import make_engine
from callcenter.models import (PLATFORM_SLUG, AcdQueue, AcdSnapshot, Agent, AuthBan, BusinessCalendarRow, CallRecord,
                               Flow, Number, QaDispute, QaEvaluation, QaForm, QueueThreshold, Tenant, Trunk, User,
                               utcnow)
from callcenter.security import create_session
from callcenter.settings import Settings
from ivr.calendar import ALWAYS_OPEN
from sip_bridge.registrar import sip_ha1
from tests.support.audio import SAMPLE_RATE, tone
from tests.support.node import NodeProcess
from tests.support.recordings import make_recorded_call

ROLES = {"admin": "admin", "supervisor": "supervisor", "qa": "qa", "agent": "agent1"}
"""Role -> the demo user who holds it."""
FUZZ_EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "8"))
"""Generated requests per operation and role in the fuzzing phase (the coverage phase adds its own);
``API_FUZZ_EXAMPLES=300`` for a long run by hand."""
RIVAL_EXAMPLES = int(os.environ.get("API_FUZZ_RIVAL_EXAMPLES", "3"))
"""Generated requests per operation in the rival's runs (the other direction) and in the demo admin's
run over the operator API."""
NOT_FUZZED = "^/api/log(in|out)$"
"""Logging out would end the run's session; sign-in is the brute-force guard's (its own tests)."""
OPERATOR_API = "^/api/operator/"
TAKES_PATH_IDS = r"\{"

RIVAL = "rival"
MARK = "q7zx"
RIVAL_NUMBER = "4009170001"
RIVAL_CALLER = "13917000001"
RIVAL_USERS = {"admin": tenancy.FIRST_ADMIN, "supervisor": f"sup-{MARK}", "qa": f"qa-{MARK}",
               "agent": f"agent-{MARK}"}
"""Role -> the rival's user who holds it (its first admin is ``admin``, as every tenant's)."""
RIVAL_NAMES = {"queue": f"rival-{MARK}", "calendar": f"cal-{MARK}", "flow": f"flow-{MARK}",
               "prompt": f"prompt-{MARK}"}
DEMO_MARKERS = frozenset({"13800138000", "the caller hung up first", "demo-carrier", "4001234567",
                          "Demo inbound number", "agent1", "agent2"})
"""Strings only the demo tenant has (its seeded call's caller, dispute comment, trunk, number, agents)."""

ID_MODELS: dict[str, Any] = {"call_id": CallRecord, "user_id": User, "agent_id": Agent, "trunk_id": Trunk,
                             "number_id": Number, "queue_id": AcdQueue, "form_id": QaForm,
                             "evaluation_id": QaEvaluation, "dispute_id": QaDispute, "ban_id": AuthBan}
"""Path parameter -> the table its ids are in (``name`` and ``queue`` take names)."""


@dataclass
class Side:
    """One of the node's two tenants: its id, its users' sign-ins by role, the strings only it has."""

    slug: str
    id: int
    users: dict[str, str]
    """role -> username"""
    markers: frozenset[str]


@dataclass
class Target:
    node: NodeProcess
    role: str
    db: Engine
    demo: Side
    rival: Side


# -- seeding -----------------------------------------------------------------------------------------
def _seed_call(database: Engine, node: NodeProcess, tenant_id: int, agent_id: int, *, queue: str, caller: str,
               dialed: str, word: str, comment: str) -> None:
    """A recorded call of the agent with its transcript (one ``word``), automatic evaluation, an open
    dispute (``comment``) and a sign-in ban of the tenant's agent."""
    words = [{"word": word, "start": 0.2, "end": 0.8, "conf": 0.9, "speaker": "agent"}]
    call = make_recorded_call(database, node.data_dir, tenant_id, caller_pcm=tone(1.0, freq=1000),
                              agent_pcm=tone(1.0, freq=600), words=words, agent_id=agent_id, queue=queue)
    now = datetime.now(UTC)
    with Session(database) as db, db.begin():
        db.execute(update(CallRecord).where(CallRecord.id == call.call_id).values(caller=caller, dialed=dialed))
        evaluation = db.scalars(select(QaEvaluation).where(QaEvaluation.call_id == call.call_id)).first()
        if evaluation is not None:
            db.add(QaDispute(tenant_id=tenant_id, evaluation_id=evaluation.id, agent_id=agent_id, comment=comment,
                             status="open", resolution="", created_at=now))
        db.add(AuthBan(protocol="http", source="192.0.2.77", account=f"{tenant_id}/agent", tenant_id=tenant_id,
                       failures=5, since=now, until=now + timedelta(hours=1)))


def _seed_demo(database: Engine, node: NodeProcess) -> Side:
    with Session(database) as db:
        tenant_id = db.scalar(select(Tenant.id).where(Tenant.slug == "demo"))
        agent_id = db.scalar(select(Agent.id).join(User, User.id == Agent.user_id)
                             .where(User.tenant_id == tenant_id, User.username == "agent1"))
    assert tenant_id is not None and agent_id is not None
    _seed_call(database, node, tenant_id, agent_id, queue="sales", caller="13800138000", dialed="4001234567",
               word="안녕하세요", comment="the caller hung up first")
    return Side("demo", tenant_id, ROLES, DEMO_MARKERS)


def _seed_rival(database: Engine, node: NodeProcess) -> Side:
    """The rival tenant, made as the operator makes one, with a marked row of every kind a path
    parameter takes; then its admin uploads a prompt and touches the queue and trunk, so the node
    loads what was written straight into the database (ACD and routing). Its users other than the
    first admin have no password (sessions are made directly, see ``_session``)."""
    with Session(database) as db, db.begin():
        tenant, _ = tenancy.create(db, RIVAL, f"Rival {MARK} Ltd", {})
        users = {role: User(tenant_id=tenant.id, username=RIVAL_USERS[role], password_hash="!", role=role,
                            active=True, created_at=utcnow()) for role in ("supervisor", "qa", "agent")}
        db.add_all(users.values())
        db.flush()
        agent = Agent(tenant_id=tenant.id, user_id=users["agent"].id, skills={RIVAL_NAMES["queue"]: 5},
                      sip_ha1=sip_ha1(f"{RIVAL}.{RIVAL_USERS['agent']}", MARK))
        queue = AcdQueue(tenant_id=tenant.id, name=RIVAL_NAMES["queue"], config=QueueSettings().model_dump(mode="json"))
        trunk = Trunk(tenant_id=tenant.id, name=f"trunk-{MARK}", inbound_ips=["192.0.2.9"],
                      outbound_host=f"sbc-{MARK}.invalid", outbound_port=5060, outbound_transport="udp")
        db.add_all([agent, queue, trunk, Number(tenant_id=tenant.id, number=RIVAL_NUMBER, description=f"line {MARK}"),
                    BusinessCalendarRow(tenant_id=tenant.id, name=RIVAL_NAMES["calendar"],
                                        definition=ALWAYS_OPEN.model_dump(mode="json"))])
        qa.ensure_default_form(db, tenant.id).name = f"form {MARK}"
        db.flush()
        flow = {"name": RIVAL_NAMES["flow"], "description": f"flow {MARK}", "voice": "en", "start": "hello",
                "nodes": [{"id": "hello", "type": "play", "prompt": f"Hello {MARK}", "next": "hours"},
                          {"id": "hours", "type": "business_hours", "calendar": RIVAL_NAMES["calendar"],
                           "open": "queue", "closed": "queue"},
                          {"id": "queue", "type": "queue", "queue": RIVAL_NAMES["queue"]}]}
        flows.import_flow(db, tenant.id, flow, frozenset(), number=RIVAL_NUMBER)
        tenant_id, agent_id, queue_id, trunk_id = tenant.id, agent.id, queue.id, trunk.id
    _seed_call(database, node, tenant_id, agent_id, queue=RIVAL_NAMES["queue"], caller=RIVAL_CALLER,
               dialed=RIVAL_NUMBER, word=f"word{MARK}", comment=f"dispute {MARK}")
    with httpx.Client(base_url=node.http, timeout=30) as client:
        client.headers["Authorization"] = f"Bearer {_session(database, tenant_id, tenancy.FIRST_ADMIN)[0]}"
        client.put(f"/api/prompts/{RIVAL_NAMES['prompt']}", files={"file": ("p.wav", _wav(), "audio/wav")}
                   ).raise_for_status()
        client.patch(f"/api/queues/{queue_id}", json={}).raise_for_status()
        client.patch(f"/api/trunks/{trunk_id}", json={}).raise_for_status()
    _wait_for_acd_save(database, tenant_id)
    markers = frozenset({MARK, RIVAL_NUMBER, RIVAL_CALLER})  # every marked name and text contains MARK
    return Side(RIVAL, tenant_id, RIVAL_USERS, markers)


def _wait_for_acd_save(database: Engine, tenant_id: int, timeout: float = 20.0) -> None:
    """Until the node's ACD has saved the tenant's queues and agents once: the proof it loaded them,
    and a row the snapshots before and after a run then both have."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(database) as db:
            if db.get(AcdSnapshot, tenant_id) is not None:
                return
        time.sleep(0.2)
    raise AssertionError("the node's ACD did not load the rival tenant")


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(tone(0.5))
    return out.getvalue()


def _session(database: Engine, tenant_id: int, username: str) -> tuple[str, int]:
    """A session token of the user, as ``/api/login`` makes one, and the user's id; without the
    password check (argon2 takes ~0.7 s on a busy CI machine, and the sign-in has its own tests)."""
    with Session(database) as db, db.begin():
        user = db.scalars(select(User).where(User.tenant_id == tenant_id, User.username == username)).one()
        return create_session(db, user), user.id


@pytest.fixture(scope="module", params=sorted(ROLES))
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    role: str = request.param
    data = tmp_path_factory.mktemp(f"fuzz-{role}") / "data"
    data.mkdir()
    node = NodeProcess(data).start()
    database = make_engine(f"sqlite:///{node.data_dir}/callcenter.db")
    try:
        yield Target(node, role, database, _seed_demo(database, node), _seed_rival(database, node))
    finally:
        database.dispose()
        node.stop()


# -- what a tenant has, and the check ----------------------------------------------------------------
def _known(target: Target, tenant_id: int) -> dict[str, list[Any]]:
    """The tenant's row ids and names now, by the path parameter that takes them."""
    with Session(target.db) as db:
        def ids(model: Any) -> list[Any]:
            return list(db.scalars(select(model.id).where(model.tenant_id == tenant_id)))

        def names(column: Any) -> list[str]:
            return list(db.scalars(select(column).where(column.class_.tenant_id == tenant_id).order_by(column)))

        known: dict[str, list[Any]] = {param: ids(model) for param, model in ID_MODELS.items()}
        kinds = [names(AcdQueue.name), names(Flow.name), names(BusinessCalendarRow.name)]
    kinds.append(flows.prompt_library(target.node.data_dir).list(tenant_id))
    # one of each kind first: the crossing examples take the first few
    interleaved = [name for row in itertools.zip_longest(*kinds) for name in row if name is not None]
    return {**known, "name": interleaved, "queue": kinds[0]}


def _names(target: Target, tenant_id: int) -> set[str]:
    """Every name the tenant has: queues, flows, calendars, wallboard thresholds, prompts."""
    with Session(target.db) as db:
        names = {name for model, column in ((AcdQueue, AcdQueue.name), (Flow, Flow.name),
                                            (BusinessCalendarRow, BusinessCalendarRow.name),
                                            (QueueThreshold, QueueThreshold.queue))
                 for name in db.scalars(select(column).where(model.tenant_id == tenant_id))}
    return names | set(flows.prompt_library(target.node.data_dir).list(tenant_id))


class Isolation:
    """The run in progress, for the ``tenant_isolation`` check (schemathesis checks are module-level
    functions, registered once for every run of the session)."""

    def __init__(self, target: Target, own: Side, other: Side) -> None:
        self.target, self.own, self.markers = target, own.id, other.markers
        self.theirs = {param: {str(v) for v in values} for param, values in _known(target, other.id).items()}
        """Path parameter -> the other tenant's ids or names when the run started."""
        self.crossings: set[tuple[str, str]] = set()
        """(operation, path) of the requests that named the other tenant's objects (a set: schemathesis
        may check a response again while it shrinks a failure)."""

    def crossed(self) -> str:
        return f"{len(self.crossings)} paths of {len(self.operations_crossed())} operations"

    def operations_crossed(self) -> set[str]:
        return {operation for operation, _ in self.crossings}

    def markers_in(self, content: bytes) -> list[str]:
        """The other tenant's markers in ``content``, once the caller's own names are taken out:
        the caller may have named its own objects like the other's (a PUT with the other's name)."""
        if any(m.encode() in content for m in self.markers):
            for name in sorted(_names(self.target, self.own), key=len, reverse=True):
                content = content.replace(name.encode(), b"")
        return sorted(m for m in self.markers if m.encode() in content)

    def owns(self, param: str, value: Any) -> bool:
        """Whether the caller's tenant has ``value`` itself now: a name it gave one of its own
        objects (``PUT /api/calendars/{name}`` with the other's name creates its own calendar)."""
        if param in ("name", "queue"):
            return str(value) in _names(self.target, self.own)
        with Session(self.target.db) as db:
            model = ID_MODELS[param]
            return db.scalar(select(model.tenant_id).where(model.id == value)) == self.own


_RUN: Isolation | None = None


@schemathesis.check
def tenant_isolation(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 2xx answer neither names one of the other tenant's objects in its path nor shows one of the
    other tenant's markers."""
    run = _RUN
    if run is None:
        return None
    success = 200 <= response.status_code < 300
    for param, value in (case.path_parameters or {}).items():
        if str(value) in run.theirs.get(param, ()):
            run.crossings.add((case.operation.label, case.formatted_path))
            if success and not run.owns(param, value):
                raise AssertionError(f"{response.status_code} for the other tenant's {param} {value!r}")
    shown = run.markers_in(response.content) if success else []
    if shown:
        raise AssertionError(f"the answer shows the other tenant's {shown}")
    return None


@schemathesis.check
def operator_api_refused(ctx: Any, response: Any, case: Any) -> bool | None:
    """A tenant's token gets 401 or 403 from every operator endpoint (405 for a method the endpoint
    does not have: routing answers before anyone is asked who calls)."""
    other_method = case.method.upper() != case.operation.method.upper()
    if response.status_code not in (401, 403) and not (other_method and response.status_code == 405):
        raise AssertionError(f"a tenant admin's token got {response.status_code} from the operator API")
    return None


def _snapshot(target: Target, tenant_id: int) -> dict[str, Any]:
    """The tenant's rows in every table with a ``tenant_id`` column (found in the database itself,
    so tables added later count too) and its ``tenants`` row; each of its files with its hash."""
    rows: dict[str, Any] = {}
    with sqlite3.connect(target.node.data_dir / "callcenter.db") as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = {row[1] for row in db.execute(f'PRAGMA table_info("{table}")')}
            key = "id" if table == "tenants" else "tenant_id" if "tenant_id" in columns else None
            if key is not None:
                cursor = db.execute(f'SELECT * FROM "{table}" WHERE {key} = ?', (tenant_id,))
                names = [c[0] for c in cursor.description]
                rows[table] = sorted(repr(_without_clocks(table, dict(zip(names, row)))) for row in cursor)
    recordings = Settings(data_dir=target.node.data_dir).effective_recordings_dir
    for folder in tenancy.tenant_folders(tenant_id, target.node.data_dir, recordings):
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file():
                rows[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return rows


NODE_CLOCKS = {"acd_snapshots": ("updated_at", "taken_at")}
"""Table -> the times the node itself writes there every few seconds (the ACD saves each tenant's
queues and agents), left out of the comparison; the rest of the row counts."""


def _without_clocks(table: str, row: dict[str, Any]) -> dict[str, Any]:
    clocks = NODE_CLOCKS.get(table, ())
    row = {k: v for k, v in row.items() if k not in clocks}
    for key, value in row.items():
        if clocks and isinstance(value, str) and value.startswith("{"):
            row[key] = {k: v for k, v in json.loads(value).items() if k not in clocks}
    return row


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [f"{key}: {before.get(key)!r} -> {after.get(key)!r}" for key in sorted(before.keys() | after.keys())
            if before.get(key) != after.get(key)]


# -- schemathesis runs ---------------------------------------------------------------------------------
def _config(token: str, checks: list[str], *, examples: int, coverage: bool = True,
            crossing: bool = False) -> schemathesis.Config:
    """``crossing``: the examples phase runs, with only the examples ``_tenant_schema`` adds."""
    return schemathesis.Config.from_dict({
        "headers": {"Authorization": f"Bearer {token}"},
        "checks": {"enabled": False, **{name: {"enabled": True} for name in checks}},
        "generation": {"max-examples": examples, "mode": "all", "database": "none", "deterministic": True},
        "phases": {"examples": {"enabled": crossing, "fill-missing": True}, "stateful": {"enabled": False},
                   "coverage": {"enabled": coverage}},
        "suppress-health-check": ["all"],
        "request-timeout": 30,
        "workers": 1,
    })


def _tenant_schema(target: Target, side: Side, other: Side, session: tuple[str, int], *, examples: int,
                   coverage: bool, other_share: int) -> schemathesis.BaseSchema:
    """Requests with ``side``'s ``session`` (token, user id). Every operation whose path takes ids is
    called with the other tenant's objects (``crossing_examples``); besides, in the fuzzing phase, path
    parameters are generated, or drawn from ``side``'s rows, or (``other_share`` times as often) from
    ``other``'s."""
    token, user_id = session
    config = _config(token, ["not_a_server_error", "tenant_isolation"], examples=examples, coverage=coverage,
                     crossing=True)
    schema = schemathesis.openapi.from_url(f"{target.node.http}/openapi.json", config=config)
    own, theirs = _known(target, side.id), _known(target, other.id)

    def existing(params: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        def drawn(known: dict[str, list[Any]]) -> st.SearchStrategy[dict[str, Any]]:
            return st.fixed_dictionaries({k: st.sampled_from(known[k]) if known.get(k) else st.just(v)
                                          for k, v in params.items()})
        return st.sampled_from([own] + [theirs] * other_share).flatmap(drawn)

    @schema.hook
    def before_generate_path_parameters(context: Any, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(strategy, strategy.flatmap(lambda p: existing(p) if isinstance(p, dict) else st.just(p)))

    @schema.hook
    def before_add_examples(context: Any, examples: list[Any]) -> None:
        examples[:] = crossing_examples(context.operation, examples, theirs)

    @schema.hook
    def filter_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> bool:
        # an admin changing their own password (or deactivating themselves) would end the run's session
        return not path_parameters or path_parameters.get("user_id") != user_id

    return schema.exclude(path_regex=NOT_FUZZED)


def _operations_naming(target: Target, known: dict[str, Any], excluded: str) -> set[str]:
    """The operations ("GET /api/users/{user_id}") whose path takes one of ``known``'s ids or names."""
    paths = httpx.get(f"{target.node.http}/openapi.json", timeout=30).json()["paths"]
    return {f"{method.upper()} {path}" for path, item in paths.items() if not re.search(excluded, path)
            for method in item if any(known.get(param) for param in re.findall(r"\{(\w+)\}", path))}


CROSSINGS = 4
"""Requests per operation with the other tenant's objects in the path, in the examples phase."""


def crossing_examples(operation: Any, examples: list[Any], theirs: dict[str, list[Any]]) -> list[Any]:
    """The operation's filled-in example (a valid request) with the other tenant's ids and names in
    its path, up to ``CROSSINGS`` of them; none for an operation without path parameters (the fuzzing
    phase calls those)."""
    cases: dict[str, Any] = {}
    for case in examples:
        params = case.path_parameters or {}
        if not any(theirs.get(k) for k in params):
            continue
        for i in range(CROSSINGS):
            crossed = {k: theirs[k][i % len(theirs[k])] if theirs.get(k) else v for k, v in params.items()}
            cases.setdefault(repr(sorted(crossed.items())), operation.Case(
                path_parameters=crossed, query=case.query, headers=case.headers, cookies=case.cookies,
                body=case.body, media_type=case.media_type))
    return list(cases.values())


@dataclass
class Outcome:
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)
    seconds: float = 0.0

    def __str__(self) -> str:
        return f"{self.requests} requests in {self.seconds:.1f} s, answers {sorted(self.statuses)}"


def _run(schema: schemathesis.BaseSchema) -> Outcome:
    """Run schemathesis: the requests made, the failed checks (with a curl line each), the answers."""
    outcome, started = Outcome(), time.monotonic()
    for event in engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            outcome.requests += len(event.recorder.interactions)
            outcome.statuses |= {i.response.status_code for i in event.recorder.interactions.values() if i.response}
            outcome.failures += [f"{event.recorder.label}: {check.failure_info.failure.title}: "
                                 f"{check.failure_info.failure.message}\n{check.failure_info.code_sample}"
                                 for checks in event.recorder.checks.values() for check in checks
                                 if check.status == Status.FAILURE and check.failure_info is not None]
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            pytest.fail(f"schemathesis could not run: {event}")
    outcome.seconds = time.monotonic() - started
    return outcome


@contextmanager
def _isolated(target: Target, own: Side, other: Side) -> Iterator[Isolation]:
    """Arm ``tenant_isolation`` for a run of ``own``'s token; afterwards, ``other``'s rows and files
    must be unchanged."""
    global _RUN
    before = _snapshot(target, other.id)
    _RUN = Isolation(target, own, other)
    try:
        yield _RUN
    finally:
        _RUN = None
    changed = _changes(before, _snapshot(target, other.id))
    assert not changed, f"{own.slug}'s {target.role} changed {other.slug}'s data:\n" + "\n".join(changed)


def test_no_request_of_either_tenant_crosses_over_or_fails(target: Target) -> None:
    """Runs 1 and 2 of the module docstring."""
    sessions = {side.slug: _session(target.db, side.id, side.users[target.role])
                for side in (target.demo, target.rival)}
    with _isolated(target, target.demo, target.rival) as run:
        outcome = _run(_tenant_schema(target, target.demo, target.rival, sessions["demo"],
                                      examples=FUZZ_EXAMPLES, coverage=target.role == "admin", other_share=2))
        print(f"demo {target.role}: {outcome}; {run.crossed()} named the rival's objects")
        assert not outcome.failures, "\n\n".join(outcome.failures)
    assert outcome.requests > 1000  # the run reached the operations (a revoked token would end it in 401s early)
    assert _operations_naming(target, run.theirs, NOT_FUZZED) <= run.operations_crossed()

    with _isolated(target, target.rival, target.demo) as run:
        schema = _tenant_schema(target, target.rival, target.demo, sessions[RIVAL], examples=RIVAL_EXAMPLES,
                                coverage=False, other_share=3)
        outcome = _run(schema.include(path_regex=TAKES_PATH_IDS).exclude(path_regex=OPERATOR_API))
        print(f"rival {target.role}: {outcome}; {run.crossed()} named the demo's objects")
        assert not outcome.failures, "\n\n".join(outcome.failures)
    assert outcome.requests > 50
    assert _operations_naming(target, run.theirs, f"{NOT_FUZZED}|{OPERATOR_API}") <= run.operations_crossed()

    with httpx.Client(base_url=target.node.http, timeout=30) as client:
        for token, _ in sessions.values():
            assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def _operator_schema(target: Target, token: str) -> schemathesis.BaseSchema:
    """The operator's requests over its API and ``/api/me``; the tenant slug in a path is generated
    or, half the time, one of the node's tenants. Deleting and suspending tenants are left out: they
    would end the tenants the other runs use, and no hook keeps them off those tenants (schemathesis
    also reuses the slugs it saw in earlier answers)."""
    config = _config(token, ["not_a_server_error"], examples=FUZZ_EXAMPLES)
    schema = schemathesis.openapi.from_url(f"{target.node.http}/openapi.json", config=config)
    slugs = [target.demo.slug, target.rival.slug, PLATFORM_SLUG]

    @schema.hook
    def before_generate_path_parameters(context: Any, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(strategy, st.fixed_dictionaries({"slug": st.sampled_from(slugs)}))

    return (schema.include(path_regex=f"{OPERATOR_API}|^/api/me$")
            .exclude(method="DELETE").exclude(path_regex="/suspend$"))


def test_operator_api(target: Target) -> None:
    """Run 3 of the module docstring: in the admin's node, after the tenants' runs."""
    if target.role != "admin":
        pytest.skip("the operator's runs share the admin's node")
    with Session(target.db) as db:
        platform = db.scalar(select(Tenant.id).where(Tenant.slug == PLATFORM_SLUG))
    assert platform is not None
    sessions = [_session(target.db, side.id, side.users["admin"])[0] for side in (target.demo, target.rival)]
    outcome = _run(_operator_schema(target, _session(target.db, platform, "operator")[0]))
    print(f"operator: {outcome}")
    assert not outcome.failures, "\n\n".join(outcome.failures)
    assert outcome.requests > 100 and 200 in outcome.statuses
    with httpx.Client(base_url=target.node.http, timeout=30) as client:
        for token in sessions:  # both tenants still work: neither suspended (its sessions would end) nor deleted
            assert client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    config = _config(sessions[0], ["operator_api_refused"], examples=RIVAL_EXAMPLES)
    schema = schemathesis.openapi.from_url(f"{target.node.http}/openapi.json", config=config)
    outcome = _run(schema.include(path_regex=OPERATOR_API))
    print(f"demo admin on the operator API: {outcome}")
    assert not outcome.failures, "\n\n".join(outcome.failures)
    assert outcome.requests > 20
