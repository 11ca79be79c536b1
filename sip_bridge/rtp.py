"""RTP and RTCP packets (RFC 3550) and receiver statistics, with no I/O.

Parsers are pure classmethods that raise ``ValueError`` with a precise message;
the transport drops the datagram and the call carries on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TypeAlias

RTP_VERSION = 2
RTP_HEADER_SIZE = 12
RTCP_HEADER_SIZE = 4
RTP_SEQ_MOD = 1 << 16
# RFC 3550 A.1: how far the sequence may jump before it counts as a restart.
MAX_DROPOUT = 3000
MAX_MISORDER = 100

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
SDES_CNAME = 1
REPORT_BLOCK_SIZE = 24
MAX_REPORT_BLOCKS = 31  # 5-bit count field

_HEADER = struct.Struct("!BBHII")
_REWRITE = struct.Struct("!HII")
_RTCP_HEADER = struct.Struct("!BBH")
_REPORT_BLOCK = struct.Struct("!IIIIII")
_SR_INFO = struct.Struct("!IQIII")


def _too_short(what: str, got: int, need: int) -> ValueError:
    return ValueError(f"{what} too short (got {got} bytes, need {need})")


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet. ``padding`` is the number of padding bytes (0 = none);
    it is stripped from ``payload`` on parse and re-added on serialize."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    extension: tuple[int, bytes] | None = None
    padding: int = 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        size = len(data)
        if size < RTP_HEADER_SIZE:
            raise _too_short("RTP packet", size, RTP_HEADER_SIZE)
        first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise ValueError(f"RTP version must be 2, got {version}")
        count = first & 0x0F
        offset = RTP_HEADER_SIZE + 4 * count
        if size < offset:
            raise _too_short(f"RTP packet with {count} CSRC", size, offset)
        csrc = list(struct.unpack_from(f"!{count}I", data, RTP_HEADER_SIZE)) if count else []
        extension = None
        if first & 0x10:
            if size < offset + 4:
                raise _too_short("RTP packet with header extension", size, offset + 4)
            profile, words = struct.unpack_from("!HH", data, offset)
            end = offset + 4 + 4 * words
            if size < end:
                raise _too_short("RTP packet with header extension", size, end)
            extension = (profile, bytes(data[offset + 4:end]))
            offset = end
        end = size
        padding = 0
        if first & 0x20:
            padding = data[-1]
            if padding == 0:
                raise ValueError("RTP padding length must be at least 1, got 0")
            if padding > size - offset:
                raise ValueError(f"RTP padding length {padding} exceeds payload ({size - offset} bytes)")
            end -= padding
        return cls(payload_type=second & 0x7F, sequence=sequence, timestamp=timestamp, ssrc=ssrc,
                   payload=bytes(data[offset:end]), marker=bool(second & 0x80), csrc=csrc,
                   extension=extension, padding=padding)

    def serialize(self) -> bytes:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"RTP payload type must be 0-127, got {self.payload_type}")
        count = len(self.csrc)
        if count > 15:
            raise ValueError(f"RTP packet can carry at most 15 CSRC, got {count}")
        first = 0x80 | count
        if self.extension is not None:
            first |= 0x10
        if self.padding:
            first |= 0x20
        try:
            header = _HEADER.pack(first, (0x80 if self.marker else 0) | self.payload_type,
                                  self.sequence, self.timestamp, self.ssrc)
            if first == 0x80:  # the common case: plain header + payload
                return header + self.payload
            parts = [header, struct.pack(f"!{count}I", *self.csrc)]
        except struct.error as exc:
            raise ValueError(f"RTP header field out of range: {exc}") from None
        if self.extension is not None:
            profile, body = self.extension
            if len(body) % 4:
                raise ValueError(f"RTP header extension length must be a multiple of 4, got {len(body)}")
            parts.append(struct.pack("!HH", profile, len(body) // 4) + body)
        parts.append(self.payload)
        if self.padding:
            if not 1 <= self.padding <= 255:
                raise ValueError(f"RTP padding length must be 1-255, got {self.padding}")
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def rewrite_header(data: bytes | bytearray, *, sequence: int, timestamp: int, ssrc: int) -> bytes:
    """Copy of an RTP packet with sequence, timestamp and SSRC replaced (relay hot path)."""
    if len(data) < RTP_HEADER_SIZE:
        raise _too_short("RTP packet", len(data), RTP_HEADER_SIZE)
    if data[0] >> 6 != RTP_VERSION:
        raise ValueError(f"RTP version must be 2, got {data[0] >> 6}")
    out = bytearray(data)
    _REWRITE.pack_into(out, 2, sequence, timestamp, ssrc)
    return bytes(out)


def is_rtcp(data: bytes | bytearray) -> bool:
    """RFC 5761 4: with rtcp-mux, RTCP packet types 192-223 sit where RTP
    would carry marker + payload types 64-95, which no one assigns."""
    return len(data) >= 2 and 192 <= data[1] <= 223


# -- RTCP -------------------------------------------------------------------------

@dataclass(slots=True)
class RtcpReportBlock:
    """RFC 3550 6.4.1 reception report block. ``packets_lost`` is the signed
    24-bit cumulative count; ``lsr``/``dlsr`` are in NTP middle-32 / 1/65536 s."""

    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    lsr: int = 0
    dlsr: int = 0

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> RtcpReportBlock:
        ssrc, lost_word, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 1 << 24
        return cls(ssrc, lost_word >> 24, lost, highest, jitter, lsr, dlsr)

    def serialize(self) -> bytes:
        lost = max(-0x800000, min(0x7FFFFF, self.packets_lost)) & 0xFFFFFF
        return _REPORT_BLOCK.pack(self.ssrc, (self.fraction_lost & 0xFF) << 24 | lost,
                                  self.highest_sequence, self.jitter, self.lsr, self.dlsr)


def _rtcp_header(packet_type: int, count: int, body_size: int) -> bytes:
    # length field: packet size in 32-bit words minus one, header included
    return _RTCP_HEADER.pack(0x80 | count, packet_type, (RTCP_HEADER_SIZE + body_size) // 4 - 1)


def _parse_blocks(body: bytes, offset: int, count: int, what: str) -> list[RtcpReportBlock]:
    need = offset + count * REPORT_BLOCK_SIZE
    if len(body) < need:
        raise _too_short(f"RTCP {what} with {count} report blocks", len(body) + RTCP_HEADER_SIZE,
                         need + RTCP_HEADER_SIZE)
    return [RtcpReportBlock.parse(body, offset + i * REPORT_BLOCK_SIZE) for i in range(count)]


def _check_block_count(reports: list[RtcpReportBlock]) -> None:
    if len(reports) > MAX_REPORT_BLOCKS:
        raise ValueError(f"RTCP report can carry at most {MAX_REPORT_BLOCKS} blocks, got {len(reports)}")


@dataclass(slots=True)
class RtcpSenderReport:
    """RFC 3550 6.4.1. ``ntp_timestamp`` is the full 64-bit NTP time."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[RtcpReportBlock] = field(default_factory=list)

    @classmethod
    def parse_body(cls, body: bytes, count: int) -> RtcpSenderReport:
        if len(body) < _SR_INFO.size:
            raise _too_short("RTCP SR", len(body) + RTCP_HEADER_SIZE, _SR_INFO.size + RTCP_HEADER_SIZE)
        ssrc, ntp, rtp_ts, packets, octets = _SR_INFO.unpack_from(body)
        return cls(ssrc, ntp, rtp_ts, packets, octets, _parse_blocks(body, _SR_INFO.size, count, "SR"))

    def serialize(self) -> bytes:
        _check_block_count(self.reports)
        body = _SR_INFO.pack(self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count,
                             self.octet_count) + b"".join(r.serialize() for r in self.reports)
        return _rtcp_header(RTCP_SR, len(self.reports), len(body)) + body


@dataclass(slots=True)
class RtcpReceiverReport:
    """RFC 3550 6.4.2."""

    ssrc: int
    reports: list[RtcpReportBlock] = field(default_factory=list)

    @classmethod
    def parse_body(cls, body: bytes, count: int) -> RtcpReceiverReport:
        if len(body) < 4:
            raise _too_short("RTCP RR", len(body) + RTCP_HEADER_SIZE, 4 + RTCP_HEADER_SIZE)
        return cls(int.from_bytes(body[:4], "big"), _parse_blocks(body, 4, count, "RR"))

    def serialize(self) -> bytes:
        _check_block_count(self.reports)
        body = self.ssrc.to_bytes(4, "big") + b"".join(r.serialize() for r in self.reports)
        return _rtcp_header(RTCP_RR, len(self.reports), len(body)) + body


@dataclass(slots=True)
class RtcpSdes:
    """One SDES chunk (RFC 3550 6.5); only CNAME is kept. A compound SDES
    packet with several chunks parses into one ``RtcpSdes`` per chunk."""

    ssrc: int
    cname: str | None = None

    @classmethod
    def parse_body(cls, body: bytes, count: int) -> list[RtcpSdes]:
        chunks = []
        offset = 0
        for _ in range(count):
            if len(body) < offset + 4:
                raise ValueError(f"RTCP SDES chunk truncated at byte {offset + RTCP_HEADER_SIZE}")
            ssrc = int.from_bytes(body[offset:offset + 4], "big")
            offset += 4
            cname = None
            while True:
                if offset >= len(body):
                    raise ValueError(f"RTCP SDES chunk for SSRC {ssrc:#010x} has no end marker")
                item_type = body[offset]
                if item_type == 0:
                    offset = (offset + 4) & ~3  # the null item, then padding to a word boundary
                    break
                if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                    raise ValueError(f"RTCP SDES item truncated at byte {offset + RTCP_HEADER_SIZE}")
                length = body[offset + 1]
                if item_type == SDES_CNAME:
                    cname = body[offset + 2:offset + 2 + length].decode("utf-8", "replace")
                offset += 2 + length
            chunks.append(cls(ssrc, cname))
        return chunks

    def serialize(self) -> bytes:
        body = bytearray(self.ssrc.to_bytes(4, "big"))
        if self.cname is not None:
            text = self.cname.encode("utf-8")
            if len(text) > 255:
                raise ValueError(f"RTCP SDES CNAME must be at most 255 bytes, got {len(text)}")
            body += bytes([SDES_CNAME, len(text)]) + text
        body += bytes(4 - len(body) % 4)  # null item + padding, at least one zero byte
        return _rtcp_header(RTCP_SDES, 1, len(body)) + bytes(body)


@dataclass(slots=True)
class RtcpBye:
    """RFC 3550 6.6."""

    sources: list[int] = field(default_factory=list)
    reason: str | None = None

    @classmethod
    def parse_body(cls, body: bytes, count: int) -> RtcpBye:
        need = 4 * count
        if len(body) < need:
            raise _too_short(f"RTCP BYE with {count} sources", len(body) + RTCP_HEADER_SIZE,
                             need + RTCP_HEADER_SIZE)
        sources = list(struct.unpack_from(f"!{count}I", body))
        reason = None
        if len(body) > need:
            length = body[need]
            if len(body) < need + 1 + length:
                raise ValueError(f"RTCP BYE reason truncated (length {length}, "
                                 f"{len(body) - need - 1} bytes left)")
            reason = body[need + 1:need + 1 + length].decode("utf-8", "replace")
        return cls(sources, reason)

    def serialize(self) -> bytes:
        if len(self.sources) > 31:
            raise ValueError(f"RTCP BYE can carry at most 31 sources, got {len(self.sources)}")
        body = bytearray(struct.pack(f"!{len(self.sources)}I", *self.sources))
        if self.reason is not None:
            text = self.reason.encode("utf-8")
            if len(text) > 255:
                raise ValueError(f"RTCP BYE reason must be at most 255 bytes, got {len(text)}")
            body += bytes([len(text)]) + text
            body += bytes(-len(body) % 4)
        return _rtcp_header(RTCP_BYE, len(self.sources), len(body)) + bytes(body)


RtcpPacket: TypeAlias = RtcpSenderReport | RtcpReceiverReport | RtcpSdes | RtcpBye


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP packet. Packet types we do not use (APP, feedback,
    XR) are skipped, as RFC 3550 6.1 asks of receivers."""
    packets: list[RtcpPacket] = []
    offset = 0
    size = len(data)
    if size < RTCP_HEADER_SIZE:
        raise _too_short("RTCP packet", size, RTCP_HEADER_SIZE)
    while offset < size:
        if size - offset < RTCP_HEADER_SIZE:
            raise _too_short("RTCP packet", size - offset, RTCP_HEADER_SIZE)
        first, packet_type, words = _RTCP_HEADER.unpack_from(data, offset)
        version = first >> 6
        if version != RTP_VERSION:
            raise ValueError(f"RTCP version must be 2, got {version}")
        length = 4 * (words + 1)
        if length > size - offset:
            raise ValueError(f"RTCP packet length {length} exceeds remaining data ({size - offset} bytes)")
        body = bytes(data[offset + RTCP_HEADER_SIZE:offset + length])
        if first & 0x20:
            padding = body[-1] if body else 0
            if not 1 <= padding <= len(body):
                raise ValueError(f"RTCP padding length {padding} is invalid for a {len(body)}-byte body")
            body = body[:-padding]
        count = first & 0x1F
        if packet_type == RTCP_SR:
            packets.append(RtcpSenderReport.parse_body(body, count))
        elif packet_type == RTCP_RR:
            packets.append(RtcpReceiverReport.parse_body(body, count))
        elif packet_type == RTCP_SDES:
            packets.extend(RtcpSdes.parse_body(body, count))
        elif packet_type == RTCP_BYE:
            packets.append(RtcpBye.parse_body(body, count))
        offset += length
    return packets


# -- receiver statistics ----------------------------------------------------------

def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


class ReceiveStatistics:
    """RFC 3550 A.1 (sequence), A.3 (loss) and A.8 (jitter) for one source.

    Unlike A.1 there is no probation: the source was announced in SDP, so its
    first packet counts. A change of SSRC restarts the statistics (re-INVITE to
    another media server).
    """

    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self.ssrc: int | None = None
        self.received = 0
        self._base_seq = 0
        self._max_seq = 0
        self._cycles = 0
        self._bad_seq = RTP_SEQ_MOD + 1
        self._expected_prior = 0
        self._received_prior = 0
        self._jitter = 0.0
        self._last: tuple[float, int] | None = None  # (arrival in RTP units, RTP timestamp)

    def _init_sequence(self, seq: int) -> None:
        self._base_seq = seq
        self._max_seq = seq
        self._bad_seq = RTP_SEQ_MOD + 1
        self._cycles = 0
        self.received = 0
        self._expected_prior = 0
        self._received_prior = 0
        self._last = None

    def update(self, packet: RtpPacket, arrival: float) -> bool:
        """Account one packet that arrived at ``arrival`` seconds (any monotonic
        clock). Returns False when the packet is held back as a possible restart
        after a large sequence jump (A.1: a restart needs two packets in a row)."""
        seq = packet.sequence
        if packet.ssrc != self.ssrc:
            self.ssrc = packet.ssrc
            self._init_sequence(seq)
            self._jitter = 0.0
        else:
            udelta = (seq - self._max_seq) & 0xFFFF
            if udelta < MAX_DROPOUT:
                if seq < self._max_seq:
                    self._cycles += RTP_SEQ_MOD
                self._max_seq = seq
            elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
                if seq != self._bad_seq:
                    self._bad_seq = (seq + 1) & 0xFFFF
                    return False
                self._init_sequence(seq)
            # else: duplicate or reordered within MAX_MISORDER, counted below
        self.received += 1
        arrival_units = arrival * self.clock_rate
        if self._last is not None:
            last_arrival, last_timestamp = self._last
            transit_change = (arrival_units - last_arrival) - _signed32(packet.timestamp - last_timestamp)
            self._jitter += (abs(transit_change) - self._jitter) / 16
        self._last = (arrival_units, packet.timestamp)
        return True

    @property
    def extended_highest_seq(self) -> int:
        return self._cycles + self._max_seq

    @property
    def expected(self) -> int:
        return self.extended_highest_seq - self._base_seq + 1 if self.ssrc is not None else 0

    @property
    def lost(self) -> int:
        """Cumulative loss; duplicates can make received exceed expected, hence the floor."""
        return max(0, self.expected - self.received)

    @property
    def jitter(self) -> float:
        """Interarrival jitter estimate in timestamp units."""
        return self._jitter

    def report_block(self, *, lsr: int = 0, dlsr: int = 0) -> RtcpReportBlock:
        """Report block for an RR/SR; starts a new interval for ``fraction_lost`` (A.3)."""
        if self.ssrc is None:
            raise ValueError("no RTP packet received yet, nothing to report")
        expected = self.expected
        expected_interval = expected - self._expected_prior
        lost_interval = expected_interval - (self.received - self._received_prior)
        self._expected_prior = expected
        self._received_prior = self.received
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        return RtcpReportBlock(ssrc=self.ssrc, fraction_lost=fraction, packets_lost=self.lost,
                               highest_sequence=self.extended_highest_seq & 0xFFFFFFFF,
                               jitter=int(self._jitter), lsr=lsr, dlsr=dlsr)
