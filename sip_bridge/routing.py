"""Which tenant a call belongs to, whether its sender may place it, and where outbound calls go.

Inbound policy (sans-I/O): the source must match a trunk first (IP allow-list
or digest credentials), and only then is the dialed number looked up, so an
unauthorised caller gets the same 403 whether the number exists or not and
cannot probe the number plan.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from . import digest
from .message import SipError, SipRequest

logger = logging.getLogger(__name__)

DIGEST_REALM = "callcenter"
#: What a number to dial may contain: digits, '*', '#', '+' and the visual separators of
#: RFC 3966 5.1.1.  Anything else (%-escapes, '@', ';') would reach the trunk's Request-URI
#: as something other than the digits the dialing rules checked.
DIAL_STRING_CHARS = frozenset("0123456789*#+-.() ")


def address_in(ip: str, networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether ``ip`` lies in one of ``networks`` (False for anything that is not an address)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d (RFC 4291 2.5.5.2).
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


@dataclass(frozen=True)
class Trunk:
    id: int
    tenant_id: int
    name: str
    inbound_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    inbound_username: str | None = None
    inbound_password: str | None = None
    outbound_host: str | None = None
    outbound_port: int = 5060
    outbound_transport: str = "udp"
    register: bool = False
    register_username: str | None = None
    register_password: str | None = None
    register_expires: int = 600
    priority: int = 100
    #: Calls from this trunk must come over TLS (others get 403); outbound goes over TLS too.
    require_tls: bool = False
    #: Media with this trunk must be SRTP: plain offers get 488, our offers are RTP/SAVP only.
    require_srtp: bool = False

    @staticmethod
    def networks(entries: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """Parse an allow-list of addresses and CIDR blocks (a bad entry raises ValueError)."""
        return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip())

    def allows_ip(self, ip: str) -> bool:
        return address_in(ip, self.inbound_networks)


@dataclass(frozen=True)
class Number:
    number: str
    tenant_id: int


@dataclass(frozen=True)
class Tenant:
    id: int
    slug: str
    #: Dialed-number prefixes this tenant may call out to; empty means no outbound calls.
    outbound_prefixes: tuple[str, ...] = ()
    #: Suspended by the platform's operator: new calls are refused (cause ``suspended``).
    suspended: bool = False
    #: Carrier calls the tenant may have in progress at once, cluster-wide; None: no limit.
    max_calls: int | None = None


@dataclass(frozen=True)
class InboundDecision:
    """Outcome of the inbound policy: accept (trunk + number), challenge, or reject with a status."""

    outcome: Literal["accept", "challenge", "reject"]
    status: int = 200
    trunk: Trunk | None = None
    number: Number | None = None
    stale: bool = False
    reason: str = ""
    #: Set when the sender failed to authenticate (a wrong secret, an unknown user, a source
    #: no trunk allows): counted towards a ban. ``account`` is the digest user it tried, if any.
    auth_failed: bool = False
    account: str | None = None
    tenant_id: int | None = None


def credentials_user(request: SipRequest) -> str | None:
    """The digest username a request's Authorization claims (unverified), or None."""
    auth = request.headers.get("Authorization")
    if not auth:
        return None
    try:
        return digest.parse_credentials(auth).get("username")
    except SipError:
        return None


def normalise_number(user: str | None) -> str:
    """Digits of a dialed number: '+86 400-123-4567' and 'tel:4001234567' compare equal."""
    if not user:
        return ""
    return "".join(ch for ch in user if ch.isdigit() or ch in "*#")


def prefix_allows(prefixes: Iterable[str], number: str) -> bool:
    """Whether a tenant whose dialing rules allow ``prefixes`` may dial ``number``."""
    digits = normalise_number(number)
    if not digits or not DIAL_STRING_CHARS.issuperset(number):
        return False
    return any(digits.startswith(prefix) for prefix in prefixes)


def dialed_number(request: SipRequest) -> str:
    """The dialed number: the Request-URI user part (sip:) or the subscriber number (tel:).

    A carrier that delivers calls to a trunk's registered Contact puts our
    Contact user in the Request-URI and the number only in To: when the
    Request-URI has no digits, the To user is the dialed number.
    """
    uri = request.uri
    user = getattr(uri, "user_unescaped", None)
    if user is None and getattr(uri, "scheme", "") == "tel":
        user = str(uri).split(":", 1)[1].split(";", 1)[0]
    number = normalise_number(user)
    if not number:
        try:
            number = normalise_number(request.to_addr.uri.user_unescaped)
        except SipError:
            return ""
    return number


@dataclass
class RoutingTable:
    """Trunks, numbers and tenants, replaced as a whole when the configuration changes."""

    trunks: list[Trunk] = field(default_factory=list)
    numbers: dict[str, Number] = field(default_factory=dict)
    tenants: dict[int, Tenant] = field(default_factory=dict)

    def trunks_for_ip(self, ip: str) -> list[Trunk]:
        return [t for t in self.trunks if t.allows_ip(ip)]

    def outbound_trunks(self, tenant_id: int) -> list[Trunk]:
        return sorted((t for t in self.trunks if t.tenant_id == tenant_id and t.outbound_host),
                      key=lambda t: (t.priority, t.id))

    def may_dial(self, tenant_id: int, number: str) -> bool:
        """Per-tenant dialing rules: only numbers starting with an allowed prefix (toll-fraud guard)."""
        tenant = self.tenants.get(tenant_id)
        return tenant is not None and prefix_allows(tenant.outbound_prefixes, number)

    def classify_inbound(self, request: SipRequest, source_ip: str, nonces: digest.NonceManager,
                         now: float, *, transport: str = "udp") -> InboundDecision:
        """``transport`` is what the request came over: a trunk that requires TLS refuses others."""
        trunk = self._authenticate(request, source_ip, nonces, now)
        if isinstance(trunk, InboundDecision):
            return trunk
        if trunk.require_tls and transport != "tls":
            logger.warning("INVITE from trunk %s over %s refused: the trunk requires TLS", trunk.name,
                           transport.upper(), extra={"trunk": trunk.name, "sip_call_id": request.call_id,
                                                     "source": source_ip})
            return InboundDecision("reject", 403, trunk=trunk, reason="trunk requires TLS")
        dialed = dialed_number(request)
        number = self.numbers.get(dialed)
        if number is None or number.tenant_id != trunk.tenant_id:
            return InboundDecision("reject", 404, trunk=trunk, reason="unknown number")
        return InboundDecision("accept", 200, trunk=trunk, number=number)

    def _authenticate(self, request: SipRequest, source_ip: str, nonces: digest.NonceManager,
                      now: float) -> Trunk | InboundDecision:
        by_ip = self.trunks_for_ip(source_ip)
        if by_ip:
            # One carrier address may bring several tenants' numbers: the trunk of the tenant
            # that owns the dialed number, else the first (which then answers 404).
            number = self.numbers.get(dialed_number(request))
            return next((t for t in by_ip if number is not None and t.tenant_id == number.tenant_id), by_ip[0])
        digest_trunks = [t for t in self.trunks if t.inbound_username and t.inbound_password]
        if not digest_trunks:
            return InboundDecision("reject", 403, reason="source not allowed", auth_failed=True)
        auth = request.headers.get("Authorization")
        if not auth:
            return InboundDecision("challenge", 401)
        try:
            creds = digest.parse_credentials(auth)
        except ValueError:
            return InboundDecision("reject", 400, reason="malformed Authorization")
        # Checked before the username so a forged nonce can't tell which usernames exist.
        state = nonces.check(creds.get("nonce", ""), now)
        if state == "invalid":
            return InboundDecision("challenge", 401)
        realm = DIGEST_REALM
        username = creds.get("username")
        for trunk in digest_trunks:
            if username != trunk.inbound_username or creds.get("realm") != realm:
                continue
            if not digest.verify_credentials(creds, method=request.method, password=trunk.inbound_password or "",
                                             realm=realm):
                return InboundDecision("reject", 403, reason="bad credentials", auth_failed=True, account=username,
                                       tenant_id=trunk.tenant_id)
            if state == "stale":
                return InboundDecision("challenge", 401, stale=True)
            return trunk
        return InboundDecision("reject", 403, reason="unknown user", auth_failed=True, account=username)
