"""SipUri, NameAddr and Via parsing."""

from __future__ import annotations

import pytest

from sip_bridge.uri import NameAddr, SipError, SipUri, Via, split_quoted


def test_full_sip_uri_round_trip() -> None:
    text = "sips:alice:secret@Example.COM:5071;transport=tcp;lr;maddr=10.0.0.1?subject=hi&priority=urgent"
    uri = SipUri.parse(text)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == ("sips", "alice", "secret", "Example.COM", 5071)
    assert uri.params == {"transport": "tcp", "lr": None, "maddr": "10.0.0.1"}
    assert uri.headers == {"subject": "hi", "priority": "urgent"}
    assert str(uri) == text
    assert uri.hostport == ("Example.COM", 5071)


def test_scheme_is_case_insensitive_and_param_names_lowercased() -> None:
    uri = SipUri.parse("SIP:bob@host;Transport=UDP")
    assert uri.scheme == "sip" and uri.params == {"transport": "UDP"}


@pytest.mark.parametrize(
    ("text", "hostport"),
    [
        ("sip:host", ("host", 5060)),
        ("sips:host", ("host", 5061)),
        ("sip:[2001:db8::10]", ("2001:db8::10", 5060)),
        ("sip:[2001:db8::10]:5070", ("2001:db8::10", 5070)),
        ("sip:[2001:db8::10:5070]", ("2001:db8::10:5070", 5060)),
        ("sip:user@[::ffff:192.0.2.1]:1", ("::ffff:192.0.2.1", 1)),
    ],
)
def test_hostport_defaults_and_ipv6(text: str, hostport: tuple[str, int]) -> None:
    assert SipUri.parse(text).hostport == hostport


def test_ipv6_host_keeps_brackets() -> None:
    uri = SipUri.parse("sip:[2001:DB8::1]:5062;transport=tls")
    assert uri.host == "[2001:DB8::1]"
    assert str(uri) == "sip:[2001:DB8::1]:5062;transport=tls"


def test_escaped_user_kept_for_serialisation_decoded_for_comparison() -> None:
    uri = SipUri.parse("sip:%2B1%20555@example.com")
    assert uri.user == "%2B1%20555"
    assert uri.user_unescaped == "+1 555"
    assert str(uri) == "sip:%2B1%20555@example.com"


def test_user_with_semicolon_and_question_mark() -> None:
    uri = SipUri.parse("sip:user;par=u%40example.net@example.com;lr")
    assert uri.user == "user;par=u%40example.net"
    assert uri.params == {"lr": None}
    assert SipUri.parse("sip:a?b@host").user == "a?b"


@pytest.mark.parametrize(
    "text",
    ["tel:+1-201-555-0123;phone-context=example.com", "http://www.example.com/x?y=z", "urn:service:sos", "isbn:2983792873"],
)
def test_other_schemes_are_opaque(text: str) -> None:
    uri = SipUri.parse(text)
    assert not uri.is_sip
    assert str(uri) == text
    assert uri.opaque == text.partition(":")[2]
    with pytest.raises(SipError) as info:
        uri.hostport
    assert info.value.status == 416


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "empty URI"),
        ("sip:", "empty URI after scheme"),
        ("nocolon", "invalid URI scheme"),
        ("1sip:host", "invalid URI scheme"),
        ("<sip:host>", "illegal character"),
        ("sip:user@host name", "illegal character"),
        ("sip:@host", "empty user part"),
        ("sip:us%zzer@host", "invalid %-escape"),
        ("sip:user%4@host", "truncated %-escape"),
        ("sip:user@", "missing host"),
        ("sip:user@host:", "invalid port"),
        ("sip:user@host:99999", "port out of range"),
        ("sip:user@host:5o60", "invalid port"),
        ("sip:2001:db8::10", "invalid port"),
        ("sip:[2001:db8::10", "unterminated IPv6 reference"),
        ("sip:[2001:db8::10]x", "garbage after IPv6 reference"),
        ("sip:[zz::1]", "invalid IPv6 reference"),
        ("sip:host;;lr", "invalid parameter name ''"),
        ("sip:host;lr;lr", "duplicate parameter 'lr'"),
        ("sip:host?novalue", "invalid URI header"),
        ("sip:ho$t", "invalid host"),
    ],
)
def test_bad_uris(text: str, error: str) -> None:
    with pytest.raises(SipError) as info:
        SipUri.parse(text)
    assert error in str(info.value)
    assert info.value.status == 400


def test_rfc3261_uri_equivalence() -> None:
    a = SipUri.parse("sip:%61lice@ATLANTA.com;transport=TCP")
    b = SipUri.parse("sip:alice@AtLanTa.CoM;Transport=tcp")
    assert a.equivalent(b) and b.equivalent(a)
    assert not SipUri.parse("sip:alice@atlanta.com").equivalent(SipUri.parse("sip:ALICE@atlanta.com"))
    assert not SipUri.parse("sip:bob@biloxi.com").equivalent(SipUri.parse("sip:bob@biloxi.com:5060"))
    assert not SipUri.parse("sip:bob@biloxi.com;transport=udp").equivalent(SipUri.parse("sip:bob@biloxi.com"))
    assert SipUri.parse("sip:carol@chicago.com;security=on").equivalent(SipUri.parse("sip:carol@chicago.com"))
    assert not SipUri.parse("sip:carol@chicago.com;security=on").equivalent(
        SipUri.parse("sip:carol@chicago.com;security=off")
    )
    assert not SipUri.parse("sip:carol@chicago.com").equivalent(SipUri.parse("sips:carol@chicago.com"))


# ------------------------------------------------------------------ NameAddr


def test_name_addr_with_quoted_display_name_and_escapes() -> None:
    addr = NameAddr.parse('"Alice \\"Al\\" Smith" <sip:alice@example.com>;tag=1928301774')
    assert addr.display_name == 'Alice "Al" Smith'
    assert addr.tag == "1928301774"
    assert str(addr) == '"Alice \\"Al\\" Smith" <sip:alice@example.com>;tag=1928301774'
    assert NameAddr.parse(str(addr)) == addr


def test_name_addr_token_display_name_without_space() -> None:
    addr = NameAddr.parse("caller<sip:caller@example.com>;tag=323")
    assert addr.display_name == "caller"
    assert addr.tag == "323"


def test_bare_addr_spec_params_belong_to_header() -> None:
    addr = NameAddr.parse("sip:bob@biloxi.com;tag=a6c85cf;expires=60")
    assert addr.uri.params == {}
    assert addr.params == {"tag": "a6c85cf", "expires": "60"}
    assert str(addr) == "<sip:bob@biloxi.com>;tag=a6c85cf;expires=60"


def test_angle_form_uri_params_stay_in_uri() -> None:
    addr = NameAddr.parse("<sip:bob@biloxi.com;transport=tcp>;q=0.7")
    assert addr.uri.params == {"transport": "tcp"}
    assert addr.params == {"q": "0.7"}


def test_quoted_param_value_with_separators() -> None:
    addr = NameAddr.parse('<sip:a@b>;+sip.instance="<urn:uuid:f81d4fae;x,y>";reg-id=1')
    assert addr.params == {"+sip.instance": '"<urn:uuid:f81d4fae;x,y>"', "reg-id": "1"}


def test_with_tag_returns_copy() -> None:
    addr = NameAddr.parse("Bob <sip:bob@biloxi.com>")
    tagged = addr.with_tag("xyz")
    assert tagged.tag == "xyz" and addr.tag is None
    with pytest.raises(SipError):
        addr.with_tag("bad tag")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "empty name-addr"),
        ('"unterminated <sip:a@b>', "unterminated quoted string"),
        ('"Bob" sip:a@b', "not followed by '<uri>'"),
        ("Bell, Alexander <sip:a@b>", "display name must be tokens"),
        ("<sip:a@b", "unterminated '<'"),
        ("<sip:a@b> junk", "unexpected text after URI"),
        ("<sip:a@b>;;tag=1", "invalid parameter name ''"),
        ("sip:a@b?Route=x", "must be enclosed in '<>'"),
        ("sip:a@b, sip:c@d", "must be enclosed in '<>'"),
        ("<sip:a@b>;tag=", "empty value for parameter 'tag'"),
        ('<sip:a@b>;x="q"z', "garbage after quoted value"),
    ],
)
def test_bad_name_addrs(text: str, error: str) -> None:
    with pytest.raises(SipError) as info:
        NameAddr.parse(text)
    assert error in str(info.value)


# ------------------------------------------------------------------ Via


def test_via_with_params_and_rport() -> None:
    via = Via.parse("SIP/2.0/udp 10.0.0.1:5062;branch=z9hG4bK776asdhds;rport;received=192.0.2.7")
    assert (via.transport, via.host, via.port) == ("UDP", "10.0.0.1", 5062)
    assert via.branch == "z9hG4bK776asdhds"
    assert via.received == "192.0.2.7"
    assert via.rport is None and via.wants_rport
    assert str(via) == "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK776asdhds;rport;received=192.0.2.7"
    assert Via.parse("SIP/2.0/TCP h;rport=40000").rport == 40000


def test_via_lws_everywhere() -> None:
    via = Via.parse("SIP  /  2.0 /  TLS   host.example.com  :  5061  ;  branch = z9hG4bKx ; maddr=1.2.3.4")
    assert (via.transport, via.host, via.port, via.params) == (
        "TLS", "host.example.com", 5061, {"branch": "z9hG4bKx", "maddr": "1.2.3.4"},
    )


def test_via_ipv6_sent_by() -> None:
    via = Via.parse("SIP/2.0/UDP [2001:db8::9:1]:6050;received=[2001:db8::9:255];branch=z9hG4bKas3")
    assert (via.host, via.port, via.received) == ("[2001:db8::9:1]", 6050, "[2001:db8::9:255]")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("SIP/2.0 host", "lacks 'SIP/2.0/transport'"),
        ("HTTP/1.1/TCP host", "invalid Via sent-protocol"),
        ("SIP/2.0/U<P host", "invalid Via transport"),
        ("SIP/2.0/UDP", "missing host"),
        ("SIP/2.0/UDP host junk;branch=x", "unexpected whitespace in Via sent-by"),
        ("SIP/2.0/UDP 192.0.2.15;;", "invalid parameter name ''"),
        ("SIP/2.0/UDP host:70000", "port out of range"),
    ],
)
def test_bad_vias(text: str, error: str) -> None:
    with pytest.raises(SipError) as info:
        Via.parse(text)
    assert error in str(info.value)


def test_split_quoted_respects_quotes_and_angles() -> None:
    assert split_quoted('"a,b" <sip:x@y;p=1,2>, c', ",") == ['"a,b" <sip:x@y;p=1,2>', " c"]
    assert split_quoted('"a\\",b", c', ",") == ['"a\\",b"', " c"]
    with pytest.raises(SipError, match="unterminated quoted string"):
        split_quoted('"abc, d', ",")
