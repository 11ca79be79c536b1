import pytest

from sip_bridge.jitter import JitterBuffer, JitterStats
from sip_bridge.rtp import RtpPacket


def pkt(seq: int, ssrc: int = 1) -> RtpPacket:
    return RtpPacket(0, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, ssrc, bytes([seq & 0xFF]))


def played(buffer: JitterBuffer, ticks: int) -> list[int | None]:
    out = []
    for _ in range(ticks):
        packet = buffer.get()
        out.append(None if packet is None else packet.sequence)
    return out


def test_prefetch_then_in_order_playout() -> None:
    buffer = JitterBuffer(prefetch=2)
    buffer.put(pkt(10))
    assert buffer.get() is None  # still prefetching
    buffer.put(pkt(11))
    buffer.put(pkt(12))
    assert played(buffer, 3) == [10, 11, 12]
    assert buffer.stats == JitterStats()


def test_reordered_packets_are_played_in_sequence() -> None:
    buffer = JitterBuffer(prefetch=3)
    for seq in (3, 1, 2, 5, 4):
        buffer.put(pkt(seq))
    assert played(buffer, 5) == [1, 2, 3, 4, 5]
    assert buffer.stats == JitterStats()


def test_sequence_wraparound() -> None:
    buffer = JitterBuffer(prefetch=2)
    for seq in (65534, 0, 65535, 1):
        buffer.put(pkt(seq))
    assert played(buffer, 4) == [65534, 65535, 0, 1]
    assert buffer.stats == JitterStats()


def test_gap_is_played_as_none_then_continues() -> None:
    buffer = JitterBuffer(prefetch=2)
    for seq in (1, 2, 4, 5):
        buffer.put(pkt(seq))
    assert played(buffer, 4) == [1, 2, None, 4]
    assert buffer.stats.lost == 1
    buffer.put(pkt(3))  # too late: its slot has passed
    assert buffer.stats.late == 1
    assert played(buffer, 1) == [5]


def test_duplicates_are_dropped_and_counted() -> None:
    buffer = JitterBuffer(prefetch=2)
    for seq in (1, 1, 2, 2, 2):
        buffer.put(pkt(seq))
    assert played(buffer, 3) == [1, 2, None]
    assert buffer.stats.duplicates == 3
    buffer.put(pkt(2))  # a copy of an already played packet looks late
    assert buffer.stats.late == 1


def test_underrun_rebuffers_and_counts_skipped_as_lost() -> None:
    buffer = JitterBuffer(prefetch=2)
    buffer.put(pkt(1))
    buffer.put(pkt(2))
    assert played(buffer, 4) == [1, 2, None, None]  # underrun
    buffer.put(pkt(6))
    assert buffer.get() is None  # waiting for prefetch again
    buffer.put(pkt(7))
    assert played(buffer, 2) == [6, 7]
    assert buffer.stats.lost == 3  # 3, 4 and 5 never came


def test_overflow_drops_oldest_and_slides_window() -> None:
    buffer = JitterBuffer(capacity=4, prefetch=2)
    for seq in range(1, 8):
        buffer.put(pkt(seq))
    assert len(buffer) == 4
    assert buffer.stats.overflow == 3
    assert played(buffer, 4) == [4, 5, 6, 7]


def test_overflow_while_playing_counts_skipped_slots_as_lost() -> None:
    buffer = JitterBuffer(capacity=4, prefetch=1)
    buffer.put(pkt(1))
    assert played(buffer, 1) == [1]
    buffer.put(pkt(2))
    buffer.put(pkt(9))  # window moves to 6..9: packet 2 overflows, 3-5 are lost
    assert (buffer.stats.overflow, buffer.stats.lost) == (1, 3)
    assert played(buffer, 4) == [None, None, None, 9]
    assert buffer.stats.lost == 6


def test_early_packet_before_playout_cannot_stretch_window_past_capacity() -> None:
    buffer = JitterBuffer(capacity=4, prefetch=3)
    for seq in (10, 11, 12, 13):
        buffer.put(pkt(seq))
    buffer.put(pkt(8))  # reordered: the stream really starts at 8, 12 and 13 no longer fit
    assert buffer.stats.overflow == 2
    assert played(buffer, 4) == [8, None, 10, 11]


def test_ssrc_change_restarts_the_buffer() -> None:
    buffer = JitterBuffer(prefetch=2)
    buffer.put(pkt(100))
    buffer.put(pkt(101))
    assert played(buffer, 1) == [100]
    buffer.put(pkt(5, ssrc=2))
    buffer.put(pkt(6, ssrc=2))
    assert played(buffer, 2) == [5, 6]
    assert buffer.stats.resyncs == 1 and buffer.stats.late == 0


def test_large_sequence_jump_restarts_the_buffer() -> None:
    buffer = JitterBuffer(prefetch=1)
    buffer.put(pkt(100))
    assert played(buffer, 1) == [100]
    buffer.put(pkt(30000))
    assert played(buffer, 1) == [30000]
    buffer.put(pkt(20))  # far behind: a restarted sender, not a late packet
    assert played(buffer, 1) == [20]
    assert buffer.stats.resyncs == 2 and buffer.stats.late == 0 and buffer.stats.lost == 0


def test_prefetch_must_fit_capacity() -> None:
    with pytest.raises(ValueError, match=r"^prefetch must be 1\.\.capacity \(4\), got 5$"):
        JitterBuffer(capacity=4, prefetch=5)
