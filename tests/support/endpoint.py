"""An in-process SIP endpoint on loopback with a scriptable call handler and a recording observer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sip_bridge.call import Call
from sip_bridge.endpoint import EndpointConfig, SipEndpoint
from sip_bridge.routing import Number, RoutingTable, Tenant, Trunk

from .node import free_port, rtp_range

NUMBER = "4001234567"


@dataclass
class RecordingObserver:
    """Keeps the lifecycle events the call records would get."""

    events: list[tuple[str, Call]] = field(default_factory=list)
    ended: asyncio.Queue[Call] = field(default_factory=asyncio.Queue)

    async def call_started(self, call: Call) -> None:
        self.events.append(("started", call))

    async def call_answered(self, call: Call) -> None:
        self.events.append(("answered", call))

    async def call_ended(self, call: Call) -> None:
        self.events.append(("ended", call))
        self.ended.put_nowait(call)

    async def next_ended(self, timeout: float = 30.0) -> Call:
        return await asyncio.wait_for(self.ended.get(), timeout)


def routing_table(*, inbound_ips: tuple[str, ...] = ("127.0.0.1",), digest_user: str | None = None,
                  digest_password: str | None = None, outbound_port: int | None = None,
                  prefixes: tuple[str, ...] = ("1", "2", "3", "4", "5", "6", "7", "8", "9"),
                  outbound_username: str | None = None, outbound_password: str | None = None,
                  register: bool = False, register_expires: int = 600,
                  failover_ports: tuple[int, ...] = ()) -> RoutingTable:
    """Tenant 1 with trunk 1 ("carrier", priority 1) and number NUMBER.

    ``outbound_username``/``outbound_password`` are the credentials trunk 1 answers
    digest challenges with (and registers with when ``register``); each of
    ``failover_ports`` adds an outbound-only trunk (ids 2, 3... at priorities 2, 3...).
    """
    trunks = [Trunk(id=1, tenant_id=1, name="carrier", inbound_networks=Trunk.networks(list(inbound_ips)),
                    inbound_username=digest_user, inbound_password=digest_password,
                    outbound_host="127.0.0.1" if outbound_port else None, outbound_port=outbound_port or 5060,
                    register=register, register_username=outbound_username,
                    register_password=outbound_password, register_expires=register_expires, priority=1)]
    trunks += [Trunk(id=2 + i, tenant_id=1, name=f"carrier-{2 + i}", outbound_host="127.0.0.1", outbound_port=port,
                     priority=2 + i) for i, port in enumerate(failover_ports)]
    return RoutingTable(trunks=trunks, numbers={NUMBER: Number(NUMBER, 1)},
                        tenants={1: Tenant(1, "demo", prefixes)})


Handler = Callable[[Call], Awaitable[None]]


async def answer_and_wait(call: Call) -> None:
    await call.answer()
    await call.wait_ended()


class EndpointHarness:
    def __init__(self, routing: RoutingTable, **config: object) -> None:
        self.observer = RecordingObserver()
        self.handler: Handler = answer_and_wait
        self.calls: asyncio.Queue[Call] = asyncio.Queue()
        low, high = rtp_range(200)
        cfg = EndpointConfig(bind_host="127.0.0.1", sip_port=free_port(), rtp_bind_host="127.0.0.1",
                             rtp_port_min=low, rtp_port_max=high, rtp_timeout=5.0, secret=b"test-secret-0123456789")
        for key, value in config.items():
            setattr(cfg, key, value)
        self.endpoint = SipEndpoint(cfg, routing, self.observer, self._on_call)

    async def _on_call(self, call: Call) -> None:
        self.calls.put_nowait(call)
        await self.handler(call)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.endpoint.config.sip_port}"


async def talk_and_hang_up(call: Call, seconds: float, *, collect_timeout: float = 2.0) -> bytes:
    """What ``call`` hears during ``seconds`` (while it sends whatever was queued), then hang up."""
    frames: list[bytes] = []

    async def collect() -> None:
        async for frame in call.audio():
            frames.append(frame)

    collector = asyncio.ensure_future(collect())
    await asyncio.sleep(seconds)
    await call.hangup()
    await asyncio.wait_for(collector, collect_timeout)
    return b"".join(frames)
