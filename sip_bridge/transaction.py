"""RFC 3261 section 17 transactions, sans-I/O.

The layer owns no socket and no clock: messages come in through
:meth:`TransactionLayer.receive`, time through :meth:`TransactionLayer.poll`,
bytes go out through a :class:`Sender`, and results reach the transaction user
(the UA core) through :class:`TransactionUser` callbacks.  The asyncio edge
keeps a single timer armed at :meth:`TransactionLayer.next_deadline`.

RFC 6026 is applied: an INVITE server transaction that sent a 2xx stays in
*Accepted* for 64*T1 to absorb retransmitted INVITEs, and an INVITE client
transaction that received a 2xx passes later 2xx retransmissions to the TU
(which re-sends its ACK).
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .message import Headers, SipRequest, SipResponse, make_response

T1 = 0.5  # RTT estimate (s)
T2 = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses
T4 = 5.0  # maximum time a message remains in the network
PROCEEDING_GUARD = 300.0  # an INVITE client transaction left ringing this long is dropped


@dataclass(frozen=True, slots=True)
class Flow:
    """Where a message came from or goes to: the transport and the remote address."""

    transport: str  # "udp", "tcp" or "tls"
    remote: tuple[str, int]
    #: For a TLS connection we open: the name the peer's certificate must carry (a trunk's
    #: host). Not part of the flow's identity: replies find the connection by address.
    server_name: str | None = field(default=None, compare=False)

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"


class Sender(Protocol):
    def send(self, data: bytes, flow: Flow) -> None: ...


class TransactionUser(Protocol):
    def on_request(self, tx: ServerTransaction | None, request: SipRequest) -> None:
        """A new request (not a retransmission); ACK and CANCEL included.

        ``tx`` is None for an ACK matching no server transaction (the ACK for a
        2xx normally has a branch of its own, RFC 3261 17.1.1.3).
        """

    def on_response(self, tx: ClientTransaction, response: SipResponse) -> None:
        """A response for a client transaction (2xx retransmissions to INVITE included)."""

    def on_timeout(self, tx: ClientTransaction | ServerTransaction) -> None:
        """Timer B/F (no final response) or Timer H (no ACK for a non-2xx final)."""

    def on_stray_response(self, response: SipResponse, flow: Flow) -> None:
        """A response that matches no client transaction (e.g. a 2xx retransmission after Timer M)."""


class State(enum.Enum):
    TRYING = "trying"
    CALLING = "calling"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


def server_key(request: SipRequest) -> tuple[str, str, str]:
    """RFC 3261 17.2.3 matching key (RFC 3261-compliant branches only).

    ACK for a non-2xx final matches the INVITE transaction; CANCEL has its own.
    """
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    return (via.branch or "", f"{via.host}:{via.port or 5060}", method)


class Transaction:
    layer: TransactionLayer
    state: State
    flow: Flow
    _deadline: float | None = None
    _timer: str | None = None
    _interval: float = T1
    _generation: int = 0

    def _arm(self, name: str, delay: float) -> None:
        self._timer = name
        self._generation += 1
        self._deadline = self.layer.now + delay
        self.layer._schedule(self, self._deadline, self._generation)

    def _disarm(self) -> None:
        self._timer = None
        self._deadline = None
        self._generation += 1

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        self._disarm()
        self.layer._forget(self)

    def _fire(self) -> None:
        raise NotImplementedError


class ServerTransaction(Transaction):
    """INVITE and non-INVITE server transactions (RFC 3261 17.2.1, 17.2.2)."""

    def __init__(self, layer: TransactionLayer, request: SipRequest, flow: Flow) -> None:
        self.layer = layer
        self.request = request
        self.flow = flow
        self.key = server_key(request)
        self.is_invite = request.method == "INVITE"
        self.state = State.PROCEEDING if self.is_invite else State.TRYING
        self.last_response: SipResponse | None = None
        self._last_bytes: bytes | None = None
        #: Set by the UA core to the object that owns this transaction (e.g. the call).
        self.owner: object | None = None

    def respond(self, response: SipResponse) -> None:
        """Send a response; the state machine decides what happens next."""
        if self.state in (State.COMPLETED, State.CONFIRMED, State.TERMINATED, State.ACCEPTED):
            if not (self.state is State.ACCEPTED and 200 <= response.status < 300):
                return  # a final response was already sent
        self.last_response = response
        self._last_bytes = response.to_bytes()
        self.layer._send(self._last_bytes, self.flow, response)
        status = response.status
        if status < 200:
            if not self.is_invite:
                self.state = State.PROCEEDING
            return
        if self.is_invite:
            if status < 300:
                if self.state is not State.ACCEPTED:
                    # RFC 6026 7.1: Accepted, absorb INVITE retransmissions for 64*T1
                    # from the first 2xx; the TU's 2xx retransmissions don't restart Timer L.
                    self.state = State.ACCEPTED
                    self._arm("L", 64 * T1)
            else:
                self.state = State.COMPLETED
                if not self.flow.reliable:
                    self._interval = T1
                    self._arm("G", T1)
                else:
                    self._arm("H", 64 * T1)
                self._timer_h_at = self.layer.now + 64 * T1
        else:
            self.state = State.COMPLETED
            self._arm("J", 0 if self.flow.reliable else 64 * T1)

    def reply_once(self, response: SipResponse) -> None:
        """Send one final response and drop the transaction: no retransmission, no state kept.

        For rejects to unauthenticated or flooding sources: a spoofed source never
        ACKs, and retransmitting to it would make the node a reflector.
        """
        self.last_response = response
        self.layer._send(response.to_bytes(), self.flow, response)
        self._terminate()

    def drop(self) -> None:
        """Forget the request without a word (a banned source): nothing to reflect, no state kept."""
        self._terminate()

    def resend_last(self) -> None:
        """Re-send the last response (retransmitted request)."""
        if self._last_bytes is not None:
            self.layer._send(self._last_bytes, self.flow, self.last_response)

    def _on_retransmission(self, request: SipRequest) -> None:
        if request.method == "ACK":
            if self.is_invite and self.state is State.COMPLETED:
                self.state = State.CONFIRMED
                self._arm("I", 0 if self.flow.reliable else T4)
            return
        if self.state is State.ACCEPTED:
            return  # RFC 6026: the TU retransmits the 2xx, not the transaction
        self.resend_last()

    def _fire(self) -> None:
        timer = self._timer
        if timer == "G":
            if self.layer.now >= self._timer_h_at:
                self._terminate()
                self.layer.tu.on_timeout(self)
                return
            self.resend_last()
            self._interval = min(self._interval * 2, T2)
            self._arm("G", min(self._interval, self._timer_h_at - self.layer.now))
        elif timer == "H":
            self._terminate()
            self.layer.tu.on_timeout(self)
        else:  # I, J, L
            self._terminate()


class ClientTransaction(Transaction):
    """INVITE and non-INVITE client transactions (RFC 3261 17.1.1, 17.1.2)."""

    def __init__(self, layer: TransactionLayer, request: SipRequest, flow: Flow) -> None:
        self.layer = layer
        self.request = request
        self.flow = flow
        via = request.top_via
        self.branch = via.branch or ""
        self.method = request.method
        self.key = (self.branch, self.method)
        self.is_invite = request.method == "INVITE"
        self.state = State.CALLING if self.is_invite else State.TRYING
        self.final_response: SipResponse | None = None
        self._bytes = request.to_bytes()
        self._timeout_at = layer.now + 64 * T1
        #: Set by the UA core to the object that owns this transaction.
        self.owner: object | None = None

    def start(self) -> None:
        self.layer._send(self._bytes, self.flow, self.request)
        if self.flow.reliable:
            self._arm("B" if self.is_invite else "F", 64 * T1)
        else:
            self._interval = T1
            self._arm("A" if self.is_invite else "E", T1)

    def _receive(self, response: SipResponse) -> None:
        status = response.status
        if self.state in (State.COMPLETED, State.TERMINATED):
            if self.is_invite and status >= 300 and self.state is State.COMPLETED:
                self._send_ack(response)  # 17.1.1.2: re-ACK retransmitted finals
            return
        if self.state is State.ACCEPTED:
            if 200 <= status < 300:
                self.layer.tu.on_response(self, response)
            return
        if status < 200:
            if self.state in (State.CALLING, State.TRYING):
                self.state = State.PROCEEDING
                if self.is_invite:
                    # 17.1.1.2: a provisional stops Timer A; how long it may ring is the
                    # TU's decision (it CANCELs).  This guard only reclaims the entry.
                    self._arm("B", PROCEEDING_GUARD)
                elif not self.flow.reliable:
                    self._interval = T2
            self.layer.tu.on_response(self, response)
            return
        self.final_response = response
        if self.is_invite:
            if status < 300:
                self.state = State.ACCEPTED
                self._arm("M", 64 * T1)
            else:
                self._send_ack(response)
                self.state = State.COMPLETED
                self._arm("D", 0 if self.flow.reliable else 32.0)
        else:
            self.state = State.COMPLETED
            self._arm("K", 0 if self.flow.reliable else T4)
        self.layer.tu.on_response(self, response)

    def _send_ack(self, response: SipResponse) -> None:
        """RFC 3261 17.1.1.3: ACK for a non-2xx final, same branch, To from the response."""
        ack = same_transaction_request(self.request, "ACK", to=response.headers.get("To"))
        self.layer._send(ack.to_bytes(), self.flow, ack)

    def _fire(self) -> None:
        timer = self._timer
        if timer in ("A", "E"):
            if self.layer.now >= self._timeout_at:
                self._terminate()
                self.layer.tu.on_timeout(self)
                return
            self.layer._send(self._bytes, self.flow, self.request)
            cap = T2 if (timer == "E" or self.state is State.PROCEEDING) else float("inf")
            if timer == "E" and self.state is State.PROCEEDING:
                self._interval = T2
            else:
                self._interval = min(self._interval * 2, cap)
            self._arm(timer, min(self._interval, self._timeout_at - self.layer.now))
        elif timer in ("B", "F"):
            self._terminate()
            self.layer.tu.on_timeout(self)
        else:  # D, K, M
            self._terminate()

    def cancel_timeout(self) -> None:
        """Stop waiting (the TU gave up on this transaction, e.g. after CANCEL + 487)."""
        self._terminate()


def same_transaction_request(request: SipRequest, method: str, *, to: str | None = None) -> SipRequest:
    """A request that belongs with ``request``'s transaction: CANCEL (RFC 3261 9.1) or the
    ACK for a non-2xx (17.1.1.3): same Request-URI, top Via (branch), Route, From,
    Call-ID and CSeq number; To from the response for an ACK.
    """
    derived = SipRequest(method, request.uri, Headers())
    derived.headers.add("Via", request.headers.get("Via") or "")
    for route in request.headers.get_all("Route"):
        derived.headers.add("Route", route)
    derived.headers.add("Max-Forwards", "70")
    derived.headers.add("From", request.headers.get("From") or "")
    derived.headers.add("To", to or request.headers.get("To") or "")
    derived.headers.add("Call-ID", request.call_id)
    derived.headers.add("CSeq", f"{request.cseq[0]} {method}")
    return derived


class TransactionLayer:
    """Matches messages to transactions and runs their timers.

    ``sender`` writes bytes to the network, ``tu`` receives what passes the
    transaction layer, ``now`` is the current time (seconds, monotonic) and must
    be updated by the caller before :meth:`receive` and :meth:`poll`.
    """

    def __init__(self, sender: Sender, tu: TransactionUser, *,
                 on_sent: Callable[[SipRequest | SipResponse], None] | None = None,
                 on_deadline: Callable[[float], None] | None = None) -> None:
        self.sender = sender
        self.tu = tu
        self.now = 0.0
        self.server: dict[tuple[str, str, str], ServerTransaction] = {}
        self.client: dict[tuple[str, str], ClientTransaction] = {}
        self._heap: list[tuple[float, int, int, Transaction]] = []
        self._seq = itertools.count()
        #: Optional hook called with every message sent (statistics).
        self.on_sent = on_sent
        #: Optional hook called with every timer deadline scheduled, so an I/O edge can
        #: keep one real timer at the earliest one (then call :meth:`poll`).
        self.on_deadline = on_deadline

    # -- input -----------------------------------------------------------------
    def receive(self, message: SipRequest | SipResponse, flow: Flow, now: float) -> None:
        self.now = now
        if isinstance(message, SipResponse):
            self._receive_response(message, flow)
        else:
            self._receive_request(message, flow)

    def _receive_request(self, request: SipRequest, flow: Flow) -> None:
        key = server_key(request)
        tx = self.server.get(key)
        if tx is not None:
            if request.method == "ACK" and tx.state is State.ACCEPTED:
                # ACK for a 2xx is its own transaction (end to end): give it to the TU.
                self.tu.on_request(tx, request)
                return
            tx._on_retransmission(request)
            return
        if request.method == "ACK":
            self.tu.on_request(None, request)
            return
        tx = ServerTransaction(self, request, flow)
        self.server[key] = tx
        self.tu.on_request(tx, request)

    def _receive_response(self, response: SipResponse, flow: Flow) -> None:
        try:
            via = response.top_via
            key = (via.branch or "", response.cseq[1])
        except Exception:
            return
        tx = self.client.get(key)
        if tx is None:
            self.tu.on_stray_response(response, flow)
            return
        tx._receive(response)

    # -- output ----------------------------------------------------------------
    def send_request(self, request: SipRequest, flow: Flow, now: float | None = None) -> ClientTransaction:
        """Start a client transaction (not for ACK: use :meth:`send_stateless`)."""
        if now is not None:
            self.now = now
        tx = ClientTransaction(self, request, flow)
        self.client[tx.key] = tx
        tx.start()
        return tx

    def send_stateless(self, message: SipRequest | SipResponse, flow: Flow) -> None:
        """Send outside any transaction: ACK for 2xx, 2xx retransmissions, stateless replies."""
        self._send(message.to_bytes(), flow, message)

    def respond_stateless(self, request: SipRequest, flow: Flow, status: int, reason: str | None = None,
                          headers: dict[str, str] | None = None) -> None:
        self.send_stateless(make_response(request, status, reason, headers=headers), flow)

    def _send(self, data: bytes, flow: Flow, message: SipRequest | SipResponse | None) -> None:
        self.sender.send(data, flow)
        if self.on_sent is not None and message is not None:
            self.on_sent(message)

    # -- timers ----------------------------------------------------------------
    def _schedule(self, tx: Transaction, deadline: float, generation: int) -> None:
        heapq.heappush(self._heap, (deadline, next(self._seq), generation, tx))
        if self.on_deadline is not None:
            self.on_deadline(deadline)

    def _forget(self, tx: Transaction) -> None:
        if isinstance(tx, ServerTransaction):
            if self.server.get(tx.key) is tx:
                del self.server[tx.key]
        elif isinstance(tx, ClientTransaction):
            if self.client.get(tx.key) is tx:
                del self.client[tx.key]

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and heap[0][3]._generation != heap[0][2]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def poll(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        self.now = now
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, generation, tx = heapq.heappop(heap)
            if tx._generation == generation and tx.state is not State.TERMINATED:
                tx._fire()
