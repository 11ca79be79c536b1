"""The UA core: turns SIP requests and responses into calls, and calls into SIP.

It sits on the sans-I/O transaction layer, owns the dialogs and the calls,
applies the node's policies (rate limit, capacity, trunk authentication,
number routing, dialing rules) and reports every call attempt to the
:class:`~sip_bridge.call.CallObserver`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import socket
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote

from authguard import AuthGuard, SecurityEvents

from . import digest
from .call import Call, CallError, CallObserver, CallState, DialError
from .dialog import Dialog
from .dtmf import parse_dtmf_relay
from .malformed import salvage_response
from .media import MediaClock, MediaStats, PortAllocator, RtpStream
from .message import (
    Headers,
    SipError,
    SipRequest,
    SipResponse,
    generate_branch,
    generate_call_id,
    generate_tag,
    make_response,
    parse_message,
)
from .ratelimit import Limiter, RateLimiter
from .registrar import Binding, Registrar
from .routing import DIGEST_REALM, RoutingTable, Trunk, credentials_user, dialed_number, normalise_number
from .sdp import (
    MediaParams,
    NoCommonCodec,
    SdpError,
    SessionDescription,
    accept_answer,
    answer_offer,
    make_offer,
    new_srtp_key,
)
from .transaction import (
    T1,
    T2,
    ClientTransaction,
    Flow,
    ServerTransaction,
    State,
    TransactionLayer,
    same_transaction_request,
)
from .transport import SipTransport
from .uri import NameAddr, SipUri

logger = logging.getLogger(__name__)

ALLOWED_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO")
ALLOW = ", ".join(ALLOWED_METHODS)
#: Option tags we implement (RFC 3261 19.2); a Require naming anything else gets 420.
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()
RETRY_AFTER = "5"
RTP_WATCHDOG_INTERVAL = 1.0
#: Seconds an agent's phone has to send any response (100 Trying, 180...) to our INVITE
#: before it counts as unreachable (Timer B, 32 s, is too long to keep a caller waiting).
CONTACT_NO_RESPONSE = 5.0
#: User-part characters kept as they are in the To URI of a call to an agent's phone.
_USER_SAFE = "-_.!~*'()&=+$,;?/"


@dataclass
class EndpointConfig:
    bind_host: str = "0.0.0.0"
    advertised_ip: str = "127.0.0.1"
    sip_port: int = 5060
    #: SIP over TLS: the listener's port (0: any free port) and certificate (None: no TLS listener).
    tls_port: int = 5061
    tls_server: ssl.SSLContext | None = None
    #: Checks trunks' certificates on outbound TLS (None: the system's CA store).
    tls_client: ssl.SSLContext | None = None
    #: Out-of-dialog requests to trunks (INVITE, OPTIONS, REGISTER) go to this ``(host, port)``
    #: over UDP, their Request-URI still naming the trunk (a cluster's front relays them); None:
    #: straight to the trunk.
    outbound_proxy: tuple[str, int] | None = None
    #: Addresses of a cluster's SIP front: a request from one of them is taken as sent by the
    #: address its ``X-Source`` header names (see :meth:`SipEndpoint.origin`).
    fronts: frozenset[str] = frozenset()
    rtp_bind_host: str = "0.0.0.0"
    rtp_port_min: int = 20000
    rtp_port_max: int = 39999
    max_calls: int = 2000
    rate_limit: float = 500.0
    rate_burst: int = 1000
    rtp_timeout: float = 30.0
    #: Key for stateless digest nonces (>= 16 bytes); the node passes its persistent secret.
    secret: bytes = field(default_factory=lambda: os.urandom(32))
    user_agent: str = "callcenter"
    options_interval: float = 30.0
    #: Digest challenges offered, most preferred first (RFC 8760: SHA-256 before MD5).
    digest_algorithms: tuple[str, ...] = digest.ALGORITHMS


@dataclass
class SipStats:
    """Counters read by the metrics endpoint."""

    messages: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    calls_by_result: Counter[str] = field(default_factory=Counter)
    malformed: int = 0
    rate_limited: int = 0
    #: Requests from banned sources, dropped unanswered.
    banned: int = 0


IncomingCallHandler = Callable[[Call], Awaitable[None]]
#: Content type of the JSON messages nodes of a cluster exchange on an internal leg (SIP INFO).
MESSAGE_TYPE = "application/vnd.callcenter+json"


@dataclass(frozen=True)
class Handover:
    """A caller another node of the cluster hands to this one (the node hosting the tenant's queues)."""

    #: The caller's call record on the node the call came in on: the internal leg's id here.
    call_id: str
    tenant_id: int
    #: The ``X-CC-*`` headers of the INVITE, by name without the prefix, lowercase (``queue``, ...).
    params: dict[str, str]


class ClusterPeers(Protocol):
    """The other nodes of the cluster, as the SIP edge needs them (a narrow interface)."""

    def handover(self, request: SipRequest, source_ip: str) -> Handover | None:
        """The handover an INVITE carries, if it comes from a live node of the cluster with a
        valid token; None for every other INVITE (it goes through trunk routing)."""

    def is_peer(self, source_ip: str) -> bool:
        """Whether ``source_ip`` is a live node of the cluster: its failures are never counted
        towards a ban (a handover refused as stale must not ban a whole node)."""


HandoverHandler = Callable[[Call, Handover], Awaitable[None]]


class _Leg:
    """SIP state of a call that the public Call object does not need to show."""

    def __init__(self) -> None:
        self.invite_tx: ServerTransaction | None = None
        self.local_tag = generate_tag()
        self.dialog: Dialog | None = None
        self.flow: Flow | None = None
        self.answer_sdp: bytes = b""
        self.params: MediaParams | None = None
        self.sdp_version = 1
        self.session_id = int(time.time())
        self.retransmit: asyncio.TimerHandle | None = None
        self.pending_2xx: bytes | None = None
        self.ack_bytes: bytes | None = None
        self.out_tx: ClientTransaction | None = None
        self.provisional = False
        #: Set when the ACK for our 2xx arrived (or we gave up waiting).
        self.acked = asyncio.Event()
        #: In-dialog requests go to ``flow`` whatever the remote target says (a registered
        #: phone behind NAT: its Contact may be a private address).
        self.fixed_flow = False
        #: The trunk or agent phone on this leg must use SRTP: plain offers get 488, ours are RTP/SAVP.
        self.require_srtp = False
        #: Headers our INVITE carries besides the usual ones (a handover's ``X-CC-*``).
        self.invite_headers: list[tuple[str, str]] = []
        #: Messages on an internal leg go one at a time (in order, see ``send_message``).
        self.messages_lock = asyncio.Lock()


class SipEndpoint:
    def __init__(self, config: EndpointConfig, routing: RoutingTable, observer: CallObserver,
                 on_call: IncomingCallHandler, *, registrar: Registrar | None = None,
                 guard: AuthGuard | None = None, security: SecurityEvents | None = None,
                 peers: ClusterPeers | None = None, on_handover: HandoverHandler | None = None,
                 limiter: Limiter | None = None, calls_elsewhere: Callable[[int], int] | None = None) -> None:
        self.config = config
        #: A cluster: a tenant's carrier calls on the other nodes (its quota is cluster-wide).
        self.calls_elsewhere = calls_elsewhere
        #: Other nodes of a cluster hand callers over here (None: a single node).
        self.peers = peers
        self.on_handover = on_handover
        #: Failed digest authentications of trunks (and sources no trunk allows) count here;
        #: banned sources are dropped unanswered. The registrar shares it for phones.
        self.guard = guard
        #: Told of attacks that are not failed logins (a challenge from a peer that is not a trunk).
        self.security = security
        #: Agents' phones register here; without one REGISTER gets 405.
        self.registrar = registrar
        self.allow = ALLOW + ", REGISTER" if registrar is not None else ALLOW
        self.routing = routing
        self.observer = observer
        self.on_call = on_call
        self.stats = SipStats()
        self.media_stats = MediaStats()
        self.transport = SipTransport(self._on_transport, tls_server=config.tls_server, tls_client=config.tls_client)
        self.tl = TransactionLayer(self.transport, self, on_sent=self._count_sent, on_deadline=self._arm_timer)
        #: New requests per source: this node's token buckets, or (a cluster) the shared ones.
        self.limiter = limiter or RateLimiter(config.rate_limit, config.rate_burst)
        self.nonces = digest.NonceManager(config.secret)
        self.ports = PortAllocator(config.rtp_port_min, config.rtp_port_max)
        self.calls: dict[str, Call] = {}
        self.dialogs: dict[tuple[str, str, str], Call] = {}
        self.legs: dict[str, _Leg] = {}
        self.trunk_state: dict[int, str] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.clock: MediaClock | None = None
        self._watchdog: asyncio.Task[None] | None = None
        #: Call-IDs of INVITEs we gave up on (a 2xx may still come) and of late answers already ended.
        self._abandoned: set[str] = set()
        self._refused: set[str] = set()
        self._registrar_timer: asyncio.TimerHandle | None = None
        self._registrar_timer_at: float | None = None
        if registrar is not None:  # bindings from a REGISTER here or from another node: keep the expiry timer
            registrar.add_bindings_listener(self._bindings_changed)
        self._draining = False

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.clock = MediaClock(self._loop)
        await self.transport.start(self.config.bind_host, self.config.sip_port, self.config.tls_port)
        self.config.sip_port = self.transport.port
        self._watchdog = self._loop.create_task(self._rtp_watchdog())
        self._arm_registrar_timer()  # for bindings learnt before the start
        logger.info("SIP listening on %s:%d (udp, tcp)", self.config.bind_host, self.transport.port)
        if self.config.tls_server is not None:
            self.config.tls_port = self.transport.tls_port
            logger.info("SIP listening on %s:%d (tls)", self.config.bind_host, self.transport.tls_port)

    async def stop(self) -> None:
        await asyncio.gather(*(call.hangup("shutdown") for call in list(self.calls.values())),
                             return_exceptions=True)
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.clock is not None:
            self.clock.stop()
        if self._timer is not None:
            self._timer.cancel()
        if self._registrar_timer is not None:
            self._registrar_timer.cancel()
        await self.transport.close()
        for task in list(self._tasks):
            task.cancel()

    @property
    def active_calls(self) -> int:
        return len(self.calls)

    @property
    def via_host(self) -> str:
        return self.via_host_for("udp")

    def via_host_for(self, transport: str) -> str:
        """Our Via sent-by for a transport: TLS has its own port."""
        port = self.config.tls_port if transport == "tls" else self.config.sip_port
        return f"{self.config.advertised_ip}:{port}"

    def contact(self, transport: str = "udp") -> str:
        suffix = f";transport={transport}" if transport in ("tcp", "tls") else ""
        return f"<sip:callcenter@{self.via_host_for(transport)}{suffix}>"

    def _spawn(self, coro: Awaitable[None], call: Call | None = None) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                logger.error("call task failed", exc_info=t.exception(),
                             extra={"call_id": call.id if call else None})

        task.add_done_callback(done)

    # -- timers ----------------------------------------------------------------------
    def _arm_timer(self, deadline: float) -> None:
        """Keep one loop timer at the transaction layer's earliest deadline."""
        if self._timer_at is not None and self._timer_at <= deadline + 0.001:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._on_timer)  # type: ignore[union-attr]

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.tl.poll(self._loop.time())  # type: ignore[union-attr]
        deadline = self.tl.next_deadline()
        if deadline is not None:
            self._arm_timer(deadline)

    # -- input -----------------------------------------------------------------------
    def _on_transport(self, data: bytes | SipRequest | SipResponse, flow: Flow) -> None:
        if isinstance(data, bytes):
            if not data.strip(b"\r\n\0 "):
                return  # keep-alive
            try:
                message = parse_message(data)
            except SipError as exc:
                self.stats.malformed += 1
                logger.info("malformed SIP from %s:%d: %s", *flow.remote, exc)
                reply = salvage_response(data, exc.status, str(exc))
                if reply is not None:
                    self.transport.send(reply, flow)
                return
        else:
            message = data
        if isinstance(message, SipRequest):
            self.stats.messages[("in", message.method, "")] += 1
        else:
            try:
                method = message.cseq[1]
            except SipError:
                return
            self.stats.messages[("in", method, str(message.status))] += 1
        try:
            self.tl.receive(message, flow, self._loop.time())  # type: ignore[union-attr]
        except SipError as exc:  # a header the core needed was malformed
            self.stats.malformed += 1
            logger.info("bad SIP %s from %s:%d: %s", getattr(message, "method", "response"), *flow.remote, exc)
            if isinstance(message, SipRequest) and message.method != "ACK":
                reply = salvage_response(data if isinstance(data, bytes) else message.to_bytes(), exc.status, str(exc))
                if reply is not None:
                    self.transport.send(reply, flow)

    def _count_sent(self, message: SipRequest | SipResponse) -> None:
        if isinstance(message, SipRequest):
            self.stats.messages[("out", message.method, "")] += 1
        else:
            self.stats.messages[("out", message.cseq[1], str(message.status))] += 1

    # -- TransactionUser -------------------------------------------------------------
    def on_request(self, tx: ServerTransaction | None, request: SipRequest) -> None:
        method = request.method
        if method == "ACK":
            self._on_ack(request)
            return
        assert tx is not None
        call = self.dialogs.get((request.call_id, request.to_tag, request.from_tag or "")) if request.to_tag else None
        if call is not None:
            self._in_dialog(tx, request, call)  # calls already up are never rate limited
            return
        if method == "CANCEL":
            via = request.top_via
            invite_tx = self.tl.server.get((via.branch or "", f"{via.host}:{via.port or 5060}", "INVITE"))
            if invite_tx is not None:  # a CANCEL for a ringing call is never rate limited
                self._on_cancel(tx, request, invite_tx)
                return
        origin = self.origin(tx.flow, request)
        if self.guard is not None and self.guard.blocked(origin.remote[0], None, time.time()) is not None:
            self.stats.banned += 1
            tx.drop()  # no answer: a banned scanner learns nothing, and nothing is reflected
            return
        if not self.limiter.allow(origin.remote[0], self._loop.time()):  # type: ignore[union-attr]
            self.stats.rate_limited += 1
            tx.reply_once(make_response(request, 503, "Rate Limited", headers={"Retry-After": RETRY_AFTER}))
            return
        if request.to_tag or method in ("CANCEL", "BYE", "INFO"):  # a dialog or transaction we don't have
            tx.reply_once(make_response(request, 481))
            return
        if not self._check_require(tx, request):
            return
        if self._draining and method in ("INVITE", "OPTIONS"):  # the front takes this node out, calls go on
            tx.respond(make_response(request, 503, "Draining", headers={"Retry-After": RETRY_AFTER}))
        elif method == "INVITE":
            self._on_invite(tx, request, origin)
        elif method == "OPTIONS":
            tx.respond(self._options_response(request))
        elif method == "REGISTER" and self.registrar is not None:
            self._on_register(tx, request, origin)
        else:
            tx.respond(make_response(request, 405, headers={"Allow": self.allow}))

    def on_response(self, tx: ClientTransaction, response: SipResponse) -> None:
        owner = tx.owner
        if callable(owner):
            owner(response)

    def on_timeout(self, tx: ClientTransaction | ServerTransaction) -> None:
        owner = tx.owner
        if isinstance(tx, ClientTransaction) and callable(owner):
            owner(None)

    def on_stray_response(self, response: SipResponse, flow: Flow) -> None:
        """A response without a transaction: re-ACK a 2xx retransmission, or end an unwanted answer."""
        if 200 <= response.status < 300 and response.cseq[1] == "INVITE":
            call = self.dialogs.get((response.call_id, response.from_tag or "", response.to_tag or ""))
            leg = self.legs.get(call.id) if call is not None else None
            if leg is not None and leg.ack_bytes is not None and leg.flow is not None:
                self.transport.send(leg.ack_bytes, leg.flow)
            elif call is None and response.call_id in self._abandoned:
                self._refuse_late_answer(response, flow)

    def _refuse_late_answer(self, response: SipResponse, flow: Flow) -> None:
        """RFC 3261 15: a 2xx to an INVITE we gave up on is ACKed, then ended with BYE.

        Sent to the trunk the INVITE went to, so a late answer never stays up (and billed).
        """
        if response.call_id in self._refused:
            return  # a retransmission of the 2xx we already ended
        self._refused.add(response.call_id)
        self._loop.call_later(64 * T1, self._refused.discard, response.call_id)  # type: ignore[union-attr]
        contacts = response.contact
        dialog = Dialog(call_id=response.call_id, local_tag=response.from_tag or "",
                        remote_tag=response.to_tag or "", local_addr=response.from_addr,
                        remote_addr=response.to_addr,
                        remote_target=contacts[0].uri if contacts else SipUri.parse(f"sip:{flow.remote[0]}"),
                        route_set=list(reversed(response.headers.get_all("Record-Route"))),
                        local_seq=response.cseq[0], local_contact=self.contact(flow.transport),
                        via_host=self.via_host_for(flow.transport), transport=flow.transport.upper())
        self.tl.send_stateless(dialog.create_request("ACK", cseq=response.cseq[0]), flow)
        self.tl.send_request(dialog.create_request("BYE"), flow, self._loop.time())  # type: ignore[union-attr]
        logger.info("answer after cancel: ACK and BYE sent", extra={"sip_call_id": response.call_id})

    def _check_require(self, tx: ServerTransaction, request: SipRequest) -> bool:
        if request.method == "CANCEL":
            return True
        required = [tag.strip() for tag in request.headers.get_all("Require")]
        unsupported = [tag for tag in required if tag and tag.lower() not in SUPPORTED_EXTENSIONS]
        if unsupported:
            tx.respond(make_response(request, 420, headers={"Unsupported": ", ".join(unsupported)}))
            return False
        return True

    def _options_response(self, request: SipRequest) -> SipResponse:
        return make_response(request, 200, headers={
            "Allow": self.allow, "Accept": "application/sdp", "Supported": "",
            "User-Agent": self.config.user_agent})

    # -- behind a cluster's front ----------------------------------------------------
    def origin(self, flow: Flow, request: SipRequest) -> Flow:
        """Who sent ``request``: the flow it came on, or, when that is the cluster's front (a
        configured front address), the sender the front names in ``X-Source: <transport>
        <address> <port>`` (the front removes any such header from outside and writes its own
        last). Trunk allow-lists, bans, rate limits and TLS policy then apply to the real sender."""
        if flow.remote[0] not in self.config.fronts:
            return flow
        values = request.headers.values("X-Source")
        if not values:
            return flow  # the front's own requests (its OPTIONS probes)
        parts = values[-1].split()
        try:
            transport, address, port = parts[0].lower(), str(ipaddress.ip_address(parts[1])), int(parts[2])
            if transport not in ("udp", "tcp", "tls") or not 0 < port < 65536 or len(parts) != 3:
                raise ValueError(values[-1])
        except (ValueError, IndexError):
            logger.warning("malformed X-Source from the front: %s", values[-1][:80],
                           extra={"sip_call_id": request.call_id})
            return flow
        return Flow(transport, (address, port))

    @property
    def draining(self) -> bool:
        return self._draining

    def set_draining(self, draining: bool) -> None:
        """Draining: OPTIONS and new INVITEs are answered 503, so a cluster's front sends this
        node nothing new while the calls up here go on; False: in service again."""
        if draining != self._draining:
            self._draining = draining
            logger.info("draining: new calls refused" if draining else "in service: new calls taken")

    def trunk_uri(self, trunk: Trunk, user: str | None = None) -> SipUri:
        """The Request-URI of a request to ``trunk``. Through the outbound proxy it also names the
        trunk's transport when that is not UDP: the proxy opens the connection to the trunk."""
        assert trunk.outbound_host
        transport = f";transport={trunk.outbound_transport}" \
            if self.config.outbound_proxy is not None and trunk.outbound_transport != "udp" else ""
        return SipUri.parse(f"sip:{user + '@' if user else ''}{trunk.outbound_host}:{trunk.outbound_port}{transport}")

    # -- agents' phones: REGISTER ----------------------------------------------------
    def _on_register(self, tx: ServerTransaction, request: SipRequest, origin: Flow) -> None:
        """Any source may reach the registrar (agents are not trunks): digest auth protects it."""
        assert self.registrar is not None and self._loop is not None
        response = self.registrar.handle(request, origin, self.nonces, now=self._loop.time(), wall=time.time())
        if response is None:  # this source is banned for this user
            self.stats.banned += 1
            tx.drop()
            return
        response.headers.add("Server", self.config.user_agent)
        tx.respond(response)

    def _bindings_changed(self, sip_user: str, bindings: list[Binding], local: bool) -> None:
        if self._loop is not None:  # before start(), start() arms the timer
            self._arm_registrar_timer()

    def _arm_registrar_timer(self) -> None:
        """One loop timer at the registrar's earliest expiry (as for the transaction layer)."""
        deadline = self.registrar.next_deadline() if self.registrar is not None else None
        if deadline is None or (self._registrar_timer_at is not None and self._registrar_timer_at <= deadline + 0.001):
            return
        if self._registrar_timer is not None:
            self._registrar_timer.cancel()
        self._registrar_timer_at = deadline
        self._registrar_timer = self._loop.call_at(deadline, self._on_registrar_timer)  # type: ignore[union-attr]

    def _on_registrar_timer(self) -> None:
        self._registrar_timer = None
        self._registrar_timer_at = None
        if self.registrar is not None:
            self.registrar.expire(self._loop.time())  # type: ignore[union-attr]
            self._arm_registrar_timer()

    # -- inbound calls ---------------------------------------------------------------
    def _on_invite(self, tx: ServerTransaction, request: SipRequest, origin: Flow) -> None:
        source, wall = origin.remote[0], time.time()
        if self.guard is not None and (user := credentials_user(request)) is not None \
                and self.guard.blocked(source, user, wall) is not None:
            self.stats.banned += 1
            tx.drop()
            return
        tx.respond(make_response(request, 100))
        if self.peers is not None and (handover := self.peers.handover(request, source)) is not None:
            self._accept_handover(tx, request, handover)
            return
        caller = _caller_of(request)
        dialed = dialed_number(request)
        decision = self.routing.classify_inbound(request, source, self.nonces, wall, transport=origin.transport)
        if decision.auth_failed and self.guard is not None \
                and not (self.peers is not None and self.peers.is_peer(source)):
            self.guard.failed(source, decision.account, wall, tenant_id=decision.tenant_id)
        if decision.outcome == "challenge":
            response = make_response(request, 401)
            for value in digest.challenge_headers(
                    DIGEST_REALM, self.nonces.make(time.time()), stale=decision.stale,
                    algorithms=self.config.digest_algorithms):
                response.headers.add("WWW-Authenticate", value)
            tx.respond(response)
            return
        if decision.outcome == "reject":
            response = make_response(request, decision.status)
            if decision.trunk is None:
                tx.reply_once(response)  # an unauthenticated source: one copy, nothing retransmitted
            else:
                tx.respond(response)
            trunk = decision.trunk
            cause = {403: "forbidden", 404: "not_found"}.get(decision.status, "rejected")
            self._record_rejected(request, trunk.tenant_id if trunk and decision.status == 404 else None,
                                  trunk.id if trunk and decision.status == 404 else None, caller, dialed, cause,
                                  decision.status)
            return
        trunk, number = decision.trunk, decision.number
        assert trunk is not None and number is not None
        if len(self.calls) >= self.config.max_calls:
            tx.respond(make_response(request, 503, "Service Unavailable", headers={"Retry-After": RETRY_AFTER}))
            self._record_rejected(request, trunk.tenant_id, trunk.id, caller, dialed, "capacity", 503)
            return
        refusal = self.tenant_refusal(trunk.tenant_id)
        if refusal is not None:
            status, reason, cause = refusal
            tx.respond(make_response(request, status, reason))
            self._record_rejected(request, trunk.tenant_id, trunk.id, caller, dialed, cause, status)
            return
        call = Call(self, direction="inbound", sip_call_id=request.call_id, caller=caller, dialed=dialed,
                    tenant_id=trunk.tenant_id, trunk_id=trunk.id)
        leg = _Leg()
        leg.invite_tx = tx
        leg.flow = tx.flow
        leg.require_srtp = trunk.require_srtp
        tx.owner = call
        self.calls[call.id] = call
        self.legs[call.id] = leg
        self._spawn(self._setup_inbound(call, leg, request), call)

    def tenant_calls(self, tenant_id: int) -> int:
        """The tenant's carrier calls in progress: this node's, counted now, plus the other nodes'
        (``calls_elsewhere``) as of their last publication."""
        here = sum(1 for c in self.calls.values()
                   if c.tenant_id == tenant_id and c.trunk_id is not None and not c.internal)
        return here + (self.calls_elsewhere(tenant_id) if self.calls_elsewhere is not None else 0)

    def tenant_refusal(self, tenant_id: int) -> tuple[int, str, str] | None:
        """Why the tenant may take no new carrier call now: (SIP status, reason phrase, call cause).

        A suspended tenant's calls get 403 (the carrier must not try elsewhere: every node refuses).
        A tenant at its quota of concurrent calls gets 486 Busy Here, not 503: the caller hears busy,
        as from a PBX with all its lines in use, and the carrier does not fail over to another node
        of the cluster, which counts the same calls and would refuse it too."""
        tenant = self.routing.tenants.get(tenant_id)
        if tenant is None:
            return None
        if tenant.suspended:
            return 403, "Tenant Suspended", "suspended"
        if tenant.max_calls is not None and self.tenant_calls(tenant_id) >= tenant.max_calls:
            return 486, "Busy Here", "quota"
        return None

    def _accept_handover(self, tx: ServerTransaction, request: SipRequest, handover: Handover) -> None:
        """A caller handed over by another node: an inbound leg named after the caller's record."""
        if handover.call_id in self.calls or self.on_handover is None:
            tx.respond(make_response(request, 486, "Call Already Here"))  # the other node retries
            return
        if len(self.calls) >= self.config.max_calls:
            tx.respond(make_response(request, 503, "Service Unavailable", headers={"Retry-After": RETRY_AFTER}))
            return
        call = Call(self, direction="inbound", sip_call_id=request.call_id, caller=_caller_of(request),
                    dialed=dialed_number(request), tenant_id=handover.tenant_id, trunk_id=None)
        call.id, call.internal = handover.call_id, True
        leg = _Leg()
        leg.invite_tx = tx
        leg.flow = tx.flow
        tx.owner = call
        self.calls[call.id] = call
        self.legs[call.id] = leg
        on_handover = self.on_handover
        self._spawn(self._setup_inbound(call, leg, request, lambda c: on_handover(c, handover)), call)

    async def _setup_inbound(self, call: Call, leg: _Leg, request: SipRequest,
                             handler: IncomingCallHandler | None = None) -> None:
        log = {"call_id": call.id, "sip_call_id": call.sip_call_id}
        logger.info("incoming call from %s to %s", call.caller, call.dialed, extra=log)
        await self.observer.call_started(call)
        if call.state is CallState.ENDED:  # cancelled while the record was written
            await self._finish(call)
            return
        offer: SessionDescription | None = None
        if request.body:
            if request.content_type != "application/sdp":
                self._fail_inbound(call, leg, 415, "unsupported_media", {"Accept": "application/sdp"})
                await self._finish(call)
                return
            try:
                offer = SessionDescription.parse(request.body)
            except SdpError as exc:
                logger.info("bad SDP offer: %s", exc, extra=log)
                self._fail_inbound(call, leg, 400, "bad_sdp")
                await self._finish(call)
                return
        stream = RtpStream(call_id=call.id, clock=self.clock, stats=self.media_stats,  # type: ignore[arg-type]
                           local_ip=self.config.advertised_ip, on_dtmf=call._dtmf_received)
        try:
            port = await stream.open(self.ports, self.config.rtp_bind_host)
        except RuntimeError as exc:
            logger.error("no RTP port: %s", exc, extra=log)
            self._fail_inbound(call, leg, 503, "no_media_port", {"Retry-After": RETRY_AFTER})
            await self._finish(call)
            return
        call.stream = stream
        if call.state is CallState.ENDED:  # cancelled while the port was bound: give it back
            stream.close()
            await self._finish(call)
            return
        if offer is not None:
            try:
                answer, params = answer_offer(offer, local_ip=self.config.advertised_ip, local_port=port,
                                              session_id=leg.session_id, require_srtp=leg.require_srtp)
            except NoCommonCodec as exc:
                logger.info("no common codec: %s", exc, extra=log)
                self._fail_inbound(call, leg, 488, "incompatible_codec")
                await self._finish(call)
                return
            except SdpError as exc:
                self._fail_inbound(call, leg, 400, "bad_sdp")
                logger.info("bad SDP offer: %s", exc, extra=log)
                await self._finish(call)
                return
            leg.answer_sdp = answer.to_bytes()
            leg.params = params
        else:  # late offer: we offer in the 200, the answer comes in the ACK
            leg.answer_sdp = make_offer(local_ip=self.config.advertised_ip, local_port=port,
                                        session_id=leg.session_id,
                                        srtp_key=new_srtp_key() if leg.require_srtp else None).to_bytes()
        try:
            await (handler or self.on_call)(call)
        finally:
            if call.state is CallState.INCOMING:  # the entry point failed or forgot the caller
                logger.error("entry point left the call unanswered", extra={"call_id": call.id})
                await call.hangup("entry_failed", status=500)

    def _fail_inbound(self, call: Call, leg: _Leg, status: int, cause: str,
                      headers: dict[str, str] | None = None) -> None:
        if leg.invite_tx is not None and call.state is not CallState.ENDED:
            leg.invite_tx.respond(make_response(leg.invite_tx.request, status, headers=headers,
                                                to_tag=leg.local_tag))
        call._mark_ended(cause, "platform", status)

    async def answer(self, call: Call) -> None:
        leg = self.legs[call.id]
        tx = leg.invite_tx
        assert tx is not None
        if call.state is not CallState.INCOMING or tx.state is not State.PROCEEDING:
            return
        request = tx.request
        response = make_response(request, 200, to_tag=leg.local_tag, body=leg.answer_sdp,
                                 content_type="application/sdp",
                                 headers={"Contact": self.contact(tx.flow.transport), "Allow": ALLOW,
                                          "Supported": "", "User-Agent": self.config.user_agent})
        try:
            dialog = Dialog.as_uas(request, leg.local_tag, self.contact(tx.flow.transport),
                                   self.via_host_for(tx.flow.transport), tx.flow.transport.upper())
        except SipError:
            self._fail_inbound(call, leg, 400, "bad_request")
            await self._finish(call)
            return
        leg.dialog = dialog
        self.dialogs[dialog.key] = call
        call.sip_status = 200
        tx.respond(response)
        self._start_2xx_retransmit(call, leg, response)
        if leg.params is not None:
            _rtp(call).start(leg.params)
            call.on_hold = leg.params.on_hold
        call._mark_answered()
        logger.info("call answered (%s)", call.codec, extra={"call_id": call.id})
        await self.observer.call_answered(call)

    def _start_2xx_retransmit(self, call: Call, leg: _Leg, response: SipResponse) -> None:
        """RFC 3261 13.3.1.4: the UAS core re-sends its 2xx until the ACK comes (UDP only)."""
        if leg.flow is None or leg.flow.reliable:
            return
        data = response.to_bytes()
        leg.pending_2xx = data
        started = self._loop.time()  # type: ignore[union-attr]
        interval = T1

        def resend() -> None:
            nonlocal interval
            if leg.pending_2xx is None or call.state is CallState.ENDED:
                return
            if self._loop.time() - started >= 64 * T1:  # type: ignore[union-attr]
                leg.pending_2xx = None
                leg.acked.set()  # stop waiting: the hangup below sends its BYE now
                logger.warning("no ACK for 2xx, hanging up", extra={"call_id": call.id})
                self._spawn(call.hangup("no_ack"), call)
                return
            self.transport.send(data, leg.flow)  # type: ignore[arg-type]
            interval = min(interval * 2, T2)
            leg.retransmit = self._loop.call_later(interval, resend)  # type: ignore[union-attr]

        leg.retransmit = self._loop.call_later(interval, resend)  # type: ignore[union-attr]

    def _on_ack(self, request: SipRequest) -> None:
        call = self.dialogs.get((request.call_id, request.to_tag or "", request.from_tag or ""))
        if call is None:
            return  # ACK for a non-2xx (absorbed by the transaction) or for nothing: never answered
        leg = self.legs.get(call.id)
        if leg is None:
            return
        leg.pending_2xx = None
        leg.acked.set()
        if leg.retransmit is not None:
            leg.retransmit.cancel()
            leg.retransmit = None
        if leg.params is None and not request.body:  # we offered in the 2xx; RFC 3264 needs the answer here
            logger.info("ACK brought no SDP answer", extra={"call_id": call.id})
            self._spawn(call.hangup("incompatible_codec"), call)
            return
        if request.body and request.content_type == "application/sdp" and leg.params is None:
            try:
                params = accept_answer(SessionDescription.parse(leg.answer_sdp),
                                       SessionDescription.parse(request.body))
            except SdpError as exc:
                logger.info("unusable SDP answer in ACK: %s", exc, extra={"call_id": call.id})
                self._spawn(call.hangup("incompatible_codec"), call)
                return
            leg.params = params
            _rtp(call).start(params)

    def _on_cancel(self, tx: ServerTransaction, request: SipRequest, invite_tx: ServerTransaction) -> None:
        tx.respond(make_response(request, 200))
        call = invite_tx.owner
        if invite_tx.state is State.PROCEEDING:
            leg = self.legs.get(call.id) if isinstance(call, Call) else None
            invite_tx.respond(make_response(invite_tx.request, 487, to_tag=leg.local_tag if leg else None))
        if isinstance(call, Call) and call.state is CallState.INCOMING:
            side = "caller" if call.direction == "inbound" else "callee"
            call._mark_ended("cancelled", side, 487)
            logger.info("call cancelled by caller", extra={"call_id": call.id})
            self._spawn(self._finish(call), call)

    # -- in-dialog requests ----------------------------------------------------------
    def _in_dialog(self, tx: ServerTransaction, request: SipRequest, call: Call) -> None:
        leg = self.legs.get(call.id)
        if leg is None or leg.dialog is None:
            tx.respond(make_response(request, 481))
            return
        method = request.method
        if method not in ALLOWED_METHODS:
            tx.respond(make_response(request, 405, headers={"Allow": ALLOW}))
            return
        if not self._check_require(tx, request):
            return
        if not leg.dialog.check_remote_cseq(request):
            tx.respond(make_response(request, 500, "CSeq Out of Order"))
            return
        if method == "BYE":
            tx.respond(make_response(request, 200))
            side = "caller" if call.direction == "inbound" else "callee"
            logger.info("remote hung up", extra={"call_id": call.id})
            call._mark_ended("normal_clearing", side, None)
            self._spawn(self._finish(call), call)
        elif method == "INVITE":
            self._on_reinvite(tx, request, call, leg)
        elif method == "INFO":
            self._on_info(tx, request, call)
        elif method == "OPTIONS":
            tx.respond(self._options_response(request))
        else:  # CANCEL inside a dialog targets nothing pending
            tx.respond(make_response(request, 481))

    def _on_reinvite(self, tx: ServerTransaction, request: SipRequest, call: Call, leg: _Leg) -> None:
        """Hold/resume or a media change: answer the new offer on the same RTP port."""
        if leg.pending_2xx is not None:
            tx.respond(make_response(request, 491, headers={"Retry-After": "1"}))
            return
        assert leg.dialog is not None and call.stream is not None
        srtp = leg.params.srtp if leg.params is not None else None
        if request.body:
            try:
                offer = SessionDescription.parse(request.body)
                answer, params = answer_offer(offer, local_ip=self.config.advertised_ip,
                                              local_port=_rtp(call).local_port, session_id=leg.session_id,
                                              session_version=leg.sdp_version + 1,
                                              require_srtp=leg.require_srtp, keep_srtp=srtp)
            except NoCommonCodec:
                tx.respond(make_response(request, 488))
                return
            except SdpError:
                tx.respond(make_response(request, 400, "Bad SDP"))
                return
            leg.sdp_version += 1  # only an accepted offer changes the session (RFC 3264 8)
            leg.answer_sdp = answer.to_bytes()
            leg.params = params
            _rtp(call).start(params)
            if params.on_hold != call.on_hold:
                logger.info("call %s", "held" if params.on_hold else "resumed", extra={"call_id": call.id})
            call.on_hold = params.on_hold
        else:
            leg.sdp_version += 1
            leg.params = None  # our offer goes in the 200, the answer comes in the ACK
            # SRTP stays (with our key, so what we send keeps its crypto context) or is required
            key = srtp.local_key if srtp is not None else new_srtp_key() if leg.require_srtp else None
            leg.answer_sdp = make_offer(local_ip=self.config.advertised_ip, local_port=_rtp(call).local_port,
                                        session_id=leg.session_id, session_version=leg.sdp_version,
                                        srtp_key=key).to_bytes()
        leg.dialog.update_target(request)  # target refresh only with the accepted re-INVITE
        response = make_response(request, 200, to_tag=leg.local_tag, body=leg.answer_sdp,
                                 content_type="application/sdp",
                                 headers={"Contact": self.contact(tx.flow.transport)})
        tx.respond(response)
        self._start_2xx_retransmit(call, leg, response)

    def _on_info(self, tx: ServerTransaction, request: SipRequest, call: Call) -> None:
        ctype = request.content_type
        if not request.body:
            tx.respond(make_response(request, 200))
        elif ctype in ("application/dtmf-relay", "application/dtmf"):
            try:
                event = parse_dtmf_relay(request.body)
            except ValueError as exc:
                tx.respond(make_response(request, 400, f"Bad DTMF: {exc}"[:80]))
                return
            tx.respond(make_response(request, 200))
            # Never the digit itself: it may be part of a card number (IVR sensitive sections).
            logger.debug("DTMF received by SIP INFO", extra={"call_id": call.id})
            call._dtmf_received(event)
        elif ctype == MESSAGE_TYPE and call.internal:
            try:
                message = json.loads(request.body)
                if not isinstance(message, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                tx.respond(make_response(request, 400, f"Bad message: {exc}"[:80]))
                return
            tx.respond(make_response(request, 200))
            call._message_received(message)
        else:
            tx.respond(make_response(request, 415, headers={"Accept": "application/dtmf-relay, application/dtmf"}))

    async def send_message(self, call: Call, message: dict[str, object]) -> None:
        """A JSON message to the other node on an internal leg (SIP INFO), one at a time per leg
        so they arrive in order; raises CallError if the leg is gone or the INFO is refused."""
        leg = self.legs.get(call.id)
        if leg is None or leg.dialog is None or not call.internal:
            raise CallError(f"call {call.id} is not an internal leg in progress")
        async with leg.messages_lock:
            loop = self._loop
            assert loop is not None
            info = leg.dialog.create_request("INFO", body=json.dumps(message, separators=(",", ":")).encode(),
                                             content_type=MESSAGE_TYPE)
            future: asyncio.Future[SipResponse | None] = loop.create_future()

            def deliver(response: SipResponse | None) -> None:
                if (response is None or response.status >= 200) and not future.done():
                    future.set_result(response)

            tx = self.tl.send_request(info, self._dialog_flow(leg), loop.time())
            tx.owner = deliver
            response = await future
            if response is None or response.status >= 300:
                raise CallError(f"message not taken by the other node ({response.status if response else 'timeout'})")

    # -- ending calls ----------------------------------------------------------------
    async def hangup(self, call: Call, *, cause: str, status: int, side: str) -> None:
        leg = self.legs.get(call.id)
        if leg is None or call.state is CallState.ENDED:
            return
        if call.state is CallState.INCOMING:
            if leg.invite_tx is not None and leg.invite_tx.state is State.PROCEEDING:
                leg.invite_tx.respond(make_response(leg.invite_tx.request, status, to_tag=leg.local_tag))
            call._mark_ended(cause, side, status)
        elif call.state is CallState.DIALING:
            self._send_cancel(leg)
            call._mark_ended(cause, side, None)
        else:
            if leg.pending_2xx is not None:
                # RFC 3261 15: the callee must not send BYE before the ACK (or its timeout).
                try:
                    await asyncio.wait_for(leg.acked.wait(), 64 * T1)
                except asyncio.TimeoutError:
                    pass
                if call.state is CallState.ENDED:
                    return
            if leg.dialog is not None and leg.flow is not None:
                bye = leg.dialog.create_request("BYE", extra={"User-Agent": self.config.user_agent})
                try:
                    self.tl.send_request(bye, self._dialog_flow(leg), self._loop.time())  # type: ignore[union-attr]
                except (OSError, ValueError) as exc:  # the call ends here whatever the network says
                    logger.warning("BYE not sent: %s", exc, extra={"call_id": call.id})
            call._mark_ended(cause, side, None)
        logger.info("call ended: %s (%s)", cause, side, extra={"call_id": call.id})
        await self._finish(call)

    def on_bridged_peer_ended(self, call: Call, peer: Call) -> None:
        """The other leg of a bridge hung up: end this one too."""
        if call.state is not CallState.ENDED:
            self._spawn(call.hangup("bridged_peer_hangup", side="platform"), call)

    def _dialog_flow(self, leg: _Leg) -> Flow:
        assert leg.dialog is not None and leg.flow is not None
        if leg.flow.reliable or leg.fixed_flow:
            return leg.flow  # reuse the connection the call came on / the registered phone's flow
        try:
            host, port = leg.dialog.next_hop().hostport
            ipaddress.ip_address(host)
        except ValueError:  # a host name (or no host): no DNS on this path, answer where the dialog came from
            return leg.flow
        return Flow("udp", (host, port))

    async def _finish(self, call: Call) -> None:
        """Forget an ended call and complete its record (exactly once)."""
        leg = self.legs.pop(call.id, None)
        if leg is None:
            return
        self.calls.pop(call.id, None)
        if leg.retransmit is not None:
            leg.retransmit.cancel()
        if leg.dialog is not None:
            # keep answering retransmitted BYEs/ACKs briefly? the transaction layer absorbs them
            self.dialogs.pop(leg.dialog.key, None)
        self.stats.calls_by_result[call.end_cause or "unknown"] += 1
        await self.observer.call_ended(call)

    def _record_rejected(self, request: SipRequest, tenant_id: int | None, trunk_id: int | None, caller: str,
                         dialed: str, cause: str, status: int) -> None:
        call = Call(self, direction="inbound", sip_call_id=request.call_id, caller=caller, dialed=dialed,
                    tenant_id=tenant_id, trunk_id=trunk_id)
        call._mark_ended(cause, "platform", status)
        self.stats.calls_by_result[cause] += 1
        logger.info("call rejected: %d %s", status, cause, extra={"call_id": call.id,
                                                                  "sip_call_id": request.call_id})

        async def record() -> None:
            await self.observer.call_started(call)
            await self.observer.call_ended(call)

        self._spawn(record(), call)

    async def _rtp_watchdog(self) -> None:
        """Hang up answered calls whose peer stopped sending RTP (cause ``rtp_timeout``)."""
        while True:
            await asyncio.sleep(RTP_WATCHDOG_INTERVAL)
            now = self._loop.time()  # type: ignore[union-attr]
            limit = self.config.rtp_timeout
            for call in list(self.calls.values()):
                stream = call.stream if isinstance(call.stream, RtpStream) else None
                if call.state is CallState.ANSWERED and stream is not None and stream.receiving_expected \
                        and not call.on_hold and now - stream.last_rx > limit:
                    logger.info("no RTP for %.0f s", now - stream.last_rx, extra={"call_id": call.id})
                    self._spawn(call.hangup("rtp_timeout"), call)

    # -- outbound calls --------------------------------------------------------------
    def trunks_up(self, tenant_id: int, trunk_id: int | None = None) -> list[Trunk]:
        """The tenant's outbound trunks (or just ``trunk_id``) in priority order, without those the
        OPTIONS keepalive or a timeout marked down."""
        return [t for t in self.routing.outbound_trunks(tenant_id)
                if (trunk_id is None or t.id == trunk_id) and self.trunk_state.get(t.id) != "down"]

    async def dial(self, tenant_id: int, number: str, *, caller_id: str = "anonymous",
                   trunk_id: int | None = None, timeout: float = 60.0,
                   placed: Callable[[Call], None] | None = None) -> Call:
        """Place an outbound call through the tenant's trunks (first one up, failing over).

        Returns the answered call; raises :class:`DialError` otherwise.  The
        tenant's dialing rules are checked first (toll-fraud guard). ``placed`` is told the
        call as soon as it exists (before it rings): an agent's softphone names the call
        record from the start, also when it is never answered.
        """
        if not self.routing.may_dial(tenant_id, number):
            raise DialError(f"dialing {number} is not allowed for this tenant", 403, "dialing_rule")
        trunks = self.trunks_up(tenant_id, trunk_id)
        if not trunks:
            raise DialError("no outbound trunk is up", 503, "no_trunk")
        if len(self.calls) >= self.config.max_calls:
            raise DialError("node at maximum concurrent calls", 503, "capacity")
        refusal = self.tenant_refusal(tenant_id)
        if refusal is not None:
            raise DialError(f"tenant may not call: {refusal[2]}", refusal[0], refusal[2])
        call = Call(self, direction="outbound", sip_call_id=generate_call_id(self.config.advertised_ip),
                    caller=caller_id, dialed=number, tenant_id=tenant_id, trunk_id=trunks[0].id)
        if placed is not None:
            placed(call)
        return await self._place(call, _Leg(), trunks, number, timeout)

    async def dial_contact(self, tenant_id: int, sip_user: str, *, caller_id: str, timeout: float = 30.0) -> Call:
        """Ring an agent's registered phone (its newest binding) and return the answered call.

        The INVITE's Request-URI is the binding's Contact URI and it goes to the
        flow the phone registered from (through its NAT); so do the ACK and BYE.
        Raises :class:`DialError`: status 0, cause ``unreachable`` when the agent
        has no binding (in this tenant) or the phone does not respond (its binding
        is then dropped, see :meth:`Registrar.mark_unreachable`, as after a 408,
        480 or 503 from it); 480 ``no_answer`` when it rang for ``timeout`` seconds
        (CANCEL sent); 486 ``busy``; 603 ``declined``.
        """
        registrar = self.registrar
        binding: Binding | None = None
        if registrar is not None:
            registrar.expire(self._loop.time())  # type: ignore[union-attr]
            binding = registrar.contact_for(sip_user)
        if binding is None or binding.tenant_id != tenant_id:
            raise DialError(f"{sip_user} has no registered phone", 0, "unreachable")
        agent = registrar.directory.credentials(sip_user) if registrar is not None else None
        if registrar is not None and agent is not None and agent.require_tls and binding.flow.transport != "tls":
            # registered in the clear before its phone had to use TLS: never rung that way
            registrar.mark_unreachable(sip_user, binding)
            raise DialError(f"{sip_user}'s phone registered without TLS, which it must use", 0, "unreachable")
        if len(self.calls) >= self.config.max_calls:
            raise DialError("node at maximum concurrent calls", 503, "capacity")
        call = Call(self, direction="outbound", sip_call_id=generate_call_id(self.config.advertised_ip),
                    caller=caller_id, dialed=sip_user, tenant_id=tenant_id, trunk_id=None)
        leg = _Leg()
        leg.fixed_flow = True
        leg.require_srtp = agent is not None and agent.require_srtp
        leg.invite_headers = [("Route", hop) for hop in binding.path]  # through the front it registered by
        hop = binding.next_hop
        logger.info("ringing agent phone %s at %s via %s:%s:%d", sip_user, binding.target, hop.transport,
                    *hop.remote, extra={"call_id": call.id, "sip_call_id": call.sip_call_id})
        return await self._place(call, leg, binding, sip_user, timeout)

    async def dial_node(self, tenant_id: int, address: tuple[str, int], *, call_id: str, caller: str,
                        headers: list[tuple[str, str]], timeout: float = 10.0) -> Call:
        """Hand a caller to another node of the cluster: an internal leg for the caller whose record
        is ``call_id`` (named in ``headers``, ``X-CC-*``), INVITE ``sip:acd@address``. Returns the
        answered leg; raises :class:`DialError` (``unreachable`` when the node does not answer)."""
        target = Binding(sip_user="acd", tenant_id=tenant_id, agent_id="",
                         uri=SipUri("sip", user="acd", host=address[0], port=address[1]),
                         flow=Flow("udp", address), expires_at=float("inf"), registered_at=0.0, call_id="", cseq=0,
                         serial=0)
        call = Call(self, direction="outbound", sip_call_id=generate_call_id(self.config.advertised_ip),
                    caller=caller, dialed="acd", tenant_id=tenant_id, trunk_id=None)
        call.internal = True  # the caller's record is ``call_id``'s: none of its own
        leg = _Leg()
        leg.fixed_flow = True
        leg.invite_headers = headers
        return await self._place(call, leg, target, "acd", timeout)

    async def _place(self, call: Call, leg: _Leg, targets: list[Trunk] | Binding, number: str,
                     timeout: float) -> Call:
        self.calls[call.id] = call
        self.legs[call.id] = leg
        try:
            return await self._dial(call, leg, targets, number, timeout)
        except DialError:
            raise  # the call is already ended and recorded
        except BaseException:  # whoever dialed gave up (task cancelled), or a bug: stop ringing, close the record
            self._send_cancel(leg)
            if call.state is not CallState.ENDED:
                call._mark_ended("cancelled", "platform", None)
            await asyncio.shield(self._finish(call))
            raise

    async def _dial(self, call: Call, leg: _Leg, targets: list[Trunk] | Binding, number: str,
                    timeout: float) -> Call:
        """Set up media, then INVITE the trunks in turn or the registered phone; end and record a failure."""
        await self.observer.call_started(call)
        stream = RtpStream(call_id=call.id, clock=self.clock, stats=self.media_stats,  # type: ignore[arg-type]
                           local_ip=self.config.advertised_ip, on_dtmf=call._dtmf_received)
        call.stream = stream
        try:
            await stream.open(self.ports, self.config.rtp_bind_host)
        except RuntimeError as exc:
            call._mark_ended("no_media_port", "platform", None)
            await self._finish(call)
            raise DialError(str(exc), 503, "no_media_port") from exc
        if isinstance(targets, Binding):
            failure = await self._ring_contact(call, leg, targets, timeout)
        else:
            failure = await self._try_trunks(call, leg, targets, number, timeout)
        if failure is None:
            return call
        if call.state is not CallState.ENDED:
            call._mark_ended(failure.cause, "callee" if failure.status in (486, 600, 603) else "platform",
                             failure.status or None)
        await self._finish(call)
        raise failure

    async def _try_trunks(self, call: Call, leg: _Leg, trunks: list[Trunk], number: str,
                          timeout: float) -> DialError | None:
        """Each trunk in turn until one answers (None) or a definitive failure (returned)."""
        target = ("+" if number.lstrip().startswith("+") else "") + normalise_number(number)
        failure = DialError("no trunk answered", 503, "failed")
        for trunk in trunks:
            call.trunk_id = trunk.id
            try:
                await asyncio.wait_for(self._invite_via(call, leg, trunk, target), timeout)
                return None
            except asyncio.TimeoutError:
                self._send_cancel(leg)
                failure = DialError(f"no answer from {number} within {timeout:.0f} s", 408, "no_answer")
                break
            except (SipError, OSError) as exc:  # unusable challenge, DNS failure...: next trunk
                failure = DialError(f"trunk {trunk.name}: {exc}", 502, "trunk_error")
                logger.warning("trunk %s failed: %s", trunk.name, exc, extra={"call_id": call.id})
            except DialError as exc:
                failure = exc
                our_timeout = exc.cause == "trunk_timeout"
                if call.state is CallState.ENDED or not (our_timeout or 500 <= exc.status < 600):
                    break  # a definitive answer (busy, 6xx decline, not found...): don't retry elsewhere
                if our_timeout:  # the trunk itself didn't answer (a carrier's 408 is about the callee)
                    self.trunk_state[trunk.id] = "down"
                logger.info("trunk %s failed (%s), trying next", trunk.name, exc, extra={"call_id": call.id})
        return failure

    async def _ring_contact(self, call: Call, leg: _Leg, binding: Binding, timeout: float) -> DialError | None:
        """INVITE a registered phone: None when answered, else the failure (no failover)."""
        user = binding.sip_user
        try:
            await asyncio.wait_for(self._invite_via(call, leg, binding, user), timeout)
            return None
        except asyncio.TimeoutError:
            rang = leg.provisional
            self._send_cancel(leg)
            if rang:
                return DialError(f"{user} did not answer within {timeout:.0f} s", 480, "no_answer")
            failure = DialError(f"{user}'s phone did not respond", 0, "unreachable")
        except DialError as exc:
            if exc.cause == "unreachable":
                self._send_cancel(leg)  # stop retransmitting the INVITE
            elif exc.status not in (408, 480, 503) or call.state is CallState.ENDED:
                return exc  # busy, declined...: the phone works
            failure = exc
        except (SipError, OSError) as exc:
            return DialError(f"{user}: {exc}", 502, "failed")
        logger.info("agent phone unreachable: %s", failure, extra={"call_id": call.id, "sip_user": user})
        if self.registrar is not None:
            self.registrar.mark_unreachable(user, binding)
        return failure

    async def _invite_via(self, call: Call, leg: _Leg, target: Trunk | Binding, number: str) -> None:
        """INVITE ``number`` through a trunk, or a registered phone (``number`` is then its SIP user)."""
        loop = self._loop
        assert loop is not None and call.stream is not None
        trunk = target if isinstance(target, Trunk) else None
        if trunk is not None:
            assert trunk.outbound_host
            flow = await self.trunk_flow(trunk)
            ruri = self.trunk_uri(trunk, number)
            to_addr = NameAddr.parse(f"<sip:{number}@{trunk.outbound_host}>")
            name = f"trunk {trunk.name}"
        else:
            assert isinstance(target, Binding)
            flow = target.next_hop  # the phone, or the front on its Path (Route headers: see dial_contact)
            ruri = target.target
            to_addr = NameAddr(uri=SipUri("sip", user=quote(number, safe=_USER_SAFE), host=self.config.advertised_ip))
            name = f"agent {number}"
        if trunk is not None:
            leg.require_srtp = trunk.require_srtp
        offer = make_offer(local_ip=self.config.advertised_ip, local_port=_rtp(call).local_port,
                           session_id=leg.session_id, srtp_key=new_srtp_key() if leg.require_srtp else None)
        body = offer.to_bytes()
        if trunk is not None:
            from_addr = NameAddr.parse(f"<sip:{call.caller}@{self.config.advertised_ip}>;tag={leg.local_tag}")
        else:  # the ACD passes the customer's caller ID as it came (maybe empty, maybe "+86 10 ...")
            caller = SipUri("sip", user=quote(call.caller or "anonymous", safe=_USER_SAFE),
                            host=self.config.advertised_ip)
            from_addr = NameAddr(uri=caller, params={"tag": leg.local_tag})
        cseq = 1
        authorization: tuple[str, str] | None = None
        while True:
            request = self._build_request("INVITE", ruri, from_addr, to_addr, call.sip_call_id, cseq,
                                          flow.transport, body, "application/sdp")
            if authorization is not None:
                request.headers.add(*authorization)
            for header in leg.invite_headers:
                request.headers.add(*header)
            future: asyncio.Future[SipResponse | None] = loop.create_future()

            def deliver(response: SipResponse | None, future: asyncio.Future[SipResponse | None] = future) -> None:
                if response is not None and response.status < 200:
                    leg.provisional = True
                    return
                if response is not None and 200 <= response.status < 300 and future.done():
                    if leg.ack_bytes is not None:
                        self._resend_ack(leg)  # 2xx retransmission
                    else:  # answered after we gave up (crossed our CANCEL)
                        self._refuse_late_answer(response, flow)
                    return
                if not future.done():
                    future.set_result(response)

            leg.flow = flow
            tx = self.tl.send_request(request, flow, loop.time())
            tx.owner = deliver
            leg.out_tx = tx
            leg.provisional = False
            if trunk is None:  # a phone answers at once (100, 180) or is gone: don't wait for Timer B
                await asyncio.wait({future}, timeout=CONTACT_NO_RESPONSE)
                if not future.done() and not leg.provisional:
                    raise DialError(f"{name} did not respond", 0, "unreachable")
            response = await future
            if response is None:
                if trunk is None:
                    raise DialError(f"{name} did not respond", 0, "unreachable")
                raise DialError(f"trunk {trunk.name} did not respond", 408, "trunk_timeout")
            if response.status in (401, 407) and authorization is None and trunk is not None \
                    and trunk.register_username:
                name = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
                challenge = digest.pick_challenge(response.headers.get_all(name))
                value = digest.build_authorization(challenge, method="INVITE", uri=str(ruri),
                                                   username=trunk.register_username,
                                                   password=trunk.register_password or "")
                authorization = ("Authorization" if response.status == 401 else "Proxy-Authorization", value)
                cseq += 1
                continue
            if response.status in (401, 407) and trunk is None:
                self._foreign_challenge(call, flow, response)
            break
        if response.status >= 300:
            cause = {486: "busy", 600: "busy", 603: "declined", 404: "not_found", 480: "unavailable",
                     487: "cancelled"}.get(response.status, "failed")
            raise DialError(f"{number}: {response.status} {response.reason}", response.status, cause)
        # 2xx: confirm the dialog, ACK, start media
        leg.dialog = Dialog.as_uac(request, response, self.contact(flow.transport),
                                   self.via_host_for(flow.transport), flow.transport.upper())
        self.dialogs[leg.dialog.key] = call
        ack = leg.dialog.create_request("ACK", cseq=request.cseq[0])
        leg.ack_bytes = ack.to_bytes()
        self._resend_ack(leg)
        if call.state is CallState.ENDED:
            # answered while we were cancelling: hang up at once
            bye = leg.dialog.create_request("BYE")
            self.tl.send_request(bye, self._dialog_flow(leg), loop.time())
            raise DialError("call answered after cancel", 487, "cancelled")
        try:
            params = accept_answer(offer, SessionDescription.parse(response.body))
        except SdpError as exc:
            bye = leg.dialog.create_request("BYE")
            self.tl.send_request(bye, self._dialog_flow(leg), loop.time())
            raise DialError(f"unusable SDP answer: {exc}", 488, "incompatible_codec") from exc
        leg.params = params
        _rtp(call).start(params)
        call.sip_status = response.status
        call._mark_answered()
        logger.info("outbound call answered via %s (%s)", trunk.name if trunk else name, params.codec,
                    extra={"call_id": call.id})
        await self.observer.call_answered(call)

    def _foreign_challenge(self, call: Call, flow: Flow, response: SipResponse) -> None:
        """A peer that is not a trunk (an agent's phone) asked us for credentials: it gets none
        (FreeSWITCH's ``uac_digest_leak``: a challenge answered with a trunk's secret gives the
        peer a hash to crack offline); the attempt ends and is reported."""
        logger.warning("a peer that is not a trunk challenged our %s: no credentials sent", response.cseq[1],
                       extra={"call_id": call.id, "sip_call_id": call.sip_call_id,
                              "source": f"{flow.transport}:{flow.remote[0]}:{flow.remote[1]}",
                              "security_event": "sip.foreign_challenge"})
        if self.security is not None:
            self.security.security_event("sip.foreign_challenge", source=flow.remote[0], tenant_id=call.tenant_id,
                                         detail={"call_id": call.id, "status": response.status,
                                                 "method": response.cseq[1], "target": call.dialed})

    async def trunk_flow(self, trunk: Trunk) -> Flow:
        """Where a trunk's requests go (its host resolved; raises OSError when it can't be).

        Over TLS the connection is opened here, so a certificate that fails verification
        against the trunk's host name fails the trunk at once (``ssl.SSLCertVerificationError``).
        """
        assert trunk.outbound_host
        if self.config.outbound_proxy is not None:  # the front relays it by its Request-URI (trunk_uri)
            host, port = self.config.outbound_proxy
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
            return Flow("udp", (str(infos[0][4][0]), port))
        infos = await asyncio.get_running_loop().getaddrinfo(trunk.outbound_host, trunk.outbound_port,
                                                             type=socket.SOCK_DGRAM)
        flow = Flow(trunk.outbound_transport, (str(infos[0][4][0]), trunk.outbound_port),
                    server_name=trunk.outbound_host)
        if flow.transport == "tls":
            await self.transport.connect(flow)
        return flow

    def _resend_ack(self, leg: _Leg) -> None:
        if leg.ack_bytes is not None and leg.dialog is not None:
            self.transport.send(leg.ack_bytes, self._dialog_flow(leg))
            self.stats.messages[("out", "ACK", "")] += 1

    def _send_cancel(self, leg: _Leg) -> None:
        """RFC 3261 9.1: CANCEL only once a provisional came; otherwise stop retransmitting."""
        tx = leg.out_tx
        if tx is None or tx.state not in (State.CALLING, State.PROCEEDING):
            return
        call_id = tx.request.call_id
        self._abandoned.add(call_id)
        self._loop.call_later(64 * T1, self._abandoned.discard, call_id)  # type: ignore[union-attr]
        if not leg.provisional:
            tx.cancel_timeout()
            return
        cancel = same_transaction_request(tx.request, "CANCEL")
        self.tl.send_request(cancel, tx.flow, self._loop.time())  # type: ignore[union-attr]

    def _build_request(self, method: str, ruri: SipUri, from_addr: NameAddr, to_addr: NameAddr, call_id: str,
                       cseq: int, transport: str, body: bytes = b"", content_type: str | None = None) -> SipRequest:
        headers = Headers()
        headers.add("Via", f"SIP/2.0/{transport.upper()} {self.via_host_for(transport)};branch={generate_branch()}"
                           ";rport")
        headers.add("Max-Forwards", "70")
        headers.add("From", str(from_addr))
        headers.add("To", str(to_addr))
        headers.add("Call-ID", call_id)
        headers.add("CSeq", f"{cseq} {method}")
        headers.add("Contact", self.contact(transport))
        headers.add("User-Agent", self.config.user_agent)
        if method == "INVITE":
            headers.add("Allow", ALLOW)
        if content_type:
            headers.add("Content-Type", content_type)
        return SipRequest(method, ruri, headers, body)

    async def request(self, method: str, ruri: SipUri, flow: Flow, *, to_addr: NameAddr | None = None,
                      from_user: str = "callcenter", call_id: str | None = None, cseq: int = 1,
                      extra: list[tuple[str, str]] | None = None) -> SipResponse | None:
        """Send an out-of-dialog request (OPTIONS, REGISTER); the final response, or None on timeout."""
        loop = self._loop
        assert loop is not None
        from_addr = NameAddr.parse(f"<sip:{from_user}@{ruri.host}>;tag={generate_tag()}")
        request = self._build_request(method, ruri, from_addr, to_addr or NameAddr(uri=ruri, params={}),
                                      call_id or generate_call_id(self.config.advertised_ip), cseq, flow.transport)
        for name, value in extra or []:
            request.headers.add(name, value)
        future: asyncio.Future[SipResponse | None] = loop.create_future()

        def deliver(response: SipResponse | None) -> None:
            if (response is None or response.status >= 200) and not future.done():
                future.set_result(response)

        tx = self.tl.send_request(request, flow, loop.time())
        tx.owner = deliver
        return await future


def _caller_of(request: SipRequest) -> str:
    try:
        uri = request.from_addr.uri
    except SipError:
        return ""
    return getattr(uri, "user_unescaped", None) or str(uri)


def _rtp(call: Call) -> RtpStream:
    """The RTP stream of a call of this endpoint (the media of SIP calls is always RTP)."""
    stream = call.stream
    assert isinstance(stream, RtpStream), f"call {call.id} has no RTP stream"
    return stream
