import pytest

from sip_bridge.sdp import (
    CODECS,
    MediaDescription,
    MediaParams,
    NoCommonCodec,
    SdpError,
    SessionDescription,
    accept_answer,
    answer_offer,
    make_offer,
)

SIPP_OFFER = (
    "v=0\r\n"
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
)

PHONE_OFFER = (
    "v=0\n"
    "o=- 3868500000 3868500001 IN IP4 192.0.2.10\n"
    "s=Polycom\n"
    "c=IN IP4 192.0.2.10\n"
    "b=AS:64\n"
    "t=0 0\n"
    "a=X-unknown-session-thing\n"
    "m=audio 16384 RTP/AVP 9 8 0 101\n"
    "a=rtpmap:9 G722/8000\n"
    "a=rtpmap:8 PCMA/8000\n"
    "a=rtpmap:0 PCMU/8000\n"
    "a=rtpmap:101 telephone-event/8000\n"
    "a=fmtp:101 0-15\n"
    "a=ptime:30\n"
    "a=sendrecv\n"
    "y=unknown line type\n"
)


def answer(text: str, **kwargs: object) -> tuple[SessionDescription, MediaParams]:
    options: dict = {"local_ip": "10.0.0.1", "local_port": 40000, "session_id": 42, **kwargs}
    return answer_offer(SessionDescription.parse(text), **options)


# -- parsing -------------------------------------------------------------------

def test_parse_sipp_offer() -> None:
    sd = SessionDescription.parse(SIPP_OFFER.encode())
    assert (sd.username, sd.sess_id, sd.sess_version, sd.address) == ("user1", 53655765, 2353687637, "127.0.0.1")
    assert sd.connection == "127.0.0.1"
    assert sd.timing == (0, 0)
    [md] = sd.media
    assert (md.media, md.port, md.proto, md.formats) == ("audio", 6000, "RTP/AVP", ["0"])
    assert md.rtpmap == {0: ("PCMU", 8000)}
    assert md.direction == "sendrecv"
    assert md.ptime is None


def test_round_trip_is_crlf_and_stable() -> None:
    sd = SessionDescription.parse(SIPP_OFFER)
    assert sd.to_bytes().decode() == SIPP_OFFER
    assert SessionDescription.parse(sd.to_bytes()) == sd


def test_lf_only_unknown_lines_and_helpers() -> None:
    sd = SessionDescription.parse(PHONE_OFFER)
    [md] = sd.media
    assert sd.session_name == "Polycom"
    assert sd.attributes == [("X-unknown-session-thing", None)]
    assert md.rtpmap[101] == ("telephone-event", 8000)
    assert md.fmtp == {101: "0-15"}
    assert md.ptime == 30
    assert SessionDescription.parse(sd.to_bytes()) == sd
    assert b"\r\n" in sd.to_bytes() and b"y=" not in sd.to_bytes()


def test_static_payload_types_need_no_rtpmap() -> None:
    md = MediaDescription("audio", 1, "RTP/AVP", ["8", "0", "97"], [("rtpmap", "97 opus/48000/2")])
    assert md.payload_map == {8: ("PCMA", 8000), 0: ("PCMU", 8000), 97: ("opus", 48000)}


def test_media_level_connection_and_ipv6_round_trip() -> None:
    sd = make_offer(local_ip="2001:db8::1", local_port=5004, session_id=1)
    sd.media[0].connection = "2001:db8::2"
    text = sd.to_bytes()
    assert b"c=IN IP6 2001:db8::1\r\n" in text and b"c=IN IP6 2001:db8::2\r\n" in text
    assert SessionDescription.parse(text) == sd


@pytest.mark.parametrize(("text", "message"), [
    ("", "SDP is empty"),
    ("\r\n\r\n", "SDP is empty"),
    ("o=- 1 1 IN IP4 1.2.3.4\r\n", "line 1: SDP must start with v=, got 'o=- 1 1 IN IP4 1.2.3.4'"),
    ("v=1\r\n", "line 1: unsupported SDP version '1', expected 0"),
    ("v=0\r\ns=-\r\n", "SDP has no o= line"),
    ("v=0\r\nthis is not sdp\r\n", "line 2: expected '<type>=<value>', got 'this is not sdp'"),
    ("v=0\r\no=- 1 IN IP4 1.2.3.4\r\n", "line 2: o= must have 6 fields, got 5: '- 1 IN IP4 1.2.3.4'"),
    ("v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n", "line 2: o= sess-id must be numeric, got 'x'"),
    ("v=0\r\no=- 1 y IN IP4 1.2.3.4\r\n", "line 2: o= sess-version must be numeric, got 'y'"),
    ("v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4\r\n", "line 3: c= must be 'IN <addrtype> <address>', got 'IN IP4'"),
    ("v=0\r\no=- 1 1 IN IP4 h\r\nt=now\r\n", "line 3: t= must be '<start> <stop>', got 'now'"),
    ("v=0\r\no=- 1 1 IN IP4 h\r\na=:x\r\n", "line 3: a= attribute has no name: ':x'"),
    ("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 6000\r\n",
     "line 3: m= must be '<media> <port> <proto> <fmt> ...', got 'audio 6000'"),
    ("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 70000 RTP/AVP 0\r\n", "line 3: m= port must be 0-65535, got '70000'"),
    ("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:x PCMU/8000\r\n",
     "a=rtpmap payload type must be 0-127, got 'x PCMU/8000'"),
    ("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
     "a=rtpmap must be '<pt> <encoding>/<clock rate>', got '0 PCMU'"),
    ("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=ptime:fast\r\n",
     "a=ptime must be a positive integer, got 'fast'"),
    ("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 1 RTP/AVP 0\r\na=fmtp:x 0-15\r\n",
     "a=fmtp must start with a payload type, got 'x 0-15'"),
])
def test_malformed_sdp_is_rejected_with_precise_message(text: str, message: str) -> None:
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(text)
    assert str(info.value) == message


def test_non_utf8_and_oversized_sdp() -> None:
    with pytest.raises(SdpError, match=r"^SDP is not valid UTF-8 \(byte 3\)$"):
        SessionDescription.parse(b"v=0\xff\r\n")
    with pytest.raises(SdpError, match=r"^SDP too large \(70000 bytes, limit 65536\)$"):
        SessionDescription.parse("v=0\r\n" + "a=x\r\n" * 13999)


def test_too_many_media_lines() -> None:
    text = "v=0\r\no=- 1 1 IN IP4 h\r\n" + "m=audio 1 RTP/AVP 0\r\n" * 17
    with pytest.raises(SdpError, match=r"^line 19: too many m= lines \(limit 16\)$"):
        SessionDescription.parse(text)


# -- answering offers ---------------------------------------------------------------

def test_answer_sipp_offer() -> None:
    sd, params = answer(SIPP_OFFER)
    assert params == MediaParams("127.0.0.1", 6000, 0, "PCMU", None, 20, "sendrecv", "sendrecv")
    assert not params.on_hold
    assert sd.to_bytes().decode() == (
        "v=0\r\no=- 42 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")


def test_answer_picks_offerers_first_supported_codec_and_echoes_dtmf_and_ptime() -> None:
    sd, params = answer(PHONE_OFFER)
    assert (params.codec, params.payload_type, params.telephone_event_pt, params.ptime) == ("PCMA", 8, 101, 30)
    [md] = sd.media
    assert md.formats == ["8", "101"]
    assert md.attributes == [("rtpmap", "8 PCMA/8000"), ("rtpmap", "101 telephone-event/8000"),
                             ("fmtp", "101 0-15"), ("ptime", "30"), ("sendrecv", None)]


def test_answer_restricted_local_codecs() -> None:
    _, params = answer(PHONE_OFFER, codecs=["pcmu"])
    assert (params.codec, params.payload_type) == ("PCMU", 0)


def test_dynamic_payload_type_for_telephone_event_is_echoed() -> None:
    text = SIPP_OFFER.replace("RTP/AVP 0", "RTP/AVP 0 96") + "a=rtpmap:96 telephone-event/8000\r\n"
    sd, params = answer(text)
    assert params.telephone_event_pt == 96
    assert sd.media[0].fmtp == {96: "0-15"}


def test_telephone_event_at_other_clock_rate_is_ignored() -> None:
    text = SIPP_OFFER.replace("RTP/AVP 0", "RTP/AVP 0 110") + "a=rtpmap:110 telephone-event/48000\r\n"
    _, params = answer(text)
    assert params.telephone_event_pt is None


@pytest.mark.parametrize(("offered", "local", "ours", "on_hold"), [
    ("sendonly", "sendrecv", "recvonly", True),
    ("inactive", "sendrecv", "inactive", True),
    ("recvonly", "sendrecv", "sendonly", False),
    ("sendrecv", "sendonly", "sendonly", False),
    ("sendonly", "sendonly", "inactive", True),
    ("recvonly", "recvonly", "inactive", False),
])
def test_direction_answered_per_rfc3264(offered: str, local: str, ours: str, on_hold: bool) -> None:
    sd, params = answer(SIPP_OFFER + f"a={offered}\r\n", local_direction=local)
    assert params.direction == ours
    assert sd.media[0].direction == ours
    assert params.on_hold is on_hold


def test_session_level_direction_applies_to_media() -> None:
    text = SIPP_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n")
    _, params = answer(text)
    assert params.direction == "recvonly" and params.on_hold


def test_rfc2543_hold_with_zero_connection() -> None:
    sd, params = answer(SIPP_OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"))
    assert params.remote_ip == "0.0.0.0"
    assert params.remote_direction == "sendonly"
    assert params.direction == "recvonly"
    assert params.on_hold


def test_non_audio_and_extra_audio_streams_are_rejected_with_port_zero() -> None:
    text = (SIPP_OFFER.replace("m=audio", "m=video 7000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=audio")
            + "m=audio 6002 RTP/AVP 8\r\n")
    sd, params = answer(text)
    assert [(m.media, m.port, m.formats) for m in sd.media] == [
        ("video", 0, ["96"]), ("audio", 40000, ["0"]), ("audio", 0, ["8"])]
    assert params.remote_port == 6000


def test_srtp_stream_is_skipped_for_plain_rtp_one() -> None:
    text = SIPP_OFFER.replace("m=audio 6000 RTP/AVP 0", "m=audio 5000 RTP/SAVP 0\r\nm=audio 6000 RTP/AVP 0")
    sd, params = answer(text)
    assert [m.port for m in sd.media] == [0, 40000]
    assert params.remote_port == 6000


def test_media_level_connection_wins() -> None:
    _, params = answer(SIPP_OFFER + "c=IN IP4 198.51.100.7\r\n")
    assert params.remote_ip == "198.51.100.7"


def test_wideband_only_offer_raises_no_common_codec() -> None:
    text = SIPP_OFFER.replace("RTP/AVP 0\r\na=rtpmap:0 PCMU/8000",
                              "RTP/AVP 9 111\r\na=rtpmap:9 G722/8000\r\na=rtpmap:111 opus/48000/2")
    with pytest.raises(NoCommonCodec) as info:
        answer(text)
    assert str(info.value) == ("no common codec (we support PCMU, PCMA over RTP/AVP, or RTP/SAVP with "
                               "AES_CM_128_HMAC_SHA1_80 or AES_CM_128_HMAC_SHA1_32); "
                               "offer: audio 6000 RTP/AVP [G722/8000, opus/48000]")
    assert isinstance(info.value, SdpError)


def test_offer_without_media_raises_no_common_codec() -> None:
    text = SIPP_OFFER.split("m=")[0]
    with pytest.raises(NoCommonCodec, match=r"offer: no media$"):
        answer(text)


def test_audio_without_connection_is_an_error() -> None:
    with pytest.raises(SdpError, match=r"^offered audio stream has no connection address: "
                                       r"audio 6000 RTP/AVP \[PCMU/8000\]$"):
        answer(SIPP_OFFER.replace("c=IN IP4 127.0.0.1\r\n", ""))


def test_answer_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"^codecs must be a non-empty subset of PCMU, PCMA, got \['G729'\]$"):
        answer(SIPP_OFFER, codecs=["G729"])
    with pytest.raises(ValueError, match=r"^direction must be one of sendrecv, sendonly, recvonly, "
                                         r"inactive, got 'hold'$"):
        answer(SIPP_OFFER, local_direction="hold")


# -- our offers and their answers --------------------------------------------------

def test_make_offer() -> None:
    offer = make_offer(local_ip="10.0.0.1", local_port=40000, session_id=9)
    assert offer.to_bytes().decode() == (
        "v=0\r\no=- 9 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n")
    assert CODECS == {"PCMU": 0, "PCMA": 8}


def test_make_offer_validates() -> None:
    with pytest.raises(ValueError, match=r"^telephone_event_pt must be a dynamic payload type 96-127, got 8$"):
        make_offer(local_ip="h", local_port=1, session_id=1, telephone_event_pt=8)
    offer = make_offer(local_ip="h", local_port=1, session_id=1, telephone_event_pt=None)
    assert offer.media[0].formats == ["0", "8"]


def test_offer_answer_loop_between_two_sides() -> None:
    offer = make_offer(local_ip="10.0.0.1", local_port=40000, session_id=1, codecs=["PCMA", "PCMU"])
    their_sd, theirs = answer_offer(SessionDescription.parse(offer.to_bytes()), local_ip="10.0.0.2",
                                    local_port=50000, session_id=2)
    ours = accept_answer(offer, SessionDescription.parse(their_sd.to_bytes()))
    assert theirs == MediaParams("10.0.0.1", 40000, 8, "PCMA", 101, 20, "sendrecv", "sendrecv")
    assert ours == MediaParams("10.0.0.2", 50000, 8, "PCMA", 101, 20, "sendrecv", "sendrecv")


def test_we_put_the_peer_on_hold() -> None:
    offer = make_offer(local_ip="10.0.0.1", local_port=40000, session_id=1, direction="sendonly")
    their_sd, theirs = answer_offer(offer, local_ip="10.0.0.2", local_port=50000, session_id=2)
    assert theirs.on_hold and theirs.direction == "recvonly"
    ours = accept_answer(offer, their_sd)
    assert ours.direction == "sendonly" and not ours.on_hold


def test_accept_answer_rejected_stream() -> None:
    offer = make_offer(local_ip="10.0.0.1", local_port=40000, session_id=1)
    rejected = SessionDescription.parse(SIPP_OFFER.replace("m=audio 6000", "m=audio 0"))
    with pytest.raises(NoCommonCodec, match=r"^answer rejected every audio stream \(port 0\)$"):
        accept_answer(offer, rejected)


def test_accept_answer_with_codec_we_did_not_offer() -> None:
    offer = make_offer(local_ip="10.0.0.1", local_port=40000, session_id=1, codecs=["PCMA"])
    with pytest.raises(NoCommonCodec, match=r"^answer has no codec we offered: audio 6000 RTP/AVP \[PCMU/8000\]$"):
        accept_answer(offer, SessionDescription.parse(SIPP_OFFER))


def test_accept_answer_with_wrong_stream_count() -> None:
    offer = make_offer(local_ip="10.0.0.1", local_port=40000, session_id=1)
    with pytest.raises(SdpError, match=r"^answer has 0 media streams, offer had 1$"):
        accept_answer(offer, SessionDescription.parse(SIPP_OFFER.split("m=")[0]))


def test_accept_answer_ignores_dtmf_we_did_not_offer() -> None:
    offer = make_offer(local_ip="10.0.0.1", local_port=40000, session_id=1, telephone_event_pt=None)
    text = SIPP_OFFER.replace("RTP/AVP 0", "RTP/AVP 0 101") + "a=rtpmap:101 telephone-event/8000\r\n"
    assert accept_answer(offer, SessionDescription.parse(text)).telephone_event_pt is None
