import struct

import pytest

from sip_bridge.rtp import (
    RTP_HEADER_SIZE,
    ReceiveStatistics,
    RtcpBye,
    RtcpReceiverReport,
    RtcpReportBlock,
    RtcpSdes,
    RtcpSenderReport,
    RtpPacket,
    is_rtcp,
    parse_rtcp,
    rewrite_header,
)

# version 2, marker, PT 0, seq 0x1234, ts 0xdeadbeef, ssrc 0x01020304, 4 bytes payload
PLAIN = bytes.fromhex("80801234deadbeef01020304") + b"\xff\xfe\xfd\xfc"


def test_parse_plain_packet() -> None:
    packet = RtpPacket.parse(PLAIN)
    assert packet == RtpPacket(payload_type=0, sequence=0x1234, timestamp=0xDEADBEEF, ssrc=0x01020304,
                               payload=b"\xff\xfe\xfd\xfc", marker=True)
    assert packet.serialize() == PLAIN
    assert RTP_HEADER_SIZE == 12


def test_round_trip_with_csrc_extension_and_padding() -> None:
    packet = RtpPacket(payload_type=8, sequence=65535, timestamp=0xFFFFFFFF, ssrc=7, payload=b"abc",
                       csrc=[1, 2], extension=(0xBEDE, b"\x10\xaa\x00\x00"), padding=5)
    data = packet.serialize()
    assert data[0] == 0x80 | 0x20 | 0x10 | 2
    assert len(data) == 12 + 8 + 4 + 4 + 3 + 5
    assert data[-1] == 5
    assert RtpPacket.parse(data) == packet


def test_padding_is_stripped_from_payload() -> None:
    data = bytes([0xA0]) + PLAIN[1:] + b"\x00\x00\x03"
    packet = RtpPacket.parse(data)
    assert packet.payload == PLAIN[12:]
    assert packet.padding == 3


@pytest.mark.parametrize(("data", "message"), [
    (b"\x80\x00\x00\x01\x00", "RTP packet too short (got 5 bytes, need 12)"),
    (b"", "RTP packet too short (got 0 bytes, need 12)"),
    (bytes([0x40]) + PLAIN[1:], "RTP version must be 2, got 1"),
    (bytes([0x00]) + PLAIN[1:], "RTP version must be 2, got 0"),
    (bytes([0x83]) + PLAIN[1:], "RTP packet with 3 CSRC too short (got 16 bytes, need 24)"),
    (bytes([0x90]) + PLAIN[1:14], "RTP packet with header extension too short (got 14 bytes, need 16)"),
    (bytes([0x90]) + PLAIN[1:12] + b"\xbe\xde\x00\x02\x00\x00\x00\x00",
     "RTP packet with header extension too short (got 20 bytes, need 24)"),
    (bytes([0xA0]) + PLAIN[1:12] + b"\x00", "RTP padding length must be at least 1, got 0"),
    (bytes([0xA0]) + PLAIN[1:12] + b"\x01\x09", "RTP padding length 9 exceeds payload (2 bytes)"),
])
def test_malformed_rtp(data: bytes, message: str) -> None:
    with pytest.raises(ValueError) as info:
        RtpPacket.parse(data)
    assert str(info.value) == message


@pytest.mark.parametrize(("packet", "message"), [
    (RtpPacket(128, 1, 1, 1), "RTP payload type must be 0-127, got 128"),
    (RtpPacket(0, 65536, 1, 1), "RTP header field out of range: "),
    (RtpPacket(0, 1, 1, 1, csrc=list(range(16))), "RTP packet can carry at most 15 CSRC, got 16"),
    (RtpPacket(0, 1, 1, 1, extension=(1, b"abc")), "RTP header extension length must be a multiple of 4, got 3"),
])
def test_serialize_rejects_out_of_range_fields(packet: RtpPacket, message: str) -> None:
    with pytest.raises(ValueError) as info:
        packet.serialize()
    assert str(info.value).startswith(message)


def test_rewrite_header_keeps_payload_and_flags() -> None:
    out = rewrite_header(bytearray(PLAIN), sequence=1, timestamp=2, ssrc=3)
    assert isinstance(out, bytes)
    packet = RtpPacket.parse(out)
    assert (packet.sequence, packet.timestamp, packet.ssrc, packet.marker, packet.payload) == (
        1, 2, 3, True, PLAIN[12:])
    with pytest.raises(ValueError, match=r"^RTP packet too short \(got 3 bytes, need 12\)$"):
        rewrite_header(b"\x80\x00\x00", sequence=1, timestamp=2, ssrc=3)
    with pytest.raises(ValueError, match=r"^RTP version must be 2, got 1$"):
        rewrite_header(bytes([0x40]) + PLAIN[1:], sequence=1, timestamp=2, ssrc=3)


def test_is_rtcp_demultiplexes_rfc5761() -> None:
    assert is_rtcp(RtcpReceiverReport(ssrc=1).serialize())
    assert is_rtcp(RtcpBye([1]).serialize())
    assert not is_rtcp(PLAIN)
    assert not is_rtcp(RtpPacket(101, 1, 1, 1, marker=True).serialize())  # 0x80|101 = 229
    assert not is_rtcp(b"\x80")


# -- RTCP ---------------------------------------------------------------------------

def test_compound_sr_sdes_bye_round_trip() -> None:
    block = RtcpReportBlock(ssrc=9, fraction_lost=64, packets_lost=-3, highest_sequence=70000,
                            jitter=12, lsr=0x12345678, dlsr=65536)
    packets = [
        RtcpSenderReport(ssrc=1, ntp_timestamp=0xE1234567_89ABCDEF, rtp_timestamp=160,
                         packet_count=10, octet_count=1600, reports=[block]),
        RtcpSdes(ssrc=1, cname="call-1@10.0.0.1"),
        RtcpBye(sources=[1], reason="hangup"),
    ]
    data = b"".join(p.serialize() for p in packets)
    assert all(len(p.serialize()) % 4 == 0 for p in packets)
    assert parse_rtcp(data) == packets


def test_receiver_report_round_trip_and_lost_clamped() -> None:
    rr = RtcpReceiverReport(ssrc=5, reports=[RtcpReportBlock(1, 0, 10_000_000, 1, 0)])
    [parsed] = parse_rtcp(rr.serialize())
    assert isinstance(parsed, RtcpReceiverReport)
    assert parsed.reports[0].packets_lost == 0x7FFFFF


def test_sdes_with_several_chunks_and_other_items() -> None:
    chunk1 = (b"\x00\x00\x00\x01" + b"\x01\x03abc" + b"\x02\x01x" + b"\x00" * 4)  # CNAME, NAME, end + pad
    chunk2 = b"\x00\x00\x00\x02" + b"\x00\x00\x00\x00"
    body = chunk1 + chunk2
    data = struct.pack("!BBH", 0x82, 202, len(body) // 4) + body
    assert parse_rtcp(data) == [RtcpSdes(1, "abc"), RtcpSdes(2, None)]


def test_unknown_rtcp_types_are_skipped() -> None:
    app = struct.pack("!BBH", 0x80, 204, 2) + b"\x00\x00\x00\x01" + b"name"
    assert parse_rtcp(app + RtcpBye([3]).serialize()) == [RtcpBye([3])]


@pytest.mark.parametrize(("data", "message"), [
    (b"\x80\xc9\x00", "RTCP packet too short (got 3 bytes, need 4)"),
    (b"\x40\xc9\x00\x01\x00\x00\x00\x01", "RTCP version must be 2, got 1"),
    (b"\x80\xc9\x00\x05\x00\x00\x00\x01", "RTCP packet length 24 exceeds remaining data (8 bytes)"),
    (b"\x81\xc9\x00\x01\x00\x00\x00\x01", "RTCP RR with 1 report blocks too short (got 8 bytes, need 32)"),
    (b"\x80\xc8\x00\x01\x00\x00\x00\x01", "RTCP SR too short (got 8 bytes, need 28)"),
    (b"\x82\xcb\x00\x01\x00\x00\x00\x01", "RTCP BYE with 2 sources too short (got 8 bytes, need 12)"),
    (b"\x81\xcb\x00\x02\x00\x00\x00\x01\x09abc", "RTCP BYE reason truncated (length 9, 3 bytes left)"),
    (b"\xa0\xc9\x00\x01\x00\x00\x00\x09", "RTCP padding length 9 is invalid for a 4-byte body"),
    (b"\x81\xca\x00\x01\x00\x00\x00\x01", "RTCP SDES chunk for SSRC 0x00000001 has no end marker"),
    (b"\x81\xca\x00\x02\x00\x00\x00\x01\x01\x09ab", "RTCP SDES item truncated at byte 8"),
    (RtcpBye([1]).serialize() + b"\x80", "RTCP packet too short (got 1 bytes, need 4)"),
])
def test_malformed_rtcp(data: bytes, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_rtcp(data)
    assert str(info.value) == message


# -- receive statistics -------------------------------------------------------------

def feed(stats: ReceiveStatistics, sequences: list[int], *, ssrc: int = 1) -> None:
    for seq in sequences:
        stats.update(RtpPacket(0, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, ssrc), arrival=seq * 0.02)


def test_statistics_in_order() -> None:
    stats = ReceiveStatistics()
    feed(stats, list(range(100, 110)))
    assert (stats.received, stats.lost, stats.extended_highest_seq) == (10, 0, 109)
    assert stats.jitter == 0.0


def test_statistics_sequence_wraparound() -> None:
    stats = ReceiveStatistics()
    feed(stats, [65533, 65534, 65535, 65536, 65538, 65539])  # 65537 (seq 1) lost
    assert stats.extended_highest_seq == 65536 + 3
    assert (stats.received, stats.lost) == (6, 1)
    block = stats.report_block()
    assert (block.highest_sequence, block.packets_lost, block.fraction_lost) == (65539, 1, 256 // 7)


def test_statistics_reordering_after_wrap_does_not_add_a_cycle() -> None:
    stats = ReceiveStatistics()
    feed(stats, [65534, 0, 65535, 1])
    assert (stats.extended_highest_seq, stats.lost) == (65537, 0)


def test_statistics_duplicates_never_make_loss_negative() -> None:
    stats = ReceiveStatistics()
    feed(stats, [1, 2, 2, 2, 3])
    assert (stats.received, stats.lost) == (5, 0)
    assert stats.report_block().packets_lost == 0


def test_fraction_lost_is_per_interval() -> None:
    stats = ReceiveStatistics()
    feed(stats, [1, 2, 4, 5])  # 1 of 5 lost
    assert stats.report_block().fraction_lost == 256 // 5
    feed(stats, [6, 7, 8, 9])
    block = stats.report_block()
    assert (block.fraction_lost, block.packets_lost) == (0, 1)


def test_large_jump_needs_two_sequential_packets_to_restart() -> None:
    stats = ReceiveStatistics()
    feed(stats, [10, 11, 12])
    assert stats.update(RtpPacket(0, 40000, 0, 1), 1.0) is False
    assert stats.received == 3
    assert stats.update(RtpPacket(0, 40001, 160, 1), 1.02) is True
    assert (stats.received, stats.lost, stats.extended_highest_seq) == (1, 0, 40001)


def test_ssrc_change_restarts_statistics() -> None:
    stats = ReceiveStatistics()
    feed(stats, [1, 2, 5])
    feed(stats, [900, 901], ssrc=2)
    assert (stats.ssrc, stats.received, stats.lost) == (2, 2, 0)


def test_interarrival_jitter_rfc3550_a8() -> None:
    stats = ReceiveStatistics(clock_rate=8000)
    # every other packet is 10 ms (80 units) late: |D| = 80 for each packet after the first
    for i in range(200):
        stats.update(RtpPacket(0, i, i * 160, 1), i * 0.02 + (0.01 if i % 2 else 0.0))
    assert stats.jitter == pytest.approx(80, rel=1e-3)
    assert stats.report_block().jitter == 79


def test_jitter_survives_timestamp_wraparound() -> None:
    stats = ReceiveStatistics()
    for i in range(10):
        stats.update(RtpPacket(0, i, (0xFFFFFF00 + i * 160) & 0xFFFFFFFF, 1), 100.0 + i * 0.02)
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)


def test_report_block_before_any_packet() -> None:
    with pytest.raises(ValueError, match=r"^no RTP packet received yet, nothing to report$"):
        ReceiveStatistics().report_block()
