"""What crossed the loopback interface: tshark captures ``lo`` into a pcap file, read back here.

Each IPv4 frame becomes a :class:`Packet` (UDP datagrams and TCP segments with their
payload), so a test can say what an eavesdropper on the wire would have seen.  tshark
needs the capture privilege (CI runs as root).
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

TSHARK = "tshark"
_PCAP_MAGIC = 0xA1B2C3D4
_LINKTYPE_ETHERNET = 1
#: The header of a TLS (1.2 and 1.3) application data record: what encrypted SIP looks like.
TLS_APPLICATION_DATA = b"\x17\x03\x03"


def tshark_missing() -> str | None:
    return None if shutil.which(TSHARK) else "tshark is not installed (Debian package tshark)"


@dataclass(frozen=True)
class Packet:
    protocol: str  # "udp" or "tcp"
    src_port: int
    dst_port: int
    payload: bytes


class LoopbackCapture:
    """``with LoopbackCapture(path, "udp or tcp") as capture:`` ... then ``capture.packets()``."""

    def __init__(self, path: Path, bpf: str = "ip") -> None:
        self.path = path
        self.bpf = bpf
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr = path.with_suffix(".log")

    def __enter__(self) -> LoopbackCapture:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 20.0) -> None:
        stderr = self._stderr.open("wb")
        self._proc = subprocess.Popen([TSHARK, "-i", "lo", "-F", "pcap", "-w", str(self.path), "-f", self.bpf],
                                      stdout=subprocess.DEVNULL, stderr=stderr)
        stderr.close()
        deadline = time.monotonic() + timeout
        while b"Capturing on" not in self._stderr.read_bytes():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tshark did not start: {self._stderr.read_text(errors='replace')}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()  # tshark flushes the file and exits
            self._proc.wait(20)

    def packets(self) -> list[Packet]:
        """IPv4 UDP and TCP packets in capture order (each loopback frame is captured once)."""
        data = self.path.read_bytes()
        magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", data)
        assert magic == _PCAP_MAGIC and linktype == _LINKTYPE_ETHERNET, (hex(magic), linktype)
        out, offset = [], 24
        while offset + 16 <= len(data):
            length = struct.unpack_from("<IIII", data, offset)[2]
            frame = data[offset + 16:offset + 16 + length]
            offset += 16 + length
            ip = frame[14:]
            if len(frame) < 34 or frame[12:14] != b"\x08\x00" or ip[0] >> 4 != 4:
                continue
            header, total = (ip[0] & 0x0F) * 4, struct.unpack_from("!H", ip, 2)[0]
            segment = ip[header:total]
            src, dst = struct.unpack_from("!HH", segment)
            if ip[9] == socket.IPPROTO_UDP:
                out.append(Packet("udp", src, dst, segment[8:]))
            elif ip[9] == socket.IPPROTO_TCP:
                out.append(Packet("tcp", src, dst, segment[(segment[12] >> 4) * 4:]))
        return out


def tcp_stream(packets: list[Packet], port: int) -> bytes:
    """Every TCP payload byte to or from ``port``, in capture order."""
    return b"".join(p.payload for p in packets if p.protocol == "tcp" and port in (p.src_port, p.dst_port))

