"""RFC 3261 section 12 dialogs, sans-I/O: identifiers, CSeq, route set, remote target."""

from __future__ import annotations

from dataclasses import dataclass, field

from .message import Headers, SipError, SipRequest, SipResponse, generate_branch
from .uri import NameAddr, SipUri


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_addr: NameAddr  # our From/To value (with our tag)
    remote_addr: NameAddr  # their From/To value (with their tag)
    remote_target: SipUri  # their Contact
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 1
    remote_seq: int | None = None
    #: Our Contact, written into every request we send.
    local_contact: str = ""
    #: The Via sent-by we put on our requests ("host:port"), and transport.
    via_host: str = ""
    transport: str = "UDP"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uas(cls, request: SipRequest, local_tag: str, local_contact: str, via_host: str,
               transport: str) -> Dialog:
        """12.1.1: the dialog a UAS creates by answering ``request``."""
        contacts = request.contact
        if not contacts:
            raise SipError("INVITE without Contact")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_tag or "",
            local_addr=request.to_addr.with_tag(local_tag),
            remote_addr=request.from_addr,
            remote_target=contacts[0].uri,
            route_set=list(request.headers.get_all("Record-Route")),
            local_seq=0,
            remote_seq=request.cseq[0],
            local_contact=local_contact,
            via_host=via_host,
            transport=transport,
        )

    @classmethod
    def as_uac(cls, request: SipRequest, response: SipResponse, local_contact: str, via_host: str,
               transport: str) -> Dialog:
        """12.1.2: the dialog a UAC gets from a 2xx (or 1xx with To tag) to ``request``."""
        contacts = response.contact
        target = contacts[0].uri if contacts else request.uri
        return cls(
            call_id=request.call_id,
            local_tag=request.from_tag or "",
            remote_tag=response.to_tag or "",
            local_addr=request.from_addr,
            remote_addr=response.to_addr,
            remote_target=target,
            route_set=list(reversed(response.headers.get_all("Record-Route"))),
            local_seq=request.cseq[0],
            remote_seq=None,
            local_contact=local_contact,
            via_host=via_host,
            transport=transport,
        )

    def check_remote_cseq(self, request: SipRequest) -> bool:
        """12.2.2: a CSeq lower than the last one is out of order (answer 500)."""
        seq = request.cseq[0]
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_seq is not None and seq < self.remote_seq:
            return False
        self.remote_seq = seq
        return True

    def update_target(self, request_or_response: SipRequest | SipResponse) -> None:
        """Target refresh (re-INVITE and its 2xx may carry a new Contact)."""
        contacts = request_or_response.contact
        if contacts:
            self.remote_target = contacts[0].uri

    def next_hop(self) -> SipUri:
        """Where in-dialog requests go: the first (loose) route, else the remote target."""
        if self.route_set:
            return NameAddr.parse(self.route_set[0]).uri
        return self.remote_target

    def create_request(self, method: str, *, body: bytes = b"", content_type: str | None = None,
                       cseq: int | None = None, extra: dict[str, str] | None = None) -> SipRequest:
        """12.2.1.1: an in-dialog request (ACK passes ``cseq`` of its INVITE)."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        headers = Headers()
        headers.add("Via", f"SIP/2.0/{self.transport} {self.via_host};branch={generate_branch()};rport")
        headers.add("Max-Forwards", "70")
        headers.add("From", str(self.local_addr))
        headers.add("To", str(self.remote_addr))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{cseq} {method}")
        for route in self.route_set:
            headers.add("Route", route)
        if method in ("INVITE", "UPDATE"):
            headers.add("Contact", self.local_contact)
        if extra:
            for name, value in extra.items():
                headers.add(name, value)
        if content_type:
            headers.add("Content-Type", content_type)
        return SipRequest(method, self.remote_target, headers, body)
