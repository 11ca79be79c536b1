"""The live recorder's timeline: placement by RTP timestamp, gaps, late packets, pauses, alignment."""

from __future__ import annotations

import types

import numpy as np

from recordings.recorder import JITTER_S, RATE, CallRecording
from sip_bridge.g711 import pcm_to_alaw, ulaw_to_pcm


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def frame(value: int) -> bytes:
    """20 ms of mu-law, all samples one code (easy to find in the output)."""
    return bytes([value]) * 160


def split(block: bytes) -> tuple[bytes, bytes]:
    return block[0::2], block[1::2]


def test_channels_interleave_and_stay_aligned() -> None:
    clock = Clock()
    rec = CallRecording("r1", clock=clock)
    for i in range(50):  # one second, both sides, agent's timestamps from another base
        clock.now += 0.02
        rec.caller.feed(frame(0x10), 1000 + 160 * i, "PCMU")
        rec.agent.feed(frame(0x20), 7_000_000 + 160 * i, "PCMU")
    block = rec.close()
    caller, agent = split(block)
    assert len(caller) == len(agent) == RATE
    assert set(caller) == {0x10} and set(agent) == {0x20}


def test_lost_packet_leaves_silence_of_its_length_and_jitter_does_not_move_audio() -> None:
    clock = Clock()
    rec = CallRecording("r1", clock=clock)
    for i in range(20):
        clock.now += 0.02 + (0.015 if i % 3 == 0 else 0.0)  # jittery arrival
        if i == 7:
            continue  # lost
        rec.caller.feed(frame(0x10 + i), 160 * i, "PCMU")
    caller, _ = split(rec.close())
    start = caller.index(0x10)
    assert caller[start + 7 * 160:start + 8 * 160] == b"\xff" * 160  # the lost frame: silence
    assert caller[start + 8 * 160] == 0x18  # the next frame exactly where its timestamp says


def test_late_packet_is_placed_if_not_written_yet() -> None:
    clock = Clock()
    rec = CallRecording("r1", clock=clock)
    clock.now += 0.02
    rec.caller.feed(frame(0x11), 0, "PCMU")
    clock.now += 0.04
    rec.caller.feed(frame(0x13), 320, "PCMU")
    rec.caller.feed(frame(0x12), 160, "PCMU")  # reordered
    caller, _ = split(rec.close())
    start = caller.index(0x11)
    assert caller[start:start + 480] == frame(0x11) + frame(0x12) + frame(0x13)


def test_blocks_hold_back_the_jitter_allowance_and_add_up() -> None:
    clock = Clock()
    rec = CallRecording("r1", clock=clock)
    total = 0
    for i in range(100):
        clock.now += 0.02
        rec.caller.feed(frame(0x10), 160 * i, "PCMU")
        if i % 25 == 24:
            block = rec.take()
            total += len(block) // 2
            assert rec.written == round((clock.now - 100.0) * RATE) - int(JITTER_S * RATE)
    total += len(rec.close()) // 2
    assert total == 2 * RATE


def test_timestamp_jump_re_anchors_to_the_clock() -> None:
    clock = Clock()
    rec = CallRecording("r1", clock=clock)
    for i in range(10):
        clock.now += 0.02
        rec.agent.feed(frame(0x20), 160 * i, "PCMU")
    for i in range(10):  # a new source after a transfer: unrelated timestamps
        clock.now += 0.02
        rec.agent.feed(frame(0x30), 99_999_999 + 160 * i, "PCMU")
    _, agent = split(rec.close())
    assert agent.count(0x30) == 1600 and agent.count(0x20) == 1600
    assert agent.index(0x30) == agent.index(0x20) + 1600  # straight after, as it was heard


def test_alaw_is_stored_as_mulaw() -> None:
    clock = Clock()
    rec = CallRecording("r1", clock=clock)
    pcm = (np.sin(np.arange(160) / 5) * 8000).astype("<i2").tobytes()
    clock.now += 0.02
    rec.caller.feed(pcm_to_alaw(pcm), 0, "PCMA")
    caller, _ = split(rec.close())
    got = np.frombuffer(ulaw_to_pcm(caller[:160]), "<i2").astype(int)
    want = np.frombuffer(pcm, "<i2").astype(int)
    assert np.max(np.abs(got - want)) <= 512  # two quantisation steps at this level (both laws quantise)


def test_pause_drops_audio_and_notes_the_interval() -> None:
    clock = Clock()
    rec = CallRecording("r1", clock=clock)
    for i in range(150):
        clock.now += 0.02
        if i == 50:
            assert rec.pause("agent")
            assert not rec.pause("agent")
        if i == 100:
            assert rec.resume("agent")
        rec.caller.feed(frame(0x10), 160 * i, "PCMU")
    caller, _ = split(rec.close())
    assert caller.count(0x10) == 100 * 160
    assert rec.pauses == [[1.02, 2.02, "agent"]]


def test_sensitive_section_drops_audio_on_both_channels() -> None:
    clock = Clock()
    caller = types.SimpleNamespace(sensitive=False)
    rec = CallRecording("r1", clock=clock, source=caller)
    for i in range(150):
        clock.now += 0.02
        caller.sensitive = 50 <= i < 100
        rec.caller.feed(frame(0x10), 160 * i, "PCMU")
        rec.agent.feed(frame(0x20), 160 * i, "PCMU")
        if i % 25 == 0:
            rec.take()
    rec.close()
    assert len(rec.pauses) == 1 and rec.pauses[0][2] == "sensitive"
    start, end, _ = rec.pauses[0]
    assert abs(start - 1.02) <= 0.5 and abs(end - 2.02) <= 0.5  # noted to within a block


def test_nothing_is_taken_after_close() -> None:
    clock = Clock()
    rec = CallRecording("r1", clock=clock)
    clock.now += 0.02
    rec.caller.feed(frame(0x10), 0, "PCMU")
    rec.close()
    rec.caller.feed(frame(0x10), 160, "PCMU")
    assert rec.caller.take(160) == b"\xff" * 160


def test_a_burst_after_a_stalled_loop_keeps_its_places() -> None:
    """The event loop stalls for 0.7 s; the packets queued meanwhile arrive at once, in order."""
    clock = Clock()
    rec = CallRecording("r1", clock=clock)
    for i in range(10):
        clock.now += 0.02
        rec.caller.feed(frame(0x10), 160 * i, "PCMU")
    clock.now += 0.7
    for i in range(10, 45):
        rec.caller.feed(frame(0x10), 160 * i, "PCMU")
    for i in range(45, 60):
        clock.now += 0.02
        rec.caller.feed(frame(0x10), 160 * i, "PCMU")
    caller, _ = split(rec.close())
    start = caller.index(0x10)
    assert caller[start:start + 60 * 160] == frame(0x10) * 60  # no silence inside
