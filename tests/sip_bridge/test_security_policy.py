"""Per-trunk and per-phone security policy, sans-I/O: a trunk that requires TLS refuses INVITEs
that came over anything else; an agent whose phone must use TLS cannot register over UDP or TCP."""

from __future__ import annotations

import logging

import pytest

from sip_bridge import digest
from sip_bridge.registrar import AgentCredentials, sip_ha1
from sip_bridge.routing import Number, RoutingTable, Tenant, Trunk
from sip_bridge.transaction import Flow
from tests.sip_bridge.test_registrar import PASSWORD, USER, Env, contacts_of
from tests.sip_bridge.test_routing import CARRIER_IP, NOW, NUMBER, SECRET, invite

PHONE_OVER_TLS = Flow("tls", ("203.0.113.7", 40123))


@pytest.mark.parametrize(("transport", "outcome", "status"), [
    ("udp", "reject", 403), ("tcp", "reject", 403), ("tls", "accept", 200)])
def test_a_trunk_that_requires_tls_takes_invites_over_tls_only(transport: str, outcome: str, status: int,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    trunk = Trunk(id=1, tenant_id=1, name="secure", inbound_networks=Trunk.networks([CARRIER_IP]), require_tls=True)
    routing = RoutingTable(trunks=[trunk], numbers={NUMBER: Number(NUMBER, 1)}, tenants={1: Tenant(1, "demo")})
    with caplog.at_level(logging.WARNING, logger="sip_bridge.routing"):
        decision = routing.classify_inbound(invite(), CARRIER_IP, digest.NonceManager(SECRET), NOW,
                                            transport=transport)
    assert (decision.outcome, decision.status, decision.trunk) == (outcome, status, trunk)
    refused = [r.getMessage() for r in caplog.records]
    assert refused == ([] if transport == "tls" else
                       [f"INVITE from trunk secure over {transport.upper()} refused: the trunk requires TLS"])


def test_a_trunk_that_allows_plain_takes_udp() -> None:
    trunk = Trunk(id=1, tenant_id=1, name="plain", inbound_networks=Trunk.networks([CARRIER_IP]))
    routing = RoutingTable(trunks=[trunk], numbers={NUMBER: Number(NUMBER, 1)}, tenants={1: Tenant(1, "demo")})
    decision = routing.classify_inbound(invite(), CARRIER_IP, digest.NonceManager(SECRET), NOW, transport="udp")
    assert decision.outcome == "accept"


@pytest.fixture
def tls_only() -> Env:
    env = Env()
    env.directory.agents[USER] = AgentCredentials(USER, sip_ha1(USER, PASSWORD), tenant_id=1, agent_id="a-2",
                                                  require_tls=True)
    return env


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_phone_that_must_use_tls_cannot_register_over_another_transport(tls_only: Env, transport: str) -> None:
    response = tls_only.register(flow=Flow(transport, ("203.0.113.7", 40123)))
    assert (response.status, response.reason) == (403, "TLS Required")
    assert tls_only.registrar.bindings(USER) == [] and tls_only.changes == []


def test_a_phone_that_must_use_tls_registers_over_tls(tls_only: Env) -> None:
    response = tls_only.register(flow=PHONE_OVER_TLS)
    assert response.status == 200
    (binding,) = tls_only.registrar.bindings(USER)
    assert binding.flow == PHONE_OVER_TLS  # it is rung back over that connection


def test_a_sips_contact_is_taken_over_tls_only() -> None:
    env = Env()
    contact = "<sips:demo.agent2@192.168.1.20:5063>"
    over_udp = env.register(contacts=(contact,))
    assert over_udp.status == 400
    over_tls = env.register(contacts=(contact,), flow=PHONE_OVER_TLS)
    assert over_tls.status == 200 and contacts_of(over_tls) == [("sips:demo.agent2@192.168.1.20:5063", "3600")]
