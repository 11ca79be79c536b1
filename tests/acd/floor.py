"""A call-center floor for scenario tests: an engine, its published events, shorthands."""

from __future__ import annotations

from typing import TypeVar

from acd import (
    AcdEngine,
    AcdEvent,
    Action,
    AgentConfig,
    AgentState,
    AgentStateRequested,
    CallQueued,
    Offer,
    QueueConfig,
)

E = TypeVar("E")


class Floor:
    def __init__(self, *queues: QueueConfig, agents: dict[str, dict[str, int]] | None = None,
                 logged_in: bool = True, chat_capacity: int = 0, calls_while_chatting: bool = False) -> None:
        self.events: list[AcdEvent] = []
        self.engine = AcdEngine(on_event=self.events.append, calls_while_chatting=calls_while_chatting)
        for queue in queues:
            self.engine.set_queue(queue)
        for agent_id, skills in (agents or {}).items():
            self.engine.set_agent(AgentConfig(agent_id, skills, chat_capacity))
            if logged_in:
                assert self.engine.handle(AgentStateRequested(agent_id, "available", 0)) == []

    def call(self, call_id: str, queue: str, at: float, priority: int = 0) -> list[Action]:
        return self.engine.handle(CallQueued(call_id, queue, priority, at))

    def chat(self, call_id: str, queue: str, at: float, priority: int = 0) -> list[Action]:
        return self.engine.handle(CallQueued(call_id, queue, priority, at, channel="chat"))

    def chats(self, agent_id: str) -> tuple[str, ...]:
        return next(v.chats for v in self.engine.agents() if v.agent_id == agent_id)

    def available(self, agent_id: str, at: float) -> list[Action]:
        return self.engine.handle(AgentStateRequested(agent_id, "available", at))

    def state(self, agent_id: str) -> AgentState:
        return self.engine.agent_state(agent_id)

    def published(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    def line(self, queue: str | None = None) -> list[str]:
        return [w.call_id for w in self.engine.waiting(queue)]


def offers(actions: list[Action]) -> list[tuple[str, str]]:
    return [(a.call_id, a.agent_id) for a in actions if isinstance(a, Offer)]
