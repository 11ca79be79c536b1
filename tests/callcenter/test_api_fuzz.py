"""schemathesis over the whole OpenAPI of a demo node, with each role's token: no request answers 5xx.

One fresh node per role (an admin's run renames, deletes and re-passwords what the other roles
would need), seeded with a recorded, transcribed, evaluated and disputed call, so that generated
requests also hit real rows: path ids are drawn from the tenant's own rows half of the time.
Schemathesis runs its coverage phase (boundary values just inside and outside every bound, wrong
types, missing fields) and a bounded fuzzing phase, positive and negative. The manual runs with
thousands of requests per role are in the README (issue 17).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import engine
from schemathesis.engine import Status, events
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter import flows
from callcenter.db import make_engine
from callcenter.models import (AcdQueue, Agent, BusinessCalendarRow, Flow, Number, QaDispute, QaEvaluation, QaForm,
                               Tenant, Trunk, User)
from tests.support.audio import tone
from tests.support.node import NodeProcess
from tests.support.recordings import make_recorded_call

ROLES = {"admin": "admin", "supervisor": "supervisor", "qa": "qa", "agent": "agent1"}
"""Role -> the demo user who holds it."""
FUZZ_EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "8"))
"""Generated requests per operation and role in the fuzzing phase (the coverage phase adds its own);
``API_FUZZ_EXAMPLES=300`` for a long run by hand."""
NOT_FUZZED = "^/api/log(in|out)$"
"""Logging out would end the run's session; sign-in is the brute-force guard's (its own tests)."""


@dataclass
class Target:
    node: NodeProcess
    role: str
    token: str
    user_id: int
    known: dict[str, list[Any]] = field(default_factory=dict)
    """Path parameter name -> values that exist in the demo tenant."""


def _seed(node: NodeProcess) -> dict[str, list[Any]]:
    """A recorded call of agent1 with its transcript, automatic evaluation and an open dispute;
    returns the tenant's row ids and names by the path parameter that takes them."""
    database = make_engine(f"sqlite:///{node.data_dir}/callcenter.db")
    try:
        with Session(database) as db:
            tenant_id = db.scalar(select(Tenant.id).where(Tenant.slug == "demo"))
            assert tenant_id is not None
            agent_id = db.scalar(select(Agent.id).join(User, User.id == Agent.user_id)
                                 .where(User.tenant_id == tenant_id, User.username == "agent1"))
        words = [{"word": "안녕하세요", "start": 0.2, "end": 0.8, "conf": 0.9, "speaker": "agent"}]
        call = make_recorded_call(database, node.data_dir, tenant_id, caller_pcm=tone(1.0, freq=1000),
                                  agent_pcm=tone(1.0, freq=600), words=words, agent_id=agent_id)
        with Session(database) as db:
            evaluation = db.scalars(select(QaEvaluation).where(QaEvaluation.call_id == call.call_id)).first()
            if evaluation is not None:
                db.add(QaDispute(tenant_id=tenant_id, evaluation_id=evaluation.id, agent_id=agent_id,
                                 comment="the caller hung up first", status="open", resolution="",
                                 created_at=datetime.now(timezone.utc)))
                db.commit()

            def ids(model: Any) -> list[int]:
                return list(db.scalars(select(model.id).where(model.tenant_id == tenant_id)))

            queues = list(db.scalars(select(AcdQueue.name).where(AcdQueue.tenant_id == tenant_id)))
            names = (queues + list(db.scalars(select(Flow.name).where(Flow.tenant_id == tenant_id)))
                     + list(db.scalars(select(BusinessCalendarRow.name)
                                       .where(BusinessCalendarRow.tenant_id == tenant_id)))
                     + flows.prompt_library(node.data_dir).list(tenant_id))
            return {"call_id": [call.call_id], "user_id": ids(User), "agent_id": ids(Agent), "trunk_id": ids(Trunk),
                    "number_id": ids(Number), "queue_id": ids(AcdQueue), "form_id": ids(QaForm),
                    "evaluation_id": ids(QaEvaluation), "dispute_id": ids(QaDispute), "name": names,
                    "queue": queues}
    finally:
        database.dispose()


@pytest.fixture(scope="module", params=sorted(ROLES))
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    role: str = request.param
    data = tmp_path_factory.mktemp(f"fuzz-{role}") / "data"
    data.mkdir()
    node = NodeProcess(data).start()
    try:
        known = _seed(node)
        username = ROLES[role]
        password = (node.admin_password if role == "admin" else
                    node.agents[username][0] if role == "agent" else node.staff[username])
        reply = httpx.post(f"{node.http}/api/login", json={"tenant": "demo", "username": username,
                                                            "password": password}, timeout=30)
        reply.raise_for_status()
        yield Target(node, role, reply.json()["token"], reply.json()["user"]["id"], known)
    finally:
        node.stop()


def _schema(target: Target) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict({
        "headers": {"Authorization": f"Bearer {target.token}"},
        "checks": {"enabled": False, "not_a_server_error": {"enabled": True}},
        "generation": {"max-examples": FUZZ_EXAMPLES, "mode": "all", "database": "none", "deterministic": True},
        "phases": {"examples": {"enabled": False}, "stateful": {"enabled": False}},
        "suppress-health-check": ["all"],
        "request-timeout": 30,
        "workers": 1,
    })
    schema = schemathesis.openapi.from_url(f"{target.node.http}/openapi.json", config=config)
    known = target.known

    def existing(params: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({k: st.sampled_from(known[k]) if known.get(k) else st.just(v)
                                      for k, v in params.items()})

    @schema.hook
    def before_generate_path_parameters(context: Any, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(strategy, strategy.flatmap(lambda p: existing(p) if isinstance(p, dict) else st.just(p)))

    @schema.hook
    def filter_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> bool:
        # an admin changing their own password (or deactivating themselves) would end the run's session
        return not path_parameters or path_parameters.get("user_id") != target.user_id

    return schema.exclude(path_regex=NOT_FUZZED)


def test_no_request_of_any_role_answers_a_server_error(target: Target) -> None:
    requests, server_errors = 0, []
    for event in engine.from_schema(_schema(target)).execute():
        if isinstance(event, events.ScenarioFinished):
            requests += len(event.recorder.interactions)
            server_errors += [f"{event.recorder.label}: {check.failure_info.failure.title}\n"
                              f"{check.failure_info.code_sample}"
                              for checks in event.recorder.checks.values() for check in checks
                              if check.status == Status.FAILURE and check.failure_info is not None]
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            pytest.fail(f"schemathesis could not run: {event}")
    print(f"{target.role}: {requests} requests, {len(server_errors)} server errors")
    assert not server_errors, "\n\n".join(server_errors)
    assert requests > 1000  # the run reached the operations (a revoked token would end it in 401s early)
    with httpx.Client(base_url=target.node.http, timeout=30) as client:
        assert client.get("/api/me", headers={"Authorization": f"Bearer {target.token}"}).status_code == 200
