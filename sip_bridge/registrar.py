"""The registrar for agents' SIP phones (RFC 3261 section 10.3), sans-I/O.

An agent's phone registers as ``<tenant_slug>.<username>`` (``demo.agent2``);
only the user part of the address-of-record counts, any host is accepted.
Requests come in through :meth:`Registrar.handle` with the flow they arrived
on and the time; the answer goes out as a :class:`SipResponse` the caller
sends.  Time also comes in through :meth:`Registrar.expire`, which the asyncio
edge calls at :meth:`Registrar.next_deadline` (one loop timer, as for the
transaction layer).

Passwords never reach the platform's storage: the :class:`AgentDirectory`
hands out H(A1) = MD5(``user:realm:password``) (see :func:`sip_ha1`).  That
fixes the digest algorithm to MD5 (``MD5-sess`` works too): a SHA-256 challenge
(RFC 8760) would need a second stored hash, so REGISTER is challenged with MD5
only.

Each binding remembers the flow its REGISTER came from (transport and source
address, not the Contact host): calls to the phone go back the same way, which
is what gets through the phone's NAT.  A REGISTER that came through a proxy
with a ``Path`` (RFC 3327: the cluster's front) is rung along that path instead:
the proxy knows the phone's address.  Listeners learn when an agent goes from
no binding to some (reachable) and back (unreachable).

In a cluster each node keeps its own registrar: the bindings one node accepts
reach the others as data (:func:`binding_record`, :meth:`Registrar.learn`),
told by the bindings listeners; the registrar itself knows no network.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from typing import Any, Protocol

from authguard import AuthGuard

from . import digest
from .message import SipError, SipRequest, SipResponse, generate_tag, make_response
from .routing import DIGEST_REALM
from .transaction import Flow
from .uri import NameAddr, SipUri

logger = logging.getLogger(__name__)

#: Expiry granted when the phone asks for none (RFC 3261 10.2.1.1 suggests an hour).
DEFAULT_EXPIRES = 3600
#: Shorter requests get 423 Interval Too Brief with this Min-Expires (except 0, which unregisters).
MIN_EXPIRES = 60
#: Longer requests are granted this much.
MAX_EXPIRES = 3600
#: Contacts kept per agent; beyond it the oldest binding is dropped (bounds what one login can store).
MAX_BINDINGS = 10
#: What REGISTER challenges offer: the stored H(A1) is MD5 (see the module docstring).
REGISTER_ALGORITHMS: tuple[str, ...] = ("MD5",)
#: Largest delta-seconds value (RFC 3261 25.1); longer digit strings are clamped to it.
_MAX_DELTA = 2**32 - 1
#: Verified when the user is unknown, so an unknown user costs the same time as a wrong password.
_DUMMY_HA1 = "0" * 32


@dataclass(frozen=True)
class AgentCredentials:
    """What the platform knows of an agent's SIP login."""

    sip_user: str
    #: MD5 of ``sip_user:DIGEST_REALM:password``, hex (:func:`sip_ha1`).
    ha1: str
    tenant_id: int
    agent_id: str
    #: The phone must register (and so be rung) over TLS: REGISTER over UDP or TCP gets 403.
    require_tls: bool = False
    #: Calls to the phone are offered SRTP only (RTP/SAVP).
    require_srtp: bool = False


class AgentDirectory(Protocol):
    """The platform's agent logins (a cache of the database; called on the event loop, must not block)."""

    def credentials(self, sip_user: str) -> AgentCredentials | None: ...


def sip_ha1(sip_user: str, password: str) -> str:
    """The H(A1) to store for an agent's SIP password (the password itself is never stored)."""
    return digest.compute_ha1(sip_user, DIGEST_REALM, password, "MD5")


@dataclass(frozen=True)
class Binding:
    """One registered contact of an agent."""

    sip_user: str
    tenant_id: int
    agent_id: str
    #: The Contact URI as registered (URI headers and parameters kept).
    uri: SipUri
    #: Where the REGISTER came from: requests to the phone are sent there (NAT-friendly).
    flow: Flow
    #: On the registrar's clock (the ``now`` given to :meth:`Registrar.handle`).
    expires_at: float
    #: When this registration began (a refresh on the same Call-ID keeps it).
    registered_at: float
    call_id: str
    cseq: int
    #: Registration order across the registrar: higher is newer.
    serial: int
    #: Contact header parameters other than ``expires`` (``q``, ``+sip.instance``...).
    params: tuple[tuple[str, str | None], ...] = ()
    user_agent: str | None = None
    #: The REGISTER's ``Path`` values in order (RFC 3327): requests to the phone carry them as
    #: ``Route`` headers and go to the first one (a proxy that knows the phone's address).
    path: tuple[str, ...] = ()

    @property
    def next_hop(self) -> Flow:
        """Where requests to the phone are sent: the first Path hop, or the flow the REGISTER came from."""
        if not self.path:
            return self.flow
        return _path_hop(self.path[0])

    @property
    def target(self) -> SipUri:
        """The Request-URI for requests to this phone: the Contact URI without URI headers
        (RFC 3261 19.1.5: those would become headers of the request)."""
        return replace(self.uri, headers={}) if self.uri.headers else self.uri

    def expires_in(self, now: float) -> int:
        """Whole seconds left, as the 200 to REGISTER states it."""
        return max(0, math.ceil(self.expires_at - now - 1e-9))

    def contact_value(self, now: float) -> str:
        """The Contact header value listing this binding in a 200 to REGISTER."""
        params: dict[str, str | None] = dict(self.params)
        params["expires"] = str(self.expires_in(now))
        return str(NameAddr(uri=self.uri, params=params))


#: Called with the agent's SIP user and whether it is reachable now.
ChangeListener = Callable[[str, bool], None]
#: Called with the agent's SIP user, its bindings (newest first) and whether the change was made
#: here (a REGISTER, a phone found unreachable: ``True``) or learnt from another registrar.
BindingsListener = Callable[[str, list[Binding], bool], None]


@dataclass
class _Request:
    """A REGISTER's contacts after parsing: (uri, header params, expires), or the wildcard."""

    wildcard: bool = False
    contacts: list[tuple[SipUri, tuple[tuple[str, str | None], ...], int]] = field(default_factory=list)
    path: tuple[str, ...] = ()


class Registrar:
    """Bindings of agents' phones, kept in memory (a node restart loses them; phones re-register).

    Responses to unauthenticated requests never tell whether a user exists:
    every REGISTER without valid credentials gets the same challenge, and
    credentials for an unknown user the same 403 as a wrong password.
    """

    def __init__(self, directory: AgentDirectory, *, on_change: ChangeListener | None = None,
                 realm: str = DIGEST_REALM, default_expires: int = DEFAULT_EXPIRES,
                 min_expires: int = MIN_EXPIRES, max_expires: int = MAX_EXPIRES,
                 max_bindings: int = MAX_BINDINGS, guard: AuthGuard | None = None) -> None:
        if not 0 < min_expires <= default_expires <= max_expires:
            raise ValueError("expires limits must satisfy 0 < min <= default <= max")
        self.directory = directory
        self.realm = realm
        self.default_expires = default_expires
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.max_bindings = max_bindings
        #: Counts wrong secrets per source and (source, SIP user); refuses banned ones.
        self.guard = guard
        self._listeners: list[ChangeListener] = [on_change] if on_change is not None else []
        self._bindings_listeners: list[BindingsListener] = []
        #: sip_user -> bindings, newest first.
        self._bindings: dict[str, list[Binding]] = {}
        #: (expires_at, seq, sip_user); entries outlived by a refresh are skipped lazily.
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._serial = itertools.count(1)

    # -- listeners -------------------------------------------------------------------
    def add_listener(self, listener: ChangeListener) -> None:
        """Call ``listener(sip_user, reachable)`` when an agent gains its first or loses its last binding."""
        self._listeners.append(listener)

    def remove_listener(self, listener: ChangeListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def add_bindings_listener(self, listener: BindingsListener) -> None:
        """Call ``listener(sip_user, bindings, local)`` whenever an agent's bindings change, except
        when they expire (every registrar of a cluster expires a binding itself, at the same time)."""
        self._bindings_listeners.append(listener)

    def _bindings_changed(self, sip_user: str, local: bool) -> None:
        bindings = self.bindings(sip_user)
        for listener in list(self._bindings_listeners):
            try:
                listener(sip_user, bindings, local)
            except Exception:  # as for reachability listeners: registration goes on
                logger.exception("registrar bindings listener failed", extra={"sip_user": sip_user})

    def _notify(self, sip_user: str, reachable: bool) -> None:
        logger.info("agent phone %s", "reachable" if reachable else "unreachable", extra={"sip_user": sip_user})
        for listener in list(self._listeners):
            try:
                listener(sip_user, reachable)
            except Exception:  # a listener's bug must not break registration for everyone
                logger.exception("registrar listener failed", extra={"sip_user": sip_user})

    # -- queries ---------------------------------------------------------------------
    def bindings(self, sip_user: str) -> list[Binding]:
        """The agent's current bindings, newest first."""
        return list(self._bindings.get(sip_user, ()))

    def contact_for(self, sip_user: str) -> Binding | None:
        """The binding to ring: the newest registration."""
        bindings = self._bindings.get(sip_user)
        return bindings[0] if bindings else None

    def reachable(self, sip_user: str) -> bool:
        return bool(self._bindings.get(sip_user))

    def registered_users(self) -> list[str]:
        """Every agent with at least one binding."""
        return list(self._bindings)

    # -- time ------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """When the earliest binding expires (registrar clock), or None."""
        heap = self._heap
        while heap:
            at, _, user = heap[0]
            bindings = self._bindings.get(user)
            if bindings and any(b.expires_at <= at for b in bindings):
                return at
            heapq.heappop(heap)  # refreshed or removed since
        return None

    def expire(self, now: float) -> list[Binding]:
        """Drop the bindings whose time has come; the dropped ones."""
        dropped: list[Binding] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, user = heapq.heappop(heap)
            bindings = self._bindings.get(user)
            if not bindings:
                continue
            gone = [b for b in bindings if b.expires_at <= now]
            if gone:
                for binding in gone:
                    logger.info("binding expired: %s", binding.uri, extra={"sip_user": user,
                                                                           "sip_call_id": binding.call_id})
                self._store(user, [b for b in bindings if b.expires_at > now])
                dropped += gone
        return dropped

    def mark_unreachable(self, sip_user: str, binding: Binding | None = None) -> bool:
        """An INVITE to the phone timed out or got 408/480/503: forget it until it registers again.

        With ``binding``, only that contact is dropped (the agent's other phones
        stay); without, every binding of the agent.  True if something was dropped.
        """
        bindings = self._bindings.get(sip_user)
        if not bindings:
            return False
        keep = [] if binding is None else [b for b in bindings if not b.uri.equivalent(binding.uri)]
        if len(keep) == len(bindings):
            return False
        logger.info("dropping %d binding(s) of an unreachable phone", len(bindings) - len(keep),
                    extra={"sip_user": sip_user})
        self._store(sip_user, keep)
        self._bindings_changed(sip_user, local=True)
        return True

    def learn(self, sip_user: str, bindings: list[Binding], now: float) -> None:
        """Replace an agent's bindings with those another registrar holds (newest first, their
        times already on this registrar's clock, see :func:`binding_from_record`). Those that
        have expired by ``now`` are left out. Reachability listeners hear of it as of a
        REGISTER; bindings listeners with ``local`` False."""
        live = [b for b in bindings if b.sip_user == sip_user and b.expires_at > now][:self.max_bindings]
        serials = [next(self._serial) for _ in live]  # newer than any held here, in the same order
        live = [replace(b, serial=serial) for b, serial in zip(live, reversed(serials))]
        for binding in live:
            heapq.heappush(self._heap, (binding.expires_at, next(self._seq), sip_user))
        self._store(sip_user, live)
        self._bindings_changed(sip_user, local=False)

    def _store(self, sip_user: str, bindings: list[Binding]) -> None:
        """Replace an agent's bindings (newest first) and tell listeners if reachability changed."""
        had = bool(self._bindings.get(sip_user))
        if bindings:
            self._bindings[sip_user] = bindings
        else:
            self._bindings.pop(sip_user, None)
        if had != bool(bindings):
            self._notify(sip_user, bool(bindings))

    # -- REGISTER --------------------------------------------------------------------
    def handle(self, request: SipRequest, flow: Flow, nonces: digest.NonceManager, *, now: float,
               wall: float) -> SipResponse | None:
        """Answer a REGISTER that arrived on ``flow``; None: drop it unanswered (a banned
        source guessing this user's secret).

        ``now`` is the registrar clock (monotonic: expiry), ``wall`` the epoch time
        (nonces, shared with other nodes, the Date header and bans).  The digest ``uri``
        parameter is not compared with the Request-URI (as for trunks, see the README).
        """
        tag = generate_tag()
        log: dict[str, object] = {"sip_call_id": request.call_id, "source": f"{flow.transport}:{flow.remote[0]}:{flow.remote[1]}"}
        agent = self._authenticate(request, flow, nonces, wall, tag, log)
        if agent is None or isinstance(agent, SipResponse):
            return agent
        log["sip_user"] = agent.sip_user
        if agent.require_tls and flow.transport != "tls":
            logger.warning("REGISTER over %s refused: this agent's phone must use TLS", flow.transport.upper(),
                           extra=log)
            return make_response(request, 403, "TLS Required", to_tag=tag)
        try:
            aor = request.to_addr.uri
        except SipError as exc:
            return make_response(request, exc.status, to_tag=tag)
        if not aor.is_sip or aor.user_unescaped != agent.sip_user:
            # RFC 3261 10.3 step 4: authenticated, but not for this address-of-record
            logger.warning("REGISTER for another user's address %s refused", aor, extra=log)
            return make_response(request, 403, to_tag=tag)
        try:
            parsed = self._parse(request, secure=flow.transport == "tls")
        except SipError as exc:
            logger.info("bad REGISTER: %s", exc, extra=log)
            return make_response(request, exc.status, str(exc)[:80] if exc.status == 400 else None, to_tag=tag)
        too_brief = [c for c in parsed.contacts if 0 < c[2] < self.min_expires]
        if too_brief:
            return make_response(request, 423, to_tag=tag, headers={"Min-Expires": str(self.min_expires)})
        try:
            cseq = request.cseq[0]
        except SipError as exc:
            return make_response(request, exc.status, to_tag=tag)
        current = self._bindings.get(agent.sip_user, [])
        updated = self._apply(agent, parsed, current, request, cseq, flow, now)
        if updated is None:
            # RFC 3261 10.3 step 7: an older request of the same registration arrived late
            logger.info("REGISTER out of order (CSeq %d)", cseq, extra=log)
            return make_response(request, 500, "Out of Order", to_tag=tag)
        if updated is not current:
            for binding in updated:
                if binding.expires_at != next((b.expires_at for b in current if b.uri.equivalent(binding.uri)),
                                              None):
                    heapq.heappush(self._heap, (binding.expires_at, next(self._seq), agent.sip_user))
            added = [b for b in updated if not any(b.uri.equivalent(c.uri) for c in current)]
            removed = [c for c in current if not any(b.uri.equivalent(c.uri) for b in updated)]
            if added or removed:
                logger.info("agent phone registered: %d binding(s), +%d -%d", len(updated), len(added),
                            len(removed), extra={**log, "contact": str(updated[0].uri) if updated else None})
            self._store(agent.sip_user, updated)
            self._bindings_changed(agent.sip_user, local=True)
        response = make_response(request, 200, to_tag=tag)
        for binding in self._bindings.get(agent.sip_user, []):
            response.headers.add("Contact", binding.contact_value(now))
        if parsed.path and "path" in (t.strip().lower() for t in request.headers.get_all("Supported")):
            for hop in parsed.path:  # RFC 3327 5.3: the path stored, for a phone that asks
                response.headers.add("Path", hop)
        response.headers.add("Date", formatdate(wall, usegmt=True))
        return response

    def _authenticate(self, request: SipRequest, flow: Flow, nonces: digest.NonceManager, wall: float, tag: str,
                      log: dict[str, object]) -> AgentCredentials | SipResponse | None:
        creds: dict[str, str] | None = None
        for value in request.headers.values("Authorization"):
            try:
                parsed = digest.parse_credentials(value)
            except SipError as exc:
                if exc.status == 401:
                    continue  # another scheme (RFC 4475 regaut01): challenge as if absent
                return make_response(request, 400, "Malformed Authorization", to_tag=tag)
            if parsed.get("realm") == self.realm:
                creds = parsed
                break
        if creds is None:
            return self._challenge(request, nonces, wall, tag)
        # Checked before the username so a forged nonce can't tell which users exist.
        state = nonces.check(creds.get("nonce", ""), wall)
        if state == "invalid":
            return self._challenge(request, nonces, wall, tag)
        username = creds.get("username", "")
        source = flow.remote[0]
        if self.guard is not None and self.guard.blocked(source, username, wall) is not None:
            logger.debug("REGISTER from a banned source for this user dropped", extra=log)
            return None
        try:
            agent = self.directory.credentials(username)
        except Exception:
            logger.exception("agent directory failed", extra=log)
            return make_response(request, 500, to_tag=tag, headers={"Retry-After": "5"})
        valid = digest.verify_credentials_ha1(creds, method=request.method,
                                              ha1=agent.ha1 if agent is not None else _DUMMY_HA1, realm=self.realm)
        if agent is None or agent.sip_user != username or not valid:
            logger.info("REGISTER with bad credentials", extra=log)  # never which part was wrong
            if self.guard is not None:
                self.guard.failed(source, username, wall, tenant_id=agent.tenant_id if agent is not None else None)
            return make_response(request, 403, to_tag=tag)
        if self.guard is not None:
            self.guard.succeeded(source, username)
        if state == "stale":
            return self._challenge(request, nonces, wall, tag, stale=True)
        return agent

    def _challenge(self, request: SipRequest, nonces: digest.NonceManager, wall: float, tag: str, *,
                   stale: bool = False) -> SipResponse:
        response = make_response(request, 401, to_tag=tag)
        for value in digest.challenge_headers(self.realm, nonces.make(wall), stale=stale,
                                              algorithms=REGISTER_ALGORITHMS):
            response.headers.add("WWW-Authenticate", value)
        return response

    def _parse(self, request: SipRequest, *, secure: bool = False) -> _Request:
        """Contacts and their expiry (RFC 3261 10.3 steps 6-7); SipError 400 when malformed.
        ``sips:`` contacts only from a REGISTER that came over TLS (``secure``)."""
        header_expires = _delta_seconds(request.headers.get("Expires"), "Expires")
        path = _parse_path(request)
        raw = [value.strip() for value in request.headers.get_all("Contact")]
        if "*" in raw:
            if len(raw) != 1 or header_expires != 0:
                raise SipError("Contact: * needs Expires: 0 and no other Contact")
            return _Request(wildcard=True, path=path)
        parsed = _Request(path=path)
        for contact in request.contact:
            if contact.uri.scheme != "sip" and not (secure and contact.uri.scheme == "sips"):
                raise SipError(f"unsupported Contact URI scheme {contact.uri.scheme!r}")
            expires = _delta_seconds(contact.params["expires"] or "", "Contact expires") \
                if "expires" in contact.params else header_expires
            if expires is None:
                expires = self.default_expires
            elif expires > 0:
                expires = min(expires, self.max_expires)
            params = tuple((k, v) for k, v in contact.params.items() if k != "expires")
            parsed.contacts.append((contact.uri, params, expires))
        return parsed

    def _apply(self, agent: AgentCredentials, parsed: _Request, current: list[Binding], request: SipRequest,
               cseq: int, flow: Flow, now: float) -> list[Binding] | None:
        """The agent's bindings after this REGISTER (newest first), ``current`` itself if
        nothing changes, or None if the request is out of order (nothing is applied)."""
        call_id = request.call_id

        def in_order(binding: Binding) -> bool:
            return binding.call_id != call_id or cseq > binding.cseq

        if parsed.wildcard:
            if not all(in_order(b) for b in current):
                return None
            return [] if current else current
        if not parsed.contacts:
            return current  # a query: answer with the bindings as they are
        bindings = list(current)
        user_agent = request.headers.get("User-Agent")
        for uri, params, expires in parsed.contacts:
            existing = next((b for b in bindings if b.uri.equivalent(uri)), None)
            if existing is not None:
                if not in_order(existing):
                    return None
                bindings.remove(existing)
            if expires == 0:
                continue
            if existing is not None and existing.call_id == call_id:
                # a refresh: same registration, maybe from a new NAT mapping
                binding = replace(existing, uri=uri, params=params, flow=flow, expires_at=now + expires, cseq=cseq,
                                  user_agent=user_agent, path=parsed.path)
            else:  # new, or the phone restarted (new Call-ID): a new registration, the newest
                binding = Binding(sip_user=agent.sip_user, tenant_id=agent.tenant_id, agent_id=agent.agent_id,
                                  uri=uri, flow=flow, expires_at=now + expires, registered_at=now,
                                  call_id=call_id, cseq=cseq, serial=next(self._serial), params=params,
                                  user_agent=user_agent, path=parsed.path)
            bindings.append(binding)
        bindings.sort(key=lambda b: b.serial, reverse=True)
        return bindings[:self.max_bindings]


def _delta_seconds(text: str | None, what: str) -> int | None:
    """RFC 3261 delta-seconds; None when absent, SipError 400 when malformed."""
    if text is None:
        return None
    text = text.strip(" \t")
    if not text or not text.isascii() or not text.isdigit():
        raise SipError(f"invalid {what} value {text[:20]!r}")
    return _MAX_DELTA if len(text) > 10 else min(int(text), _MAX_DELTA)


def _parse_path(request: SipRequest) -> tuple[str, ...]:
    """The REGISTER's Path values; SipError 400 unless each is a SIP URI and the first names
    an IP address (requests to the phone are sent there: no DNS on this path)."""
    values = tuple(value.strip() for value in request.headers.get_all("Path"))
    for value in values:
        if not NameAddr.parse(value).uri.is_sip:
            raise SipError(f"Path {value[:60]!r} is not a SIP URI")
    if values:
        _path_hop(values[0])
    return values


def _path_hop(value: str) -> Flow:
    """The flow to a Path (or Route) URI whose host is an IP address; SipError 400 otherwise."""
    uri = NameAddr.parse(value).uri
    host, port = uri.hostport
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise SipError(f"Path {value[:60]!r} must name an IP address") from None
    transport = (uri.params.get("transport") or "udp").lower()
    if transport not in ("udp", "tcp", "tls"):
        raise SipError(f"Path {value[:60]!r}: unsupported transport {transport!r}")
    return Flow(transport, (host, port))


def binding_record(binding: Binding, now: float, wall: float) -> dict[str, Any]:
    """A binding as JSON-able data another registrar can :meth:`~Registrar.learn` (see
    :func:`binding_from_record`). Its times become Unix epoch seconds: registrars' clocks
    (``now``, monotonic) differ from one process to the next, the wall clock (``wall``) is
    the one they share, so a binding expires at the same moment everywhere."""
    return {"sip_user": binding.sip_user, "tenant_id": binding.tenant_id, "agent_id": binding.agent_id,
            "uri": str(binding.uri), "flow": [binding.flow.transport, binding.flow.remote[0], binding.flow.remote[1]],
            "expires": wall + (binding.expires_at - now), "registered": wall + (binding.registered_at - now),
            "call_id": binding.call_id, "cseq": binding.cseq, "params": [list(p) for p in binding.params],
            "user_agent": binding.user_agent, "path": list(binding.path)}


def binding_from_record(record: dict[str, Any], now: float, wall: float) -> Binding:
    """The binding a :func:`binding_record` describes, its times on this registrar's clock
    (``now``) given the wall clock (``wall``). Raises ValueError when the record is malformed."""
    try:
        transport, host, port = record["flow"]
        if transport not in ("udp", "tcp", "tls") or not isinstance(port, int):
            raise ValueError(f"bad flow {record['flow']!r}")
        path = tuple(str(hop) for hop in record["path"])
        if path:
            _path_hop(path[0])
        return Binding(
            sip_user=str(record["sip_user"]), tenant_id=int(record["tenant_id"]), agent_id=str(record["agent_id"]),
            uri=SipUri.parse(str(record["uri"])), flow=Flow(transport, (str(host), port)),
            expires_at=now + (float(record["expires"]) - wall),
            registered_at=now + (float(record["registered"]) - wall),
            call_id=str(record["call_id"]), cseq=int(record["cseq"]), serial=0,
            params=tuple((str(k), None if v is None else str(v)) for k, v in record["params"]),
            user_agent=None if record["user_agent"] is None else str(record["user_agent"]), path=path)
    except (KeyError, TypeError, ValueError, SipError) as exc:
        raise ValueError(f"malformed binding record: {exc}") from None
