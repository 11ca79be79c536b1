"""The agents: their records, and every state change through one place that keeps the
availability index and the staffing counts in step and publishes ``AgentStateChanged``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from .available_index import AvailableIndex
from .bus_events import AcdEvent, AgentStateChanged
from .model import STAFFED_STATES, AgentState
from .timers import Timer


@dataclass(slots=True, eq=False)
class AgentRecord:
    agent_id: str
    skills: dict[str, int]
    state: AgentState = AgentState.OFFLINE
    reason: str | None = None
    since: float = 0.0
    reachable: bool = True
    calls_today: int = 0
    last_idle: float = 0.0
    """When the agent last became available after a call, a break or logging in."""
    call_id: str | None = None
    """The call the agent is reserved for, on, or wrapping up."""
    pending: tuple[AgentState, str | None] | None = None
    """A break or offline asked for while busy: where the agent goes when the work ends."""
    wrapup_timer: Timer | None = field(default=None, repr=False)


class AgentPool:
    def __init__(self, publish: Callable[[AcdEvent], None]) -> None:
        self._publish = publish
        self._agents: dict[str, AgentRecord] = {}
        self.available = AvailableIndex()
        self._members: dict[str, set[str]] = {}
        self._staffed: dict[str, int] = {}
        self.dirty: set[str] = set()
        """Agents who became offerable since the last routing pass."""

    def get(self, agent_id: str) -> AgentRecord | None:
        return self._agents.get(agent_id)

    def __iter__(self) -> Iterator[AgentRecord]:
        return iter(self._agents.values())

    def members(self, skill: str) -> set[str]:
        """Agents holding ``skill`` at any proficiency, in any state."""
        return self._members.get(skill, set())

    def staffed(self, skill: str) -> int:
        """Agents holding ``skill`` who are logged in and not on a break."""
        return self._staffed.get(skill, 0)

    def add(self, record: AgentRecord) -> None:
        self._agents[record.agent_id] = record
        self._count(record, +1)
        self._sync(record)

    def remove(self, record: AgentRecord) -> None:
        self.available.remove(record.agent_id)
        self.dirty.discard(record.agent_id)
        self._count(record, -1)
        del self._agents[record.agent_id]

    def set_skills(self, record: AgentRecord, skills: dict[str, int]) -> None:
        self.available.remove(record.agent_id)
        self._count(record, -1)
        record.skills = dict(skills)
        self._count(record, +1)
        self._sync(record)

    def set_reachable(self, record: AgentRecord, reachable: bool) -> None:
        record.reachable = reachable
        self._sync(record)

    def change(self, record: AgentRecord, new: AgentState, reason: str | None, at: float) -> None:
        """Move the agent to ``new`` (a different reason alone counts as a change).

        Becoming available restarts the idle clock, except when coming back from a
        reservation that ended without a call: that agent keeps their place in line."""
        old = record.state
        if old is new and record.reason == reason:
            return
        if (old in STAFFED_STATES) != (new in STAFFED_STATES):
            self._staff(record, +1 if new in STAFFED_STATES else -1)
        if new is AgentState.AVAILABLE and old not in (AgentState.AVAILABLE, AgentState.RESERVED):
            self.available.remove(record.agent_id)
            record.last_idle = at
        record.state, record.reason, record.since = new, reason, at
        self._sync(record)
        self._publish(AgentStateChanged(record.agent_id, old, new, reason, at))

    def reset_calls_today(self) -> None:
        for record in self._agents.values():
            record.calls_today = 0
            if record.agent_id in self.available:  # re-keyed in place: nothing new to route
                self.available.remove(record.agent_id)
                self.available.add(record.agent_id, record.skills, record.last_idle, 0)

    def _sync(self, record: AgentRecord) -> None:
        offerable = record.state is AgentState.AVAILABLE and record.reachable
        indexed = record.agent_id in self.available
        if offerable and not indexed:
            self.available.add(record.agent_id, record.skills, record.last_idle, record.calls_today)
            self.dirty.add(record.agent_id)
        elif indexed and not offerable:
            self.available.remove(record.agent_id)

    def _count(self, record: AgentRecord, sign: int) -> None:
        for skill in record.skills:
            members = self._members.setdefault(skill, set())
            if sign > 0:
                members.add(record.agent_id)
            else:
                members.discard(record.agent_id)
        if record.state in STAFFED_STATES:
            self._staff(record, sign)

    def _staff(self, record: AgentRecord, sign: int) -> None:
        for skill in record.skills:
            self._staffed[skill] = self._staffed.get(skill, 0) + sign
