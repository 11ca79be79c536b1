"""DTMF: RFC 4733 telephone-events over RTP, and SIP INFO bodies
(application/dtmf-relay, application/dtmf). No I/O."""

from __future__ import annotations

import math
import struct
from collections import deque
from dataclasses import dataclass

from .rtp import RtpPacket

EVENTS = "0123456789*#ABCD"
CLOCK_RATE = 8000  # we only negotiate telephone-event/8000
END_RETRANSMISSIONS = 3  # RFC 4733 2.5.1.4
MAX_DURATION = 0xFFFF  # 16-bit duration field, in timestamp units
DEFAULT_INFO_DURATION_MS = 100

_EVENT = struct.Struct("!BBH")


@dataclass(frozen=True)
class DtmfEvent:
    digit: str
    duration_ms: int
    source: str  # "rfc4733" | "info" | "inband"


@dataclass
class TelephoneEvent:
    """RFC 4733 2.3 payload; ``duration`` is in RTP timestamp units."""

    event: int
    end: bool
    volume: int
    duration: int

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """First event of the payload (any further events are redundancy we do not need)."""
        if len(payload) < _EVENT.size:
            raise ValueError(f"telephone-event payload too short (got {len(payload)} bytes, need 4)")
        event, flags, duration = _EVENT.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def serialize(self) -> bytes:
        if not 0 <= self.event <= 255:
            raise ValueError(f"telephone-event code must be 0-255, got {self.event}")
        if not 0 <= self.volume <= 63:
            raise ValueError(f"telephone-event volume must be 0-63, got {self.volume}")
        if not 0 <= self.duration <= MAX_DURATION:
            raise ValueError(f"telephone-event duration must be 0-65535, got {self.duration}")
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)


def _event_code(digit: str) -> int:
    code = EVENTS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    return code


class DtmfReceiver:
    """Turns a stream of telephone-event packets (already demultiplexed by
    payload type) into one DtmfEvent per key press.

    An event is identified by its RTP timestamp (RFC 4733 2.5.1.1). It is
    reported on its first end packet; the retransmitted end packets and any
    late updates are ignored. If every end packet is lost, the event is
    reported when a different event starts, or by ``expire``.
    """

    def __init__(self, *, end_timeout: int = 800, history: int = 16) -> None:
        """``end_timeout``: timestamp units past an event's last known end after
        which ``expire`` gives up waiting for its end packet (800 = 100 ms)."""
        self.end_timeout = end_timeout
        self._done: deque[int] = deque(maxlen=history)  # timestamps already reported
        self._pending: tuple[int, int, int] | None = None  # (timestamp, event, duration)

    def feed(self, packet: RtpPacket) -> DtmfEvent | None:
        """Raises ValueError for a payload that is not a telephone-event."""
        event = TelephoneEvent.parse(packet.payload)
        timestamp = packet.timestamp
        if event.event >= len(EVENTS) or timestamp in self._done:
            return None  # non-DTMF events (flash, tones) or a digit already reported
        flushed = None
        pending = self._pending
        if pending is not None and pending[0] != timestamp:
            flushed = self._finish()  # a new event began: the old one lost its ends
            pending = None
        duration = max(event.duration, pending[2] if pending else 0)
        self._pending = (timestamp, event.event, duration)
        if event.end and flushed is None:
            return self._finish()
        # An end that arrives together with a flush waits for its retransmission.
        return flushed

    def expire(self, now_ts: int) -> DtmfEvent | None:
        """Report an event whose end packets never came. ``now_ts`` is the RTP
        timestamp of the stream now, e.g. of the latest audio packet (events
        and audio share the timestamp clock, RFC 4733 2.1)."""
        pending = self._pending
        if pending is None:
            return None
        elapsed = (now_ts - pending[0] - pending[2]) & 0xFFFFFFFF
        if elapsed >= 0x80000000 or elapsed < self.end_timeout:  # before the end, or not long enough
            return None
        return self._finish()

    def _finish(self) -> DtmfEvent:
        assert self._pending is not None
        timestamp, code, duration = self._pending
        self._pending = None
        self._done.append(timestamp)
        return DtmfEvent(EVENTS[code], duration * 1000 // CLOCK_RATE, "rfc4733")


def telephone_event_payloads(digit: str, *, duration_ms: int = 100, ptime: int = 20,
                             volume: int = 10) -> list[tuple[bytes, bool]]:
    """Payloads for one key press, one per ptime, all sent with the event's
    start timestamp: growing durations, then the end packet three times
    (RFC 4733 2.5.1.4). The bool is the RTP marker, set on the first only."""
    code = _event_code(digit)
    total = duration_ms * CLOCK_RATE // 1000
    if not 0 < total <= MAX_DURATION:
        raise ValueError(f"DTMF duration must be 1-{MAX_DURATION * 1000 // CLOCK_RATE} ms, got {duration_ms}")
    if ptime <= 0:
        raise ValueError(f"ptime must be positive, got {ptime}")
    step = ptime * CLOCK_RATE // 1000
    count = math.ceil(total / step)
    payloads = [(TelephoneEvent(code, False, volume, i * step).serialize(), i == 1) for i in range(1, count)]
    end = TelephoneEvent(code, True, volume, total).serialize()
    payloads += [(end, count == 1 and i == 0) for i in range(END_RETRANSMISSIONS)]
    return payloads


def parse_dtmf_relay(body: bytes) -> DtmfEvent:
    """SIP INFO DTMF: application/dtmf-relay ("Signal=5\\r\\nDuration=160")
    or application/dtmf (just "5"). Duration is in milliseconds."""
    try:
        text = body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ValueError("dtmf-relay body is not ASCII") from None
    if not text:
        raise ValueError("dtmf-relay body is empty")
    if "=" not in text:
        return DtmfEvent(_info_digit(text), DEFAULT_INFO_DURATION_MS, "info")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    if "signal" not in fields:
        raise ValueError("dtmf-relay body has no Signal line")
    duration_text = fields.get("duration", str(DEFAULT_INFO_DURATION_MS))
    if not duration_text.isdigit():
        raise ValueError(f"dtmf-relay Duration must be a non-negative integer, got {duration_text!r}")
    return DtmfEvent(_info_digit(fields["signal"]), int(duration_text), "info")


def _info_digit(value: str) -> str:
    # some phones send the event code ("10", "11") instead of "*" and "#"
    if value.isdigit() and len(value) <= 2 and int(value) < len(EVENTS):
        return EVENTS[int(value)]
    if len(value) == 1 and value.upper() in EVENTS:
        return value.upper()
    raise ValueError(f"dtmf-relay Signal is not a DTMF digit: {value!r}")
