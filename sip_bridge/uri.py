"""SIP header value types: URIs (RFC 3261 19.1), name-addr values and Via.

Pure parsing, no I/O. Every parser raises :class:`SipError` (a ``ValueError``)
with a message naming the problem; the error types live here because this is
the lowest module of the parser stack (``message`` re-exports them).

Values are kept *as received* where the RFC lets peers choose a spelling
(escaped characters, host case), so a proxy re-serialises a URI exactly as it
got it; comparisons go through :meth:`SipUri.equivalent` and
:attr:`SipUri.user_unescaped`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import unquote

__all__ = [
    "SipError",
    "SecurityError",
    "SipUri",
    "NameAddr",
    "Via",
    "TOKEN_CHARS",
    "is_token",
    "parse_hostport",
    "parse_params",
    "split_quoted",
]


class SipError(ValueError):
    """A SIP message or header value failed to parse or validate.

    ``status`` and ``reason`` are what a UAS should answer with when the bad
    input was a request (responses are just dropped).
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.reason = message


class SecurityError(SipError):
    """A hard resource limit was exceeded (size, header count, line length)."""


_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
#: RFC 3261 25.1 ``token`` characters.
TOKEN_CHARS = _ALNUM | frozenset("-.!%*_+`'~")
_HEX = frozenset("0123456789abcdefABCDEF")
_UNRESERVED = _ALNUM | frozenset("-_.!~*'()")
# user = 1*( unreserved / escaped / user-unreserved )
_USER_CHARS = _UNRESERVED | frozenset("%&=+$,;?/")
# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
_PASSWORD_CHARS = _UNRESERVED | frozenset("%&=+$,")
# hostname / IPv4address; "_" is not legal but common in the wild (SRV-ish names).
_HOST_CHARS = _ALNUM | frozenset("-._")
_IPV6_CHARS = _HEX | frozenset(":.")
# paramchar = param-unreserved / unreserved / escaped
_PARAM_CHARS = _UNRESERVED | frozenset("%[]/:&+$")
# hname/hvalue = hnv-unreserved / unreserved / escaped
_HEADER_CHARS = _UNRESERVED | frozenset("%[]/?:+$")
# gen-value = token / host / quoted-string (host adds '[', ']', ':').
_GEN_VALUE_CHARS = TOKEN_CHARS | _PARAM_CHARS
_SCHEME_CHARS = _ALNUM | frozenset("+-.")
# Characters that can never appear in any URI text (RFC 3986 excludes them too).
_URI_FORBIDDEN = frozenset(" \t\r\n<>\"\\{}|^`\x00\x7f")

_MAX_PORT = 65_535


def is_token(text: str) -> bool:
    """True if ``text`` is a non-empty RFC 3261 token."""
    return bool(text) and TOKEN_CHARS.issuperset(text)


def _check_escapes(text: str, what: str) -> None:
    """Reject a '%' that does not start a two-hex-digit escape."""
    pos = text.find("%")
    while pos != -1:
        if pos + 2 >= len(text):
            raise SipError(f"truncated %-escape in {what}: {text!r}")
        if text[pos + 1] not in _HEX or text[pos + 2] not in _HEX:
            raise SipError(f"invalid %-escape in {what}: {text!r}")
        pos = text.find("%", pos + 3)


def split_quoted(text: str, sep: str) -> list[str]:
    """Split ``text`` on ``sep`` outside quoted strings and ``<...>``.

    Backslash escapes inside quoted strings are honoured.  Raises
    :class:`SipError` on an unterminated quoted string or angle bracket.
    """
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts: list[str] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            i = _skip_quoted(text, i)
            continue
        if ch == "<":
            end = text.find(">", i + 1)
            if end == -1:
                raise SipError(f"unterminated '<' in {text!r}")
            i = end + 1
            continue
        if ch == sep:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _skip_quoted(text: str, start: int) -> int:
    """Return the index just past the quoted string opening at ``start``."""
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i + 1
        i += 1
    raise SipError(f"unterminated quoted string in {text!r}")


def _unquote(text: str) -> str:
    """Strip the quotes of a quoted-string and resolve its quoted-pairs."""
    inner = text[1:-1]
    if "\\" not in inner:
        return inner
    out: list[str] = []
    i = 0
    while i < len(inner):
        ch = inner[i]
        if ch == "\\" and i + 1 < len(inner):
            out.append(inner[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_params(text: str, what: str) -> dict[str, str | None]:
    """Parse ``;name[=value]`` generic parameters (``text`` starts after the first ';').

    Names are lowercased tokens; values are kept as received (quoted strings
    keep their quotes so re-serialisation is exact).  Whitespace around ';'
    and '=' is allowed (RFC 3261 SEMI/EQUAL are SWS-padded).
    """
    params: dict[str, str | None] = {}
    for raw in split_quoted(text, ";"):
        name, eq, value = raw.partition("=")
        name = name.strip(" \t").lower()
        if not is_token(name):
            raise SipError(f"invalid parameter name {name!r} in {what}")
        if name in params:
            raise SipError(f"duplicate parameter {name!r} in {what}")
        if eq:
            value = value.strip(" \t")
            if not value:
                raise SipError(f"empty value for parameter {name!r} in {what}")
            if value[0] == '"':
                if _skip_quoted(value, 0) != len(value):
                    raise SipError(f"garbage after quoted value of {name!r} in {what}")
            elif not _GEN_VALUE_CHARS.issuperset(value):
                raise SipError(f"invalid value for parameter {name!r} in {what}: {value!r}")
            params[name] = value
        else:
            params[name] = None
    return params


def _format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def parse_hostport(text: str, what: str) -> tuple[str, int | None]:
    """Parse ``host[:port]``; IPv6 references keep their brackets."""
    if not text:
        raise SipError(f"missing host in {what}")
    if text[0] == "[":
        end = text.find("]")
        if end == -1:
            raise SipError(f"unterminated IPv6 reference in {what}: {text!r}")
        host = text[: end + 1]
        inner = host[1:-1]
        # Lenient on purpose: RFC 5118 4.10 asks parsers to accept the
        # three-colon form that the RFC 3261 ABNF erroneously allowed.
        if inner.count(":") < 2 or not _IPV6_CHARS.issuperset(inner):
            raise SipError(f"invalid IPv6 reference in {what}: {host!r}")
        rest = text[end + 1 :]
        if not rest:
            return host, None
        if rest[0] != ":":
            raise SipError(f"garbage after IPv6 reference in {what}: {text!r}")
        port_text = rest[1:]
    else:
        host, colon, port_text = text.partition(":")
        if not host or not _HOST_CHARS.issuperset(host):
            raise SipError(f"invalid host in {what}: {host!r}")
        if not colon:
            return host, None
    if not port_text.isascii() or not port_text.isdigit() or len(port_text) > 5:
        raise SipError(f"invalid port in {what}: {port_text!r}")
    port = int(port_text)
    if port > _MAX_PORT:
        raise SipError(f"port out of range in {what}: {port}")
    return host, port


@dataclass
class SipUri:
    """A SIP/SIPS URI, or any other absolute URI kept opaque.

    For schemes other than ``sip``/``sips`` (``tel:``, ``http:``...) only
    ``scheme`` and ``opaque`` (the text after the colon) are set and ``host`` is
    empty; routing code checks :attr:`is_sip` before using the SIP fields.
    ``user``, ``password``, ``host`` and parameter values are stored as
    received (still %-escaped).
    """

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    opaque: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse an absolute URI; raise :class:`SipError` if it is malformed."""
        if not text:
            raise SipError("empty URI")
        if not _URI_FORBIDDEN.isdisjoint(text):
            raise SipError(f"illegal character (space, quote, '<' or '>') in URI {text!r}")
        scheme, colon, rest = text.partition(":")
        if not colon or not scheme or not scheme[0].isalpha() or not _SCHEME_CHARS.issuperset(scheme):
            raise SipError(f"invalid URI scheme in {text!r}")
        scheme = scheme.lower()
        if not rest:
            raise SipError(f"empty URI after scheme in {text!r}")
        if scheme not in ("sip", "sips"):
            return cls(scheme=scheme, opaque=rest)

        user: str | None = None
        password: str | None = None
        at = rest.find("@")
        if at != -1:
            userinfo, rest = rest[:at], rest[at + 1 :]
            user, colon, pw = userinfo.partition(":")
            if not user:
                raise SipError(f"empty user part in URI {text!r}")
            if not _USER_CHARS.issuperset(user):
                raise SipError(f"invalid character in user part of URI {text!r}")
            _check_escapes(user, "URI user part")
            if colon:
                if not _PASSWORD_CHARS.issuperset(pw):
                    raise SipError(f"invalid character in password of URI {text!r}")
                _check_escapes(pw, "URI password")
                password = pw

        rest, qmark, header_text = rest.partition("?")
        hostport, semi, param_text = rest.partition(";")
        host, port = parse_hostport(hostport, f"URI {text!r}")
        params: dict[str, str | None] = {}
        if semi:
            params = parse_params(param_text, f"URI {text!r}")
            for name, value in params.items():
                if not _PARAM_CHARS.issuperset(name) or (value is not None and not _PARAM_CHARS.issuperset(value)):
                    raise SipError(f"invalid character in URI parameter {name!r} of {text!r}")
                _check_escapes(name if value is None else name + value, "URI parameter")
        headers: dict[str, str] = {}
        if qmark:
            for item in header_text.split("&"):
                hname, eq, hvalue = item.partition("=")
                if not hname or not eq or not _HEADER_CHARS.issuperset(hname) or not _HEADER_CHARS.issuperset(hvalue):
                    raise SipError(f"invalid URI header {item!r} in {text!r}")
                _check_escapes(item, "URI header")
                headers[hname] = hvalue
        return cls(scheme, user, password, host, port, params, headers)

    @property
    def is_sip(self) -> bool:
        return self.scheme in ("sip", "sips")

    @property
    def user_unescaped(self) -> str | None:
        """The %-decoded user part, e.g. the dialled number routing compares."""
        if self.user is None or "%" not in self.user:
            return self.user
        return unquote(self.user)

    @property
    def hostport(self) -> tuple[str, int]:
        """Host without IPv6 brackets and the port, defaulted per scheme."""
        if not self.is_sip:
            raise SipError(f"{self.scheme!r} URI has no host to contact", 416)
        port = self.port if self.port is not None else (5061 if self.scheme == "sips" else 5060)
        return self.host.strip("[]"), port

    def equivalent(self, other: SipUri) -> bool:
        """URI comparison of RFC 3261 19.1.4 (escapes decoded, host case folded).

        ``user``, ``ttl``, ``method``, ``maddr`` and ``transport`` parameters
        must match if either side has them; other parameters only if both do.
        """
        if self.scheme != other.scheme:
            return False
        if not self.is_sip:
            return unquote(self.opaque or "").lower() == unquote(other.opaque or "").lower()
        if self.user_unescaped != other.user_unescaped or self.password != other.password:
            return False
        if unquote(self.host).lower() != unquote(other.host).lower() or self.port != other.port:
            return False
        mine = {k: None if v is None else unquote(v).lower() for k, v in self.params.items()}
        theirs = {k: None if v is None else unquote(v).lower() for k, v in other.params.items()}
        for name in ("user", "ttl", "method", "maddr", "transport"):
            if mine.get(name) != theirs.get(name):
                return False
        for name in mine.keys() & theirs.keys():
            if mine[name] != theirs[name]:
                return False
        mine_h = {k.lower(): unquote(v) for k, v in self.headers.items()}
        theirs_h = {k.lower(): unquote(v) for k, v in other.headers.items()}
        return mine_h == theirs_h

    def __str__(self) -> str:
        if not self.is_sip:
            return f"{self.scheme}:{self.opaque}"
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += [":", self.password]
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out += [":", str(self.port)]
        out.append(_format_params(self.params))
        if self.headers:
            out += ["?", "&".join(f"{k}={v}" for k, v in self.headers.items())]
        return "".join(out)


@dataclass
class NameAddr:
    """A From/To/Contact/Route value: optional display name, URI, header params."""

    uri: SipUri
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Parse ``[display] <uri>;params`` or bare ``uri;params``.

        In the bare form every ``;param`` belongs to the header (RFC 3261
        20.10), and a URI with ',' or '?' must not appear bare (RFC 4475
        regbadct).  Whitespace inside ``<...>`` is tolerated (RFC 4475
        badaspec allows being liberal here).
        """
        text = text.strip(" \t")
        if not text:
            raise SipError("empty name-addr")
        display: str | None = None
        if text[0] == '"':
            end = _skip_quoted(text, 0)
            display = _unquote(text[:end])
            rest = text[end:].lstrip(" \t")
            if not rest.startswith("<"):
                raise SipError(f"quoted display name not followed by '<uri>' in {text!r}")
            lt = 0
        else:
            rest = text
            lt = text.find("<")
            if lt != -1:
                words = text[:lt].split()
                for word in words:
                    if not is_token(word):
                        raise SipError(f"display name must be tokens or a quoted string: {text[:lt]!r}")
                display = " ".join(words) or None
        if lt != -1:
            gt = rest.find(">", lt + 1)
            if gt == -1:
                raise SipError(f"unterminated '<' in {text!r}")
            uri = SipUri.parse(rest[lt + 1 : gt].strip(" \t"))
            tail = rest[gt + 1 :].strip(" \t")
        else:
            uri_text, semi, param_text = text.partition(";")
            uri_text = uri_text.rstrip(" \t")
            if "," in uri_text or "?" in uri_text:
                raise SipError(f"URI with ',' or '?' must be enclosed in '<>': {text!r}")
            uri = SipUri.parse(uri_text)
            tail = semi + param_text
        params: dict[str, str | None] = {}
        if tail:
            if tail[0] != ";":
                raise SipError(f"unexpected text after URI: {tail!r}")
            params = parse_params(tail[1:], "name-addr")
        return cls(uri, display, params)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def with_tag(self, tag: str) -> NameAddr:
        """A copy with the ``tag`` parameter set (the original is untouched)."""
        if not is_token(tag):
            raise SipError(f"tag must be a token: {tag!r}")
        return replace(self, params={**self.params, "tag": tag})

    def __str__(self) -> str:
        prefix = f"{_quote(self.display_name)} " if self.display_name is not None else ""
        return f"{prefix}<{self.uri}>{_format_params(self.params)}"


@dataclass
class Via:
    """One Via element (``SIP/2.0/transport sent-by;params``)."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse one via-parm; LWS around '/', ';' and '=' is allowed."""
        parts = text.split("/", 2)
        if len(parts) != 3:
            raise SipError(f"Via lacks 'SIP/2.0/transport': {text!r}")
        name, version = parts[0].strip(" \t"), parts[1].strip(" \t")
        if name.upper() != "SIP" or not is_token(version):
            raise SipError(f"invalid Via sent-protocol: {text!r}")
        rest = parts[2].lstrip(" \t")
        space = 0
        while space < len(rest) and rest[space] not in " \t":
            space += 1
        transport = rest[:space].upper()
        if not is_token(transport):
            raise SipError(f"invalid Via transport in {text!r}")
        sent_by, semi, param_text = rest[space:].partition(";")
        pieces = sent_by.split()
        # LWS is only legal around the ':' of sent-by ("host : 5060").
        for i in range(1, len(pieces)):
            if not (pieces[i].startswith(":") or pieces[i - 1].endswith(":")):
                raise SipError(f"unexpected whitespace in Via sent-by: {sent_by.strip()!r}")
        host, port = parse_hostport("".join(pieces), f"Via {text!r}")
        params = parse_params(param_text, "Via") if semi else {}
        return cls(transport, host, port, params)

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        """The filled-in ``rport`` value (RFC 3581), None if absent or empty."""
        value = self.params.get("rport")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def wants_rport(self) -> bool:
        """The client asked for symmetric response routing (bare ``;rport``)."""
        return "rport" in self.params

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{_format_params(self.params)}"
