"""Outbound trunk upkeep: REGISTER with digest auth and refresh, OPTIONS keepalive (up/down)."""

from __future__ import annotations

import asyncio
import logging

from . import digest
from .endpoint import SipEndpoint
from .message import SipResponse, generate_call_id
from .routing import Trunk
from .transaction import Flow
from .uri import NameAddr, SipUri

logger = logging.getLogger(__name__)

REGISTER_RETRY = 30.0  # seconds before retrying a failed registration


class TrunkMonitor:
    """One task per outbound trunk; ``endpoint.trunk_state[trunk.id]`` is "up" or "down"."""

    def __init__(self, endpoint: SipEndpoint) -> None:
        self.endpoint = endpoint
        self._tasks: dict[int, list[asyncio.Task[None]]] = {}
        self.registered: dict[int, bool] = {}

    def update(self, trunks: list[Trunk]) -> None:
        """(Re)start the tasks for the current trunk list."""
        self.stop()
        loop = asyncio.get_running_loop()
        for trunk in trunks:
            if not trunk.outbound_host:
                continue
            tasks = [loop.create_task(self._keepalive(trunk))]
            if trunk.register and trunk.register_username:
                tasks.append(loop.create_task(self._register(trunk)))
            self._tasks[trunk.id] = tasks

    def stop(self) -> None:
        for tasks in self._tasks.values():
            for task in tasks:
                task.cancel()
        self._tasks.clear()

    async def _flow(self, trunk: Trunk) -> Flow:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(trunk.outbound_host, trunk.outbound_port, type=2)
        return Flow(trunk.outbound_transport, (infos[0][4][0], trunk.outbound_port))

    def _set_state(self, trunk: Trunk, state: str) -> None:
        previous = self.endpoint.trunk_state.get(trunk.id)
        if previous != state:
            self.endpoint.trunk_state[trunk.id] = state
            logger.info("trunk %s is %s", trunk.name, state, extra={"trunk": trunk.name})

    async def _keepalive(self, trunk: Trunk) -> None:
        """RFC 3261 11: any response to OPTIONS means the peer is alive; a timeout marks it down."""
        uri = SipUri.parse(f"sip:{trunk.outbound_host}:{trunk.outbound_port}")
        while True:
            try:
                flow = await self._flow(trunk)
                response = await self.endpoint.request("OPTIONS", uri, flow)
                self._set_state(trunk, "up" if response is not None else "down")
            except OSError as exc:
                logger.warning("trunk %s: %s", trunk.name, exc)
                self._set_state(trunk, "down")
            await asyncio.sleep(self.endpoint.config.options_interval)

    async def _register(self, trunk: Trunk) -> None:
        call_id = generate_call_id(self.endpoint.config.advertised_ip)
        cseq = 0
        aor = SipUri.parse(f"sip:{trunk.register_username}@{trunk.outbound_host}")
        registrar = SipUri.parse(f"sip:{trunk.outbound_host}:{trunk.outbound_port}")
        while True:
            delay = REGISTER_RETRY
            try:
                flow = await self._flow(trunk)
                cseq += 1
                extra = [("Expires", str(trunk.register_expires))]
                response = await self.endpoint.request("REGISTER", registrar, flow, to_addr=NameAddr(aor, params={}),
                                                       from_user=trunk.register_username or "", call_id=call_id,
                                                       cseq=cseq, extra=extra)
                if response is not None and response.status in (401, 407):
                    name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
                    challenge = digest.pick_challenge(response.headers.get_all(name))
                    auth = digest.build_authorization(challenge, method="REGISTER", uri=str(registrar),
                                                      username=trunk.register_username or "",
                                                      password=trunk.register_password or "")
                    cseq += 1
                    header = "Authorization" if response.status == 401 else "Proxy-Authorization"
                    response = await self.endpoint.request(
                        "REGISTER", registrar, flow, to_addr=NameAddr(aor, params={}),
                        from_user=trunk.register_username or "", call_id=call_id, cseq=cseq,
                        extra=extra + [(header, auth)])
                if response is not None and 200 <= response.status < 300:
                    granted = _granted_expires(response, trunk.register_expires)
                    self.registered[trunk.id] = True
                    logger.info("trunk %s registered for %d s", trunk.name, granted, extra={"trunk": trunk.name})
                    delay = max(granted * 0.8, 5.0)  # refresh well before it lapses
                else:
                    self.registered[trunk.id] = False
                    status = response.status if response is not None else "timeout"
                    logger.warning("trunk %s registration failed: %s", trunk.name, status,
                                   extra={"trunk": trunk.name})
            except (OSError, ValueError) as exc:
                self.registered[trunk.id] = False
                logger.warning("trunk %s registration error: %s", trunk.name, exc, extra={"trunk": trunk.name})
            await asyncio.sleep(delay)


def _granted_expires(response: SipResponse, asked: int) -> int:
    for contact in response.contact:
        value = contact.params.get("expires")
        if value and value.isdigit():
            return int(value)
    header = response.headers.get("Expires")
    return int(header) if header and header.isdigit() else asked
