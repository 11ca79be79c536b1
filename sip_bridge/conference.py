"""Several calls talking together: each hears the sum of the others.

A two-party bridge relays payloads untouched; three or more need mixing, so a
conference decodes every leg (``Call.audio()``) and sends each leg the others' sum
(``Call.send_audio``). The first leg's frames pace the mix: its audio arrives every
20 ms from the node's media clock (silence for lost packets), so no timer of its own
is needed.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

import numpy as np

from .call import Call, CallError

FRAME_BYTES = 320


class Conference:
    def __init__(self, legs: list[Call]) -> None:
        if len(legs) < 2:
            raise ValueError("a conference needs two legs or more")
        self.legs = list(legs)
        self._latest: dict[str, np.ndarray] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for leg in self.legs:
            leg.unbridge()
            if leg.stream is not None:
                leg.stream.stop_playback()
        self._tasks = [asyncio.ensure_future(self._listen(leg, pace=i == 0)) for i, leg in enumerate(self.legs)]

    async def _listen(self, leg: Call, pace: bool) -> None:
        with suppress(CallError):
            async for frame in leg.audio():
                self._latest[leg.id] = np.frombuffer(frame[:FRAME_BYTES].ljust(FRAME_BYTES, b"\0"), dtype="<i2")
                if pace:
                    self._mix()

    def _mix(self) -> None:
        frames = {leg.id: self._latest.pop(leg.id, None) for leg in self.legs}
        total = sum((f.astype(np.int32) for f in frames.values() if f is not None), np.zeros(160, dtype=np.int32))
        for leg in self.legs:
            if leg.ended:
                continue
            own = frames[leg.id]
            out = total - own if own is not None else total
            with suppress(CallError):
                leg.send_audio(np.clip(out, -32768, 32767).astype("<i2").tobytes())

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []
