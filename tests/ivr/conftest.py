"""Fixtures of the IVR tests: a local CRM server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ivr import http_fetch
from tests.support.crm import CrmServer


@pytest.fixture
async def crm() -> AsyncIterator[CrmServer]:
    server = CrmServer()
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = srv.sockets[0].getsockname()[1]
    yield server
    srv.close()
    await srv.wait_closed()
    await http_fetch.close_client()
