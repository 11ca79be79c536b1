"""RFC 3261 message model, parser and serializer (sans-I/O).

``parse_message`` handles one datagram; ``StreamParser`` frames messages on a
byte stream (TCP/TLS) by Content-Length.  Both raise only :class:`SipError`
(a ``ValueError``) carrying the status a UAS should answer with.

Headers are stored as raw field values.  The fields every transaction and
dialog needs (CSeq, top Via, From, To) are parsed once during validation and
cached; everything else (other Vias, Contact...) is parsed on first access.
The cache lives in :class:`Headers` and is dropped on any mutation.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from sip_bridge.uri import NameAddr, SecurityError, SipError, SipUri, Via, is_token, split_quoted

__all__ = [
    "MAX_MESSAGE_SIZE",
    "MAX_HEADERS",
    "MAX_LINE_LENGTH",
    "MAX_MAX_FORWARDS",
    "DEFAULT_MAX_FORWARDS",
    "SipError",
    "SecurityError",
    "Headers",
    "SipMessage",
    "SipRequest",
    "SipResponse",
    "parse_message",
    "StreamParser",
    "make_response",
    "REASON_PHRASES",
    "generate_tag",
    "generate_branch",
    "generate_call_id",
    "BRANCH_MAGIC_COOKIE",
]

MAX_MESSAGE_SIZE = 65_535
"""Bytes in one whole message (start line, headers and body)."""
MAX_HEADERS = 128
"""Header fields in one message (after unfolding)."""
MAX_LINE_LENGTH = 8_192
"""Characters in one header field after unfolding continuation lines."""
MAX_MAX_FORWARDS = 255
"""Largest Max-Forwards accepted (RFC 4475 scalar02 treats more as malformed)."""
DEFAULT_MAX_FORWARDS = 70
"""Max-Forwards assumed when an (RFC 2543 era) request omits it."""
BRANCH_MAGIC_COOKIE = "z9hG4bK"

_MAX_CSEQ = 2**32 - 1

# RFC 3261 7.3.3, RFC 3265 (o, u), RFC 3515 (r), RFC 3892 (b), RFC 4028 (x),
# RFC 3841 (a, j, d), RFC 4474 (y, n).
_COMPACT = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

# Headers whose ABNF is a comma-separated list; only these are split by get_all.
_LIST_HEADERS = (
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info",
    "Allow", "Allow-Events", "Call-Info", "Contact", "Content-Encoding",
    "Content-Language", "Diversion", "Error-Info", "History-Info", "In-Reply-To",
    "P-Asserted-Identity", "P-Preferred-Identity", "Path", "Proxy-Require", "Reason",
    "Record-Route", "Reject-Contact", "Request-Disposition", "Require", "Route",
    "Security-Client", "Security-Server", "Security-Verify", "Service-Route",
    "Supported", "Unsupported", "Via", "Warning",
)
_OTHER_HEADERS = (
    "Authentication-Info", "Authorization", "Call-ID", "Content-Disposition",
    "Content-Length", "Content-Type", "CSeq", "Date", "Event", "Expires", "From",
    "Identity", "Identity-Info", "Max-Forwards", "MIME-Version", "Min-Expires", "Min-SE",
    "Organization", "Priority", "Privacy", "Proxy-Authenticate", "Proxy-Authorization",
    "RAck", "Refer-To", "Referred-By", "Replaces", "Reply-To", "Retry-After", "RSeq",
    "Server", "Session-Expires", "SIP-ETag", "SIP-If-Match", "Subject",
    "Subscription-State", "Timestamp", "To", "User-Agent", "WWW-Authenticate",
)
_CANONICAL: dict[str, str] = {name.lower(): name for name in _LIST_HEADERS + _OTHER_HEADERS}
_CANONICAL.update(_COMPACT)
_LIST_KEYS = frozenset(name.lower() for name in _LIST_HEADERS)
_SINGLE_KEYS = ("to", "from", "call-id", "cseq", "max-forwards")
_REQUIRED = ("to", "from", "cseq", "call-id", "via")

REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 420: "Bad Extension", 421: "Extension Required",
    422: "Session Interval Too Small", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete",
    485: "Ambiguous", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 491: "Request Pending",
    493: "Undecipherable", 494: "Security Agreement Required",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

_T = TypeVar("_T")


@functools.lru_cache(maxsize=4096)
def _canonical(name: str) -> tuple[str, str]:
    """(lookup key, display name); unknown names keep their received spelling."""
    low = name.lower()
    canon = _CANONICAL.get(low)
    if canon is None:
        return low, name
    return canon.lower(), canon


class Headers:
    """Ordered, case-insensitive multi-map of header fields.

    Compact names are normalised to full canonical names on insertion.
    Values are the raw field values (whitespace stripped, folding removed).
    """

    __slots__ = ("_fields", "_cache")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str, str]] = []
        self._cache: dict[str, object] = {}
        for name, value in items:
            self.add(name, value)

    def get(self, name: str, default: str | None = None) -> str | None:
        """First field value of ``name`` (unsplit), or ``default``."""
        key = _canonical(name)[0]
        for k, _, value in self._fields:
            if k == key:
                return value
        return default

    def values(self, name: str) -> list[str]:
        """Every field value of ``name`` as received (one per header line)."""
        key = _canonical(name)[0]
        return [value for k, _, value in self._fields if k == key]

    def get_all(self, name: str) -> list[str]:
        """Every element of ``name``; list-type headers are split on commas.

        Commas inside quoted strings and ``<...>`` do not split.  Headers whose
        grammar is not a list (WWW-Authenticate, Date, unknown headers...) are
        returned one value per field.  Raises :class:`SipError` on an
        unterminated quote or bracket.
        """
        key = _canonical(name)[0]
        values = [value for k, _, value in self._fields if k == key]
        if key not in _LIST_KEYS:
            return values
        out: list[str] = []
        for value in values:
            if "," not in value:
                if value:
                    out.append(value)
                continue
            for element in split_quoted(value, ","):
                element = element.strip(" \t")
                if element:
                    out.append(element)
        return out

    def add(self, name: str, value: str) -> None:
        """Append a field."""
        key, canon = _canonical(name)
        self._fields.append((key, canon, value.strip(" \t")))
        self._cache.clear()

    def set(self, name: str, value: str) -> None:
        """Replace all fields of ``name`` by one, at the position of the first."""
        key, canon = _canonical(name)
        new = (key, canon, value.strip(" \t"))
        fields: list[tuple[str, str, str]] = []
        placed = False
        for item in self._fields:
            if item[0] != key:
                fields.append(item)
            elif not placed:
                fields.append(new)
                placed = True
        if not placed:
            fields.append(new)
        self._fields = fields
        self._cache.clear()

    def remove(self, name: str) -> None:
        """Delete every field of ``name`` (no error if absent)."""
        key = _canonical(name)[0]
        self._fields = [item for item in self._fields if item[0] != key]
        self._cache.clear()

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _canonical(name)[0]
        return any(k == key for k, _, _ in self._fields)

    def items(self) -> list[tuple[str, str]]:
        """(canonical name, value) pairs in order."""
        return [(canon, value) for _, canon, value in self._fields]

    def copy(self) -> Headers:
        clone = Headers()
        clone._fields = list(self._fields)
        return clone

    def memo(self, key: str, factory: Callable[[], _T]) -> _T:
        """Return ``factory()`` cached under ``key`` until the headers change."""
        try:
            return self._cache[key]  # type: ignore[return-value]
        except KeyError:
            value = factory()
            self._cache[key] = value
            return value

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self.items() == other.items()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"


def _parse_cseq(value: str) -> tuple[int, str]:
    parts = value.split()
    if len(parts) != 2:
        raise SipError(f"malformed CSeq {value!r}: expected 'number method'")
    number, method = parts
    digits = number.lstrip("0")
    if not number.isascii() or not number.isdigit() or len(digits) > 10 or int(number) > _MAX_CSEQ:
        raise SipError(f"CSeq number must be a 32-bit unsigned integer: {number!r}")
    if not is_token(method):
        raise SipError(f"invalid CSeq method {method!r}")
    return int(number), method


class SipMessage:
    """Accessors shared by requests and responses (parsed lazily, cached)."""

    headers: Headers
    body: bytes

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipError(f"missing {name} header")
        return value

    @property
    def call_id(self) -> str:
        value = self._required("Call-ID")
        if not value:
            raise SipError("empty Call-ID header")
        return value

    @property
    def cseq(self) -> tuple[int, str]:
        """(sequence number, method) of the CSeq header."""
        return self.headers.memo("cseq", lambda: _parse_cseq(self._required("CSeq")))

    @property
    def vias(self) -> list[Via]:
        return self.headers.memo("vias", lambda: [Via.parse(v) for v in self.headers.get_all("Via")])

    @property
    def top_via(self) -> Via:
        def first() -> Via:
            value = split_quoted(self._required("Via"), ",")[0].strip(" \t")
            return Via.parse(value)

        return self.headers.memo("top_via", first)

    @property
    def from_addr(self) -> NameAddr:
        return self.headers.memo("from", lambda: NameAddr.parse(self._required("From")))

    @property
    def to_addr(self) -> NameAddr:
        return self.headers.memo("to", lambda: NameAddr.parse(self._required("To")))

    @property
    def from_tag(self) -> str | None:
        return self.from_addr.tag

    @property
    def to_tag(self) -> str | None:
        return self.to_addr.tag

    @property
    def contact(self) -> list[NameAddr]:
        """Contact values; empty when absent or the REGISTER wildcard ``*``."""

        def build() -> list[NameAddr]:
            values = self.headers.get_all("Contact")
            if values == ["*"]:
                return []
            return [NameAddr.parse(v) for v in values]

        return self.headers.memo("contact", build)

    @property
    def content_type(self) -> str | None:
        """Lowercased media type without parameters, e.g. ``application/sdp``."""
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.partition(";")[0].strip(" \t").lower() or None

    @property
    def max_forwards(self) -> int:
        """Max-Forwards, or 70 when absent (RFC 2543 peers omit it)."""

        def build() -> int:
            value = self.headers.get("Max-Forwards")
            if value is None:
                return DEFAULT_MAX_FORWARDS
            if not value.isascii() or not value.isdigit() or len(value.lstrip("0")) > 3:
                raise SipError(f"invalid Max-Forwards {value!r}")
            number = int(value)
            if number > MAX_MAX_FORWARDS:
                raise SipError(f"Max-Forwards {number} exceeds {MAX_MAX_FORWARDS}")
            return number

        return self.headers.memo("max_forwards", build)

    def _start_line(self) -> str:
        raise NotImplementedError

    def to_bytes(self) -> bytes:
        """Serialise with CRLF line ends and a Content-Length matching the body."""
        lines = [self._start_line()]
        length = str(len(self.body))
        wrote_length = False
        for key, name, value in self.headers._fields:
            if key == "content-length":
                if wrote_length:
                    continue
                wrote_length = True
                value = length
            lines.append(f"{name}: {value}")
        if not wrote_length:
            lines.append(f"Content-Length: {length}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body


@dataclass(eq=True)
class SipRequest(SipMessage):
    method: str
    uri: SipUri
    headers: Headers
    body: bytes = b""
    version: str = "SIP/2.0"

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"


@dataclass(eq=True)
class SipResponse(SipMessage):
    status: int
    reason: str
    headers: Headers
    body: bytes = b""
    version: str = "SIP/2.0"

    def _start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"


# --- parsing -------------------------------------------------------------


def _find_head_end(data: bytes | bytearray) -> tuple[int, int]:
    """(index, separator length) of the blank line ending the headers, or (-1, 0).

    Bare-LF line ends are accepted for robustness; CRLF is what we send.
    """
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if lf != -1 and (crlf == -1 or lf < crlf):
        return lf, 2
    if crlf != -1:
        return crlf, 4
    return -1, 0


def _check_version(text: str) -> str:
    upper = text.upper()
    if upper == "SIP/2.0":
        return "SIP/2.0"
    major, dot, minor = upper[4:].partition(".")
    if upper.startswith("SIP/") and dot and major.isdigit() and minor.isdigit():
        raise SipError(f"unsupported SIP version {text!r}", 505)
    raise SipError(f"malformed SIP version {text!r}")


def _parse_start_line(line: str) -> tuple[str, SipUri | None, int, str]:
    """(method, uri, 0, "") for a request or ("", None, status, reason)."""
    if line[:4].upper() == "SIP/":
        version, _, rest = line.partition(" ")
        _check_version(version)
        code, _, reason = rest.partition(" ")
        if len(code) != 3 or not code.isascii() or not code.isdigit() or not 100 <= int(code) <= 699:
            raise SipError(f"invalid status code {code[:20]!r} in Status-Line")
        return "", None, int(code), reason
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipError(f"malformed Request-Line {line[:200]!r}: expected 'METHOD SP Request-URI SP SIP/2.0'")
    method, uri_text, version = parts
    if not is_token(method):
        raise SipError(f"invalid method {method[:50]!r}")
    _check_version(version)
    uri = SipUri.parse(uri_text)
    if uri.headers:
        raise SipError("Request-URI must not contain headers ('?')")
    return method, uri, 0, ""


def _parse_header_lines(lines: list[str]) -> Headers:
    fields: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not fields:
                raise SipError("continuation line before the first header")
            fields[-1] = fields[-1].rstrip(" \t") + " " + line.strip(" \t")
            if len(fields[-1]) > MAX_LINE_LENGTH:
                raise SecurityError(f"header line longer than {MAX_LINE_LENGTH} characters")
        else:
            if len(fields) == MAX_HEADERS:
                raise SecurityError(f"more than {MAX_HEADERS} header fields")
            if len(line) > MAX_LINE_LENGTH:
                raise SecurityError(f"header line longer than {MAX_LINE_LENGTH} characters")
            fields.append(line)
    headers = Headers()
    append = headers._fields.append
    for text in fields:
        name, colon, value = text.partition(":")
        if not colon:
            raise SipError(f"header line without ':': {text[:80]!r}")
        name = name.rstrip(" \t")
        if not is_token(name):
            raise SipError(f"header name is not a token: {name[:80]!r}")
        key, canon = _canonical(name)
        append((key, canon, value.strip(" \t")))
    return headers


def _content_lengths(values: list[str]) -> int | None:
    """The one Content-Length value, or None; 400 on bad or conflicting values."""
    if not values:
        return None
    if len(set(values)) > 1:
        raise SipError(f"conflicting Content-Length headers: {', '.join(values)[:80]}")
    value = values[0]
    if not value.isascii() or not value.isdigit() or len(value.lstrip("0")) > 10:
        raise SipError(f"invalid Content-Length {value[:20]!r}")
    return int(value)


def _validate(msg: SipRequest | SipResponse) -> None:
    """Mandatory-header checks; also warms the caches every layer reads."""
    counts: dict[str, int] = {}
    for key, _, _ in msg.headers._fields:
        counts[key] = counts.get(key, 0) + 1
    for key in _REQUIRED:
        if key not in counts:
            raise SipError(f"missing mandatory {_CANONICAL[key]} header")
    for key in _SINGLE_KEYS:
        if counts.get(key, 0) > 1:
            raise SipError(f"multiple {_CANONICAL[key]} headers")
    msg.call_id
    _, method = msg.cseq
    if isinstance(msg, SipRequest) and method != msg.method:
        raise SipError(f"CSeq method {method!r} does not match request method {msg.method!r}")
    msg.top_via
    msg.from_addr
    msg.to_addr
    msg.max_forwards


def _parse(data: bytes | bytearray) -> SipRequest | SipResponse:
    if len(data) > MAX_MESSAGE_SIZE:
        raise SecurityError(f"message larger than {MAX_MESSAGE_SIZE} bytes", 413)
    data = bytes(data).lstrip(b"\r\n")  # RFC 3261 7.5: CRLFs before the start line
    if not data:
        raise SipError("empty message")
    end, sep = _find_head_end(data)
    if end == -1:
        raise SipError("no empty line after the headers")
    lines = data[:end].decode("utf-8", "surrogateescape").split("\n")
    for i, line in enumerate(lines):
        if line.endswith("\r"):
            line = line[:-1]
            lines[i] = line
        if "\r" in line:
            raise SipError("bare CR inside a header line")
    method, uri, status, reason = _parse_start_line(lines[0])
    headers = _parse_header_lines(lines[1:])
    body = data[end + sep :]
    length = _content_lengths(headers.values("Content-Length"))
    if length is not None:
        if length > len(body):
            raise SipError(f"Content-Length {length} exceeds the {len(body)} body bytes received")
        # RFC 3261 18.3: octets past Content-Length in a datagram are discarded.
        body = body[:length]
    msg: SipRequest | SipResponse
    if uri is not None:
        msg = SipRequest(method, uri, headers, body)
    else:
        msg = SipResponse(status, reason, headers, body)
    _validate(msg)
    return msg


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """Parse and validate one datagram.

    Raises :class:`SipError` (status 400, or 505 for another SIP version) or
    :class:`SecurityError` (413 for an oversized message, 400 for too many or
    too long header lines); nothing else.
    """
    return _parse(data)


def _sniff_content_length(head: bytes) -> int:
    """Content-Length from a raw header block, for stream framing only."""
    values: list[str] = []
    for line in head.split(b"\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip(b" \t").lower() in (b"content-length", b"l"):
            values.append(value.strip(b" \t\r").decode("ascii", "replace"))
    length = _content_lengths(values)
    if length is None:
        raise SipError("Content-Length is mandatory on stream transports")
    return length


class StreamParser:
    """Frames SIP messages on a byte stream (RFC 3261 18.3).

    CRLF keep-alives (RFC 5626 3.5.1) between messages are skipped.  A message
    that is framed correctly but invalid does not kill the connection: it is
    dropped and its error appended to :attr:`rejected` for the caller to log
    or answer.  Errors that lose the framing (no or bad Content-Length,
    oversized message) raise :class:`SipError`; the caller must then close.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        #: Framed messages that failed to parse, with their error, until the caller takes them.
        self.rejected: list[tuple[bytes, SipError]] = []

    def feed(self, data: bytes) -> list[SipRequest | SipResponse]:
        """Add received bytes; return every message completed by them."""
        buf = self._buffer
        buf += data
        messages: list[SipRequest | SipResponse] = []
        while True:
            skip = 0
            while skip < len(buf) and buf[skip] in (10, 13):
                skip += 1
            if skip:
                del buf[:skip]
            if not buf:
                break
            end, sep = _find_head_end(buf)
            if end == -1:
                if len(buf) > MAX_MESSAGE_SIZE:
                    raise SecurityError(f"header section larger than {MAX_MESSAGE_SIZE} bytes", 413)
                break
            total = end + sep + _sniff_content_length(bytes(buf[:end]))
            if total > MAX_MESSAGE_SIZE:
                raise SecurityError(f"message larger than {MAX_MESSAGE_SIZE} bytes", 413)
            if len(buf) < total:
                break
            raw = bytes(buf[:total])
            del buf[:total]
            try:
                messages.append(_parse(raw))
            except SipError as exc:
                self.rejected.append((raw, exc))
        return messages


# --- building ------------------------------------------------------------


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> SipResponse:
    """Build a response to ``request`` per RFC 3261 8.2.6.

    Copies every Via (in order), From, To, Call-ID and CSeq, plus Record-Route
    for 101-299 responses (dialog-establishing).  ``to_tag`` is added to To
    only if the request's To has no tag (in-dialog requests keep theirs).
    """
    if not 100 <= status <= 699:
        raise ValueError(f"status code out of range: {status}")
    if reason is None:
        reason = REASON_PHRASES.get(status, "Unknown")
    out = Headers()
    req = request.headers
    for value in req.values("Via"):
        out.add("Via", value)
    out.add("From", request._required("From"))
    to_value = request._required("To")
    if to_tag is not None and request.to_tag is None:
        if not is_token(to_tag):
            raise ValueError(f"to_tag must be a token: {to_tag!r}")
        to_value = f"{to_value};tag={to_tag}"
    out.add("To", to_value)
    out.add("Call-ID", request.call_id)
    out.add("CSeq", request._required("CSeq"))
    if 101 <= status <= 299:
        for value in req.values("Record-Route"):
            out.add("Record-Route", value)
    for name, value in (headers or {}).items():
        out.add(name, value)
    if content_type is not None:
        out.set("Content-Type", content_type)
    return SipResponse(status, reason, out, body)


def generate_tag() -> str:
    """A random From/To tag (64 bits, hex)."""
    return os.urandom(8).hex()


def generate_branch() -> str:
    """A random RFC 3261 branch (magic cookie + 96 bits)."""
    return BRANCH_MAGIC_COOKIE + os.urandom(12).hex()


def generate_call_id(host: str) -> str:
    """A globally unique Call-ID ``random@host``."""
    return f"{os.urandom(12).hex()}@{host}"
