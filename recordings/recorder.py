"""A call's recording as it happens: two channels on one timeline, cut into blocks for the journal.

Sans-I/O: packets come in through :meth:`Channel.feed` (an ``AudioTap`` on a call leg), time
comes from the clock function given, and :meth:`CallRecording.take` hands out what is ready
to be written. Nothing here touches files or sockets.

Each channel places a packet by its RTP timestamp, anchored to the clock at the channel's
first packet, so jitter (or a stalled event loop) does not move audio around and a lost packet
leaves silence of its own length: the two channels stay aligned with each other and with the
call's wall-clock facts. A timestamp jump (a new source after a transfer, sipp switching pcaps)
re-anchors.
Audio is kept as mu-law (what most calls carry; A-law is mapped by table, which is lossless
to within one quantisation step) interleaved caller/agent, one byte per sample.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from sip_bridge.g711 import alaw_to_pcm, pcm_to_ulaw

RATE = 8000
MULAW_SILENCE = 0xFF
JITTER_S = 0.2
"""Audio is written this long after it was due, so late packets still find their place."""
MAX_STEP_S = 0.5
"""A timestamp step this large between two packets of a channel is a new source (or a long loss):
the channel is anchored to the clock again."""
MAX_DRIFT_S = 3.0
"""A sender whose timestamps put its audio this far from the clock is re-anchored too."""

_ALAW_TO_ULAW = pcm_to_ulaw(alaw_to_pcm(bytes(range(256))))
CHANNELS = ("caller", "agent")
"""Left and right of the stored stereo file."""


def _signed(delta: int) -> int:
    """A difference of 32-bit RTP timestamps, wrapped to -2**31 .. 2**31 - 1."""
    return ((delta + 0x80000000) & 0xFFFFFFFF) - 0x80000000


class Sensitive(Protocol):
    """What tells the recorder the caller is in an IVR sensitive section (a ``Call``)."""

    sensitive: bool


class _Never:
    sensitive = False


_NEVER = _Never()


class Channel:
    """One speaker's audio waiting to be written (an ``AudioTap``)."""

    __slots__ = ("_recording", "_buf", "_anchor_ts", "_anchor_pos", "_last_ts", "name")

    def __init__(self, recording: CallRecording, name: str) -> None:
        self._recording = recording
        self.name = name
        self._buf = bytearray()
        self._anchor_ts: int | None = None
        self._anchor_pos = 0
        self._last_ts = 0

    def feed(self, payload: bytes, ts: int, codec: str) -> None:
        recording = self._recording  # called for every packet: plain attribute reads only
        if recording._reasons or recording.closed or recording._source.sensitive:
            return
        if codec == "PCMA":
            payload = payload.translate(_ALAW_TO_ULAW)
        elif codec != "PCMU":
            return
        now = round((recording._clock() - recording._start) * RATE)
        if self._anchor_ts is None or abs(_signed(ts - self._last_ts)) > MAX_STEP_S * RATE:
            pos = self._anchor(ts, now - len(payload))
        else:
            # late packets with continuous timestamps (a stalled loop, a burst) keep their place
            pos = self._anchor_pos + _signed(ts - self._anchor_ts)
            if abs(pos + len(payload) - now) > MAX_DRIFT_S * RATE:
                pos = self._anchor(ts, now - len(payload))
        self._last_ts = ts
        offset = pos - recording.written
        if offset < 0:  # arrived after its place was written
            payload = payload[-offset:]
            offset = 0
            if not payload:
                return
        buf = self._buf
        if offset == len(buf):  # the usual case: right after the previous packet
            buf += payload
            return
        end = offset + len(payload)
        if end > len(buf):
            buf.extend(b"\xff" * (end - len(buf)))
        buf[offset:end] = payload

    def _anchor(self, ts: int, pos: int) -> int:
        self._anchor_ts = ts
        self._anchor_pos = max(pos, 0)
        return self._anchor_pos

    def restart(self) -> None:
        """A new source follows (the next agent after a transfer): anchor afresh."""
        self._anchor_ts = None

    def take(self, samples: int) -> bytes:
        buf = self._buf
        out = bytes(buf[:samples])
        del buf[:samples]
        return out.ljust(samples, b"\xff")


class CallRecording:
    """The live recording of one call: caller and agent channels, pauses, and the blocks to write.

    ``clock`` returns seconds (the event loop's clock); the recording's position 0 is the clock
    at creation. ``source.sensitive`` says whether the caller is in an IVR sensitive section
    right now: while it or any :meth:`pause` reason holds, incoming audio is dropped (the timeline
    gets silence) and a pause interval is noted.
    """

    def __init__(self, recording_id: str, *, clock: Callable[[], float], source: Sensitive = _NEVER) -> None:
        self.recording_id = recording_id
        self._clock = clock
        self._start = clock()
        self._source = source
        self.caller = Channel(self, "caller")
        self.agent = Channel(self, "agent")
        self.written = 0
        """Samples per channel handed out by :meth:`take` so far."""
        self._reasons: set[str] = set()
        self._was_sensitive = False
        self._open_pauses: dict[str, float] = {}
        self.pauses: list[list[Any]] = []
        """Closed pause intervals ``[start_s, end_s, reason]``."""
        self._events: list[dict[str, Any]] = []
        self.agent_answered_s: float | None = None
        self.closed = False

    def position(self) -> int:
        """Now, in samples from the start."""
        return round((self._clock() - self._start) * RATE)

    def seconds(self) -> float:
        return round(self._clock() - self._start, 3)

    @property
    def paused(self) -> bool:
        return bool(self._reasons) or self._source.sensitive

    def pause(self, reason: str) -> bool:
        """Stop taking audio for ``reason`` (``api``, ``agent``...); False if it already was."""
        if reason in self._reasons:
            return False
        self._reasons.add(reason)
        self._open(reason)
        return True

    def resume(self, reason: str) -> bool:
        """Take audio again unless another reason still holds; False if ``reason`` was not paused."""
        if reason not in self._reasons:
            return False
        self._reasons.discard(reason)
        self._close_pause(reason)
        return True

    def _open(self, reason: str) -> None:
        self._open_pauses[reason] = at = self.seconds()
        self._events.append({"pause": reason, "at": at})

    def _close_pause(self, reason: str) -> None:
        start = self._open_pauses.pop(reason, None)
        if start is not None:
            end = self.seconds()
            self.pauses.append([start, end, reason])
            self._events.append({"resume": reason, "at": end})

    def agent_answered(self) -> None:
        """An agent took the call (the first time): QA looks at the call from here."""
        if self.agent_answered_s is None:
            self.agent_answered_s = self.seconds()
            self._events.append({"agent_answered": self.agent_answered_s})

    def drain_events(self) -> list[dict[str, Any]]:
        """Pauses, resumptions and the agent's answer since the last call, for the journal (what a
        recovery after a crash reads back, see :func:`pauses_from_events`)."""
        events, self._events = self._events, []
        return events

    def take(self, *, final: bool = False) -> bytes:
        """Interleaved caller/agent mu-law up to ``JITTER_S`` ago (everything when ``final``)."""
        self._track_sensitive()
        upto = self.position() if final else self.position() - int(JITTER_S * RATE)
        samples = upto - self.written
        if samples <= 0:
            return b""
        out = np.empty(2 * samples, dtype=np.uint8)
        out[0::2] = np.frombuffer(self.caller.take(samples), dtype=np.uint8)
        out[1::2] = np.frombuffer(self.agent.take(samples), dtype=np.uint8)
        self.written = upto
        return out.tobytes()

    def _track_sensitive(self) -> None:
        """Note IVR sensitive sections as pauses (checked at each block: to within a block)."""
        sensitive = self._source.sensitive
        if sensitive and not self._was_sensitive:
            self._open("sensitive")
        elif not sensitive and self._was_sensitive:
            self._close_pause("sensitive")
        self._was_sensitive = sensitive

    def close(self) -> bytes:
        """The call is over: the last block; open pauses end now."""
        block = self.take(final=True)
        for reason in list(self._open_pauses):
            self._close_pause(reason)
        self.closed = True
        return block



def pauses_from_events(events: list[dict[str, Any]], duration: float) -> tuple[list[list[Any]], float | None]:
    """Pause intervals and the agent's answer from a journal's events (after a crash: a pause
    still open at the end lasts to the end)."""
    pauses: list[list[Any]] = []
    open_: dict[str, float] = {}
    answered: float | None = None
    for event in events:
        if "pause" in event:
            open_[event["pause"]] = event["at"]
        elif "resume" in event and event["resume"] in open_:
            pauses.append([open_.pop(event["resume"]), event["at"], event["resume"]])
        elif "agent_answered" in event and answered is None:
            answered = event["agent_answered"]
    pauses.extend([start, round(duration, 3), reason] for reason, start in open_.items())
    return pauses, answered
