"""SDES-keyed SRTP (RFC 4568, RFC 3711): the a=crypto lines of an offer and an answer, and
RtpStreams that protect what they send and unprotect what they receive, over loopback.

The far end in the stream tests is a plain UDP socket with its own libsrtp session (not
our code), so what crosses the wire is checked against an independent implementation.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable

import pylibsrtp
import pytest

from sip_bridge.g711 import pcm_to_ulaw, ulaw_to_pcm
from sip_bridge.media import MediaClock, MediaStats, PortAllocator, RtpStream
from sip_bridge.rtp import RtpPacket
from sip_bridge.sdp import (
    Crypto,
    MediaParams,
    NoCommonCodec,
    SdpError,
    SessionDescription,
    SrtpParams,
    accept_answer,
    answer_offer,
    make_offer,
    new_srtp_key,
)
from sip_bridge.tones import detect_tone, goertzel_power, sine
from tests.sip_bridge.test_media import Peer
from tests.support.node import rtp_range

SUITE = "AES_CM_128_HMAC_SHA1_80"
KEY = bytes(range(30))
KEY_B64 = base64.b64encode(KEY).decode()  # AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd
OTHER_KEY = bytes(range(100, 130))
AUTH_TAG = 10  # bytes of HMAC-SHA1-80 after the payload

OFFER = (
    "v=0\r\n"
    "o=phone 1 1 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 6000 {proto} 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "{crypto}"
)


def offer(*crypto: str, proto: str = "RTP/SAVP") -> SessionDescription:
    return SessionDescription.parse(OFFER.format(proto=proto, crypto="".join(f"a=crypto:{c}\r\n" for c in crypto)))


def answer(sd: SessionDescription, **kwargs: object) -> tuple[SessionDescription, MediaParams]:
    return answer_offer(sd, local_ip="127.0.0.1", local_port=40000, session_id=7, **kwargs)  # type: ignore[arg-type]


# -- a=crypto lines ---------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^31",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|1048576",
    f"123456789 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}",
    f"1  AES_CM_128_HMAC_SHA1_80\tinline:{KEY_B64}  ",
], ids=["plain", "lifetime 2^31", "decimal lifetime", "32-bit tag suite", "extra whitespace"])
def test_good_crypto_lines_parse(value: str) -> None:
    crypto = Crypto.parse(value)
    assert crypto.key == KEY and crypto.suite in ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32")
    assert KEY_B64 not in repr(crypto)  # keys never reach a log line through a repr


@pytest.mark.parametrize(("value", "error"), [
    ("", "must be '<tag> <suite> <key-params>'"),
    ("1 AES_CM_128_HMAC_SHA1_80", "must be '<tag> <suite> <key-params>'"),
    (f"x AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}", "tag must be 1-9 digits"),
    (f"1234567890 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}", "tag must be 1-9 digits"),
    (f"1 AEAD_AES_256_GCM inline:{KEY_B64}", "crypto suite 'AEAD_AES_256_GCM' not supported"),
    (f"1 F8_128_HMAC_SHA1_80 inline:{KEY_B64}", "not supported"),
    (f"1 AES_CM_128_HMAC_SHA1_80 uri:http://keys.example/{KEY_B64}", "key method must be 'inline'"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:not*base64!", "not valid base64"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:AAEC", "must be 30 bytes, got 3"),
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^20|1:4", "MKI not supported"),
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|1:4", "MKI not supported"),
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64};inline:{KEY_B64}", "several keys"),
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^99", "lifetime must be 2^n"),
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64} UNENCRYPTED_SRTP", "session parameters not supported"),
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64} KDR=24", "session parameters not supported"),
    ("1 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 2000, "longer than 1024"),
], ids=["empty", "no key", "tag not digits", "tag too long", "GCM suite", "F8 suite", "uri key method",
        "bad base64", "short key", "lifetime and MKI", "MKI", "two keys", "lifetime too long",
        "UNENCRYPTED_SRTP", "key derivation rate", "huge"])
def test_bad_crypto_lines_raise_with_the_reason(value: str, error: str) -> None:
    with pytest.raises(SdpError, match=error.replace("^", r"\^").replace("(", r"\(").replace(")", r"\)")):
        Crypto.parse(value)


# -- answering an offer -------------------------------------------------------------------------

def test_savp_offer_is_answered_with_its_tag_and_a_fresh_key_of_ours() -> None:
    sd, params = answer(offer(f"7 {SUITE} inline:{KEY_B64}"))
    [md] = sd.media
    assert (md.port, md.proto) == (40000, "RTP/SAVP")
    [line] = [v for k, v in md.attributes if k == "crypto"]
    ours = Crypto.parse(line or "")
    assert (ours.tag, ours.suite) == (7, SUITE) and ours.key != KEY
    assert params.srtp == SrtpParams(SUITE, ours.key, KEY)
    _, again = answer(offer(f"7 {SUITE} inline:{KEY_B64}"))
    assert again.srtp is not None and again.srtp.local_key != ours.key  # a fresh key per answer


def test_first_usable_crypto_line_wins_and_bad_ones_are_skipped() -> None:
    sd, params = answer(offer(f"1 AEAD_AES_256_GCM inline:{KEY_B64}", "2 AES_CM_128_HMAC_SHA1_80 inline:short",
                              f"3 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}", f"4 {SUITE} inline:{KEY_B64}"))
    assert params.srtp is not None and params.srtp.suite == "AES_CM_128_HMAC_SHA1_32"
    assert [Crypto.parse(v or "").tag for k, v in sd.media[0].attributes if k == "crypto"] == [3]


def test_plain_offer_with_crypto_lines_gets_srtp() -> None:
    """Best-effort SRTP (baresip's ``mediaenc=srtp``, some phones): RTP/AVP carrying a=crypto."""
    sd, params = answer(offer(f"1 {SUITE} inline:{KEY_B64}", proto="RTP/AVP"))
    assert sd.media[0].proto == "RTP/AVP" and params.srtp is not None and params.srtp.remote_key == KEY


def test_plain_offer_stays_plain() -> None:
    sd, params = answer(offer(proto="RTP/AVP"))
    assert params.srtp is None and not [a for a in sd.media[0].attributes if a[0] == "crypto"]


@pytest.mark.parametrize("crypto", [(), ("1 AES_CM_128_HMAC_SHA1_80 inline:@@@",),
                                    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B64}|2^20|1:4",)],
                         ids=["no crypto line", "malformed key", "with MKI"])
def test_savp_offer_without_a_usable_crypto_line_is_488(crypto: tuple[str, ...]) -> None:
    with pytest.raises(NoCommonCodec) as info:
        answer(offer(*crypto))
    assert "offer: audio 6000 RTP/SAVP [PCMU/8000, PCMA/8000, telephone-event/8000]" in str(info.value)
    if crypto:
        assert "unusable crypto: " in str(info.value)


def test_plain_offer_where_srtp_is_required_is_488() -> None:
    with pytest.raises(NoCommonCodec, match="SRTP required"):
        answer(offer(proto="RTP/AVP"), require_srtp=True)
    _, params = answer(offer(f"1 {SUITE} inline:{KEY_B64}"), require_srtp=True)
    assert params.srtp is not None


def test_savp_stream_without_crypto_is_skipped_for_a_usable_one() -> None:
    text = OFFER.format(proto="RTP/SAVP", crypto="") + OFFER.format(proto="RTP/SAVP", crypto=(
        f"a=crypto:1 {SUITE} inline:{KEY_B64}\r\n")).split("t=0 0\r\n", 1)[1].replace("6000", "6002")
    sd, params = answer(SessionDescription.parse(text))
    assert [m.port for m in sd.media] == [0, 40000] and params.remote_port == 6002 and params.srtp is not None


def test_reoffer_keeps_our_key_while_the_suite_stays() -> None:
    _, first = answer(offer(f"1 {SUITE} inline:{KEY_B64}"))
    assert first.srtp is not None
    _, second = answer(offer(f"2 {SUITE} inline:{base64.b64encode(OTHER_KEY).decode()}"), keep_srtp=first.srtp)
    assert second.srtp == SrtpParams(SUITE, first.srtp.local_key, OTHER_KEY)
    _, third = answer(offer(f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}"), keep_srtp=first.srtp)
    assert third.srtp is not None and third.srtp.local_key != first.srtp.local_key  # new suite: new key


# -- our offer and its answer ---------------------------------------------------------------

def our_offer(key: bytes = KEY) -> SessionDescription:
    return make_offer(local_ip="127.0.0.1", local_port=40000, session_id=1, srtp_key=key)


def their_answer(*crypto: str, proto: str = "RTP/SAVP") -> SessionDescription:
    return SessionDescription.parse(OFFER.format(proto=proto, crypto="".join(f"a=crypto:{c}\r\n" for c in crypto))
                                    .replace(" 0 8 101", " 0 101"))


def test_our_srtp_offer_is_savp_with_one_crypto_line() -> None:
    [md] = SessionDescription.parse(our_offer().to_bytes()).media
    assert md.proto == "RTP/SAVP"
    assert [Crypto.parse(v or "") for k, v in md.attributes if k == "crypto"] == [Crypto(1, SUITE, KEY)]
    with pytest.raises(ValueError, match="30 bytes"):
        our_offer(b"short")


def test_answer_taking_up_our_tag_gives_both_keys() -> None:
    params = accept_answer(our_offer(), their_answer(f"1 {SUITE} inline:{base64.b64encode(OTHER_KEY).decode()}"))
    assert params.srtp == SrtpParams(SUITE, KEY, OTHER_KEY) and params.codec == "PCMU"


@pytest.mark.parametrize("answer_sdp", [
    their_answer(),
    their_answer(f"2 {SUITE} inline:{KEY_B64}"),
    their_answer(f"1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B64}"),
    their_answer("1 AES_CM_128_HMAC_SHA1_80 inline:broken"),
    their_answer(proto="RTP/AVP"),
], ids=["no crypto", "another tag", "another suite", "malformed", "plain answer"])
def test_answer_not_matching_our_srtp_offer_is_refused(answer_sdp: SessionDescription) -> None:
    with pytest.raises(NoCommonCodec, match="no crypto line matching it"):
        accept_answer(our_offer(), answer_sdp)


# -- RtpStream protects and unprotects -----------------------------------------------------

@pytest.fixture
async def media() -> AsyncIterator[tuple[MediaClock, MediaStats, PortAllocator]]:
    clock = MediaClock(asyncio.get_running_loop())
    yield clock, MediaStats(), PortAllocator(*rtp_range(40))
    clock.stop()


def srtp_session(key: bytes, direction: int) -> pylibsrtp.Session:
    return pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=direction))


async def srtp_stream(media: tuple[MediaClock, MediaStats, PortAllocator], port: int, srtp: SrtpParams) -> RtpStream:
    clock, stats, ports = media
    stream = RtpStream(call_id="srtp", clock=clock, stats=stats, local_ip="127.0.0.1", on_dtmf=lambda e: None)
    await stream.open(ports, "127.0.0.1")
    stream.start(MediaParams("127.0.0.1", port, 0, "PCMU", 101, srtp=srtp))
    return stream


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for packets in flight on loopback to be handled (however busy the machine)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def heard(stream: RtpStream, seconds: float) -> bytes:
    frames: list[bytes] = []

    async def listen() -> None:
        async for frame in stream.frames():
            frames.append(frame)

    task = asyncio.ensure_future(listen())
    await asyncio.sleep(seconds)
    task.cancel()
    return b"".join(frames)


async def test_two_streams_talk_srtp_to_each_other(media) -> None:  # type: ignore[no-untyped-def]
    """Protect on one, unprotect on the other, with the keys crossed as SDES sets them up."""
    a_key, b_key = new_srtp_key(), new_srtp_key()
    a = await srtp_stream(media, 1, SrtpParams(SUITE, a_key, b_key))
    b = await srtp_stream(media, a.local_port, SrtpParams(SUITE, b_key, a_key))
    a.start(MediaParams("127.0.0.1", b.local_port, 0, "PCMU", 101, srtp=SrtpParams(SUITE, a_key, b_key)))
    a.send_silence = False
    a.play(pcm_to_ulaw(sine(1000.0, 2.0)), interruptible=False)
    pcm = await heard(b, 1.0)
    assert detect_tone(pcm, 1000.0), goertzel_power(pcm, 1000.0)
    assert b.received > 0 and b.srtp_rejected == 0
    a.close()
    b.close()


async def test_what_goes_out_is_srtp_and_a_tampered_packet_is_dropped_and_counted(media) -> None:  # type: ignore[no-untyped-def]
    peer = Peer()
    ours, theirs = new_srtp_key(), new_srtp_key()
    stream = await srtp_stream(media, peer.port, SrtpParams(SUITE, ours, theirs))
    loop = asyncio.get_running_loop()

    # Out: 172-byte RTP (12 + 160) grows a 10-byte tag and its payload is no longer the tone.
    stream.send_silence = False
    stream.play(pcm_to_ulaw(sine(1000.0, 1.0)), interruptible=False)
    wire = [await asyncio.wait_for(loop.sock_recv(peer.sock, 2048), 5) for _ in range(20)]
    assert {len(p) for p in wire} == {12 + 160 + AUTH_TAG}
    assert not detect_tone(ulaw_to_pcm(b"".join(p[12:172] for p in wire)), 1000.0)
    rx = srtp_session(ours, pylibsrtp.Policy.SSRC_ANY_INBOUND)
    clear = [RtpPacket.parse(rx.unprotect(p)) for p in wire]
    assert detect_tone(ulaw_to_pcm(b"".join(p.payload for p in clear)), 1000.0)

    # In: one tampered packet among good ones; it is dropped, counted, and the call goes on.
    tx = srtp_session(theirs, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    listening = asyncio.ensure_future(heard(stream, 1.5))
    await asyncio.sleep(0.05)
    tone = pcm_to_ulaw(sine(1000.0, 1.0))
    for seq in range(50):
        packet = bytearray(tx.protect(RtpPacket(0, seq, seq * 160, 4321, tone[seq * 160:(seq + 1) * 160]).serialize()))
        if seq == 10:
            packet[40] ^= 0x01  # one bit of the encrypted payload
        peer.sock.sendto(bytes(packet), ("127.0.0.1", stream.local_port))
        await asyncio.sleep(0.02)
    pcm = await listening
    await until(lambda: stream.received + stream.srtp_rejected == 50)
    assert stream.srtp_rejected == 1 and media[1].dropped_srtp == 1
    assert detect_tone(pcm, 1000.0), goertzel_power(pcm, 1000.0)

    # A plain RTP packet on an SRTP stream is no better than a forged one.
    peer.send(RtpPacket(0, 99, 99 * 160, 4321, tone[:160]), stream.local_port)
    await until(lambda: stream.srtp_rejected == 2)
    assert stream.received == 49
    stream.close()


async def test_new_remote_key_starts_a_new_context_and_the_old_key_stops_working(media) -> None:  # type: ignore[no-untyped-def]
    peer = Peer()
    ours, first, second = new_srtp_key(), new_srtp_key(), new_srtp_key()
    stream = await srtp_stream(media, peer.port, SrtpParams(SUITE, ours, first))
    stream.send_silence = False
    old = srtp_session(first, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    new = srtp_session(second, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
    payload = pcm_to_ulaw(sine(1000.0, 0.02))

    def send(session: pylibsrtp.Session, seq: int) -> bytes:
        packet = session.protect(RtpPacket(0, seq, seq * 160, 1, payload).serialize())
        peer.sock.sendto(packet, ("127.0.0.1", stream.local_port))
        return packet

    sent = [send(old, seq) for seq in range(3)]
    await until(lambda: (stream.received, stream.srtp_rejected) == (3, 0))
    # a re-INVITE brought the same keys again: the context goes on, so a replay of seq 2 is refused
    stream.start(MediaParams("127.0.0.1", peer.port, 0, "PCMU", 101, srtp=SrtpParams(SUITE, ours, first)))
    peer.sock.sendto(sent[2], ("127.0.0.1", stream.local_port))
    send(old, 3)
    await until(lambda: (stream.received, stream.srtp_rejected) == (4, 1))
    # new remote key: a fresh context; packets under the old key are refused
    stream.start(MediaParams("127.0.0.1", peer.port, 0, "PCMU", 101, srtp=SrtpParams(SUITE, ours, second)))
    send(old, 4)
    send(new, 0)
    await until(lambda: (stream.received, stream.srtp_rejected) == (5, 2))
    # back to plain RTP (a re-offer without crypto): plain packets are taken again
    stream.start(MediaParams("127.0.0.1", peer.port, 0, "PCMU", 101))
    peer.send(RtpPacket(0, 1, 160, 1, payload), stream.local_port)
    await until(lambda: (stream.received, stream.srtp_rejected) == (6, 2))
    stream.close()
