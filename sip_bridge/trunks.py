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
REFRESH_AT = 0.8  # share of the granted expiry after which the registration is refreshed
MIN_REFRESH = 1.0  # never refresh more often than this (seconds)
MAX_REGISTER_ROUNDS = 4  # REGISTERs per attempt: challenge, 423 Interval Too Brief, challenge, answer


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

    def _set_state(self, trunk: Trunk, state: str) -> None:
        previous = self.endpoint.trunk_state.get(trunk.id)
        if previous != state:
            self.endpoint.trunk_state[trunk.id] = state
            logger.info("trunk %s is %s", trunk.name, state, extra={"trunk": trunk.name})

    async def _keepalive(self, trunk: Trunk) -> None:
        """RFC 3261 11: any response to OPTIONS means the peer is alive; a timeout marks it down."""
        uri = self.endpoint.trunk_uri(trunk)
        while True:
            try:
                flow = await self.endpoint.trunk_flow(trunk)
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
        registrar = self.endpoint.trunk_uri(trunk)
        expires = trunk.register_expires
        while True:
            delay = REGISTER_RETRY
            try:
                flow = await self.endpoint.trunk_flow(trunk)
                credentials: tuple[str, str] | None = None
                response: SipResponse | None = None
                # A challenge and a 423 may each need one more round before the real answer.
                for _ in range(MAX_REGISTER_ROUNDS):
                    cseq += 1
                    extra = [("Expires", str(expires))] + ([credentials] if credentials else [])
                    response = await self.endpoint.request(
                        "REGISTER", registrar, flow, to_addr=NameAddr(aor, params={}),
                        from_user=trunk.register_username or "", call_id=call_id, cseq=cseq, extra=extra)
                    if response is None:
                        break
                    if response.status in (401, 407) and credentials is None:
                        name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
                        challenge = digest.pick_challenge(response.headers.get_all(name))
                        auth = digest.build_authorization(challenge, method="REGISTER", uri=str(registrar),
                                                          username=trunk.register_username or "",
                                                          password=trunk.register_password or "")
                        credentials = ("Authorization" if response.status == 401 else "Proxy-Authorization", auth)
                        continue
                    minimum = response.headers.get("Min-Expires") if response.status == 423 else None
                    if minimum and minimum.strip().isdigit() and int(minimum) > expires:
                        # RFC 3261 10.2.8: Interval Too Brief, ask again for at least Min-Expires
                        # (the credentials answered the previous request; expect a new challenge).
                        expires = int(minimum)
                        credentials = None
                        continue
                    break
                granted = _granted_expires(response, expires, self._contact_uri(flow)) \
                    if response is not None and 200 <= response.status < 300 else 0
                if granted > 0:
                    self.registered[trunk.id] = True
                    logger.info("trunk %s registered for %d s", trunk.name, granted, extra={"trunk": trunk.name})
                    delay = max(granted * REFRESH_AT, MIN_REFRESH)  # refresh well before it lapses
                else:
                    self.registered[trunk.id] = False
                    status = response.status if response is not None else "timeout"
                    logger.warning("trunk %s registration failed: %s", trunk.name, status,
                                   extra={"trunk": trunk.name})
            except (OSError, ValueError) as exc:
                self.registered[trunk.id] = False
                logger.warning("trunk %s registration error: %s", trunk.name, exc, extra={"trunk": trunk.name})
            await asyncio.sleep(delay)

    def _contact_uri(self, flow: Flow) -> SipUri:
        return NameAddr.parse(self.endpoint.contact(flow.transport)).uri


def _same_binding(a: SipUri, b: SipUri) -> bool:
    """Same user, host and port: registrars may add URI parameters (;transport=udp, ;ob),
    which would defeat the strict comparison of RFC 3261 19.1.4."""
    if not (a.is_sip and b.is_sip):
        return False
    (host_a, port_a), (host_b, port_b) = a.hostport, b.hostport
    return (a.user_unescaped or "") == (b.user_unescaped or "") and host_a.lower() == host_b.lower() \
        and port_a == port_b


def _granted_expires(response: SipResponse, asked: int, ours: SipUri) -> int:
    """How long the registrar keeps our binding (RFC 3261 10.2.4).

    The 200 lists every binding of the AOR, other devices' too: use the expires
    of our own Contact; if the registrar rewrote it beyond recognition, the
    shortest one listed (refreshing early is harmless, late is not); then the
    Expires header; then what we asked for.
    """
    contacts = response.contact
    mine = [c for c in contacts if _same_binding(c.uri, ours)]
    values = [int(v) for c in (mine or contacts)
              if (v := (c.params.get("expires") or "").strip()).isdigit()]
    if values:
        return min(values)
    header = (response.headers.get("Expires") or "").strip()
    return int(header) if header.isdigit() else asked
