"""The http node against a local CRM server: success, timeout, bad JSON, a disallowed host.

The node runs inside a FlowRun; the call is a stand-in carrying only the caller data the
node reads (the full SIP path is covered in test_ivr_calls.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ivr.compiler import compile_flow
from ivr.runtime import FlowRun
from ivr.services import HttpPolicy, IvrServices
from ivr.trace import Trace
from tests.support.crm import CrmServer


@dataclass
class CallerData:
    caller: str = "13800138000"
    dialed: str = "4001234567"
    id: str = "call-1"
    tenant_id: int = 1
    ended: bool = False
    sensitive: bool = False


@dataclass
class Directory:
    policy: HttpPolicy

    async def http_policy(self, tenant_id: int | None) -> HttpPolicy:
        return self.policy


@dataclass
class Seen:
    traces: list[Any] = field(default_factory=list)


async def run_http(url: str, policy: HttpPolicy, timeout: float = 1.0) -> tuple[str | None, FlowRun]:
    flow = compile_flow({"name": "crm", "start": "ask", "nodes": [
        {"id": "ask", "type": "http", "url": url, "timeout": timeout,
         "map": {"tier": "customer.tier", "first_order": "orders.0.id"}, "next": "known", "on_error": "fallback"},
        {"id": "known", "type": "hangup"},
        {"id": "fallback", "type": "hangup"},
    ]})
    services = IvrServices(prompts=None, speech=None, directory=Directory(policy), queue=None,  # type: ignore[arg-type]
                           traces=None, voicemail=None, voicemail_dir=Path("."))  # type: ignore[arg-type]
    run = FlowRun(CallerData(), flow, services, Trace("call-1", 1, 1, "crm", 1))  # type: ignore[arg-type]
    run.trace.enter("ask", "http")
    return await flow.nodes["ask"].execute(run), run


LOCAL = HttpPolicy(allow_hosts=("127.0.0.1",), allow_private=True)


async def test_success_maps_the_json_into_variables(crm: CrmServer) -> None:
    nxt, run = await run_http(f"http://127.0.0.1:{crm.port}/ok?who={{caller}}", LOCAL)
    assert nxt == "known"
    assert run.variables["tier"] == "gold" and run.variables["first_order"] == 7
    assert crm.requests[0].path == "/ok?who=13800138000&caller=13800138000&dialed=4001234567"


@pytest.mark.parametrize(("path", "reason"), [("/slow", "timeout"), ("/bad-json", "bad_json"),
                                              ("/error", "bad_status")])
async def test_failures_take_the_fallback_branch(crm: CrmServer, path: str, reason: str) -> None:
    nxt, run = await run_http(f"http://127.0.0.1:{crm.port}{path}", LOCAL, timeout=0.5)
    assert nxt == "fallback"
    assert run.trace.steps[0].events[0]["reason"] == reason
    assert "tier" not in run.variables


async def test_a_host_off_the_allow_list_is_never_contacted(crm: CrmServer) -> None:
    nxt, run = await run_http(f"http://127.0.0.1:{crm.port}/ok", HttpPolicy(allow_hosts=("crm.example.com",),
                                                                          allow_private=True))
    assert nxt == "fallback" and run.trace.steps[0].events[0]["reason"] == "host_not_allowed"
    assert crm.requests == []


async def test_internal_addresses_are_refused_even_when_listed(crm: CrmServer) -> None:
    nxt, run = await run_http(f"http://127.0.0.1:{crm.port}/ok", HttpPolicy(allow_hosts=("127.0.0.1",)))
    assert nxt == "fallback" and run.trace.steps[0].events[0]["reason"] == "private_address"
    assert crm.requests == []
