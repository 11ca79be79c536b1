"""The ACD on this node: one sans-I/O ``acd.AcdEngine`` per tenant, connected to calls.

The engine decides; this module carries the decisions out and reports what happened:

* the IVR's ``queue`` node hands a call here (:meth:`AcdService.enqueue`): the caller
  hears hold music and announcements, may press the callback key, and is bridged to
  the agent who answers an offer;
* an offer rings the agent's registered SIP phone (``SipEndpoint.dial_contact``); no
  answer, busy or an unreachable phone is reported back and the call keeps its place;
* a callback reserves an agent, rings the agent, then dials the caller back through
  the tenant's trunks and bridges them;
* agent state changes are stored with time and reason; each tenant's engine state
  (agent states, callbacks) is saved so a restart resumes it.

Engine time is wall-clock seconds (``time.time()``) so snapshots stay meaningful
across a restart; timers are armed on the event loop from ``next_deadline()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from acd import (
    AcdEngine,
    Action,
    AgentConfig,
    AgentDeviceChanged,
    AgentState,
    AgentStateChanged,
    AgentStateRequested,
    AgentView,
    Announce,
    CallbackAnswered,
    CallbackFailed,
    CallbackRequested,
    CallEnded,
    CallerHungUp,
    CallMoved,
    CallPriorityChanged,
    CallQueued,
    CancelOffer,
    DialCallback,
    Fallback,
    Offer,
    OfferAccepted,
    OfferFailed,
    Overflow,
    QueueConfig,
    UnknownCall,
    UnknownQueue,
    WaitingView,
    WrapUpEnded,
)
from callcenter.acd_config import callback_key, queue_config
from callcenter.db_health import OutageNotice, database_unavailable
from callcenter.models import AcdQueue, AcdSnapshot, Agent, AgentStateChange, Tenant, User, utcnow
from ivr.nodes.route import Voicemail
from ivr.prompts import PromptLibrary
from ivr.runtime import FlowRun
from ivr.schema import Prompt, VoicemailNode
from sip_bridge.call import Call, CallError, DialError
from sip_bridge.conference import Conference
from sip_bridge.endpoint import SipEndpoint
from sip_bridge.registrar import AgentCredentials

logger = logging.getLogger(__name__)

SNAPSHOT_EVERY = 1.0
"""Seconds between saves of a changed tenant's ACD state."""
MAX_UNSAVED_HISTORY = 100_000
"""Agent state changes kept for saving while the database is unavailable; beyond it the oldest go."""


@dataclass
class AgentIdentity:
    tenant_id: int
    agent_id: str
    username: str
    sip_user: str
    ha1: str | None
    #: The agent's phone must use TLS / be offered SRTP only (see ``AgentCredentials``).
    require_tls: bool = False
    require_srtp: bool = False


@dataclass
class TenantConfig:
    """What the database holds for one tenant's ACD."""

    tenant_id: int
    queues: list[QueueConfig] = field(default_factory=list)
    callback_keys: dict[str, str | None] = field(default_factory=dict)
    agents: list[tuple[AgentConfig, AgentIdentity]] = field(default_factory=list)
    snapshot: dict[str, Any] | None = None


@dataclass
class Waiting:
    """A caller in a queue on this node."""

    tenant_id: int
    call: Call
    run: FlowRun
    queue: str
    done: asyncio.Future[str | None]
    rings: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    announcements: asyncio.Queue[Path] = field(default_factory=asyncio.Queue)
    agent_leg: Call | None = None
    #: hold music and the callback-key watcher, stopped once an agent answers
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    queued_at: float = field(default_factory=time.time)
    #: the queue the call record names: the caller's queue, also while a transfer waits for one agent
    record_queue: str = ""
    #: set when the one waiting is an agent consulting a colleague (``call`` is the agent's leg)
    consult_of: Connection | None = None

    def __post_init__(self) -> None:
        self.record_queue = self.record_queue or self.queue


@dataclass
class Connection:
    """A caller talking to an agent (from the agent's answer until one of them leaves)."""

    tenant_id: int
    agent_id: str
    caller: Call
    agent: Call
    #: the queue entry it was answered from (None: a callback, dialed by the ACD)
    waiting: Waiting | None
    #: set when the caller leaves this agent but stays on the line (a transfer)
    released: asyncio.Future[None]
    hold: asyncio.Task[None] | None = None
    consult: Consult | None = None
    #: a supervisor listening, whispering or barging in (``callcenter.monitoring.Monitor``)
    monitor: Any = None

    @property
    def held(self) -> bool:
        return self.hold is not None


@dataclass
class Consult:
    """The agent talking to a third party while the caller holds (a warm transfer in the making)."""

    kind: str
    target: str
    #: the third party's leg once answered
    leg: Call | None = None
    #: the consulted agent, and the engine's call id that keeps them busy (the consulting agent's leg)
    agent_id: str | None = None
    engine_call_id: str | None = None
    waiting: Waiting | None = None
    dialing: asyncio.Task[None] | None = None
    conference: Conference | None = None

    @property
    def state(self) -> str:
        return "conference" if self.conference else "talking" if self.leg is not None else "dialing"


class TransferError(Exception):
    """A transfer the ACD cannot carry out; the message says why (shown to the agent)."""


BUILTIN_VARIABLES = frozenset({"caller", "dialed", "call_id", "date", "weekday", "hour"})
"""Variables every IVR run starts with: the screen pop shows the caller and queue on their own."""


def _caller_input(event: dict[str, Any]) -> str | None:
    """An IVR trace event as the agent's screen pop words it, or None if it is not the caller's input."""
    kind = event.get("event")
    if kind == "dtmf":
        return f"pressed {event.get('digit')}"
    if kind == "recognition":
        return f"said \u201c{event.get('phrase') or event.get('text')}\u201d"
    if kind == "digits":
        return f"entered {event.get('digits')}"
    return None


def direct_queue(agent_id: str) -> str:
    """The hidden queue of one agent: transfers to that agent wait there."""
    return f"agent:{agent_id}"


def direct_queue_config(agent_id: str) -> QueueConfig:
    return QueueConfig(name=direct_queue(agent_id), skill=direct_queue(agent_id), ring_timeout=20.0,
                       wrapup=30.0, announce_every=None, max_wait=120.0, on_timeout=Fallback("voicemail"))


class AcdService:
    def __init__(self, db: Engine, prompts: PromptLibrary, hold_music: Path, fallback_queue: Any,
                 publish: Callable[[int, Any], None] | None = None, records: Any = None) -> None:
        self.db = db
        #: Set by the node once the SIP endpoint exists (the endpoint's registrar asks this service
        #: for agents' credentials, so the service comes first).
        self.endpoint: SipEndpoint = None  # type: ignore[assignment]
        #: Set by the node: the agents' browser softphones (``softphone_web.SoftphoneService``).
        #: An agent whose softphone is connected is rung there, otherwise on the SIP phone.
        self.softphones: Any = None
        #: The call records (``CallRecordStore``): who answered, from which queue, and the call's events.
        self.records = records
        #: Set by the node: the call recorder (``RecordingService``); None: nothing is recorded.
        self.recordings: Any = None
        self.prompts = prompts
        self.hold_music = hold_music
        #: Where calls for a queue name the tenant has not configured go (hold music).
        self.fallback_queue = fallback_queue
        self.publish = publish or (lambda tenant_id, event: None)
        self.engines: dict[int, AcdEngine] = {}
        self.queues: dict[int, dict[str, QueueConfig]] = {}
        self.agents: dict[str, AgentIdentity] = {}  # by sip_user
        self._by_agent: dict[tuple[int, str], AgentIdentity] = {}
        self.waiting: dict[str, Waiting] = {}
        self.connections: dict[str, Connection] = {}  # by the caller's call id
        #: call_id -> (tenant_id, queue) of the callbacks waiting in line
        self.callbacks: dict[str, tuple[int, str]] = {}
        #: (tenant_id, queue) -> the key a waiting caller presses to be called back (None: no callbacks)
        self.callback_keys: dict[tuple[int, str], str | None] = {}
        self._dirty: set[int] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._saver: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._history: list[dict[str, Any]] = []
        self._unsaved = OutageNotice(logger, "database unavailable: ACD state and agent state changes kept in "
                                             "memory, saved when it is back",
                                     "database available again: ACD state and agent state changes saved")

    # -- start, configuration ----------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        now = time.time()
        for config in await loop.run_in_executor(None, self._load_all):
            self._install(config, now)
        self._saver = loop.create_task(self._save_loop())
        self._arm()

    def _load_all(self) -> list[TenantConfig]:
        """Every tenant's queues, agents and saved state (in a worker thread)."""
        out = []
        with Session(self.db) as db:
            for tenant in db.scalars(select(Tenant)):
                config = TenantConfig(tenant.id)
                for q in db.scalars(select(AcdQueue).where(AcdQueue.tenant_id == tenant.id)):
                    config.queues.append(queue_config(q.name, q.config))
                    config.callback_keys[q.name] = callback_key(q.config)
                for agent, user in db.execute(select(Agent, User).join(User, User.id == Agent.user_id)
                                              .where(Agent.tenant_id == tenant.id, User.active.is_(True))):
                    identity = AgentIdentity(tenant.id, str(agent.id), user.username,
                                             f"{tenant.slug}.{user.username}", agent.sip_ha1,
                                             agent.require_tls, agent.require_srtp)
                    config.agents.append((AgentConfig(str(agent.id), dict(agent.skills)), identity))
                row = db.get(AcdSnapshot, tenant.id)
                config.snapshot = row.snapshot if row is not None else None
                out.append(config)
        return out

    def _install(self, config: TenantConfig, now: float) -> None:
        tenant_id = config.tenant_id

        def on_event(event: Any) -> None:
            self._on_event(tenant_id, event)

        self.engines[tenant_id] = AcdEngine.restore(config.snapshot, now, on_event=on_event) \
            if config.snapshot else AcdEngine(on_event=on_event)
        self._configure(config, now)

    def _configure(self, config: TenantConfig, now: float) -> None:
        tenant_id = config.tenant_id
        engine = self.engines[tenant_id]
        old_queues = self.queues.get(tenant_id, {})
        self.queues[tenant_id] = {q.name: q for q in config.queues}
        self.callback_keys.update({(tenant_id, name): key for name, key in config.callback_keys.items()})
        for name in set(old_queues) - set(self.queues[tenant_id]):
            self._apply(tenant_id, engine.remove_queue(name, at=now))
        for q in config.queues:
            self._apply(tenant_id, engine.set_queue(q, at=now))
        known = {aid for (tid, aid) in self._by_agent if tid == tenant_id}
        registrar = self.endpoint.registrar
        for agent, identity in config.agents:
            hidden = direct_queue(agent.agent_id)
            self._apply(tenant_id, engine.set_queue(direct_queue_config(agent.agent_id), at=now))
            self._apply(tenant_id, engine.set_agent(AgentConfig(agent.agent_id, {**agent.skills, hidden: 1}), at=now))
            self.agents[identity.sip_user] = identity
            self._by_agent[(tenant_id, identity.agent_id)] = identity
            reachable = registrar is not None and registrar.contact_for(identity.sip_user) is not None
            reachable = reachable or self._softphone_online(tenant_id, identity.agent_id)
            self._apply(tenant_id, engine.handle(AgentDeviceChanged(identity.agent_id, reachable, now)))
        for agent_id in known - {a.agent_id for a, _ in config.agents}:
            identity = self._by_agent.pop((tenant_id, agent_id))
            self.agents.pop(identity.sip_user, None)
            self._apply(tenant_id, engine.remove_agent(agent_id, at=now))
            self._apply(tenant_id, engine.remove_queue(direct_queue(agent_id), at=now))

    async def reload(self) -> None:
        """Queues and agents changed in the database (API): apply them to the live engines."""
        now = time.time()
        for config in await asyncio.get_running_loop().run_in_executor(None, self._load_all):
            if config.tenant_id not in self.engines:
                self._install(config, now)
            else:
                self._configure(config, now)
        self._arm()
        logger.info("ACD configuration reloaded: %d agents", len(self.agents))

    # -- directory for the registrar -----------------------------------------------------------
    def credentials(self, sip_user: str) -> AgentCredentials | None:
        """The registrar's AgentDirectory: the phone login of an active agent."""
        identity = self.agents.get(sip_user)
        if identity is None or identity.ha1 is None:
            return None
        return AgentCredentials(sip_user, identity.ha1, identity.tenant_id, identity.agent_id,
                                require_tls=identity.require_tls, require_srtp=identity.require_srtp)

    def device_changed(self, sip_user: str, reachable: bool) -> None:
        """The registrar's on_change: a phone registered, or its last binding went away.

        Registering the phone of an offline agent logs the agent in (available): with a
        desk phone, that is how an agent starts the day.
        """
        identity = self.agents.get(sip_user)
        engine = self.engines.get(identity.tenant_id) if identity is not None else None
        if identity is None or engine is None:
            return
        now = time.time()
        reachable = reachable or self._softphone_online(identity.tenant_id, identity.agent_id)
        self._handle(identity.tenant_id, AgentDeviceChanged(identity.agent_id, reachable, now))
        if reachable and engine.agent_state(identity.agent_id) == AgentState.OFFLINE:
            self._handle(identity.tenant_id, AgentStateRequested(identity.agent_id, "available", now,
                                                                 "phone registered"))

    def softphone_changed(self, tenant_id: int, agent_id: str, online: bool) -> None:
        """The agent's softphone connected, or stayed away beyond its grace period."""
        identity = self._by_agent.get((tenant_id, agent_id))
        registrar = self.endpoint.registrar
        phone = identity is not None and registrar is not None and registrar.contact_for(identity.sip_user) is not None
        self._handle(tenant_id, AgentDeviceChanged(agent_id, online or phone, time.time()))

    def _softphone_online(self, tenant_id: int, agent_id: str) -> bool:
        return self.softphones is not None and self.softphones.online(tenant_id, agent_id)

    def end_wrapup(self, tenant_id: int, agent_id: str) -> None:
        """The agent finished the after-call work (saved a disposition)."""
        self._handle(tenant_id, WrapUpEnded(agent_id, time.time()))

    def queue_settings(self, tenant_id: int, queue: str) -> QueueConfig | None:
        """A queue's configuration, the hidden per-agent queues included."""
        config = self.queues.get(tenant_id, {}).get(queue)
        if config is None and queue.startswith("agent:"):
            config = direct_queue_config(queue.removeprefix("agent:"))
        return config

    def agent_id_of(self, tenant_id: int, username: str) -> str | None:
        return next((identity.agent_id for (tid, _), identity in self._by_agent.items()
                     if tid == tenant_id and identity.username == username), None)

    # -- agents and statistics (API) ---------------------------------------------------------
    def request_state(self, tenant_id: int, agent_id: str, state: Literal["available", "break", "offline"],
                      reason: str | None) -> None:
        self._handle(tenant_id, AgentStateRequested(agent_id, state, time.time(), reason))

    def set_priority(self, tenant_id: int, call_id: str, priority: int) -> WaitingView:
        """A supervisor re-orders a waiting call (or callback); its new place. Raises
        ``RequestRefused`` (``UnknownCall``, ``NotWaiting``)."""
        engine, before = self._supervised(tenant_id, call_id)
        self._request(tenant_id, engine, CallPriorityChanged(call_id, priority, time.time()))
        if priority != before.priority:
            self.record_event(tenant_id, self._record_id(call_id), "priority", None,
                              {"queue": before.queue, "from": before.priority, "to": priority})
        return engine.waiting_call(call_id)

    def move_call(self, tenant_id: int, call_id: str, queue: str) -> WaitingView:
        """A supervisor moves a waiting call (or callback) to another of the tenant's queues;
        its new place. Raises ``RequestRefused`` (``UnknownCall``, ``NotWaiting``, ``UnknownQueue``)."""
        engine, before = self._supervised(tenant_id, call_id)
        if queue not in self.queues.get(tenant_id, {}):
            raise UnknownQueue(f"no queue {queue!r}")  # agents' hidden queues included: not a supervisor's target
        self._request(tenant_id, engine, CallMoved(call_id, queue, time.time()))
        if queue != before.queue:
            waiting = self.waiting.get(call_id)
            if call_id in self.callbacks:  # its Waiting, if still there, is saying goodbye
                self.callbacks[call_id] = (tenant_id, queue)
            elif waiting is not None:
                old_key = self.callback_keys.get((tenant_id, waiting.queue))
                waiting.queue = waiting.record_queue = queue
                if self.callback_keys.get((tenant_id, queue)) != old_key:
                    self._rewatch_keys(waiting)
            self.record_event(tenant_id, self._record_id(call_id), "moved", None,
                              {"from": before.queue, "to": queue})
        return engine.waiting_call(call_id)

    def _supervised(self, tenant_id: int, call_id: str) -> tuple[AcdEngine, WaitingView]:
        """The tenant's engine and the call's place, if in one of the tenant's queues: a call
        waiting for one agent (a transfer, a consult) is not on the wallboard."""
        engine = self.engines.get(tenant_id)
        if engine is None:
            raise UnknownCall(f"no call {call_id!r} in the ACD")
        view = engine.waiting_call(call_id)
        if view.queue not in self.queues.get(tenant_id, {}):
            raise UnknownCall(f"no call {call_id!r} in a queue")
        return engine, view

    def _request(self, tenant_id: int, engine: AcdEngine, event: CallPriorityChanged | CallMoved) -> None:
        try:
            self._apply(tenant_id, engine.handle(event))
        finally:
            self._arm()  # also after a refusal: the timers that fired have actions to collect

    def _record_id(self, call_id: str) -> str:
        """The call record an entry belongs to: a consult's is the customer's call."""
        waiting = self.waiting.get(call_id)
        return waiting.consult_of.caller.id if waiting is not None and waiting.consult_of is not None else call_id

    def _rewatch_keys(self, waiting: Waiting) -> None:
        """The callback key is read once per queue (``_watch_keys``): watch the new queue's."""
        hold, watcher = waiting.tasks  # as _queue_call started them
        watcher.cancel()
        waiting.tasks = [hold, asyncio.get_running_loop().create_task(self._watch_keys(waiting))]

    def engine(self, tenant_id: int) -> AcdEngine | None:
        return self.engines.get(tenant_id)

    def agent_view(self, tenant_id: int, agent_id: str) -> AgentView | None:
        """The agent's live state, or None if the tenant's ACD does not know them."""
        engine = self.engines.get(tenant_id)
        return next((a for a in engine.agents() if a.agent_id == agent_id), None) if engine is not None else None

    # -- the IVR hands calls over here ---------------------------------------------------------
    async def enqueue(self, run: FlowRun, queue: str, priority: int, variables: dict[str, Any]) -> str | None:
        tenant_id = run.tenant_id
        if tenant_id is None or queue not in self.queues.get(tenant_id, {}):
            return await self.fallback_queue.enqueue(run, queue, priority, variables)
        return await self._serve(self._queue_call(tenant_id, run, queue, priority, variables))

    def _queue_call(self, tenant_id: int, run: FlowRun, queue: str, priority: int,
                    variables: dict[str, Any], consult_of: Connection | None = None) -> Waiting:
        call = run.call if consult_of is None else consult_of.agent
        loop = asyncio.get_running_loop()
        waiting = Waiting(tenant_id, call, run, queue, loop.create_future(), consult_of=consult_of)
        self.waiting[call.id] = waiting
        waiting.tasks = [loop.create_task(self._hold(waiting)), loop.create_task(self._watch_keys(waiting))]
        self._handle(tenant_id, CallQueued(call.id, queue, priority, time.time(), caller=call.caller,
                                           variables=variables))
        return waiting

    async def _serve(self, waiting: Waiting) -> str | None:
        """Until the caller is connected (then until the call ends), leaves, or overflows."""
        call, run = waiting.call, waiting.run
        ended = asyncio.ensure_future(call.wait_ended())
        try:
            await asyncio.wait([waiting.done, ended], return_when=asyncio.FIRST_COMPLETED)  # type: ignore[type-var]
            if not waiting.done.done():  # the caller hung up while waiting
                waiting.done.cancel()
                if waiting.agent_leg is None:
                    self._handle(waiting.tenant_id, CallerHungUp(call.id, time.time()))
                    if waiting.consult_of is None:
                        run.record("abandoned", queue=waiting.queue)
                return None
            if waiting.agent_leg is not None:  # connected to an agent: the IVR waits for the end
                await call.wait_ended()
            return waiting.done.result()
        except asyncio.CancelledError:
            # the IVR's run is cancelled when the call ends, which may come before the wait above
            # sees it: the engine must still hear that the caller left, or the call stays in line
            if not waiting.done.done() and waiting.agent_leg is None:
                waiting.done.cancel()
                self._handle(waiting.tenant_id, CallerHungUp(call.id, time.time()))
                if waiting.consult_of is None:
                    run.record("abandoned", queue=waiting.queue)
            raise
        finally:
            for task in (ended, *waiting.tasks, *waiting.rings.values()):
                task.cancel()
            if self.waiting.get(call.id) is waiting:
                del self.waiting[call.id]

    async def _hold(self, waiting: Waiting) -> None:
        """Hold music, interrupted by announcements, until the caller is connected or leaves."""
        call = waiting.call
        with suppress(CallError):
            while waiting.agent_leg is None and not call.ended:
                music = call.play(self.hold_music, interruptible=False)
                getter = asyncio.ensure_future(waiting.announcements.get())
                waits: list[asyncio.Future[Any]] = [music.done, getter]
                try:
                    done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:  # also when an agent answers (this task cancelled): no orphaned getter
                    getter.cancel()
                if getter in done:
                    music.stop()
                    await call.play(getter.result(), interruptible=False)

    async def _watch_keys(self, waiting: Waiting) -> None:
        """The callback key: the caller leaves the line and is called back, keeping the place."""
        key = self.callback_keys.get((waiting.tenant_id, waiting.queue))
        if key is None:
            return
        call = waiting.call
        while (event := await call.next_dtmf()) is not None:
            if event.digit != key or waiting.agent_leg is not None or waiting.done.done():
                continue
            if not self.endpoint.routing.may_dial(waiting.tenant_id, call.caller):
                waiting.announcements.put_nowait(await self.prompts.tts(
                    "Sorry, we cannot call this number back. Please stay on the line.", "en"))
                continue
            self._handle(waiting.tenant_id, CallbackRequested(call.id, call.caller, time.time()))
            self.callbacks[call.id] = (waiting.tenant_id, waiting.queue)
            waiting.run.record("callback_requested", queue=waiting.queue)
            waiting.run.trace.result = f"callback: {waiting.queue}"
            goodbye = await self.prompts.tts("Thank you. We will call you back and you keep your place in line.",
                                             "en")
            waiting.agent_leg = None
            with suppress(CallError):
                await call.play(goodbye, interruptible=False)
            waiting.done.set_result(None)
            await call.hangup("callback_requested", side="platform")
            return

    # -- decisions ----------------------------------------------------------------------------
    def _handle(self, tenant_id: int, event: Any) -> None:
        engine = self.engines.get(tenant_id)
        if engine is None:
            return
        self._apply(tenant_id, engine.handle(event))
        self._arm()

    def _apply(self, tenant_id: int, actions: list[Action]) -> None:
        self._dirty.add(tenant_id)
        for action in actions:
            if isinstance(action, Offer):
                waiting = self.waiting.get(action.call_id)
                if waiting is None:  # the caller is gone; tell the engine the offer failed
                    self._spawn(self._later(tenant_id, OfferFailed(action.call_id, action.agent_id, time.time(),
                                                                   "no_answer")))
                    continue
                waiting.rings[action.agent_id] = self._spawn(self._ring(waiting, action.agent_id))
            elif isinstance(action, CancelOffer):
                waiting = self.waiting.get(action.call_id)
                ring = waiting.rings.pop(action.agent_id, None) if waiting is not None else None
                if ring is not None:
                    ring.cancel()
            elif isinstance(action, Announce):
                waiting = self.waiting.get(action.call_id)
                if waiting is not None:
                    self._spawn(self._announce(waiting, action))
            elif isinstance(action, Overflow):
                waiting = self.waiting.get(action.call_id)
                if waiting is not None:
                    self._spawn(self._overflow(waiting, action.fallback))
            elif isinstance(action, DialCallback):
                self._spawn(self._call_back(tenant_id, action))

    async def _later(self, tenant_id: int, event: Any) -> None:
        self._handle(tenant_id, event)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _ring(self, waiting: Waiting, agent_id: str) -> None:
        identity = self._by_agent.get((waiting.tenant_id, agent_id))
        call = waiting.call
        config = self.queue_settings(waiting.tenant_id, waiting.queue)
        ring_timeout = config.ring_timeout if config is not None else 15.0
        try:
            if identity is None:
                raise DialError("agent has no phone", 0, "unreachable")
            if self._softphone_online(waiting.tenant_id, agent_id):
                leg = await self.softphones.ring(waiting.tenant_id, agent_id, call, self._offer_details(waiting),
                                                 queue=waiting.queue, timeout=ring_timeout + 5)
            else:
                leg = await self.endpoint.dial_contact(waiting.tenant_id, identity.sip_user, caller_id=call.caller,
                                                       timeout=ring_timeout + 5)
        except DialError as exc:
            waiting.rings.pop(agent_id, None)
            reason: Literal["declined", "no_answer", "unreachable"] = \
                "unreachable" if exc.cause == "unreachable" else \
                "declined" if exc.status in (486, 600, 603) else "no_answer"
            self._handle(waiting.tenant_id, OfferFailed(call.id, agent_id, time.time(), reason))
            self.record_event(waiting.tenant_id, call.id, "declined" if reason == "declined" else "missed", agent_id,
                        {"queue": waiting.queue, "reason": reason})
            return
        waiting.rings.pop(agent_id, None)
        if call.ended or waiting.agent_leg is not None or waiting.done.done():
            await leg.hangup("caller_gone")
            return
        engine = self.engines[waiting.tenant_id]
        actions = engine.handle(OfferAccepted(call.id, agent_id, time.time()))
        if any(isinstance(a, CancelOffer) and a.call_id == call.id and a.agent_id == agent_id for a in actions):
            await leg.hangup("offer_ended")  # answered just after the offer ended (ring timeout)
            self._apply(waiting.tenant_id, actions)
            self._arm()
            return
        waiting.agent_leg = leg
        for task in waiting.tasks:  # hold music, callback key
            task.cancel()
        call.bridge(leg)  # stops the hold music
        self._apply(waiting.tenant_id, actions)
        self._arm()
        waiting.done.set_result(None)
        if waiting.consult_of is not None:
            self._consulted(waiting.consult_of, leg, agent_id)
            return
        waiting.run.record("answered", queue=waiting.queue, agent=identity.sip_user)
        connection = Connection(waiting.tenant_id, agent_id, call, leg, waiting,
                                asyncio.get_running_loop().create_future())
        self.connections[call.id] = connection
        if self.records is not None:
            self._spawn(self.records.call_agent(call.id, agent_id=int(agent_id), queue=waiting.record_queue))
        self.record_event(waiting.tenant_id, call.id, "answered", agent_id, {"queue": waiting.queue})
        if self.recordings is not None:
            self._spawn(self.recordings.agent_answered(call, leg, waiting.tenant_id, waiting.record_queue))
        self._spawn(self._bridged(connection))

    def _offer_details(self, waiting: Waiting) -> dict[str, Any]:
        """What the agent's screen pop shows: the caller, the queue, the wait and what the IVR learned."""
        run = waiting.run
        inputs = [{"node": step.node, "input": text} for step in run.trace.steps for event in step.events
                  if (text := _caller_input(event)) is not None]
        variables = {k: v for k, v in run.variables.items()
                     if k not in run.sensitive_variables and k not in BUILTIN_VARIABLES and not k.startswith("_")}
        record = waiting.consult_of.caller if waiting.consult_of is not None else waiting.call
        return {"call_id": record.id, "caller": record.caller, "consult": waiting.consult_of is not None,
                "queue": waiting.record_queue,
                "waited": round(time.time() - waiting.queued_at, 1), "ivr": {"inputs": inputs, "variables": variables}}

    def record_event(self, tenant_id: int, call_id: str, kind: str, agent_id: str | None,
               detail: dict[str, Any] | None = None) -> None:
        """One entry in the call record's event list (answered, hold, transfer, ...)."""
        if self.records is not None:
            self._spawn(self.records.call_event(call_id, tenant_id=tenant_id, kind=kind, at=datetime.now(timezone.utc),
                                                agent_id=int(agent_id) if agent_id else None, detail=detail))

    async def _bridged(self, connection: Connection, engine_call_id: str | None = None) -> None:
        """Whichever side hangs up ends the other, unless a transfer released the caller
        from this agent; either way the agent's part of the call ends (wrap-up)."""
        caller, agent = connection.caller, connection.agent
        waits = {asyncio.ensure_future(caller.wait_ended()), asyncio.ensure_future(agent.wait_ended()),
                 connection.released}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            if w is not connection.released:
                w.cancel()
        consult = connection.consult
        if consult is not None and consult.conference is not None and agent.ended and not caller.ended \
                and consult.leg is not None and not consult.leg.ended:
            self.complete_transfer(connection)  # the agent left the conference: the other two talk on
            return
        if connection.hold is not None:
            connection.hold.cancel()
        self._end_monitor(connection, "call_ended")
        if consult is not None:
            self._consult_over(connection)
        if not connection.released.done():
            for leg in (caller, agent):
                if not leg.ended:
                    await leg.hangup("bridged_peer_hangup")
        elif not agent.ended:
            await agent.hangup("transferred")
        if self.connections.get(caller.id) is connection:
            del self.connections[caller.id]
        if not connection.released.done():  # a transfer has told the engine already
            self._handle(connection.tenant_id, CallEnded(engine_call_id or caller.id, time.time()))

    def _release(self, connection: Connection) -> None:
        """The caller leaves this agent but stays on the line: the agent's part ends now."""
        connection.released.set_result(None)
        self._end_monitor(connection, "transferred")
        if self.connections.get(connection.caller.id) is connection:
            del self.connections[connection.caller.id]
        self._handle(connection.tenant_id, CallEnded(connection.caller.id, time.time()))

    # -- in-call control (the agent's softphone) --------------------------------------------
    def hold(self, connection: Connection, on: bool) -> None:
        """On: the caller hears hold music and the agent silence. Off: they talk again."""
        caller, agent = connection.caller, connection.agent
        if on == connection.held or caller.ended or agent.ended:
            return
        if on:
            if connection.monitor is not None:
                connection.monitor.suspend()
            caller.unbridge()
            connection.hold = self._spawn(self._music(caller))
        else:
            assert connection.hold is not None
            connection.hold.cancel()
            connection.hold = None
            self._talk(connection)
        self.record_event(connection.tenant_id, caller.id, "hold" if on else "unhold", connection.agent_id)

    @staticmethod
    def _talk(connection: Connection) -> None:
        """Caller and agent hear each other again: bridged, or mixed with a monitoring supervisor."""
        if connection.monitor is not None:
            connection.monitor.resume()
        else:
            connection.caller.bridge(connection.agent)

    @staticmethod
    def _end_monitor(connection: Connection, reason: str) -> None:
        if connection.monitor is not None:
            connection.monitor.end(reason)

    async def _music(self, call: Call) -> None:
        playback = None
        try:
            with suppress(CallError):
                while not call.ended:
                    playback = call.play(self.hold_music, interruptible=False)
                    await playback
        finally:
            if playback is not None:
                playback.stop()

    async def transfer(self, connection: Connection, kind: str, target: str) -> None:
        """Blind transfer: the caller goes to an agent, a queue or an external number; this
        agent's part ends. Raises :class:`TransferError` when the target is not possible."""
        tenant_id, caller = connection.tenant_id, connection.caller
        if connection.released.done() or caller.ended:
            raise TransferError("the call has already ended")
        if kind == "number":
            if not self.endpoint.routing.may_dial(tenant_id, target):
                raise TransferError(f"{target} is not allowed by this tenant's dialing rules")
            self.hold(connection, True)
            try:
                other = await caller.dial(target, timeout=30)
            except DialError as exc:
                self.hold(connection, False)
                raise TransferError(f"{target} did not answer ({exc})") from exc
            if connection.hold is not None:
                connection.hold.cancel()
                connection.hold = None
            caller.bridge(other)
            self.record_event(tenant_id, caller.id, "transfer", connection.agent_id, {"to": "number", "target": target})
            self._release(connection)
            return
        queue = self._target_queue(connection, kind, target)
        assert connection.waiting is not None
        caller.unbridge()
        self._release(connection)
        self.record_event(tenant_id, caller.id, "transfer", connection.agent_id, {"to": kind, "target": target})
        run = connection.waiting.run
        run.record("transferred", queue=queue)
        waiting = self._queue_call(tenant_id, run, queue, 50, dict(run.variables))
        if kind == "agent":
            waiting.record_queue = connection.waiting.record_queue
        self._spawn(self._serve(waiting))

    def _target_queue(self, connection: Connection, kind: str, target: str) -> str:
        """The queue a transfer or consult to an agent (their hidden queue) or a queue waits in."""
        if connection.waiting is None:
            raise TransferError("a callback cannot be transferred to an agent or a queue")
        if kind == "agent":
            agent_id = self.agent_id_of(connection.tenant_id, target)
            if agent_id is None or agent_id == connection.agent_id:
                raise TransferError(f"no other agent {target}")
            return direct_queue(agent_id)
        if kind == "queue":
            if target not in self.queues.get(connection.tenant_id, {}):
                raise TransferError(f"no queue {target}")
            return target
        raise TransferError(f"unknown transfer target kind {kind!r}")

    def connection_of(self, tenant_id: int, leg: Call) -> Connection | None:
        """The connection in which ``leg`` is the agent's (the softphone's view of its call)."""
        return next((c for c in self.connections.values() if c.agent is leg and c.tenant_id == tenant_id), None)

    def is_consult_leg(self, leg: Call) -> bool:
        return any(c.consult is not None and c.consult.leg is leg for c in self.connections.values())

    async def consult(self, connection: Connection, kind: str, target: str) -> None:
        """Warm transfer, first step: the caller holds, the agent talks to an agent, a queue's
        next agent or an external number. Then :meth:`complete_transfer`, :meth:`cancel_consult`
        or :meth:`conference`."""
        tenant_id, caller = connection.tenant_id, connection.caller
        if connection.consult is not None:
            raise TransferError("already consulting; complete or cancel that first")
        if connection.released.done() or caller.ended:
            raise TransferError("the call has already ended")
        if kind == "number":
            if not self.endpoint.routing.may_dial(tenant_id, target):
                raise TransferError(f"{target} is not allowed by this tenant's dialing rules")
        else:
            queue = self._target_queue(connection, kind, target)
        consult = connection.consult = Consult(kind, target)
        self.hold(connection, True)
        self.record_event(tenant_id, caller.id, "consult", connection.agent_id, {"to": kind, "target": target})
        if kind == "number":
            consult.dialing = self._spawn(self._dial_consult(connection, consult))
        else:
            assert connection.waiting is not None  # _target_queue refused callbacks
            run = connection.waiting.run
            consult.waiting = self._queue_call(tenant_id, run, queue, 90, dict(run.variables), consult_of=connection)
            self._spawn(self._serve(consult.waiting))

    async def _dial_consult(self, connection: Connection, consult: Consult) -> None:
        try:
            leg = await connection.caller.dial(consult.target, timeout=30)
        except DialError as exc:
            logger.info("consult not answered: %s", exc, extra={"call_id": connection.caller.id})
            if connection.consult is consult:
                self._consult_over(connection)
            return
        if connection.consult is not consult or connection.agent.ended:
            await leg.hangup("consult_cancelled")
            return
        connection.agent.bridge(leg)
        self._consulted(connection, leg, None)

    def _consulted(self, connection: Connection, leg: Call, agent_id: str | None) -> None:
        """The third party answered; the agent talks to them (bridged already)."""
        consult = connection.consult
        if consult is None or connection.agent.ended:
            self._spawn(leg.hangup("consult_cancelled"))
            return
        consult.leg, consult.agent_id = leg, agent_id
        consult.engine_call_id = connection.agent.id if agent_id is not None else None
        self.record_event(connection.tenant_id, connection.caller.id, "answered", agent_id,
                          {"consult": True, "target": consult.target})
        self._spawn(self._watch_consult(connection, consult))
        self._changed(connection)

    async def _watch_consult(self, connection: Connection, consult: Consult) -> None:
        """The third party hanging up ends the consult: back to the caller (still on hold
        unless in conference, where the caller and agent simply talk on)."""
        assert consult.leg is not None
        await consult.leg.wait_ended()
        if connection.consult is consult:
            self._consult_over(connection)

    def _consult_over(self, connection: Connection) -> None:
        consult = connection.consult
        if consult is None:
            return
        connection.consult = None
        if consult.conference is not None:
            consult.conference.stop()
            if not connection.caller.ended and not connection.agent.ended:
                self._talk(connection)
        if consult.waiting is not None and not consult.waiting.done.done():
            consult.waiting.done.set_result(None)  # stops its ringing; the engine forgets it below
            self._handle(connection.tenant_id, CallerHungUp(connection.agent.id, time.time()))
        if consult.dialing is not None:
            consult.dialing.cancel()
        if consult.engine_call_id is not None:
            self._handle(connection.tenant_id, CallEnded(consult.engine_call_id, time.time()))
        if consult.leg is not None and not consult.leg.ended:
            connection.agent.unbridge()
            self._spawn(consult.leg.hangup("consult_ended"))
        self._changed(connection)

    def cancel_consult(self, connection: Connection) -> None:
        """The agent ends the consult (or stops it ringing) and goes back to the caller."""
        if connection.consult is None:
            raise TransferError("not consulting anyone")
        self._consult_over(connection)
        self.hold(connection, False)

    def complete_transfer(self, connection: Connection) -> None:
        """Warm transfer, last step: the caller and the consulted party talk; this agent leaves."""
        consult = connection.consult
        if consult is None or consult.leg is None or consult.leg.ended:
            raise TransferError("nobody has answered the consult yet")
        caller, target = connection.caller, consult.leg
        connection.consult = None
        if consult.conference is not None:
            consult.conference.stop()
        if connection.hold is not None:
            connection.hold.cancel()
            connection.hold = None
        connection.agent.unbridge()
        caller.unbridge()
        caller.bridge(target)
        self.record_event(connection.tenant_id, caller.id, "transfer", connection.agent_id,
                          {"to": consult.kind, "target": consult.target, "warm": True})
        self._release(connection)
        if consult.agent_id is not None:
            assert connection.waiting is not None
            successor = Connection(connection.tenant_id, consult.agent_id, caller, target, connection.waiting,
                                   asyncio.get_running_loop().create_future())
            self.connections[caller.id] = successor
            if self.records is not None:
                self._spawn(self.records.call_agent(caller.id, agent_id=int(consult.agent_id),
                                                    queue=connection.waiting.record_queue))
            if self.recordings is not None:
                self._spawn(self.recordings.agent_answered(caller, target, connection.tenant_id,
                                                           connection.waiting.record_queue))
            self._spawn(self._bridged(successor, engine_call_id=consult.engine_call_id))
            self._changed(successor)

    def pause_recording(self, connection: Connection, paused: bool, *, reason: str) -> bool | None:
        """Pause or resume the call's recording for ``reason`` (``agent``, ``api``); None if the
        call is not being recorded."""
        if self.recordings is None:
            return None
        call_id = connection.caller.id
        changed = self.recordings.pause(call_id, reason) if paused else self.recordings.resume(call_id, reason)
        if changed:
            self.record_event(connection.tenant_id, call_id, "recording_paused" if paused else "recording_resumed",
                              connection.agent_id, {"by": reason})
        return changed

    def conference(self, connection: Connection) -> None:
        """Caller, agent and the consulted party all hear each other."""
        consult = connection.consult
        if consult is None or consult.leg is None or consult.leg.ended:
            raise TransferError("nobody has answered the consult yet")
        if consult.conference is not None:
            return
        if connection.hold is not None:
            connection.hold.cancel()
            connection.hold = None
        if connection.monitor is not None:
            connection.monitor.suspend()
        consult.conference = Conference([connection.caller, connection.agent, consult.leg])
        consult.conference.start()
        self.record_event(connection.tenant_id, connection.caller.id, "conference", connection.agent_id,
                          {"target": consult.target})
        self._changed(connection)

    def _changed(self, connection: Connection) -> None:
        """Tell the agents' softphones that a call's state changed (consult answered or over)."""
        if self.softphones is not None:
            self.softphones.call_changed(connection)

    async def _announce(self, waiting: Waiting, action: Announce) -> None:
        text = f"You are number {action.position} in line."
        if action.estimated_wait is not None:
            minutes = max(1, round(action.estimated_wait / 60))
            text += f" Your expected wait is about {minutes} minute{'s' if minutes > 1 else ''}."
        text += " Press star to be called back without losing your place."
        waiting.announcements.put_nowait(await self.prompts.tts(text, "en"))

    async def _overflow(self, waiting: Waiting, fallback: Fallback) -> None:
        run = waiting.run
        run.record("overflow", queue=waiting.queue, fallback=fallback.kind, target=fallback.target)
        if fallback.kind == "ivr":
            waiting.done.set_result(fallback.target)
            return
        if fallback.kind == "callback" and self.endpoint.routing.may_dial(waiting.tenant_id, waiting.call.caller):
            self._handle(waiting.tenant_id, CallbackRequested(waiting.call.id, waiting.call.caller, time.time()))
            self.callbacks[waiting.call.id] = (waiting.tenant_id, waiting.queue)
            run.trace.result = f"callback: {waiting.queue}"
            prompt = await self.prompts.tts("All our agents are busy. We will call you back.", "en")
        elif fallback.kind == "voicemail":
            waiting.done.set_result(None)
            node = Voicemail(VoicemailNode(id=f"{waiting.queue}-voicemail", type="voicemail"))
            with suppress(Exception):
                await run.play(Prompt(tts="All our agents are busy. Please leave a message after the tone."),
                               barge_in=False)
                await node.execute(run)
            run.trace.result = f"voicemail: {waiting.queue}"
            await waiting.call.hangup("queue_voicemail", side="platform")
            return
        else:
            prompt = await self.prompts.tts("All our agents are busy. Please call again later. Goodbye.", "en")
        if not waiting.done.done():
            waiting.done.set_result(None)
        with suppress(CallError):
            await waiting.call.play(prompt, interruptible=False)
        await waiting.call.hangup(f"queue_{fallback.kind}", side="platform")

    async def _call_back(self, tenant_id: int, action: DialCallback) -> None:
        """The agent is reserved: ring the agent, then dial the caller and bridge them."""
        identity = self._by_agent.get((tenant_id, action.agent_id))
        origin = self.callbacks.get(action.call_id)
        queue = self.queues.get(tenant_id, {}).get(origin[1]) if origin else None
        ring = queue.ring_timeout if queue is not None else 15.0
        try:
            if identity is None:
                raise DialError("agent has no phone", 0, "unreachable")
            agent = await self.endpoint.dial_contact(tenant_id, identity.sip_user, caller_id=action.number,
                                                     timeout=ring)
        except DialError:
            self._handle(tenant_id, CallbackFailed(action.call_id, time.time()))
            return
        try:
            customer = await self.endpoint.dial(tenant_id, action.number, caller_id=self._callback_caller_id(tenant_id),
                                                timeout=30)
        except DialError as exc:
            logger.info("callback not answered: %s", exc, extra={"call_id": action.call_id})
            with suppress(CallError):
                await agent.hangup("callback_failed")
            self._handle(tenant_id, CallbackFailed(action.call_id, time.time()))
            return
        customer.bridge(agent)
        self.callbacks.pop(action.call_id, None)
        self._handle(tenant_id, CallbackAnswered(action.call_id, time.time()))
        connection = Connection(tenant_id, action.agent_id, customer, agent, None,
                                asyncio.get_running_loop().create_future())
        self.connections[customer.id] = connection
        await self._bridged(connection, engine_call_id=action.call_id)

    def _callback_caller_id(self, tenant_id: int) -> str:
        numbers = [n.number for n in self.endpoint.routing.numbers.values() if n.tenant_id == tenant_id]
        return numbers[0] if numbers else "anonymous"

    # -- events, timers, persistence -----------------------------------------------------------
    def _on_event(self, tenant_id: int, event: Any) -> None:
        if isinstance(event, AgentStateChanged):
            self._history.append({
                "tenant_id": tenant_id, "agent_id": int(event.agent_id), "old_state": str(event.old),
                "new_state": str(event.new), "reason": event.reason, "call_id": getattr(event, "call_id", None),
                "at": datetime.fromtimestamp(event.at, timezone.utc)})
        self.publish(tenant_id, event)

    def _arm(self) -> None:
        deadlines = [d for e in self.engines.values() if (d := e.next_deadline()) is not None]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if deadlines:
            loop = asyncio.get_running_loop()
            delay = max(0.0, min(deadlines) - time.time())
            self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = time.time()
        for tenant_id, engine in list(self.engines.items()):
            deadline = engine.next_deadline()
            if deadline is not None and deadline <= now:
                self._apply(tenant_id, engine.advance(now))
        self._arm()

    async def _save_loop(self) -> None:
        """Saves changed state every second; at midnight (UTC) starts the statistics' new day."""
        day = datetime.now(timezone.utc).date()
        while True:
            await asyncio.sleep(SNAPSHOT_EVERY)
            if (today := datetime.now(timezone.utc).date()) != day:
                day = today
                for engine in self.engines.values():
                    engine.reset_day(time.time())
            await self.save()

    async def save(self) -> None:
        """Write changed tenants' snapshots and the agent state history (off the event loop)."""
        if not self._dirty and not self._history:
            return
        snapshots = {tid: self.engines[tid].snapshot() for tid in self._dirty if tid in self.engines}
        history, self._history = self._history, []
        self._dirty.clear()
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._write, snapshots, history)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            # kept for the next save; the engines run on in memory meanwhile
            self._unsaved.failed(exc, agent_state_changes=len(history) + len(self._history))
            self._dirty.update(snapshots)
            self._history = (history + self._history)[-MAX_UNSAVED_HISTORY:]
            return
        self._unsaved.ok(agent_state_changes=len(history))

    def _write(self, snapshots: dict[int, dict[str, Any]], history: list[dict[str, Any]]) -> None:
        with Session(self.db) as db, db.begin():
            for tenant_id, snapshot in snapshots.items():
                row = db.get(AcdSnapshot, tenant_id)
                if row is None:
                    db.add(AcdSnapshot(tenant_id=tenant_id, snapshot=snapshot, updated_at=utcnow()))
                else:
                    row.snapshot, row.updated_at = snapshot, utcnow()
            if history:
                db.execute(AgentStateChange.__table__.insert(), history)  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._saver is not None:
            self._saver.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self.save()
