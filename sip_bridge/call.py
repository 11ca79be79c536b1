"""The ``Call``: what the IVR, the ACD and the softphone see of a SIP call leg.

Signalling is done by the endpoint that created the call (the
:class:`~sip_bridge.endpoint.SipEndpoint`, or the softphone for an agent's browser leg);
media by the call's stream (an :class:`~sip_bridge.media.RtpStream`, or the softphone's).
"""

from __future__ import annotations

import asyncio
import enum
import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Protocol

from .dtmf import DtmfEvent
from .g711 import encoder_for
from .media import AudioTap, Playback, encoded_prompt

if TYPE_CHECKING:
    from .media import CallMedia


class CallState(enum.Enum):
    INCOMING = "incoming"  # inbound, not answered yet
    DIALING = "dialing"  # outbound, not answered yet
    ANSWERED = "answered"
    ENDED = "ended"


class CallError(Exception):
    """An operation not possible in the call's state (e.g. play before answer)."""


class DialError(Exception):
    """An outbound call that could not be set up; ``status`` is the SIP status (or 0 for timeout)."""

    def __init__(self, message: str, status: int = 0, cause: str = "failed") -> None:
        super().__init__(message)
        self.status = status
        self.cause = cause


class CallEndpoint(Protocol):
    """What carries a call's signalling: the SIP endpoint, or the softphone for a browser leg."""

    async def answer(self, call: Call) -> None: ...

    async def hangup(self, call: Call, *, cause: str, status: int, side: str) -> None: ...

    async def dial(self, tenant_id: int, number: str, *, caller_id: str = "anonymous",
                   trunk_id: int | None = None, timeout: float = 60.0) -> Call: ...

    def on_bridged_peer_ended(self, call: Call, peer: Call) -> None: ...


class CallObserver(Protocol):
    """Receives the lifecycle of every call attempt (the call records)."""

    async def call_started(self, call: Call) -> None: ...

    async def call_answered(self, call: Call) -> None: ...

    async def call_ended(self, call: Call) -> None: ...


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Call:
    """One call leg: inbound from a trunk, outbound through one, or an agent's browser."""

    def __init__(self, endpoint: CallEndpoint, *, direction: str, sip_call_id: str, caller: str, dialed: str,
                 tenant_id: int | None, trunk_id: int | None) -> None:
        self.id = str(uuid.uuid4())
        self.endpoint = endpoint
        self.direction = direction
        self.sip_call_id = sip_call_id
        self.caller = caller
        self.dialed = dialed
        self.tenant_id = tenant_id
        self.trunk_id = trunk_id
        self.state = CallState.INCOMING if direction == "inbound" else CallState.DIALING
        self.received_at = utcnow()
        self.answered_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.end_cause: str | None = None
        self.hangup_side: str | None = None
        self.sip_status: int | None = None
        self.stream: CallMedia | None = None
        self.on_hold = False
        #: Set while the caller enters something secret (an IVR sensitive section):
        #: recorders and speech recognizers must not take the audio.
        self.sensitive = False
        #: A leg between two nodes of a cluster (a caller handed to the node that hosts the
        #: tenant's queues): it has no call record of its own, its ``id`` is the caller's record.
        self.internal = False
        #: Whether this leg ends when the leg it is bridged to ends (a conversation). False while
        #: a caller is relayed to another node of the cluster: that node may die, the caller stays.
        self.hangs_up_with_peer = True
        self._dtmf: asyncio.Queue[DtmfEvent] = asyncio.Queue()
        self._messages: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self._ended = asyncio.Event()
        self._answered = asyncio.Event()
        self.bridged_to: Call | None = None

    def __repr__(self) -> str:
        return f"<Call {self.id} {self.direction} {self.caller}->{self.dialed} {self.state.value}>"

    @property
    def codec(self) -> str | None:
        stream = self.stream
        return stream.params.codec if stream is not None and stream.params is not None else None

    # -- signalling ------------------------------------------------------------------
    async def answer(self) -> None:
        """Answer an inbound call (200 OK with our SDP)."""
        if self.state is CallState.ANSWERED:
            return
        if self.state is not CallState.INCOMING:
            raise CallError(f"cannot answer a call in state {self.state.value}")
        await self.endpoint.answer(self)

    async def hangup(self, cause: str = "normal_clearing", *, status: int = 480, side: str = "platform") -> None:
        """End the call: BYE if answered, a final ``status`` if still ringing, CANCEL if dialing."""
        if self.state is CallState.ENDED:
            return
        await self.endpoint.hangup(self, cause=cause, status=status, side=side)

    async def dial(self, number: str, trunk: int | None = None, *, timeout: float = 60.0) -> Call:
        """An outbound leg for this call's tenant (transfer, callback, agent on a PSTN number).

        The tenant's dialing rules apply; the caller ID shown is the number this
        call came in on, so an outbound leg never presents an arbitrary number.
        Raises :class:`DialError` when it is not answered.
        """
        if self.tenant_id is None:
            raise CallError("call has no tenant to dial for")
        caller_id = self.dialed if self.direction == "inbound" else self.caller
        return await self.endpoint.dial(self.tenant_id, number, caller_id=caller_id, trunk_id=trunk,
                                        timeout=timeout)

    async def wait_answered(self) -> None:
        await self._answered.wait()

    async def wait_ended(self) -> None:
        await self._ended.wait()

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    # -- media -----------------------------------------------------------------------
    def _require_media(self) -> CallMedia:
        if self.stream is None or self.stream.params is None or self.state is CallState.ENDED:
            raise CallError(f"call {self.id} has no media ({self.state.value})")
        return self.stream

    def play(self, source: str | os.PathLike[str] | bytes, *, interruptible: bool = True) -> Playback:
        """Play a WAV file or 16-bit 8 kHz PCM; the returned playback is awaitable and stoppable.

        An interruptible prompt stops when the caller presses a key (barge-in).
        """
        stream = self._require_media()
        codec = stream.params.codec  # type: ignore[union-attr]
        payload = encoder_for(codec)(source) if isinstance(source, bytes) else encoded_prompt(source, codec)
        return stream.play(payload, interruptible)

    def send_audio(self, pcm: bytes) -> None:
        """Queue 16-bit 8 kHz PCM to send (any length; sent in 20 ms frames)."""
        self._require_media().send_pcm(pcm)

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        """Send digits as RFC 4733 telephone-events."""
        stream = self._require_media()
        if stream.params.telephone_event_pt is None:  # type: ignore[union-attr]
            raise CallError("peer did not negotiate telephone-event")
        stream.send_dtmf(digits, duration_ms)

    def audio(self) -> AsyncIterator[bytes]:
        """Received audio: 20 ms frames of 16-bit 8 kHz PCM until the call ends."""
        return self._require_media().frames()

    async def next_dtmf(self, timeout: float | None = None) -> DtmfEvent | None:
        """The next digit (RFC 4733 or SIP INFO), or None on timeout or hangup."""
        if not self._dtmf.empty():
            return self._dtmf.get_nowait()
        if self.state is CallState.ENDED:
            return None
        getter = asyncio.ensure_future(self._dtmf.get())
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            await asyncio.wait({getter, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not getter.done():
                getter.cancel()
        return getter.result() if getter.done() and not getter.cancelled() else None

    @property
    def pending_dtmf(self) -> bool:
        """Digits received and not yet taken (the caller typed ahead)."""
        return not self._dtmf.empty()

    async def dtmf(self) -> AsyncIterator[DtmfEvent]:
        """Digits received until the call ends."""
        while (event := await self.next_dtmf()) is not None:
            yield event

    # -- messages between nodes (SIP INFO) -----------------------------------------------
    async def send_message(self, message: dict[str, object]) -> None:
        """Send a JSON message to the node at the other end of an internal leg (SIP INFO, in
        order: each waits for the previous one's answer). Raises CallError when the leg is gone."""
        send = getattr(self.endpoint, "send_message", None)
        if send is None or self.state is not CallState.ANSWERED:
            raise CallError(f"call {self.id} cannot carry messages ({self.state.value})")
        await send(self, message)

    async def next_message(self) -> dict[str, object] | None:
        """The next message from the other node, or None once the leg has ended and none is left."""
        if not self._messages.empty():
            return self._messages.get_nowait()
        if self.state is CallState.ENDED:
            return None
        getter = asyncio.ensure_future(self._messages.get())
        ended = asyncio.ensure_future(self._ended.wait())
        try:
            await asyncio.wait({getter, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        return self._messages.get_nowait() if not self._messages.empty() else None

    def tap(self, received: AudioTap | None, sent: AudioTap | None = None) -> None:
        """Copy this leg's audio as it passes: what the far end says to ``received``, what the
        node itself plays to it (prompts, music) to ``sent``; None stops. No-op once ended."""
        stream = self.stream
        if stream is not None and self.state is not CallState.ENDED:
            stream.tap = received
            stream.sent_tap = sent

    def bridge(self, other: Call) -> None:
        """Connect the audio of two answered calls (payloads relayed untouched when codecs match)."""
        a, b = self._require_media(), other._require_media()
        a.stop_playback()
        b.stop_playback()
        a.bridge_to(b)
        b.bridge_to(a)
        self.bridged_to, other.bridged_to = other, self

    def echo(self) -> None:
        """Send the caller's audio straight back (payload relay, no decoding)."""
        stream = self._require_media()
        stream.stop_playback()
        stream.bridge_to(stream)

    def unbridge(self) -> None:
        other = self.bridged_to
        if self.stream is not None:
            self.stream.bridge_to(None)
        if other is not None:
            if other.stream is not None:
                other.stream.bridge_to(None)
            other.bridged_to = None
        self.bridged_to = None

    # -- called by the endpoint ------------------------------------------------------
    def _dtmf_received(self, event: DtmfEvent) -> None:
        if self.stream is not None:
            self.stream.stop_playback(only_interruptible=True)
        if self.bridged_to is not None and self.bridged_to.stream is not None \
                and self.bridged_to.stream.params is not None \
                and self.bridged_to.stream.params.telephone_event_pt is not None:
            self.bridged_to.stream.send_dtmf(event.digit, event.duration_ms)
        self._dtmf.put_nowait(event)

    def _message_received(self, message: dict[str, object]) -> None:
        self._messages.put_nowait(message)

    def _mark_answered(self) -> None:
        self.state = CallState.ANSWERED
        self.answered_at = utcnow()
        self._answered.set()

    def _mark_ended(self, cause: str, side: str | None, status: int | None) -> None:
        if self.state is CallState.ENDED:
            return
        self.state = CallState.ENDED
        self.ended_at = utcnow()
        self.end_cause = cause
        self.hangup_side = side
        if status is not None:
            self.sip_status = status
        other = self.bridged_to
        self.unbridge()
        if self.stream is not None:
            self.stream.close()
        self._ended.set()
        self._answered.set()  # wake waiters; they check the state
        if other is not None and other.hangs_up_with_peer:
            other.endpoint.on_bridged_peer_ended(other, self)

