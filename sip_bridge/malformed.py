"""Answering requests the parser rejected.

A request that fails to parse still deserves its 4xx (RFC 4475 expects 400
for most torture messages) if the headers a response must echo (Via, From,
To, Call-ID, CSeq; RFC 3261 8.2.6.2) can be found in the raw bytes.  When
they can't, the message is dropped: a response nobody can match is noise.
"""

from __future__ import annotations

from .message import MAX_MESSAGE_SIZE, generate_tag

_ECHOED = {
    "via": "Via", "v": "Via",
    "from": "From", "f": "From",
    "to": "To", "t": "To",
    "call-id": "Call-ID", "i": "Call-ID",
    "cseq": "CSeq",
}
_REASONS = {400: "Bad Request", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
            416: "Unsupported URI Scheme", 505: "Version Not Supported"}


def salvage_response(data: bytes, status: int, detail: str) -> bytes | None:
    """A response with ``status`` to the raw request ``data``, or None if it can't be addressed."""
    if status < 400 or len(data) > MAX_MESSAGE_SIZE or data.startswith(b"SIP/"):
        return None
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    if not lines or b" " not in lines[0] or b"SIP/" not in lines[0] or lines[0].startswith(b"ACK "):
        return None  # not a request line, or an ACK (never answered)
    fields: list[bytes] = []
    for raw in lines[1:]:
        if raw[:1] in (b" ", b"\t"):
            # RFC 3261 7.3.1: a line starting with whitespace continues the field above
            # (a folded Via keeps its branch; " i: x" is never a Call-ID of its own).
            if fields:
                fields[-1] = fields[-1].rstrip(b" \t") + b" " + raw.strip(b" \t")
            continue
        fields.append(raw)
    found: dict[str, list[str]] = {}
    for raw in fields:
        raw_name, sep, raw_value = raw.partition(b":")
        if not sep:
            continue
        key = _ECHOED.get(raw_name.strip().decode("latin-1").lower())
        if key is not None:
            found.setdefault(key, []).append(raw_value.strip().decode("latin-1"))
    if not all(k in found for k in ("Via", "From", "To", "Call-ID", "CSeq")):
        return None
    reason = _REASONS.get(status, "Bad Request")
    out = [f"SIP/2.0 {status} {reason}"]
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        values = found[name] if name == "Via" else found[name][:1]  # one of each but Via
        for value in values:
            if "\r" in value or "\n" in value:
                return None
            if name == "To" and ";tag=" not in value.replace(" ", "").lower():
                value += f";tag={generate_tag()}"  # RFC 3261 8.2.6.2: a final response tags To
            out.append(f"{name}: {value}")
    safe_detail = "".join(ch for ch in detail if 32 <= ord(ch) < 127)[:200]
    # Escaped after truncating: a lone '\' must not swallow the closing quote (RFC 3261 25.1).
    quoted = safe_detail.replace("\\", "\\\\").replace('"', "'")
    out.append(f'Warning: 399 callcenter "{quoted}"')
    out.append("Content-Length: 0")
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
