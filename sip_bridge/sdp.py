"""SDP (RFC 4566) parsing and serialization, and RFC 3264 offer/answer for one
G.711 audio stream with RFC 4733 telephone-events, in the clear or with SRTP
keyed by SDES (RFC 4568 ``a=crypto`` lines, ``RTP/SAVP``).

The parser is lenient where real phones are sloppy (LF-only line ends, blank
lines, unknown or out-of-order lines, missing s=/t=) and strict where a wrong
guess would send media to the wrong place (origin, connection, media lines).
A crypto line we cannot use (malformed, another suite, MKI, session parameters)
is skipped as RFC 4568 7.1.2 asks; a secure stream left without one is refused
like a stream without a common codec (488).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_SDP_SIZE = 65_536
MAX_MEDIA = 16

CODECS = {"PCMU": 0, "PCMA": 8}
CLOCK_RATE = 8000
TELEPHONE_EVENT = "telephone-event"
DEFAULT_PTIME = 20
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# RTP/AVPF is plain RTP plus feedback we may ignore; the S variants are SRTP (RFC 3711).
SUPPORTED_PROTOS = ("RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF")
SECURE_PROTOS = ("RTP/SAVP", "RTP/SAVPF")
#: SDES crypto suites we do (RFC 4568 6.2) and their master key + salt length in bytes;
#: the first is the one we offer.
SRTP_SUITES = {"AES_CM_128_HMAC_SHA1_80": 30, "AES_CM_128_HMAC_SHA1_32": 30}
MAX_CRYPTO_LINE = 1024
_CRYPTO_TAG = re.compile(r"[0-9]{1,9}")
_LIFETIME = re.compile(r"(?:2\^([0-9]{1,2})|([0-9]{1,15}))")
HOLD_ADDRESSES = ("0.0.0.0", "::")  # RFC 2543 / RFC 3264 8.4 "c=0.0.0.0" hold
# RFC 3551 table 4: static payload types, to read offers that omit rtpmap lines.
STATIC_PAYLOAD_TYPES = {
    0: ("PCMU", 8000), 3: ("GSM", 8000), 4: ("G723", 8000), 8: ("PCMA", 8000),
    9: ("G722", 8000), 18: ("G729", 8000),
}


class SdpError(ValueError):
    """Malformed or unusable SDP."""


class NoCommonCodec(SdpError):
    """No audio stream can be negotiated: the caller answers 488 Not Acceptable Here."""


@dataclass(frozen=True)
class Crypto:
    """One ``a=crypto`` line (RFC 4568 9.1) as far as we use it: a tag, a suite we do and
    one inline master key + salt.  Lifetimes are accepted and ignored (a call never sends
    2^31 packets); MKIs and session parameters make a line unusable (:meth:`parse` raises)."""

    tag: int
    suite: str
    key: bytes = field(repr=False)

    @classmethod
    def parse(cls, value: str) -> Crypto:
        """``<tag> <suite> inline:<base64 key||salt>[|lifetime]``; SdpError says what is wrong."""
        if len(value) > MAX_CRYPTO_LINE:
            raise SdpError(f"a=crypto longer than {MAX_CRYPTO_LINE} characters")
        fields = value.split()
        if len(fields) < 3:
            raise SdpError(f"a=crypto must be '<tag> <suite> <key-params>', got {value[:80]!r}")
        tag, suite, key_params, *session_params = fields
        if not _CRYPTO_TAG.fullmatch(tag):
            raise SdpError(f"a=crypto tag must be 1-9 digits, got {tag[:20]!r}")
        if suite not in SRTP_SUITES:
            raise SdpError(f"crypto suite {suite[:40]!r} not supported (we do {', '.join(SRTP_SUITES)})")
        if session_params:  # RFC 4568 6.3: one we do not understand makes the line unusable
            raise SdpError(f"crypto session parameters not supported: {' '.join(session_params)[:60]!r}")
        if ";" in key_params:
            raise SdpError("several keys in one a=crypto line (needs MKI, not supported)")
        method, _, info = key_params.partition(":")
        if method != "inline":
            raise SdpError(f"crypto key method must be 'inline', got {method[:20]!r}")
        encoded, *extras = info.split("|")
        if len(extras) >= 2 or (extras and ":" in extras[0]):  # [lifetime] then MKI:length
            raise SdpError("crypto MKI not supported")
        if extras:
            lifetime = _LIFETIME.fullmatch(extras[0])
            if lifetime is None or (lifetime.group(1) is not None and int(lifetime.group(1)) > 48):
                raise SdpError(f"crypto key lifetime must be 2^n (n <= 48) or a number, got {extras[0][:20]!r}")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SdpError("crypto key is not valid base64") from None
        if len(key) != SRTP_SUITES[suite]:
            raise SdpError(f"crypto key for {suite} must be {SRTP_SUITES[suite]} bytes, got {len(key)}")
        return cls(int(tag), suite, key)

    @property
    def value(self) -> str:
        """The attribute value (after ``a=crypto:``)."""
        return f"{self.tag} {self.suite} inline:{base64.b64encode(self.key).decode('ascii')}"


@dataclass(frozen=True)
class SrtpParams:
    """Negotiated SDES keys of one stream: ours protects what we send, theirs what we receive."""

    suite: str
    local_key: bytes = field(repr=False)
    remote_key: bytes = field(repr=False)


def new_srtp_key(suite: str = next(iter(SRTP_SUITES))) -> bytes:
    """A fresh master key + salt for ``suite`` (from the OS's CSPRNG)."""
    return os.urandom(SRTP_SUITES[suite])


def _cryptos(md: MediaDescription) -> tuple[list[Crypto], list[str]]:
    """The usable a=crypto lines of a section in order, and why the others were skipped."""
    usable, skipped = [], []
    for name, value in md.attributes:
        if name != "crypto":
            continue
        try:
            usable.append(Crypto.parse(value or ""))
        except SdpError as exc:
            skipped.append(str(exc))
    return usable, skipped


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _parse_connection(value: str) -> str:
    fields = value.split()
    if len(fields) != 3 or fields[0] != "IN":
        raise SdpError(f"c= must be 'IN <addrtype> <address>', got {value!r}")
    # drop a multicast "/ttl" suffix: we only do unicast
    return fields[2].split("/", 1)[0]


def _parse_rtpmap(value: str) -> tuple[int, str, int]:
    pt_text, _, encoding = value.partition(" ")
    parts = encoding.strip().split("/")
    if not pt_text.isdigit() or int(pt_text) > 127:
        raise SdpError(f"a=rtpmap payload type must be 0-127, got {value!r}")
    if len(parts) < 2 or not parts[0] or not parts[1].isdigit():
        raise SdpError(f"a=rtpmap must be '<pt> <encoding>/<clock rate>', got {value!r}")
    return int(pt_text), parts[0], int(parts[1])


def _direction_attribute(attributes: list[tuple[str, str | None]]) -> str | None:
    found = None
    for name, _ in attributes:
        if name in DIRECTIONS:
            found = name
    return found


@dataclass
class MediaDescription:
    """One m= section. ``attributes`` keeps order and duplicates; value None
    is a flag attribute such as ``a=sendonly``."""

    media: str
    port: int
    proto: str
    formats: list[str]
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    connection: str | None = None

    def attribute(self, name: str) -> str | None:
        """Value of the first attribute called ``name`` (None if absent or a flag)."""
        return next((value for key, value in self.attributes if key == name), None)

    @property
    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """Explicit a=rtpmap lines: payload type -> (encoding name, clock rate)."""
        result: dict[int, tuple[str, int]] = {}
        for name, value in self.attributes:
            if name == "rtpmap" and value is not None:
                pt, encoding, rate = _parse_rtpmap(value)
                result[pt] = (encoding, rate)
        return result

    @property
    def payload_map(self) -> dict[int, tuple[str, int]]:
        """Every numeric format we can name, from rtpmap or the static table, in m= order."""
        explicit = self.rtpmap
        result: dict[int, tuple[str, int]] = {}
        for fmt in self.formats:
            if fmt.isdigit():
                known = explicit.get(int(fmt)) or STATIC_PAYLOAD_TYPES.get(int(fmt))
                if known is not None:
                    result[int(fmt)] = known
        return result

    @property
    def fmtp(self) -> dict[int, str]:
        result: dict[int, str] = {}
        for name, value in self.attributes:
            if name == "fmtp" and value is not None:
                pt_text, _, params = value.partition(" ")
                if not pt_text.isdigit():
                    raise SdpError(f"a=fmtp must start with a payload type, got {value!r}")
                result[int(pt_text)] = params.strip()
        return result

    @property
    def direction(self) -> str:
        """This section's own direction attribute; see ``SessionDescription.direction_of``."""
        return _direction_attribute(self.attributes) or "sendrecv"

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        if value is None:
            return None
        if not value.strip().isdigit() or int(value) == 0:
            raise SdpError(f"a=ptime must be a positive integer, got {value!r}")
        return int(value)

    def _validate(self) -> None:
        """Fail at parse time, not mid-call: these properties raise SdpError on bad values."""
        _ = (self.rtpmap, self.fmtp, self.ptime)


def _parse_media(value: str) -> MediaDescription:
    fields = value.split()
    if len(fields) < 3:
        raise SdpError(f"m= must be '<media> <port> <proto> <fmt> ...', got {value!r}")
    port_text = fields[1].split("/", 1)[0]  # "<port>/<number of ports>"
    if not port_text.isdigit() or int(port_text) > 65535:
        raise SdpError(f"m= port must be 0-65535, got {fields[1]!r}")
    return MediaDescription(fields[0], int(port_text), fields[2], fields[3:])


@dataclass
class SessionDescription:
    version: int = 0
    username: str = "-"
    sess_id: int = 0
    sess_version: int = 0
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"
    session_name: str = "-"
    connection: str | None = None
    timing: tuple[int, int] = (0, 0)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str | bytes) -> SessionDescription:
        if len(text) > MAX_SDP_SIZE:
            raise SdpError(f"SDP too large ({len(text)} bytes, limit {MAX_SDP_SIZE})")
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SdpError(f"SDP is not valid UTF-8 (byte {exc.start})") from None
        session = cls()
        seen: set[str] = set()
        current: MediaDescription | None = None
        for number, raw in enumerate(text.split("\n"), 1):
            line = raw.rstrip("\r")
            if not line.strip():
                continue
            try:
                if len(line) < 2 or line[1] != "=":
                    raise SdpError(f"expected '<type>=<value>', got {line!r}")
                kind, value = line[0], line[2:]
                if not seen and kind != "v":
                    raise SdpError(f"SDP must start with v=, got {line!r}")
                current = session._parse_line(kind, value, seen, current)
            except SdpError as exc:
                raise SdpError(f"line {number}: {exc}") from None
            seen.add(kind)
        if not seen:
            raise SdpError("SDP is empty")
        if "o" not in seen:
            raise SdpError("SDP has no o= line")
        for md in session.media:
            md._validate()
        return session

    def _parse_line(self, kind: str, value: str, seen: set[str],
                    current: MediaDescription | None) -> MediaDescription | None:
        """Apply one line; returns the m= section that following lines belong to."""
        if kind == "v":
            if value.strip() != "0":
                raise SdpError(f"unsupported SDP version {value!r}, expected 0")
        elif kind == "o":
            self._parse_origin(value)
        elif kind == "s" and current is None:
            self.session_name = value
        elif kind == "c":
            address = _parse_connection(value)
            if current is None:
                self.connection = address
            else:
                current.connection = address
        elif kind == "t" and "t" not in seen:
            parts = value.split()
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise SdpError(f"t= must be '<start> <stop>', got {value!r}")
            self.timing = (int(parts[0]), int(parts[1]))
        elif kind == "a":
            name, sep, attr_value = value.partition(":")
            if not name:
                raise SdpError(f"a= attribute has no name: {value!r}")
            (self.attributes if current is None else current.attributes).append(
                (name, attr_value if sep else None))
        elif kind == "m":
            if len(self.media) >= MAX_MEDIA:
                raise SdpError(f"too many m= lines (limit {MAX_MEDIA})")
            current = _parse_media(value)
            self.media.append(current)
        return current

    def _parse_origin(self, value: str) -> None:
        fields = value.split()
        if len(fields) != 6:
            raise SdpError(f"o= must have 6 fields, got {len(fields)}: {value!r}")
        if not fields[1].isdigit():
            raise SdpError(f"o= sess-id must be numeric, got {fields[1]!r}")
        if not fields[2].isdigit():
            raise SdpError(f"o= sess-version must be numeric, got {fields[2]!r}")
        self.username, self.nettype, self.addrtype, self.address = fields[0], fields[3], fields[4], fields[5]
        self.sess_id, self.sess_version = int(fields[1]), int(fields[2])

    def direction_of(self, md: MediaDescription) -> str:
        """Effective direction of a section: its own attribute, else the session's, else sendrecv."""
        return _direction_attribute(md.attributes) or _direction_attribute(self.attributes) or "sendrecv"

    def connection_of(self, md: MediaDescription) -> str | None:
        return md.connection or self.connection

    def to_bytes(self) -> bytes:
        lines = [
            f"v={self.version}",
            f"o={self.username} {self.sess_id} {self.sess_version} {self.nettype} {self.addrtype} {self.address}",
            f"s={self.session_name}",
        ]
        if self.connection is not None:
            lines.append(f"c=IN {_addrtype(self.connection)} {self.connection}")
        lines.append(f"t={self.timing[0]} {self.timing[1]}")
        lines.extend(_attribute_line(a) for a in self.attributes)
        for md in self.media:
            lines.append(" ".join([f"m={md.media}", str(md.port), md.proto, *md.formats]))
            if md.connection is not None:
                lines.append(f"c=IN {_addrtype(md.connection)} {md.connection}")
            lines.extend(_attribute_line(a) for a in md.attributes)
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _attribute_line(attribute: tuple[str, str | None]) -> str:
    name, value = attribute
    return f"a={name}" if value is None else f"a={name}:{value}"


# -- offer/answer -----------------------------------------------------------------

@dataclass(frozen=True)
class MediaParams:
    """Outcome of a negotiation: what the RTP layer needs.

    ``direction`` is OUR direction toward the peer. ``remote_direction`` is the
    peer's, with RFC 2543 hold (c=0.0.0.0) folded in as "not receiving".
    """

    remote_ip: str
    remote_port: int
    payload_type: int
    codec: str
    telephone_event_pt: int | None
    ptime: int = DEFAULT_PTIME
    direction: str = "sendrecv"
    remote_direction: str = "sendrecv"
    #: SDES keys when the stream is SRTP; None: plain RTP.
    srtp: SrtpParams | None = None

    @property
    def on_hold(self) -> bool:
        """The peer put us on hold: it offered sendonly or inactive, or c=0.0.0.0."""
        return self.remote_direction in ("sendonly", "inactive")


def _sends(direction: str) -> bool:
    return direction in ("sendrecv", "sendonly")


def _receives(direction: str) -> bool:
    return direction in ("sendrecv", "recvonly")


def _make_direction(send: bool, receive: bool) -> str:
    if send:
        return "sendrecv" if receive else "sendonly"
    return "recvonly" if receive else "inactive"


def _remote_direction(session: SessionDescription, md: MediaDescription, address: str) -> str:
    direction = session.direction_of(md)
    if address in HOLD_ADDRESSES:
        return _make_direction(_sends(direction), False)
    return direction


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")


def _check_codecs(codecs: Sequence[str]) -> list[str]:
    names = [c.upper() for c in codecs]
    unknown = [c for c in names if c not in CODECS]
    if unknown or not names:
        raise ValueError(f"codecs must be a non-empty subset of {', '.join(CODECS)}, got {list(codecs)!r}")
    return names


def _find_format(md: MediaDescription, names: Sequence[str]) -> tuple[int, str] | None:
    """First format in m= order whose encoding (8 kHz) is in ``names``; (pt, canonical name)."""
    wanted = {name.upper(): name for name in names}
    for pt, (encoding, rate) in md.payload_map.items():
        if rate == CLOCK_RATE and encoding.upper() in wanted:
            return pt, wanted[encoding.upper()]
    return None


def _describe(md: MediaDescription) -> str:
    named = md.payload_map
    formats = [f"{named[int(f)][0]}/{named[int(f)][1]}" if f.isdigit() and int(f) in named else f
               for f in md.formats]
    return f"{md.media} {md.port} {md.proto} [{', '.join(formats)}]"


def _usable_audio(md: MediaDescription) -> bool:
    return md.media == "audio" and md.port != 0 and md.proto in SUPPORTED_PROTOS


def answer_offer(offer: SessionDescription, *, local_ip: str, local_port: int, session_id: int,
                 codecs: Sequence[str] = ("PCMU", "PCMA"), session_version: int = 1,
                 local_direction: str = "sendrecv", require_srtp: bool = False,
                 keep_srtp: SrtpParams | None = None) -> tuple[SessionDescription, MediaParams]:
    """RFC 3264 6: accept the first usable audio stream with a codec we support,
    picked in the offerer's preference order; reject every other stream (port 0).

    A stream offering a crypto line we can use gets SRTP (RFC 4568: the first such
    line, answered with its tag and a key of ours); ``RTP/SAVP`` without one, or any
    stream without one when ``require_srtp``, is not usable.  ``keep_srtp`` (the
    stream's current keys, on a re-offer) keeps our key when the suite stays, so what
    we send continues in the same crypto context.

    Raises NoCommonCodec (-> 488) when no audio stream is usable, and SdpError
    when the chosen stream has no connection address.
    """
    supported = _check_codecs(codecs)
    _check_direction(local_direction)
    answer = SessionDescription(sess_id=session_id, sess_version=session_version,
                                addrtype=_addrtype(local_ip), address=local_ip,
                                connection=local_ip, timing=offer.timing)
    params: MediaParams | None = None
    unusable: list[str] = []
    for md in offer.media:
        chosen = _find_format(md, supported) if params is None and _usable_audio(md) else None
        crypto: Crypto | None = None
        if chosen is not None:
            cryptos, skipped = _cryptos(md)
            unusable += skipped
            crypto = cryptos[0] if cryptos else None
            if crypto is None and (md.proto in SECURE_PROTOS or require_srtp):
                chosen = None
        if chosen is None:
            answer.media.append(MediaDescription(md.media, 0, md.proto, list(md.formats)))
            continue
        section, params = _answer_audio(offer, md, chosen, local_port, local_direction,
                                        _answer_crypto(crypto, keep_srtp))
        answer.media.append(section)
    if params is None:
        offered = "; ".join(_describe(md) for md in offer.media) or "no media"
        required = ", SRTP required" if require_srtp else ""
        why = f"; unusable crypto: {'; '.join(unusable)}" if unusable else ""
        raise NoCommonCodec(f"no common codec (we support {', '.join(supported)} over RTP/AVP, or RTP/SAVP "
                            f"with {' or '.join(SRTP_SUITES)}{required}); offer: {offered}{why}")
    return answer, params


def _answer_crypto(offered: Crypto | None, keep: SrtpParams | None) -> tuple[Crypto, SrtpParams] | None:
    """Our crypto line answering ``offered`` and the stream's keys; None for plain RTP."""
    if offered is None:
        return None
    key = keep.local_key if keep is not None and keep.suite == offered.suite else new_srtp_key(offered.suite)
    return Crypto(offered.tag, offered.suite, key), SrtpParams(offered.suite, key, offered.key)


def _answer_audio(offer: SessionDescription, md: MediaDescription, chosen: tuple[int, str],
                  local_port: int, local_direction: str,
                  crypto: tuple[Crypto, SrtpParams] | None) -> tuple[MediaDescription, MediaParams]:
    remote_ip = offer.connection_of(md)
    if remote_ip is None:
        raise SdpError(f"offered audio stream has no connection address: {_describe(md)}")
    pt, codec = chosen
    event = _find_format(md, [TELEPHONE_EVENT])
    remote_direction = _remote_direction(offer, md, remote_ip)
    # RFC 3264 6.1: we may send only if they receive, and receive only if they send
    direction = _make_direction(_receives(remote_direction) and _sends(local_direction),
                                _sends(remote_direction) and _receives(local_direction))
    formats = [str(pt)]
    attributes: list[tuple[str, str | None]] = [("rtpmap", f"{pt} {codec}/{CLOCK_RATE}")]
    event_pt = None
    if event is not None:
        event_pt = event[0]
        formats.append(str(event_pt))
        attributes.append(("rtpmap", f"{event_pt} {TELEPHONE_EVENT}/{CLOCK_RATE}"))
        attributes.append(("fmtp", f"{event_pt} {md.fmtp.get(event_pt, '0-15')}"))
    ptime = md.ptime
    if ptime is not None:
        attributes.append(("ptime", str(ptime)))
    attributes.append((direction, None))
    if crypto is not None:
        attributes.append(("crypto", crypto[0].value))
    section = MediaDescription("audio", local_port, md.proto, formats, attributes)
    params = MediaParams(remote_ip=remote_ip, remote_port=md.port, payload_type=pt, codec=codec,
                         telephone_event_pt=event_pt, ptime=ptime or DEFAULT_PTIME,
                         direction=direction, remote_direction=remote_direction,
                         srtp=crypto[1] if crypto is not None else None)
    return section, params


def make_offer(*, local_ip: str, local_port: int, session_id: int, session_version: int = 1,
               codecs: Sequence[str] = ("PCMU", "PCMA"), telephone_event_pt: int | None = 101,
               direction: str = "sendrecv", ptime: int = DEFAULT_PTIME,
               srtp_key: bytes | None = None) -> SessionDescription:
    """One audio stream with our codecs in preference order; telephone_event_pt=None leaves DTMF out.

    With ``srtp_key`` (see :func:`new_srtp_key`) the stream is ``RTP/SAVP`` with one
    crypto line of the first suite of :data:`SRTP_SUITES`: SRTP or nothing."""
    names = _check_codecs(codecs)
    _check_direction(direction)
    if telephone_event_pt is not None and not 96 <= telephone_event_pt <= 127:
        raise ValueError(f"telephone_event_pt must be a dynamic payload type 96-127, got {telephone_event_pt}")
    if ptime <= 0:
        raise ValueError(f"ptime must be positive, got {ptime}")
    formats = [str(CODECS[name]) for name in names]
    attributes: list[tuple[str, str | None]] = [
        ("rtpmap", f"{CODECS[name]} {name}/{CLOCK_RATE}") for name in names]
    if telephone_event_pt is not None:
        formats.append(str(telephone_event_pt))
        attributes.append(("rtpmap", f"{telephone_event_pt} {TELEPHONE_EVENT}/{CLOCK_RATE}"))
        attributes.append(("fmtp", f"{telephone_event_pt} 0-15"))
    attributes += [("ptime", str(ptime)), (direction, None)]
    proto = "RTP/AVP"
    if srtp_key is not None:
        suite = next(iter(SRTP_SUITES))
        if len(srtp_key) != SRTP_SUITES[suite]:
            raise ValueError(f"srtp_key for {suite} must be {SRTP_SUITES[suite]} bytes, got {len(srtp_key)}")
        proto = "RTP/SAVP"
        attributes.append(("crypto", Crypto(1, suite, srtp_key).value))
    return SessionDescription(sess_id=session_id, sess_version=session_version,
                              addrtype=_addrtype(local_ip), address=local_ip, connection=local_ip,
                              media=[MediaDescription("audio", local_port, proto, formats, attributes)])


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> MediaParams:
    """Media parameters from the answer to our offer (RFC 3264 5/6).

    Payload types come from the answer: they are what the answerer expects to
    receive, so they are the ones we send with.
    """
    if len(answer.media) != len(offer.media):
        raise SdpError(f"answer has {len(answer.media)} media streams, offer had {len(offer.media)}")
    for index, (ours, theirs) in enumerate(zip(offer.media, answer.media)):
        if ours.media != "audio" or ours.port == 0:
            continue
        if theirs.media != ours.media:
            raise SdpError(f"answer stream {index} is {theirs.media!r}, offer had 'audio'")
        if theirs.port == 0:
            continue
        offered_codecs = [name for name, _ in ours.payload_map.values() if name.upper() in CODECS]
        chosen = _find_format(theirs, offered_codecs)
        if chosen is None:
            raise NoCommonCodec(f"answer has no codec we offered: {_describe(theirs)}")
        remote_ip = answer.connection_of(theirs)
        if remote_ip is None:
            raise SdpError(f"answer audio stream has no connection address: {_describe(theirs)}")
        event = None
        if _find_format(ours, [TELEPHONE_EVENT]) is not None:
            event = _find_format(theirs, [TELEPHONE_EVENT])
        remote_direction = _remote_direction(answer, theirs, remote_ip)
        local_direction = offer.direction_of(ours)
        direction = _make_direction(_receives(remote_direction) and _sends(local_direction),
                                    _sends(remote_direction) and _receives(local_direction))
        return MediaParams(remote_ip=remote_ip, remote_port=theirs.port, payload_type=chosen[0],
                           codec=chosen[1].upper(), telephone_event_pt=event[0] if event else None,
                           ptime=theirs.ptime or DEFAULT_PTIME, direction=direction,
                           remote_direction=remote_direction, srtp=_accepted_crypto(ours, theirs))
    raise NoCommonCodec("answer rejected every audio stream (port 0)")


def _accepted_crypto(ours: MediaDescription, theirs: MediaDescription) -> SrtpParams | None:
    """The keys of an answered stream: the answer's crypto line must take up one of the
    offer's tags with the same suite (RFC 4568 7.1.3); a plain offer stays plain."""
    offered = {c.tag: c for c in _cryptos(ours)[0]}
    if not offered:
        return None
    answered, skipped = _cryptos(theirs)
    for crypto in answered:
        mine = offered.get(crypto.tag)
        if mine is not None and mine.suite == crypto.suite:
            return SrtpParams(crypto.suite, mine.key, crypto.key)
    why = f" ({'; '.join(skipped)})" if skipped else ""
    raise NoCommonCodec(f"answer to our SRTP offer has no crypto line matching it{why}: {_describe(theirs)}")
