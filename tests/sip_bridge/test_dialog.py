"""RFC 3261 section 12 dialogs: creation on either side, CSeq, route set, in-dialog requests."""

from __future__ import annotations

import pytest

from sip_bridge.dialog import Dialog
from sip_bridge.message import BRANCH_MAGIC_COOKIE, SipError, SipRequest, SipResponse, parse_message

OUR_CONTACT = "<sip:callcenter@192.0.2.10:5060>"
OUR_VIA = "192.0.2.10:5060"


def sip(text: str) -> SipRequest | SipResponse:
    """Parse literal SIP text written with bare newlines."""
    return parse_message(text.replace("\n", "\r\n").encode())


def incoming_invite(*, contact: str = "Contact: <sip:alice@198.51.100.5:5062>\n",
                    record_route: str = "") -> SipRequest:
    message = sip(f"""\
INVITE sip:4001234567@192.0.2.10 SIP/2.0
Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKp1
Via: SIP/2.0/UDP 198.51.100.5:5062;branch=z9hG4bKa1
Max-Forwards: 69
{record_route}From: "Alice" <sip:alice@example.com>;tag=alice1
To: <sip:4001234567@example.net>
Call-ID: uas-dialog@198.51.100.5
CSeq: 314 INVITE
{contact}Content-Length: 0

""")
    assert isinstance(message, SipRequest)
    return message


def outgoing_invite() -> SipRequest:
    message = sip("""\
INVITE sip:18005550100@carrier.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKout1;rport
Max-Forwards: 70
From: <sip:agent@192.0.2.10>;tag=ours1
To: <sip:18005550100@carrier.example.com>
Call-ID: uac-dialog@192.0.2.10
CSeq: 7 INVITE
Contact: <sip:callcenter@192.0.2.10:5060>
Content-Length: 0

""")
    assert isinstance(message, SipRequest)
    return message


def ok_for_outgoing(*, contact: str = "Contact: <sip:gw@203.0.113.50:5080;transport=udp>\n") -> SipResponse:
    message = sip(f"""\
SIP/2.0 200 OK
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKout1;rport=5060
Record-Route: <sip:edge2.carrier.example.com;lr>, <sip:edge1.carrier.example.com;lr>
Record-Route: <sip:sbc.carrier.example.com;lr>
From: <sip:agent@192.0.2.10>;tag=ours1
To: <sip:18005550100@carrier.example.com>;tag=theirs1
Call-ID: uac-dialog@192.0.2.10
CSeq: 7 INVITE
{contact}Content-Length: 0

""")
    assert isinstance(message, SipResponse)
    return message


def in_dialog(method: str, cseq: int) -> SipRequest:
    """A request the caller sends inside the UAS dialog of ``incoming_invite``."""
    message = sip(f"""\
{method} sip:callcenter@192.0.2.10:5060 SIP/2.0
Via: SIP/2.0/UDP 198.51.100.5:5062;branch=z9hG4bKin{cseq}{method}
Max-Forwards: 70
From: "Alice" <sip:alice@example.com>;tag=alice1
To: <sip:4001234567@example.net>;tag=uas1
Call-ID: uas-dialog@198.51.100.5
CSeq: {cseq} {method}
Content-Length: 0

""")
    assert isinstance(message, SipRequest)
    return message


def uas_dialog(record_route: str = "") -> Dialog:
    return Dialog.as_uas(incoming_invite(record_route=record_route), "uas1", OUR_CONTACT, OUR_VIA, "UDP")


def uac_dialog() -> Dialog:
    return Dialog.as_uac(outgoing_invite(), ok_for_outgoing(), OUR_CONTACT, OUR_VIA, "UDP")


def sent(request: SipRequest) -> SipRequest:
    """What the peer receives: the request serialised and parsed again."""
    message = parse_message(request.to_bytes())
    assert isinstance(message, SipRequest)
    return message


# ------------------------------------------------------------------ creation (12.1)


def test_uas_dialog_takes_our_tag_their_from_tag_and_their_contact() -> None:
    d = uas_dialog()
    assert d.key == ("uas-dialog@198.51.100.5", "uas1", "alice1")
    assert str(d.local_addr) == "<sip:4001234567@example.net>;tag=uas1"
    assert str(d.remote_addr) == '"Alice" <sip:alice@example.com>;tag=alice1'
    assert str(d.remote_target) == "sip:alice@198.51.100.5:5062"
    assert d.remote_seq == 314
    assert d.route_set == []


def test_uas_route_set_keeps_record_route_order() -> None:
    d = uas_dialog("Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\n"
                   "Record-Route: <sip:p3.example.com;lr>\n")
    assert d.route_set == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>", "<sip:p3.example.com;lr>"]
    assert d.next_hop().hostport == ("p1.example.com", 5060)


def test_uas_dialog_needs_a_contact_in_the_invite() -> None:
    with pytest.raises(SipError, match="^INVITE without Contact$"):
        Dialog.as_uas(incoming_invite(contact=""), "uas1", OUR_CONTACT, OUR_VIA, "UDP")


def test_uac_dialog_takes_our_from_tag_their_to_tag_and_the_2xx_contact() -> None:
    d = uac_dialog()
    assert d.key == ("uac-dialog@192.0.2.10", "ours1", "theirs1")
    assert str(d.local_addr) == "<sip:agent@192.0.2.10>;tag=ours1"
    assert str(d.remote_addr) == "<sip:18005550100@carrier.example.com>;tag=theirs1"
    assert str(d.remote_target) == "sip:gw@203.0.113.50:5080;transport=udp"
    assert d.local_seq == 7
    assert d.remote_seq is None


def test_uac_route_set_is_record_route_reversed() -> None:
    d = uac_dialog()
    assert d.route_set == ["<sip:sbc.carrier.example.com;lr>", "<sip:edge1.carrier.example.com;lr>",
                           "<sip:edge2.carrier.example.com;lr>"]
    assert d.next_hop().hostport == ("sbc.carrier.example.com", 5060)


def test_uac_dialog_without_contact_in_the_2xx_targets_the_request_uri() -> None:
    d = Dialog.as_uac(outgoing_invite(), ok_for_outgoing(contact=""), OUR_CONTACT, OUR_VIA, "UDP")
    assert str(d.remote_target) == "sip:18005550100@carrier.example.com"


# ------------------------------------------------------------------ requests we send (12.2.1)


def test_in_dialog_request_carries_dialog_identity_and_route_set() -> None:
    d = uac_dialog()
    bye = sent(d.create_request("BYE"))
    assert str(bye.uri) == "sip:gw@203.0.113.50:5080;transport=udp"
    assert bye.headers.get("From") == "<sip:agent@192.0.2.10>;tag=ours1"
    assert bye.headers.get("To") == "<sip:18005550100@carrier.example.com>;tag=theirs1"
    assert bye.call_id == "uac-dialog@192.0.2.10"
    assert bye.headers.get_all("Route") == d.route_set
    assert bye.max_forwards == 70
    via = bye.top_via
    assert (via.transport, via.host, via.port) == ("UDP", "192.0.2.10", 5060)
    assert via.branch is not None and via.branch.startswith(BRANCH_MAGIC_COOKIE)
    assert via.wants_rport


def test_each_in_dialog_request_has_a_new_branch() -> None:
    d = uac_dialog()
    first, second = d.create_request("INFO"), d.create_request("INFO")
    assert first.top_via.branch != second.top_via.branch


def test_local_cseq_increments_from_the_invite() -> None:
    d = uac_dialog()
    assert [d.create_request(m).cseq for m in ("INFO", "INVITE", "BYE")] == [
        (8, "INFO"), (9, "INVITE"), (10, "BYE")]


def test_uas_first_request_starts_the_local_cseq() -> None:
    # 12.1.1: the UAS's local sequence number starts empty; any first value is fine.
    d = uas_dialog()
    assert d.create_request("BYE").cseq == (1, "BYE")
    assert d.create_request("BYE").cseq == (2, "BYE")


def test_ack_keeps_the_invite_cseq_number_and_does_not_consume_one() -> None:
    d = uac_dialog()
    ack = d.create_request("ACK", cseq=7)
    assert ack.cseq == (7, "ACK")
    assert d.create_request("BYE").cseq == (8, "BYE")


@pytest.mark.parametrize("method", ["INVITE", "UPDATE"])
def test_target_refresh_requests_carry_our_contact(method: str) -> None:
    request = sent(uac_dialog().create_request(method))
    assert request.headers.values("Contact") == [OUR_CONTACT]


@pytest.mark.parametrize("method", ["BYE", "INFO", "OPTIONS", "ACK"])
def test_other_in_dialog_requests_carry_no_contact(method: str) -> None:
    request = sent(uac_dialog().create_request(method, cseq=7 if method == "ACK" else None))
    assert "Contact" not in request.headers


def test_in_dialog_request_with_body_and_extra_headers() -> None:
    d = uas_dialog()
    info = sent(d.create_request("INFO", body=b"Signal=5\r\nDuration=160\r\n",
                                 content_type="application/dtmf-relay", extra={"User-Agent": "callcenter"}))
    assert info.body == b"Signal=5\r\nDuration=160\r\n"
    assert info.content_type == "application/dtmf-relay"
    assert info.headers.get("User-Agent") == "callcenter"


def test_tcp_dialog_puts_tcp_in_the_via() -> None:
    d = Dialog.as_uas(incoming_invite(), "uas1", OUR_CONTACT, OUR_VIA, "TCP")
    assert d.create_request("BYE").top_via.transport == "TCP"


# ------------------------------------------------------------------ requests we receive (12.2.2)


def test_remote_cseq_higher_is_in_order_even_with_gaps() -> None:
    d = uas_dialog()
    assert d.check_remote_cseq(in_dialog("INFO", 315))
    assert d.check_remote_cseq(in_dialog("BYE", 400))
    assert d.remote_seq == 400


def test_remote_cseq_lower_than_the_last_is_out_of_order() -> None:
    d = uas_dialog()
    assert d.check_remote_cseq(in_dialog("INFO", 320))
    assert not d.check_remote_cseq(in_dialog("BYE", 316))
    assert d.remote_seq == 320  # a rejected request does not move the remote sequence


@pytest.mark.parametrize("method", ["ACK", "CANCEL"])
def test_ack_and_cancel_reuse_an_older_cseq_without_being_out_of_order(method: str) -> None:
    d = uas_dialog()
    assert d.check_remote_cseq(in_dialog("INFO", 315))
    assert d.check_remote_cseq(in_dialog(method, 314))
    assert d.remote_seq == 315


def test_uac_dialog_accepts_any_first_remote_cseq() -> None:
    d = uac_dialog()
    assert d.check_remote_cseq(in_dialog("BYE", 1))
    assert d.remote_seq == 1


def test_target_refresh_moves_where_later_requests_go() -> None:
    d = uas_dialog()
    reinvite = sip("""\
INVITE sip:callcenter@192.0.2.10:5060 SIP/2.0
Via: SIP/2.0/UDP 198.51.100.99:5062;branch=z9hG4bKre1
From: "Alice" <sip:alice@example.com>;tag=alice1
To: <sip:4001234567@example.net>;tag=uas1
Call-ID: uas-dialog@198.51.100.5
CSeq: 315 INVITE
Contact: <sip:alice@198.51.100.99:5062>
Content-Length: 0

""")
    assert isinstance(reinvite, SipRequest)
    d.update_target(reinvite)
    assert str(d.create_request("BYE").uri) == "sip:alice@198.51.100.99:5062"
    assert d.next_hop().hostport == ("198.51.100.99", 5062)


def test_refresh_without_contact_keeps_the_target() -> None:
    d = uas_dialog()
    d.update_target(in_dialog("INVITE", 315))
    assert str(d.remote_target) == "sip:alice@198.51.100.5:5062"
