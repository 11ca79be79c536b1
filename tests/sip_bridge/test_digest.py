"""Digest authentication: nonces, challenges, credentials, client answers."""

from __future__ import annotations

import pytest

from sip_bridge.digest import (
    ALGORITHMS,
    NonceManager,
    build_authorization,
    challenge_headers,
    parse_credentials,
    pick_challenge,
    verify_credentials,
)
from sip_bridge.uri import SipError

SECRET = b"0123456789abcdef0123456789abcdef"


# ------------------------------------------------------------------ nonces


def test_nonce_lifecycle() -> None:
    nonces = NonceManager(SECRET, lifetime=30)
    nonce = nonces.make(1000.0)
    assert nonces.check(nonce, 1000.0) == "ok"
    assert nonces.check(nonce, 1029.9) == "ok"
    assert nonces.check(nonce, 1030.5) == "stale"


def test_nonce_from_other_secret_or_restart_is_invalid() -> None:
    nonce = NonceManager(SECRET).make(1000.0)
    assert NonceManager(b"another-secret-of-16+bytes").check(nonce, 1000.0) == "invalid"


@pytest.mark.parametrize("nonce", ["", "short", "!" * 32, "A" * 32, "A" * 33, "\u00e9" * 32])
def test_garbage_nonces_are_invalid(nonce: str) -> None:
    assert NonceManager(SECRET).check(nonce, 1000.0) == "invalid"


def test_tampered_or_future_nonce_is_invalid() -> None:
    nonces = NonceManager(SECRET)
    nonce = nonces.make(1000.0)
    tampered = ("B" if nonce[3] == "A" else "A").join((nonce[:3], nonce[4:]))
    assert nonces.check(tampered, 1000.0) == "invalid"
    assert nonces.check(nonces.make(2000.0), 1000.0) == "invalid"


def test_nonce_manager_rejects_weak_config() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        NonceManager(b"short")
    with pytest.raises(ValueError, match="lifetime must be positive"):
        NonceManager(SECRET, lifetime=0)


# ------------------------------------------------------------------ challenges


def test_challenge_headers_sha256_first() -> None:
    values = challenge_headers("example.com", "abc", algorithms=("MD5", "SHA-256"))
    assert values == [
        'Digest realm="example.com", nonce="abc", algorithm=SHA-256, qop="auth"',
        'Digest realm="example.com", nonce="abc", algorithm=MD5, qop="auth"',
    ]
    assert challenge_headers("r", "n", stale=True, algorithms=("MD5",)) == [
        'Digest realm="r", nonce="n", algorithm=MD5, qop="auth", stale=true'
    ]
    assert len(challenge_headers("r", "n")) == len(ALGORITHMS)
    with pytest.raises(ValueError, match="unsupported digest algorithm"):
        challenge_headers("r", "n", algorithms=("SHA-1",))


def test_challenge_realm_is_escaped() -> None:
    (value,) = challenge_headers('we "quote"', "n", algorithms=("MD5",))
    assert value.startswith('Digest realm="we \\"quote\\""')


def test_pick_challenge_prefers_sha256() -> None:
    md5, sha = challenge_headers("r", "n")[::-1]
    assert pick_challenge([md5, sha]) == sha
    assert pick_challenge(["Basic realm=x", "Digest realm=r, nonce=n", "Digest garbage"]) == "Digest realm=r, nonce=n"
    with pytest.raises(SipError, match="no supported Digest challenge"):
        pick_challenge(['Digest realm="r", nonce="n", algorithm=SHA-512-256', "Bearer x"])


# ------------------------------------------------------------------ credentials


def test_parse_credentials() -> None:
    creds = parse_credentials(
        'Digest  username="bob", Realm="biloxi.com",nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",'
        ' uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b",'
        ' response="6629fae49393a05397450978507c4ef1", opaque="a \\"quoted\\", string"'
    )
    assert creds["username"] == "bob" and creds["realm"] == "biloxi.com"
    assert creds["qop"] == "auth" and creds["nc"] == "00000001"
    assert creds["opaque"] == 'a "quoted", string'


@pytest.mark.parametrize(
    ("value", "status", "error"),
    [
        ("NoOneKnowsThisScheme opaque-data=here", 401, "unsupported authentication scheme"),
        ('Digest username="a", realm="r", nonce="n", uri="u"', 400, "credentials lack 'response'"),
        ('Digest username="a, realm=r', 400, "unterminated quoted string"),
        ('Digest username="a" realm="r"', 400, "expected ',' after 'username'"),
        ('Digest username="a", username="b"', 400, "duplicate auth-param 'username'"),
        ("Digest =x", 400, "malformed auth-param"),
        ("Digest username=", 400, "empty value for 'username'"),
    ],
)
def test_bad_credentials(value: str, status: int, error: str) -> None:
    with pytest.raises(SipError) as info:
        parse_credentials(value)
    assert info.value.status == status
    assert error in str(info.value)


RFC2617 = {
    "username": "Mufasa", "realm": "testrealm@host.com", "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093",
    "uri": "/dir/index.html", "qop": "auth", "nc": "00000001", "cnonce": "0a4f113b",
    "response": "6629fae49393a05397450978507c4ef1", "opaque": "5ccc069c403ebaf9f0171e9517f40e41",
}


def test_rfc2617_md5_vector() -> None:
    assert verify_credentials(RFC2617, method="GET", password="Circle Of Life", realm="testrealm@host.com")
    assert not verify_credentials(RFC2617, method="GET", password="circle of life", realm="testrealm@host.com")
    assert not verify_credentials(RFC2617, method="POST", password="Circle Of Life", realm="testrealm@host.com")
    assert not verify_credentials(RFC2617, method="GET", password="Circle Of Life", realm="other")


RFC7616 = {
    "username": "Mufasa", "realm": "http-auth@example.org", "uri": "/dir/index.html",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "qop": "auth", "nc": "00000001",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
}


@pytest.mark.parametrize(
    ("algorithm", "response"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_vectors(algorithm: str, response: str) -> None:
    creds = {**RFC7616, "algorithm": algorithm, "response": response}
    assert verify_credentials(creds, method="GET", password="Circle of Life", realm="http-auth@example.org")


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256", "MD5-sess", "SHA-256-sess"])
@pytest.mark.parametrize("qop", [True, False])
def test_client_server_round_trip(algorithm: str, qop: bool) -> None:
    nonces = NonceManager(SECRET)
    nonce = nonces.make(50.0)
    challenge = f'Digest realm="pbx.example.com", nonce="{nonce}", algorithm={algorithm}, opaque="op"'
    if qop:
        challenge += ', qop="auth,auth-int"'
    value = build_authorization(
        challenge, method="REGISTER", uri="sip:pbx.example.com", username="1001", password="s3cret", nc=3
    )
    creds = parse_credentials(value)
    assert creds["algorithm"] == algorithm and creds["opaque"] == "op"
    assert (creds.get("qop"), creds.get("nc")) == (("auth", "00000003") if qop else (None, None))
    assert nonces.check(creds["nonce"], 60.0) == "ok"
    assert verify_credentials(creds, method="REGISTER", password="s3cret", realm="pbx.example.com")
    assert not verify_credentials(creds, method="REGISTER", password="wrong", realm="pbx.example.com")
    flipped = creds["response"][:-1] + ("1" if creds["response"][-1] == "0" else "0")
    assert not verify_credentials({**creds, "response": flipped}, method="REGISTER", password="s3cret", realm="pbx.example.com")


def test_response_compare_is_case_insensitive_hex() -> None:
    creds = {**RFC2617, "response": RFC2617["response"].upper()}
    assert verify_credentials(creds, method="GET", password="Circle Of Life", realm="testrealm@host.com")


@pytest.mark.parametrize(
    "change",
    [
        {"qop": "auth-int"},
        {"algorithm": "SHA-512-256"},
        {"userhash": "true"},
        {"nc": "1"},
        {"cnonce": ""},
    ],
)
def test_unsupported_or_incomplete_credentials_fail(change: dict[str, str]) -> None:
    creds = {**RFC2617, **change}
    assert not verify_credentials(creds, method="GET", password="Circle Of Life", realm="testrealm@host.com")


def test_missing_fields_fail_instead_of_raising() -> None:
    creds = {k: v for k, v in RFC2617.items() if k != "nonce"}
    assert not verify_credentials(creds, method="GET", password="Circle Of Life", realm="testrealm@host.com")


def test_build_authorization_errors() -> None:
    with pytest.raises(SipError, match="no supported qop"):
        build_authorization('Digest realm="r", nonce="n", qop="auth-int"', method="M", uri="u", username="a", password="p")
    with pytest.raises(SipError, match="unsupported digest algorithm"):
        build_authorization('Digest realm="r", nonce="n", algorithm=SHA-1', method="M", uri="u", username="a", password="p")
    with pytest.raises(SipError, match="challenge lacks 'nonce'"):
        build_authorization('Digest realm="r"', method="M", uri="u", username="a", password="p")


def test_build_authorization_without_qop_is_rfc2069_style() -> None:
    value = build_authorization('Digest realm="r", nonce="n"', method="INVITE", uri="sip:x", username="a", password="p", cnonce="c")
    assert "cnonce" not in value and "qop" not in value
    assert value.startswith('Digest username="a", realm="r", nonce="n", uri="sip:x", response="')
