"""An agent's call in progress: hold, transfers, consult, conference, recording pause, monitoring.

A :class:`Connection` is a caller talking to an agent, from the agent's answer until one of
them leaves. Everything done to it after the answer happens here: the agent's softphone holds,
transfers (blind, to an agent, a queue or a number), consults, completes or cancels a warm
transfer, brings the consulted party into a conference, pauses the recording; a supervisor's
monitor (``callcenter.monitoring``) is suspended and resumed around hold and consults; and
:meth:`CallControl._bridged` keeps the connection until whichever side hangs up.

The ACD (``callcenter.acd_service``) decides who answers and keeps callers waiting; the seam
is where a call crosses between waiting and talking, and it is narrow both ways:

* the ACD hands a call over when an agent answers it (:meth:`CallControl.answered`, a
  consult's :meth:`CallControl.consulted`, a callback's :meth:`CallControl.called_back`);
* call control hands it back through the connection's :class:`CallOrigin`, the ACD it was
  answered from: queue the caller again (a blind transfer to an agent or a queue), queue the
  agent's leg for a consult or take it out again, and the agent's part of the call ended
  (the engine's ``CallEnded``).

Call control is built before the ACD (the ACD is given it), so the way back travels with each
connection, as a :class:`~sip_bridge.call.Call` carries its endpoint. Likewise the softphone
(built after both) hears of a change in a call it shows through the agent leg's endpoint
(:class:`CallDisplay`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ivr.compiler import CompiledFlow
from ivr.runtime import FlowRun, FollowUp
from sip_bridge.call import Call, CallError, DialError
from sip_bridge.conference import Conference
from sip_bridge.routing import RoutingTable

from .call_notes import CallNotes
from .surveys import survey_variables

logger = logging.getLogger(__name__)


class TransferError(Exception):
    """A transfer the ACD cannot carry out; the message says why (English, for logs), ``error_id``
    and ``params`` let the agent's page say it in the agent's language."""

    def __init__(self, message: str, error_id: str = "transfer-failed", **params: str) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.params = params


class QueueEntry(Protocol):
    """The queue entry a connection was answered from (``acd_service.Waiting``)."""

    @property
    def tenant_id(self) -> int: ...

    @property
    def call(self) -> Call: ...

    @property
    def run(self) -> FlowRun: ...

    @property
    def queue(self) -> str: ...

    @property
    def record_queue(self) -> str:
        """The queue the call record names (the caller's, also while a transfer waits for one agent)."""


class CallOrigin(Protocol):
    """The ACD a connection was answered from, as call control needs it (``AcdService``)."""

    def transfer_queue(self, connection: Connection, kind: str, target: str) -> str:
        """The queue a transfer or consult to an agent or a queue waits in; raises :class:`TransferError`."""

    def queue_caller(self, connection: Connection, queue: str, *, record_queue: str | None) -> None:
        """Blind transfer: the caller waits in ``queue`` again (the record keeps naming ``record_queue``)."""

    def queue_consult(self, connection: Connection, queue: str) -> QueueEntry:
        """Consult: the agent's leg waits in ``queue`` for a colleague (see :meth:`CallControl.consulted`)."""

    def leave_queue(self, entry: QueueEntry) -> None:
        """A consult ended while still waiting for a colleague: out of the queue."""

    def call_ended(self, tenant_id: int, engine_call_id: str) -> None:
        """The agent's part of the call is over (the agent goes to wrap-up)."""


class CallMonitor(Protocol):
    """A supervisor listening, whispering or barging in (``callcenter.monitoring.Monitor``)."""

    def suspend(self) -> None:
        """Caller and agent stop talking (hold, consult)."""

    def resume(self) -> None:
        """Caller and agent talk again: mixed with the supervisor instead of bridged."""

    def end(self, reason: str) -> None:
        """The call ended or left the agent (``call_ended``, ``transferred``)."""


@runtime_checkable
class CallDisplay(Protocol):
    """The endpoint of an agent leg that shows the call to the agent (``SoftphoneService``)."""

    def call_changed(self, connection: Connection) -> None: ...


class Dialing(Protocol):
    """Where the tenants' dialing rules are (``SipEndpoint``; the node replaces its table on reload)."""

    @property
    def routing(self) -> RoutingTable: ...


class AgentRecords(Protocol):
    """The call records (``CallRecordStore``): who answered, from which queue."""

    def call_agent(self, record_id: str, *, agent_id: int, queue: str | None,
                   handed_over: bool = False) -> Awaitable[None]: ...


class Surveys(Protocol):
    """Where a tenant's call survey comes from (``DbBackend``; see ``callcenter.surveys``)."""

    async def survey_flow(self, tenant_id: int) -> CompiledFlow | None:
        """The flow a caller goes on to when the agent hangs up; None: the caller is hung up too."""


class Recorder(Protocol):
    """The call recorder (``RecordingService``)."""

    def agent_answered(self, call: Call, agent_leg: Call, tenant_id: int, queue: str | None) -> Awaitable[None]: ...

    def pause(self, call_id: str, reason: str) -> bool | None: ...

    def resume(self, call_id: str, reason: str) -> bool | None: ...


@dataclass
class Connection:
    """A caller talking to an agent (from the agent's answer until one of them leaves)."""

    tenant_id: int
    agent_id: str
    caller: Call
    agent: Call
    #: the queue entry it was answered from (None: a callback dialed by the ACD, or a call the agent placed)
    waiting: QueueEntry | None
    #: set when the caller leaves this agent but stays on the line (a transfer)
    released: asyncio.Future[None]
    #: the ACD it was answered from
    origin: CallOrigin
    hold: asyncio.Task[None] | None = None
    consult: Consult | None = None
    monitor: CallMonitor | None = None
    #: the caller may go on to the tenant's survey when the agent hangs up (so it is not hung up with them)
    survey: bool = False

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
    waiting: QueueEntry | None = None
    dialing: asyncio.Task[None] | None = None
    conference: Conference | None = None

    @property
    def state(self) -> str:
        return "conference" if self.conference else "talking" if self.leg is not None else "dialing"


class CallControl:
    """The connections of this node, by the caller's call id, and what agents do with them."""

    def __init__(self, dialing: Dialing, hold_music: Path, notes: CallNotes, records: AgentRecords,
                 recordings: Recorder | None = None, surveys: Surveys | None = None) -> None:
        self.dialing = dialing
        self.hold_music = hold_music
        self.notes = notes
        #: The call records: who answered, from which queue.
        self.records = records
        #: The call recorder; None: nothing is recorded.
        self.recordings = recordings
        #: The tenants' call surveys; None: a caller is hung up when the agent hangs up.
        self.surveys = surveys
        self.connections: dict[str, Connection] = {}  # by the caller's call id
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- calls the ACD hands over ------------------------------------------------------------
    def answered(self, origin: CallOrigin, waiting: QueueEntry, agent_id: str, leg: Call) -> None:
        """An agent answered a caller waiting in a queue (caller and agent bridged already)."""
        connection = Connection(waiting.tenant_id, agent_id, waiting.call, leg, waiting,
                                asyncio.get_running_loop().create_future(), origin)
        self._begin(connection, answered_in=waiting.queue)

    def consulted(self, connection: Connection, leg: Call, agent_id: str | None) -> None:
        """The third party answered; the agent talks to them (bridged already)."""
        consult = connection.consult
        if consult is None or connection.agent.ended:
            self._spawn(leg.hangup("consult_cancelled"))
            return
        consult.leg, consult.agent_id = leg, agent_id
        consult.engine_call_id = connection.agent.id if agent_id is not None else None
        self.notes.record_event(connection.tenant_id, connection.caller.id, "answered", agent_id,
                                {"consult": True, "target": consult.target})
        self._spawn(self._watch_consult(connection, consult))
        self._changed(connection)

    async def called_back(self, origin: CallOrigin, tenant_id: int, agent_id: str, customer: Call, agent: Call,
                          engine_call_id: str) -> None:
        """A callback reached the customer (bridged to the agent already): until the call ends."""
        await self._dialed_connection(origin, tenant_id, agent_id, customer, agent, engine_call_id)

    def dialed(self, tenant_id: int, agent_id: str, record_id: str, detail: dict[str, Any]) -> None:
        """An agent placed a call, answered or not: the record names the agent (it is in their
        history, to call again), its events say what was dialed and how it went."""
        self._spawn(self.records.call_agent(record_id, agent_id=int(agent_id), queue=None))
        self.notes.record_event(tenant_id, record_id, "dialed", agent_id, detail)

    async def dialed_out(self, origin: CallOrigin, tenant_id: int, agent_id: str, customer: Call, agent: Call,
                         engine_call_id: str) -> None:
        """A call the agent placed was answered (bridged to the agent already): recorded as an
        answered inbound call is, held, transferred to a number, until either side hangs up
        (then the agent's wrap-up, ``origin.call_ended``)."""
        if self.recordings is not None:
            self._spawn(self.recordings.agent_answered(customer, agent, tenant_id, None))
        await self._dialed_connection(origin, tenant_id, agent_id, customer, agent, engine_call_id)

    async def _dialed_connection(self, origin: CallOrigin, tenant_id: int, agent_id: str, customer: Call,
                                 agent: Call, engine_call_id: str) -> None:
        """A customer the platform dialed talks to the agent (no queue entry): until the call ends."""
        connection = Connection(tenant_id, agent_id, customer, agent, None, asyncio.get_running_loop().create_future(),
                                origin)
        self.connections[customer.id] = connection
        await self._bridged(connection, engine_call_id=engine_call_id)

    def _begin(self, connection: Connection, answered_in: str | None = None,
               engine_call_id: str | None = None) -> None:
        """A caller answered from a queue talks to ``connection.agent`` now (the first agent, or
        the consulted one after a warm transfer): the record and the recording name the agent."""
        caller, waiting = connection.caller, connection.waiting
        record_queue = waiting.record_queue if waiting is not None else None  # None: a customer the platform dialed
        self.connections[caller.id] = connection
        if self.surveys is not None and waiting is not None and isinstance(waiting.run, FlowRun) \
                and not caller.internal:
            # the agent's leg ending must not end the caller: _bridged decides (survey or hang up)
            connection.survey = True
            caller.hangs_up_with_peer = False
        self._spawn(self.records.call_agent(caller.id, agent_id=int(connection.agent_id), queue=record_queue,
                                            handed_over=caller.internal))
        if answered_in is not None:
            self.notes.record_event(connection.tenant_id, caller.id, "answered", connection.agent_id,
                                    {"queue": answered_in})
        if self.recordings is not None:
            self._spawn(self.recordings.agent_answered(caller, connection.agent, connection.tenant_id, record_queue))
        self._spawn(self._bridged(connection, engine_call_id=engine_call_id))

    # -- the softphone's view ----------------------------------------------------------------
    def connection_of(self, tenant_id: int, leg: Call) -> Connection | None:
        """The connection in which ``leg`` is the agent's (the softphone's view of its call)."""
        return next((c for c in self.connections.values() if c.agent is leg and c.tenant_id == tenant_id), None)

    def is_consult_leg(self, leg: Call) -> bool:
        return any(c.consult is not None and c.consult.leg is leg for c in self.connections.values())

    def _changed(self, connection: Connection) -> None:
        """Tell the agent's softphone that the call's state changed (consult answered or over)."""
        endpoint = connection.agent.endpoint
        if isinstance(endpoint, CallDisplay):
            endpoint.call_changed(connection)

    # -- the bridged call's lifetime ----------------------------------------------------------
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
        surveyed = not connection.released.done() and consult is None and agent.ended and not caller.ended \
            and await self._survey(connection)
        if not connection.released.done():
            for leg in (caller, agent):
                if not leg.ended and not (surveyed and leg is caller):
                    await leg.hangup("bridged_peer_hangup")
        elif not agent.ended:
            await agent.hangup("transferred")
        if self.connections.get(caller.id) is connection:
            del self.connections[caller.id]
        if not connection.released.done():  # a transfer has told the engine already
            connection.origin.call_ended(connection.tenant_id, engine_call_id or caller.id)

    async def _survey(self, connection: Connection) -> bool:
        """The agent hung up first on a caller answered from a queue: the caller goes on to the
        tenant's survey flow (True), if it has one; its recording pauses (the rating is not the
        conversation's). See ``callcenter.surveys``."""
        caller, waiting = connection.caller, connection.waiting
        if not connection.survey or self.surveys is None or waiting is None or not isinstance(waiting.run, FlowRun):
            return False
        try:
            flow = await self.surveys.survey_flow(connection.tenant_id)
        except Exception:  # the caller is hung up as without a survey
            logger.exception("the tenant's survey flow could not be loaded", extra={"call_id": caller.id})
            return False
        if flow is None or caller.ended:
            return False
        caller.unbridge()
        caller.hangs_up_with_peer = True
        if self.recordings is not None:
            self.recordings.pause(caller.id, "survey")
        self.notes.record_event(connection.tenant_id, caller.id, "survey", connection.agent_id, {"flow": flow.name})
        waiting.run.hand_on(FollowUp(flow, survey_variables(caller.id, connection.agent_id, waiting.record_queue)))
        logger.info("the agent hung up: caller sent to the survey %s", flow.name,
                    extra={"call_id": caller.id, "tenant_id": connection.tenant_id})
        return True

    def _release(self, connection: Connection) -> None:
        """The caller leaves this agent but stays on the line: the agent's part ends now."""
        if connection.survey:  # the caller's next peer (a number, a colleague) ends it again when it leaves
            connection.caller.hangs_up_with_peer = True
        connection.released.set_result(None)
        self._end_monitor(connection, "transferred")
        if self.connections.get(connection.caller.id) is connection:
            del self.connections[connection.caller.id]
        connection.origin.call_ended(connection.tenant_id, connection.caller.id)

    # -- hold --------------------------------------------------------------------------------
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
        self.notes.record_event(connection.tenant_id, caller.id, "hold" if on else "unhold", connection.agent_id)

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

    # -- blind transfer ----------------------------------------------------------------------
    async def transfer(self, connection: Connection, kind: str, target: str) -> None:
        """Blind transfer: the caller goes to an agent, a queue or an external number; this
        agent's part ends. Raises :class:`TransferError` when the target is not possible."""
        tenant_id, caller = connection.tenant_id, connection.caller
        if connection.released.done() or caller.ended:
            raise TransferError("the call has already ended", "call-ended")
        if kind == "number":
            if not self.dialing.routing.may_dial(tenant_id, target):
                raise TransferError(f"{target} is not allowed by this tenant's dialing rules", "number-not-allowed",
                                    target=target)
            self.hold(connection, True)
            try:
                other = await caller.dial(target, timeout=30)
            except DialError as exc:
                self.hold(connection, False)
                raise TransferError(f"{target} did not answer ({exc})", "no-answer", target=target) from exc
            if connection.hold is not None:
                connection.hold.cancel()
                connection.hold = None
            caller.bridge(other)
            self.notes.record_event(tenant_id, caller.id, "transfer", connection.agent_id,
                                    {"to": "number", "target": target})
            self._release(connection)
            return
        queue = connection.origin.transfer_queue(connection, kind, target)
        caller.unbridge()
        self._release(connection)
        self.notes.record_event(tenant_id, caller.id, "transfer", connection.agent_id, {"to": kind, "target": target})
        waiting = connection.waiting  # None: a customer the platform dialed (no queue named on the record)
        if waiting is not None:
            waiting.run.record("transferred", queue=queue)
        connection.origin.queue_caller(connection, queue,
                                       record_queue=waiting.record_queue if kind == "agent" and waiting else None)

    # -- consult, warm transfer, conference ------------------------------------------------------
    async def consult(self, connection: Connection, kind: str, target: str) -> None:
        """Warm transfer, first step: the caller holds, the agent talks to an agent, a queue's
        next agent or an external number. Then :meth:`complete_transfer`, :meth:`cancel_consult`
        or :meth:`conference`."""
        tenant_id, caller = connection.tenant_id, connection.caller
        if connection.consult is not None:
            raise TransferError("already consulting; complete or cancel that first", "already-consulting")
        if connection.released.done() or caller.ended:
            raise TransferError("the call has already ended", "call-ended")
        if kind == "number":
            if not self.dialing.routing.may_dial(tenant_id, target):
                raise TransferError(f"{target} is not allowed by this tenant's dialing rules", "number-not-allowed",
                                    target=target)
        else:
            queue = connection.origin.transfer_queue(connection, kind, target)
        consult = connection.consult = Consult(kind, target)
        self.hold(connection, True)
        self.notes.record_event(tenant_id, caller.id, "consult", connection.agent_id, {"to": kind, "target": target})
        if kind == "number":
            consult.dialing = self._spawn(self._dial_consult(connection, consult))
        else:
            consult.waiting = connection.origin.queue_consult(connection, queue)

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
        self.consulted(connection, leg, None)

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
        if consult.waiting is not None:
            connection.origin.leave_queue(consult.waiting)  # stops its ringing
        if consult.dialing is not None:
            consult.dialing.cancel()
        if consult.engine_call_id is not None:
            connection.origin.call_ended(connection.tenant_id, consult.engine_call_id)
        if consult.leg is not None and not consult.leg.ended:
            connection.agent.unbridge()
            self._spawn(consult.leg.hangup("consult_ended"))
        self._changed(connection)

    def cancel_consult(self, connection: Connection) -> None:
        """The agent ends the consult (or stops it ringing) and goes back to the caller."""
        if connection.consult is None:
            raise TransferError("not consulting anyone", "not-consulting")
        self._consult_over(connection)
        self.hold(connection, False)

    def complete_transfer(self, connection: Connection) -> None:
        """Warm transfer, last step: the caller and the consulted party talk; this agent leaves."""
        consult = connection.consult
        if consult is None or consult.leg is None or consult.leg.ended:
            raise TransferError("nobody has answered the consult yet", "consult-not-answered")
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
        self.notes.record_event(connection.tenant_id, caller.id, "transfer", connection.agent_id,
                                {"to": consult.kind, "target": consult.target, "warm": True})
        self._release(connection)
        if consult.agent_id is not None:
            successor = Connection(connection.tenant_id, consult.agent_id, caller, target, connection.waiting,
                                   asyncio.get_running_loop().create_future(), connection.origin)
            self._begin(successor, engine_call_id=consult.engine_call_id)
            self._changed(successor)

    def conference(self, connection: Connection) -> None:
        """Caller, agent and the consulted party all hear each other."""
        consult = connection.consult
        if consult is None or consult.leg is None or consult.leg.ended:
            raise TransferError("nobody has answered the consult yet", "consult-not-answered")
        if consult.conference is not None:
            return
        if connection.hold is not None:
            connection.hold.cancel()
            connection.hold = None
        if connection.monitor is not None:
            connection.monitor.suspend()
        consult.conference = Conference([connection.caller, connection.agent, consult.leg])
        consult.conference.start()
        self.notes.record_event(connection.tenant_id, connection.caller.id, "conference", connection.agent_id,
                                {"target": consult.target})
        self._changed(connection)

    # -- recording ---------------------------------------------------------------------------
    def pause_recording(self, connection: Connection, paused: bool, *, reason: str) -> bool | None:
        """Pause or resume the call's recording for ``reason`` (``agent``, ``api``); None if the
        call is not being recorded."""
        if self.recordings is None:
            return None
        call_id = connection.caller.id
        changed = self.recordings.pause(call_id, reason) if paused else self.recordings.resume(call_id, reason)
        if changed:
            self.notes.record_event(connection.tenant_id, call_id,
                                    "recording_paused" if paused else "recording_resumed", connection.agent_id,
                                    {"by": reason})
        return changed

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
