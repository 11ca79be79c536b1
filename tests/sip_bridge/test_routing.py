"""Inbound policy (trunk authentication before number lookup), number normalisation, dialing rules."""

from __future__ import annotations

import pytest

from sip_bridge import digest
from sip_bridge.message import SipRequest, parse_message
from sip_bridge.routing import (
    DIGEST_REALM,
    InboundDecision,
    Number,
    RoutingTable,
    Tenant,
    Trunk,
    dialed_number,
    normalise_number,
)

SECRET = b"routing-test-secret-0123456789"
NOW = 1_700_000_000.0
CARRIER_IP = "203.0.113.7"
STRANGER_IP = "192.0.2.66"
NUMBER = "4001234567"
OTHER_TENANT_NUMBER = "4009876543"


def invite(ruri: str = f"sip:{NUMBER}@192.0.2.10", *, authorization: str | None = None) -> SipRequest:
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    message = parse_message(
        f"INVITE {ruri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 203.0.113.7:5060;branch=z9hG4bKr1\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:+8613800000000@carrier.example.com>;tag=c1\r\n"
        f"To: <{ruri}>\r\n"
        "Call-ID: routing@203.0.113.7\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:gw@203.0.113.7:5060>\r\n"
        f"{auth}"
        "Content-Length: 0\r\n\r\n".encode())
    assert isinstance(message, SipRequest)
    return message


def ip_trunk(entries: list[str], *, trunk_id: int = 1, tenant_id: int = 1) -> Trunk:
    return Trunk(id=trunk_id, tenant_id=tenant_id, name=f"ip-{trunk_id}", inbound_networks=Trunk.networks(entries))


def digest_trunk(*, trunk_id: int = 2, tenant_id: int = 1) -> Trunk:
    return Trunk(id=trunk_id, tenant_id=tenant_id, name="digest", inbound_username="carrier",
                 inbound_password="s3cret")


def table(*trunks: Trunk, prefixes: tuple[str, ...] = ("1", "44")) -> RoutingTable:
    return RoutingTable(
        trunks=list(trunks),
        numbers={NUMBER: Number(NUMBER, 1), OTHER_TENANT_NUMBER: Number(OTHER_TENANT_NUMBER, 2)},
        tenants={1: Tenant(1, "acme", prefixes), 2: Tenant(2, "globex", ("1",))},
    )


def nonces() -> digest.NonceManager:
    return digest.NonceManager(SECRET, lifetime=300)


def authorization(*, algorithm: str = "MD5", password: str = "s3cret", username: str = "carrier",
                  nonce: str | None = None) -> str:
    nonce = nonce if nonce is not None else nonces().make(NOW)
    (challenge,) = digest.challenge_headers(DIGEST_REALM, nonce, algorithms=(algorithm,))
    return digest.build_authorization(challenge, method="INVITE", uri=f"sip:{NUMBER}@192.0.2.10",
                                      username=username, password=password, cnonce="0a4f113b")


def classify(routing: RoutingTable, request: SipRequest, source: str = CARRIER_IP) -> InboundDecision:
    return routing.classify_inbound(request, source, nonces(), NOW)


# ------------------------------------------------------------------ IP allow-list


@pytest.mark.parametrize(("entries", "ip"), [
    (["203.0.113.7"], "203.0.113.7"),
    (["198.51.100.0/24"], "198.51.100.200"),
    (["198.51.100.9/24"], "198.51.100.1"),  # host bits set: accepted as the /24
    (["2001:db8:5::/48"], "2001:db8:5:1::20"),
    (["2001:DB8::1"], "2001:db8::1"),
    (["198.51.100.0/24"], "::ffff:198.51.100.9"),  # IPv4-mapped source from a dual-stack socket
])
def test_allow_list_admits(entries: list[str], ip: str) -> None:
    assert ip_trunk(entries).allows_ip(ip)


@pytest.mark.parametrize(("entries", "ip"), [
    (["198.51.100.0/24"], "198.51.101.1"),
    (["2001:db8:5::/48"], "2001:db8:6::1"),
    (["10.0.0.0/8"], "::a00:1"),  # an IPv6 address whose low 32 bits look like 10.0.0.1
    (["203.0.113.7"], "not-an-address"),
    ([], "203.0.113.7"),
])
def test_allow_list_refuses(entries: list[str], ip: str) -> None:
    assert not ip_trunk(entries).allows_ip(ip)


def test_allow_list_skips_blank_entries_and_rejects_garbage() -> None:
    assert len(Trunk.networks(["203.0.113.7", " ", ""])) == 1
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        Trunk.networks(["203.0.113.300"])


def test_first_trunk_matching_the_source_wins() -> None:
    routing = table(ip_trunk(["203.0.113.0/24"], trunk_id=1), ip_trunk(["203.0.113.7"], trunk_id=3))
    decision = classify(routing, invite())
    assert decision.outcome == "accept" and decision.trunk is not None and decision.trunk.id == 1


# ------------------------------------------------------------------ unknown sources never learn the number plan


@pytest.mark.parametrize("ruri", [f"sip:{NUMBER}@192.0.2.10", "sip:4000000000@192.0.2.10"])
def test_unknown_source_gets_403_whether_the_number_exists_or_not(ruri: str) -> None:
    decision = classify(table(ip_trunk([CARRIER_IP])), invite(ruri), STRANGER_IP)
    assert decision == InboundDecision("reject", 403, reason="source not allowed", auth_failed=True)


@pytest.mark.parametrize("ruri", [f"sip:{NUMBER}@192.0.2.10", "sip:4000000000@192.0.2.10"])
def test_unknown_source_is_challenged_whether_the_number_exists_or_not(ruri: str) -> None:
    decision = classify(table(ip_trunk([CARRIER_IP]), digest_trunk()), invite(ruri), STRANGER_IP)
    assert decision == InboundDecision("challenge", 401)


# ------------------------------------------------------------------ numbers


def test_known_source_and_number_is_accepted_with_trunk_and_number() -> None:
    trunk = ip_trunk([CARRIER_IP])
    decision = classify(table(trunk), invite())
    assert decision == InboundDecision("accept", 200, trunk=trunk, number=Number(NUMBER, 1))


def test_known_source_unknown_number_is_404() -> None:
    trunk = ip_trunk([CARRIER_IP])
    decision = classify(table(trunk), invite("sip:4000000000@192.0.2.10"))
    assert decision == InboundDecision("reject", 404, trunk=trunk, reason="unknown number")


def test_number_of_another_tenant_than_the_trunk_is_404() -> None:
    trunk = ip_trunk([CARRIER_IP], tenant_id=1)
    decision = classify(table(trunk), invite(f"sip:{OTHER_TENANT_NUMBER}@192.0.2.10"))
    assert decision == InboundDecision("reject", 404, trunk=trunk, reason="unknown number")


def test_one_carrier_address_serving_two_tenants_reaches_each_tenants_number() -> None:
    """A carrier bringing two tenants' numbers from one address: each call takes the trunk of the
    tenant that owns the dialed number, whichever trunk was added first."""
    first, second = ip_trunk([CARRIER_IP], trunk_id=1, tenant_id=1), ip_trunk([CARRIER_IP], trunk_id=3, tenant_id=2)
    routing = table(first, second)
    assert classify(routing, invite()) == InboundDecision("accept", 200, trunk=first, number=Number(NUMBER, 1))
    assert classify(routing, invite(f"sip:{OTHER_TENANT_NUMBER}@192.0.2.10")) == InboundDecision(
        "accept", 200, trunk=second, number=Number(OTHER_TENANT_NUMBER, 2))


@pytest.mark.parametrize(("user", "digits"), [
    ("+86 400-123-4567", "864001234567"),
    ("(400) 123.4567", "4001234567"),
    ("*86#", "*86#"),
    ("", ""),
    (None, ""),
])
def test_number_normalisation_keeps_digits_star_and_hash(user: str | None, digits: str) -> None:
    assert normalise_number(user) == digits


@pytest.mark.parametrize("ruri", [
    "sip:4001234567@192.0.2.10",
    "sip:400-123-4567@192.0.2.10;user=phone",
    "sip:400%2D123%2D4567@192.0.2.10",
    "tel:400-123-4567",
    "tel:4001234567;phone-context=example.com",
])
def test_dialed_number_from_sip_and_tel_request_uris(ruri: str) -> None:
    assert dialed_number(invite(ruri)) == NUMBER


def test_international_tel_uri_reaches_the_number_stored_with_country_code() -> None:
    trunk = ip_trunk([CARRIER_IP])
    routing = table(trunk)
    routing.numbers["864001234567"] = Number("864001234567", 1)
    decision = classify(routing, invite("tel:+86-400-123-4567"))
    assert decision.outcome == "accept" and decision.number == Number("864001234567", 1)


# ------------------------------------------------------------------ digest-authenticated trunks


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_valid_digest_credentials_are_accepted(algorithm: str) -> None:
    trunk = digest_trunk()
    decision = classify(table(trunk), invite(authorization=authorization(algorithm=algorithm)), STRANGER_IP)
    assert decision.outcome == "accept" and decision.trunk == trunk


def test_no_credentials_get_a_challenge() -> None:
    assert classify(table(digest_trunk()), invite(), STRANGER_IP) == InboundDecision("challenge", 401)


def test_wrong_password_is_403_and_counts_against_the_user() -> None:
    request = invite(authorization=authorization(password="guess"))
    trunk = digest_trunk()
    assert classify(table(trunk), request, STRANGER_IP) == InboundDecision(
        "reject", 403, reason="bad credentials", auth_failed=True, account=trunk.inbound_username,
        tenant_id=trunk.tenant_id)


def test_unknown_username_is_403_and_counts_against_that_name() -> None:
    request = invite(authorization=authorization(username="mallory"))
    assert classify(table(digest_trunk()), request, STRANGER_IP) == InboundDecision(
        "reject", 403, reason="unknown user", auth_failed=True, account="mallory")


def test_stale_nonce_with_right_password_gets_a_challenge_with_stale() -> None:
    request = invite(authorization=authorization(nonce=nonces().make(NOW - 301)))
    assert classify(table(digest_trunk()), request, STRANGER_IP) == InboundDecision("challenge", 401, stale=True)


def test_stale_nonce_with_wrong_password_is_403_not_stale() -> None:
    # RFC 7616 3.3: stale=true only when the digest itself was valid.
    request = invite(authorization=authorization(nonce=nonces().make(NOW - 301), password="guess"))
    assert classify(table(digest_trunk()), request, STRANGER_IP).status == 403


@pytest.mark.parametrize("username", ["carrier", "mallory"])
def test_forged_nonce_gets_a_fresh_challenge_whatever_the_username(username: str) -> None:
    # Otherwise the answer to a garbage nonce tells which usernames exist.
    forged = digest.NonceManager(b"attacker-secret-0123456789").make(NOW)
    request = invite(authorization=authorization(nonce=forged, username=username))
    assert classify(table(digest_trunk()), request, STRANGER_IP) == InboundDecision("challenge", 401)


def test_malformed_authorization_is_400() -> None:
    request = invite(authorization='Digest username="carrier", realm=')
    assert classify(table(digest_trunk()), request, STRANGER_IP) == InboundDecision(
        "reject", 400, reason="malformed Authorization")


def test_known_ip_skips_digest_even_when_digest_trunks_exist() -> None:
    trunk = ip_trunk([CARRIER_IP])
    decision = classify(table(trunk, digest_trunk()), invite())
    assert decision.outcome == "accept" and decision.trunk == trunk


def test_digest_trunk_still_needs_a_number_of_its_tenant() -> None:
    request = invite(f"sip:{OTHER_TENANT_NUMBER}@192.0.2.10", authorization=authorization())
    decision = classify(table(digest_trunk(tenant_id=1)), request, STRANGER_IP)
    assert (decision.outcome, decision.status) == ("reject", 404)


# ------------------------------------------------------------------ dialing rules


def test_tenant_without_prefixes_may_dial_nothing() -> None:
    routing = table(prefixes=())
    assert not routing.may_dial(1, "18005550100")
    assert not routing.may_dial(1, "4001234567")


@pytest.mark.parametrize("number", ["18005550100", "+1 (800) 555-0100", "442071838750", "+44 20 7183 8750"])
def test_number_starting_with_an_allowed_prefix_may_be_dialed(number: str) -> None:
    assert table(prefixes=("1", "44")).may_dial(1, number)


@pytest.mark.parametrize("number", ["33142685300", "+33 1 42 68 53 00", "4", "", "+-()"])
def test_number_without_an_allowed_prefix_may_not_be_dialed(number: str) -> None:
    assert not table(prefixes=("1", "44")).may_dial(1, number)


@pytest.mark.parametrize("number", [
    "1%39%30%30",  # the trunk would unescape the Request-URI user part to 1900...
    "%31900",
    "1800@premium.example.com",
    "1800;user=phone",
    "\uff11800",  # FULLWIDTH DIGIT ONE
])
def test_number_that_is_not_plain_dial_string_may_not_be_dialed(number: str) -> None:
    # The Request-URI is built from the raw number, so the prefix check must see what the carrier sees.
    assert not table(prefixes=("1",)).may_dial(1, number)


def test_unknown_tenant_may_dial_nothing() -> None:
    assert not table().may_dial(99, "18005550100")


def test_dialing_rules_are_per_tenant() -> None:
    routing = table(prefixes=("44",))
    assert routing.may_dial(2, "18005550100")
    assert not routing.may_dial(1, "18005550100")
