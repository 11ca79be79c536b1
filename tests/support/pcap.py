"""RTP pcap files for sipp's ``play_pcap_audio`` (PCMA) and the sipp caller scenario that plays them."""

from __future__ import annotations

import struct
from pathlib import Path

from sip_bridge.g711 import pcm_to_alaw
from tests.support.audio import silence, speak

SIPP_PCAPS = Path("/usr/share/sip-tester")
FRAME_BYTES = 320  # 20 ms of 16-bit 8 kHz PCM
PCMA = 8


def espeak_pcm(text: str, voice: str, *, lead: float = 0.3, tail: float = 1.0) -> bytes:
    """Speech as 16-bit 8 kHz mono PCM with silence around it."""
    return silence(lead) + speak(text, voice=voice) + silence(tail)


def write_rtp_pcap(path: Path, pcm: bytes) -> Path:
    """One RTP stream (PCMA, 20 ms packets) in an Ethernet/IPv4/UDP pcap, as sipp expects."""
    pcm += bytes(-len(pcm) % FRAME_BYTES)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    seq, ts, ssrc = 1000, 160_000, 0x1234ABCD
    for i in range(0, len(pcm), FRAME_BYTES):
        rtp = struct.pack("!BBHII", 0x80, PCMA | (0x80 if i == 0 else 0), seq & 0xFFFF, ts, ssrc) \
            + pcm_to_alaw(pcm[i:i + FRAME_BYTES])
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        frame = bytes(6) + bytes(6) + b"\x08\x00" + ip
        usec = (i // FRAME_BYTES) * 20_000
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame)) + frame)
        seq += 1
        ts += 160
    path.write_bytes(b"".join(out))
    return path


def pcap_duration_ms(path: Path) -> int:
    """Time from the first to the last packet of a pcap (plus one 20 ms frame)."""
    data = path.read_bytes()
    offset, first, last = 24, None, 0.0
    while offset + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack_from("<IIII", data, offset)
        stamp = sec + usec / 1e6
        first = stamp if first is None else first
        last = stamp
        offset += 16 + incl
    return int(round((last - (first or 0.0)) * 1000)) + 20


def ivr_call_scenario(path: Path, steps: list[tuple[str, object]], *, platform_hangs_up: bool = False) -> Path:
    """A caller scenario: INVITE (PCMA + telephone-event), ACK, then ``steps``, then BYE
    (or, with ``platform_hangs_up``, waits for the node's BYE and answers it).

    Steps: ("pause", milliseconds) and ("pcap", file) played into the call (RTP audio or
    RFC 4733 digits).  sipp plays a pcap in the background, so each pcap step is followed
    by a pause as long as the capture: the next step starts when it has been sent.
    ("talk", file) starts a pcap and goes straight on: with ``platform_hangs_up``, the caller
    talks until the node hangs up.
    """
    actions = []
    for kind, value in steps:
        if kind == "pause":
            actions.append(f'  <pause milliseconds="{value}"/>')
        elif kind == "pcap":
            actions.append(f'  <nop><action><exec play_pcap_audio="{value}"/></action></nop>')
            source = Path(str(value))  # "pcap/..." names are sipp's own captures
            source = source if source.is_absolute() else SIPP_PCAPS / source.name
            actions.append(f'  <pause milliseconds="{pcap_duration_ms(source)}"/>')
        elif kind == "talk":
            actions.append(f'  <nop><action><exec play_pcap_audio="{value}"/></action></nop>')
        else:
            raise ValueError(kind)
    body = "\n".join(actions)
    ending = BYE_FROM_CALLER if not platform_hangs_up else BYE_FROM_PLATFORM
    path.write_text(f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="ivr caller">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0
]]></send>
{body}
{ending}
</scenario>
""")
    return path


BYE_FROM_CALLER = """  <send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:13800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0
]]></send>
  <recv response="200" crlf="true"/>"""
BYE_FROM_PLATFORM = """  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
]]></send>"""
