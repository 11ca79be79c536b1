"""SDP (RFC 4566) parsing and serialization, and RFC 3264 offer/answer for one
G.711 audio stream with RFC 4733 telephone-events.

The parser is lenient where real phones are sloppy (LF-only line ends, blank
lines, unknown or out-of-order lines, missing s=/t=) and strict where a wrong
guess would send media to the wrong place (origin, connection, media lines).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

MAX_SDP_SIZE = 65_536
MAX_MEDIA = 16

CODECS = {"PCMU": 0, "PCMA": 8}
CLOCK_RATE = 8000
TELEPHONE_EVENT = "telephone-event"
DEFAULT_PTIME = 20
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# RTP/AVPF is plain RTP plus feedback we may ignore; secure profiles we cannot do.
SUPPORTED_PROTOS = ("RTP/AVP", "RTP/AVPF")
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
                 local_direction: str = "sendrecv") -> tuple[SessionDescription, MediaParams]:
    """RFC 3264 6: accept the first usable audio stream with a codec we support,
    picked in the offerer's preference order; reject every other stream (port 0).

    Raises NoCommonCodec (-> 488) when no audio stream is usable, and SdpError
    when the chosen stream has no connection address.
    """
    supported = _check_codecs(codecs)
    _check_direction(local_direction)
    answer = SessionDescription(sess_id=session_id, sess_version=session_version,
                                addrtype=_addrtype(local_ip), address=local_ip,
                                connection=local_ip, timing=offer.timing)
    params: MediaParams | None = None
    for md in offer.media:
        chosen = _find_format(md, supported) if params is None and _usable_audio(md) else None
        if chosen is None:
            answer.media.append(MediaDescription(md.media, 0, md.proto, list(md.formats)))
            continue
        section, params = _answer_audio(offer, md, chosen, local_port, local_direction)
        answer.media.append(section)
    if params is None:
        offered = "; ".join(_describe(md) for md in offer.media) or "no media"
        raise NoCommonCodec(f"no common codec (we support {', '.join(supported)} over RTP/AVP); "
                            f"offer: {offered}")
    return answer, params


def _answer_audio(offer: SessionDescription, md: MediaDescription, chosen: tuple[int, str],
                  local_port: int, local_direction: str) -> tuple[MediaDescription, MediaParams]:
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
    section = MediaDescription("audio", local_port, md.proto, formats, attributes)
    params = MediaParams(remote_ip=remote_ip, remote_port=md.port, payload_type=pt, codec=codec,
                         telephone_event_pt=event_pt, ptime=ptime or DEFAULT_PTIME,
                         direction=direction, remote_direction=remote_direction)
    return section, params


def make_offer(*, local_ip: str, local_port: int, session_id: int, session_version: int = 1,
               codecs: Sequence[str] = ("PCMU", "PCMA"), telephone_event_pt: int | None = 101,
               direction: str = "sendrecv", ptime: int = DEFAULT_PTIME) -> SessionDescription:
    """One audio stream with our codecs in preference order; telephone_event_pt=None leaves DTMF out."""
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
    return SessionDescription(sess_id=session_id, sess_version=session_version,
                              addrtype=_addrtype(local_ip), address=local_ip, connection=local_ip,
                              media=[MediaDescription("audio", local_port, "RTP/AVP", formats, attributes)])


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
                           remote_direction=remote_direction)
    raise NoCommonCodec("answer rejected every audio stream (port 0)")
