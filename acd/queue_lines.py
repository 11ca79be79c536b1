"""The queues' lines and the buckets routing picks calls from.

Every entry of a queue is in its ``line`` (sorted by ``CallKey``) until answered or gone;
that gives positions. Entries that can be offered right now are also in exactly one
``Bucket``: the queue's bucket for the entry's channel and relaxation level, whose
requirement (skill -> minimum proficiency) is the same for every entry in it. An agent's best
call (or chat) is then the smallest head among the buckets of that channel whose requirement
the agent meets, found through an index from skill to buckets.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from .calls import CallEntry, CallKey, CallStatus
from .model import QueueConfig, Strategy
from .sorted_list import remove_sorted

AHT_WEIGHT = 0.1
"""Weight of the newest call in the exponentially weighted average handle time."""


def requirements_by_level(config: QueueConfig) -> list[dict[str, int]]:
    """Who may take a call after 0, 1, 2 ... relaxation steps: skill -> minimum proficiency."""
    requirement = {config.queue_skill: config.min_proficiency}
    levels = [dict(requirement)]
    for step in config.relax:
        if step.min_proficiency is not None:
            requirement[config.queue_skill] = min(requirement[config.queue_skill], step.min_proficiency)
        added = step.min_proficiency or 1
        for skill in step.add_skills:
            requirement[skill] = min(requirement.get(skill, added), added)
        levels.append(dict(requirement))
    return levels


def meets(skills: Mapping[str, int], requirement: Mapping[str, int]) -> bool:
    return any(skills.get(skill, 0) >= minimum for skill, minimum in requirement.items())


class Bucket:
    """Offerable entries of one queue at one relaxation level, best first."""

    __slots__ = ("line", "requirement", "keys")

    def __init__(self, line: QueueLine, requirement: dict[str, int]) -> None:
        self.line = line
        self.requirement = requirement
        self.keys: list[CallKey] = []


@dataclass(slots=True)
class QueueCounters:
    """Today's figures of a queue (reset by ``AcdEngine.reset_day``) and its handle time."""

    answered: int = 0
    answered_within_sl: int = 0
    abandoned: int = 0
    average_handle_time: float | None = None

    def record_handle_time(self, seconds: float) -> None:
        aht = self.average_handle_time
        self.average_handle_time = seconds if aht is None else aht + AHT_WEIGHT * (seconds - aht)


class QueueLine:
    def __init__(self, config: QueueConfig, previous: QueueLine | None = None) -> None:
        self.config = config
        self.requirements = requirements_by_level(config)
        self.buckets = [Bucket(self, requirement) for requirement in self.requirements]
        self.chat_buckets = [Bucket(self, requirement) for requirement in self.requirements]
        self.keys: list[CallKey] = previous.keys if previous is not None else []
        self.rr_cursor: str = previous.rr_cursor if previous is not None else ""
        """The agent id that got this queue's last call (round robin continues after it)."""
        self.counters: QueueCounters = previous.counters if previous is not None else QueueCounters()

    @property
    def name(self) -> str:
        return self.config.name

    def level_at(self, entered_at: float, now: float) -> int:
        """Relaxation steps due by ``now`` (compared as timer due times, so both agree)."""
        return sum(1 for step in self.config.relax if entered_at + step.after <= now)

    def bucket_for(self, call: CallEntry) -> Bucket:
        """The bucket of the entry's channel at its relaxation level."""
        return (self.chat_buckets if call.is_chat else self.buckets)[call.level]

    def position(self, key: CallKey) -> int:
        return bisect_left(self.keys, key) + 1

    def __len__(self) -> int:
        return len(self.keys)


class Lines:
    def __init__(self) -> None:
        self.queues: dict[str, QueueLine] = {}
        self.calls: dict[str, CallEntry] = {}
        """Entries in a line, and connected calls until they end."""
        self._by_skill: dict[str, list[tuple[int, Bucket]]] = {}
        self._chat_by_skill: dict[str, list[tuple[int, Bucket]]] = {}
        self.dirty: set[str] = set()
        """Calls put into a bucket since the last routing pass."""

    def install(self, line: QueueLine) -> None:
        self.queues[line.name] = line
        self._reindex()

    def uninstall(self, name: str) -> None:
        del self.queues[name]
        self._reindex()

    def _reindex(self) -> None:
        self._by_skill, self._chat_by_skill = {}, {}
        for line in self.queues.values():
            for buckets, by_skill in ((line.buckets, self._by_skill), (line.chat_buckets, self._chat_by_skill)):
                for bucket in buckets:
                    for skill, minimum in bucket.requirement.items():
                        by_skill.setdefault(skill, []).append((minimum, bucket))

    def entries(self, line: QueueLine) -> Iterator[CallEntry]:
        return (self.calls[key[3]] for key in list(line.keys))

    def enter(self, call: CallEntry, line: QueueLine) -> None:
        self.calls[call.call_id] = call
        insort(line.keys, call.key)

    def leave(self, call: CallEntry) -> None:
        """Out of its line and bucket (the entry stays known while connected)."""
        self.unbucket(call)
        line = self.queues.get(call.queue)
        if line is not None:
            remove_sorted(line.keys, call.key)
        self.dirty.discard(call.call_id)

    def put_back(self, call: CallEntry, bucketed: bool) -> None:
        """A restored entry where it was: known, in its line unless connected, and in its
        level's bucket if it was in one (not marked for routing: the snapshot says what was)."""
        if call.status is CallStatus.CONNECTED:
            self.calls[call.call_id] = call
            return
        line = self.queues[call.queue]
        self.enter(call, line)
        if bucketed:
            call.bucket = line.bucket_for(call)
            insort(call.bucket.keys, call.key)

    def forget(self, call: CallEntry) -> None:
        self.leave(call)
        self.calls.pop(call.call_id, None)

    def unbucket(self, call: CallEntry) -> None:
        if call.bucket is not None:
            remove_sorted(call.bucket.keys, call.key)
            call.bucket = None

    def sync_bucket(self, call: CallEntry) -> None:
        """Put the entry in the bucket it belongs to now, or out of buckets; an entry put
        into a bucket is routed at the next pass.

        Offerable: in line, not overflowing, and not ringing anyone, except that a ring_all
        call keeps ringing newly free agents (a chat is offered to one agent at a time)."""
        line = self.queues[call.queue]
        want: Bucket | None = None
        if call.status is CallStatus.IN_LINE and not call.timed_out and (
                not call.offers or (line.config.strategy is Strategy.RING_ALL and not call.is_chat)):
            want = line.bucket_for(call)
        if want is call.bucket:
            return
        self.unbucket(call)
        if want is not None:
            insort(want.keys, call.key)
            call.bucket = want
            self.dirty.add(call.call_id)

    def best_call_for(self, skills: Mapping[str, int]) -> CallEntry | None:
        """The first (voice) call in order among all the buckets the agent may take from."""
        return self._best(skills, self._by_skill)

    def best_chat_for(self, skills: Mapping[str, int]) -> CallEntry | None:
        """The first chat in order among all the chat buckets the agent may take from."""
        return self._best(skills, self._chat_by_skill)

    def _best(self, skills: Mapping[str, int], by_skill: dict[str, list[tuple[int, Bucket]]]) -> CallEntry | None:
        best: CallKey | None = None
        for skill, proficiency in skills.items():
            for minimum, bucket in by_skill.get(skill, ()):
                if minimum <= proficiency and bucket.keys:
                    head = bucket.keys[0]
                    if best is None or head < best:
                        best = head
        return self.calls[best[3]] if best is not None else None
