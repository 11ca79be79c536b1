"""The agents: their records, and every state change through one place that keeps the
availability indexes (calls, chats) and the staffing counts in step and publishes
``AgentStateChanged``.

An agent is offerable a call when ``available``, reachable, and holding no chat (or, with
``calls_while_chatting``, no chat offer ringing); a chat when ``available``, reachable and
holding fewer chats (offered or connected) than their capacity."""

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
    chat_capacity: int = 0
    chats: set[str] = field(default_factory=set)
    """Chats connected to the agent."""
    chat_offers: set[str] = field(default_factory=set)
    """Chats ringing the agent (only while available and reachable)."""
    chats_today: int = 0
    last_chat_at: float | None = None
    """When the agent's last chat was connected."""

    @property
    def chat_load(self) -> int:
        return len(self.chats) + len(self.chat_offers)

    def chat_idle(self) -> tuple[int, float]:
        """What ``longest_idle`` ranks chat agents by: fewest chats, then the longest since
        their last chat began or they became available."""
        last = self.last_idle if self.last_chat_at is None else max(self.last_idle, self.last_chat_at)
        return (self.chat_load, last)


class AgentPool:
    def __init__(self, publish: Callable[[AcdEvent], None], *, calls_while_chatting: bool = False) -> None:
        self._publish = publish
        self._agents: dict[str, AgentRecord] = {}
        self.available: AvailableIndex[float] = AvailableIndex()
        """Agents who may be offered a call, by when they became available."""
        self.chat_available: AvailableIndex[tuple[int, float]] = AvailableIndex()
        """Agents who may be offered a chat, by ``AgentRecord.chat_idle`` and chats today."""
        self.calls_while_chatting = calls_while_chatting
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
        self.chat_available.remove(record.agent_id)
        self.dirty.discard(record.agent_id)
        self._count(record, -1)
        del self._agents[record.agent_id]

    def configure(self, record: AgentRecord, skills: dict[str, int], chat_capacity: int) -> None:
        """New skills and chat capacity (the agent is routed again as if newly free)."""
        self.available.remove(record.agent_id)
        self.chat_available.remove(record.agent_id)
        self._count(record, -1)
        record.skills = dict(skills)
        record.chat_capacity = chat_capacity
        self._count(record, +1)
        self._sync(record)

    def set_calls_while_chatting(self, allowed: bool) -> None:
        self.calls_while_chatting = allowed
        for record in self._agents.values():
            if record.chats or record.chat_offers:
                self._sync(record)

    def offer_chat(self, record: AgentRecord, call_id: str) -> None:
        record.chat_offers.add(call_id)
        self._sync(record)

    def connect_chat(self, record: AgentRecord, call_id: str, at: float) -> None:
        record.chat_offers.discard(call_id)
        record.chats.add(call_id)
        record.chats_today += 1
        record.last_chat_at = at
        self._sync(record)

    def drop_chat(self, record: AgentRecord, call_id: str) -> None:
        """The chat's offer ended, or the connected chat did: its slot is free."""
        record.chat_offers.discard(call_id)
        record.chats.discard(call_id)
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
            record.calls_today = record.chats_today = 0
            if record.agent_id in self.available:  # re-keyed in place: nothing new to route
                self.available.remove(record.agent_id)
                self.available.add(record.agent_id, record.skills, record.last_idle, 0)
            if record.agent_id in self.chat_available:
                self.chat_available.remove(record.agent_id)
                self.chat_available.add(record.agent_id, record.skills, record.chat_idle(), 0)

    def _sync(self, record: AgentRecord) -> None:
        """Put the agent in or out of the indexes; an agent newly in one is routed at the next pass."""
        offerable = record.state is AgentState.AVAILABLE and record.reachable
        takes_calls = offerable
        if offerable and (record.chats or record.chat_offers):
            takes_calls = self.calls_while_chatting and not record.chat_offers
        indexed = record.agent_id in self.available
        if takes_calls and not indexed:
            self.available.add(record.agent_id, record.skills, record.last_idle, record.calls_today)
            self.dirty.add(record.agent_id)
        elif indexed and not takes_calls:
            self.available.remove(record.agent_id)
        if record.chat_capacity:  # 0: never in the chat index (``configure`` takes a lowered one out)
            self._sync_chats(record, offerable)

    def _sync_chats(self, record: AgentRecord, offerable: bool) -> None:
        """Re-keyed whenever in the index: the chats held, idle time or chats today may have changed."""
        indexed = record.agent_id in self.chat_available
        if indexed:
            self.chat_available.remove(record.agent_id)
        if offerable and record.chat_load < record.chat_capacity:
            self.chat_available.add(record.agent_id, record.skills, record.chat_idle(), record.chats_today)
            if not indexed:
                self.dirty.add(record.agent_id)

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
