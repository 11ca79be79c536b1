"""What answers on a cluster node's SIP address while the node is away (tests and the cluster
benchmark): nothing at all, as a dead machine, or OPTIONS with a chosen status, as a draining node
or one back again; it notes when each request arrived."""

from __future__ import annotations

import socketserver
import threading
import time

from sip_bridge.message import SipRequest, make_response, parse_message


class StandIn(socketserver.UDPServer):
    """What answers on a node's SIP address while the node is away: nothing at all (a dead
    machine, ``options`` None), or OPTIONS with ``options`` (503: draining; 200: back) and
    INVITEs with 503. Records when each request arrived."""

    def __init__(self, address: str, options: int | None) -> None:
        host, port = address.rsplit(":", 1)
        self.options = options
        self.requests: list[tuple[float, str, str]] = []
        super().__init__((host, int(port)), _StandInHandler)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def got(self, method: str, since: float = 0.0) -> dict[str, float]:
        """Each request of ``method`` that arrived from ``since`` on: its Call-ID and when it
        first arrived (retransmissions do not count)."""
        first: dict[str, float] = {}
        for at, m, call_id in self.requests:
            if m == method and at >= since:
                first.setdefault(call_id, at)
        return first

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join()


class _StandInHandler(socketserver.BaseRequestHandler):
    server: StandIn

    def handle(self) -> None:
        data, sock = self.request
        message = parse_message(data)
        if not isinstance(message, SipRequest):
            return
        stand_in = self.server
        stand_in.requests.append((time.monotonic(), message.method, message.call_id))
        if stand_in.options is None:
            return  # a dead machine answers nothing
        status = stand_in.options if message.method == "OPTIONS" else 503 if message.method == "INVITE" else None
        if status is not None:
            sock.sendto(make_response(message, status, to_tag="standin").to_bytes(), self.client_address)
