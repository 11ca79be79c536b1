import pytest

from sip_bridge.dtmf import (
    EVENTS,
    DtmfEvent,
    DtmfReceiver,
    TelephoneEvent,
    parse_dtmf_relay,
    telephone_event_payloads,
)
from sip_bridge.rtp import RtpPacket


def event_packet(code: int, duration: int, *, end: bool = False, timestamp: int = 8000,
                 sequence: int = 0) -> RtpPacket:
    return RtpPacket(101, sequence, timestamp, 1, TelephoneEvent(code, end, 10, duration).serialize())


def test_telephone_event_round_trip() -> None:
    event = TelephoneEvent(event=11, end=True, volume=10, duration=800)
    assert event.serialize() == b"\x0b\x8a\x03\x20"
    assert TelephoneEvent.parse(event.serialize()) == event
    assert EVENTS[11] == "#"


def test_telephone_event_parse_errors() -> None:
    with pytest.raises(ValueError, match=r"^telephone-event payload too short \(got 3 bytes, need 4\)$"):
        TelephoneEvent.parse(b"\x01\x02\x03")


@pytest.mark.parametrize(("event", "message"), [
    (TelephoneEvent(256, False, 0, 0), "telephone-event code must be 0-255, got 256"),
    (TelephoneEvent(1, False, 64, 0), "telephone-event volume must be 0-63, got 64"),
    (TelephoneEvent(1, False, 0, 70000), "telephone-event duration must be 0-65535, got 70000"),
])
def test_telephone_event_serialize_errors(event: TelephoneEvent, message: str) -> None:
    with pytest.raises(ValueError) as info:
        event.serialize()
    assert str(info.value) == message


def test_payloads_for_one_digit() -> None:
    payloads = telephone_event_payloads("5", duration_ms=100, ptime=20)
    events = [TelephoneEvent.parse(p) for p, _ in payloads]
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert [marker for _, marker in payloads] == [True] + [False] * 6
    assert {e.event for e in events} == {5} and {e.volume for e in events} == {10}


def test_payloads_for_a_digit_shorter_than_ptime() -> None:
    payloads = telephone_event_payloads("d", duration_ms=10)
    assert [m for _, m in payloads] == [True, False, False]
    assert TelephoneEvent.parse(payloads[0][0]) == TelephoneEvent(15, True, 10, 80)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"digit": "x"}, "not a DTMF digit: 'x'"),
    ({"digit": "12"}, "not a DTMF digit: '12'"),
    ({"digit": "1", "duration_ms": 0}, "DTMF duration must be 1-8191 ms, got 0"),
    ({"digit": "1", "duration_ms": 9000}, "DTMF duration must be 1-8191 ms, got 9000"),
    ({"digit": "1", "ptime": 0}, "ptime must be positive, got 0"),
])
def test_payload_argument_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        telephone_event_payloads(**kwargs)
    assert str(info.value) == message


def sender_packets(digit: str, timestamp: int, first_seq: int = 0) -> list[RtpPacket]:
    return [RtpPacket(101, first_seq + i, timestamp, 1, payload, marker)
            for i, (payload, marker) in enumerate(telephone_event_payloads(digit))]


def test_receiver_reports_once_despite_three_end_packets() -> None:
    receiver = DtmfReceiver()
    results = [receiver.feed(p) for p in sender_packets("7", 16000)]
    assert results == [None] * 4 + [DtmfEvent("7", 100, "rfc4733"), None, None]


def test_receiver_reports_repeated_digit_twice() -> None:
    receiver = DtmfReceiver()
    packets = sender_packets("1", 8000) + sender_packets("1", 9600, first_seq=7)
    events = [e for e in map(receiver.feed, packets) if e is not None]
    assert events == [DtmfEvent("1", 100, "rfc4733")] * 2


def test_late_update_after_end_is_ignored() -> None:
    receiver = DtmfReceiver()
    assert receiver.feed(event_packet(3, 800, end=True)) == DtmfEvent("3", 100, "rfc4733")
    assert receiver.feed(event_packet(3, 640)) is None


def test_lost_ends_reported_when_next_event_starts() -> None:
    receiver = DtmfReceiver()
    assert receiver.feed(event_packet(4, 160, timestamp=100)) is None
    assert receiver.feed(event_packet(4, 320, timestamp=100)) is None
    assert receiver.feed(event_packet(6, 160, timestamp=2000)) == DtmfEvent("4", 40, "rfc4733")
    assert receiver.feed(event_packet(6, 800, end=True, timestamp=2000)) == DtmfEvent("6", 100, "rfc4733")


def test_end_arriving_with_a_flush_is_reported_by_its_retransmission() -> None:
    receiver = DtmfReceiver()
    receiver.feed(event_packet(4, 160, timestamp=100))
    assert receiver.feed(event_packet(9, 400, end=True, timestamp=2000)) == DtmfEvent("4", 20, "rfc4733")
    assert receiver.feed(event_packet(9, 400, end=True, timestamp=2000)) == DtmfEvent("9", 50, "rfc4733")
    assert receiver.feed(event_packet(9, 400, end=True, timestamp=2000)) is None


def test_expire_reports_event_whose_ends_were_all_lost() -> None:
    receiver = DtmfReceiver(end_timeout=800)
    receiver.feed(event_packet(2, 480, timestamp=0xFFFFFF00))
    assert receiver.expire(0xFFFFFF00 + 480 + 799 & 0xFFFFFFFF) is None
    assert receiver.expire(0xFFFFFF00 - 160) is None  # a packet from before the event
    assert receiver.expire(0xFFFFFF00 + 480 + 800 & 0xFFFFFFFF) == DtmfEvent("2", 60, "rfc4733")
    assert receiver.expire(0xFFFFFFFF) is None
    assert receiver.feed(event_packet(2, 640, end=True, timestamp=0xFFFFFF00)) is None


def test_non_dtmf_events_are_ignored() -> None:
    receiver = DtmfReceiver()
    assert receiver.feed(event_packet(16, 800, end=True)) is None  # flash
    with pytest.raises(ValueError, match=r"^telephone-event payload too short \(got 0 bytes, need 4\)$"):
        receiver.feed(RtpPacket(101, 1, 1, 1))


@pytest.mark.parametrize(("body", "event"), [
    (b"Signal=5\r\nDuration=160\r\n", DtmfEvent("5", 160, "info")),
    (b"signal= #\nduration= 250", DtmfEvent("#", 250, "info")),
    (b"Signal=*\r\n", DtmfEvent("*", 100, "info")),
    (b"Signal=11\r\nDuration=100\r\n", DtmfEvent("#", 100, "info")),
    (b"Signal=b\r\nDuration=100\r\n", DtmfEvent("B", 100, "info")),
    (b"7", DtmfEvent("7", 100, "info")),
    (b"  0\r\n", DtmfEvent("0", 100, "info")),
])
def test_sip_info_bodies(body: bytes, event: DtmfEvent) -> None:
    assert parse_dtmf_relay(body) == event


@pytest.mark.parametrize(("body", "message"), [
    (b"", "dtmf-relay body is empty"),
    (b"\r\n", "dtmf-relay body is empty"),
    (b"Signal=\xe9", "dtmf-relay body is not ASCII"),
    (b"Duration=160", "dtmf-relay body has no Signal line"),
    (b"Signal=X\r\nDuration=160", "dtmf-relay Signal is not a DTMF digit: 'X'"),
    (b"Signal=16", "dtmf-relay Signal is not a DTMF digit: '16'"),
    (b"Signal=1\r\nDuration=-5", "dtmf-relay Duration must be a non-negative integer, got '-5'"),
    (b"55", "dtmf-relay Signal is not a DTMF digit: '55'"),
])
def test_bad_sip_info_bodies(body: bytes, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_dtmf_relay(body)
    assert str(info.value) == message
