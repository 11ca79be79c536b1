"""Calls agents place from the softphone (issue 15, item 1), without a network: the rules a
``dial`` request is checked against (``callcenter.outbound``), and the ACD keeping the agent
busy while the call lasts (``AcdService.agent_dialing``), on a real engine with fake devices.
The call itself, from the page through a trunk, is ``test_an_agent_calls_a_customer_from_the_page``
in ``tests/softphone_web/test_agent_page.py``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from acd import AgentConfig, AgentState, CallQueued, QueueConfig
from callcenter.acd_service import AcdService, TenantConfig
from callcenter.agent_directory import AgentDirectory, AgentIdentity
from callcenter.outbound import (OutboundRefused, caller_id_for, check_agent, check_number, failure_error,
                                 normalise_dialed, tenant_numbers)
from sip_bridge.routing import Number, RoutingTable, Tenant, Trunk

AGENT = "7"


class _Refused:
    """``with _Refused("dial-busy"):`` the block raises OutboundRefused with that error id."""

    def __init__(self, error_id: str) -> None:
        self.error_id = error_id

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        assert isinstance(exc, OutboundRefused), f"not refused ({exc!r})"
        assert exc.error_id == self.error_id, exc.error_id
        return True


class Lines:
    def __init__(self, routing: RoutingTable, up: bool = True) -> None:
        self.routing, self.up = routing, up

    def trunks_up(self, tenant_id: int, trunk_id: int | None = None) -> list[Trunk]:
        return self.routing.outbound_trunks(tenant_id) if self.up else []


def routing() -> RoutingTable:
    trunk = Trunk(id=1, tenant_id=1, name="carrier", outbound_host="127.0.0.1")
    return RoutingTable(trunks=[trunk],
                        numbers={"4001234567": Number("4001234567", 1), "02188886666": Number("02188886666", 1),
                                 "4009990000": Number("4009990000", 2)},
                        tenants={1: Tenant(1, "demo", ("1", "0")), 2: Tenant(2, "other", ("1",))})


def test_the_number_is_normalised_and_junk_refused() -> None:
    assert normalise_dialed(" +86 (138) 0013-8000 ") == "+8613800138000"
    assert normalise_dialed("010.8888.6666") == "01088886666"
    for junk in ("", "   ", "abc", "138@evil", "1%2", "12+34", "1" * 25):
        with _Refused("bad-number"):
            normalise_dialed(junk)


def test_the_caller_id_is_one_of_the_tenants_numbers() -> None:
    table = routing()
    assert tenant_numbers(table, 1) == ["4001234567", "02188886666"]
    assert caller_id_for(table, 1, None) == "4001234567"  # the first by default
    assert caller_id_for(table, 1, "02188886666") == "02188886666"
    with _Refused("bad-caller-id"):
        caller_id_for(table, 1, "4009990000")  # another tenant's
    with _Refused("bad-caller-id"):
        caller_id_for(table, 1, "13800138000")
    with _Refused("no-caller-id"):
        caller_id_for(table, 3, None)


def test_the_dialing_rules_and_a_trunk_up_are_needed() -> None:
    check_number(Lines(routing()), 1, "13800138000")
    with _Refused("number-not-allowed"):
        check_number(Lines(routing()), 1, "+4420794600")  # not one of the tenant's prefixes
    with _Refused("number-not-allowed"):
        check_number(Lines(routing()), 2, "01088886666")
    with _Refused("no-trunk"):
        check_number(Lines(routing(), up=False), 1, "13800138000")


def test_who_may_dial() -> None:
    for state in (AgentState.AVAILABLE, AgentState.BREAK, AgentState.WRAP_UP):
        check_agent(state)
    for state in (AgentState.RESERVED, AgentState.ON_CALL):
        with _Refused("dial-busy"):
            check_agent(state)
    with _Refused("dial-offline"):
        check_agent(AgentState.OFFLINE)
    assert failure_error("busy") == "dial-callee-busy" and failure_error("no_answer") == "dial-no-answer"
    assert failure_error("something_else") == "dial-failed"


# -- the ACD: busy while the call lasts --------------------------------------------------------

class Registrar:
    def add_listener(self, listener: Any) -> None: ...

    def contact_for(self, sip_user: str) -> None:
        return None


class Tabs:
    async def ring(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an agent placing a call is rung for nothing")

    def on_acd_event(self, tenant_id: int, event: Any) -> None: ...

    def tenant_moved(self, tenant_id: int) -> None: ...


def acd() -> AcdService:
    """Tenant 1's ACD with queue sales (wrap-up 10 s) and agent 7 (sales), whose tab is connected."""
    service = AcdService(None, AgentDirectory(), Registrar(), None, None, None,  # type: ignore[arg-type]
                         None, Path("hold.wav"), None)
    identity = AgentIdentity(1, AGENT, "agent1", "demo.agent1", "", False, False)
    service._install(TenantConfig(1, queues=[QueueConfig(name="sales", skill="sales", announce_every=None)],
                                  callback_keys={"sales": None},
                                  agents=[(AgentConfig(AGENT, {"sales": 5}), identity)]), time.time())
    service.softphone_connected(1, AGENT, Tabs())  # type: ignore[arg-type]
    return service


def state(service: AcdService) -> tuple[AgentState, str | None]:
    view = service.agent_view(1, AGENT)
    assert view is not None
    return view.state, view.reason


async def test_an_available_agent_dialing_is_on_call_gets_no_offer_then_wraps_up() -> None:
    service = acd()
    service.request_state(1, AGENT, "available", None)
    call_id = service.agent_dialing(1, AGENT, "13800138000")
    assert state(service)[0] is AgentState.ON_CALL
    service._handle(1, CallQueued("caller-1", "sales", 0, time.time()))  # a customer calls meanwhile
    assert [w.call_id for w in service.engines[1].waiting("sales")] == ["caller-1"]  # not offered
    assert state(service)[0] is AgentState.ON_CALL
    service.call_ended(1, call_id)  # the conversation is over: wrap-up, as after an inbound call
    assert state(service)[0] is AgentState.WRAP_UP


async def test_a_break_resumes_after_the_call_and_a_failed_dial_has_no_wrap_up() -> None:
    service = acd()
    service.request_state(1, AGENT, "break", "lunch")
    call_id = service.agent_dialing(1, AGENT, "13800138000")
    assert state(service)[0] is AgentState.ON_CALL
    service.agent_dial_failed(1, call_id, AGENT)  # nobody answered
    assert state(service) == (AgentState.BREAK, "lunch")


async def test_wrap_up_may_dial_a_call_or_offline_may_not() -> None:
    service = acd()
    service.request_state(1, AGENT, "available", None)
    service.call_ended(1, service.agent_dialing(1, AGENT, "13800138000"))
    assert state(service)[0] is AgentState.WRAP_UP
    second = service.agent_dialing(1, AGENT, "13800138001")  # the next call from wrap-up
    assert state(service)[0] is AgentState.ON_CALL
    with _Refused("dial-busy"):
        service.agent_dialing(1, AGENT, "13800138002")  # one call at a time
    service.agent_dial_failed(1, second, AGENT)
    assert state(service)[0] is AgentState.AVAILABLE
    service.request_state(1, AGENT, "offline", None)
    with _Refused("dial-offline"):
        service.agent_dialing(1, AGENT, "13800138000")


async def test_a_queue_names_the_number_its_agents_call_from() -> None:
    service = acd()
    assert service.default_caller_id(1, AGENT) is None  # no queue names one: the tenant's first number
    service._remember(TenantConfig(1, queues=[QueueConfig(name="sales", skill="sales")], callback_keys={"sales": None},
                                   caller_ids={"sales": "4001234568"},
                                   agents=[(AgentConfig(AGENT, {"sales": 5}),
                                            AgentIdentity(1, AGENT, "agent1", "demo.agent1", "", False, False))]))
    assert service.default_caller_id(1, AGENT) == "4001234568"  # agent 7 works sales
    assert service.default_caller_id(1, "8") is None  # an agent outside the queue
    assert service.default_caller_id(1, queue="sales") == "4001234568"  # a campaign on the queue
