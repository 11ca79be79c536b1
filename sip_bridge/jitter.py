"""Sans-I/O jitter buffer for fixed-ptime audio, driven by the media clock.

``put`` on every received packet, ``get`` once per frame tick. Playout starts
once ``prefetch`` frames are buffered; after an underrun it waits for
``prefetch`` frames again, which is how the delay grows when the network gets
worse. Sequence numbers are compared modulo 2**16.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rtp import MAX_DROPOUT, MAX_MISORDER, RtpPacket


def _seq_delta(a: int, b: int) -> int:
    """a - b for 16-bit sequence numbers, in -32768..32767."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


@dataclass
class JitterStats:
    lost: int = 0        # slots with no packet when they were due (or skipped by an overflow)
    late: int = 0        # packets that arrived after their slot (includes duplicates of played packets)
    duplicates: int = 0  # packets already in the buffer
    overflow: int = 0    # buffered packets dropped to make room
    resyncs: int = 0     # restarts after an SSRC change or a sequence jump


class JitterBuffer:
    def __init__(self, *, capacity: int = 16, prefetch: int = 2) -> None:
        if not 1 <= prefetch <= capacity:
            raise ValueError(f"prefetch must be 1..capacity ({capacity}), got {prefetch}")
        self.capacity = capacity
        self.prefetch = prefetch
        self.stats = JitterStats()
        self._packets: dict[int, RtpPacket] = {}
        self._ssrc: int | None = None
        self._next: int | None = None  # next sequence to play; lowest buffered before the first playout
        self._played = False  # once true, _next only moves forward
        self._buffering = True

    def __len__(self) -> int:
        return len(self._packets)

    def _restart(self, packet: RtpPacket) -> None:
        if self._ssrc is not None:
            self.stats.resyncs += 1
        self._packets.clear()
        self._ssrc = packet.ssrc
        self._next = packet.sequence
        self._played = False
        self._buffering = True

    def put(self, packet: RtpPacket) -> None:
        seq = packet.sequence
        if packet.ssrc != self._ssrc:
            self._restart(packet)
        assert self._next is not None
        delta = _seq_delta(seq, self._next)
        if delta > MAX_DROPOUT or delta < -MAX_MISORDER:
            self._restart(packet)  # the sender restarted its sequence
            delta = 0
        if delta < 0:
            if self._played:
                self.stats.late += 1
                return
            self._slide_to(seq)  # reordered before playout began: start earlier
        elif delta >= self.capacity:
            self._slide_to((seq - self.capacity + 1) & 0xFFFF)
        if seq in self._packets:
            self.stats.duplicates += 1
            return
        self._packets[seq] = packet

    def _slide_to(self, start: int) -> None:
        """Move the window [start, start + capacity) and drop what falls outside it.
        Rare (reordering before playout, overflow), so scanning the dict is fine."""
        assert self._next is not None
        outside = [s for s in self._packets if not 0 <= _seq_delta(s, start) < self.capacity]
        for s in outside:
            del self._packets[s]
        self.stats.overflow += len(outside)
        skipped = _seq_delta(start, self._next)
        if self._played and skipped > 0:
            self.stats.lost += skipped - len(outside)
        self._next = start

    def get(self) -> RtpPacket | None:
        """The packet due now, or None (loss, underrun or still prefetching)."""
        packets = self._packets
        if self._buffering:
            if len(packets) < self.prefetch:
                return None
            self._buffering = False
            self._resume()
        assert self._next is not None
        packet = packets.pop(self._next, None)
        if packet is None:
            if packets:
                self.stats.lost += 1
            else:
                self._buffering = True  # underrun: wait for prefetch frames again
                return None
        self._next = (self._next + 1) & 0xFFFF
        self._played = True
        return packet

    def _resume(self) -> None:
        """Start from the lowest buffered sequence, counting what was skipped as lost."""
        assert self._next is not None
        current = self._next
        lowest = min(self._packets, key=lambda s: _seq_delta(s, current))
        if self._played:
            self.stats.lost += _seq_delta(lowest, current)
        self._next = lowest
