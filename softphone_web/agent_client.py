"""A softphone without a browser: the page's protocol spoken by aiortc and websockets.

It stands in for Chromium where many tabs are needed (the benchmark) and where tests
drive the server directly. It logs in like the page, offers a WebRTC connection that
prefers PCMU, sends a tone or silence as its microphone, and keeps the audio it hears.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import av
import httpx
import numpy as np
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from aiortc.rtp import RtpPacket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

RATE = 8000
SAMPLES = 160


class ToneTrack(AudioStreamTrack):
    """The client's microphone: what :meth:`say` was given, else a sine at :attr:`freq` Hz,
    or silence when None."""

    def __init__(self) -> None:
        super().__init__()
        self.freq: float | None = None
        self._phase = 0
        self._speech = bytearray()

    def say(self, pcm: bytes) -> None:
        """Speak 16-bit 8 kHz PCM (after what is still being said), then go back to the tone."""
        self._speech += pcm

    @property
    def speaking(self) -> bool:
        return bool(self._speech)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if hasattr(self, "_timestamp"):
            self._timestamp += SAMPLES
            wait = self._start + self._timestamp / RATE - time.time()
            await asyncio.sleep(max(0.0, wait))
        else:
            self._start = time.time()
            self._timestamp = 0
        n = np.arange(self._phase, self._phase + SAMPLES)
        self._phase += SAMPLES
        if self._speech:
            data = bytes(self._speech[:2 * SAMPLES]).ljust(2 * SAMPLES, b"\0")
            del self._speech[:2 * SAMPLES]
        else:
            data = ((np.sin(2 * np.pi * self.freq * n / RATE) * 0.3 * 32767).astype("<i2") if self.freq
                    else np.zeros(SAMPLES, dtype="<i2")).tobytes()
        frame = av.AudioFrame(format="s16", layout="mono", samples=SAMPLES)
        frame.planes[0].update(data)
        frame.sample_rate = RATE
        frame.pts = self._timestamp
        frame.time_base = fractions.Fraction(1, RATE)
        return frame


_CLOSED: dict[str, Any] = {"type": "(socket closed)"}
"""Put in the inbox when the socket closes: :meth:`AgentClient.expect` raises then."""


class SocketClosed(ConnectionError):
    """The node closed the tab's socket (``code``: 1012 the tenant moved, 1013 try again, ...)."""

    def __init__(self, code: int | None, reason: str | None) -> None:
        super().__init__(f"socket closed: {code} {reason or ''}".rstrip())
        self.code, self.reason = code, reason


class AgentClient:
    """One agent's softphone session against a node's HTTP API."""

    SOCKET = "/api/agent/ws"
    #: the message the socket opens with
    FIRST = "welcome"

    def __init__(self, http_base: str, tenant: str, username: str, password: str, *,
                 codec: str = "PCMU") -> None:
        self.http_base = http_base.rstrip("/")
        self.tenant, self.username, self.password = tenant, username, password
        self.codec = codec
        self.token: str | None = None
        self.ws: ClientConnection | None = None
        self.pc: RTCPeerConnection | None = None
        self.mic = ToneTrack()
        self.messages: list[dict[str, Any]] = []
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        #: The last ``keep`` seconds of what the client hears, 16-bit 8 kHz PCM.
        self.heard: deque[bytes] = deque(maxlen=100)
        #: Called with (payload, arrival time) for every packet received, before any jitter buffer.
        self.on_packet: Callable[[bytes, float], None] | None = None
        self.welcome: dict[str, Any] = {}

    async def login(self) -> str:
        async with httpx.AsyncClient(base_url=self.http_base, timeout=30) as http:
            reply = await http.post("/api/login", json={"tenant": self.tenant, "username": self.username,
                                                        "password": self.password})
            reply.raise_for_status()
            self.token = reply.json()["token"]
        return self.token

    async def connect(self) -> dict[str, Any]:
        """Log in if needed, open the socket, set up the WebRTC line; returns the welcome."""
        if self.token is None:
            await self.login()
        url = self.http_base.replace("http", "ws", 1) + self.SOCKET
        self.ws = await connect(url, additional_headers={"Authorization": f"Bearer {self.token}"})
        self._tasks.append(asyncio.ensure_future(self._read()))
        self._tasks.append(asyncio.ensure_future(self._heartbeat()))
        self.welcome = await self.expect(self.FIRST)
        await self._offer()
        return self.welcome

    async def _offer(self) -> None:
        pc = self.pc = RTCPeerConnection()
        transceiver = pc.addTransceiver(self.mic, direction="sendrecv")
        codecs = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences(sorted(codecs, key=lambda c: c.mimeType.upper() != f"AUDIO/{self.codec}"))

        @pc.on("track")
        def on_track(track: Any) -> None:
            self._tasks.append(asyncio.ensure_future(self._listen(track)))

        await pc.setLocalDescription(await pc.createOffer())
        await self.send({"type": "rtc_offer", "sdp": pc.localDescription.sdp})
        answer = await self.expect("rtc_answer")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        self._tap(transceiver.receiver)

    def _tap(self, receiver: Any) -> None:
        """Arrival times of packets as they come off the network (latency measurements)."""
        original = receiver._handle_rtp_packet

        async def handle(packet: RtpPacket, arrival_time_ms: int) -> None:
            if self.on_packet is not None:
                self.on_packet(packet.payload, time.perf_counter())
            await original(packet, arrival_time_ms)

        receiver._handle_rtp_packet = handle

    async def _listen(self, track: Any) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        try:
            while True:
                frame = await track.recv()
                for out in resampler.resample(frame):
                    self.heard.append(bytes(out.planes[0])[:2 * out.samples])
        except MediaStreamError:
            return

    def heard_pcm(self, seconds: float = 1.0) -> bytes:
        return b"".join(self.heard)[-int(seconds * RATE) * 2:]

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                self.messages.append(message)
                await self._inbox.put(message)
        except ConnectionClosed:
            pass
        finally:
            self._inbox.put_nowait(_CLOSED)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(5)
            await self.send({"type": "ping", "t": time.time()})

    async def send(self, message: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(message))

    async def expect(self, kind: str, timeout: float = 20.0, **fields: Any) -> dict[str, Any]:
        """The next message of ``kind`` (with ``fields``), skipping others; TimeoutError if none
        comes, :class:`SocketClosed` once the node closed the socket."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self._inbox.get()
                if message is _CLOSED:
                    self._inbox.put_nowait(_CLOSED)  # and for every later call
                    assert self.ws is not None
                    raise SocketClosed(self.ws.close_code, self.ws.close_reason)
                if message.get("type") == kind and all(message.get(k) == v for k, v in fields.items()):
                    return message

    async def wait_connected(self, timeout: float = 10.0) -> None:
        assert self.pc is not None
        async with asyncio.timeout(timeout):
            while self.pc.connectionState != "connected":
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self.pc is not None:
            await self.pc.close()


class SupervisorClient(AgentClient):
    """A supervisor's wallboard socket and WebRTC line (listen, whisper, barge) without a browser."""

    SOCKET = "/api/supervisor/ws"
    FIRST = "snapshot"

    async def monitor(self, call_id: str, mode: str) -> dict[str, Any]:
        """Listen, whisper or barge into ``call_id``; returns the node's confirmation."""
        await self.send({"type": "monitor", "call_id": call_id, "mode": mode})
        return await self.expect("monitor", call_id=call_id, mode=mode)
