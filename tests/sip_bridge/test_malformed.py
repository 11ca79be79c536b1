"""Answering requests the parser rejected (``salvage_response``).

Each case feeds raw bytes to the parser, as the endpoint does, and gives the
parser's error to ``salvage_response``; the answer must be a well-formed
response echoing exactly the headers RFC 3261 8.2.6.2 names, or nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sip_bridge.malformed import salvage_response
from sip_bridge.message import MAX_MESSAGE_SIZE, SipError, SipResponse, parse_message

TORTURE = Path(__file__).parent / "torture"
# RFC 3261 25.1 quoted-string: no bare '"' or '\', no controls; quoted-pairs allowed.
WARNING_VALUE = re.compile(r'399 callcenter "(?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"')


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("latin-1")


def bad_length(method: str = "INVITE", *, headers: str | None = None) -> bytes:
    """A request whose Content-Length promises more body than the datagram has."""
    if headers is None:
        headers = f"""\
Via: SIP/2.0/UDP 198.51.100.5:5062;branch=z9hG4bKbad1
From: <sip:alice@example.com>;tag=a1
To: <sip:4001234567@example.net>
Call-ID: bad-length@198.51.100.5
CSeq: 7 {method}
"""
    return crlf(f"{method} sip:4001234567@192.0.2.10 SIP/2.0\n{headers}Content-Length: 500\n\nv=0\n")


def answer(data: bytes) -> bytes | None:
    """What the endpoint sends back for ``data`` (which must not parse)."""
    with pytest.raises(SipError) as info:
        parse_message(data)
    return salvage_response(data, info.value.status, str(info.value))


def parsed(reply: bytes | None) -> SipResponse:
    assert reply is not None
    response = parse_message(reply)
    assert isinstance(response, SipResponse)
    return response


# ------------------------------------------------------------------ answered


def test_bad_content_length_gets_400_echoing_via_from_to_call_id_cseq() -> None:
    reply = answer(bad_length())
    assert reply is not None
    tag = re.search(rb"To: <sip:4001234567@example.net>;tag=(\w+)\r\n", reply)
    assert tag is not None  # RFC 3261 8.2.6.2: a final response adds a To tag
    assert reply == crlf(f"""\
SIP/2.0 400 Bad Request
Via: SIP/2.0/UDP 198.51.100.5:5062;branch=z9hG4bKbad1
From: <sip:alice@example.com>;tag=a1
To: <sip:4001234567@example.net>;tag={tag.group(1).decode()}
Call-ID: bad-length@198.51.100.5
CSeq: 7 INVITE
Warning: 399 callcenter "Content-Length 500 exceeds the 5 body bytes received"
Content-Length: 0

""")


def test_rfc4475_clerr_gets_400_that_parses() -> None:
    response = parsed(answer((TORTURE / "clerr.sip").read_bytes()))
    assert (response.status, response.reason) == (400, "Bad Request")
    assert response.top_via.branch == "z9hG4bK-39234-23523"
    assert response.call_id == "clerr.0ha0isndaksdjweiafasdk3"
    assert response.cseq == (8, "INVITE")
    assert response.headers.get("Warning") == (
        '399 callcenter "Content-Length 9999 exceeds the 154 body bytes received"')


def test_other_sip_version_gets_505() -> None:
    response = parsed(answer((TORTURE / "badvers.sip").read_bytes()))
    assert (response.status, response.reason) == (505, "Version Not Supported")
    assert response.headers.get("Warning") == "399 callcenter \"unsupported SIP version 'SIP/7.0'\""


def test_compact_header_names_are_found_and_answered_in_full() -> None:
    reply = answer(bad_length(headers="""\
v: SIP/2.0/UDP 198.51.100.5:5062;branch=z9hG4bKcompact
f: <sip:alice@example.com>;tag=a1
t: <sip:4001234567@example.net>
i: compact@198.51.100.5
CSEQ: 7 INVITE
"""))
    response = parsed(reply)
    assert response.to_tag  # RFC 3261 8.2.6.2
    assert response.headers.items()[:5] == [
        ("Via", "SIP/2.0/UDP 198.51.100.5:5062;branch=z9hG4bKcompact"),
        ("From", "<sip:alice@example.com>;tag=a1"),
        ("To", f"<sip:4001234567@example.net>;tag={response.to_tag}"),
        ("Call-ID", "compact@198.51.100.5"),
        ("CSeq", "7 INVITE"),
    ]


def test_every_via_is_echoed_in_order() -> None:
    reply = answer(bad_length(headers="""\
Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1, SIP/2.0/UDP edge.example.com;branch=z9hG4bKe1
Via: SIP/2.0/UDP 198.51.100.5:5062;branch=z9hG4bKa1
From: <sip:alice@example.com>;tag=a1
To: <sip:4001234567@example.net>
Call-ID: vias@198.51.100.5
CSeq: 7 INVITE
"""))
    assert [v.branch for v in parsed(reply).vias] == ["z9hG4bKp1", "z9hG4bKe1", "z9hG4bKa1"]


def test_folded_via_is_unfolded_so_the_branch_still_matches() -> None:
    # RFC 3261 7.3.1: a line starting with whitespace continues the header field above.
    reply = answer(bad_length(headers="""\
Via: SIP/2.0/UDP 198.51.100.5:5062
   ;branch=z9hG4bKfolded
From: <sip:alice@example.com>
\t;tag=a1
To: <sip:4001234567@example.net>
Call-ID: folded@198.51.100.5
CSeq: 7 INVITE
"""))
    response = parsed(reply)
    assert response.headers.get("Via") == "SIP/2.0/UDP 198.51.100.5:5062 ;branch=z9hG4bKfolded"
    assert response.top_via.branch == "z9hG4bKfolded"
    assert response.from_tag == "a1"


def test_continuation_line_is_never_taken_for_a_header_of_its_own() -> None:
    reply = answer(bad_length(headers="""\
Via: SIP/2.0/UDP 198.51.100.5:5062;branch=z9hG4bKcont
From: <sip:alice@example.com>;tag=a1
To: <sip:4001234567@example.net>
Call-ID: continued@198.51.100.5
Subject: lunch
 i: second-call-id
CSeq: 7 INVITE
"""))
    assert parsed(reply).headers.values("Call-ID") == ["continued@198.51.100.5"]


def test_request_with_bare_lf_line_ends_is_answered_with_crlf() -> None:
    reply = answer(bad_length().replace(b"\r\n", b"\n"))
    assert reply is not None and reply.count(b"\r\n") == 9 and b"\n" not in reply.replace(b"\r\n", b"")


# ------------------------------------------------------------------ not answered


def test_rfc4475_insuf_missing_to_is_not_answered() -> None:
    assert answer((TORTURE / "insuf.sip").read_bytes()) is None


@pytest.mark.parametrize("missing", ["Via", "From", "To", "Call-ID", "CSeq"])
def test_request_missing_a_header_the_response_must_echo_is_not_answered(missing: str) -> None:
    lines = bad_length().split(b"\r\n")
    data = b"\r\n".join(line for line in lines if not line.startswith(missing.encode() + b":"))
    assert answer(data) is None


def test_ack_is_never_answered() -> None:
    assert answer(bad_length("ACK")) is None


def test_response_is_never_answered() -> None:
    data = crlf("""\
SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKr1
From: <sip:alice@example.com>;tag=a1
To: <sip:4001234567@example.net>;tag=b1
Call-ID: response@198.51.100.5
CSeq: 7 INVITE
Content-Length: 500

""")
    assert answer(data) is None


def test_garbage_start_line_is_not_answered() -> None:
    assert salvage_response(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, "junk") is None


def test_status_below_400_is_not_sent() -> None:
    assert salvage_response(bad_length(), 200, "fine") is None


def test_oversized_request_is_not_answered() -> None:
    assert salvage_response(bad_length() + b"x" * MAX_MESSAGE_SIZE, 413, "too large") is None


# ------------------------------------------------------------------ nothing injected


def test_header_value_with_a_bare_cr_is_not_echoed_at_all() -> None:
    data = bad_length().replace(b"Call-ID: bad-length@198.51.100.5",
                                b"Call-ID: bad-length@198.51.100.5\rSet-Cookie: x")
    assert salvage_response(data, 400, "bare CR inside a header line") is None


def test_line_split_by_bare_lf_becomes_a_header_nobody_echoes() -> None:
    data = bad_length().replace(b"Call-ID: bad-length@198.51.100.5",
                                b"Call-ID: bad-length@198.51.100.5\nContact: <sip:evil@203.0.113.66>")
    reply = answer(data)
    assert reply is not None and b"evil" not in reply


def test_warning_text_is_printable_ascii_without_quotes_and_bounded() -> None:
    detail = 'bad "thing"\r\nVia: SIP/2.0/UDP evil.example.com\x00 caf\u00e9 ' + "y" * 300
    warning = parsed(salvage_response(bad_length(), 400, detail)).headers.get("Warning")
    assert warning is not None and WARNING_VALUE.fullmatch(warning)
    assert warning.startswith("399 callcenter \"bad 'thing'Via: SIP/2.0/UDP evil.example.com caf yyy")
    assert len(warning) == len('399 callcenter ""') + 200


@pytest.mark.parametrize(("detail", "quoted"), [
    ("path C:\\", '"path C:\\\\"'),
    ("x" * 199 + "\\\\", '"' + "x" * 199 + '\\\\"'),  # truncation splits an escaped backslash
    ("a \\\" b", "\"a \\\\' b\""),
])
def test_warning_text_with_backslashes_stays_one_quoted_string(detail: str, quoted: str) -> None:
    warning = parsed(salvage_response(bad_length(), 400, detail)).headers.get("Warning")
    assert warning == f"399 callcenter {quoted}"
    assert WARNING_VALUE.fullmatch(warning)


def test_rfc4475_multi01_duplicate_headers_answered_with_one_of_each() -> None:
    """multi01 has two To, two From, two Call-ID and two CSeq: the 400 echoes the first of each."""
    response = parsed(answer((TORTURE / "multi01.sip").read_bytes()))
    assert response.status == 400
    assert all(len(response.headers.get_all(name)) == 1 for name in ("From", "To", "Call-ID", "CSeq"))
