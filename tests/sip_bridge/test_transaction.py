"""RFC 3261 section 17 transactions (with RFC 6026), driven without sockets.

A recording :class:`Sender` keeps every message with the fake time it left,
a recording :class:`TransactionUser` keeps every callback, and time only moves
when a test calls :meth:`Harness.advance`, which polls the layer at each
deadline it announces (as the asyncio edge does with its single timer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sip_bridge.message import SipRequest, SipResponse, make_response, parse_message
from sip_bridge.transaction import (
    PROCEEDING_GUARD,
    ClientTransaction,
    Flow,
    ServerTransaction,
    State,
    TransactionLayer,
)

UAS = Flow("udp", ("192.0.2.10", 5060))  # where our client transactions send
UAC = Flow("udp", ("192.0.2.20", 5060))  # where requests to our server transactions come from
UAS_TCP = Flow("tcp", ("192.0.2.10", 5060))
UAC_TCP = Flow("tcp", ("192.0.2.20", 40123))

# Timer A/E/G fire times for a message first sent at 0 over UDP, up to 64*T1.
INVITE_RETRANSMITS = [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # T1 doubling, uncapped
CAPPED_RETRANSMITS = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]  # doubling, capped at T2


def sip(text: str) -> SipRequest | SipResponse:
    """Parse literal SIP text written with bare newlines."""
    return parse_message(text.replace("\n", "\r\n").encode())


def request(method: str, *, branch: str = "z9hG4bKtx1", cseq: int = 1, cseq_method: str | None = None,
            to_tag: str | None = None, sent_by: str = "192.0.2.20:5060", extra: str = "") -> SipRequest:
    to = "<sip:4001234567@192.0.2.10>" + (f";tag={to_tag}" if to_tag else "")
    message = sip(f"""\
{method} sip:4001234567@192.0.2.10 SIP/2.0
Via: SIP/2.0/UDP {sent_by};branch={branch}
Max-Forwards: 70
From: "Caller" <sip:caller@192.0.2.20>;tag=from1
To: {to}
Call-ID: tx-test@192.0.2.20
CSeq: {cseq} {cseq_method or method}
{extra}Content-Length: 0

""")
    assert isinstance(message, SipRequest)
    return message


def response(status: int, reason: str, *, branch: str = "z9hG4bKtx1", method: str = "INVITE",
             to_tag: str | None = "callee1") -> SipResponse:
    to = "<sip:4001234567@192.0.2.10>" + (f";tag={to_tag}" if to_tag else "")
    message = sip(f"""\
SIP/2.0 {status} {reason}
Via: SIP/2.0/UDP 192.0.2.20:5060;branch={branch}
From: "Caller" <sip:caller@192.0.2.20>;tag=from1
To: {to}
Call-ID: tx-test@192.0.2.20
CSeq: 1 {method}
Content-Length: 0

""")
    assert isinstance(message, SipResponse)
    return message


@dataclass
class FakeClock:
    now: float = 0.0


@dataclass
class Sent:
    at: float
    data: bytes
    flow: Flow

    @property
    def message(self) -> SipRequest | SipResponse:
        return parse_message(self.data)


@dataclass
class RecordingSender:
    """A Sender that keeps what it was given and when."""

    clock: FakeClock
    sent: list[Sent] = field(default_factory=list)

    def send(self, data: bytes, flow: Flow) -> None:
        self.sent.append(Sent(self.clock.now, data, flow))


@dataclass
class RecordingUser:
    """A TransactionUser that keeps every callback."""

    requests: list[tuple[ServerTransaction | None, SipRequest]] = field(default_factory=list)
    responses: list[tuple[ClientTransaction, SipResponse]] = field(default_factory=list)
    timeouts: list[tuple[float, ClientTransaction | ServerTransaction]] = field(default_factory=list)
    strays: list[tuple[SipResponse, Flow]] = field(default_factory=list)
    clock: FakeClock = field(default_factory=FakeClock)

    def on_request(self, tx: ServerTransaction | None, request: SipRequest) -> None:
        self.requests.append((tx, request))

    def on_response(self, tx: ClientTransaction, response: SipResponse) -> None:
        self.responses.append((tx, response))

    def on_timeout(self, tx: ClientTransaction | ServerTransaction) -> None:
        self.timeouts.append((self.clock.now, tx))

    def on_stray_response(self, response: SipResponse, flow: Flow) -> None:
        self.strays.append((response, flow))

    def statuses(self) -> list[int]:
        return [r.status for _, r in self.responses]


class Harness:
    def __init__(self, start: float = 0.0) -> None:
        self.clock = FakeClock(start)
        self.sender = RecordingSender(self.clock)
        self.tu = RecordingUser(clock=self.clock)
        self.layer = TransactionLayer(self.sender, self.tu)

    def send(self, req: SipRequest, flow: Flow = UAS) -> ClientTransaction:
        return self.layer.send_request(req, flow, self.clock.now)

    def receive(self, message: SipRequest | SipResponse, flow: Flow = UAS) -> None:
        self.layer.receive(message, flow, self.clock.now)

    def incoming(self, req: SipRequest, flow: Flow = UAC) -> ServerTransaction:
        """Deliver a new request and return the server transaction the TU got."""
        self.receive(req, flow)
        tx, got = self.tu.requests[-1]
        assert got is req and tx is not None
        return tx

    def advance(self, to: float) -> None:
        """Move the clock to ``to``, polling at every deadline on the way."""
        while (deadline := self.layer.next_deadline()) is not None and deadline <= to:
            self.clock.now = max(self.clock.now, deadline)
            self.layer.poll(self.clock.now)
        self.clock.now = to
        self.layer.poll(to)

    def times(self, method_or_status: str | int | None = None) -> list[float]:
        """When messages were sent, optionally only one method (requests) or status (responses)."""
        out: list[float] = []
        for sent in self.sender.sent:
            msg = sent.message
            key = msg.method if isinstance(msg, SipRequest) else msg.status
            if method_or_status is None or key == method_or_status:
                out.append(sent.at)
        return out


def state_of(tx: ClientTransaction | ServerTransaction) -> State:
    """The state now (a function call, so type checkers don't keep an earlier assert's narrowing)."""
    return tx.state


# ------------------------------------------------------------------ INVITE client (17.1.1)


def test_invite_client_over_udp_retransmits_on_timer_a_doubling_from_t1() -> None:
    h = Harness()
    invite = request("INVITE")
    h.send(invite)
    h.advance(31.9)
    assert h.times() == [0.0, *INVITE_RETRANSMITS]
    assert {s.data for s in h.sender.sent} == {invite.to_bytes()}
    assert all(s.flow == UAS for s in h.sender.sent)
    assert h.tu.timeouts == []


def test_every_scheduled_deadline_is_reported_to_the_io_edge() -> None:
    """The hook an asyncio edge uses to keep one real timer at the earliest deadline."""
    h = Harness()
    deadlines: list[float] = []
    h.layer.on_deadline = deadlines.append
    h.send(request("INVITE"))
    assert deadlines == [0.5]  # Timer A
    h.advance(0.5)
    assert deadlines == [0.5, 1.5]  # re-armed on the retransmission
    assert h.layer.next_deadline() == 1.5


def test_invite_client_without_any_response_times_out_on_timer_b_after_64_t1() -> None:
    h = Harness()
    tx = h.send(request("INVITE"))
    h.advance(40.0)
    assert h.tu.timeouts == [(32.0, tx)]
    assert tx.state is State.TERMINATED
    assert h.layer.client == {}
    assert h.times() == [0.0, *INVITE_RETRANSMITS]  # nothing after Timer B


def test_invite_client_over_tcp_never_retransmits_and_timer_b_counts_from_the_send() -> None:
    h = Harness(start=100.0)
    tx = h.send(request("INVITE"), UAS_TCP)
    h.advance(131.9)
    assert h.times() == [100.0]
    assert h.tu.timeouts == []
    h.advance(132.0)
    assert h.tu.timeouts == [(132.0, tx)]


def test_provisional_stops_invite_retransmission_and_timer_b() -> None:
    h = Harness()
    tx = h.send(request("INVITE"))
    h.advance(0.7)
    h.receive(response(180, "Ringing"))
    h.advance(PROCEEDING_GUARD - 1)
    assert h.times() == [0.0, 0.5]
    assert tx.state is State.PROCEEDING
    assert h.tu.statuses() == [180]
    assert h.tu.timeouts == []  # ringing for minutes is the TU's business (it CANCELs)


def test_invite_left_ringing_is_reclaimed_by_the_proceeding_guard() -> None:
    h = Harness()
    tx = h.send(request("INVITE"))
    h.receive(response(183, "Session Progress"))
    h.advance(PROCEEDING_GUARD + 1)
    assert h.tu.timeouts == [(PROCEEDING_GUARD, tx)]
    assert h.layer.client == {}


def test_non_2xx_final_is_acked_by_the_transaction_with_same_branch_and_the_to_tag() -> None:
    h = Harness()
    invite = request("INVITE", extra="Route: <sip:proxy1.example.com;lr>, <sip:proxy2.example.com;lr>\n")
    tx = h.send(invite)
    h.advance(0.2)
    h.receive(response(486, "Busy Here", to_tag="busy1"))
    ack = h.sender.sent[-1].message
    assert isinstance(ack, SipRequest) and ack.method == "ACK"
    assert h.sender.sent[-1].flow == UAS
    assert str(ack.uri) == str(invite.uri)
    assert ack.headers.values("Via") == invite.headers.values("Via")  # same branch: same transaction
    assert ack.headers.get("From") == invite.headers.get("From")
    assert ack.headers.get("To") == "<sip:4001234567@192.0.2.10>;tag=busy1"
    assert ack.call_id == invite.call_id
    assert ack.cseq == (1, "ACK")
    assert ack.headers.get_all("Route") == ["<sip:proxy1.example.com;lr>", "<sip:proxy2.example.com;lr>"]
    assert tx.state is State.COMPLETED
    assert h.tu.statuses() == [486]


def test_retransmitted_non_2xx_final_is_acked_again_but_not_passed_to_the_tu() -> None:
    h = Harness()
    h.send(request("INVITE"))
    h.receive(response(486, "Busy Here"))
    h.advance(1.0)
    h.receive(response(486, "Busy Here"))
    h.receive(response(486, "Busy Here"))
    assert h.times("ACK") == [0.0, 1.0, 1.0]
    assert h.times("INVITE") == [0.0]  # Timer A stopped by the final response
    assert h.tu.statuses() == [486]


def test_invite_client_completed_lasts_timer_d_over_udp_then_a_late_final_is_stray() -> None:
    h = Harness()
    tx = h.send(request("INVITE"))
    h.receive(response(603, "Decline"))
    h.advance(31.9)
    assert tx.state is State.COMPLETED
    h.advance(32.0)
    assert state_of(tx) is State.TERMINATED
    h.receive(response(603, "Decline"))
    assert len(h.tu.strays) == 1
    assert h.times("ACK") == [0.0]
    assert h.tu.timeouts == []  # Timer D ending is not a failure


def test_invite_client_over_tcp_leaves_completed_at_once() -> None:
    h = Harness()
    tx = h.send(request("INVITE"), UAS_TCP)
    h.receive(response(404, "Not Found"), UAS_TCP)
    h.advance(0.0)
    assert tx.state is State.TERMINATED
    assert h.layer.client == {}


def test_2xx_moves_invite_client_to_accepted_and_2xx_retransmissions_reach_the_tu() -> None:
    # RFC 6026 8.4: the transaction does not ACK a 2xx; the TU (re-)ACKs every copy.
    h = Harness()
    tx = h.send(request("INVITE"))
    h.receive(response(180, "Ringing"))
    h.advance(3.0)
    h.receive(response(200, "OK"))
    assert tx.state is State.ACCEPTED
    h.advance(4.0)
    h.receive(response(200, "OK"))
    h.advance(8.0)
    h.receive(response(200, "OK"))
    assert h.tu.statuses() == [180, 200, 200, 200]
    assert h.times() == [0.0]  # no ACK, no INVITE retransmission


def test_2xx_after_timer_m_is_a_stray_response() -> None:
    h = Harness()
    tx = h.send(request("INVITE"))
    h.receive(response(200, "OK"))
    h.advance(31.9)
    assert tx.state is State.ACCEPTED
    h.advance(32.0)
    late = response(200, "OK")
    h.receive(late)
    assert h.tu.strays == [(late, UAS)]
    assert h.tu.statuses() == [200]
    assert h.tu.timeouts == []


# ------------------------------------------------------------------ non-INVITE client (17.1.2)


def test_non_invite_client_over_udp_retransmits_on_timer_e_capped_at_t2() -> None:
    h = Harness()
    options = request("OPTIONS")
    h.send(options)
    h.advance(31.9)
    assert h.times() == [0.0, *CAPPED_RETRANSMITS]
    assert {s.data for s in h.sender.sent} == {options.to_bytes()}


def test_non_invite_client_times_out_on_timer_f_after_64_t1() -> None:
    h = Harness()
    tx = h.send(request("OPTIONS"))
    h.advance(33.0)
    assert h.tu.timeouts == [(32.0, tx)]
    assert h.layer.client == {}


def test_provisional_to_non_invite_makes_timer_e_retransmit_every_t2() -> None:
    h = Harness()
    tx = h.send(request("BYE"))
    h.advance(0.2)
    h.receive(response(100, "Trying", method="BYE"))
    assert tx.state is State.PROCEEDING
    h.advance(33.0)
    assert h.times() == [0.0, 0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]
    assert h.tu.timeouts == [(32.0, tx)]  # a 1xx does not stop Timer F


def test_non_invite_client_over_tcp_never_retransmits_and_times_out_on_timer_f() -> None:
    h = Harness()
    tx = h.send(request("OPTIONS"), UAS_TCP)
    h.advance(33.0)
    assert h.times() == [0.0]
    assert h.tu.timeouts == [(32.0, tx)]


def test_non_invite_final_is_absorbed_for_timer_k_then_forgotten() -> None:
    h = Harness()
    tx = h.send(request("OPTIONS"))
    h.advance(0.7)
    h.receive(response(200, "OK", method="OPTIONS"))
    h.advance(4.0)
    h.receive(response(200, "OK", method="OPTIONS"))  # retransmission: absorbed
    assert h.tu.statuses() == [200]
    assert h.tu.strays == []
    assert h.times() == [0.0, 0.5]
    h.advance(5.69)
    assert tx.state is State.COMPLETED
    h.advance(5.7)  # T4 after the final response
    assert state_of(tx) is State.TERMINATED
    h.receive(response(200, "OK", method="OPTIONS"))
    assert len(h.tu.strays) == 1


def test_non_invite_client_over_tcp_leaves_completed_at_once() -> None:
    h = Harness()
    tx = h.send(request("OPTIONS"), UAS_TCP)
    h.receive(response(200, "OK", method="OPTIONS"), UAS_TCP)
    h.advance(0.0)
    assert tx.state is State.TERMINATED


# ------------------------------------------------------------------ INVITE server (17.2.1, RFC 6026)


def test_retransmitted_invite_resends_the_last_provisional_and_is_not_a_new_request() -> None:
    h = Harness()
    invite = request("INVITE")
    tx = h.incoming(invite)
    tx.respond(make_response(invite, 100))
    tx.respond(make_response(invite, 180, to_tag="uas1"))
    h.advance(0.5)
    h.receive(request("INVITE"), UAC)
    assert h.times(180) == [0.0, 0.5]
    assert h.sender.sent[-1].flow == UAC
    assert len(h.tu.requests) == 1


def test_retransmitted_invite_before_any_response_sends_nothing() -> None:
    h = Harness()
    h.incoming(request("INVITE"))
    h.receive(request("INVITE"), UAC)
    assert h.sender.sent == []
    assert len(h.tu.requests) == 1


def test_non_2xx_final_is_retransmitted_on_timer_g_until_the_ack_confirms() -> None:
    h = Harness()
    invite = request("INVITE")
    tx = h.incoming(invite)
    tx.respond(make_response(invite, 486, to_tag="uas1"))
    h.advance(4.0)
    assert state_of(tx) is State.COMPLETED
    h.receive(request("ACK", cseq_method="ACK", to_tag="uas1"), UAC)
    assert state_of(tx) is State.CONFIRMED
    h.advance(8.99)
    assert h.times(486) == [0.0, 0.5, 1.5, 3.5]
    assert len(h.tu.requests) == 1  # the ACK for a non-2xx stays in the transaction layer
    assert state_of(tx) is State.CONFIRMED
    h.receive(request("ACK", cseq_method="ACK", to_tag="uas1"), UAC)  # absorbed in Confirmed
    assert len(h.tu.requests) == 1
    h.advance(9.0)  # Timer I: T4 after the ACK
    assert state_of(tx) is State.TERMINATED
    assert h.tu.timeouts == []


def test_retransmitted_invite_in_completed_resends_the_final_response() -> None:
    h = Harness()
    invite = request("INVITE")
    tx = h.incoming(invite)
    tx.respond(make_response(invite, 480, to_tag="uas1"))
    h.advance(0.2)
    h.receive(request("INVITE"), UAC)
    assert h.times(480) == [0.0, 0.2]


def test_non_2xx_final_without_ack_times_out_on_timer_h() -> None:
    h = Harness()
    invite = request("INVITE")
    tx = h.incoming(invite)
    tx.respond(make_response(invite, 486, to_tag="uas1"))
    h.advance(40.0)
    assert h.times(486) == [0.0, *CAPPED_RETRANSMITS]
    assert h.tu.timeouts == [(32.0, tx)]
    assert h.layer.server == {}


def test_non_2xx_final_over_tcp_is_not_retransmitted_and_times_out_on_timer_h() -> None:
    h = Harness()
    invite = request("INVITE")
    tx = h.incoming(invite, UAC_TCP)
    tx.respond(make_response(invite, 486, to_tag="uas1"))
    h.advance(40.0)
    assert h.times(486) == [0.0]
    assert h.tu.timeouts == [(32.0, tx)]


def test_ack_over_tcp_ends_the_invite_server_transaction_at_once() -> None:
    h = Harness()
    invite = request("INVITE")
    tx = h.incoming(invite, UAC_TCP)
    tx.respond(make_response(invite, 486, to_tag="uas1"))
    h.receive(request("ACK", cseq_method="ACK", to_tag="uas1"), UAC_TCP)
    h.advance(0.0)
    assert tx.state is State.TERMINATED


def test_no_response_is_sent_after_a_final_response() -> None:
    h = Harness()
    invite = request("INVITE")
    tx = h.incoming(invite)
    tx.respond(make_response(invite, 486, to_tag="uas1"))
    tx.respond(make_response(invite, 180, to_tag="uas1"))
    tx.respond(make_response(invite, 200, to_tag="uas1"))
    assert h.times() == [0.0]
    assert tx.last_response is not None and tx.last_response.status == 486


def test_2xx_moves_invite_server_to_accepted_which_absorbs_retransmitted_invites() -> None:
    h = Harness()
    invite = request("INVITE")
    tx = h.incoming(invite)
    tx.respond(make_response(invite, 180, to_tag="uas1"))
    tx.respond(make_response(invite, 200, to_tag="uas1"))
    assert tx.state is State.ACCEPTED
    h.advance(1.0)
    h.receive(request("INVITE"), UAC)
    h.advance(31.9)
    # RFC 6026 7.1: the TU, not the transaction, retransmits the 2xx.
    assert h.times() == [0.0, 0.0]
    assert len(h.tu.requests) == 1


def test_accepted_invite_server_ends_on_timer_l_and_a_later_invite_is_new() -> None:
    h = Harness()
    invite = request("INVITE")
    tx = h.incoming(invite)
    tx.respond(make_response(invite, 200, to_tag="uas1"))
    h.advance(32.0)
    assert tx.state is State.TERMINATED
    assert h.tu.timeouts == []
    h.receive(request("INVITE"), UAC)
    assert len(h.tu.requests) == 2


def test_2xx_retransmitted_by_the_tu_in_accepted_is_sent_without_extending_timer_l() -> None:
    h = Harness()
    invite = request("INVITE")
    tx = h.incoming(invite)
    ok = make_response(invite, 200, to_tag="uas1")
    tx.respond(ok)
    h.advance(2.0)
    tx.respond(ok)
    assert h.times(200) == [0.0, 2.0]
    h.advance(32.0)  # 64*T1 after entering Accepted, not after the retransmission
    assert tx.state is State.TERMINATED


def test_ack_for_2xx_with_a_new_branch_reaches_the_tu_without_a_transaction() -> None:
    h = Harness()
    invite = request("INVITE")
    tx = h.incoming(invite)
    tx.respond(make_response(invite, 200, to_tag="uas1"))
    ack = request("ACK", branch="z9hG4bKack2", cseq_method="ACK", to_tag="uas1")
    h.receive(ack, UAC)
    assert h.tu.requests[-1] == (None, ack)
    assert tx.state is State.ACCEPTED


def test_ack_for_2xx_reusing_the_invite_branch_reaches_the_tu_with_the_transaction() -> None:
    h = Harness()
    invite = request("INVITE")
    tx = h.incoming(invite)
    tx.respond(make_response(invite, 200, to_tag="uas1"))
    ack = request("ACK", cseq_method="ACK", to_tag="uas1")
    h.receive(ack, UAC)
    assert h.tu.requests[-1] == (tx, ack)


# ------------------------------------------------------------------ non-INVITE server (17.2.2)


def test_retransmitted_non_invite_request_resends_the_last_response() -> None:
    h = Harness()
    bye = request("BYE", cseq=2, to_tag="uas1")
    tx = h.incoming(bye)
    h.receive(request("BYE", cseq=2, to_tag="uas1"), UAC)  # Trying: absorbed silently
    assert h.sender.sent == []
    tx.respond(make_response(bye, 100))
    h.receive(request("BYE", cseq=2, to_tag="uas1"), UAC)
    assert tx.state is State.PROCEEDING
    tx.respond(make_response(bye, 200))
    h.advance(1.0)
    h.receive(request("BYE", cseq=2, to_tag="uas1"), UAC)
    assert h.times(100) == [0.0, 0.0]
    assert h.times(200) == [0.0, 1.0]
    assert len(h.tu.requests) == 1


def test_non_invite_server_completed_lasts_timer_j_over_udp() -> None:
    h = Harness()
    options = request("OPTIONS")
    tx = h.incoming(options)
    tx.respond(make_response(options, 200))
    h.advance(31.9)
    assert tx.state is State.COMPLETED
    h.advance(32.0)
    assert state_of(tx) is State.TERMINATED
    assert h.tu.timeouts == []
    h.receive(request("OPTIONS"), UAC)  # after Timer J a copy is a new request
    assert len(h.tu.requests) == 2


def test_non_invite_server_over_tcp_leaves_completed_at_once() -> None:
    h = Harness()
    options = request("OPTIONS")
    tx = h.incoming(options, UAC_TCP)
    tx.respond(make_response(options, 200))
    h.advance(0.0)
    assert tx.state is State.TERMINATED


# ------------------------------------------------------------------ matching (17.1.3, 17.2.3)


def test_cancel_gets_its_own_server_transaction_beside_the_invite() -> None:
    h = Harness()
    invite = request("INVITE")
    invite_tx = h.incoming(invite)
    invite_tx.respond(make_response(invite, 180, to_tag="uas1"))
    cancel = request("CANCEL", cseq_method="CANCEL")
    cancel_tx = h.incoming(cancel)
    assert cancel_tx is not invite_tx
    assert cancel_tx.key == ("z9hG4bKtx1", "192.0.2.20:5060", "CANCEL")
    assert invite_tx.key == ("z9hG4bKtx1", "192.0.2.20:5060", "INVITE")
    cancel_tx.respond(make_response(cancel, 200))
    assert invite_tx.state is State.PROCEEDING
    assert cancel_tx.state is State.COMPLETED


def test_cancel_client_transaction_gets_its_200_and_the_invite_its_487() -> None:
    h = Harness()
    invite_tx = h.send(request("INVITE"))
    h.receive(response(180, "Ringing"))
    cancel_tx = h.send(request("CANCEL", cseq_method="CANCEL"))
    h.receive(response(200, "OK", method="CANCEL"))
    h.receive(response(487, "Request Terminated"))
    assert [(tx, r.status) for tx, r in h.tu.responses] == [(invite_tx, 180), (cancel_tx, 200), (invite_tx, 487)]
    assert h.times("ACK") == [0.0]


def test_same_branch_from_another_sent_by_is_another_transaction() -> None:
    h = Harness()
    first = h.incoming(request("OPTIONS"))
    second = h.incoming(request("OPTIONS", sent_by="198.51.100.7:5070"), Flow("udp", ("198.51.100.7", 5070)))
    assert first is not second
    assert len(h.tu.requests) == 2


def test_response_matching_no_client_transaction_is_stray() -> None:
    h = Harness()
    h.send(request("INVITE"))
    other_branch = response(200, "OK", branch="z9hG4bKnobody")
    other_method = response(200, "OK", method="BYE")
    h.receive(other_branch)
    h.receive(other_method)
    assert h.tu.strays == [(other_branch, UAS), (other_method, UAS)]
    assert h.tu.responses == []


# ------------------------------------------------------------------ timers


def test_next_deadline_is_none_without_transactions() -> None:
    assert Harness().layer.next_deadline() is None


def test_next_deadline_ignores_cancelled_timers() -> None:
    h = Harness()
    tx = h.send(request("INVITE"))
    assert h.layer.next_deadline() == 0.5  # Timer A
    h.receive(response(180, "Ringing"))
    assert h.layer.next_deadline() == PROCEEDING_GUARD  # Timer A cancelled, its heap entry is stale
    tx.cancel_timeout()
    assert h.layer.next_deadline() is None
    assert h.layer.client == {}


def test_next_deadline_is_the_earliest_live_timer_across_transactions() -> None:
    h = Harness()
    h.send(request("INVITE", branch="z9hG4bKone"), UAS_TCP)  # Timer B at 32
    h.advance(10.0)
    h.send(request("OPTIONS", branch="z9hG4bKtwo"))  # Timer E at 10.5
    assert h.layer.next_deadline() == 10.5
