"""SIP over UDP, TCP and TLS: moves bytes between sockets and the endpoint, nothing more.

TCP and TLS connections are kept by (transport, remote address), whoever opened them:
responses and in-dialog requests go back over the connection a request came on.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable

from .malformed import salvage_response
from .message import SipError, SipRequest, SipResponse, StreamParser
from .tls import CONNECT_TIMEOUT, client_context
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
    """One TCP or TLS connection (``name`` "tcp" or "tls"; asyncio's SSL layer sits below)."""

    def __init__(self, owner: SipTransport, name: str = "tcp") -> None:
        self.owner = owner
        self.name = name
        self.parser = StreamParser()
        self.transport: asyncio.Transport | None = None
        self.remote: tuple[str, int] = ("", 0)
        self.pending: list[bytes] = []
        #: Done when the connection is up (after the TLS handshake), or failed to come up.
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        #: The task opening an outbound connection (kept referenced while it runs).
        self.opening: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.remote = (peer[0], peer[1])
        if len(self.owner.connections) >= MAX_TCP_CONNECTIONS:
            transport.close()
            self.failed(OSError(f"too many SIP connections ({MAX_TCP_CONNECTIONS})"))
            return
        self.owner.connections[(self.name, self.remote)] = self
        for data in self.pending:
            self.transport.write(data)  # type: ignore[union-attr]
        self.pending.clear()
        if not self.ready.done():
            self.ready.set_result(None)

    def failed(self, exc: OSError) -> None:
        """The connection could not be opened: whoever waits for it gets ``exc``."""
        self.pending.clear()
        if not self.ready.done():
            self.ready.set_exception(exc)
            self.ready.exception()  # retrieved: nobody need be waiting

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.parser.feed(data)
        except SipError as exc:
            logger.info("closing SIP %s connection from %s: %s", self.name.upper(), self.remote, exc)
            if self.transport is not None:
                self.transport.close()
            return
        flow = Flow(self.name, self.remote)
        for raw, error in self.parser.rejected:  # framed but invalid: answer it like a datagram
            logger.info("malformed SIP over %s from %s:%d: %s", self.name.upper(), *self.remote, error)
            reply = salvage_response(raw, error.status, str(error))
            if reply is not None and self.transport is not None:
                self.transport.write(reply)
        self.parser.rejected.clear()
        for message in messages:
            self.owner.receiver(message, flow)

    def connection_lost(self, exc: Exception | None) -> None:
        key = (self.name, self.remote)
        if self.owner.connections.get(key) is self:
            del self.owner.connections[key]


class SipTransport:
    """The node's SIP sockets: one UDP socket and one TCP listener on the same port, and a
    TLS listener on its own port when given a server context.

    ``tls_client`` checks the certificates of peers we connect to over TLS (None: the
    system's CA store and the peer's name, see :func:`sip_bridge.tls.client_context`).
    """

    def __init__(self, receiver: Receiver, *, tls_server: ssl.SSLContext | None = None,
                 tls_client: ssl.SSLContext | None = None) -> None:
        self.receiver = receiver
        self.tls_server = tls_server
        self._tls_client = tls_client
        self.udp: _UdpProtocol | None = None
        self.tcp_server: asyncio.Server | None = None
        self.tls_listener: asyncio.Server | None = None
        #: Open connections by (transport, remote address).
        self.connections: dict[tuple[str, tuple[str, int]], _TcpConnection] = {}
        self.port = 0
        self.tls_port = 0

    async def start(self, host: str, port: int, tls_port: int = 0) -> None:
        """UDP and TCP on ``port``; TLS on ``tls_port`` when there is a server context (0: any free port)."""
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
        if self.tls_server is not None:
            self.tls_listener = await loop.create_server(lambda: _TcpConnection(self, "tls"), host, tls_port,
                                                         ssl=self.tls_server, reuse_address=True)
            self.tls_port = self.tls_listener.sockets[0].getsockname()[1]

    def send(self, data: bytes, flow: Flow) -> None:
        if flow.transport == "udp":
            if self.udp is not None and self.udp.transport is not None:
                self.udp.transport.sendto(data, flow.remote)
            return
        conn = self.connections.get((flow.transport, flow.remote))
        if conn is None:
            conn = self._open(flow)
        if conn.transport is not None:
            conn.transport.write(data)
        else:  # still connecting: sent once it is up
            conn.pending.append(data)

    async def connect(self, flow: Flow) -> None:
        """Have a connection for ``flow`` up (opened if need be). Raises OSError when it cannot
        be opened: refused, timed out, or a TLS certificate that fails verification
        (``ssl.SSLCertVerificationError``)."""
        conn = self.connections.get((flow.transport, flow.remote))
        if conn is None:
            conn = self._open(flow)
        await asyncio.shield(conn.ready)

    @property
    def tls_client(self) -> ssl.SSLContext:
        if self._tls_client is None:
            self._tls_client = client_context()
        return self._tls_client

    def _open(self, flow: Flow) -> _TcpConnection:
        """Start opening a TCP or TLS connection; data sent meanwhile waits in ``pending``."""
        key = (flow.transport, flow.remote)
        conn = _TcpConnection(self, flow.transport)
        self.connections[key] = conn
        loop = asyncio.get_running_loop()
        host, port = flow.remote
        name = flow.server_name or host

        async def connect() -> None:
            try:
                if flow.transport == "tls":
                    await asyncio.wait_for(loop.create_connection(
                        lambda: conn, host, port, ssl=self.tls_client, server_hostname=name,
                        ssl_handshake_timeout=CONNECT_TIMEOUT), CONNECT_TIMEOUT)
                else:
                    await loop.create_connection(lambda: conn, host, port)
            except (OSError, asyncio.TimeoutError) as exc:
                error = exc if isinstance(exc, OSError) else OSError(f"no connection within {CONNECT_TIMEOUT:.0f} s")
                logger.warning("SIP %s connect to %s:%d (%s) failed: %s", flow.transport.upper(), host, port, name,
                               error, extra={"transport": flow.transport, "server_name": name})
                if self.connections.get(key) is conn:
                    del self.connections[key]
                conn.failed(error)

        conn.opening = loop.create_task(connect())
        return conn

    async def close(self) -> None:
        if self.udp is not None and self.udp.transport is not None:
            self.udp.transport.close()
        for conn in list(self.connections.values()):
            if conn.transport is not None:
                conn.transport.close()
        for server in (self.tcp_server, self.tls_listener):
            if server is not None:
                server.close()
                await server.wait_closed()
