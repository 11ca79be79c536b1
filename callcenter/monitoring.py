"""Supervisors stepping into live calls from the browser: listen, whisper and barge.

A supervisor's tab has one WebRTC line (:class:`~softphone_web.rtc.WebRtcLine`), set up
over the wallboard's socket. Monitoring a call adds a third leg, the supervisor's
:class:`~sip_bridge.call.Call` on that line, and mixes the three with a
:class:`~sip_bridge.conference.Conference` whose hearing changes with the mode:

============  ==================  ===================  ===========================
mode          the caller hears    the agent hears      the supervisor hears
============  ==================  ===================  ===========================
``listen``    the agent           the caller           both
``whisper``   the agent           caller + supervisor  both
``barge``     agent + supervisor  caller + supervisor  both
============  ==================  ===================  ===========================

Switching mode only changes the hearing: nobody's audio drops. While the agent holds
the caller or consults someone, the monitor is suspended (call control plays hold music and
bridges the consult as usual) and resumes when caller and agent talk again. It ends
when the call ends or leaves the agent (a transfer), and when the supervisor's tab goes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sip_bridge.call import Call
from sip_bridge.conference import Conference
from sip_bridge.media import MediaClock
from softphone_web.browser_leg import BrowserStream
from softphone_web.rtc import WebRtcLine

from .call_control import CallControl, Connection

logger = logging.getLogger(__name__)

MODES = ("listen", "whisper", "barge")


class MonitorError(Exception):
    """A monitoring request that cannot be carried out; the message says why (English, for logs),
    ``error_id`` and ``params`` let the wallboard say it in the supervisor's language."""

    def __init__(self, message: str, error_id: str = "monitor-failed", **params: str) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.params = params


def hearing(mode: str, caller: str, agent: str, supervisor: str) -> dict[str, set[str]]:
    """Who hears whom (call ids) in ``mode``; see the module's table."""
    if mode not in MODES:
        raise MonitorError(f"mode must be one of {', '.join(MODES)}, not {mode!r}", "bad-mode")
    return {
        caller: {agent, supervisor} if mode == "barge" else {agent},
        agent: {caller} if mode == "listen" else {caller, supervisor},
        supervisor: {caller, agent},
    }


@dataclass
class SupervisorTab:
    """One supervisor's wallboard socket on this node: its WebRTC line and the call it monitors."""

    tenant_id: int
    user_id: int
    username: str
    #: sends a message to the tab (the wallboard socket's writer)
    send: Callable[[dict[str, Any]], None]
    line: WebRtcLine | None = None
    monitor: Monitor | None = None


@dataclass
class Monitor:
    service: MonitorService
    tab: SupervisorTab
    connection: Connection
    leg: Call
    mode: str
    conference: Conference | None = None

    @property
    def call_id(self) -> str:
        return self.connection.caller.id

    @property
    def suspended(self) -> bool:
        return self.conference is None

    def message(self) -> dict[str, Any]:
        return {"type": "monitor", "call_id": self.call_id, "agent_id": self.connection.agent_id,
                "mode": self.mode, "suspended": self.suspended}

    @property
    def legs(self) -> list[Call]:
        """Caller, agent, supervisor: the order :func:`hearing` takes their ids in."""
        return [self.connection.caller, self.connection.agent, self.leg]

    # -- called by call control when the call changes -------------------------------------------
    def suspend(self) -> None:
        """Caller and agent stop talking (hold, consult): stop mixing, call control takes over their audio."""
        if self.stop_mixing():
            self.tab.send(self.message())

    def stop_mixing(self) -> bool:
        """Whether it was mixing."""
        if self.conference is None:
            return False
        self.conference.stop()
        self.conference = None
        return True

    def resume(self) -> None:
        """Caller and agent talk again (in place of bridging them)."""
        if self.conference is not None or any(leg.ended for leg in self.legs):
            return
        self.conference = Conference(self.legs, hearing(self.mode, *(leg.id for leg in self.legs)))
        self.conference.start()
        self.tab.send(self.message())

    def end(self, reason: str) -> None:
        """The call ended or left the agent (``call_ended``, ``transferred``)."""
        self.service.end(self, reason)

    def switch(self, mode: str) -> None:
        matrix = hearing(mode, *(leg.id for leg in self.legs))
        self.mode = mode
        if self.conference is not None:
            self.conference.set_hearing(matrix)
        self.tab.send(self.message())


class MonitorService:
    """The supervisors' tabs of this node, and the endpoint of their call legs."""

    def __init__(self, calls: CallControl, clock: MediaClock) -> None:
        self.calls = calls
        self.clock = clock
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- requests from a tab --------------------------------------------------------------------
    async def attach_line(self, tab: SupervisorTab, line: WebRtcLine) -> None:
        """The tab's (new) WebRTC line; a monitored call's audio moves onto it."""
        old, tab.line = tab.line, line
        if tab.monitor is not None and isinstance(tab.monitor.leg.stream, BrowserStream):
            tab.monitor.leg.stream.attach(line)  # unhooks the old line
        if old is not None:
            await old.close()

    def monitor(self, tab: SupervisorTab, call_id: str, mode: str) -> Monitor:
        """Start monitoring ``call_id`` (the caller's call id) in ``mode``, or switch mode if
        already on it. A call of another tenant is "not found", like one that does not exist."""
        if mode not in MODES:
            raise MonitorError(f"mode must be one of {', '.join(MODES)}, not {mode!r}", "bad-mode")
        current = tab.monitor
        if current is not None and current.call_id == call_id and not current.leg.ended:
            if mode != current.mode:
                current.switch(mode)
            return current
        connection = self.calls.connections.get(call_id)
        if connection is None or connection.tenant_id != tab.tenant_id or connection.released.done():
            raise MonitorError("no such call in progress", "call-not-found")
        other = connection.monitor
        if isinstance(other, Monitor) and other.tab is not tab:
            raise MonitorError(f"{other.tab.username} is already monitoring this call", "already-monitored",
                               supervisor=other.tab.username)
        if current is not None:
            self.end(current, "switched")
        leg = Call(self, direction="monitor", sip_call_id=f"monitor-{next(self._ids)}-{call_id}",
                   caller=tab.username, dialed=connection.agent_id, tenant_id=tab.tenant_id, trunk_id=None)
        stream = BrowserStream(leg.id, self.clock)
        leg.stream = stream
        if tab.line is not None:
            stream.attach(tab.line)
        leg._mark_answered()
        monitor = tab.monitor = Monitor(self, tab, connection, leg, mode)
        connection.monitor = monitor
        if connection.hold is None and connection.consult is None:
            monitor.resume()
        else:
            tab.send(monitor.message())
        logger.info("supervisor %s monitoring", mode, extra={"call_id": call_id})
        return monitor

    def end(self, monitor: Monitor, reason: str) -> None:
        """The supervisor leaves the call; caller and agent talk on as before."""
        tab = monitor.tab
        if tab.monitor is not monitor:
            return
        tab.monitor = None
        connection = monitor.connection
        was_mixing = monitor.stop_mixing()  # no "suspended" news: the end follows
        if connection.monitor is monitor:
            connection.monitor = None
        if was_mixing and not connection.caller.ended and not connection.agent.ended \
                and not connection.released.done():
            connection.caller.bridge(connection.agent)
        if not monitor.leg.ended:
            self._spawn(monitor.leg.hangup("monitor_ended", side="platform"))
        tab.send({"type": "monitor_ended", "call_id": monitor.call_id, "reason": reason})
        logger.info("supervisor left the call (%s)", reason, extra={"call_id": monitor.call_id})

    async def close(self, tab: SupervisorTab) -> None:
        """The tab went away."""
        if tab.monitor is not None:
            self.end(tab.monitor, "supervisor_left")
        line, tab.line = tab.line, None
        if line is not None:
            await line.close()

    # -- the supervisor leg's endpoint (sip_bridge.call.CallEndpoint) -----------------------------
    async def answer(self, call: Call) -> None:
        """Monitor legs are answered when created."""

    async def hangup(self, call: Call, *, cause: str, status: int, side: str) -> None:
        call._mark_ended(cause, side, None)

    async def dial(self, tenant_id: int, number: str, *, caller_id: str = "anonymous",
                   trunk_id: int | None = None, timeout: float = 60.0) -> Call:
        raise MonitorError("a supervisor's monitor leg dials nobody", "bad-request")

    def on_bridged_peer_ended(self, call: Call, peer: Call) -> None:
        """Monitor legs are mixed, never bridged."""

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
