"""Random event sequences against the rules (``checker.Checker`` checks every offer and step),
then driven to quiescence: every queued call (or chat) must end answered, abandoned,
overflowed or called back, with no agent left reserved."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from acd import (
    AcdEngine,
    Action,
    AgentConfig,
    AgentDeviceChanged,
    AgentStateRequested,
    CallbackAnswered,
    CallbackFailed,
    CallbackRequested,
    CallEnded,
    CallerHungUp,
    CallQueued,
    Event,
    Fallback,
    OfferAccepted,
    OfferFailed,
    QueueConfig,
    RelaxStep,
    Strategy,
    WrapUpEnded,
)
from acd.events import OfferFailure, RequestableState
from acd.model import AgentState
from tests.acd.checker import TERMINAL, Checker

SKILLS = ("s0", "s1", "s2")
QUEUE_NAMES = ("q0", "q1", "q2")
SUPER_AGENT = "zz-super"

skill_sets = st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), min_size=1, max_size=3)


@st.composite
def relax_steps(draw: st.DrawFn) -> tuple[RelaxStep, ...]:
    afters = sorted(draw(st.lists(st.sampled_from([0, 5, 10, 20]), max_size=2)))
    return tuple(RelaxStep(after, draw(st.none() | st.integers(1, 4)),
                           tuple(draw(st.lists(st.sampled_from(SKILLS), max_size=2, unique=True))))
                 for after in afters)


def fallbacks(own: str) -> st.SearchStrategy[Fallback]:
    choices = [Fallback("hangup"), Fallback("voicemail"), Fallback("callback"), Fallback("ivr", "menu"),
               Fallback("queue", "nowhere")] + [Fallback("queue", n) for n in QUEUE_NAMES if n != own]
    return st.sampled_from(choices)


@st.composite
def queue_configs(draw: st.DrawFn, name: str) -> QueueConfig:
    return QueueConfig(
        name, skill=draw(st.sampled_from(SKILLS)), strategy=draw(st.sampled_from(list(Strategy))),
        min_proficiency=draw(st.integers(1, 4)), relax=draw(relax_steps()),
        max_size=draw(st.sampled_from([None, None, 2, 4])), on_full=draw(fallbacks(name)),
        max_wait=draw(st.sampled_from([None, None, 15, 40])), on_timeout=draw(fallbacks(name)),
        ring_timeout=draw(st.sampled_from([1, 5, 10])), wrapup=draw(st.sampled_from([0, 5, 10])),
        announce_every=draw(st.sampled_from([None, 5, 10])), callback_retries=draw(st.integers(0, 2)),
        callback_retry_delay=draw(st.sampled_from([0, 5, 10])))


@dataclass
class Scenario:
    queues: list[QueueConfig]
    alternates: list[QueueConfig]
    agents: list[AgentConfig]
    logged_in: list[str]
    calls_while_chatting: bool = False


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    names = QUEUE_NAMES[:draw(st.integers(1, len(QUEUE_NAMES)))]
    queues = [draw(queue_configs(n)) for n in names]
    alternates = [draw(queue_configs(n)) for n in names]
    agents = [AgentConfig(f"a{i}", draw(skill_sets), draw(st.sampled_from([0, 0, 1, 2])))
              for i in range(draw(st.integers(1, 6)))]
    logged_in = [a.agent_id for a in agents if draw(st.booleans())]
    return Scenario(queues, alternates, agents, logged_in, draw(st.booleans()))


def op(kind: str, weight: int = 1, payload: st.SearchStrategy[Any] = st.just(None)) -> list[st.SearchStrategy[Any]]:
    # Small, often equal time steps make timers and inputs coincide (the hard cases). One
    # strategy object per unit of weight: ``one_of`` drops repeats of the same object.
    return [st.tuples(st.just(kind), st.sampled_from([0, 0, 1, 2, 5]), st.integers(0, 999), st.integers(0, 999),
                      payload) for _ in range(weight)]


OPS = st.one_of(
    *op("call", 6), *op("chat", 3), *op("capacity", 1), *op("policy", 1), *op("hangup", 2), *op("request", 4), *op("device", 1), *op("accept", 5), *op("fail", 2),
    *op("end", 4), *op("callback", 2), *op("callback_answer", 1), *op("callback_fail", 2), *op("wrapup_end", 1),
    *op("tick", 3), *op("skills", 1, skill_sets), *op("stale_accept", 1), *op("restart", 1), *op("requeue", 1),
    *op("remove_queue", 1), *op("remove_agent", 1))


@dataclass
class Driver:
    scenario: Scenario
    checker: Checker = field(default_factory=Checker)
    t: int = 0
    call_ids: list[str] = field(default_factory=list)
    ended: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.engine = AcdEngine(on_event=self.checker.on_event,
                                calls_while_chatting=self.scenario.calls_while_chatting)
        self.checker.set_policy(self.scenario.calls_while_chatting)
        self.capacities = {agent.agent_id: agent.chat_capacity for agent in self.scenario.agents}
        for config in self.scenario.queues:
            self.set_queue(config)
        for agent in self.scenario.agents:
            self.set_agent(agent.agent_id, agent.skills)
        for agent_id in self.scenario.logged_in:
            self.send(AgentStateRequested(agent_id, "available", self.t))

    # -- sending -----------------------------------------------------------------------------

    def apply(self, actions: list[Action]) -> None:
        self.checker.on_actions(actions)
        self.checker.check_step(self.engine)

    def send(self, event: Event) -> None:
        self.apply(self.engine.handle(event))

    def settle(self) -> None:
        """Fire timers up to now before an input that changes what the model knows."""
        self.apply(self.engine.advance(self.t))

    def set_queue(self, config: QueueConfig) -> None:
        self.settle()
        self.checker.set_queue(config)
        self.apply(self.engine.set_queue(config, at=self.t))

    def set_agent(self, agent_id: str, skills: dict[str, int]) -> None:
        """Skills as given, the chat capacity of ``capacities``."""
        self.settle()
        capacity = self.capacities.get(agent_id, 0)
        self.checker.set_agent(agent_id, skills, capacity)
        self.apply(self.engine.set_agent(AgentConfig(agent_id, skills, capacity), at=self.t))

    # -- what the model says is there -----------------------------------------------------------

    def calls_with(self, *statuses: str, callback: bool | None = None) -> list[str]:
        return sorted(c.call_id for c in self.checker.calls.values()
                      if c.status in statuses and (callback is None or c.callback is callback))

    def connected(self) -> list[str]:
        return [c for c in self.calls_with("answered", "callback_completed") if c not in self.ended]

    def offers(self, dialing: bool) -> list[tuple[str, str]]:
        return sorted((c, a) for c, a in self.checker.outstanding
                      if (self.checker.calls[c].status == "dialing") is dialing)

    def agents_in(self, state: AgentState) -> list[str]:
        return sorted(a for a, s in self.checker.state.items() if s is state and a in self.checker.skills)

    @staticmethod
    def pick(items: list[Any], index: int) -> Any:
        return items[index % len(items)] if items else None

    # -- one random step --------------------------------------------------------------------------

    def step(self, kind: str, dt: int, x: int, y: int, payload: Any) -> None:
        self.t += dt
        t = self.t
        agents = sorted(a.agent_id for a in self.scenario.agents)
        if kind in ("call", "chat"):
            call_id = f"c{len(self.call_ids)}"
            self.call_ids.append(call_id)
            names = [q.name for q in self.scenario.queues] * 4 + ["nowhere"]
            self.send(CallQueued(call_id, self.pick(names, x), y % 4, t, channel="chat" if kind == "chat" else "voice"))
        elif kind == "capacity":
            agent = self.pick(agents, x)
            if agent in self.checker.skills:
                self.capacities[agent] = y % 4
                self.set_agent(agent, self.checker.skills[agent])
        elif kind == "policy":
            self.settle()
            self.checker.set_policy(not self.checker.calls_while_chatting)
            self.apply(self.engine.set_chat_policy(self.checker.calls_while_chatting, at=t))
        elif kind == "hangup":
            call_id = self.pick(self.calls_with("line", "dialing") + self.connected(), x)
            if call_id is not None:
                self.ended.add(call_id)
                self.checker.ended(call_id)
                for c, a in list(self.checker.outstanding):
                    if c == call_id and self.checker.calls[c].status == "dialing":
                        self.checker.adapter_answered(c, a)
                self.send(CallerHungUp(call_id, t))
        elif kind == "request":
            state: RequestableState = ("available", "available", "break", "offline")[y % 4]
            self.send(AgentStateRequested(self.pick(agents, x), state, t, "lunch" if state == "break" else None))
        elif kind == "device":
            agent = self.pick(agents, x)
            self.settle()
            self.checker.set_reachable(agent, y % 3 != 0)
            self.send(AgentDeviceChanged(agent, y % 3 != 0, t))
        elif kind in ("accept", "fail"):
            offer = self.pick(self.offers(dialing=False), x)
            if offer is not None:
                self.checker.adapter_answered(*offer, failed=kind == "fail")
                if kind == "accept":
                    self.send(OfferAccepted(offer[0], offer[1], t))
                else:
                    reason: OfferFailure = ("declined", "no_answer", "unreachable")[y % 3]
                    actions = self.engine.handle(OfferFailed(offer[0], offer[1], t, reason))
                    if reason == "unreachable":
                        # A live offer failing so marks the agent unreachable (a stale one does not); the
                        # model cannot tell from the state change when that is to a break asked for
                        # meanwhile (its reason is the break's), nor for a chat (the agent's state does
                        # not change), so it takes the engine's word before checking the step.
                        view = next((v for v in self.engine.agents() if v.agent_id == offer[1]), None)
                        if view is not None:
                            self.checker.set_reachable(offer[1], view.reachable)
                    self.apply(actions)
        elif kind == "end":
            call_id = self.pick(self.connected(), x)
            if call_id is not None:
                self.ended.add(call_id)
                self.checker.ended(call_id)
                self.send(CallEnded(call_id, t))
        elif kind == "callback":
            call_id = self.pick(self.calls_with("line", callback=False), x)
            if call_id is not None:
                self.send(CallbackRequested(call_id, "5550100", t))
        elif kind in ("callback_answer", "callback_fail"):
            offer = self.pick(self.offers(dialing=True), x)
            if offer is not None:
                self.checker.adapter_answered(*offer)
                event_type = CallbackAnswered if kind == "callback_answer" else CallbackFailed
                self.send(event_type(offer[0], t))
        elif kind == "wrapup_end":
            agent = self.pick(self.agents_in(AgentState.WRAP_UP), x)
            if agent is not None:
                self.send(WrapUpEnded(agent, t))
        elif kind == "tick":
            self.apply(self.engine.advance(t))
        elif kind == "skills":
            self.set_agent(self.pick(agents, x), payload)
        elif kind == "stale_accept":
            call_id = self.pick(self.call_ids, x)
            agent = self.pick(agents, y)
            if call_id is not None and (call_id, agent) not in self.checker.outstanding:
                self.checker.adapter_answered(call_id, agent)
                self.send(OfferAccepted(call_id, agent, t))
        elif kind == "restart":
            self.restart()
        elif kind == "requeue":
            index = x % len(self.scenario.queues)
            configs = (self.scenario.queues[index], self.scenario.alternates[index])
            current = self.checker.queues.get(configs[0].name)
            self.set_queue(configs[1] if current == configs[0] else configs[0])
        elif kind == "remove_queue":
            name = self.pick([q.name for q in self.scenario.queues], x)
            self.settle()
            self.checker.remove_queue(name)
            self.apply(self.engine.remove_queue(name, at=t))
        elif kind == "remove_agent":
            agent = self.pick(agents, x)
            self.settle()
            self.checker.remove_agent(agent)
            self.apply(self.engine.remove_agent(agent, at=t))

    def restart(self) -> None:
        self.settle()
        snapshot = json.loads(json.dumps(self.engine.snapshot()))
        self.ended.update(self.connected())
        self.checker.restart()
        self.engine = self.restored(snapshot)
        self.apply(self.engine.advance(self.t))

    def restored(self, snapshot: dict[str, Any]) -> AcdEngine:
        """The engine of the new process, from the dead one's restart snapshot."""
        return AcdEngine.restore(snapshot, self.t, on_event=self.checker.on_event)

    # -- the end ------------------------------------------------------------------------------------

    def drain(self) -> None:
        """Bring in an agent with every skill, answer everything and advance time until no
        call is left in any line."""
        self.capacities[SUPER_AGENT] = 2
        self.set_agent(SUPER_AGENT, {s: 5 for s in SKILLS})
        for _ in range(400):
            for agent, state in sorted(self.checker.state.items()):
                if agent in self.checker.skills:
                    if not self.checker.reachable.get(agent, True):
                        self.settle()
                        self.checker.set_reachable(agent, True)
                        self.send(AgentDeviceChanged(agent, True, self.t))
                    if state in (AgentState.BREAK, AgentState.OFFLINE):
                        self.send(AgentStateRequested(agent, "available", self.t))
            for call_id, agent in self.offers(dialing=False):
                self.checker.adapter_answered(call_id, agent)
                self.send(OfferAccepted(call_id, agent, self.t))
            for call_id, agent in self.offers(dialing=True):
                self.checker.adapter_answered(call_id, agent)
                self.send(CallbackAnswered(call_id, self.t))
            for call_id in self.connected():
                self.ended.add(call_id)
                self.checker.ended(call_id)
                self.send(CallEnded(call_id, self.t))
            for agent in self.agents_in(AgentState.WRAP_UP):
                self.send(WrapUpEnded(agent, self.t))
            if not self.engine.waiting() and not self.checker.outstanding and not self.connected():
                break
            self.t += 5
            self.apply(self.engine.advance(self.t))

    def final_checks(self) -> list[str]:
        problems = list(self.checker.violations)
        for call_id in self.call_ids:
            call = self.checker.calls.get(call_id)
            if call is None or call.status not in TERMINAL:
                problems.append(f"{call_id} never ended: {call}")
        if self.engine.waiting():
            problems.append(f"still in line: {self.engine.waiting()}")
        for view in self.engine.agents():
            if view.state in (AgentState.RESERVED, AgentState.ON_CALL):
                problems.append(f"{view.agent_id} left {view.state}")
        return problems


@given(scenarios(), st.lists(OPS, min_size=20, max_size=80))
def test_random_event_sequences_keep_the_rules(scenario: Scenario, ops: list[tuple[str, int, int, int, Any]]) -> None:
    driver = Driver(scenario)
    for operation in ops:
        driver.step(*operation)
        assert not driver.checker.violations, (operation, driver.checker.violations)
    driver.drain()
    assert driver.final_checks() == []
