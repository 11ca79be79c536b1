"""RFC 4475 / RFC 5118 torture messages (fixtures in ``torture/``) and fuzzing.

Each ``torture/<name>.sip`` has an expected outcome in ``torture/expected.json``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from sip_bridge.message import SipError, SipRequest, SipResponse, StreamParser, parse_message

TORTURE = Path(__file__).parent / "torture"
EXPECTED: dict[str, object] = {
    k: v for k, v in json.loads((TORTURE / "expected.json").read_text()).items() if not k.startswith("_")
}
LAZY_ATTRS = ("call_id", "cseq", "vias", "top_via", "from_addr", "to_addr", "contact", "content_type", "max_forwards")


def load(name: str) -> bytes:
    return (TORTURE / f"{name}.sip").read_bytes()


def test_every_fixture_has_an_expectation() -> None:
    assert {p.stem for p in TORTURE.glob("*.sip")} == set(EXPECTED)


def test_fixtures_use_crlf_line_ends() -> None:
    for path in TORTURE.glob("*.sip"):
        data = path.read_bytes()
        head = data[: data.index(b"\r\n\r\n")]
        assert b"\n" not in head.replace(b"\r\n", b""), path.name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_torture_outcome(name: str) -> None:
    expected = EXPECTED[name]
    spec: dict[str, object] = {"outcome": "parse"} if expected == "parse" else dict(expected)  # type: ignore[call-overload]
    data = load(name)
    if "status" in spec:
        with pytest.raises(SipError) as info:
            parse_message(data)
        assert info.value.status == spec["status"]
        assert str(spec["error"]) in str(info.value)
        return
    msg = parse_message(data)
    lazy = spec.get("lazy_error")
    for attr in LAZY_ATTRS:
        if isinstance(lazy, dict) and lazy["attr"] == attr:
            with pytest.raises(SipError) as info:
                getattr(msg, attr)
            assert info.value.status == lazy["status"]
        else:
            getattr(msg, attr)
    # What we send back must parse to the same message (to_bytes adds a missing Content-Length).
    again = parse_message(msg.to_bytes())
    assert [h for h in again.headers.items() if h[0] != "Content-Length"] == [
        h for h in msg.headers.items() if h[0] != "Content-Length"
    ]
    assert again.body == msg.body


def test_wsinv_details() -> None:
    msg = parse_message(load("wsinv"))
    assert isinstance(msg, SipRequest)
    assert msg.to_tag == "1918181833n"
    assert msg.from_addr.display_name == 'J Rosenberg \\"'
    assert msg.from_tag == "98asjd8"
    assert msg.max_forwards == 68
    assert msg.cseq == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.headers.get("Subject") == ""
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    (contact,) = msg.contact
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert len(msg.body) == 150


def test_intmeth_details() -> None:
    msg = parse_message(load("intmeth"))
    assert isinstance(msg, SipRequest)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert msg.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert msg.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert msg.to_addr.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff\u5927\u505c\u96fb"


def test_esc01_unescapes_for_comparison_only() -> None:
    msg = parse_message(load("esc01"))
    assert isinstance(msg, SipRequest)
    assert msg.uri.user_unescaped == "sips:user@example.com"
    assert str(msg.uri) == "sip:sips%3Auser%40example.com@example.net"
    assert msg.to_addr.uri.user_unescaped == "user"
    assert msg.from_addr.uri.user_unescaped == "I have spaces"
    assert msg.content_type == "application/sdp"


def test_escnull_keeps_nul_escaped() -> None:
    msg = parse_message(load("escnull"))
    assert msg.to_addr.uri.user_unescaped == "null-\x00-null"
    assert [c.uri.user for c in msg.contact] == ["%00", "%00%00"]


def test_esc02_does_not_unescape_method_or_header_names() -> None:
    msg = parse_message(load("esc02"))
    assert isinstance(msg, SipRequest)
    assert msg.method == "RE%47IST%45R"
    assert len(msg.contact) == 2
    assert msg.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_dblreq_ignores_second_request() -> None:
    msg = parse_message(load("dblreq"))
    assert isinstance(msg, SipRequest)
    assert msg.method == "REGISTER" and msg.body == b""


def test_semiuri_user_contains_semicolon() -> None:
    msg = parse_message(load("semiuri"))
    assert isinstance(msg, SipRequest)
    assert msg.uri.user == "user;par=u%40example.net"
    assert msg.uri.host == "example.com" and msg.uri.params == {}
    assert len(msg.headers.get_all("Accept")) == 6


def test_transports_keeps_unknown_transport() -> None:
    msg = parse_message(load("transports"))
    assert [v.transport for v in msg.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_mpart01_binary_body_is_byte_exact() -> None:
    data = load("mpart01")
    msg = parse_message(data)
    assert msg.body == data[data.index(b"\r\n\r\n") + 4 :]
    assert b"\x00" in msg.body
    assert msg.content_type == "multipart/mixed"


def test_unreason_utf8_reason_phrase() -> None:
    msg = parse_message(load("unreason"))
    assert isinstance(msg, SipResponse)
    assert msg.reason.endswith("\u043f\u0440\u043e\u0441\u0442\u043e\u0435")
    assert msg.to_bytes().startswith(load("unreason").split(b"\r\n")[0])


def test_noreason_empty_reason_phrase() -> None:
    msg = parse_message(load("noreason"))
    assert isinstance(msg, SipResponse)
    assert (msg.status, msg.reason) == (100, "")


def test_unknown_schemes_are_opaque() -> None:
    msg = parse_message(load("novelsc"))
    assert isinstance(msg, SipRequest)
    assert (msg.uri.scheme, msg.uri.opaque, msg.uri.is_sip) == ("soap.beep", "//192.0.2.103:3002", False)
    msg = parse_message(load("unksm2"))
    assert msg.to_addr.uri.scheme == "isbn"
    assert msg.from_addr.uri.scheme == "http" and msg.from_tag == "3234233"
    assert str(msg.contact[0].uri) == "name:John_Smith"


def test_cparam_bare_contact_params_belong_to_header() -> None:
    (bare,) = parse_message(load("cparam01")).contact
    assert bare.params == {"unknownparam": None} and bare.uri.params == {}
    (angle,) = parse_message(load("cparam02")).contact
    assert angle.params == {} and angle.uri.params == {"unknownparam": None}


def test_regescrt_keeps_uri_headers() -> None:
    (contact,) = parse_message(load("regescrt")).contact
    assert contact.uri.headers == {"Route": "%3Csip:sip.example.com%3E"}


def test_inv2543_defaults() -> None:
    msg = parse_message(load("inv2543"))
    assert msg.max_forwards == 70
    assert msg.top_via.branch is None and msg.from_tag is None
    assert msg.body.startswith(b"v=0")


def test_zeromf_max_forwards_zero() -> None:
    assert parse_message(load("zeromf")).max_forwards == 0


def test_rfc5118_hosts() -> None:
    assert parse_message(load("port-ambiguous")).uri.hostport == ("2001:db8::10:5070", 5060)  # type: ignore[union-attr]
    assert parse_message(load("port-unambiguous")).uri.hostport == ("2001:db8::10", 5070)  # type: ignore[union-attr]
    via = parse_message(load("via-received-param-with-delim")).top_via
    assert (via.host, via.received) == ("[2001:db8::9:1]", "[2001:db8::9:255]")
    via = parse_message(load("via-received-param-no-delim")).top_via
    assert via.received == "2001:db8::9:255"
    vias = parse_message(load("mult-ip-in-header")).vias
    assert [(v.host, v.port) for v in vias] == [("[2001:db8::9:1]", 6050), ("192.0.2.1", None), ("[2001:db8::9:255]", None)]
    assert parse_message(load("ipv4-mapped-ipv6")).top_via.port == 19823


def test_torture_messages_frame_on_a_stream() -> None:
    """Every valid message that carries Content-Length survives TCP framing, byte by byte."""
    names = [n for n in sorted(EXPECTED) if EXPECTED[n] == "parse" or "status" not in EXPECTED[n]]  # type: ignore[operator]
    names = [n for n in names if n not in ("inv2543", "dblreq")]  # no Content-Length / trailing junk
    stream = b"\r\n\r\n".join(load(n) for n in names)
    parser = StreamParser()
    got: list[SipRequest | SipResponse] = []
    for i in range(0, len(stream), 97):
        got += parser.feed(stream[i : i + 97])
    assert [m.call_id for m in got] == [parse_message(load(n)).call_id for n in names]
    assert parser.rejected == []


def _mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and pos < len(buf):
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and pos < len(buf):
            del buf[pos : pos + rng.randint(1, 8)]
        elif op == 2:
            buf[pos:pos] = bytes([rng.choice(b' \t\r\n:;,<>"\\%@[]=/?\x00\xff0')]) * rng.randint(1, 3)
        else:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return bytes(buf)


def _exercise(msg: SipRequest | SipResponse) -> None:
    for attr in LAZY_ATTRS:
        try:
            getattr(msg, attr)
        except SipError:
            pass
    parse_message(msg.to_bytes())


def test_fuzz_mutations_raise_only_sip_error() -> None:
    rng = random.Random(20240613)
    seeds = [load(name) for name in sorted(EXPECTED)]
    parsed = 0
    for _ in range(4000):
        data = _mutate(rng.choice(seeds), rng)
        try:
            msg = parse_message(data)
        except SipError:
            continue
        parsed += 1
        _exercise(msg)
    assert parsed > 100  # the mutations do reach deep into the parser


def test_fuzz_stream_parser_raises_only_sip_error() -> None:
    rng = random.Random(5118)
    seeds = [load(name) for name in sorted(EXPECTED)]
    for _ in range(500):
        parser = StreamParser()
        stream = b"".join(_mutate(rng.choice(seeds), rng) for _ in range(3))
        try:
            for i in range(0, len(stream), rng.randint(1, 400)):
                parser.feed(stream[i : i + 400])
        except SipError:
            continue
