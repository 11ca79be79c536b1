"""The agents' registrar (RFC 3261 10.3) without sockets: REGISTER in, response out, time passed in."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sip_bridge.digest import NonceManager, build_authorization, compute_ha1, parse_credentials
from sip_bridge.message import SipRequest, SipResponse, parse_message
from sip_bridge.registrar import AgentCredentials, Registrar, sip_ha1
from sip_bridge.routing import DIGEST_REALM
from sip_bridge.transaction import Flow

SECRET = b"registrar-test-secret-0123456789"
USER = "demo.agent2"
PASSWORD = "s3cret-agent"
OTHER = "demo.agent3"
OTHER_PASSWORD = "other-pass"
#: Where the phone's REGISTERs come from (its NAT's public side), unlike its Contact host.
SOURCE = Flow("udp", ("203.0.113.7", 40123))
CONTACT = "<sip:demo.agent2@192.168.1.20:5062>"
T0 = 1000.0  # registrar clock
WALL = 1_800_000_000.0  # epoch seconds for nonces and Date
TORTURE = Path(__file__).parent / "torture"


class Directory:
    def __init__(self) -> None:
        self.agents = {
            USER: AgentCredentials(USER, sip_ha1(USER, PASSWORD), tenant_id=1, agent_id="a-2"),
            OTHER: AgentCredentials(OTHER, sip_ha1(OTHER, OTHER_PASSWORD), tenant_id=1, agent_id="a-3"),
        }
        self.asked: list[str] = []

    def credentials(self, sip_user: str) -> AgentCredentials | None:
        self.asked.append(sip_user)
        return self.agents.get(sip_user)


class Env:
    """A registrar, its nonces, and a record of its change notifications."""

    def __init__(self, **kwargs: int) -> None:
        self.directory = Directory()
        self.changes: list[tuple[str, bool]] = []
        self.registrar = Registrar(self.directory, on_change=lambda user, up: self.changes.append((user, up)),
                                   **kwargs)
        self.nonces = NonceManager(SECRET)

    def send(self, request: SipRequest, *, now: float = T0, wall: float = WALL, flow: Flow = SOURCE) -> SipResponse:
        response = self.registrar.handle(request, flow, self.nonces, now=now, wall=wall)
        assert response is not None, "dropped: only a banned source's requests are"
        return response

    def register(self, *, user: str = USER, password: str = PASSWORD, now: float = T0, wall: float = WALL,
                 flow: Flow = SOURCE, **kwargs: object) -> SipResponse:
        """The phone's two rounds: unauthenticated REGISTER, 401, REGISTER with credentials."""
        first = self.send(register(user=user, **kwargs), now=now, wall=wall, flow=flow)  # type: ignore[arg-type]
        assert first.status == 401, first.to_bytes()
        auth = answer(first, username=user, password=password)
        request = register(user=user, authorization=auth, **kwargs)  # type: ignore[arg-type]
        return self.send(request, now=now, wall=wall, flow=flow)


def register(*, user: str = USER, to_user: str | None = None, contacts: tuple[str, ...] | None = None,
             expires: int | str | None = None, call_id: str = "reg-1@192.168.1.20", cseq: int = 1,
             authorization: str | None = None) -> SipRequest:
    """A REGISTER as a phone behind NAT sends it."""
    lines = [
        "REGISTER sip:pbx.example.com SIP/2.0",
        "Via: SIP/2.0/UDP 192.168.1.20:5062;branch=z9hG4bK" + hashlib.md5(f"{call_id}{cseq}".encode()).hexdigest(),
        "Max-Forwards: 70",
        f"From: <sip:{user}@pbx.example.com>;tag=phone1",
        f"To: <sip:{to_user or user}@pbx.example.com>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        "User-Agent: TestPhone/1.0",
    ]
    lines += [f"Contact: {c}" for c in (contacts if contacts is not None else (CONTACT,))]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if authorization is not None:
        lines.append(f"Authorization: {authorization}")
    lines.append("Content-Length: 0")
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, SipRequest)
    return message


def answer(challenge: SipResponse, *, username: str = USER, password: str = PASSWORD) -> str:
    values = challenge.headers.get_all("WWW-Authenticate")
    assert len(values) == 1, values
    return build_authorization(values[0], method="REGISTER", uri="sip:pbx.example.com", username=username,
                               password=password)


def contacts_of(response: SipResponse) -> list[tuple[str, str | None]]:
    return [(str(c.uri), c.params.get("expires")) for c in response.contact]


@pytest.fixture
def env() -> Env:
    return Env()


# -- credentials ---------------------------------------------------------------------


def test_sip_ha1_is_md5_of_user_realm_password() -> None:
    expected = hashlib.md5(f"{USER}:{DIGEST_REALM}:{PASSWORD}".encode()).hexdigest()
    assert sip_ha1(USER, PASSWORD) == expected == compute_ha1(USER, "callcenter", PASSWORD)
    assert DIGEST_REALM == "callcenter"


def test_register_without_credentials_is_challenged_with_md5(env: Env) -> None:
    response = env.send(register())
    assert response.status == 401 and response.to_tag
    (challenge,) = response.headers.get_all("WWW-Authenticate")
    params = parse_credentials_like(challenge)
    assert (params["realm"], params["algorithm"], params["qop"]) == ("callcenter", "MD5", "auth")
    assert env.nonces.check(params["nonce"], WALL) == "ok"
    assert env.registrar.bindings(USER) == [] and env.changes == []
    assert env.directory.asked == []  # nothing about the user is looked up before credentials


def parse_credentials_like(challenge: str) -> dict[str, str]:
    """Parse a challenge with the credentials parser (same auth-param grammar)."""
    return parse_credentials(challenge + ', username="x", uri="x", response="x"')


def test_unknown_user_gets_the_same_challenge(env: Env) -> None:
    known = env.send(register())
    unknown = env.send(register(user="demo.nobody"))
    assert unknown.status == known.status == 401

    def shape(response: SipResponse) -> dict[str, str]:
        params = parse_credentials_like(response.headers.get_all("WWW-Authenticate")[0])
        params.pop("nonce")
        return params

    assert shape(known) == shape(unknown)


def test_good_credentials_register_the_contact(env: Env) -> None:
    response = env.register()
    assert response.status == 200, response.to_bytes()
    assert response.to_tag and response.headers.get("Date") == "Fri, 15 Jan 2027 08:00:00 GMT"
    assert contacts_of(response) == [("sip:demo.agent2@192.168.1.20:5062", "3600")]  # the default
    (binding,) = env.registrar.bindings(USER)
    assert binding.flow == SOURCE  # calls go back where the REGISTER came from (NAT), not to 192.168.1.20
    assert (binding.tenant_id, binding.agent_id, binding.expires_at) == (1, "a-2", T0 + 3600)
    assert binding.user_agent == "TestPhone/1.0"
    assert env.registrar.contact_for(USER) == binding and env.registrar.reachable(USER)
    assert env.changes == [(USER, True)]


@pytest.mark.parametrize("who", ["wrong password", "unknown user"])
def test_bad_credentials_get_403_and_no_binding(env: Env, who: str) -> None:
    if who == "wrong password":
        response = env.register(password="wrong")
    else:
        response = env.register(user="demo.nobody", password="whatever")
    assert response.status == 403
    assert env.registrar.registered_users() == [] and env.changes == []


def test_credentials_for_another_users_address_are_refused(env: Env) -> None:
    """agent3 authenticates correctly but registers agent2's AOR: RFC 3261 10.3 step 4."""
    challenge = env.send(register(to_user=USER, user=OTHER))
    auth = answer(challenge, username=OTHER, password=OTHER_PASSWORD)
    response = env.send(register(user=OTHER, to_user=USER, authorization=auth))
    assert response.status == 403
    assert env.registrar.bindings(USER) == [] and env.registrar.bindings(OTHER) == []


def test_aor_host_does_not_matter_only_the_user(env: Env) -> None:
    challenge = env.send(register())
    request = register(authorization=answer(challenge))
    request.headers.set("To", f"<sip:{USER}@10.9.8.7:5060>")
    assert env.send(request).status == 200


def test_forged_nonce_is_rechallenged_and_stale_nonce_gets_stale_true(env: Env) -> None:
    challenge = env.send(register())
    auth = answer(challenge)
    forged = auth.replace(parse_credentials(auth)["nonce"], "A" * 32)
    assert env.send(register(authorization=forged)).status == 401
    stale = env.send(register(authorization=auth), wall=WALL + env.nonces.lifetime + 1)
    assert stale.status == 401 and "stale=true" in stale.headers.get_all("WWW-Authenticate")[0]
    # stale only says the nonce is old: a wrong password is still a 403
    wrong = answer(challenge, password="wrong")
    assert env.send(register(authorization=wrong), wall=WALL + env.nonces.lifetime + 1).status == 403
    assert env.registrar.bindings(USER) == []


def test_other_scheme_is_challenged_malformed_digest_is_400(env: Env) -> None:
    regaut01 = parse_message((TORTURE / "regaut01.sip").read_bytes())
    assert isinstance(regaut01, SipRequest)
    assert env.send(regaut01).status == 401  # RFC 4475 3.1.2.18
    assert env.send(register(authorization='Digest username="demo.agent2", realm=')).status == 400


def test_sha256_credentials_cannot_be_checked_against_an_md5_ha1(env: Env) -> None:
    challenge = env.send(register()).headers.get_all("WWW-Authenticate")[0].replace("MD5", "SHA-256")
    auth = build_authorization(challenge, method="REGISTER", uri="sip:pbx.example.com", username=USER,
                               password=PASSWORD)
    assert env.send(register(authorization=auth)).status == 403


# -- expiry values -------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "granted"), [
    ({"expires": 7200}, "3600"),  # clamped to the maximum
    ({"expires": 60}, "60"),
    ({"expires": 99999999999999}, "3600"),
    ({"expires": 30, "contacts": (CONTACT + ";expires=300",)}, "300"),  # the parameter wins over the header
    ({"contacts": (CONTACT + ";expires=4000",)}, "3600"),
])
def test_granted_expiry(env: Env, kwargs: dict[str, object], granted: str) -> None:
    response = env.register(**kwargs)
    assert response.status == 200 and contacts_of(response)[0][1] == granted


@pytest.mark.parametrize("kwargs", [{"expires": 30}, {"contacts": (CONTACT + ";expires=1",)},
                                    {"contacts": (CONTACT, "<sip:demo.agent2@192.168.1.20:5070>;expires=59")}])
def test_interval_too_brief_gets_423_with_min_expires(env: Env, kwargs: dict[str, object]) -> None:
    response = env.register(**kwargs)
    assert response.status == 423 and response.headers.get("Min-Expires") == "60"
    assert env.registrar.bindings(USER) == []  # nothing applied, not even the good contact


@pytest.mark.parametrize("kwargs", [{"expires": "soon"}, {"contacts": (CONTACT + ";expires=-5",)},
                                    {"contacts": ("<tel:+15551234567>",)},
                                    {"contacts": ("*",)}, {"contacts": ("*", CONTACT), "expires": 0},
                                    {"contacts": ("sip:user@example.com?Route=%3Csip:sip.example.com%3E",)}])
def test_malformed_register_gets_400(env: Env, kwargs: dict[str, object]) -> None:
    assert env.register(**kwargs).status == 400
    assert env.registrar.bindings(USER) == []


def test_contact_with_uri_headers_is_stored_and_rung_without_them(env: Env) -> None:
    """RFC 4475 regescrt: an escaped header inside <> is legal; a request to it must not carry it."""
    response = env.register(contacts=("<sip:demo.agent2@192.168.1.20?Route=%3Csip:sip.example.com%3E>",))
    assert response.status == 200
    binding = env.registrar.contact_for(USER)
    assert binding is not None and binding.uri.headers == {"Route": "%3Csip:sip.example.com%3E"}
    assert str(binding.target) == "sip:demo.agent2@192.168.1.20"


def test_register_without_contact_is_a_query(env: Env) -> None:
    env.register()
    challenge = env.send(register(contacts=(), call_id="query-1"))
    response = env.send(register(contacts=(), call_id="query-1", cseq=2, authorization=answer(challenge)),
                        now=T0 + 100)
    assert response.status == 200 and contacts_of(response) == [("sip:demo.agent2@192.168.1.20:5062", "3500")]


# -- refresh and removal -------------------------------------------------------------


def test_refresh_extends_the_same_binding(env: Env) -> None:
    env.register(expires=600)
    (first,) = env.registrar.bindings(USER)
    moved = Flow("udp", ("203.0.113.7", 40999))  # the NAT picked a new port
    response = env.register(expires=600, cseq=3, now=T0 + 500, flow=moved)
    assert response.status == 200 and contacts_of(response)[0][1] == "600"
    (refreshed,) = env.registrar.bindings(USER)
    assert refreshed.expires_at == T0 + 1100 and refreshed.flow == moved
    assert (refreshed.registered_at, refreshed.serial) == (first.registered_at, first.serial)
    assert env.changes == [(USER, True)]  # still the same reachable agent: no second notification


def test_out_of_order_register_is_refused_and_changes_nothing(env: Env) -> None:
    env.register(cseq=5, expires=600)
    response = env.register(cseq=4, expires=0)
    assert response.status == 500
    assert len(env.registrar.bindings(USER)) == 1


def test_expires_zero_removes_the_binding(env: Env) -> None:
    env.register()
    response = env.register(cseq=2, contacts=(CONTACT + ";expires=0",))
    assert response.status == 200 and response.contact == []
    assert env.registrar.bindings(USER) == [] and not env.registrar.reachable(USER)
    assert env.changes == [(USER, True), (USER, False)]


def test_expires_zero_for_an_unknown_contact_is_fine(env: Env) -> None:
    assert env.register(expires=0).status == 200
    assert env.changes == []


def test_wildcard_removes_every_binding(env: Env) -> None:
    env.register(contacts=(CONTACT, "<sip:demo.agent2@192.168.1.21:5060>"))
    env.register(call_id="desk-phone", contacts=("<sip:demo.agent2@10.0.0.9>",))
    assert len(env.registrar.bindings(USER)) == 3
    response = env.register(call_id="unregister-all", contacts=("*",), expires=0)
    assert response.status == 200 and response.contact == []
    assert env.registrar.bindings(USER) == []
    assert env.changes == [(USER, True), (USER, False)]


def test_wildcard_older_than_a_binding_is_refused(env: Env) -> None:
    env.register(cseq=7)
    assert env.register(cseq=6, contacts=("*",), expires=0).status == 500
    assert len(env.registrar.bindings(USER)) == 1


# -- expiry over time ----------------------------------------------------------------


def test_binding_expires_at_its_deadline(env: Env) -> None:
    env.register(expires=120)
    env.register(user=OTHER, password=OTHER_PASSWORD, contacts=("<sip:demo.agent3@192.168.1.30>",),
                 expires=300, now=T0 + 10)
    registrar = env.registrar
    assert registrar.next_deadline() == T0 + 120
    assert registrar.expire(T0 + 119.9) == [] and registrar.reachable(USER)
    dropped = registrar.expire(T0 + 120)
    assert [b.sip_user for b in dropped] == [USER]
    assert not registrar.reachable(USER) and registrar.reachable(OTHER)
    assert registrar.next_deadline() == T0 + 310
    assert env.changes == [(USER, True), (OTHER, True), (USER, False)]


def test_refreshed_binding_does_not_expire_at_its_old_deadline(env: Env) -> None:
    env.register(expires=120)
    env.register(expires=120, cseq=2, now=T0 + 100)
    registrar = env.registrar
    assert registrar.next_deadline() == T0 + 220  # the outdated T0 + 120 entry is skipped
    assert registrar.expire(T0 + 150) == [] and registrar.reachable(USER)
    assert len(registrar.expire(T0 + 220)) == 1 and registrar.next_deadline() is None


def test_a_failing_listener_does_not_break_registration(env: Env) -> None:
    def broken(user: str, reachable: bool) -> None:
        raise RuntimeError("listener bug")

    env.registrar.add_listener(broken)
    assert env.register().status == 200
    assert env.changes == [(USER, True)]
    env.registrar.remove_listener(broken)


# -- several phones ------------------------------------------------------------------


def test_several_contacts_newest_first(env: Env) -> None:
    desk = "<sip:demo.agent2@192.168.1.20:5062>"
    laptop = "<sip:demo.agent2@192.168.1.44:5060;transport=udp>"
    env.register(call_id="desk", contacts=(desk,))
    laptop_flow = Flow("udp", ("198.51.100.4", 5060))
    response = env.register(call_id="laptop", contacts=(laptop,), now=T0 + 5, flow=laptop_flow)
    assert [uri for uri, _ in contacts_of(response)] == ["sip:demo.agent2@192.168.1.44:5060;transport=udp",
                                                          "sip:demo.agent2@192.168.1.20:5062"]
    newest = env.registrar.contact_for(USER)
    assert newest is not None and newest.flow == laptop_flow
    # the desk phone's refresh keeps its place: "newest" is the latest registration, not the latest refresh
    env.register(call_id="desk", cseq=2, contacts=(desk,), now=T0 + 60)
    assert env.registrar.contact_for(USER) == env.registrar.bindings(USER)[0]
    assert env.registrar.bindings(USER)[0].call_id == "laptop"
    # the desk phone restarts (new Call-ID): now it is the newest registration
    env.register(call_id="desk-rebooted", contacts=(desk,), now=T0 + 90)
    assert [b.call_id for b in env.registrar.bindings(USER)] == ["desk-rebooted", "laptop"]
    assert env.changes == [(USER, True)]


def test_bindings_per_agent_are_capped_oldest_dropped() -> None:
    env = Env(max_bindings=2)
    for i in range(3):
        env.register(call_id=f"phone-{i}", contacts=(f"<sip:demo.agent2@192.168.1.{i + 1}>",), now=T0 + i)
    assert [b.call_id for b in env.registrar.bindings(USER)] == ["phone-2", "phone-1"]


# -- unreachable phones --------------------------------------------------------------


def test_mark_unreachable_drops_all_bindings_until_the_next_register(env: Env) -> None:
    env.register(contacts=(CONTACT, "<sip:demo.agent2@192.168.1.21>"))
    assert env.registrar.mark_unreachable(USER) is True
    assert env.registrar.bindings(USER) == [] and env.registrar.contact_for(USER) is None
    assert env.registrar.mark_unreachable(USER) is False  # nothing left: no second notification
    assert env.registrar.next_deadline() is None
    env.register(cseq=2)
    assert env.registrar.reachable(USER)
    assert env.changes == [(USER, True), (USER, False), (USER, True)]


def test_mark_unreachable_with_a_binding_keeps_the_agents_other_phones(env: Env) -> None:
    env.register(call_id="desk", contacts=("<sip:demo.agent2@192.168.1.20>",))
    env.register(call_id="laptop", contacts=("<sip:demo.agent2@192.168.1.44>",), now=T0 + 1)
    dead = env.registrar.contact_for(USER)
    assert dead is not None and dead.call_id == "laptop"
    assert env.registrar.mark_unreachable(USER, dead)
    remaining = env.registrar.contact_for(USER)
    assert remaining is not None and remaining.call_id == "desk"
    assert env.changes == [(USER, True)]  # still reachable through the desk phone
    assert env.registrar.mark_unreachable(USER, remaining)
    assert env.changes == [(USER, True), (USER, False)]


def test_registrar_rejects_inconsistent_limits() -> None:
    with pytest.raises(ValueError):
        Registrar(Directory(), min_expires=600, max_expires=300)


def test_wrong_secrets_ban_the_user_from_that_source_while_the_phone_elsewhere_registers() -> None:
    from authguard import AuthGuard, Thresholds

    env = Env()
    bans: list[object] = []
    env.registrar.guard = AuthGuard("sip", Thresholds(account_failures=3, source_failures=50), on_ban=bans.append)
    for i in range(3):
        assert env.register(password=f"guess{i}").status == 403  # the third starts the ban, still answered
    assert len(bans) == 1
    first = env.send(register())
    assert first.status == 401  # no credentials yet: the challenge is the same for everyone
    with_credentials = register(authorization=answer(first, username=USER, password=PASSWORD))
    assert env.registrar.handle(with_credentials, SOURCE, env.nonces, now=T0, wall=WALL) is None  # dropped
    assert env.register(flow=Flow("udp", ("198.51.100.9", 5060))).status == 200
    assert env.register(user=OTHER, password=OTHER_PASSWORD).status == 200  # other users from there are fine
    assert env.register(wall=WALL + 901, call_id="reg-2@192.168.1.20").status == 200  # the ban (900 s) is over
