"""Shared fixtures: an in-process SIP endpoint and a real node subprocess."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.call_peers import carrier_routing
from tests.support.endpoint import EndpointHarness, routing_table
from tests.support.node import NodeProcess
from tests.support.redis import RedisNotFound, RedisServer


@pytest.fixture
async def harness() -> AsyncIterator[EndpointHarness]:
    h = EndpointHarness(routing_table())
    await h.endpoint.start()
    yield h
    await h.endpoint.stop()


@pytest.fixture
async def carrier() -> AsyncIterator[EndpointHarness]:
    """A carrier's SIP endpoint that dials nodes (``call_peers.call_into``)."""
    h = EndpointHarness(carrier_routing())
    await h.endpoint.start()
    yield h
    await h.endpoint.stop()


@pytest.fixture(scope="module")
def module_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One demo node shared by the tests of a module."""
    data = tmp_path_factory.mktemp("node") / "data"
    data.mkdir()
    n = NodeProcess(data).start()
    yield n
    n.stop()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    n = NodeProcess(tmp_path / "data")
    n.data_dir.mkdir()
    n.start()
    yield n
    n.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real Redis of the test's own (tests/support/redis.py), empty; ``halt()``/``resume()`` for outages."""
    try:
        server = RedisServer()
    except RedisNotFound as exc:
        pytest.fail(str(exc), pytrace=False)  # ./dev test installs it: a missing binary is a setup bug
    server.start()
    yield server
    server.stop()
