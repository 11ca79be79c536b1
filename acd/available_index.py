"""Agents who can be offered a call now (available and reachable), or a chat, indexed by
skill and proficiency, in the orders the strategies choose by.

A call's requirement (skill -> minimum proficiency) selects at most five levels per skill;
each level keeps its agents sorted three ways, so every strategy picks its agent from the
heads of a few lists instead of scanning the floor.

The index is generic in what "longest idle" sorts by (``K``): for calls, when the agent
became available; for chats, (chats held, when the last chat or availability began).
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Mapping
from typing import TYPE_CHECKING, Generic, TypeVar

from .model import MAX_PROFICIENCY, Strategy
from .sorted_list import remove_sorted

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

K = TypeVar("K", bound="SupportsRichComparison")
"""The idle key: the smaller, the sooner the agent is chosen by ``longest_idle``."""


class _Level(Generic[K]):
    """Available agents holding one skill at one proficiency."""

    __slots__ = ("by_idle", "by_calls", "by_id")

    def __init__(self) -> None:
        self.by_idle: list[tuple[K, str]] = []
        self.by_calls: list[tuple[int, K, str]] = []
        self.by_id: list[str] = []


class _Entry(Generic[K]):
    """What an agent was indexed with, so removal finds the exact keys even after changes."""

    __slots__ = ("idle", "count", "skills")

    def __init__(self, idle: K, count: int, skills: dict[str, int]) -> None:
        self.idle = idle
        self.count = count
        self.skills = dict(skills)


class AvailableIndex(Generic[K]):
    def __init__(self) -> None:
        self._levels: dict[tuple[str, int], _Level[K]] = {}
        self._entries: dict[str, _Entry[K]] = {}

    def __contains__(self, agent_id: str) -> bool:
        return agent_id in self._entries

    def add(self, agent_id: str, skills: Mapping[str, int], idle: K, count: int) -> None:
        """Index the agent by ``idle`` (longest idle) and ``count`` (fewest calls: answered today)."""
        if agent_id in self._entries:
            raise ValueError(f"agent {agent_id!r} is already indexed")
        entry = _Entry(idle, count, dict(skills))
        self._entries[agent_id] = entry
        for skill, proficiency in entry.skills.items():
            level = self._levels.get((skill, proficiency))
            if level is None:
                level = self._levels[(skill, proficiency)] = _Level()
            insort(level.by_idle, (idle, agent_id))
            insort(level.by_calls, (count, idle, agent_id))
            insort(level.by_id, agent_id)

    def remove(self, agent_id: str) -> None:
        entry = self._entries.pop(agent_id, None)
        if entry is None:
            return
        for skill, proficiency in entry.skills.items():
            level = self._levels[(skill, proficiency)]
            remove_sorted(level.by_idle, (entry.idle, agent_id))
            remove_sorted(level.by_calls, (entry.count, entry.idle, agent_id))
            remove_sorted(level.by_id, agent_id)

    def _matching(self, requirement: Mapping[str, int]) -> list[_Level[K]]:
        levels = []
        for skill, minimum in requirement.items():
            for proficiency in range(minimum, MAX_PROFICIENCY + 1):
                level = self._levels.get((skill, proficiency))
                if level is not None and level.by_id:
                    levels.append(level)
        return levels

    def pick(self, strategy: Strategy, queue_skill: str, requirement: Mapping[str, int],
             rr_cursor: str) -> list[str]:
        """The agents to offer a call to: one, or every eligible agent for ``ring_all``."""
        levels = self._matching(requirement)
        if not levels:
            return []
        if strategy is Strategy.RING_ALL:
            return sorted({agent_id for level in levels for agent_id in level.by_id})
        if strategy is Strategy.LONGEST_IDLE:
            return [min(level.by_idle[0] for level in levels)[1]]
        if strategy is Strategy.FEWEST_CALLS:
            return [min(level.by_calls[0] for level in levels)[2]]
        if strategy is Strategy.ROUND_ROBIN:
            return [self._next_in_rotation(levels, rr_cursor)]
        return [self._most_proficient(levels, queue_skill, requirement)]

    @staticmethod
    def _next_in_rotation(levels: list[_Level[K]], cursor: str) -> str:
        """The first agent id after ``cursor``, wrapping around to the smallest."""
        after = []
        for level in levels:
            i = bisect_right(level.by_id, cursor)
            if i < len(level.by_id):
                after.append(level.by_id[i])
        return min(after) if after else min(level.by_id[0] for level in levels)

    def _most_proficient(self, levels: list[_Level[K]], queue_skill: str, requirement: Mapping[str, int]) -> str:
        minimum = requirement.get(queue_skill)
        if minimum is not None:
            for proficiency in range(MAX_PROFICIENCY, minimum - 1, -1):
                level = self._levels.get((queue_skill, proficiency))
                if level is not None and level.by_idle:
                    return level.by_idle[0][1]
        # Only agents let in by a relaxation step's added skills are left: they hold the
        # queue's skill below the threshold, if at all. Rank them by it (a short scan: this
        # happens only when nobody with the queue's skill is free).
        candidates = {agent_id for level in levels for agent_id in level.by_id}
        entries = self._entries
        return min(candidates, key=lambda a: (-entries[a].skills.get(queue_skill, 0), entries[a].idle, a))
