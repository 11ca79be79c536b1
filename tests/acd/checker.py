"""An independent model of the ACD rules, fed by the engine's published events and the
inputs a test sends, that checks the rules at every offer and after every step.

The model reads the rules straight from the configuration (it does not reuse the engine's
indexes or requirement tables), so a routing shortcut that breaks a rule shows up here.

Chats: no event tells that a chat offer ended (the agent's state does not change), so the
model follows chat offers by the actions (``Offer``, ``CancelOffer``, in the order given) and
the reports the test sends, and checks what depends on the chats an agent holds (capacity,
no call while chatting) at each action; what depends on the order of entries and on states
(eligibility, no overtaking among chats, the agent available) at each ``Offered``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from acd import (
    Abandoned,
    AcdEngine,
    AcdEvent,
    Action,
    AgentStateChanged,
    Answered,
    CallbackCompleted,
    CallbackGaveUp,
    CallbackRetryScheduled,
    CallbackScheduled,
    CancelOffer,
    DialCallback,
    Offer,
    Offered,
    Overflowed,
    Queued,
    Reason,
)
from acd.model import AgentState, QueueConfig, Strategy

TERMINAL = {"answered", "abandoned", "overflowed", "callback_completed", "callback_gave_up", "lost_in_restart"}


@dataclass
class ModelCall:
    call_id: str
    queue: str
    priority: int
    enqueued_at: float
    seq: int
    entered_at: float
    callback: bool = False
    status: str = "line"
    """line, dialing, or one of TERMINAL."""
    ringing: set[str] = field(default_factory=set)
    retry_until: float | None = None
    chat: bool = False

    @property
    def key(self) -> tuple[int, float, int]:
        return (-self.priority, self.enqueued_at, self.seq)


def eligible(skills: dict[str, int], config: QueueConfig, entered_at: float, t: float) -> bool:
    """The rule as written: the queue's skill at min_proficiency, or, for each relaxation
    step due by ``t``, the queue's skill at the step's proficiency or an added skill at the
    step's proficiency (1 when None)."""
    skill = config.queue_skill
    if skills.get(skill, 0) >= config.min_proficiency:
        return True
    for step in config.relax:
        if entered_at + step.after > t:
            continue
        if step.min_proficiency is not None and skills.get(skill, 0) >= step.min_proficiency:
            return True
        if any(skills.get(s, 0) >= (step.min_proficiency or 1) for s in step.add_skills):
            return True
    return False


class Checker:
    def __init__(self) -> None:
        self.queues: dict[str, QueueConfig] = {}
        self.skills: dict[str, dict[str, int]] = {}
        self.state: dict[str, AgentState] = {}
        self.reachable: dict[str, bool] = {}
        self.calls: dict[str, ModelCall] = {}
        self.offer_of: dict[str, str] = {}
        """agent -> the call they ring for / are reserved for (from events)."""
        self.outstanding: set[tuple[str, str]] = set()
        """(call, agent) offers the adapter was told about and not yet told to stop."""
        self.reported: set[tuple[str, str]] = set()
        self.failed: set[tuple[str, str]] = set()
        """Offers the test reported failed in this step."""
        self.violations: list[str] = []
        self._seq = 0
        self.capacity: dict[str, int] = {}
        self.connected: dict[str, set[str]] = {}
        """agent -> chats answered by them and not ended by the test since."""
        self.calls_while_chatting = False

    # -- inputs the test sends (applied before the engine sees them) -------------------------

    def set_queue(self, config: QueueConfig) -> None:
        self.queues[config.name] = config

    def remove_queue(self, name: str) -> None:
        self.queues.pop(name, None)

    def set_agent(self, agent_id: str, skills: dict[str, int], chat_capacity: int = 0) -> None:
        if agent_id not in self.skills:  # new (or added again after removal): offline, reachable
            self.state[agent_id] = AgentState.OFFLINE
            self.reachable[agent_id] = True
            self.connected[agent_id] = set()
        self.skills[agent_id] = dict(skills)
        self.capacity[agent_id] = chat_capacity

    def remove_agent(self, agent_id: str) -> None:
        self.skills.pop(agent_id, None)
        self.connected.pop(agent_id, None)

    def set_policy(self, calls_while_chatting: bool) -> None:
        self.calls_while_chatting = calls_while_chatting

    def ended(self, call_id: str) -> None:
        """The test ends a call or a connected chat (or the caller hangs up)."""
        for chats in self.connected.values():
            chats.discard(call_id)

    def set_reachable(self, agent_id: str, reachable: bool) -> None:
        if agent_id in self.skills:
            self.reachable[agent_id] = reachable

    def adapter_answered(self, call_id: str, agent_id: str, *, failed: bool = False) -> None:
        """The test reports an answer or a failure for an offer (the adapter forgets it); a
        ``CancelOffer`` for it in the answer is then no surprise (the offer had ended). A
        chat offer that failed stops ringing once the engine has taken the report in (timers
        due by then fire first, with it ringing)."""
        self.reported.add((call_id, agent_id))
        self.outstanding.discard((call_id, agent_id))
        if failed:
            self.failed.add((call_id, agent_id))

    def restart(self) -> None:
        """The process died: live calls with it; callbacks being dialed go back in line."""
        for call in self.calls.values():
            if call.status in TERMINAL:
                continue
            if not call.callback:
                call.status = "lost_in_restart"
            elif call.status == "dialing":
                call.status = "line"
            call.ringing.clear()
        self.offer_of.clear()
        self.outstanding.clear()
        for chats in self.connected.values():
            chats.clear()

    def is_chat(self, call_id: str) -> bool:
        call = self.calls.get(call_id)
        return call is not None and call.chat

    def chat_offers(self, agent_id: str) -> list[str]:
        """Chats the adapter rings the agent for now (as far as the actions so far said)."""
        return [c for c, a in self.outstanding if a == agent_id and self.is_chat(c)]

    def load(self, agent_id: str) -> int:
        return len(self.chat_offers(agent_id)) + len(self.connected.get(agent_id, ()))

    def takes_calls(self, agent_id: str) -> bool:
        """Holding no chat, or no chat offer ringing with ``calls_while_chatting``."""
        if self.calls_while_chatting:
            return not self.chat_offers(agent_id)
        return self.load(agent_id) == 0

    # -- what the engine tells -------------------------------------------------------------------

    def on_actions(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Offer) and action.channel == "chat":
                self._chat_offer(action)
            elif isinstance(action, (Offer, DialCallback)):
                pair = (action.call_id, action.agent_id)
                if any(agent == action.agent_id for _, agent in self.outstanding):
                    self.fail(f"{action}: the adapter is still ringing that agent for another call or a chat")
                if not self.takes_calls(action.agent_id):
                    self.fail(f"{action}: the agent holds chats {self.connected.get(action.agent_id)}")
                if self.is_chat(action.call_id):
                    self.fail(f"{action}: a chat offered as a call")
                self.outstanding.add(pair)
            elif isinstance(action, CancelOffer):
                pair = (action.call_id, action.agent_id)
                if pair in self.outstanding:
                    self.outstanding.discard(pair)
                elif pair not in self.reported:
                    self.fail(f"{action} for an offer that was not ringing")
                call = self.calls.get(action.call_id)
                if call is not None and call.chat:
                    call.ringing.discard(action.agent_id)
        for call_id, agent_id in self.failed:
            call = self.calls.get(call_id)
            if call is not None and call.chat:
                call.ringing.discard(agent_id)
        self.failed.clear()
        self.reported.clear()

    def _chat_offer(self, action: Offer) -> None:
        agent = action.agent_id
        call = self.calls.get(action.call_id)
        if call is None or not call.chat:
            self.fail(f"{action}: not a chat the model knows")
            return
        if any(not self.is_chat(c) for c, a in self.outstanding if a == agent):
            self.fail(f"{action}: the adapter is still ringing that agent for a call")
        if any(c == action.call_id for c, _ in self.outstanding):
            self.fail(f"{action}: the chat is still offered to another agent")
        if self.load(agent) >= self.capacity.get(agent, 0):
            self.fail(f"{action}: the agent holds {self.load(agent)} chats, capacity {self.capacity.get(agent)}")
        self.outstanding.add((action.call_id, agent))
        call.ringing.add(agent)

    def on_event(self, event: AcdEvent) -> None:
        handler = getattr(self, f"_on_{type(event).__name__}")
        handler(event)

    def _on_Queued(self, e: Queued) -> None:
        call = self.calls.get(e.call_id)
        if call is None:
            self._seq += 1
            self.calls[e.call_id] = ModelCall(e.call_id, e.queue, e.priority, e.enqueued_at, self._seq, e.at,
                                              chat=e.channel == "chat")
        else:
            if call.status != "line" or call.queue != (e.moved_from or e.queue):
                self.fail(f"{e}: queued again but the model has it {call.status} in {call.queue}")
            if e.enqueued_at != call.enqueued_at:
                self.fail(f"{e}: the original enqueue time {call.enqueued_at} was not kept")
            if call.chat != (e.channel == "chat"):
                self.fail(f"{e}: the channel changed")
            if e.moved_from is not None:  # a supervisor's move: counted from now, no retry delay left
                if call.chat:
                    call.ringing.clear()  # its offer is cancelled (the CancelOffer comes with the actions)
                if call.ringing:
                    self.fail(f"{e}: moved while ringing {call.ringing}")
                call.queue, call.entered_at, call.retry_until = e.queue, e.at, None
            call.priority = e.priority  # a supervisor's new priority (unchanged otherwise)

    def _on_Offered(self, e: Offered) -> None:
        call = self.calls.get(e.call_id)
        if call is None:
            self.fail(f"{e}: unknown call")
            return
        if call.status != "line" or (call.retry_until is not None and e.at < call.retry_until):
            self.fail(f"{e}: the call is {call.status} (retry at {call.retry_until})")
        if call.chat != (e.channel == "chat"):
            self.fail(f"{e}: the model has the channel {'chat' if call.chat else 'voice'}")
        if call.chat:  # one agent at a time (checked with the actions: a ring may end in this step)
            if self.state.get(e.agent_id) is not AgentState.AVAILABLE or not self.reachable.get(e.agent_id, True):
                self.fail(f"{e}: the agent is {self.state.get(e.agent_id)}, reachable "
                          f"{self.reachable.get(e.agent_id)}")
        elif call.ringing and (call.callback or self.queues[call.queue].strategy is not Strategy.RING_ALL):
            self.fail(f"{e}: the call already rings {call.ringing}")
        if e.queue != call.queue:
            self.fail(f"{e}: the model has the call in {call.queue}")
        skills = self.skills.get(e.agent_id, {})
        config = self.queues[call.queue]
        if not eligible(skills, config, call.entered_at, e.at):
            self.fail(f"{e}: agent skills {skills} do not qualify for {config} (entered {call.entered_at})")
        for other in self.calls.values():
            if other is not call and other.chat == call.chat and other.key < call.key \
                    and self.offerable(other, e.at) \
                    and eligible(skills, self.queues[other.queue], other.entered_at, e.at):
                self.fail(f"{e}: overtakes {other} which the agent could take")
        call.ringing.add(e.agent_id)
        if call.chat:
            return
        self.offer_of[e.agent_id] = e.call_id
        if e.callback:
            call.status = "dialing"

    def _on_AgentStateChanged(self, e: AgentStateChanged) -> None:
        if self.state.get(e.agent_id, AgentState.OFFLINE) is not e.old:
            self.fail(f"{e}: the model has the agent {self.state.get(e.agent_id)}")
        if e.new is AgentState.RESERVED:
            if e.old is not AgentState.AVAILABLE:
                self.fail(f"{e}: reserved from {e.old}")
            if not self.reachable.get(e.agent_id, True):
                self.fail(f"{e}: reserved while unreachable")
            if e.agent_id in self.offer_of:
                self.fail(f"{e}: already reserved for {self.offer_of[e.agent_id]}")
        if e.old is AgentState.RESERVED and e.new is not AgentState.RESERVED:
            call_id = self.offer_of.pop(e.agent_id, None)
            call = self.calls.get(call_id) if call_id is not None else None
            if call is not None:
                call.ringing.discard(e.agent_id)
                if call.status == "dialing" and e.new is not AgentState.ON_CALL:
                    call.status = "line"
        if e.reason == Reason.UNREACHABLE:
            self.reachable[e.agent_id] = False
        self.state[e.agent_id] = e.new

    def _on_Answered(self, e: Answered) -> None:
        call = self.calls.get(e.call_id)
        if call is not None and call.chat:
            call.ringing.clear()
            self.connected.setdefault(e.agent_id, set()).add(e.call_id)
        self._finish(e.call_id, "answered", e)

    def _on_CallbackCompleted(self, e: CallbackCompleted) -> None:
        self._finish(e.call_id, "callback_completed", e)

    def _on_Abandoned(self, e: Abandoned) -> None:
        call = self.calls.get(e.call_id)
        if call is not None and call.chat:
            call.ringing.clear()  # its offer is cancelled (the CancelOffer comes with the actions)
        self._finish(e.call_id, "abandoned", e)

    def _on_CallbackGaveUp(self, e: CallbackGaveUp) -> None:
        self._finish(e.call_id, "callback_gave_up", e)

    def _on_Overflowed(self, e: Overflowed) -> None:
        call = self.calls.get(e.call_id)
        if call is None:  # refused at the door: a full queue (a Queued follows if it moved) or an unknown one
            if e.fallback.kind != "queue":
                self._seq += 1
                self.calls[e.call_id] = ModelCall(e.call_id, e.queue, 0, e.at, self._seq, e.at, status="overflowed")
            return
        if call.chat:
            call.ringing.clear()  # its offer is cancelled (the CancelOffer comes with the actions)
        if e.fallback.kind == "queue":
            assert e.fallback.target is not None
            call.queue, call.entered_at, call.status, call.retry_until = e.fallback.target, e.at, "line", None
            if call.ringing:
                self.fail(f"{e}: moved while ringing {call.ringing}")
        else:
            self._finish(e.call_id, "overflowed", e)

    def _on_CallbackScheduled(self, e: CallbackScheduled) -> None:
        call = self.calls[e.call_id]
        if call.ringing:
            self.fail(f"{e}: still ringing {call.ringing}")
        call.callback = True

    def _on_CallbackRetryScheduled(self, e: CallbackRetryScheduled) -> None:
        self.calls[e.call_id].retry_until = e.retry_at

    def _finish(self, call_id: str, outcome: str, event: AcdEvent) -> None:
        call = self.calls.get(call_id)
        if call is None or call.status in TERMINAL:
            self.fail(f"{event}: the call is {call.status if call else 'unknown'}")
            return
        call.status = outcome

    # -- the rules -------------------------------------------------------------------------------

    def offerable(self, call: ModelCall, t: float) -> bool:
        """Whether the call may be offered to a free agent at ``t``."""
        if call.status != "line" or (call.retry_until is not None and t < call.retry_until):
            return False
        config = self.queues.get(call.queue)
        if config is None:
            return False
        if not call.callback and config.max_wait is not None and t >= call.entered_at + config.max_wait:
            return False  # leaving on max wait (after its ringing ends)
        return not call.ringing or (config.strategy is Strategy.RING_ALL and not call.callback and not call.chat)

    def check_step(self, engine: AcdEngine) -> None:
        """After a step: nothing waits for a free eligible agent; reservations are live; the
        engine's own views agree with the model."""
        t = engine.now
        free = [a for a, s in self.state.items()
                if s is AgentState.AVAILABLE and self.reachable.get(a, True) and a in self.skills]
        free_for_calls = [a for a in free if self.takes_calls(a)]
        free_for_chats = [a for a in free if self.load(a) < self.capacity.get(a, 0)]
        for call in self.calls.values():
            if self.offerable(call, t):
                config = self.queues[call.queue]
                for agent in free_for_chats if call.chat else free_for_calls:
                    if eligible(self.skills[agent], config, call.entered_at, t):
                        self.fail(f"t={t}: {call} waits while {agent} {self.skills[agent]} is free")
        for agent, call_id in self.offer_of.items():
            reserved_for = self.calls.get(call_id)
            if reserved_for is None or reserved_for.status not in ("line", "dialing"):
                self.fail(f"t={t}: {agent} is reserved for {call_id}: {reserved_for}")
        for agent, state in self.state.items():
            if state is AgentState.RESERVED and agent not in self.offer_of and agent in self.skills:
                self.fail(f"t={t}: {agent} is reserved for nothing")
        views = {v.agent_id: v for v in engine.agents()}
        for agent in self.skills:
            if views[agent].state is not self.state[agent]:
                self.fail(f"t={t}: engine has {agent} {views[agent].state}, events said {self.state[agent]}")
            held = set(self.chat_offers(agent)) | self.connected[agent]
            if set(views[agent].chats) != held:
                self.fail(f"t={t}: engine has {agent} holding chats {views[agent].chats}, the model {sorted(held)}")
        ringing_model = {(call.call_id, a) for call in self.calls.values() for a in call.ringing}
        ringing_engine = {(w.call_id, a) for w in engine.waiting() for a in w.offered_to}
        if ringing_model != ringing_engine:
            self.fail(f"t={t}: offers differ: events {ringing_model}, engine {ringing_engine}")
        if ringing_model != self.outstanding:
            self.fail(f"t={t}: offers differ: events {ringing_model}, actions {self.outstanding}")
        in_line = {c.call_id for c in self.calls.values() if c.status in ("line", "dialing")}
        waiting = {w.call_id for w in engine.waiting()}
        if in_line != waiting:
            self.fail(f"t={t}: in line per events {sorted(in_line)}, per engine {sorted(waiting)}")

    def fail(self, message: str) -> None:
        self.violations.append(message)
