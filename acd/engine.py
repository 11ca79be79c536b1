"""The ACD engine: events and time in, actions out (sans-I/O).

Each input is applied in three steps: timers due up to its time fire in time order (those
sharing one instant together), the input is applied, then one routing pass matches what
changed. Routing only looks at what changed since the last pass (``AgentPool.dirty``,
``Lines.dirty``), which keeps the state stable: no offerable call has an available,
reachable, eligible agent free for calls, and no offerable chat an eligible agent free for
chats, once a pass is over.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import live_snapshot as live_snap
from . import snapshot as snap
from .actions import Action, Announce, CancelOffer, DialCallback, Offer, Overflow
from .agent_pool import AgentPool, AgentRecord
from .bus_events import (
    Abandoned,
    AcdEvent,
    AgentStateChanged,
    Answered,
    CallbackCompleted,
    CallbackGaveUp,
    CallbackRetryScheduled,
    CallbackScheduled,
    Offered,
    Overflowed,
    OverflowReason,
    Queued,
    Reason,
)
from .calls import CallEntry, CallStatus
from .events import (
    AgentDeviceChanged,
    AgentStateRequested,
    CallbackAnswered,
    CallbackFailed,
    CallbackRequested,
    CallEnded,
    CallerHungUp,
    CallMoved,
    CallPriorityChanged,
    CallQueued,
    Event,
    NotWaiting,
    OfferAccepted,
    OfferFailed,
    UnknownCall,
    UnknownQueue,
    WrapUpEnded,
)
from .model import BUSY_STATES, AgentConfig, AgentState, Fallback, QueueConfig, Strategy
from .queue_lines import Lines, QueueLine
from .timers import TimerHeap
from .views import AgentView, QueueStats, WaitingView

DEAD_END = Fallback("hangup")
"""Where a call goes when its queue does not exist, or a queue fallback leads nowhere
(missing target, or back to a queue the call just overflowed from)."""


class AcdEngine:
    def __init__(self, *, on_event: Callable[[AcdEvent], None] | None = None,
                 calls_while_chatting: bool = False) -> None:
        self._on_event = on_event
        self._now = 0.0
        self._next_seq = 0
        self._timers = TimerHeap()
        self._events: list[AcdEvent] = []
        self._actions: list[Action] = []
        self._agents = AgentPool(self._events.append, calls_while_chatting=calls_while_chatting)
        self._lines = Lines()
        self._handlers: dict[type, Callable[[Any], None]] = {
            CallQueued: self._call_queued,
            CallerHungUp: self._caller_hung_up,
            AgentStateRequested: self._state_requested,
            AgentDeviceChanged: self._device_changed,
            OfferAccepted: self._offer_accepted,
            OfferFailed: self._offer_failed,
            CallEnded: self._call_ended,
            CallbackRequested: self._callback_requested,
            CallbackAnswered: self._callback_answered,
            CallbackFailed: self._callback_failed,
            WrapUpEnded: self._wrap_up_ended,
            CallPriorityChanged: self._priority_changed,
            CallMoved: self._call_moved,
        }

    # -- time and the public entry points -----------------------------------------------------

    @property
    def now(self) -> float:
        """The engine's time: the latest input or timer (time never goes back)."""
        return self._now

    def handle(self, event: Event) -> list[Action]:
        """Apply one event at ``event.at`` (an earlier time than ``now`` counts as ``now``).

        A supervisor's request that does not fit the state raises ``RequestRefused`` and
        changes nothing; the timers due by its time have fired, though: their actions come
        from the next ``advance``, which ``next_deadline`` asks for at once."""
        handler = self._handlers.get(type(event))
        if handler is None:
            raise TypeError(f"not an ACD event: {event!r}")
        if isinstance(event, OfferAccepted) and not self._hold_offer(event.call_id, event.agent_id):
            # Not an offer the adapter could be ringing: refused before the timers run, so
            # that a re-offer they may make to the same agent is a new ring after it.
            self._actions.append(CancelOffer(event.call_id, event.agent_id))
            handler = None
        self._run_timers(event.at)
        self._now = max(self._now, event.at)
        if handler is not None:
            handler(event)
        return self._finish()

    def advance(self, now: float) -> list[Action]:
        """Fire the timers due up to ``now``."""
        self._run_timers(now)
        self._now = max(self._now, now)
        return self._finish()

    def next_deadline(self) -> float | None:
        """When ``advance`` must be called next (``now`` if routing is pending, e.g. after ``restore``,
        or actions are, after a refused request)."""
        if self._agents.dirty or self._lines.dirty or self._actions:
            return self._now
        return self._timers.next_due()

    def _run_timers(self, until: float) -> None:
        while group := self._timers.pop_due_group(until):
            self._now = max(self._now, group[0].due)
            for timer in group:
                if not timer.cancelled:
                    timer.fire(self, *timer.args)
            self._route()

    def _finish(self) -> list[Action]:
        self._route()
        actions, self._actions = self._actions, []
        self._deliver_events()
        return actions

    def _deliver_events(self) -> None:
        events = self._events[:]
        self._events.clear()
        if self._on_event is not None:
            for event in events:
                self._on_event(event)

    def _config_change(self, at: float | None, change: Callable[[], None]) -> list[Action]:
        if at is not None:
            self._run_timers(at)
            self._now = max(self._now, at)
        change()
        return self._finish()

    # -- configuration --------------------------------------------------------------------------

    def set_queue(self, config: QueueConfig, *, at: float | None = None) -> list[Action]:
        """Add or change a queue (live: waiting calls move to the new rules at once).

        Returns actions to carry out like ``handle``'s (a change may route calls)."""
        return self._config_change(at, lambda: self._set_queue(config))

    def remove_queue(self, name: str, *, at: float | None = None) -> list[Action]:
        """Remove a queue: its live calls go to its ``on_timeout`` fallback, its callbacks move
        to the fallback queue if that is a queue, else are given up."""
        return self._config_change(at, lambda: self._remove_queue(name))

    def set_agent(self, config: AgentConfig, *, at: float | None = None) -> list[Action]:
        """Add an agent (offline) or change an agent's skills and chat capacity (live; a
        capacity below the chats they hold only stops new ones)."""
        return self._config_change(at, lambda: self._set_agent(config))

    def remove_agent(self, agent_id: str, *, at: float | None = None) -> list[Action]:
        """Remove an agent: offers ringing them (call or chats) are cancelled; a call or chats
        they are on continue without the engine (their end is then ignored)."""
        return self._config_change(at, lambda: self._remove_agent(agent_id))

    def set_chat_policy(self, calls_while_chatting: bool, *, at: float | None = None) -> list[Action]:
        """Whether an agent holding chats may be offered a call (live)."""
        return self._config_change(at, lambda: self._agents.set_calls_while_chatting(calls_while_chatting))

    @property
    def calls_while_chatting(self) -> bool:
        return self._agents.calls_while_chatting

    def reset_day(self, at: float) -> None:
        """Start a new day for the statistics and ``fewest_calls`` (call at local midnight).

        Today's counters and calls restart at zero; ``at`` (when the day starts on the
        adapter's timeline) does not move the engine's clock: timers due by then fire at the
        next ``handle`` or ``advance``."""
        for line in self._lines.queues.values():
            counters = line.counters
            counters.answered = counters.answered_within_sl = counters.abandoned = 0
        self._agents.reset_calls_today()

    def _set_queue(self, config: QueueConfig) -> None:
        old = self._lines.queues.get(config.name)
        line = QueueLine(config, previous=old)
        self._lines.install(line)
        if old is None:
            return
        for call in self._lines.entries(line):
            self._lines.unbucket(call)
            self._timers.cancel(call.relax_timer)
            self._timers.cancel(call.max_wait_timer)
            self._timers.cancel(call.announce_timer)
            call.timed_out = False  # judged again by the new max wait (its timer fires at once if passed)
            call.level = line.level_at(call.entered_at, self._now)
            self._arm_call_timers(call, line)
            self._lines.sync_bucket(call)

    def _remove_queue(self, name: str) -> None:
        line = self._lines.queues.get(name)
        if line is None:
            return
        fallback = line.config.on_timeout
        calls = list(self._lines.entries(line))
        for call in calls:
            self._drop_all_offers(call, Reason.OFFER_CANCELLED)
            self._leave_line(call)
        self._lines.uninstall(name)
        for call in calls:
            if not call.is_callback:
                self._to_fallback(call, name, fallback, "queue_removed", visited=frozenset({name}))
                continue
            target = self._lines.queues.get(fallback.target or "") if fallback.kind == "queue" else None
            if target is None:
                self._lines.forget(call)
                self._publish(CallbackGaveUp(call.call_id, name, call.attempts, "queue_removed", self._now))
            else:
                self._publish(Overflowed(call.call_id, name, fallback, "queue_removed", self._now))
                self._enter_line(call, target)

    def _set_agent(self, config: AgentConfig) -> None:
        agent = self._agents.get(config.agent_id)
        if agent is None:
            self._agents.add(AgentRecord(config.agent_id, dict(config.skills), since=self._now,
                                         last_idle=self._now, chat_capacity=config.chat_capacity))
        else:
            self._agents.configure(agent, config.skills, config.chat_capacity)

    def _remove_agent(self, agent_id: str) -> None:
        agent = self._agents.get(agent_id)
        if agent is None:
            return
        self._timers.cancel(agent.wrapup_timer)
        self._agents.remove(agent)
        # The agent's end is published first: the offer ringing them ends there, before the call
        # takes its place again or, if its max wait passed while it rang, overflows.
        if agent.state is not AgentState.OFFLINE:
            self._publish(AgentStateChanged(agent_id, agent.state, AgentState.OFFLINE, Reason.REMOVED, self._now))
        call = self._lines.calls.get(agent.call_id) if agent.call_id is not None else None
        if call is not None and agent_id in call.offers:
            self._drop_offer(call, agent_id, Reason.REMOVED, cancel=True)
            self._back_in_line(call)
        self._withdraw_chat_offers(agent)

    # -- calls in and out of lines ----------------------------------------------------------------

    def _call_queued(self, event: CallQueued) -> None:
        if event.call_id in self._lines.calls:
            return  # already ours: a repeated hand-off is ignored
        line = self._lines.queues.get(event.queue)
        if line is None:
            self._publish(Overflowed(event.call_id, event.queue, DEAD_END, "unknown_queue", self._now))
            self._actions.append(Overflow(event.call_id, DEAD_END))
            return
        call = CallEntry(event.call_id, event.queue, event.priority, self._now, self._take_seq(), self._now,
                         event.caller, dict(event.variables), event.channel)
        self._admit(call, line, overflowed_from=None, visited=frozenset())

    def _admit(self, call: CallEntry, line: QueueLine, overflowed_from: str | None, visited: frozenset[str]) -> None:
        """A live call enters ``line``, or goes to its ``on_full`` fallback if it is full."""
        visited = visited | {line.name}
        if line.config.max_size is not None and len(line) >= line.config.max_size:
            self._to_fallback(call, line.name, line.config.on_full, "full", visited)
            return
        self._enter_line(call, line)
        self._publish(Queued(call.call_id, line.name, call.priority, call.enqueued_at, line.position(call.key),
                             self._now, overflowed_from, channel=call.channel))

    def _enter_line(self, call: CallEntry, line: QueueLine) -> None:
        call.queue = line.name
        call.entered_at = self._now
        call.status = CallStatus.IN_LINE
        call.retry_at = None
        call.timed_out = False
        self._place_in_line(call, line)

    def _place_in_line(self, call: CallEntry, line: QueueLine) -> None:
        call.level = line.level_at(call.entered_at, self._now)
        self._lines.enter(call, line)
        self._arm_call_timers(call, line)
        self._lines.sync_bucket(call)

    def _arm_call_timers(self, call: CallEntry, line: QueueLine) -> None:
        """Relaxation, max wait and announcement timers, counted from when the call entered
        (a callback has no max wait, a callback or chat no announcements)."""
        config = line.config
        if call.level < len(config.relax):
            due = call.entered_at + config.relax[call.level].after
            call.relax_timer = self._timers.schedule(due, AcdEngine._relax, call)
        if call.is_callback:
            return
        if config.max_wait is not None:
            due = max(call.entered_at + config.max_wait, self._now)
            call.max_wait_timer = self._timers.schedule(due, AcdEngine._max_wait, call)
        if config.announce_every is not None and not call.is_chat:
            every = config.announce_every
            due = call.entered_at + every
            if due <= self._now:
                due += every * ((self._now - due) // every + 1)
            call.announce_timer = self._timers.schedule(due, AcdEngine._announce, call)

    def _leave_line(self, call: CallEntry) -> None:
        self._lines.leave(call)
        for timer in (call.relax_timer, call.max_wait_timer, call.announce_timer, call.retry_timer):
            self._timers.cancel(timer)
        call.relax_timer = call.max_wait_timer = call.announce_timer = call.retry_timer = None

    def _to_fallback(self, call: CallEntry, from_queue: str, fallback: Fallback, reason: OverflowReason,
                     visited: frozenset[str]) -> None:
        """Send a live call (already out of any line) to ``fallback``."""
        target = None
        if fallback.kind == "queue":
            target = self._lines.queues.get(fallback.target or "")
            if target is None or target.name in visited:
                fallback, target = DEAD_END, None
        self._publish(Overflowed(call.call_id, from_queue, fallback, reason, self._now))
        if target is not None:
            self._admit(call, target, overflowed_from=from_queue, visited=visited)
        else:
            self._lines.forget(call)
            self._actions.append(Overflow(call.call_id, fallback))

    def _waiting_entry(self, call_id: str) -> CallEntry:
        """The entry a supervisor's request is about: in line, and neither connected nor being dialed."""
        call = self._lines.calls.get(call_id)
        if call is None:
            raise UnknownCall(f"no call {call_id!r} in the ACD")
        if call.status not in (CallStatus.IN_LINE, CallStatus.RETRY_WAIT):
            raise NotWaiting(f"call {call_id!r} is not waiting in a queue ({call.status.value})")
        return call

    def _priority_changed(self, event: CallPriorityChanged) -> None:
        """The entry takes its place by the new priority; offers ringing go on, timers are kept."""
        call = self._waiting_entry(event.call_id)
        if event.priority == call.priority:
            return
        line = self._lines.queues[call.queue]
        self._lines.leave(call)
        call.set_priority(event.priority)
        self._lines.enter(call, line)
        self._lines.sync_bucket(call)
        self._publish(Queued(call.call_id, line.name, call.priority, call.enqueued_at, line.position(call.key),
                             self._now, channel=call.channel))

    def _call_moved(self, event: CallMoved) -> None:
        """Offers ringing are cancelled; the entry enters the target queue as if it had
        overflowed there (its timers count from now), except that ``max_size`` does not
        refuse a supervisor. A callback waiting out a retry delay may be dialed at once."""
        call = self._waiting_entry(event.call_id)
        target = self._lines.queues.get(event.queue)
        if target is None:
            raise UnknownQueue(f"no queue {event.queue!r}")
        if target.name == call.queue:
            return
        moved_from = call.queue
        self._drop_all_offers(call, Reason.OFFER_CANCELLED)
        self._leave_line(call)
        self._enter_line(call, target)
        self._publish(Queued(call.call_id, target.name, call.priority, call.enqueued_at, target.position(call.key),
                             self._now, moved_from=moved_from, channel=call.channel))

    def _relax(self, call: CallEntry) -> None:
        line = self._lines.queues[call.queue]
        call.level = line.level_at(call.entered_at, self._now)
        call.relax_timer = None
        if call.level < len(line.config.relax):
            due = call.entered_at + line.config.relax[call.level].after
            call.relax_timer = self._timers.schedule(due, AcdEngine._relax, call)
        self._lines.sync_bucket(call)

    def _max_wait(self, call: CallEntry) -> None:
        """Max wait: the call leaves to ``on_timeout``; a call ringing an agent finishes its
        offer first (cancelling a ring the agent may be answering would race the answer)."""
        call.max_wait_timer = None
        if call.offers:
            call.timed_out = True
            self._lines.sync_bucket(call)
            return
        self._time_out(call)

    def _time_out(self, call: CallEntry) -> None:
        line = self._lines.queues[call.queue]
        self._leave_line(call)
        self._to_fallback(call, line.name, line.config.on_timeout, "timeout", visited=frozenset({line.name}))

    def _announce(self, call: CallEntry) -> None:
        line = self._lines.queues[call.queue]
        every = line.config.announce_every
        assert every is not None and call.announce_timer is not None
        self._timers.reschedule(call.announce_timer, self._now + every)
        if call.offers:
            return  # ringing an agent: do not talk over the bridge about to happen
        position = line.position(call.key)
        self._actions.append(Announce(call.call_id, position, self._estimated_wait(line, position)))

    def _estimated_wait(self, line: QueueLine, position: int) -> float | None:
        """Average handle time x position / agents staffed with the queue's skill."""
        aht = line.counters.average_handle_time
        staffed = self._agents.staffed(line.config.queue_skill)
        if aht is None or staffed == 0:
            return None
        return aht * position / staffed

    def _caller_hung_up(self, event: CallerHungUp) -> None:
        call = self._lines.calls.get(event.call_id)
        if call is None:
            return
        if call.status is CallStatus.CONNECTED:
            self._end_connected(call)
            return
        line = self._lines.queues[call.queue]
        self._drop_all_offers(call, Reason.OFFER_CANCELLED)
        self._leave_line(call)
        self._lines.forget(call)
        if call.is_callback:
            self._publish(CallbackGaveUp(call.call_id, line.name, call.attempts, "cancelled", self._now))
        else:
            line.counters.abandoned += 1
            self._publish(Abandoned(call.call_id, line.name, self._now - call.enqueued_at, self._now, call.channel))

    # -- offers ------------------------------------------------------------------------------------

    def _offer(self, call: CallEntry, agents: list[AgentRecord]) -> None:
        line = self._lines.queues[call.queue]
        if line.config.strategy is Strategy.ROUND_ROBIN:
            line.rr_cursor = agents[-1].agent_id
        if call.is_callback:
            agent = agents[0]
            assert call.callback_number is not None
            call.status = CallStatus.DIALING
            call.offers[agent.agent_id] = None
            self._lines.sync_bucket(call)
            agent.call_id = call.call_id
            self._agents.change(agent, AgentState.RESERVED, Reason.CALLBACK, self._now)
            self._actions.append(DialCallback(call.call_id, agent.agent_id, call.callback_number))
            self._publish(Offered(call.call_id, agent.agent_id, line.name, self._now, callback=True))
            return
        due = self._now + line.config.ring_timeout
        if call.is_chat:  # one agent, who stays available
            agent_id = agents[0].agent_id
            call.offers[agent_id] = self._timers.schedule(due, AcdEngine._ring_timeout, call, agent_id)
            self._agents.offer_chat(agents[0], call.call_id)
            self._actions.append(Offer(call.call_id, agent_id, "chat"))
            self._publish(Offered(call.call_id, agent_id, line.name, self._now, channel="chat"))
            self._lines.sync_bucket(call)
            return
        for agent in agents:
            agent_id = agent.agent_id
            call.offers[agent_id] = self._timers.schedule(due, AcdEngine._ring_timeout, call, agent_id)
            agent.call_id = call.call_id
            self._agents.change(agent, AgentState.RESERVED, Reason.OFFER, self._now)
            self._actions.append(Offer(call.call_id, agent_id))
            self._publish(Offered(call.call_id, agent_id, line.name, self._now))
        self._lines.sync_bucket(call)

    def _hold_offer(self, call_id: str, agent_id: str) -> bool:
        """Whether the offer is live; if so its ring timeout is disarmed: an answer to a live
        offer wins over its ring timeout, even one due by the answer's time (the adapter
        was never told to stop ringing)."""
        call = self._lines.calls.get(call_id)
        if call is None or call.status is not CallStatus.IN_LINE or agent_id not in call.offers:
            return False
        self._timers.cancel(call.offers[agent_id])
        call.offers[agent_id] = None
        return True

    def _ring_timeout(self, call: CallEntry, agent_id: str) -> None:
        if agent_id in call.offers:
            self._drop_offer(call, agent_id, Reason.MISSED, cancel=True)
            self._back_in_line(call)

    def _offer_failed(self, event: OfferFailed) -> None:
        call = self._lines.calls.get(event.call_id)
        if call is None or call.status is not CallStatus.IN_LINE or event.agent_id not in call.offers:
            return  # stale: the offer had already ended
        if event.reason == "unreachable":
            agent = self._agents.get(event.agent_id)
            assert agent is not None, "removing an agent ends its offers"
            self._agents.set_reachable(agent, False)
            self._drop_offer(call, event.agent_id, Reason.UNREACHABLE)
            self._withdraw_chat_offers(agent)
        else:
            self._drop_offer(call, event.agent_id, Reason.MISSED)
        self._back_in_line(call)

    def _offer_accepted(self, event: OfferAccepted) -> None:
        """For a live offer (``handle`` held it; no timer ends another agent's offer)."""
        call = self._lines.calls[event.call_id]
        agent = self._agents.get(event.agent_id)
        assert agent is not None, "removing an agent ends its offers"
        del call.offers[event.agent_id]
        self._drop_all_offers(call, Reason.OFFER_CANCELLED)
        self._connect(call, agent)

    def _drop_offer(self, call: CallEntry, agent_id: str, reason: Reason, *, cancel: bool = False) -> None:
        """End one offer (or callback reservation); the agent goes to break ``missed`` for
        ``MISSED``, else back to available (either way to a break/offline asked for meanwhile).
        A chat's agent was available: a miss sends them to break, their other chat offers
        are withdrawn; otherwise only the slot is freed."""
        self._timers.cancel(call.offers.pop(agent_id))
        if cancel:
            self._actions.append(CancelOffer(call.call_id, agent_id))
        agent = self._agents.get(agent_id)
        if agent is None:  # being removed
            return
        if call.is_chat:
            self._agents.drop_chat(agent, call.call_id)
            if reason is Reason.MISSED:
                assert agent.state is AgentState.AVAILABLE, "chat offers ring only available agents"
                self._agents.change(agent, AgentState.BREAK, reason, self._now)
                self._withdraw_chat_offers(agent)
            return
        assert agent.state is AgentState.RESERVED and agent.call_id == call.call_id
        agent.call_id = None
        if reason is Reason.MISSED:
            self._end_work(agent, AgentState.BREAK, reason)
        else:
            self._end_work(agent, AgentState.AVAILABLE, reason)

    def _drop_all_offers(self, call: CallEntry, reason: Reason) -> None:
        for agent_id in list(call.offers):
            self._drop_offer(call, agent_id, reason, cancel=True)

    def _withdraw_chat_offers(self, agent: AgentRecord) -> None:
        """The agent left ``available`` or routing (break, offline, unreachable, removed):
        the chats ringing them are cancelled and take their places again (no fault of theirs).
        An offer being answered (``handle`` holds it while timers due by the answer fire, one
        of which may send the agent to a ``missed`` break) is left to connect."""
        for call_id in sorted(agent.chat_offers):
            call = self._lines.calls[call_id]
            if call.offers[agent.agent_id] is None:
                continue
            self._drop_offer(call, agent.agent_id, Reason.OFFER_CANCELLED, cancel=True)
            self._back_in_line(call)

    def _back_in_line(self, call: CallEntry) -> None:
        """After an offer ended without an answer: the entry takes its place again (or
        overflows, if max wait passed while it rang)."""
        if call.status is CallStatus.DIALING:
            call.status = CallStatus.IN_LINE
        if call.status is not CallStatus.IN_LINE:
            return
        if call.timed_out and not call.offers:
            self._time_out(call)
        else:
            self._lines.sync_bucket(call)

    def _connect(self, call: CallEntry, agent: AgentRecord) -> None:
        """A call: the agent goes on_call. A chat: the agent keeps their state, the chat its slot."""
        line = self._lines.queues[call.queue]
        self._leave_line(call)
        call.status = CallStatus.CONNECTED
        call.agent_id = agent.agent_id
        call.answered_at = self._now
        wait = self._now - call.enqueued_at
        if call.is_chat:
            self._agents.connect_chat(agent, call.call_id, self._now)
        else:
            call.wrapup = line.config.wrapup
            agent.call_id = call.call_id
            agent.calls_today += 1
            self._agents.change(agent, AgentState.ON_CALL, Reason.ANSWERED, self._now)
            if call.is_callback:
                self._publish(CallbackCompleted(call.call_id, agent.agent_id, line.name, wait, call.attempts + 1,
                                                self._now))
                return
        line.counters.answered += 1
        if wait <= line.config.sl_threshold:
            line.counters.answered_within_sl += 1
        self._publish(Answered(call.call_id, agent.agent_id, line.name, wait, self._now, call.channel))

    # -- the end of a call and wrap-up --------------------------------------------------------------

    def _call_ended(self, event: CallEnded) -> None:
        call = self._lines.calls.get(event.call_id)
        if call is None:
            return
        if call.status is CallStatus.CONNECTED:
            self._end_connected(call)
        else:  # ended before anyone answered: the caller left
            self._caller_hung_up(CallerHungUp(event.call_id, event.at))

    def _end_connected(self, call: CallEntry) -> None:
        self._lines.forget(call)
        assert call.answered_at is not None
        line = self._lines.queues.get(call.queue)
        if line is not None:
            line.counters.record_handle_time(self._now - call.answered_at + call.wrapup)
        agent = self._agents.get(call.agent_id or "")
        if call.is_chat:  # no wrap-up: the slot is free at once
            if agent is not None and call.call_id in agent.chats:
                self._agents.drop_chat(agent, call.call_id)
            return
        if agent is None or agent.call_id != call.call_id or agent.state is not AgentState.ON_CALL:
            return
        if call.wrapup > 0:
            self._agents.change(agent, AgentState.WRAP_UP, Reason.CALL_ENDED, self._now)
            agent.wrapup_timer = self._timers.schedule(self._now + call.wrapup, AcdEngine._end_wrap_up, agent)
        else:
            agent.call_id = None
            self._end_work(agent, AgentState.AVAILABLE, Reason.CALL_ENDED)

    def _wrap_up_ended(self, event: WrapUpEnded) -> None:
        agent = self._agents.get(event.agent_id)
        if agent is not None and agent.state is AgentState.WRAP_UP:
            self._end_wrap_up(agent)

    def _end_wrap_up(self, agent: AgentRecord) -> None:
        self._timers.cancel(agent.wrapup_timer)
        agent.wrapup_timer = None
        agent.call_id = None
        self._end_work(agent, AgentState.AVAILABLE, Reason.WRAP_UP_DONE)

    def _end_work(self, agent: AgentRecord, state: AgentState, reason: str | None) -> None:
        """The agent's call work is over: to ``state``, or to what they asked for meanwhile."""
        if agent.pending is not None:
            (state, reason), agent.pending = agent.pending, None
        self._agents.change(agent, state, reason, self._now)

    # -- agents ---------------------------------------------------------------------------------------

    def _state_requested(self, event: AgentStateRequested) -> None:
        """``available`` while busy cancels an earlier break/offline request (and ends
        wrap-up); break/offline while busy is remembered and applied when the work ends."""
        agent = self._agents.get(event.agent_id)
        if agent is None:
            return
        state = AgentState(event.state)
        if agent.state not in BUSY_STATES:  # chats are not busy work: they stay with the agent
            if not (state is AgentState.AVAILABLE and agent.state is AgentState.AVAILABLE):
                self._agents.change(agent, state, event.reason, self._now)
                if state is not AgentState.AVAILABLE:
                    self._withdraw_chat_offers(agent)
            return
        if state is not AgentState.AVAILABLE:
            agent.pending = (state, event.reason)
            return
        agent.pending = None
        if agent.state is AgentState.WRAP_UP:
            self._end_wrap_up(agent)

    def _device_changed(self, event: AgentDeviceChanged) -> None:
        """An unreachable device takes the agent out of routing; a call ringing it is
        cancelled and goes back in line (a callback being dialed for it too), and so are the
        chats ringing it (connected chats stay)."""
        agent = self._agents.get(event.agent_id)
        if agent is None:
            return
        self._agents.set_reachable(agent, event.reachable)
        if event.reachable:
            return
        self._withdraw_chat_offers(agent)
        if agent.state is not AgentState.RESERVED:
            return
        assert agent.call_id is not None
        call = self._lines.calls[agent.call_id]
        self._drop_offer(call, agent.agent_id, Reason.UNREACHABLE, cancel=True)
        self._back_in_line(call)

    # -- callbacks ------------------------------------------------------------------------------------

    def _callback_requested(self, event: CallbackRequested) -> None:
        call = self._lines.calls.get(event.call_id)
        if call is None or call.is_callback or call.is_chat or call.status is not CallStatus.IN_LINE:
            return
        self._drop_all_offers(call, Reason.OFFER_CANCELLED)
        for timer in (call.max_wait_timer, call.announce_timer):
            self._timers.cancel(timer)
        call.max_wait_timer = call.announce_timer = None
        call.timed_out = False
        call.callback_number = event.number
        self._publish(CallbackScheduled(call.call_id, call.queue, event.number, self._now))
        self._lines.unbucket(call)  # routed again, in its place, as a callback
        self._lines.sync_bucket(call)

    def _callback_answered(self, event: CallbackAnswered) -> None:
        call = self._lines.calls.get(event.call_id)
        if call is None or call.status is not CallStatus.DIALING:
            return
        agent = self._agents.get(next(iter(call.offers)))
        assert agent is not None, "removing an agent ends its callback reservation"
        call.offers.clear()
        self._connect(call, agent)

    def _callback_failed(self, event: CallbackFailed) -> None:
        call = self._lines.calls.get(event.call_id)
        if call is None or call.status is not CallStatus.DIALING:
            return
        self._drop_all_offers_quietly(call)
        call.attempts += 1
        line = self._lines.queues[call.queue]
        if call.attempts > line.config.callback_retries:
            self._leave_line(call)
            self._lines.forget(call)
            self._publish(CallbackGaveUp(call.call_id, line.name, call.attempts, "retries_exhausted", self._now))
            return
        delay = line.config.callback_retry_delay
        call.retry_at = self._now + delay
        self._publish(CallbackRetryScheduled(call.call_id, line.name, call.attempts, call.retry_at, self._now))
        if delay == 0:
            self._retry_callback(call)
        else:
            call.status = CallStatus.RETRY_WAIT
            call.retry_timer = self._timers.schedule(call.retry_at, AcdEngine._retry_callback, call)

    def _drop_all_offers_quietly(self, call: CallEntry) -> None:
        """Release the agent of a failed callback dial (the adapter knows; no CancelOffer)."""
        for agent_id in list(call.offers):
            self._drop_offer(call, agent_id, Reason.CALLBACK_FAILED)

    def _retry_callback(self, call: CallEntry) -> None:
        call.retry_timer = None
        call.retry_at = None
        call.status = CallStatus.IN_LINE
        self._lines.sync_bucket(call)

    # -- routing ------------------------------------------------------------------------------------

    def _route(self) -> None:
        """Match what changed: newly free agents take their best call first (so no call is
        passed over for a later one), then newly offerable calls pick among the free
        agents by their queue's strategy."""
        agents, calls = self._agents, self._lines
        while agents.dirty or calls.dirty:
            dirty_agents = sorted((a for a in map(agents.get, agents.dirty) if a is not None),
                                  key=lambda a: (a.last_idle, a.agent_id))
            agents.dirty.clear()
            for agent in dirty_agents:
                if agent.chat_capacity and agent.agent_id in agents.chat_available:
                    self._serve_chat_agent(agent)
                elif agent.agent_id in agents.available:
                    call = calls.best_call_for(agent.skills)
                    if call is not None:
                        self._offer(call, [agent])
            dirty_calls = sorted((c for c in map(calls.calls.get, calls.dirty) if c is not None),
                                 key=lambda c: c.key)
            calls.dirty.clear()
            for call in dirty_calls:
                if call.bucket is not None:
                    self._offer_to_free_agents(call, call.bucket.line, call.bucket.requirement)

    def _serve_chat_agent(self, agent: AgentRecord) -> None:
        """An agent free for chats (and maybe for calls) takes the best entry they may take,
        chat or call, as long as they are free for one."""
        agents, lines = self._agents, self._lines
        while True:
            best = lines.best_chat_for(agent.skills) if agent.agent_id in agents.chat_available else None
            if agent.agent_id in agents.available:
                call = lines.best_call_for(agent.skills)
                if call is not None and (best is None or call.key < best.key):
                    best = call
            if best is None:
                return
            self._offer(best, [agent])

    def _offer_to_free_agents(self, call: CallEntry, line: QueueLine, requirement: dict[str, int]) -> None:
        strategy = line.config.strategy
        if (call.is_callback or call.is_chat) and strategy is Strategy.RING_ALL:
            strategy = Strategy.LONGEST_IDLE  # one agent dials a callback, or takes a chat
        index = self._agents.chat_available if call.is_chat else self._agents.available
        ids = index.pick(strategy, line.config.queue_skill, requirement, line.rr_cursor)
        agents = [agent for agent in map(self._agents.get, ids) if agent is not None]
        if agents:
            self._offer(call, agents)

    # -- queries ---------------------------------------------------------------------------------------

    def agent_state(self, agent_id: str) -> AgentState:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise KeyError(agent_id)
        return agent.state

    def agents(self) -> list[AgentView]:
        return [AgentView(a.agent_id, a.state, a.reason, a.since, a.call_id, a.reachable,
                          a.pending[0] if a.pending else None, tuple(sorted(a.chats | a.chat_offers)),
                          a.chat_capacity) for a in self._agents]

    def members(self, queue: str) -> frozenset[str]:
        """The agents with the queue's skill (whatever their state)."""
        line = self._lines.queues.get(queue)
        return frozenset(self._agents.members(line.config.queue_skill)) if line is not None else frozenset()

    def waiting(self, queue: str | None = None) -> list[WaitingView]:
        """Entries in line (ringing, dialed and retrying callbacks included), in order per queue."""
        lines = [self._lines.queues[queue]] if queue is not None else list(self._lines.queues.values())
        return [self._view(call, position) for line in lines
                for position, call in enumerate(self._lines.entries(line), start=1)]

    def waiting_call(self, call_id: str) -> WaitingView:
        """One entry in line; raises ``UnknownCall``, or ``NotWaiting`` for a connected call."""
        call = self._lines.calls.get(call_id)
        if call is None:
            raise UnknownCall(f"no call {call_id!r} in the ACD")
        if call.status is CallStatus.CONNECTED:
            raise NotWaiting(f"call {call_id!r} is connected to an agent")
        return self._view(call, self._lines.queues[call.queue].position(call.key))

    @staticmethod
    def _view(call: CallEntry, position: int) -> WaitingView:
        return WaitingView(call.call_id, call.queue, call.priority, call.enqueued_at, position, call.is_callback,
                           tuple(call.offers), call.retry_at, call.channel)

    def queue_stats(self, queue: str, now: float) -> QueueStats:
        line = self._lines.queues[queue]
        entries = list(self._lines.entries(line))
        live = [c for c in entries if not c.is_callback and not c.is_chat]
        chats = [c for c in entries if c.is_chat]
        by_state = dict.fromkeys(AgentState, 0)
        for agent_id in self._agents.members(line.config.queue_skill):
            agent = self._agents.get(agent_id)
            if agent is not None:
                by_state[agent.state] += 1
        counters = line.counters
        handled = counters.answered + counters.abandoned
        return QueueStats(
            queue=queue,
            waiting=len(live),
            callbacks=len(line) - len(live) - len(chats),
            longest_wait=max(now - min(c.enqueued_at for c in live), 0.0) if live else None,
            agents=by_state,
            answered=counters.answered,
            abandoned=counters.abandoned,
            answered_within_sl=counters.answered_within_sl,
            service_level=counters.answered_within_sl / handled if handled else None,
            average_handle_time=counters.average_handle_time,
            waiting_chats=len(chats),
            longest_chat_wait=max(now - min(c.enqueued_at for c in chats), 0.0) if chats else None,
        )

    # -- restart and takeover ------------------------------------------------------------------------

    def snapshot(self, *, live: bool = False) -> dict[str, Any]:
        """The engine's state as a JSON-serialisable dict.

        By default what survives a restart (for ``restore``): queues, agents (their chat
        capacity, not their chats), callbacks, cursors, today's counters and the chat policy;
        live calls and chats are left out, they die with the process.

        ``live=True``: everything (for ``restore_live``, a new owner node taking the engine
        over): every call in every state with its offers, agents exactly as they are, every
        pending timer at its due time, sequence numbers, cursors, counters, and the actions
        and events not handed out yet. Take it between inputs (the adapter's work for the
        actions returned so far is its own). Its ``kind`` is ``"live"``, its ``format`` 1."""
        if live:
            return live_snap.dump(now=self._now, next_seq=self._next_seq, lines=self._lines, agents=self._agents,
                                  timers=self._timers, timer_kinds=TIMER_KINDS, actions=self._actions,
                                  events=self._events)
        return snap.dump(self._now, self._next_seq, self._lines, self._agents)

    @classmethod
    def restore(cls, snapshot: dict[str, Any], now: float, *,
                on_event: Callable[[AcdEvent], None] | None = None) -> AcdEngine:
        """An engine from ``snapshot`` at ``now``, after a restart. Work that belonged to the
        dead process is released: reserved, on_call and wrap_up agents become available
        (reason ``restart``), or take the break/offline they had asked for; callbacks resume
        in their original order. Call ``advance(now)`` (``next_deadline`` says so) to route
        them. A live snapshot is taken as its restart part (its live calls died too).

        Raises ``ValueError`` for a snapshot of an unknown kind or format."""
        if snapshot.get("kind") == live_snap.KIND:
            snapshot = cls.restore_live(snapshot).snapshot()
        state = snap.load(snapshot, now)
        engine = cls(on_event=on_event, calls_while_chatting=state.calls_while_chatting)
        engine._now = now
        engine._next_seq = state.next_seq
        for config, counters, cursor in state.queues:
            line = QueueLine(config)
            line.counters, line.rr_cursor = counters, cursor
            engine._lines.install(line)
        for agent in state.agents:
            if agent.state in BUSY_STATES:
                old = agent.state
                agent.call_id, agent.since, agent.last_idle = None, now, now
                agent.state, agent.reason = agent.pending or (AgentState.AVAILABLE, Reason.RESTART)
                agent.pending = None
                engine._publish(AgentStateChanged(agent.agent_id, old, agent.state, agent.reason, now))
            engine._agents.add(agent)
        for call in state.callbacks:
            if call.retry_at is not None and call.retry_at > now:
                call.status = CallStatus.RETRY_WAIT
                call.retry_timer = engine._timers.schedule(call.retry_at, AcdEngine._retry_callback, call)
            else:
                call.retry_at = None
            engine._place_in_line(call, engine._lines.queues[call.queue])
        engine._deliver_events()
        return engine

    @classmethod
    def restore_live(cls, snapshot: dict[str, Any], *,
                     on_event: Callable[[AcdEvent], None] | None = None) -> AcdEngine:
        """The engine a live snapshot (``snapshot(live=True)``) was taken of, exactly: fed
        the same inputs from then on, it returns the same actions, publishes the same events
        and answers the same views as the original would have.

        Nothing is published on restore and no time is shifted: ``now`` is the snapshot's.
        At a later time, timers already due fire at the next ``handle`` or ``advance`` (at
        their own due times); ``next_deadline`` says when. Raises ``ValueError`` for a
        restart snapshot, an unknown kind or format, or a malformed snapshot."""
        engine = cls(on_event=on_event)
        outbox = live_snap.load(snapshot, lines=engine._lines, agents=engine._agents, timers=engine._timers,
                                timer_kinds=TIMER_KINDS)
        engine._now, engine._next_seq = outbox.now, outbox.next_seq
        engine._actions.extend(outbox.actions)
        engine._events.extend(outbox.events)
        return engine

    # -- helpers ------------------------------------------------------------------------------------

    def _take_seq(self) -> int:
        self._next_seq += 1
        return self._next_seq

    def _publish(self, event: AcdEvent) -> None:
        self._events.append(event)


TIMER_KINDS: dict[str, Callable[..., None]] = {
    "relax": AcdEngine._relax,
    "max_wait": AcdEngine._max_wait,
    "announce": AcdEngine._announce,
    "ring_timeout": AcdEngine._ring_timeout,
    "wrap_up_end": AcdEngine._end_wrap_up,
    "callback_retry": AcdEngine._retry_callback,
}
"""Every function the engine's timers fire, by the name a live snapshot gives it."""
