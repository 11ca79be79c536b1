"""HTTP Digest authentication for SIP (RFC 3261 22, RFC 7616, RFC 8760). No I/O.

Server side: :class:`NonceManager` issues stateless nonces,
:func:`challenge_headers` builds the WWW-/Proxy-Authenticate values and
:func:`verify_credentials` checks an Authorization value parsed by
:func:`parse_credentials` (or :func:`verify_credentials_ha1` when only
H(A1) is stored, see :func:`compute_ha1`).  Client side: :func:`pick_challenge` and
:func:`build_authorization`.

Supported: MD5, MD5-sess, SHA-256, SHA-256-sess; qop ``auth`` or none.
``auth-int`` and ``userhash`` are not supported (verification fails).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from typing import Literal

from sip_bridge.uri import SipError, TOKEN_CHARS

__all__ = [
    "ALGORITHMS",
    "NONCE_CLOCK_SKEW",
    "NonceManager",
    "challenge_headers",
    "parse_credentials",
    "verify_credentials",
    "verify_credentials_ha1",
    "compute_ha1",
    "build_authorization",
    "pick_challenge",
]

#: Algorithms offered in challenges, strongest first (RFC 8760 3).
ALGORITHMS: tuple[str, ...] = ("SHA-256", "MD5")
#: Seconds a nonce timestamp may lie in the future (cluster clock drift).
NONCE_CLOCK_SKEW = 5.0

_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
# Preference for pick_challenge: higher is stronger.
_STRENGTH = {"MD5": 1, "MD5-SESS": 1, "SHA-256": 2, "SHA-256-SESS": 2}
# Unquoted auth-param values: tokens, plus '/' and ':' seen in the wild (uri=sip:x).
_BARE_VALUE_CHARS = TOKEN_CHARS | frozenset("/:")
_NONCE_MAC_BYTES = 16
_NONCE_RAW_BYTES = 8 + _NONCE_MAC_BYTES


class NonceManager:
    """Stateless nonces: ``base64url(timestamp_ms || HMAC(secret, timestamp_ms))``.

    Any node sharing ``secret`` can check a nonce; generating a fresh secret at
    start-up invalidates every nonce issued before the restart.  Statelessness
    means a nonce can be replayed within its lifetime; nc tracking would need
    shared state.
    """

    def __init__(self, secret: bytes, lifetime: float = 300.0) -> None:
        if len(secret) < 16:
            raise ValueError("nonce secret must be at least 16 bytes")
        if lifetime <= 0:
            raise ValueError(f"nonce lifetime must be positive, got {lifetime}")
        self._secret = secret
        self.lifetime = lifetime

    def _mac(self, stamp: bytes) -> bytes:
        return hmac.new(self._secret, stamp, hashlib.sha256).digest()[:_NONCE_MAC_BYTES]

    def make(self, now: float) -> str:
        """A new nonce stamped with ``now`` (seconds, any epoch)."""
        stamp = struct.pack(">Q", max(0, int(now * 1000)))
        return base64.urlsafe_b64encode(stamp + self._mac(stamp)).decode("ascii").rstrip("=")

    def check(self, nonce: str, now: float) -> Literal["ok", "stale", "invalid"]:
        """``ok``; ``stale`` if genuine but expired (re-challenge with stale=true); else ``invalid``."""
        if len(nonce) != 32 or not nonce.isascii():
            return "invalid"
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except ValueError:
            return "invalid"
        if len(raw) != _NONCE_RAW_BYTES:
            return "invalid"
        stamp, mac = raw[:8], raw[8:]
        if not hmac.compare_digest(mac, self._mac(stamp)):
            return "invalid"
        issued = struct.unpack(">Q", stamp)[0] / 1000
        if issued > now + NONCE_CLOCK_SKEW:
            return "invalid"
        if now - issued > self.lifetime:
            return "stale"
        return "ok"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge_headers(
    realm: str, nonce: str, *, stale: bool = False, algorithms: tuple[str, ...] = ALGORITHMS
) -> list[str]:
    """One WWW-Authenticate (or Proxy-Authenticate) value per algorithm, strongest first.

    RFC 8760 3: a server offering several algorithms sends one challenge each,
    in order of preference, so old MD5-only phones still find theirs.
    """
    for algorithm in algorithms:
        if algorithm not in _HASHES:
            raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    ordered = sorted(dict.fromkeys(algorithms), key=lambda a: -_STRENGTH[a.upper()])
    suffix = ", stale=true" if stale else ""
    return [
        f'Digest realm={_quote(realm)}, nonce={_quote(nonce)}, algorithm={alg}, qop="auth"{suffix}'
        for alg in ordered
    ]


def _parse_auth_params(text: str, what: str) -> dict[str, str]:
    """Parse ``name=value, name="quoted", ...`` into lowercased keys, unquoted values."""
    params: dict[str, str] = {}
    i = 0
    n = len(text)
    while True:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            return params
        start = i
        while i < n and text[i] in TOKEN_CHARS:
            i += 1
        name = text[start:i].lower()
        while i < n and text[i] in " \t":
            i += 1
        if not name or i >= n or text[i] != "=":
            raise SipError(f"malformed auth-param in {what} near {text[start:start + 30]!r}")
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise SipError(f"unterminated quoted string in {what}")
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    chars.append(text[i + 1])
                    i += 2
                elif ch == '"':
                    i += 1
                    break
                else:
                    chars.append(ch)
                    i += 1
            value = "".join(chars)
        else:
            start = i
            while i < n and text[i] in _BARE_VALUE_CHARS:
                i += 1
            value = text[start:i]
            if not value:
                raise SipError(f"empty value for {name!r} in {what}")
        if name in params:
            raise SipError(f"duplicate auth-param {name!r} in {what}")
        params[name] = value
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] != ",":
            raise SipError(f"expected ',' after {name!r} in {what}")


def _split_scheme(value: str, what: str) -> str:
    scheme, _, rest = value.strip(" \t").partition(" ")
    if scheme.lower() != "digest":
        # 401: the registrar re-challenges (RFC 4475 regaut01).
        raise SipError(f"unsupported authentication scheme {scheme[:30]!r} in {what}", 401)
    return rest


def parse_credentials(value: str) -> dict[str, str]:
    """Parse an Authorization/Proxy-Authorization value.

    Returns lowercased parameter names mapped to unquoted values.  Raises
    :class:`SipError` (400 if malformed, 401 if not the Digest scheme).
    """
    params = _parse_auth_params(_split_scheme(value, "credentials"), "credentials")
    for name in ("username", "realm", "nonce", "uri", "response"):
        if name not in params:
            raise SipError(f"credentials lack {name!r}")
    return params


def _hash_for(algorithm: str) -> tuple[str, bool] | None:
    """(base algorithm, is-session-variant), None if unsupported."""
    upper = algorithm.upper()
    sess = upper.endswith("-SESS")
    base = upper[:-5] if sess else upper
    return (base, sess) if base in _HASHES else None


def compute_ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """H(username:realm:password), RFC 7616 3.4.2: what a server can store instead of the password.

    ``algorithm`` is the base hash (``MD5`` or ``SHA-256``); the stored value can
    only verify credentials of that hash (and its ``-sess`` variant).
    """
    picked = _hash_for(algorithm)
    if picked is None or picked[1]:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return _HASHES[picked[0]](f"{username}:{realm}:{password}".encode("utf-8")).hexdigest()


def _response(
    algorithm: str, *, username: str, realm: str, password: str, method: str, uri: str,
    nonce: str, qop: str | None, nc: str, cnonce: str,
) -> str:
    """RFC 7616 3.4.1 response; ``algorithm`` must already be known supported."""
    picked = _hash_for(algorithm)
    assert picked is not None
    return _response_from_ha1(algorithm, ha1=compute_ha1(username, realm, password, picked[0]), method=method,
                              uri=uri, nonce=nonce, qop=qop, nc=nc, cnonce=cnonce)


def _response_from_ha1(
    algorithm: str, *, ha1: str, method: str, uri: str, nonce: str, qop: str | None, nc: str, cnonce: str,
) -> str:
    """The response from H(A1) (``algorithm`` known supported, ``ha1`` of its base hash)."""
    picked = _hash_for(algorithm)
    assert picked is not None
    base, sess = picked
    hasher = _HASHES[base]

    def h(data: str) -> str:
        return hasher(data.encode("utf-8")).hexdigest()

    if sess:
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    if qop is None:
        return h(f"{ha1}:{nonce}:{ha2}")
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def verify_credentials(creds: dict[str, str], *, method: str, password: str, realm: str) -> bool:
    """Check a Digest response in constant time.

    Does not check the nonce (use :meth:`NonceManager.check`) nor that
    ``creds["uri"]`` matches the Request-URI; callers do both.
    """
    picked = _hash_for(creds.get("algorithm", "MD5"))
    if picked is None or "username" not in creds:
        return False
    ha1 = compute_ha1(creds["username"], realm, password, picked[0])
    return verify_credentials_ha1(creds, method=method, ha1=ha1, realm=realm, ha1_algorithm=picked[0])


def _parse_challenge(value: str) -> dict[str, str]:
    params = _parse_auth_params(_split_scheme(value, "challenge"), "challenge")
    for name in ("realm", "nonce"):
        if name not in params:
            raise SipError(f"challenge lacks {name!r}")
    return params


def pick_challenge(values: list[str]) -> str:
    """The strongest Digest challenge we support (SHA-256 over MD5).

    Malformed or unsupported challenges are skipped; raises :class:`SipError`
    if none is usable.
    """
    best: tuple[int, str] | None = None
    for value in values:
        try:
            params = _parse_challenge(value)
        except SipError:
            continue
        strength = _STRENGTH.get(params.get("algorithm", "MD5").upper())
        if strength is not None and (best is None or strength > best[0]):
            best = (strength, value)
    if best is None:
        raise SipError("no supported Digest challenge offered", 401)
    return best[1]


def build_authorization(
    challenge: str, *, method: str, uri: str, username: str, password: str,
    cnonce: str | None = None, nc: int = 1,
) -> str:
    """The Authorization/Proxy-Authorization value answering ``challenge``."""
    params = _parse_challenge(challenge)
    algorithm = params.get("algorithm", "MD5")
    if _hash_for(algorithm) is None:
        raise SipError(f"unsupported digest algorithm {algorithm!r}", 401)
    qop: str | None = None
    if "qop" in params:
        offered = [q.strip(" \t").lower() for q in params["qop"].split(",")]
        if "auth" not in offered:
            raise SipError(f"challenge offers no supported qop: {params['qop']!r}", 401)
        qop = "auth"
    if cnonce is None:
        cnonce = secrets.token_hex(8)
    nc_text = f"{nc:08x}"
    response = _response(
        algorithm, username=username, realm=params["realm"], password=password, method=method,
        uri=uri, nonce=params["nonce"], qop=qop, nc=nc_text, cnonce=cnonce,
    )
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(params['realm'])}",
        f"nonce={_quote(params['nonce'])}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={algorithm}",
    ]
    if qop is not None or algorithm.upper().endswith("-SESS"):
        parts.append(f"cnonce={_quote(cnonce)}")
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc_text}"]
    if "opaque" in params:
        parts.append(f"opaque={_quote(params['opaque'])}")
    return "Digest " + ", ".join(parts)


def verify_credentials_ha1(creds: dict[str, str], *, method: str, ha1: str, realm: str,
                           ha1_algorithm: str = "MD5") -> bool:
    """:func:`verify_credentials` for a server that stores H(A1) (:func:`compute_ha1`), not the password.

    ``ha1`` was computed with ``ha1_algorithm``; credentials using another hash
    (SHA-256 when an MD5 H(A1) is stored) fail.  Same checks otherwise: the
    nonce and the ``uri`` parameter are the caller's business.
    """
    if creds.get("realm") != realm or creds.get("userhash", "false").lower() == "true":
        return False
    qop = creds.get("qop")
    if qop is not None and qop.lower() != "auth":
        return False
    nc = creds.get("nc", "")
    cnonce = creds.get("cnonce", "")
    if qop is not None and (len(nc) != 8 or not cnonce):
        return False
    algorithm = creds.get("algorithm", "MD5")
    picked = _hash_for(algorithm)
    if picked is None or picked[0] != ha1_algorithm.upper() or (picked[1] and not cnonce):
        return False
    try:
        expected = _response_from_ha1(
            algorithm, ha1=ha1.lower(), method=method, uri=creds["uri"], nonce=creds["nonce"],
            qop=qop and "auth", nc=nc, cnonce=cnonce,
        )
    except KeyError:
        return False
    return hmac.compare_digest(expected.encode(), creds.get("response", "").lower().encode("utf-8", "replace"))
