"""SIP over UDP and TCP: moves bytes between sockets and the endpoint, nothing more."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

from .malformed import salvage_response
from .message import SipError, SipRequest, SipResponse, StreamParser
from .transaction import Flow

logger = logging.getLogger(__name__)

MAX_TCP_CONNECTIONS = 10_000
#: Receive buffer asked for the SIP UDP socket: call bursts arrive faster than one loop turn.
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024

Receiver = Callable[[bytes | SipRequest | SipResponse, Flow], None]


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        self.receiver(data, Flow("udp", addr[:2]))

    def error_received(self, exc: Exception) -> None:
        logger.debug("SIP UDP error: %s", exc)


class _TcpConnection(asyncio.Protocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner
        self.parser = StreamParser()
        self.transport: asyncio.Transport | None = None
        self.remote: tuple[str, int] = ("", 0)
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.remote = (peer[0], peer[1])
        if len(self.owner.connections) >= MAX_TCP_CONNECTIONS:
            transport.close()
            return
        self.owner.connections[self.remote] = self
        for data in self.pending:
            self.transport.write(data)  # type: ignore[union-attr]
        self.pending.clear()

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.parser.feed(data)
        except SipError as exc:
            logger.info("closing SIP TCP connection from %s: %s", self.remote, exc)
            if self.transport is not None:
                self.transport.close()
            return
        flow = Flow("tcp", self.remote)
        for raw, error in self.parser.rejected:  # framed but invalid: answer it like a datagram
            logger.info("malformed SIP over TCP from %s:%d: %s", *self.remote, error)
            reply = salvage_response(raw, error.status, str(error))
            if reply is not None and self.transport is not None:
                self.transport.write(reply)
        self.parser.rejected.clear()
        for message in messages:
            self.owner.receiver(message, flow)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner.connections.get(self.remote) is self:
            del self.owner.connections[self.remote]


class SipTransport:
    """The node's SIP sockets: one UDP socket and one TCP listener on the same port."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.udp: _UdpProtocol | None = None
        self.tcp_server: asyncio.Server | None = None
        self.connections: dict[tuple[str, int], _TcpConnection] = {}
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        udp_transport, self.udp = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self.receiver), local_addr=(host, port))
        self.port = udp_transport.get_extra_info("sockname")[1]
        sock = udp_transport.get_extra_info("socket")
        if sock is not None:
            try:  # SO_RCVBUFFORCE passes net.core.rmem_max when we may (root); else the kernel caps it
                sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), UDP_RECEIVE_BUFFER)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        self.tcp_server = await loop.create_server(lambda: _TcpConnection(self), host, self.port,
                                                   reuse_address=True)

    def send(self, data: bytes, flow: Flow) -> None:
        if flow.transport == "udp":
            if self.udp is not None and self.udp.transport is not None:
                self.udp.transport.sendto(data, flow.remote)
            return
        conn = self.connections.get(flow.remote)
        if conn is not None and conn.transport is not None:
            conn.transport.write(data)
            return
        self._connect_and_send(data, flow.remote)

    def _connect_and_send(self, data: bytes, remote: tuple[str, int]) -> None:
        """Open a TCP connection for an outbound request; data waits until it is up."""
        conn = _TcpConnection(self)
        conn.pending.append(data)
        self.connections[remote] = conn
        loop = asyncio.get_running_loop()

        async def connect() -> None:
            try:
                await loop.create_connection(lambda: conn, remote[0], remote[1])
            except OSError as exc:
                logger.warning("SIP TCP connect to %s failed: %s", remote, exc)
                if self.connections.get(remote) is conn:
                    del self.connections[remote]

        loop.create_task(connect())

    async def close(self) -> None:
        if self.udp is not None and self.udp.transport is not None:
            self.udp.transport.close()
        for conn in list(self.connections.values()):
            if conn.transport is not None:
                conn.transport.close()
        if self.tcp_server is not None:
            self.tcp_server.close()
            await self.tcp_server.wait_closed()
