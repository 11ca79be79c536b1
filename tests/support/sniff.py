"""What a SIP peer that cannot record (sipp) is sent: RTP captured off the loopback interface.

A raw ``AF_PACKET`` socket sees every frame on ``lo``, like tshark would (and needs the
same privilege: CI runs as root). Frames for one UDP port are kept; their RTP payloads
decode to the audio the peer received.
"""

from __future__ import annotations

import socket
import struct
import threading

from sip_bridge.g711 import decoder_for

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
PAYLOAD_CODECS = {0: "PCMU", 8: "PCMA"}


class RtpSniffer:
    """RTP sent to ``port`` on loopback, from start() until stop()."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.payloads: list[tuple[int, bytes]] = []
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.2)
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self._running:
            try:
                frame, address = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            if address[2] == PACKET_OUTGOING:  # each loopback frame is seen leaving and arriving
                continue
            ip = frame[14:]
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP:
                continue
            udp = ip[(ip[0] & 0x0F) * 4:]
            if struct.unpack("!H", udp[2:4])[0] != self.port:
                continue
            rtp = udp[8:]
            if len(rtp) >= 12 and rtp[0] >> 6 == 2:
                self.payloads.append((rtp[1] & 0x7F, rtp[12 + 4 * (rtp[0] & 0x0F):]))

    def pcm(self, seconds: float = 1.0) -> bytes:
        """The last ``seconds`` of G.711 audio received, as 16-bit 8 kHz PCM."""
        frames = [decoder_for(PAYLOAD_CODECS[pt])(p) for pt, p in list(self.payloads) if pt in PAYLOAD_CODECS]
        return b"".join(frames)[-int(seconds * 16000):]

    def stop(self) -> None:
        self._running = False
        self._thread.join()
        self._sock.close()
