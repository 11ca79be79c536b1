"""The registrar behind a cluster's front (Path, RFC 3327) and its bindings shared with other
nodes' registrars (records with absolute times, ``learn``, the bindings listeners): sans-I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sip_bridge.message import SipRequest, SipResponse
from sip_bridge.registrar import Binding, binding_from_record, binding_record
from sip_bridge.transaction import Flow
from tests.sip_bridge.test_registrar import T0, USER, WALL, Env, answer, register

FRONT_PATH = "<sip:127.0.0.10:5071;lr;received=sip:203.0.113.7:40123>"


def register_through_front(env: Env, *, path: tuple[str, ...] = (FRONT_PATH,), supported: str | None = None,
                           now: float = T0, expires: int | None = None) -> SipResponse:
    """Both rounds of a REGISTER the front forwarded with its Path (the front's address is the source)."""

    def with_path(request: SipRequest) -> SipRequest:
        for hop in path:
            request.headers.add("Path", hop)
        if supported is not None:
            request.headers.add("Supported", supported)
        return request

    front = Flow("udp", ("127.0.0.10", 5071))
    first = env.send(with_path(register(expires=expires)), now=now, flow=front)
    assert first.status == 401
    return env.send(with_path(register(authorization=answer(first), expires=expires)), now=now, flow=front)


def test_a_register_through_the_front_rings_the_phone_along_its_path() -> None:
    env = Env()
    response = register_through_front(env)
    assert response.status == 200 and response.headers.get_all("Path") == []  # the phone did not ask for it
    binding = env.registrar.contact_for(USER)
    assert binding is not None and binding.path == (FRONT_PATH,)
    assert binding.next_hop == Flow("udp", ("127.0.0.10", 5071))  # the front, which knows the phone's address


def test_a_phone_that_supports_path_gets_it_back() -> None:
    env = Env()
    response = register_through_front(env, supported="path")
    assert response.headers.get_all("Path") == [FRONT_PATH]


def test_a_path_whose_first_hop_is_no_address_is_refused() -> None:
    env = Env()
    response = register_through_front(env, path=("<sip:front.example.com;lr>",))
    assert response.status == 400 and env.registrar.bindings(USER) == []


def test_without_a_path_the_phone_is_rung_where_it_registered_from() -> None:
    env = Env()
    env.register()
    binding = env.registrar.contact_for(USER)
    assert binding is not None and binding.path == () and binding.next_hop == binding.flow


class Listener:
    def __init__(self) -> None:
        self.heard: list[tuple[str, int, bool]] = []

    def __call__(self, sip_user: str, bindings: list[Binding], local: bool) -> None:
        self.heard.append((sip_user, len(bindings), local))


def test_bindings_listeners_hear_of_registers_and_unreachable_phones_but_not_expiry() -> None:
    env = Env()
    listener = Listener()
    env.registrar.add_bindings_listener(listener)
    env.register(expires=60)
    env.register(expires=60, contacts=("<sip:demo.agent2@192.168.1.21:5062>",), call_id="reg-2@phone")
    assert listener.heard == [(USER, 1, True), (USER, 2, True)]
    newest = env.registrar.contact_for(USER)
    assert env.registrar.mark_unreachable(USER, newest)
    assert listener.heard[-1] == (USER, 1, True)
    env.registrar.expire(T0 + 61)
    assert listener.heard[-1] == (USER, 1, True) and env.registrar.bindings(USER) == []


def shared(env: Env, *, now: float = T0, wall: float = WALL) -> list[dict[str, Any]]:
    """What another node would receive: the records of the agent's bindings, through JSON."""
    records: list[dict[str, Any]] = json.loads(json.dumps([binding_record(b, now, wall)
                                                            for b in env.registrar.bindings(USER)]))
    return records


def learnt(records: list[dict[str, Any]], now: float = T0, wall: float = WALL) -> list[Binding]:
    """The bindings another registrar makes of ``records`` on its clock (``now``) at ``wall``."""
    return [binding_from_record(r, now, wall) for r in records]


def test_learnt_bindings_expire_at_the_same_moment_on_another_clock() -> None:
    accepting, other = Env(), Env()
    register_through_front(accepting, expires=120)
    # The other node's registrar clock reads 5000 when the wall clock reads WALL + 10.
    other_now = 5000.0
    bindings = learnt(shared(accepting), other_now, WALL + 10)
    other.registrar.learn(USER, bindings, other_now)
    copy = other.registrar.contact_for(USER)
    original = accepting.registrar.contact_for(USER)
    assert copy is not None and original is not None
    assert (copy.uri, copy.path, copy.flow, copy.tenant_id, copy.agent_id) == \
        (original.uri, original.path, original.flow, original.tenant_id, original.agent_id)
    # WALL + 120 is T0 + 120 on the first clock and 5000 + 110 on the other's
    assert copy.expires_at == pytest.approx(other_now + 110)
    assert other.registrar.expire(other_now + 109.9) == [] and other.registrar.reachable(USER)
    assert other.registrar.expire(other_now + 110.1) and not other.registrar.reachable(USER)


def test_learning_tells_reachability_but_is_not_told_back_as_a_local_change() -> None:
    accepting, other = Env(), Env()
    listener = Listener()
    other.registrar.add_bindings_listener(listener)
    accepting.register()
    other.registrar.learn(USER, learnt(shared(accepting)), T0)
    assert other.changes == [(USER, True)] and listener.heard == [(USER, 1, False)]
    other.registrar.learn(USER, [], T0 + 1)
    assert other.changes == [(USER, True), (USER, False)] and listener.heard[-1] == (USER, 0, False)


def test_a_register_after_learnt_ones_is_the_newest() -> None:
    accepting, other = Env(), Env()
    accepting.register(contacts=("<sip:demo.agent2@192.168.1.30:5062>",), call_id="desk@phone")
    other.registrar.learn(USER, learnt(shared(accepting)), T0)
    other.register(call_id="soft@phone")  # the agent's second phone, on the other node
    uris = [str(b.uri) for b in other.registrar.bindings(USER)]
    assert uris == ["sip:demo.agent2@192.168.1.20:5062", "sip:demo.agent2@192.168.1.30:5062"]


def test_already_expired_learnt_bindings_are_left_out() -> None:
    accepting, other = Env(), Env()
    accepting.register(expires=60)
    records = shared(accepting)
    other.registrar.learn(USER, learnt(records, T0, WALL + 61), T0)
    assert other.registrar.bindings(USER) == [] and other.changes == []


@pytest.mark.parametrize("damage", [
    lambda r: r.pop("uri"),
    lambda r: r.update(flow=["carrier-pigeon", "1.2.3.4", 5]),
    lambda r: r.update(uri="sip:"),
    lambda r: r.update(path=["<sip:front.example.com;lr>"]),
    lambda r: r.update(expires="soon"),
])
def test_a_malformed_record_is_refused_with_value_error(damage: object) -> None:
    accepting = Env()
    register_through_front(accepting)
    (record,) = shared(accepting)
    damage(record)  # type: ignore[operator]
    with pytest.raises(ValueError, match="malformed binding record"):
        binding_from_record(record, T0, WALL)
