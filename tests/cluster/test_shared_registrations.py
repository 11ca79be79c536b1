"""Agents' phone registrations shared through a real Redis: each "node" here is a registrar with
its Redis edge (callcenter/shared_registrations.py), in this process; REGISTERs go in as the
endpoint passes them (sans-I/O registrar, the event loop's clock)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from callcenter.shared_registrations import CHANNEL, KEY_PREFIX, SharedRegistrations
from cluster import REDIS_ERRORS, RedisLink
from sip_bridge.digest import NonceManager
from sip_bridge.message import SipRequest, SipResponse
from sip_bridge.registrar import Registrar
from tests.cluster.conftest import eventually
from tests.sip_bridge.test_registrar import SECRET, SOURCE, USER, Directory, answer, register
from tests.support.redis import RedisServer


class Node:
    """A registrar and its Redis edge, as a node holds them."""

    def __init__(self, url: str, name: str) -> None:
        self.name = name
        self.link = RedisLink(url)
        self.changes: list[tuple[str, bool]] = []
        self.registrar = Registrar(Directory(), on_change=lambda user, up: self.changes.append((user, up)))
        self.shared = SharedRegistrations(self.link, self.registrar, name, asyncio.get_running_loop().time)
        self.nonces = NonceManager(SECRET)

    async def start(self) -> Node:
        await self.shared.start()
        await asyncio.wait_for(self.shared.ready.wait(), 10)
        return self

    def send(self, request: SipRequest) -> SipResponse:
        response = self.registrar.handle(request, SOURCE, self.nonces, now=asyncio.get_running_loop().time(),
                                         wall=time.time())
        assert response is not None
        return response

    def register(self, **kwargs: object) -> SipResponse:
        first = self.send(register(**kwargs))  # type: ignore[arg-type]
        return self.send(register(authorization=answer(first), **kwargs))  # type: ignore[arg-type]

    def contact(self) -> str | None:
        binding = self.registrar.contact_for(USER)
        return str(binding.uri) if binding is not None else None

    async def stop(self) -> None:
        await self.shared.stop()
        await self.link.aclose()


@pytest.fixture
async def nodes(redis_server: RedisServer) -> AsyncIterator[Callable[[str], asyncio.Future[Node]]]:
    started: list[Node] = []

    def start(name: str) -> asyncio.Future[Node]:
        async def go() -> Node:
            node = await Node(redis_server.url, name).start()
            started.append(node)
            return node
        return asyncio.ensure_future(go())

    yield start
    for node in started:
        await node.stop()


async def test_a_phone_registered_on_one_node_is_reachable_on_the_others(
        nodes: Callable[[str], asyncio.Future[Node]]) -> None:
    n1, n2, n3 = await nodes("n1"), await nodes("n2"), await nodes("n3")
    assert n1.register(expires=300).status == 200
    await eventually(lambda: n2.contact() == n3.contact() == "sip:demo.agent2@192.168.1.20:5062")
    assert n2.changes == n3.changes == [(USER, True)]  # the agent became reachable there too (the ACD hears it)
    learnt, original = n2.registrar.contact_for(USER), n1.registrar.contact_for(USER)
    assert learnt is not None and original is not None
    assert learnt.flow == original.flow and abs((learnt.expires_at - original.expires_at)) < 0.01


async def test_a_node_starting_later_loads_the_registrations(nodes: Callable[[str], asyncio.Future[Node]]) -> None:
    n1 = await nodes("n1")
    n1.register()
    await eventually(lambda: n1.shared._pending == {})
    late = await nodes("n2")
    assert late.contact() == "sip:demo.agent2@192.168.1.20:5062" and late.changes == [(USER, True)]


async def test_an_unregister_and_an_unreachable_phone_reach_every_node(
        nodes: Callable[[str], asyncio.Future[Node]]) -> None:
    n1, n2 = await nodes("n1"), await nodes("n2")
    n1.register()
    await eventually(lambda: n2.contact() is not None)
    n2.registrar.mark_unreachable(USER)  # n2 rang it and nobody answered
    await eventually(lambda: n1.contact() is None)
    n1.register(call_id="again@phone")
    await eventually(lambda: n2.contact() is not None)
    first = n2.send(register(contacts=("*",), expires=0, call_id="again@phone", cseq=5))
    assert n2.send(register(contacts=("*",), expires=0, call_id="again@phone", cseq=6,
                            authorization=answer(first))).status == 200
    await eventually(lambda: n1.contact() is None)
    assert n1.changes[-1] == (USER, False)
    assert await n1.link.client.exists(KEY_PREFIX + USER) == 0


async def test_after_redis_restarts_empty_the_nodes_write_back_what_they_hold(
        redis_server: RedisServer, nodes: Callable[[str], asyncio.Future[Node]]) -> None:
    n1, n2 = await nodes("n1"), await nodes("n2")
    n1.register()
    await eventually(lambda: n2.contact() is not None)
    redis_server.halt()
    redis_server.resume()  # empty

    async def stored_again() -> bool:
        try:
            return bool(await n1.link.client.exists(KEY_PREFIX + USER))
        except REDIS_ERRORS:
            return False  # this client's connection from before the restart

    await eventually(stored_again, timeout=20)
    late = await nodes("n3")
    assert late.contact() == "sip:demo.agent2@192.168.1.20:5062"
    assert n1.contact() == n2.contact() == late.contact()  # nobody lost it meanwhile


async def test_a_malformed_message_is_ignored_and_later_ones_apply(
        nodes: Callable[[str], asyncio.Future[Node]]) -> None:
    n1, n2 = await nodes("n1"), await nodes("n2")
    for junk in ("not json", '{"node": "x"}', '{"node": "x", "sip_user": "demo.agent2", "bindings": [{"uri": 1}]}'):
        await n1.link.client.publish(CHANNEL, junk)
    n1.register()
    await eventually(lambda: n2.contact() == "sip:demo.agent2@192.168.1.20:5062")
