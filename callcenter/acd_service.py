"""The ACD on this node: one sans-I/O ``acd.AcdEngine`` per tenant, connected to calls.

The engine decides; this module carries the decisions out and reports what happened:

* the IVR's ``queue`` node hands a call here (:meth:`AcdService.enqueue`): the caller
  hears hold music and announcements, may press the callback key, and is bridged to
  the agent who answers an offer;
* an offer rings the agent's registered SIP phone (``SipEndpoint.dial_contact``); no
  answer, busy or an unreachable phone is reported back and the call keeps its place;
* a callback reserves an agent, rings the agent, then dials the caller back through
  the tenant's trunks and bridges them;
* an agent placing a call from the softphone is busy (``on_call``) until it is over
  (:meth:`AcdService.agent_dialing`);
* web chats wait in the same queues (``chat_*`` methods): the engine's decisions about them
  (offers, cancelled offers, overflows) go to the chat service through ``chat_actions``; an
  agent takes chats up to their capacity only while their page is open (that is where chats
  are shown);
* agent state changes are stored with time and reason; each tenant's engine state
  (agent states, callbacks) is saved so a restart resumes it.

Engine time is wall-clock seconds (``time.time()``) so snapshots stay meaningful
across a restart; timers are armed on the event loop from ``next_deadline()``.

What happens once an agent has answered (hold, transfers, consults, conference, recording
pause, monitoring, the bridged call until it ends) is call control's
(``callcenter.call_control``): the ACD hands each answered call over to it
(:class:`AnsweredCalls`), and takes callers back when call control asks (this service is
each connection's ``CallOrigin``: queue a transferred caller again, queue a consult, the
agent's part ended). Agents' devices reach the ACD as they come and go: SIP phones through
the registrar's listener, browser tabs by :meth:`AcdService.softphone_connected` (the
:class:`Softphones` holding the tab are then where the agent is rung, and hear the
agents' state changes). Agents' identities are the :class:`AgentDirectory`'s, which this
service fills from its configuration.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Protocol, cast

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
    RequestRefused,
    UnknownCall,
    UnknownQueue,
    WaitingView,
    WrapUpEnded,
)
from callcenter.acd_config import callback_key, queue_caller_id, queue_config, queue_faq_bot
from callcenter.chat_settings import ChatSettings, chat_settings
from callcenter.agent_directory import AgentDirectory, AgentIdentity
from callcenter.call_control import CallOrigin, Connection, QueueEntry, TransferError
from callcenter.call_notes import CallNotes
from callcenter.db_health import OutageNotice, database_unavailable
from callcenter.handover import SERVE_HERE, Context, HandoverClient, RemoteRun
from callcenter.models import AcdQueue, AcdSnapshot, Agent, AgentStateChange, Tenant, User, utcnow
from callcenter.outbound import OutboundRefused, check_agent, tenant_numbers
from ivr.nodes.route import Voicemail
from ivr.prompts import PromptLibrary
from ivr.runtime import FlowRun
from ivr.schema import Prompt, VoicemailNode
from ivr.trace import Trace
from sip_bridge.call import Call, CallError, DialError
from sip_bridge.endpoint import SipEndpoint
from sip_bridge.registrar import Registrar

logger = logging.getLogger(__name__)

SNAPSHOT_EVERY = 1.0
"""Seconds between saves of a changed tenant's ACD state."""
MAX_UNSAVED_HISTORY = 100_000
"""Agent state changes kept for saving while the database is unavailable; beyond it the oldest go."""


@dataclass
class TenantConfig:
    """What the database holds for one tenant's ACD."""

    tenant_id: int
    queues: list[QueueConfig] = field(default_factory=list)
    callback_keys: dict[str, str | None] = field(default_factory=dict)
    caller_ids: dict[str, str] = field(default_factory=dict)
    """Queue -> the number its agents call out from by default (queues that name one)."""
    agents: list[tuple[AgentConfig, AgentIdentity]] = field(default_factory=list)
    snapshot: dict[str, Any] | None = None
    chats: ChatSettings = field(default_factory=ChatSettings)
    faq_bots: set[str] = field(default_factory=set)
    """The queues whose chats meet the FAQ bot first."""


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


class AnsweredCalls(Protocol):
    """Call control (``callcenter.call_control.CallControl``), as the ACD hands it the calls agents answer."""

    def answered(self, origin: CallOrigin, waiting: QueueEntry, agent_id: str, leg: Call) -> None:
        """A waiting caller and the agent who answered, bridged already."""

    def consulted(self, connection: Connection, leg: Call, agent_id: str | None) -> None:
        """The colleague an agent consults (``Waiting.consult_of``) answered, bridged to the agent already."""

    async def called_back(self, origin: CallOrigin, tenant_id: int, agent_id: str, customer: Call, agent: Call,
                          engine_call_id: str) -> None:
        """A callback's customer answered, bridged to the agent already; returns when the call ends."""


class Ownership(Protocol):
    """Which tenants this node hosts (``callcenter.tenant_owners.TenantOwners``)."""

    @property
    def clustered(self) -> bool: ...

    def local(self, tenant_id: int) -> bool: ...

    def epoch(self, tenant_id: int) -> int: ...


class LogPositions(Protocol):
    """How far each tenant's input log is applied here (``acd_cluster.LogCursor``)."""

    def position(self, tenant_id: int) -> str: ...

    def saved(self, tenant_id: int, position: str) -> None:
        """A snapshot covering the log up to ``position`` is stored."""


class SingleNode:
    """Every tenant is hosted here (no cluster)."""

    clustered = False

    def local(self, tenant_id: int) -> bool:
        return True

    def epoch(self, tenant_id: int) -> int:
        return 0


#: ``_serve``'s answer when the tenant moved to another node while the caller waited here: hand
#: the caller over to the new owner (an IVR node name cannot contain a NUL).
REHOME = "\0rehome"


class Softphones(Protocol):
    """The softphones holding an agent's browser tab (``callcenter.softphone.SoftphoneService``)."""

    async def ring(self, tenant_id: int, agent_id: str, caller: Call, details: dict[str, Any], *,
                   queue: str, timeout: float) -> Call:
        """Offer ``caller`` on the agent's tab; the agent's leg once accepted, or :class:`DialError`."""

    def on_acd_event(self, tenant_id: int, event: Any) -> None:
        """An event of the tenant's engine (the tabs show agents' states)."""

    def tenant_moved(self, tenant_id: int) -> None:
        """The tenant is hosted elsewhere now: its agents' tabs reconnect there (a tab with a
        call in progress here once that call has ended)."""


BUILTIN_VARIABLES = frozenset({"caller", "dialed", "call_id", "date", "weekday", "hour"})
"""Variables every IVR run starts with: the screen pop shows the caller and queue on their own."""


#: A caller's input in an IVR trace event: its kind in the screen pop and the event field holding it.
_INPUT_KINDS = {"dtmf": ("pressed", ("digit",)), "recognition": ("said", ("phrase", "text")),
                "digits": ("entered", ("digits",))}


def _caller_input(event: dict[str, Any]) -> dict[str, str] | None:
    """An IVR trace event as the agent's screen pop shows it (``kind`` pressed/said/entered and its
    ``value``, which the page words in its language; ``input`` the same in English for API users),
    or None if it is not the caller's input."""
    found = _INPUT_KINDS.get(event.get("event"))  # type: ignore[arg-type]
    if found is None:
        return None
    kind, fields = found
    value = str(next((v for f in fields if (v := event.get(f))), None))
    text = f"said \u201c{value}\u201d" if kind == "said" else f"{kind} {value}"
    return {"kind": kind, "value": value, "input": text}


def ivr_summary(run: FlowRun) -> dict[str, Any]:
    """The screen pop's IVR part: what the caller pressed and said, and the flow's variables that
    may be shown (none from a sensitive section, none of the built-in ones)."""
    inputs = [{"node": step.node, **said} for step in run.trace.steps for event in step.events
              if (said := _caller_input(event)) is not None]
    variables = {k: v for k, v in run.variables.items()
                 if k not in run.sensitive_variables and k not in BUILTIN_VARIABLES and not k.startswith("_")}
    return {"inputs": inputs, "variables": variables}


async def queue_voicemail(run: FlowRun, queue: str) -> None:
    """A queue's voicemail overflow: the caller leaves a message in the queue's box."""
    node = Voicemail(VoicemailNode(id=f"{queue}-voicemail", type="voicemail"))
    with suppress(Exception):
        await run.play(Prompt(tts="All our agents are busy. Please leave a message after the tone."), barge_in=False)
        await node.execute(run)
    run.trace.result = f"voicemail: {queue}"


def other_party(call: Call) -> str:
    """Whom an agent talks to on ``call``: its caller, or the number dialed of a call the platform placed."""
    return call.dialed if call.direction == "outbound" else call.caller


class PlacedRun:
    """What the ACD reads of an IVR run, for a customer the platform dialed: no flow ran (no
    inputs, no variables); what the ACD records goes to a trace of its own."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.variables: dict[str, Any] = {}
        self.sensitive_variables: set[str] = set()
        self.trace = Trace(call_id=call.id, tenant_id=call.tenant_id, flow_version_id=None, flow="", version=0)

    @property
    def tenant_id(self) -> int | None:
        return self.call.tenant_id

    def record(self, kind: str, **data: Any) -> None:
        self.trace.event(kind, **data)


def direct_queue(agent_id: str) -> str:
    """The hidden queue of one agent: transfers to that agent wait there."""
    return f"agent:{agent_id}"


def direct_queue_config(agent_id: str) -> QueueConfig:
    return QueueConfig(name=direct_queue(agent_id), skill=direct_queue(agent_id), ring_timeout=20.0,
                       wrapup=30.0, announce_every=None, max_wait=120.0, on_timeout=Fallback("voicemail"))


async def _until_ended_or_handed_on(call: Call, run: FlowRun | None) -> None:
    """Until the call ends, or call control hands the caller on to a survey after the agent hung up
    (``FlowRun.hand_on``: the IVR's queue node then runs it; see ``callcenter.surveys``)."""
    waits = [asyncio.ensure_future(call.wait_ended())]
    if isinstance(run, FlowRun):
        waits.append(asyncio.ensure_future(run.handed_on()))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


class AcdService:
    """The tenants' engines on this node and the callers waiting in their queues, until an agent answers."""

    def __init__(self, db: Engine, directory: AgentDirectory, registrar: Registrar, endpoint: SipEndpoint,
                 calls: AnsweredCalls, notes: CallNotes, prompts: PromptLibrary, hold_music: Path, fallback_queue: Any,
                 publish: Callable[[int, Any], None] | None = None, *, owners: Ownership = SingleNode(),
                 forward: Callable[[int, Any], None] | None = None, handovers: HandoverClient | None = None,
                 log_positions: LogPositions | None = None, node_id: str | None = None,
                 node_run: int | None = None,
                 chat_actions: asyncio.Queue[tuple[int, Action]] | None = None) -> None:
        self.db = db
        #: the engine's offers, cancelled offers and overflows of web chats, for the chat service
        self.chat_actions: asyncio.Queue[tuple[int, Action]] = chat_actions or asyncio.Queue()
        #: ids of the web chats the engines hold (queued, offered or with an agent)
        self._chats: set[str] = set()
        #: (tenant_id, agent_id) -> the agent's configuration, chat capacity included (given to the
        #: engine only while the agent's page is open)
        self._agent_configs: dict[tuple[int, str], AgentConfig] = {}
        #: Which tenants' engines run here (all of them on a single node).
        self.owners = owners
        #: Inputs for tenants whose engine runs on another node go there (the tenant's input log).
        self.forward = forward
        #: Hands callers of tenants hosted elsewhere to their owner (cluster only).
        self.handovers = handovers
        #: The input log positions a cluster snapshot covers (trimmed once it is saved).
        self.log_positions = log_positions
        self.node_id = node_id
        #: this run of the node (its start time in ms): a snapshot saved by it is this process's
        self.node_run = node_run
        #: tenant -> the input log position of the snapshot this node took it over from
        self._adopted_log: dict[int, str] = {}
        #: callers a takeover found in line whose node has not handed them over again yet, with the
        #: agents the engine offered them to meanwhile (rung once the caller is back)
        self._expected: dict[str, list[str]] = {}
        #: Agents' identities: filled here from each load of the configuration.
        self.directory = directory
        #: Agents' SIP phones: rung when registered (and no tab is connected); registering one logs the agent in.
        self.registrar = registrar
        registrar.add_listener(self.device_changed)
        #: Rings agents' phones, dials callbacks; its routing table holds the tenants' dialing rules.
        self.endpoint = endpoint
        #: Where answered calls go (call control).
        self.calls = calls
        #: The call records' event lists (offers missed, answers, supervisors' moves).
        self.notes = notes
        self.prompts = prompts
        self.hold_music = hold_music
        #: Where calls for a queue name the tenant has not configured go (hold music).
        self.fallback_queue = fallback_queue
        self.publish = publish or (lambda tenant_id, event: None)
        self.engines: dict[int, AcdEngine] = {}
        self.queues: dict[int, dict[str, QueueConfig]] = {}
        self.waiting: dict[str, Waiting] = {}
        #: (tenant_id, agent_id) -> the softphones holding the agent's connected tab (rung before a SIP phone)
        self._softphones: dict[tuple[int, str], Softphones] = {}
        #: call_id -> (tenant_id, queue) of the callbacks waiting in line
        self.callbacks: dict[str, tuple[int, str]] = {}
        #: engine call id -> whether the engine has reserved the agent, of the calls agents are
        #: placing from the softphone (:meth:`agent_dialing`)
        self._dialing_out: dict[str, bool] = {}
        #: (tenant_id, queue) -> the key a waiting caller presses to be called back (None: no callbacks)
        self.callback_keys: dict[tuple[int, str], str | None] = {}
        self.caller_ids: dict[int, dict[str, str]] = {}
        """Per tenant: queue -> its default caller ID for calls out."""
        self.chat_settings: dict[int, ChatSettings] = {}
        """Per tenant: its web chat settings (capacity, grace period, widget ...), as last loaded."""
        self.faq_bots: dict[int, frozenset[str]] = {}
        """Per tenant: the queues whose chats meet the FAQ bot first."""
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
        """Load every tenant's configuration; a single node runs every tenant's engine at once,
        a cluster node those whose lease it gains (:meth:`adopt`)."""
        loop = asyncio.get_running_loop()
        now = time.time()
        for config in await loop.run_in_executor(None, self._load_all):
            if self.owners.clustered:
                self._remember(config)
            else:
                self._install(config, now)
        self._saver = loop.create_task(self._save_loop())
        self._arm()

    def tenant_ids(self) -> list[int]:
        return sorted(self.queues)

    def _load_all(self, only: int | None = None) -> list[TenantConfig]:
        """Every tenant's (or ``only`` one's) queues, agents and saved state (in a worker thread)."""
        out = []
        with Session(self.db) as db:
            query = select(Tenant) if only is None else select(Tenant).where(Tenant.id == only)
            for tenant in db.scalars(query):
                chats = chat_settings(tenant)
                config = TenantConfig(tenant.id, chats=chats)
                for q in db.scalars(select(AcdQueue).where(AcdQueue.tenant_id == tenant.id)):
                    config.queues.append(queue_config(q.name, q.config))
                    config.callback_keys[q.name] = callback_key(q.config)
                    if (number := queue_caller_id(q.config)) is not None:
                        config.caller_ids[q.name] = number
                    if queue_faq_bot(q.config):
                        config.faq_bots.add(q.name)
                for agent, user in db.execute(select(Agent, User).join(User, User.id == Agent.user_id)
                                              .where(Agent.tenant_id == tenant.id, User.active.is_(True))):
                    identity = AgentIdentity(tenant.id, str(agent.id), user.username,
                                             f"{tenant.slug}.{user.username}", agent.sip_ha1,
                                             agent.require_tls, agent.require_srtp)
                    capacity = agent.chat_capacity if agent.chat_capacity is not None else chats.chat_capacity
                    config.agents.append((AgentConfig(str(agent.id), dict(agent.skills), chat_capacity=capacity),
                                          identity))
                row = db.get(AcdSnapshot, tenant.id)
                config.snapshot = row.snapshot if row is not None else None
                out.append(config)
        return out

    def _install(self, config: TenantConfig, now: float) -> None:
        tenant_id = config.tenant_id

        def on_event(event: Any) -> None:
            self._on_event(tenant_id, event)

        snapshot = config.snapshot
        if snapshot is not None and "cluster" in snapshot:  # a cluster owner's: the whole live state
            engine = AcdEngine.restore_live(snapshot["engine"], on_event=on_event) if self.owners.clustered \
                else AcdEngine.restore(snapshot["engine"], now, on_event=on_event)
        else:
            engine = AcdEngine.restore(snapshot, now, on_event=on_event) if snapshot else AcdEngine(on_event=on_event)
        self.engines[tenant_id] = engine
        # the chats a takeover's engine holds are the chat service's, before it has taken them up
        self._chats |= {v.call_id for v in engine.waiting() if v.channel == "chat"}
        self._chats |= {chat for agent in engine.agents() for chat in agent.chats}
        self._configure(config, now)

    def _remember(self, config: TenantConfig) -> tuple[dict[str, QueueConfig], list[str]]:
        """A tenant's queues, callback keys and agents as every node knows them (a node that does
        not run the tenant's engine still checks queue names and agents' phone logins); the
        queues it had before and the agents it no longer has."""
        tenant_id = config.tenant_id
        old_queues = self.queues.get(tenant_id, {})
        self.queues[tenant_id] = {q.name: q for q in config.queues}
        self.callback_keys.update({(tenant_id, name): key for name, key in config.callback_keys.items()})
        self.caller_ids[tenant_id] = dict(sorted(config.caller_ids.items()))
        self.chat_settings[tenant_id] = config.chats
        self.faq_bots[tenant_id] = frozenset(config.faq_bots)
        gone = self.directory.replace_tenant(tenant_id, [identity for _, identity in config.agents])
        return old_queues, gone

    def _configure(self, config: TenantConfig, now: float) -> None:
        tenant_id = config.tenant_id
        engine = self.engines[tenant_id]
        old_queues, gone = self._remember(config)
        self._apply(tenant_id, engine.set_chat_policy(config.chats.calls_while_chatting, at=now))
        for name in set(old_queues) - set(self.queues[tenant_id]):
            self._apply(tenant_id, engine.remove_queue(name, at=now))
        for q in config.queues:
            self._apply(tenant_id, engine.set_queue(q, at=now))
        for agent, identity in config.agents:
            hidden = direct_queue(agent.agent_id)
            self._apply(tenant_id, engine.set_queue(direct_queue_config(agent.agent_id), at=now))
            self._agent_configs[(tenant_id, agent.agent_id)] = AgentConfig(
                agent.agent_id, {**agent.skills, hidden: 1}, chat_capacity=agent.chat_capacity)
            self._apply(tenant_id, engine.set_agent(self._engine_agent(tenant_id, agent.agent_id), at=now))
            reachable = self.registrar.contact_for(identity.sip_user) is not None
            reachable = reachable or self._softphone_online(tenant_id, identity.agent_id)
            self._apply(tenant_id, engine.handle(AgentDeviceChanged(identity.agent_id, reachable, now)))
        for agent_id in gone:
            self._agent_configs.pop((tenant_id, agent_id), None)
            self._apply(tenant_id, engine.remove_agent(agent_id, at=now))
            self._apply(tenant_id, engine.remove_queue(direct_queue(agent_id), at=now))

    async def reload(self) -> None:
        """Queues and agents changed in the database (API): apply them to the live engines."""
        now = time.time()
        for config in await asyncio.get_running_loop().run_in_executor(None, self._load_all):
            if config.tenant_id in self.engines:
                self._configure(config, now)
            elif self.owners.clustered:
                self._remember(config)  # hosted elsewhere (or not yet here)
            else:
                self._install(config, now)
        self._arm()
        logger.info("ACD configuration reloaded: %d agents", len(self.directory))

    # -- agents' devices -------------------------------------------------------------------------
    def device_changed(self, sip_user: str, reachable: bool) -> None:
        """The registrar's listener: a phone registered, or its last binding went away.

        Registering the phone of an offline agent logs the agent in (available): with a
        desk phone, that is how an agent starts the day.
        """
        identity = self.directory.by_sip_user(sip_user)
        engine = self.engines.get(identity.tenant_id) if identity is not None else None
        if identity is None or engine is None:
            return
        now = time.time()
        reachable = reachable or self._softphone_online(identity.tenant_id, identity.agent_id)
        self._handle(identity.tenant_id, AgentDeviceChanged(identity.agent_id, reachable, now))
        if reachable and engine.agent_state(identity.agent_id) == AgentState.OFFLINE:
            self._handle(identity.tenant_id, AgentStateRequested(identity.agent_id, "available", now,
                                                                 "phone registered"))

    def softphone_connected(self, tenant_id: int, agent_id: str, softphones: Softphones) -> None:
        """The agent's tab connected (the first one): the agent is rung there from now on, and
        takes chats up to their capacity."""
        self._softphones[(tenant_id, agent_id)] = softphones
        self._chat_capacity_changed(tenant_id, agent_id)
        self.softphone_changed(tenant_id, agent_id, True)

    def softphone_gone(self, tenant_id: int, agent_id: str) -> None:
        """The agent's tab stayed away beyond its grace period: no more rung there, no new chats.
        The engine hears it by :meth:`softphone_changed` once the softphone has sent a call in
        progress back."""
        self._softphones.pop((tenant_id, agent_id), None)
        self._chat_capacity_changed(tenant_id, agent_id)

    def _engine_agent(self, tenant_id: int, agent_id: str) -> AgentConfig:
        """The agent as the engine sees them: no chats while their page is closed."""
        config = self._agent_configs[(tenant_id, agent_id)]
        if (tenant_id, agent_id) in self._softphones:
            return config
        return AgentConfig(config.agent_id, config.skills, chat_capacity=0)

    def _chat_capacity_changed(self, tenant_id: int, agent_id: str) -> None:
        engine = self.engines.get(tenant_id)
        if engine is not None and (tenant_id, agent_id) in self._agent_configs:
            self._apply(tenant_id, engine.set_agent(self._engine_agent(tenant_id, agent_id), at=time.time()))
            self._arm()

    def softphone_changed(self, tenant_id: int, agent_id: str, online: bool) -> None:
        """The agent's softphone connected, or stayed away beyond its grace period."""
        identity = self.directory.agent(tenant_id, agent_id)
        phone = identity is not None and self.registrar.contact_for(identity.sip_user) is not None
        self._handle(tenant_id, AgentDeviceChanged(agent_id, online or phone, time.time()))

    def _softphone_online(self, tenant_id: int, agent_id: str) -> bool:
        return (tenant_id, agent_id) in self._softphones

    def end_wrapup(self, tenant_id: int, agent_id: str) -> None:
        """The agent finished the after-call work (saved a disposition)."""
        self._handle(tenant_id, WrapUpEnded(agent_id, time.time()))

    def queue_settings(self, tenant_id: int, queue: str) -> QueueConfig | None:
        """A queue's configuration, the hidden per-agent queues included."""
        config = self.queues.get(tenant_id, {}).get(queue)
        if config is None and queue.startswith("agent:"):
            config = direct_queue_config(queue.removeprefix("agent:"))
        return config

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
            self.notes.record_event(tenant_id, self._record_id(call_id), "priority", None,
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
            self.notes.record_event(tenant_id, self._record_id(call_id), "moved", None,
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
        reattach = False
        while not run.call.ended:
            if tenant_id in self.engines:
                # after a takeover the engine may have the caller in line already: it keeps its place
                result = await self._serve(self._queue_call(tenant_id, run, queue, priority, variables,
                                                            rejoin=self._in_line(tenant_id, run.call.id)))
                if result != REHOME:
                    return result
                reattach = True  # the tenant moved while the caller waited here: follow it
            elif self.handovers is None:
                return await self.fallback_queue.enqueue(run, queue, priority, variables)
            elif self.owners.local(tenant_id):
                await asyncio.sleep(0.05)  # taken over a moment ago: its engine is being restored
            else:
                context = Context(queue, priority, variables, ivr_summary(run), record_queue=queue, reattach=reattach)
                result = await self.handovers.enqueue(run, context)
                if result != SERVE_HERE:
                    return result
        return None

    def _queue_call(self, tenant_id: int, run: FlowRun, queue: str, priority: int, variables: dict[str, Any],
                    consult_of: Connection | None = None, record_queue: str = "", rejoin: bool = False) -> Waiting:
        """A caller waiting here: hold music, the callback key, and (``rejoin`` False) the engine
        told. ``rejoin``: the engine has the call in line already (a takeover), keep its place."""
        call = run.call if consult_of is None else consult_of.agent
        loop = asyncio.get_running_loop()
        waiting = Waiting(tenant_id, call, run, queue, loop.create_future(), record_queue=record_queue,
                          consult_of=consult_of)
        self.waiting[call.id] = waiting
        waiting.tasks = [loop.create_task(self._hold(waiting)), loop.create_task(self._watch_keys(waiting))]
        if not rejoin:
            self._handle(tenant_id, CallQueued(call.id, queue, priority, time.time(), caller=other_party(call),
                                               variables=variables))
        for agent_id in self._expected.pop(call.id, []):  # offered while it was being handed over again
            waiting.rings[agent_id] = self._spawn(self._ring(waiting, agent_id))
        return waiting

    # -- call control hands callers back (each connection's CallOrigin) -----------------------------
    def transfer_queue(self, connection: Connection, kind: str, target: str) -> str:
        """The queue a transfer or consult to an agent (their hidden queue) or a queue waits in."""
        if kind == "agent":
            agent_id = self.directory.agent_id_of(connection.tenant_id, target)
            if agent_id is None or agent_id == connection.agent_id:
                raise TransferError(f"no other agent {target}", "no-such-agent", target=target)
            return direct_queue(agent_id)
        if kind == "queue":
            if target not in self.queues.get(connection.tenant_id, {}):
                raise TransferError(f"no queue {target}", "no-such-queue", target=target)
            return target
        raise TransferError(f"unknown transfer target kind {kind!r}", "bad-transfer-target")

    def queue_caller(self, connection: Connection, queue: str, *, record_queue: str | None) -> None:
        """A blind transfer: the caller waits in ``queue`` again (priority 50)."""
        run = self._run_of(connection)
        waiting = self._queue_call(connection.tenant_id, run, queue, 50, dict(run.variables),
                                   record_queue=record_queue or "")
        self._spawn(self._serve(waiting))

    def queue_consult(self, connection: Connection, queue: str) -> Waiting:
        """A consult: the agent's leg waits in ``queue`` for a colleague (priority 90)."""
        run = self._run_of(connection)
        waiting = self._queue_call(connection.tenant_id, run, queue, 90, dict(run.variables), consult_of=connection)
        self._spawn(self._serve(waiting))
        return waiting

    @staticmethod
    def _run_of(connection: Connection) -> FlowRun:
        """The IVR run of the connection's caller; for a customer the platform dialed (a call an
        agent placed, a callback) one that ran no flow, so the ACD can queue them all alike."""
        if connection.waiting is not None:
            return connection.waiting.run
        return cast(FlowRun, PlacedRun(connection.caller))

    def leave_queue(self, entry: QueueEntry) -> None:
        """A consult ended while the agent still waited for a colleague."""
        waiting = self.waiting.get(entry.call.id)
        if waiting is entry and not waiting.done.done():
            waiting.done.set_result(None)  # stops its ringing; the engine forgets it below
            self._handle(waiting.tenant_id, CallerHungUp(waiting.call.id, time.time()))

    def withdraw(self, tenant_id: int, call_id: str, resume_at: str) -> bool:
        """Take a caller out of line before any agent has them (a campaign's person when no agent
        was free within the 2 s rule): the IVR goes on at its node ``resume_at``. False when an
        agent has the call already, or it is not waiting here."""
        waiting = self.waiting.get(call_id)
        if waiting is None or waiting.agent_leg is not None or waiting.done.done():
            return False
        waiting.done.set_result(resume_at)
        self._handle(tenant_id, CallerHungUp(call_id, time.time()))
        return True

    def default_caller_id(self, tenant_id: int, agent_id: str | None = None, queue: str | None = None) -> str | None:
        """The number calls out show by default: ``queue``'s, else that of the first queue (by
        name) ``agent_id`` works that names one; None: the tenant's first number."""
        numbers = self.caller_ids.get(tenant_id, {})
        if queue is not None:
            return numbers.get(queue)
        engine = self.engines.get(tenant_id)
        if agent_id is None or engine is None:
            return None
        return next((number for name, number in numbers.items() if agent_id in engine.members(name)), None)

    def staffing(self, tenant_id: int, queue: str) -> tuple[int, int]:
        """The queue's agents now: (available, busy with a call or its wrap-up)."""
        engine = self.engines.get(tenant_id)
        if engine is None or queue not in self.queues.get(tenant_id, {}):
            return 0, 0
        agents = engine.queue_stats(queue, time.time()).agents
        busy = sum(agents.get(s, 0) for s in (AgentState.RESERVED, AgentState.ON_CALL, AgentState.WRAP_UP))
        return agents.get(AgentState.AVAILABLE, 0), busy

    # -- web chats (callcenter.chat_service) ------------------------------------------------------
    def chat_queued(self, tenant_id: int, conversation_id: str, queue: str, caller: str,
                    variables: dict[str, Any], priority: int = 0) -> None:
        """A chat waits in ``queue`` (an agent's hidden queue: ``direct_queue``) for an agent."""
        self._chats.add(conversation_id)
        self._handle(tenant_id, CallQueued(conversation_id, queue, priority, time.time(), caller=caller,
                                           variables=variables, channel="chat"))

    def chat_accepted(self, tenant_id: int, conversation_id: str, agent_id: str) -> bool:
        """The agent accepted the chat offered to them; False when that offer had ended already."""
        engine = self.engines.get(tenant_id)
        if engine is None:
            return False
        actions = engine.handle(OfferAccepted(conversation_id, agent_id, time.time()))
        refused = any(isinstance(a, CancelOffer) and a.call_id == conversation_id and a.agent_id == agent_id
                      for a in actions)
        self._apply(tenant_id, actions)
        self._arm()
        return not refused

    def chat_declined(self, tenant_id: int, conversation_id: str, agent_id: str,
                      reason: Literal["declined", "no_answer", "unreachable"] = "declined") -> None:
        self._handle(tenant_id, OfferFailed(conversation_id, agent_id, time.time(), reason))

    def chat_ended(self, tenant_id: int, conversation_id: str) -> None:
        """The chat with its agent is over (or was transferred away from them): the slot is free."""
        self._handle(tenant_id, CallEnded(conversation_id, time.time()))
        self._chats.discard(conversation_id)

    def chat_left(self, tenant_id: int, conversation_id: str) -> None:
        """The visitor left before an agent took the chat."""
        self._handle(tenant_id, CallerHungUp(conversation_id, time.time()))
        self._chats.discard(conversation_id)

    def chat_held(self, tenant_id: int, conversation_id: str, agent_id: str | None) -> bool:
        """Whether the tenant's engine holds the chat (waiting, or with ``agent_id``): a takeover's
        live snapshot keeps chats, a restart's does not. A held chat is this service's again."""
        engine = self.engines.get(tenant_id)
        if engine is None:
            return False
        held = self._in_line(tenant_id, conversation_id) or (
            agent_id is not None and any(a.agent_id == agent_id and conversation_id in a.chats
                                         for a in engine.agents()))
        if held:
            self._chats.add(conversation_id)
        return held

    def chat_offered_to(self, tenant_id: int, conversation_id: str) -> str | None:
        """The agent a waiting chat is ringing (a takeover's engine may hold such an offer)."""
        engine = self.engines.get(tenant_id)
        try:
            offered = engine.waiting_call(conversation_id).offered_to if engine is not None else ()
        except RequestRefused:
            return None
        return offered[0] if offered else None

    def chat_position(self, tenant_id: int, conversation_id: str) -> int | None:
        """The chat's place in its queue's line (1: next), None when it is not waiting here."""
        engine = self.engines.get(tenant_id)
        if engine is None:
            return None
        try:
            return engine.waiting_call(conversation_id).position
        except RequestRefused:
            return None

    def chat_staffed(self, tenant_id: int, queue: str) -> bool:
        """Whether an agent of ``queue`` is signed in with their page open and may take chats."""
        engine = self.engines.get(tenant_id)
        if engine is None:
            return False
        members = engine.members(queue)
        return any(a.agent_id in members and a.state != AgentState.OFFLINE and a.chat_capacity > 0
                   for a in engine.agents())

    def call_ended(self, tenant_id: int, engine_call_id: str) -> None:
        """The agent's part of a call is over (wrap-up follows)."""
        self._handle(tenant_id, CallEnded(engine_call_id, time.time()))

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
                await _until_ended_or_handed_on(call, run if waiting.consult_of is None else None)
            return waiting.done.result()  # an IVR node, None, or REHOME (the engine moved away)
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
            if self.forward is not None:  # the tenant's engine runs on another node: it must hear this
                self.forward(tenant_id, event)
            return
        self._apply(tenant_id, engine.handle(event))
        self._arm()

    def _apply(self, tenant_id: int, actions: list[Action]) -> None:
        self._dirty.add(tenant_id)
        for action in actions:
            if action.call_id in self._chats or (isinstance(action, Offer) and action.channel == "chat"):
                if isinstance(action, Overflow):
                    self._chats.discard(action.call_id)
                else:
                    self._chats.add(action.call_id)
                self.chat_actions.put_nowait((tenant_id, action))
                continue
            if isinstance(action, Offer):
                if action.call_id in self._dialing_out:  # an agent's own call: reserved, nothing rings
                    self._dialing_out[action.call_id] = True
                    continue
                waiting = self.waiting.get(action.call_id)
                if waiting is None and action.call_id in self._expected:  # rung once handed over again
                    self._expected[action.call_id].append(action.agent_id)
                    continue
                if waiting is None:  # the caller is gone; tell the engine the offer failed
                    self._spawn(self._later(tenant_id, OfferFailed(action.call_id, action.agent_id, time.time(),
                                                                   "no_answer")))
                    continue
                waiting.rings[action.agent_id] = self._spawn(self._ring(waiting, action.agent_id))
            elif isinstance(action, CancelOffer):
                if action.agent_id in self._expected.get(action.call_id, ()):
                    self._expected[action.call_id].remove(action.agent_id)
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
        identity = self.directory.agent(waiting.tenant_id, agent_id)
        call = waiting.call
        config = self.queue_settings(waiting.tenant_id, waiting.queue)
        ring_timeout = config.ring_timeout if config is not None else 15.0
        try:
            if identity is None:
                raise DialError("agent has no phone", 0, "unreachable")
            softphones = self._softphones.get((waiting.tenant_id, agent_id))
            if softphones is not None:
                leg = await softphones.ring(waiting.tenant_id, agent_id, call, self._offer_details(waiting),
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
            self.notes.record_event(waiting.tenant_id, call.id, "declined" if reason == "declined" else "missed",
                                    agent_id, {"queue": waiting.queue, "reason": reason})
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
            self.calls.consulted(waiting.consult_of, leg, agent_id)
            return
        waiting.run.record("answered", queue=waiting.queue, agent=identity.sip_user)
        self.calls.answered(self, waiting, agent_id, leg)

    def _offer_details(self, waiting: Waiting) -> dict[str, Any]:
        """What the agent's screen pop shows: the caller, the queue, the wait and what the IVR learned."""
        run = waiting.run
        record = waiting.consult_of.caller if waiting.consult_of is not None else waiting.call
        ivr = run.context.ivr if isinstance(run, RemoteRun) else ivr_summary(run)
        return {"call_id": record.id, "caller": other_party(record), "consult": waiting.consult_of is not None,
                "queue": waiting.record_queue, "waited": round(time.time() - waiting.queued_at, 1), "ivr": ivr,
                "campaign": run.variables.get("campaign") if waiting.consult_of is None else None}

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
            if isinstance(run, RemoteRun):  # the caller's IVR (and its voicemail box) is on the entering node
                run.send({"voicemail": waiting.queue})
            else:
                await queue_voicemail(run, waiting.queue)
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
        identity = self.directory.agent(tenant_id, action.agent_id)
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
        await self.calls.called_back(self, tenant_id, action.agent_id, customer, agent, action.call_id)

    def _callback_caller_id(self, tenant_id: int) -> str:
        numbers = tenant_numbers(self.endpoint.routing, tenant_id)
        return numbers[0] if numbers else "anonymous"

    # -- calls agents place (the softphone's dial pad) -----------------------------------------
    def agent_dialing(self, tenant_id: int, agent_id: str, number: str) -> str:
        """The agent places a call: busy in the engine from now on (no offers), as a call the
        engine connects to them in their hidden queue (the way a transfer to an agent or a
        consult keeps an agent busy). Returns the engine's call id, for :meth:`call_ended` once
        the call is over (wrap-up follows, the hidden queue's) or :meth:`agent_dial_failed`.

        An agent on break or in wrap-up is made available for the moment of the offer (their
        hidden queue's entry waits, priority 99, so it is their first offer); the break resumes
        after the call. Raises :class:`OutboundRefused` when the agent may not dial."""
        engine = self.engines.get(tenant_id)
        if engine is None:  # a cluster node that does not host the tenant's ACD (the tab is moving)
            raise OutboundRefused("the ACD of this tenant is not on this node; try again", "dial-failed",
                                  target=number)
        try:
            before = engine.agent_state(agent_id)
        except KeyError:
            raise OutboundRefused("agents without queues cannot place calls", "dial-offline") from None
        check_agent(before)
        view = self.agent_view(tenant_id, agent_id)
        reason = view.reason if view is not None else None
        call_id = str(uuid.uuid4())  # 36 characters, as the agent state history stores call ids
        now = time.time()
        self._dialing_out[call_id] = False
        try:
            self._handle(tenant_id, CallQueued(call_id, direct_queue(agent_id), 99, now, caller=number))
            if not self._dialing_out[call_id]:  # on break or in wrap-up
                self._handle(tenant_id, AgentStateRequested(agent_id, "available", now, "placing a call"))
            if not self._dialing_out[call_id]:  # another offer came first (a priority 99 caller)
                self._handle(tenant_id, CallerHungUp(call_id, now))
                raise OutboundRefused("a call is being offered to you", "dial-busy")
        finally:
            del self._dialing_out[call_id]
        self._handle(tenant_id, OfferAccepted(call_id, agent_id, now))
        if before is AgentState.BREAK:  # resumes when the call's work is over
            self._handle(tenant_id, AgentStateRequested(agent_id, "break", now, reason))
        logger.info("agent placing a call", extra={"call_id": call_id, "agent_id": agent_id})
        return call_id

    def agent_dial_failed(self, tenant_id: int, call_id: str, agent_id: str) -> None:
        """The agent's call was not answered: no conversation, no wrap-up."""
        now = time.time()
        self._handle(tenant_id, CallEnded(call_id, now))
        self._handle(tenant_id, WrapUpEnded(agent_id, now))

    # -- a cluster: tenants hosted here or elsewhere -----------------------------------------------
    async def adopt(self, tenant_id: int) -> tuple[tuple[str, int] | None, AcdEngine] | None:
        """This node now hosts ``tenant_id``: its engine, as the previous owner's last snapshot
        left it (the whole live state). Returns the node (name, run) that saved it and the
        engine, for the takeover's clean-up (``acd_cluster.py``); None if the tenant is gone or
        was lost again."""
        configs = await asyncio.get_running_loop().run_in_executor(None, self._load_all, tenant_id)
        if not configs or not self.owners.local(tenant_id):
            return None
        config = configs[0]
        meta = (config.snapshot or {}).get("cluster", {})
        previous = (str(meta["node"]), int(meta.get("run") or 0)) if meta.get("node") else None
        self._adopted_log[tenant_id] = str(meta.get("log") or "0-0")
        self._install(config, time.time())
        self._dirty.add(tenant_id)
        self._arm()
        logger.info("hosting tenant %d's ACD (taken over from %s)", tenant_id, previous[0] if previous else "nobody",
                    extra={"tenant_id": tenant_id})
        return previous, self.engines[tenant_id]

    def last_log_position(self, tenant_id: int) -> str:
        """The input log position the snapshot :meth:`adopt` restored covers."""
        return self._adopted_log.get(tenant_id, "0-0")

    def apply_input(self, tenant_id: int, event: Any) -> None:
        """An input from elsewhere (another node's, or a takeover's clean-up) for an engine hosted
        here; one that no longer fits (a call that ended meanwhile) is let go."""
        if tenant_id not in self.engines:
            return
        try:
            self._handle(tenant_id, event)
        except RequestRefused as exc:
            logger.debug("ACD input no longer applies: %s", exc, extra={"tenant_id": tenant_id})
            self._arm()

    def expect_back(self, call_ids: list[str]) -> None:
        """A takeover found these callers in line: their nodes are handing them over again."""
        for call_id in call_ids:
            self._expected.setdefault(call_id, [])

    def not_back(self, tenant_id: int, call_id: str) -> None:
        """A caller a takeover found in line was not handed over again in time: it is gone."""
        if self._expected.pop(call_id, None) is not None and call_id not in self.waiting:
            self.apply_input(tenant_id, CallerHungUp(call_id, time.time()))

    def _in_line(self, tenant_id: int, call_id: str) -> bool:
        """Whether the tenant's engine has ``call_id`` waiting (a takeover restored it)."""
        try:
            self.engines[tenant_id].waiting_call(call_id)
        except RequestRefused:
            return False
        return True

    def relinquish(self, tenant_id: int) -> None:
        """This node no longer hosts ``tenant_id`` (its lease is lost or given back): the engine
        goes; callers waiting here follow the tenant to its new owner (handed over, keeping their
        place), legs handed over by other nodes are let go (their node hands them over again),
        calls with agents go on here and report their end to the new owner."""
        if self.engines.pop(tenant_id, None) is None:
            return
        self._dirty.discard(tenant_id)
        for waiting in [w for w in self.waiting.values() if w.tenant_id == tenant_id]:
            for ring in waiting.rings.values():
                ring.cancel()
            if waiting.agent_leg is not None or waiting.done.done():
                continue
            if waiting.call.internal:
                self._spawn(waiting.call.hangup("owner_changed", side="platform"))
            elif waiting.consult_of is None:
                waiting.done.set_result(REHOME)
        for softphones in {s for (tid, _), s in self._softphones.items() if tid == tenant_id}:
            softphones.tenant_moved(tenant_id)
        self._arm()
        logger.info("no longer hosting tenant %d's ACD", tenant_id, extra={"tenant_id": tenant_id})

    async def take_handover(self, leg: Call, tenant_id: int, context: Context) -> None:
        """A caller another node hands over (``handover.py``): ``leg`` waits in ``context.queue``
        like a caller of this node, or takes its place again after a takeover. Returns when its
        stay is over; the entering node then hears the outcome (an IVR node to go on at)."""
        if tenant_id not in self.engines or (context.queue not in self.queues.get(tenant_id, {})
                                             and not context.queue.startswith("agent:")):
            await leg.hangup("not_hosted_here", status=503)  # the entering node looks for the owner again
            return
        await leg.answer()
        run = RemoteRun(leg, tenant_id, context, self._spawn)
        waiting = self._queue_call(tenant_id, run, context.queue, context.priority, context.variables,  # type: ignore[arg-type]
                                   record_queue=context.record_queue,
                                   rejoin=context.reattach and self._in_line(tenant_id, leg.id))
        waiting.queued_at = context.queued_at
        result = await self._serve(waiting)
        if not leg.ended:
            if result is not None and result != REHOME:
                with suppress(CallError):
                    await leg.send_message({"ivr_node": result})
            await leg.hangup("queue_done", side="platform")

    # -- events, timers, persistence -----------------------------------------------------------
    def _on_event(self, tenant_id: int, event: Any) -> None:
        if isinstance(event, AgentStateChanged):
            self._history.append({
                "tenant_id": tenant_id, "agent_id": int(event.agent_id), "old_state": str(event.old),
                "new_state": str(event.new), "reason": event.reason, "call_id": getattr(event, "call_id", None),
                "at": datetime.fromtimestamp(event.at, timezone.utc)})
        self.publish(tenant_id, event)
        for softphones in {s for (tid, _), s in self._softphones.items() if tid == tenant_id}:
            softphones.on_acd_event(tenant_id, event)

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

    async def save(self, *, everything: bool = False) -> None:
        """Write changed tenants' snapshots (``everything``: every tenant's hosted here, as a
        drain hands them over) and the agent state history (off the event loop)."""
        if everything:
            self._dirty.update(self.engines)
        if not self._dirty and not self._history:
            return
        snapshots = {tid: self._snapshot(tid) for tid in self._dirty if tid in self.engines and self.owners.local(tid)}
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
        if self.log_positions is not None:
            for tenant_id, snapshot in snapshots.items():
                position = snapshot.get("cluster", {}).get("log")
                if position:
                    self.log_positions.saved(tenant_id, position)

    def _snapshot(self, tenant_id: int) -> dict[str, Any]:
        """What is saved of a tenant's engine: on a single node what survives a restart; in a
        cluster the whole live state, for the node that takes the tenant over, with this node's
        name and lease epoch (a paused former owner's late save must not overwrite a newer one)."""
        engine = self.engines[tenant_id]
        if not self.owners.clustered:
            return engine.snapshot()
        position = self.log_positions.position(tenant_id) if self.log_positions is not None else None
        return {"cluster": {"node": self.node_id, "run": self.node_run, "epoch": self.owners.epoch(tenant_id),
                            "saved_at": time.time(), "log": position}, "engine": engine.snapshot(live=True)}

    def _write(self, snapshots: dict[int, dict[str, Any]], history: list[dict[str, Any]]) -> None:
        with Session(self.db) as db, db.begin():
            for tenant_id, snapshot in snapshots.items():
                epoch = snapshot.get("cluster", {}).get("epoch")
                row = db.get(AcdSnapshot, tenant_id, with_for_update=True)
                if row is None:
                    db.add(AcdSnapshot(tenant_id=tenant_id, snapshot=snapshot, epoch=epoch, updated_at=utcnow()))
                elif epoch is not None and row.epoch is not None and row.epoch > epoch:
                    logger.warning("ACD snapshot not saved: a newer owner saved one", extra={"tenant_id": tenant_id})
                else:
                    row.snapshot, row.epoch, row.updated_at = snapshot, epoch, utcnow()
            if history:
                db.execute(AgentStateChange.__table__.insert(), history)  # type: ignore[attr-defined]

    async def stop(self) -> None:
        self.registrar.remove_listener(self.device_changed)
        if self._timer is not None:
            self._timer.cancel()
        if self._saver is not None:
            self._saver.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self.save()
