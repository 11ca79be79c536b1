"""The agent's browser as a call leg: a :class:`~sip_bridge.call.Call` whose media is the tab.

Everything built on the ``Call`` API (the ACD's bridge, hold music, transfers, recording
and listening later) works on it unchanged. The leg outlives the tab's WebRTC
connection: a reload or a network drop attaches a new :class:`~softphone_web.rtc.WebRtcLine`
to the same leg, and the caller's audio flows again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from sip_bridge.g711 import SILENCE, decoder_for, encoder_for
from sip_bridge.media import AudioTap, MediaClock, MediaPeer, Playback, transcoder
from sip_bridge.sdp import MediaParams

from .rtc import SAMPLES, WebRtcLine

PAYLOAD_TYPES = {"PCMU": 0, "PCMA": 8}
SILENCE_FRAMES = {codec: bytes([SILENCE[codec]]) * SAMPLES for codec in PAYLOAD_TYPES}


class BrowserStream:
    """Relays G.711 between the bridged peer and the attached tab; plays prompts into the tab.

    Like :class:`~sip_bridge.media.RtpStream` toward the rest of the node: payloads from a
    bridged peer go straight to the tab (transcoded only between PCMU and PCMA), the
    tab's go straight to the peer; prompts and PCM are paced by the node's media clock.
    """

    def __init__(self, call_id: str, clock: MediaClock) -> None:
        self.call_id = call_id
        self.clock = clock
        self.line: WebRtcLine | None = None
        self.params: MediaParams | None = MediaParams(remote_ip="0.0.0.0", remote_port=0, payload_type=0,
                                                      codec="PCMU", telephone_event_pt=None)
        self.peer: MediaPeer | None = None
        self.tap: AudioTap | None = None
        self.sent_tap: AudioTap | None = None
        self._source_codec: str | None = None
        self._transcode: Callable[[bytes], bytes] | None = None
        self._playback: Playback | None = None
        self._pcm_out: deque[bytes] = deque()
        self._listeners: list[asyncio.Queue[bytes | None]] = []
        self._silence_ts = 0
        self.closed = False

    @property
    def codec(self) -> str:
        assert self.params is not None
        return self.params.codec

    # -- the tab -------------------------------------------------------------------
    def attach(self, line: WebRtcLine) -> None:
        """Send to and take from this tab connection from now on (a reload brings a new one)."""
        if self.line is not None and self.line.sink == self._from_browser:
            self.line.sink = None
        self.line = line
        codec = line.payload_codec
        if codec != self.codec:
            self.params = replace(self.params, codec=codec, payload_type=PAYLOAD_TYPES[codec])  # type: ignore[type-var]
            if self._source_codec is not None:
                self.relay_from(self._source_codec)
            if self.peer is not None:
                self.peer.relay_from(codec)
        line.sink = self._from_browser

    def detach(self, line: WebRtcLine) -> None:
        """The tab's connection went away; audio waits for the next one."""
        if self.line is line:
            line.sink = None
            self.line = None
            self.clock.add(self)  # the peer hears silence meanwhile (carriers hang up on RTP timeouts)

    def _from_browser(self, payload: bytes, ts: int, marker: int) -> None:
        peer = self.peer
        if peer is not None:
            peer.relay(payload, ts, marker)
        if self.tap is not None:
            self.tap.feed(payload, ts, self.codec)
        if self._listeners:
            pcm = decoder_for(self.codec)(payload)
            for q in self._listeners:
                q.put_nowait(pcm)

    def _send(self, payload: bytes) -> None:
        if self.line is not None:
            self.line.send(payload)

    # -- MediaPeer: the bridged peer's audio -------------------------------------------
    def relay_from(self, codec: str) -> None:
        self._source_codec = codec
        self._transcode = transcoder(codec, self.codec) if codec != self.codec else None

    def relay(self, payload: bytes, ts: int, marker: int) -> None:
        if self._playback is not None or self._pcm_out:
            return  # a prompt for the agent wins over the peer (e.g. a whisper announcement)
        self._send(self._transcode(payload) if self._transcode is not None else payload)

    # -- CallMedia: what Call uses --------------------------------------------------------
    def play(self, payload: bytes, interruptible: bool) -> Playback:
        if self._playback is not None:
            self._playback.stop()
        self._playback = Playback(payload, interruptible)
        self.clock.add(self)
        return self._playback

    def stop_playback(self, only_interruptible: bool = False) -> None:
        pb = self._playback
        if pb is not None and (pb.interruptible or not only_interruptible):
            pb.stop()
            self._playback = None

    def send_pcm(self, pcm: bytes) -> None:
        size = 2 * SAMPLES
        for i in range(0, len(pcm), size):
            self._pcm_out.append(pcm[i:i + size].ljust(size, b"\0"))
        self.clock.add(self)

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        raise NotImplementedError("a browser leg takes no telephone-events")  # Call checks first

    def tick(self, now: float) -> None:
        """Media clock: the next 20 ms of a prompt or queued PCM to the tab; silence to the tab
        while on hold, and to the peer while no tab is attached."""
        payload = None
        if self._playback is not None:
            payload = self._playback.next_frame(SAMPLES)
            if payload is None:
                self._playback = None
        if payload is None and self._pcm_out:
            payload = encoder_for(self.codec)(self._pcm_out.popleft())
        silence = SILENCE_FRAMES[self.codec]
        if payload is None and self.peer is None:
            payload = silence  # on hold: the tab hears silence, not the last words stretched out
        if payload is not None:
            self._send(payload.ljust(SAMPLES, silence[:1]))
        if self.line is None and self.peer is not None:  # no tab attached: silence to the peer
            self._silence_ts = (self._silence_ts + SAMPLES) & 0xFFFFFFFF
            self.peer.relay(silence, self._silence_ts, 0)
        elif self._playback is None and not self._pcm_out and self.peer is not None:
            self.clock.discard(self)

    async def frames(self) -> AsyncIterator[bytes]:
        """The agent's audio as 20 ms PCM frames, as received (the browser paces it)."""
        if self.closed:
            return
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._listeners.append(queue)
        try:
            while (frame := await queue.get()) is not None:
                yield frame
        finally:
            if queue in self._listeners:
                self._listeners.remove(queue)

    def bridge_to(self, other: MediaPeer | None) -> None:
        """Send the tab's audio to ``other``. Unbridged, the tab is sent silence (paced by the clock)."""
        self.peer = other
        if other is not None:
            other.relay_from(self.codec)
        elif not self.closed:
            self.clock.add(self)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.clock.discard(self)
        if self._playback is not None:
            self._playback.finish(False)
        for q in self._listeners:
            q.put_nowait(None)
        if self.peer is not None and self.peer.peer is self:
            self.peer.peer = None
        self.peer = None
        if self.line is not None:
            self.detach(self.line)
