"""Applying a repeated command once: the ids seen lately, in bounded memory.

A sender that timed out cannot know whether its append reached Redis, so it sends again with
the same command id, and the ACD owner must apply it once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

DEDUP_WINDOW = 10_000
"""Ids remembered. A repeat comes within seconds of the original (a sender's retry, a replay
of the log since the last snapshot, written every second); 10,000 ids cover minutes of a busy
tenant's inputs in about 1 MB."""


class Deduper:
    """The last ``window`` distinct ids, in the order first seen.

    The window counts ids, not seconds, so a replay of the same entries decides the same way
    (deterministic, as the ACD's replay must be). :meth:`remembered` and the ``remembered``
    argument carry the window across a snapshot."""

    def __init__(self, window: int = DEDUP_WINDOW, remembered: Iterable[str] = ()) -> None:
        if window < 1:
            raise ValueError("a dedup window holds at least one id")
        self.window = window
        self._ids: OrderedDict[str, None] = OrderedDict()
        for command_id in remembered:
            self.first(command_id)

    def first(self, command_id: str) -> bool:
        """True the first time ``command_id`` is seen (and it is remembered), False for a repeat."""
        if command_id in self._ids:
            return False
        self._ids[command_id] = None
        if len(self._ids) > self.window:
            self._ids.popitem(last=False)
        return True

    def remembered(self) -> list[str]:
        """The ids in the window, oldest first."""
        return list(self._ids)
