"""Several calls talking together: each hears the sum of the legs it may hear.

A two-party bridge relays payloads untouched; three or more need mixing, so a
conference decodes every leg (``Call.audio()``) and sends each leg the sum of the
legs it hears (``Call.send_audio``). By default everyone hears everyone else; a
supervisor's listen or whisper narrows that (:meth:`Conference.set_hearing`) without
stopping the mix. The first leg's frames pace the mix: its audio arrives every 20 ms
from the node's media clock (silence for lost packets), so no timer of its own is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import suppress

import numpy as np

from .call import Call, CallError

FRAME_BYTES = 320


class Conference:
    def __init__(self, legs: list[Call], hearing: Mapping[str, set[str]] | None = None) -> None:
        if len(legs) < 2:
            raise ValueError("a conference needs two legs or more")
        self.legs = list(legs)
        self._hearing: dict[str, frozenset[str]] = {}
        self.set_hearing(hearing)
        self._latest: dict[str, np.ndarray] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def set_hearing(self, hearing: Mapping[str, set[str]] | None) -> None:
        """Who hears whom, by call id (None: everyone hears everyone else); takes effect on the next frame."""
        ids = {leg.id for leg in self.legs}
        if hearing is None:
            self._hearing = {i: frozenset(ids - {i}) for i in ids}
            return
        if set(hearing) - ids or any(set(heard) - ids for heard in hearing.values()):
            raise ValueError("hearing names a leg that is not in the conference")
        self._hearing = {i: frozenset(set(hearing.get(i, ())) - {i}) for i in ids}

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
        for leg in self.legs:
            if leg.ended:
                continue
            out = np.zeros(160, dtype=np.int32)
            for other in self._hearing[leg.id]:
                frame = frames[other]
                if frame is not None:
                    out += frame
            with suppress(CallError):
                leg.send_audio(np.clip(out, -32768, 32767).astype("<i2").tobytes())

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks = []
