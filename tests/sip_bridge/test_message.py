"""SIP message model, parser, serializer, stream framing and make_response."""

from __future__ import annotations

import pytest

from sip_bridge.message import (
    MAX_HEADERS,
    MAX_LINE_LENGTH,
    MAX_MESSAGE_SIZE,
    Headers,
    SecurityError,
    SipError,
    SipRequest,
    SipResponse,
    StreamParser,
    generate_branch,
    generate_call_id,
    generate_tag,
    make_response,
    parse_message,
)
from sip_bridge.uri import SipUri

INVITE_HEAD = (
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n"
    "Max-Forwards: 70\r\n"
    "To: Bob <sip:bob@biloxi.example.com>\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    "Content-Type: application/sdp\r\n"
)
SDP = b"v=0\r\no=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n"


def invite(extra: str = "", body: bytes = SDP, length: int | None = None) -> bytes:
    cl = len(body) if length is None else length
    return (INVITE_HEAD + extra + f"Content-Length: {cl}\r\n\r\n").encode() + body


def build(start: str, *headers: str, body: bytes = b"") -> bytes:
    return (start + "\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode() + body


BASE = (
    "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
    "To: <sip:b@h>",
    "From: <sip:a@h>;tag=1",
    "Call-ID: c1",
    "CSeq: 1 OPTIONS",
)


# ------------------------------------------------------------------ Headers


def test_headers_case_insensitive_and_compact_forms() -> None:
    h = Headers([("v", "SIP/2.0/UDP a"), ("VIA", "SIP/2.0/UDP b"), ("i", "x@y"), ("call-id", "dup")])
    assert h.get("Via") == "SIP/2.0/UDP a"
    assert h.get_all("via") == ["SIP/2.0/UDP a", "SIP/2.0/UDP b"]
    assert h.get("CALL-ID") == "x@y"
    assert h.items()[0] == ("Via", "SIP/2.0/UDP a")
    assert h.items()[2] == ("Call-ID", "x@y")
    assert "i" in h and "Call-Id" in h and "Route" not in h


@pytest.mark.parametrize(
    ("compact", "full"),
    [
        ("i", "Call-ID"), ("m", "Contact"), ("e", "Content-Encoding"), ("l", "Content-Length"),
        ("c", "Content-Type"), ("f", "From"), ("s", "Subject"), ("k", "Supported"), ("t", "To"),
        ("v", "Via"), ("o", "Event"), ("u", "Allow-Events"), ("r", "Refer-To"), ("b", "Referred-By"),
        ("x", "Session-Expires"), ("a", "Accept-Contact"), ("j", "Reject-Contact"), ("d", "Request-Disposition"),
        ("y", "Identity"), ("n", "Identity-Info"),
    ],
)
def test_compact_names_normalised(compact: str, full: str) -> None:
    h = Headers([(compact.upper(), " value ")])
    assert h.items() == [(full, "value")]


def test_canonical_spelling_of_known_names() -> None:
    h = Headers([("www-authenticate", "Digest x=1"), ("cseq", "1 A"), ("x-custom-Thing", "v")])
    assert [n for n, _ in h.items()] == ["WWW-Authenticate", "CSeq", "x-custom-Thing"]


def test_get_all_splits_lists_but_not_quoted_commas() -> None:
    h = Headers()
    h.add("Contact", '"Doe, John" <sip:j@h;x=a,b>;q=0.5, <sip:k@h>,sip:l@h')
    h.add("Contact", "<sip:m@h>")
    assert h.get_all("Contact") == ['"Doe, John" <sip:j@h;x=a,b>;q=0.5', "<sip:k@h>", "sip:l@h", "<sip:m@h>"]


@pytest.mark.parametrize(
    "name",
    ["WWW-Authenticate", "Authorization", "Proxy-Authenticate", "Proxy-Authorization", "Date", "X-Unknown"],
)
def test_get_all_does_not_split_non_list_headers(name: str) -> None:
    value = 'Digest realm="a", nonce="b", qop="auth"' if "Auth" in name else "Sat, 13 Nov 2010 23:29:00 GMT"
    h = Headers([(name, value)])
    assert h.get_all(name) == [value]


def test_headers_set_keeps_position_and_remove() -> None:
    h = Headers([("X-A", "1"), ("Route", "<sip:r1>"), ("X-B", "2"), ("route", "<sip:r2>")])
    h.set("Route", "<sip:new>")
    assert h.items() == [("X-A", "1"), ("Route", "<sip:new>"), ("X-B", "2")]
    h.set("X-C", "3")
    assert h.items()[-1] == ("X-C", "3")
    h.remove("x-a")
    assert [n for n, _ in h.items()] == ["Route", "X-B", "X-C"]
    h.remove("missing")
    assert h.get("missing", "dflt") == "dflt"


def test_headers_copy_is_independent() -> None:
    h = Headers([("To", "<sip:a@b>")])
    c = h.copy()
    c.add("From", "<sip:c@d>")
    assert "From" not in h and c == Headers([("To", "<sip:a@b>"), ("From", "<sip:c@d>")])


def test_mutating_headers_invalidates_cached_parse() -> None:
    msg = parse_message(invite())
    assert msg.to_tag is None
    msg.headers.set("To", "Bob <sip:bob@biloxi.example.com>;tag=abc")
    assert msg.to_tag == "abc"


# ------------------------------------------------------------------ parsing


def test_parse_rfc3261_invite() -> None:
    msg = parse_message(invite())
    assert isinstance(msg, SipRequest)
    assert msg.method == "INVITE"
    assert msg.uri == SipUri.parse("sip:bob@biloxi.example.com")
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert msg.cseq == (314159, "INVITE")
    assert msg.top_via.branch == "z9hG4bK776asdhds"
    assert msg.from_tag == "1928301774" and msg.to_tag is None
    assert msg.from_addr.display_name == "Alice"
    assert [str(c.uri) for c in msg.contact] == ["sip:alice@pc33.atlanta.example.com"]
    assert msg.content_type == "application/sdp"
    assert msg.max_forwards == 70
    assert msg.body == SDP


def test_parse_response() -> None:
    data = build("SIP/2.0 180 Ringing", *BASE[:-1], "CSeq: 1 INVITE", "Content-Length: 0")
    msg = parse_message(data)
    assert isinstance(msg, SipResponse)
    assert (msg.status, msg.reason, msg.cseq) == (180, "Ringing", (1, "INVITE"))


def test_round_trip_is_stable() -> None:
    data = invite()
    msg = parse_message(data)
    assert msg.to_bytes() == data
    assert parse_message(msg.to_bytes()) == msg


def test_folded_headers_are_unfolded() -> None:
    data = build(
        "OPTIONS sip:a@h SIP/2.0", *BASE[:-1], "Subject: I know you're there,\r\n   pick up the phone\r\n\tand talk to me!",
        "CSeq: 1\r\n OPTIONS", "Content-Length: 0",
    )
    msg = parse_message(data)
    assert msg.headers.get("Subject") == "I know you're there, pick up the phone and talk to me!"
    assert msg.cseq == (1, "OPTIONS")


def test_leading_crlf_and_bare_lf_line_ends_accepted() -> None:
    data = b"\r\n\r\n" + build("OPTIONS sip:a@h SIP/2.0", *BASE, "Content-Length: 0").replace(b"\r\n", b"\n")
    assert parse_message(data).call_id == "c1"


def test_missing_max_forwards_defaults_to_70() -> None:
    assert parse_message(build("OPTIONS sip:a@h SIP/2.0", *BASE)).max_forwards == 70


def test_content_length_absent_on_datagram_means_rest_of_packet() -> None:
    assert parse_message(build("OPTIONS sip:a@h SIP/2.0", *BASE, body=b"hello")).body == b"hello"


def test_content_length_shorter_than_datagram_truncates() -> None:
    assert parse_message(invite(body=SDP + b"garbage", length=len(SDP))).body == SDP


def test_duplicate_identical_content_length_is_fine() -> None:
    data = build("OPTIONS sip:a@h SIP/2.0", *BASE, "Content-Length: 3", "l: 3", body=b"abc")
    assert parse_message(data).body == b"abc"


def test_unknown_request_uri_scheme_parses() -> None:
    data = build("INVITE tel:+15551234;phone-context=example.com SIP/2.0", *BASE[:-1], "CSeq: 1 INVITE")
    msg = parse_message(data)
    assert isinstance(msg, SipRequest)
    assert msg.uri.scheme == "tel" and str(msg.uri) == "tel:+15551234;phone-context=example.com"


def test_ipv6_request_uri_and_via() -> None:
    data = build(
        "OPTIONS sip:[2001:db8::10]:5070 SIP/2.0", "Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bK1", *BASE[1:]
    )
    msg = parse_message(data)
    assert isinstance(msg, SipRequest)
    assert msg.uri.hostport == ("2001:db8::10", 5070)
    assert msg.top_via.host == "[2001:db8::9:1]"


def test_wildcard_contact_gives_empty_list() -> None:
    msg = parse_message(build("REGISTER sip:h SIP/2.0", *BASE[:-1], "CSeq: 2 REGISTER", "Contact: *", "Expires: 0"))
    assert msg.contact == []


def test_quoted_comma_in_display_name_is_not_split() -> None:
    data = build("OPTIONS sip:a@h SIP/2.0", *BASE, 'Contact: "Doe, John" <sip:j@h>, <sip:k@h>;expires=5')
    contacts = parse_message(data).contact
    assert [c.display_name for c in contacts] == ["Doe, John", None]
    assert contacts[1].params == {"expires": "5"}


def test_utf8_and_raw_bytes_survive_round_trip() -> None:
    data = build("OPTIONS sip:a@h SIP/2.0", *BASE).replace(b"\r\n\r\n", '\r\nX-Name: "J\u00fcrgen" '.encode() + b"\xff\r\n\r\n")
    msg = parse_message(data)
    assert msg.headers.get("X-Name", "").startswith('"J\u00fcrgen"')
    assert msg.to_bytes() == data.replace(b"\r\n\r\n", b"\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        (b"", 400, "empty message"),
        (b"\r\n\r\n", 400, "empty message"),
        (b"OPTIONS sip:a@h SIP/2.0\r\nTo: <sip:b@h>\r\n", 400, "no empty line after the headers"),
        (build("OPTIONS sip:a@h", *BASE), 400, "malformed Request-Line"),
        (build("OPTIONS  sip:a@h SIP/2.0", *BASE), 400, "malformed Request-Line"),
        (build("OPT<IONS sip:a@h SIP/2.0", *BASE), 400, "invalid method"),
        (build("OPTIONS sip:a@h HTTP/1.1", *BASE), 400, "malformed SIP version"),
        (build("OPTIONS sip:a@h SIP/3.0", *BASE), 505, "unsupported SIP version 'SIP/3.0'"),
        (build("SIP/2.1 200 OK", *BASE), 505, "unsupported SIP version"),
        (build("SIP/2.0 20 OK", *BASE), 400, "invalid status code"),
        (build("SIP/2.0 700 Huh", *BASE), 400, "invalid status code"),
        (build("SIP/2.0 2x0 OK", *BASE), 400, "invalid status code"),
        (build("OPTIONS sip:a@h?Route=x SIP/2.0", *BASE), 400, "Request-URI must not contain headers"),
        (build("OPTIONS sip:a@h SIP/2.0", " folded: first", *BASE), 400, "continuation line before the first header"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE, "NoColonHere"), 400, "header line without ':'"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE, "Bad Name: x"), 400, "header name is not a token"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE[1:]), 400, "missing mandatory Via header"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE[:3], BASE[4]), 400, "missing mandatory Call-ID header"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE[:4]), 400, "missing mandatory CSeq header"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE, "Call-ID: c2"), 400, "multiple Call-ID headers"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE, "f: <sip:z@h>"), 400, "multiple From headers"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE[:4], "CSeq: 1 INVITE"), 400, "does not match request method"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE[:4], "CSeq: 4294967296 OPTIONS"), 400, "32-bit unsigned"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE[:4], "CSeq: -1 OPTIONS"), 400, "32-bit unsigned"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE[:4], "CSeq: 1"), 400, "malformed CSeq"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE[:4], "CSeq: " + "9" * 5000 + " OPTIONS"), 400, "32-bit unsigned"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE, "Max-Forwards: 256"), 400, "Max-Forwards 256 exceeds 255"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE, "Max-Forwards: ten"), 400, "invalid Max-Forwards"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE, "Content-Length: 10", body=b"short"), 400, "exceeds the 5 body bytes"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE, "Content-Length: 1", "l: 2", body=b"ab"), 400, "conflicting Content-Length"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE, "Content-Length: +1", body=b"ab"), 400, "invalid Content-Length"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE, "Content-Length: " + "1" * 5000), 400, "invalid Content-Length"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE, "X: a\rb"), 400, "bare CR"),
        (build("OPTIONS sip:a@h SIP/2.0", "Via: SIP/2.0/UDP h;;", *BASE[1:]), 400, "invalid parameter name"),
        (build("OPTIONS sip:a@h SIP/2.0", *BASE[:1], 'To: "x <sip:b@h>', *BASE[2:]), 400, "unterminated quoted string"),
    ],
)
def test_invalid_messages(data: bytes, status: int, error: str) -> None:
    with pytest.raises(SipError) as info:
        parse_message(data)
    assert info.value.status == status
    assert error in str(info.value)
    assert info.value.reason == str(info.value)


def test_oversized_message_is_413() -> None:
    data = invite(body=b"x" * MAX_MESSAGE_SIZE)
    with pytest.raises(SecurityError) as info:
        parse_message(data)
    assert info.value.status == 413


def test_too_many_headers_is_security_error() -> None:
    data = build("OPTIONS sip:a@h SIP/2.0", *BASE, *(f"X-H{i}: v" for i in range(MAX_HEADERS)))
    with pytest.raises(SecurityError, match=f"more than {MAX_HEADERS} header fields") as info:
        parse_message(data)
    assert info.value.status == 400


def test_too_long_header_line_is_security_error() -> None:
    data = build("OPTIONS sip:a@h SIP/2.0", *BASE, "X-Long: " + "a" * MAX_LINE_LENGTH)
    with pytest.raises(SecurityError, match="header line longer than"):
        parse_message(data)
    folded = build("OPTIONS sip:a@h SIP/2.0", *BASE, "X-Long: a" + "\r\n " + "b" * 5000 + "\r\n " + "c" * 5000)
    with pytest.raises(SecurityError, match="header line longer than"):
        parse_message(folded)


def test_lazy_accessors_raise_sip_error() -> None:
    msg = parse_message(build("OPTIONS sip:a@h SIP/2.0", *BASE, "Via: garbage", "Contact: <sip:x"))
    with pytest.raises(SipError):
        msg.vias
    with pytest.raises(SipError):
        msg.contact
    assert msg.top_via.branch == "z9hG4bK1"


# ------------------------------------------------------------------ serialisation


def test_to_bytes_fixes_content_length_and_uses_crlf() -> None:
    msg = parse_message(invite())
    msg.body = b"changed"
    data = msg.to_bytes()
    assert b"Content-Length: 7\r\n\r\nchanged" in data
    assert data.count(b"Content-Length") == 1
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_to_bytes_adds_missing_content_length() -> None:
    req = SipRequest("OPTIONS", SipUri.parse("sip:a@h"), Headers([("Call-ID", "x")]))
    assert req.to_bytes() == b"OPTIONS sip:a@h SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"


def test_to_bytes_writes_canonical_names() -> None:
    data = build("OPTIONS sip:a@h SIP/2.0", "v: SIP/2.0/UDP h;branch=z9hG4bK1", "t: <sip:b@h>", "f: <sip:a@h>;tag=1", "i: c1", "cseq: 1 OPTIONS")
    out = parse_message(data).to_bytes()
    assert out.startswith(b"OPTIONS sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:b@h>\r\nFrom: ")
    assert b"\r\nCSeq: 1 OPTIONS\r\n" in out


# ------------------------------------------------------------------ stream framing


def test_stream_parser_frames_by_content_length_and_skips_keepalives() -> None:
    one, two = invite(), invite(body=b"")
    parser = StreamParser()
    got = []
    stream = b"\r\n\r\n" + one + b"\r\n" + two + b"\r\n\r\n"
    for byte in range(len(stream)):
        got += parser.feed(stream[byte : byte + 1])
    assert [m.body for m in got] == [SDP, b""]


def test_stream_parser_requires_content_length() -> None:
    with pytest.raises(SipError, match="Content-Length is mandatory on stream transports"):
        StreamParser().feed(build("OPTIONS sip:a@h SIP/2.0", *BASE))


def test_stream_parser_conflicting_content_length_is_fatal() -> None:
    with pytest.raises(SipError, match="conflicting Content-Length"):
        StreamParser().feed(build("OPTIONS sip:a@h SIP/2.0", *BASE, "l: 1", "Content-Length: 2"))


def test_stream_parser_drops_invalid_but_framed_message() -> None:
    parser = StreamParser()
    bad = build("OPTIONS sip:a@h SIP/2.0", *BASE[1:], "Content-Length: 2", body=b"ab")
    good = build("OPTIONS sip:a@h SIP/2.0", *BASE, "Content-Length: 0")
    assert [m.call_id for m in parser.feed(bad + good)] == ["c1"]
    assert [str(e) for _, e in parser.rejected] == ["missing mandatory Via header"]


def test_stream_parser_limits() -> None:
    with pytest.raises(SecurityError) as info:
        StreamParser().feed(b"OPTIONS sip:a@h SIP/2.0\r\nX: " + b"a" * MAX_MESSAGE_SIZE)
    assert info.value.status == 413
    with pytest.raises(SecurityError):
        StreamParser().feed(build("OPTIONS sip:a@h SIP/2.0", *BASE, f"Content-Length: {MAX_MESSAGE_SIZE}"))


def test_stream_parser_waits_for_body() -> None:
    parser = StreamParser()
    data = invite()
    assert parser.feed(data[:-5]) == []
    assert len(parser.feed(data[-5:])) == 1


# ------------------------------------------------------------------ make_response


def test_make_response_copies_rfc3261_8_2_6_headers() -> None:
    req = parse_message(invite("Record-Route: <sip:p1.example.com;lr>\r\nVia: SIP/2.0/UDP second.example.com;branch=z9hG4bK2\r\n"))
    assert isinstance(req, SipRequest)
    resp = make_response(req, 180, to_tag="abc")
    assert resp.reason == "Ringing"
    assert resp.headers.items() == [
        ("Via", "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds"),
        ("Via", "SIP/2.0/UDP second.example.com;branch=z9hG4bK2"),
        ("From", "Alice <sip:alice@atlanta.example.com>;tag=1928301774"),
        ("To", "Bob <sip:bob@biloxi.example.com>;tag=abc"),
        ("Call-ID", "a84b4c76e66710@pc33.atlanta.example.com"),
        ("CSeq", "314159 INVITE"),
        ("Record-Route", "<sip:p1.example.com;lr>"),
    ]
    assert resp.to_tag == "abc"
    assert parse_message(resp.to_bytes()) == parse_message(resp.to_bytes())


def test_make_response_without_record_route_for_100_and_errors() -> None:
    req = parse_message(invite("Record-Route: <sip:p1.example.com;lr>\r\n"))
    assert isinstance(req, SipRequest)
    assert "Record-Route" not in make_response(req, 100).headers
    assert "Record-Route" not in make_response(req, 486, to_tag="t").headers


def test_make_response_keeps_existing_to_tag() -> None:
    req = parse_message(build("BYE sip:a@h SIP/2.0", *BASE[:1], "To: <sip:b@h>;tag=old", *BASE[2:4], "CSeq: 2 BYE"))
    assert isinstance(req, SipRequest)
    assert make_response(req, 200, to_tag="new").to_tag == "old"


def test_make_response_extra_headers_body_and_reason() -> None:
    req = parse_message(invite())
    assert isinstance(req, SipRequest)
    resp = make_response(
        req, 200, "Fine", to_tag="t", headers={"Contact": "<sip:b@10.0.0.2>"}, body=b"v=0\r\n", content_type="application/sdp"
    )
    assert (resp.status, resp.reason, resp.content_type, resp.body) == (200, "Fine", "application/sdp", b"v=0\r\n")
    assert b"\r\nContent-Length: 5\r\n\r\nv=0\r\n" in resp.to_bytes()
    assert make_response(req, 499).reason == "Unknown"
    with pytest.raises(ValueError, match="status code out of range"):
        make_response(req, 99)


def test_generators() -> None:
    tags = {generate_tag() for _ in range(100)}
    assert len(tags) == 100
    branch = generate_branch()
    assert branch.startswith("z9hG4bK") and len(branch) > 16
    call_id = generate_call_id("[2001:db8::1]")
    assert call_id.endswith("@[2001:db8::1]")
