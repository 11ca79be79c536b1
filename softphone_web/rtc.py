"""One WebRTC connection to an agent's browser tab (aiortc), carrying G.711 untouched.

aiortc's own audio path decodes every received packet behind a jitter buffer that
holds four packets and a decoder thread, and encodes every frame it sends: 80 ms and
more of delay on each leg (aiortc issue 775 reports 0.5-1 s with default settings).
The browser speaks PCMU/PCMA like the SIP side, so this line skips all of that:

* received packets are taken off the receiver as they arrive (its ``_handle_rtp_packet``
  is wrapped) and their G.711 payload handed on without decoding; the SIP peer and the
  browser each keep their own jitter buffer, as they would talking directly;
* sent audio is given to aiortc as pre-encoded ``av.Packet``\\ s, which its sender packs
  into SRTP as they come (no encoder, no resampler).

Only when a browser insists on Opus does audio go through aiortc's decoder and encoder
(resampled to and from 8 kHz G.711, so the rest of the node sees one format).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from sip_bridge.g711 import decoder_for, encoder_for

logger = logging.getLogger(__name__)

G711 = ("PCMU", "PCMA")
SAMPLES = 160  # 20 ms at 8 kHz
TIME_BASE = fractions.Fraction(1, 8000)
MAX_QUEUED = 6
"""Frames waiting for aiortc's sender beyond which the oldest are dropped (bounded delay)."""

PayloadSink = Callable[[bytes, int, int], None]
"""Receives (G.711 payload in the line's codec, RTP timestamp, marker bit)."""


class RelayTrack(MediaStreamTrack):
    """The audio we send to the browser: whatever is pushed, as it is pushed.

    Timestamps advance 20 ms per frame while audio flows and jump by the wall-clock gap
    after a pause (hold, between calls), so the browser's jitter buffer sees real time.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._clock = asyncio.get_running_loop()
        self._frames: deque[av.Packet | av.AudioFrame] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._pts = 0
        self._last = 0.0

    def _advance(self) -> int:
        now = self._clock.time()
        gap = now - self._last
        self._pts += SAMPLES if gap < 0.1 else SAMPLES * max(1, round(gap * 50))
        self._last = now
        return self._pts

    def push(self, payload: bytes) -> None:
        """Queue one 20 ms G.711 payload in the wire codec."""
        self._advance()
        packet = av.Packet(payload)
        packet.pts = self._pts
        packet.time_base = TIME_BASE
        self._queue(packet)

    def push_pcm(self, pcm: bytes) -> None:
        """Queue 20 ms of 16-bit 8 kHz PCM, for aiortc to encode (the Opus case)."""
        self._advance()
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(pcm) // 2)
        frame.planes[0].update(pcm)
        frame.sample_rate = 8000
        frame.pts = self._pts
        frame.time_base = TIME_BASE
        self._queue(frame)

    def _queue(self, item: av.Packet | av.AudioFrame) -> None:
        if len(self._frames) >= MAX_QUEUED:
            self._frames.popleft()
        self._frames.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def recv(self) -> Any:
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._waiter = self._clock.create_future()
            await self._waiter
        return self._frames.popleft()

    def stop(self) -> None:
        super().stop()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class WebRtcLine:
    """The peer connection of one browser tab; lives as long as the tab's WebSocket."""

    def __init__(self, ice_servers: list[dict[str, Any]] | None = None, *, label: str = "") -> None:
        servers = [RTCIceServer(**s) for s in ice_servers or []]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self.label = label
        self.codec = "PCMU"
        self.track: RelayTrack | None = None
        #: Where the browser's audio goes (the leg it is attached to); None: dropped.
        self.sink: PayloadSink | None = None
        self._pt_codec: dict[int, str] = {}
        self._tasks: list[asyncio.Task[None]] = []

        @self.pc.on("connectionstatechange")
        async def _state() -> None:
            logger.info("webrtc %s", self.pc.connectionState, extra={"call_id": self.label})

    async def answer(self, offer_sdp: str) -> str:
        """Apply the browser's offer; returns our answer (ICE candidates included)."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        transceivers = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if not transceivers:
            raise ValueError("the offer has no audio")
        transceiver = transceivers[0]
        self.track = RelayTrack()
        transceiver.sender.replaceTrack(self.track)
        transceiver.direction = "sendrecv"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        codecs = SessionDescription.parse(self.pc.localDescription.sdp).media[0].rtp.codecs
        names = [c.mimeType.split("/")[1].upper() for c in codecs]
        self.codec = names[0] if names else "PCMU"
        self._pt_codec = {c.payloadType: c.mimeType.split("/")[1].upper() for c in codecs
                          if c.payloadType is not None}
        self._tap(transceiver.receiver)
        return self.pc.localDescription.sdp

    def _tap(self, receiver: Any) -> None:
        """Take G.711 packets off the receiver before aiortc's jitter buffer and decoder."""
        original = receiver._handle_rtp_packet

        async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
            codec = self._pt_codec.get(packet.payload_type)
            if codec in G711:
                sink = self.sink
                if sink is not None:
                    payload = packet.payload if codec == self.payload_codec else \
                        encoder_for(self.payload_codec)(decoder_for(codec)(packet.payload))
                    sink(payload, packet.timestamp, packet.marker)
                return
            if self.sink is None:
                return  # no call attached: do not spend a decoder on an idle tab
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = handle
        if self.codec not in G711:
            self._tasks.append(asyncio.get_running_loop().create_task(self._decode_opus(receiver.track)))

    async def _decode_opus(self, track: MediaStreamTrack) -> None:
        """Opus from the browser: aiortc decodes; we resample to 8 kHz and hand on PCMU."""
        resampler = av.AudioResampler(format="s16", layout="mono", rate=8000, frame_size=SAMPLES)
        encode = encoder_for("PCMU")
        ts = 0
        try:
            while True:
                frame = await track.recv()
                for out in resampler.resample(frame):  # type: ignore[arg-type]
                    ts = (ts + SAMPLES) & 0xFFFFFFFF
                    if self.sink is not None:
                        self.sink(encode(bytes(out.planes[0])[:2 * SAMPLES]), ts, 0)
        except Exception:  # the track ended with the connection
            return

    @property
    def payload_codec(self) -> str:
        """The G.711 codec of the payloads this line takes and gives (PCMU when Opus is on the wire)."""
        return self.codec if self.codec in G711 else "PCMU"

    def send(self, payload: bytes) -> None:
        """20 ms of G.711 in :attr:`payload_codec` to the browser."""
        track = self.track
        if track is None:
            return
        if self.codec in G711:
            track.push(payload)
        else:
            track.push_pcm(decoder_for("PCMU")(payload))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.track is not None:
            self.track.stop()
        await self.pc.close()


class OfferError(ValueError):
    """A tab's WebRTC offer that cannot be used; the message says why (shown to the user)."""


async def answer_offer(sdp: str, ice_servers: list[dict[str, Any]], *, label: str) -> tuple[WebRtcLine, str]:
    """A new line for a tab's offer, and the answer to send back. Raises :class:`OfferError`."""
    if not sdp.startswith("v=0"):
        raise OfferError("rtc_offer needs the SDP of a WebRTC offer")
    line = WebRtcLine(ice_servers, label=label)
    try:
        return line, await line.answer(sdp)
    except Exception as exc:
        await line.close()
        raise OfferError(f"cannot use this offer: {exc}") from exc
