"""The ACD: which agent gets which call (or web chat). Pure Python, sans-I/O: events and time come in
(``AcdEngine.handle``, ``advance``), actions come out; the adapter owns sockets, the
database and the clock (``next_deadline`` says when to call ``advance``).

Modules: ``model`` (queue and agent configuration, states), ``events`` (inputs),
``actions`` (outputs), ``bus_events`` (what is published to ``on_event``), ``views`` (query
answers), ``engine`` (the state machine), with ``agent_pool``, ``available_index``,
``queue_lines``, ``calls``, ``timers``, ``snapshot``, ``live_snapshot`` and ``sorted_list``
behind it.

Rules
=====

Order. A call is served before another if it has a higher priority (0-99), then if it was
enqueued earlier (its original enqueue time: a callback and a call overflowed to another
queue keep theirs), then if it arrived first. An agent who becomes free takes the first
call in that order among all the queues whose skill (or relaxed-in skill) the agent has at
the proficiency the call needs at that moment. Within one priority a call is never passed
over for a later call the same agent could take; a call that is ringing an agent, a
callback being dialed, and a callback waiting out its retry delay are not takeable, so
they do not hold the line up.

Who gets which call. A call is offered only to an agent who is ``available``, whose device
is reachable, who holds no chat (see Chats), and who has the queue's skill at the queue's ``min_proficiency`` or more, or,
after relaxation steps, at the lowered proficiency or one of the steps' added skills.
Relaxation steps are timers counted from when the call entered its current queue; they
are cumulative (a step never narrows what an earlier one allowed). When several free
agents qualify, the queue's strategy chooses: ``longest_idle`` (the agent available the
longest since their last call, break or login; an offer that ended without a call keeps
the agent's place), ``fewest_calls`` (fewest answered today, then longest idle),
``round_robin`` (the next agent id after the one that got the queue's previous call,
wrapping around), ``most_proficient`` (highest proficiency in the queue's skill, then
longest idle), ``ring_all`` (every qualifying free agent rings; agents who become free while
it rings ring too; the first to accept gets it and the others' offers are cancelled; a
callback in a ring_all queue goes to the longest idle agent). An agent is never offered two
calls at once: an offer reserves the agent (``reserved``), ring_all included. When several
agents become free at the same instant (a restart, a configuration change) they choose in
order of longest idle.

Ringing. An offer rings for the queue's ``ring_timeout``, then the engine cancels it
(``CancelOffer``). After that ring-no-answer, or an ``OfferFailed`` ``declined`` or
``no_answer``, the agent goes to ``break`` with reason ``missed`` and the call, in its
place, goes to the next agent. An offer failing as ``unreachable`` marks the agent's device
unreachable and puts the agent back to available (not routable until
``AgentDeviceChanged(reachable=True)``). A device going unreachable while ringing cancels
that offer the same way. An ``OfferAccepted`` for a live offer always wins, even when the
ring timeout is due by its time; one for an offer that has ended is answered with
``CancelOffer`` (drop that agent's leg).

Agent states. ``offline``, ``available``, ``reserved`` (ringing, or a callback being
dialed), ``on_call``, ``wrap_up`` (the queue's ``wrapup`` seconds after the call, or until
``WrapUpEnded``; none when ``wrapup`` is 0), ``break`` (with a reason code). Agents are
added offline and reachable. While an agent is reserved, on_call or in wrap-up, a request
for ``break`` or ``offline`` is remembered and applied when the work ends (instead of
available, or of the ``missed`` break); a request for ``available`` cancels such a
remembered request and, in wrap-up, ends the wrap-up. Every change publishes
``AgentStateChanged`` (``bus_events.Reason`` lists the engine's own reasons; requests carry
theirs).

Queue limits. A call arriving at a queue holding ``max_size`` entries (live calls and
callbacks) goes straight to ``on_full``. A live call that has waited ``max_wait`` seconds in
its queue goes to ``on_timeout``; if it is ringing an agent at that moment, the offer
finishes first (answered: served; otherwise it overflows then, and rings nobody new
meanwhile). Callbacks have no max wait and get no announcements. A fallback of kind
``queue`` re-queues the call in the target queue with its original enqueue time and
priority (``Overflowed`` then ``Queued`` are published, no action); a missing target, or
one that leads back to a queue the call just overflowed from, becomes ``hangup``. A call
for an unknown queue gets ``Overflow(hangup)``. Removing a queue cancels the offers ringing
for its calls, sends its live calls to its ``on_timeout`` and moves its callbacks to the
fallback queue if it is one (else they are given up).

Announcements. Every ``announce_every`` seconds in a queue a live call gets ``Announce``
with its 1-based position in the queue's line and an estimated wait: average handle time
(talk time plus the queue's wrap-up, exponentially weighted) x position / agents staffed
with the queue's skill (available, reserved, on_call or wrap_up); None without history or
staff. A call ringing an agent is not announced to.

Callbacks. ``CallbackRequested`` turns a waiting call into a callback entry in the same
place (priority, original enqueue time); ringing offers are cancelled. When the entry is the
best call for a free agent, the agent is reserved and ``DialCallback`` is emitted.
``CallbackAnswered`` puts the agent on_call (the call then ends with ``CallEnded``);
``CallbackFailed`` releases the agent (back to available, keeping their idle place) and
the entry waits ``callback_retry_delay`` out of line, keeping its place, up to
``callback_retries`` retries; then it is given up (``CallbackGaveUp``).
``CallerHungUp`` for a callback entry cancels it.

Chats. A web chat (``CallQueued(channel="chat")``) waits in its queue's line with the
calls, by the same order, and takes part in positions, relaxation, priority and move
requests, ``max_wait`` (``on_timeout``), ``max_size`` (``on_full``) and overflows; it gets no
announcements and cannot become a callback (``CallbackRequested`` is ignored). An agent holds
at most ``AgentConfig.chat_capacity`` chats, offered or connected (0: no chats). A chat is
offered only to an agent who is ``available``, reachable and holds fewer chats than their
capacity; a call only to an agent who is ``available``, reachable and holds no chat, or,
with ``calls_while_chatting`` (``AcdEngine(calls_while_chatting=...)``, ``set_chat_policy``),
holds no chat offer still ringing (connected chats are fine: the agent is never rung for a
call and a chat at once). A chat offer (``Offer(channel="chat")``) goes to one agent, ring_all
queues included, and leaves the agent ``available``. Among the agents free for chats the
queue's strategy chooses: ``longest_idle`` (and ``ring_all``) the agent holding the fewest
chats, then the one whose last chat was connected, or who became available, longest ago;
``fewest_calls`` the fewest chats connected today, then as ``longest_idle``;
``most_proficient`` the highest proficiency, then as ``longest_idle``; ``round_robin`` the
next agent id after the one that got the queue's previous call or chat (one rotation per
queue). An agent who becomes free for both takes the first entry in order among the calls
and chats they may take; one free for chats only, the first chat. ``OfferAccepted``
connects the chat (``Answered``; it counts for the queue's service level like a call); the
agent's state does not change. A declined or unanswered chat offer, or its ring timeout,
sends the agent to break ``missed`` and the chat back to its place; ``unreachable`` marks
the device unreachable as for calls. Chat offers ring only while the agent is
``available`` and reachable: a break or offline request, an unreachable device, a miss or the
agent's removal cancels the others (``CancelOffer``; back in line, no fault of the agent's),
except one whose ``OfferAccepted`` is being applied (it wins over a miss due by its time).
Connected chats stay with the agent through a call (with ``calls_while_chatting``), a break,
going offline or an unreachable device; they are not busy work, so a break or offline
request of an agent who only has chats applies at once. ``CallEnded`` (or ``CallerHungUp``)
of a connected chat frees its slot at once (no wrap-up; its handle time counts in the
queue's average); a freed slot takes the best waiting chat. A chat that leaves before an
agent took it is abandoned (``Abandoned(channel="chat")``). A capacity lowered below the
chats held stops new ones until the agent is under it; removing an agent forgets their
chats (their ends are then ignored). ``queue_stats`` counts chats in line apart
(``waiting_chats``); ``waiting`` stays the live calls.

Supervisor requests. ``CallPriorityChanged`` gives an entry in line (a live call, ringing or
not, or a callback not being dialed) a new priority: it takes its place by it, keeping its
original enqueue time; offers ringing and timers go on. ``CallMoved`` sends such an entry to
another queue: offers ringing are cancelled and it enters the target queue with its
priority and original enqueue time, its relaxation, max wait and announcements counting from
the move (as after an overflow; ``max_size`` does not refuse a supervisor, and a callback
waiting out a retry delay may be dialed at once). Either publishes ``Queued`` with the new
position (``moved_from`` after a move); asking for what the entry already has changes
nothing. Unlike the adapter's reports, a request that does not fit is refused: ``handle``
raises a ``RequestRefused`` (``UnknownCall``, ``NotWaiting`` for a call connected or a callback
being dialed, ``UnknownQueue``) and the request changes nothing (timers due by its time have
fired: ``next_deadline`` then asks for an ``advance`` at once, which returns their actions).

Statistics. "Today" runs from ``reset_day``. A queue counts a live call or chat answered
from it (and whether within ``sl_threshold`` of the original enqueue time) and a caller (or
visitor) who left while in it; service level = answered within the threshold / (answered +
abandoned). Callbacks and overflows count in neither.

Restart. ``snapshot()`` keeps queues, agents (state, reason, since, calls and chats today,
last idle, device, remembered request, chat capacity), callback entries with their place and
retry counters, round-robin cursors, today's counters and the chat policy; live calls and
chats die with the process (agents come back without chats).
``AcdEngine.restore(snapshot, now)`` puts agents who were reserved, on_call or in wrap-up
back to available (reason ``restart``) or to the break/offline they had asked for, keeps
the others, and resumes callbacks in their original order (one being dialed is back in
line, without an attempt counted). Call ``advance(now)`` to route them. A live snapshot
given to ``restore`` is taken as its restart part.

Takeover. ``snapshot(live=True)`` keeps everything (``kind`` ``live``): every call and chat in
every state with its offers, agents exactly as they are (chats included), every pending timer at its due time,
sequence numbers, cursors, counters, and actions and events not handed out yet.
``AcdEngine.restore_live(snapshot)`` is then the same engine: fed the same inputs, it
returns the same actions, publishes the same events and answers the same views. Nothing is
published or shifted on restore; timers that fell due meanwhile fire at the next input or
``advance``, at their own due times. For a new owner node taking over a tenant's engine.

Configuration. ``set_queue`` (add or change, live: waiting calls move to the new rules),
``remove_queue``, ``set_agent`` (agents are added offline; skills change live, an offer
already ringing continues) and
``remove_agent`` (an offer ringing them is cancelled) return actions like ``handle``.

Inputs that do not fit the state (supervisor requests apart) are ignored: an unknown agent or call, a second
``CallQueued`` for a call the engine holds, ``OfferFailed`` for an offer that has ended,
``WrapUpEnded`` outside wrap-up, a callback result for an entry not being dialed.
``CallEnded`` for a call still in line counts as the caller hanging up, ``CallerHungUp`` on
a bridged call as its end.

Time. Inputs carry ``at`` on the adapter's monotonic timeline; an input older than the
engine's time counts as now. Timers due at the same instant are applied together before
routing. Events are published to ``on_event`` once an input has been processed, in order.
"""

from .actions import Action, Announce, CancelOffer, DialCallback, Offer, Overflow
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
    Queued,
    Reason,
)
from .engine import AcdEngine
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
    RequestRefused,
    UnknownCall,
    UnknownQueue,
    WrapUpEnded,
)
from .model import (
    AgentConfig,
    AgentState,
    Channel,
    Fallback,
    QueueConfig,
    RelaxStep,
    Strategy,
)
from .views import AgentView, QueueStats, WaitingView

__all__ = [
    "Abandoned", "AcdEngine", "AcdEvent", "Action", "AgentConfig", "AgentDeviceChanged", "AgentState",
    "AgentStateChanged", "AgentStateRequested", "AgentView", "Announce", "Answered", "CallEnded", "CallMoved",
    "CallPriorityChanged", "CallQueued",
    "CallbackAnswered", "CallbackCompleted", "CallbackFailed", "CallbackGaveUp", "CallbackRequested",
    "CallbackRetryScheduled", "CallbackScheduled", "CallerHungUp", "CancelOffer", "Channel", "DialCallback", "Event",
    "Fallback", "NotWaiting", "Offer", "OfferAccepted", "OfferFailed", "Offered", "Overflow", "Overflowed",
    "QueueConfig", "QueueStats", "Queued", "Reason", "RelaxStep", "RequestRefused", "Strategy", "UnknownCall",
    "UnknownQueue", "WaitingView", "WrapUpEnded",
]
