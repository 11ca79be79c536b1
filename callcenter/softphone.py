"""The agents' browser softphones on this node: one :class:`AgentSession` per agent.

A session holds the tab's WebSocket (signalling, README "Softphone protocol"), the tab's
WebRTC line, the offer ringing and the agent's call leg. The leg is a
:class:`~sip_bridge.call.Call` whose endpoint is this service, so the ACD bridges it
and call control holds and transfers it like any other leg.

The line is set up when the tab connects, not per call: accepting a call only switches
audio onto it. A reload or a network drop brings a new socket and a new line; the
agent's call leg stays, and the new line is attached to it (the caller hears a gap).
A session whose socket stays away longer than the grace period is logged off: the
agent goes offline, an offer ringing moves on, a call in progress goes back to its
queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from acd import AgentState, AgentStateChanged
from campaigns.outcomes import dial_outcome
from sip_bridge.call import Call, CallError, DialError
from sip_bridge.media import MediaClock
from sip_bridge.tones import sine
from softphone_web.browser_leg import BrowserStream
from softphone_web.ice import ice_servers
from softphone_web.rtc import OfferError, WebRtcLine, answer_offer

from .acd_service import AcdService, direct_queue
from .agent_directory import AgentDirectory
from .call_control import CallControl, Connection, TransferError
from .call_notes import CallNotes
from .campaign_service import CampaignService
from .chat_service import ChatError, ChatService
from .db_health import database_unavailable
from .desk import save_wrapup
from .models import Agent, Tenant, User
from .outbound import (Dialer, OutboundRefused, caller_id_for, check_agent, check_number, failure_error,
                       normalise_dialed, tenant_numbers)
from .settings import Settings

logger = logging.getLogger(__name__)

HEARTBEAT_TIMEOUT = 15.0
"""Seconds without any message (the page pings every 5 s) after which the socket counts as gone."""
SEND_AWAY_DELAY = 0.5
"""Seconds a tab sent to its tenant's new node still gets the messages queued for it before the close."""
DIGITS = re.compile(r"^[0-9*#A-D]{1,32}$")
DIAL_TIMEOUT = 60.0
"""Seconds a call the agent places may ring before it counts as not answered."""
RINGBACK = sine(450.0, 1.0, amplitude=0.2) + bytes(2 * 8000 * 4)
"""What the agent hears while the call rings (China's ringback, 450 Hz 1 s on 4 s off: the
carrier's early media is not relayed, the node rings back itself)."""


@dataclass
class Offer:
    details: dict[str, Any]
    expires_at: float
    answer: asyncio.Future[bool]


@dataclass
class Outbound:
    """A call the agent places from the dial pad, from the request until it ends."""

    number: str
    caller_id: str
    #: the engine's call id that keeps the agent busy (``AcdService.agent_dialing``)
    engine_call_id: str
    #: the customer's leg once it exists (its id is the call record's), answered or not
    customer: Call | None = None
    answered: bool = False
    #: a preview campaign's contact being called (its attempt), None for a number typed
    attempt_id: int | None = None


@dataclass
class AgentSession:
    tenant_id: int
    agent_id: str
    username: str
    tenant_slug: str
    socket: WebSocket | None = None
    line: WebRtcLine | None = None
    offer: Offer | None = None
    leg: Call | None = None
    #: the caller's call id of the call in progress (the ACD's connection key)
    call_id: str | None = None
    queue: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    outbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    gone: asyncio.TimerHandle | None = None
    recording_paused: bool = False
    #: the tenant moved to another node while this tab had a call here: sent there once it ends
    moving: bool = False
    #: the call in progress is one the agent placed (None: a call the ACD offered)
    outbound: Outbound | None = None

    def send(self, message: dict[str, Any]) -> None:
        """Queue a message for the tab (dropped while no tab is connected: the next welcome has it all)."""
        if self.socket is not None:
            self.outbox.put_nowait(message)


class SoftphoneService:
    """Sessions of this node's agents, and the endpoint of their browser call legs.

    An agent's session is registered with the ACD (:meth:`AcdService.softphone_connected`)
    from the first tab's connection until the grace period runs out: meanwhile the ACD rings
    the agent here and tells this service agents' state changes. Requests about the call in
    progress go to call control; a change call control makes comes back through the agent
    leg, whose endpoint this service is (:meth:`call_changed`)."""

    def __init__(self, settings: Settings, db: Engine, acd: AcdService, calls: CallControl,
                 directory: AgentDirectory, notes: CallNotes, dialer: Dialer, clock: MediaClock,
                 campaigns: CampaignService, chats: ChatService, grace: float = 10.0) -> None:
        self.settings = settings
        #: Web chats: the ``chat_*`` messages of the tabs, and the chats each agent's page shows.
        self.chats = chats
        #: Preview campaigns: the contacts agents call from the page (``preview_next``, ``dial``
        #: with an ``attempt_id``), and the outcome of those calls.
        self.campaigns = campaigns
        self.db = db
        self.acd = acd
        self.calls = calls
        self.directory = directory
        self.notes = notes
        #: Places the calls an agent's leg dials and those agents place (the SIP endpoint); its
        #: routing table holds the tenants' dialing rules and numbers.
        self.dialer = dialer
        self.clock = clock
        self.grace = grace
        self.sessions: dict[tuple[int, str], AgentSession] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- what the ACD asks ---------------------------------------------------------------
    async def ring(self, tenant_id: int, agent_id: str, caller: Call, details: dict[str, Any], *,
                   queue: str, timeout: float) -> Call:
        """Offer a call to the agent's tab; returns the agent's leg once accepted.

        Raises :class:`DialError` when declined (603) or not answered in ``timeout``;
        a cancelled ring (ring timeout, caller gone) takes the offer off the page. A campaign's
        call (``details["campaign"]``) is accepted at once: the page shows it as a call.
        """
        session = self.sessions.get((tenant_id, agent_id))
        if session is None:
            raise DialError("softphone not connected", 0, "unreachable")
        offer = Offer({**details, "expires_at": time.time() + timeout - 5}, time.time() + timeout,
                      asyncio.get_running_loop().create_future())
        session.offer = offer
        session.send({"type": "offer", **offer.details})
        if details.get("campaign"):  # a campaign's person: connected at once, the 2 s rule leaves no time to ring
            offer.answer.set_result(True)
        reason = "timeout"
        try:
            accepted = await asyncio.wait_for(asyncio.shield(offer.answer), timeout)
        except asyncio.CancelledError:
            reason = "cancelled"
            raise
        except TimeoutError:
            raise DialError("no answer from the softphone", 408, "no_answer") from None
        finally:
            if session.offer is offer:
                session.offer = None
                if not offer.answer.done() or reason == "cancelled":
                    session.send({"type": "offer_cancelled", "call_id": details["call_id"], "reason": reason})
        if not accepted:
            raise DialError("declined on the softphone", 603, "declined")
        leg = self._agent_leg(session, f"softphone-{caller.id}", caller.caller)
        session.leg, session.call_id, session.queue, session.outbound = leg, details["call_id"], queue, None
        session.recording_paused = False
        session.send(self._call_message(session))
        return leg

    def _agent_leg(self, session: AgentSession, sip_call_id: str, party: str) -> Call:
        """The agent's leg of a call (answered: the tab's line carries it), talking to ``party``."""
        leg = Call(self, direction="agent", sip_call_id=sip_call_id, caller=party, dialed=session.username,
                   tenant_id=session.tenant_id, trunk_id=None)
        stream = BrowserStream(leg.id, self.clock)
        leg.stream = stream
        if session.line is not None:
            stream.attach(session.line)
        leg._mark_answered()
        return leg

    def on_acd_event(self, tenant_id: int, event: Any) -> None:
        """The ACD's published events: agents' state changes go to their tabs."""
        if not isinstance(event, AgentStateChanged):
            return
        session = self.sessions.get((tenant_id, event.agent_id))
        if session is not None:
            session.state = self._state_message(session, event.new, event.reason, event.at)
            session.send(session.state)
        targets = None
        for (tid, _), other in self.sessions.items():
            if tid == tenant_id and other.socket is not None:
                targets = targets or {"type": "targets", **self._targets(tenant_id)}
                other.send(targets)

    def tenant_moved(self, tenant_id: int) -> None:
        """The tenant is hosted on another node now (``AcdService.relinquish``): its tabs here
        reconnect, through any node, to the new one; a tab with a call in progress here once
        that call has ended (its agent keeps talking meanwhile)."""
        for session in [s for s in self.sessions.values() if s.tenant_id == tenant_id]:
            if session.leg is None:
                self._send_away(session)
            else:
                session.moving = True

    def _send_away(self, session: AgentSession) -> None:
        """Close the tab with 1012 (service restart: the page reconnects) and forget the session
        here without logging the agent off: the agent carries on at the tenant's new node."""
        key = (session.tenant_id, session.agent_id)
        if self.sessions.get(key) is not session:
            return
        del self.sessions[key]
        if session.gone is not None:
            session.gone.cancel()
        self.acd.softphone_gone(session.tenant_id, session.agent_id)
        socket, session.socket = session.socket, None
        logger.info("tab sent to the tenant's new node", extra={"call_id": "-", "agent": session.username})
        if socket is not None:
            async def close() -> None:
                await asyncio.sleep(SEND_AWAY_DELAY)  # the messages queued before (call_ended...) go first
                with suppress(Exception):
                    await socket.close(code=1012, reason="your tenant moved to another node; reconnecting")
            self._spawn(close())

    # -- the browser leg's endpoint (sip_bridge.call.CallEndpoint) ---------------------------------
    async def answer(self, call: Call) -> None:
        """Browser legs are answered when created."""

    async def hangup(self, call: Call, *, cause: str, status: int, side: str) -> None:
        call._mark_ended(cause, side, None)
        for session in list(self.sessions.values()):
            if session.leg is call:
                session.leg = None
                out, session.outbound = session.outbound, None
                wrapup = out is None or out.answered  # a call the agent placed that nobody answered: none
                session.send({"type": "call_ended", "call_id": session.call_id, "cause": cause, "wrapup": wrapup,
                              "wrapup_until": self._wrapup_until(session, time.time()) if wrapup else None})
                if session.moving:
                    self._send_away(session)

    async def dial(self, tenant_id: int, number: str, *, caller_id: str = "anonymous",
                   trunk_id: int | None = None, timeout: float = 60.0) -> Call:
        return await self.dialer.dial(tenant_id, number, caller_id=caller_id, trunk_id=trunk_id, timeout=timeout)

    def on_bridged_peer_ended(self, call: Call, peer: Call) -> None:
        """The party bridged to an agent's leg hung up: the agent's call ends, unless that
        party was only consulted (the agent goes back to the caller)."""
        if not call.ended and not self.calls.is_consult_leg(peer):
            self._spawn(call.hangup("bridged_peer_hangup", side="platform"))

    # -- the tab's socket ------------------------------------------------------------------
    async def serve(self, ws: WebSocket, user_id: int) -> None:
        """One tab of an authenticated agent user, until it goes away."""
        found = await asyncio.get_running_loop().run_in_executor(None, self._load_agent, user_id)
        if found is None:
            await ws.close(code=4403, reason="this user has no agent profile")
            return
        tenant_id, agent_id, username, slug, tenant_info = found
        await ws.accept()
        key = (tenant_id, agent_id)
        session = self.sessions.get(key)
        first = session is None
        if session is None:
            session = self.sessions[key] = AgentSession(tenant_id, agent_id, username, slug)
        if session.gone is not None:
            session.gone.cancel()
            session.gone = None
        if session.socket is not None:  # a second tab takes over
            with suppress(Exception):
                await session.socket.close(code=4409, reason="opened in another tab")
        session.socket = ws
        session.outbox = asyncio.Queue()
        if first:
            self.chats.agent_connected(tenant_id, agent_id, session.send)
            self.acd.softphone_connected(tenant_id, agent_id, self)
        log = {"call_id": session.call_id or "-", "agent": f"{slug}.{username}"}
        logger.info("softphone connected", extra=log)
        if session.leg is not None:
            self._event(session, "reattached")
        writer = asyncio.ensure_future(self._write(ws, session.outbox))
        session.send(self._welcome(session, tenant_info))
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(ws.receive_text(), HEARTBEAT_TIMEOUT)
                except TimeoutError:
                    logger.info("softphone heartbeat lost", extra=log)
                    break
                try:
                    message = json.loads(raw)
                    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                        raise ValueError("a message is a JSON object with a type")
                except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep to parse
                    session.send({"type": "error", "error_id": "bad-message", "params": {},
                                  "message": f"bad message: {exc}", "ref": None})
                    continue
                if message["type"] == "rtc_offer":  # ICE gathering takes a while: keep answering pings
                    self._spawn(self._dispatch(session, message, tenant_info))
                else:
                    await self._dispatch(session, message, tenant_info)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            writer.cancel()
            if session.socket is ws:
                session.socket = None
                await self._drop_line(session)
                session.gone = asyncio.get_running_loop().call_later(self.grace, self._gone, session)
                logger.info("softphone disconnected", extra=log)

    async def _write(self, ws: WebSocket, outbox: asyncio.Queue[dict[str, Any]]) -> None:
        with suppress(Exception):
            while True:
                await ws.send_text(json.dumps(await outbox.get()))

    async def _drop_line(self, session: AgentSession) -> None:
        line, session.line = session.line, None
        if line is not None:
            if session.leg is not None and isinstance(session.leg.stream, BrowserStream):
                session.leg.stream.detach(line)
            await line.close()

    def _gone(self, session: AgentSession) -> None:
        """The grace period ran out without the tab coming back."""
        key = (session.tenant_id, session.agent_id)
        if self.sessions.get(key) is not session or session.socket is not None:
            return
        del self.sessions[key]
        self.acd.softphone_gone(session.tenant_id, session.agent_id)
        self.chats.agent_gone(session.tenant_id, session.agent_id)
        logger.info("softphone gone: agent logged off", extra={"call_id": session.call_id or "-"})
        self._spawn(self._log_off(session))

    async def _log_off(self, session: AgentSession) -> None:
        """Offline at once (not after the call's wrap-up); a caller goes back to the queue."""
        tenant_id, agent_id = session.tenant_id, session.agent_id
        connection = self._connection(session)
        if connection is not None:  # the caller must not stay with an agent who is gone
            queue = connection.waiting.record_queue if connection.waiting is not None else None
            if queue in self.acd.queues.get(tenant_id, {}):
                with suppress(TransferError):
                    await self.calls.transfer(connection, "queue", queue)
            elif session.leg is not None:
                await session.leg.hangup("softphone_gone")
        self.acd.softphone_changed(tenant_id, agent_id, False)
        self.acd.request_state(tenant_id, agent_id, "offline", "softphone disconnected")
        self.acd.end_wrapup(tenant_id, agent_id)  # applies the offline now if the call left a wrap-up

    # -- requests from the tab -----------------------------------------------------------------
    async def _dispatch(self, session: AgentSession, message: dict[str, Any], tenant_info: dict[str, Any]) -> None:
        kind = message["type"]
        try:
            if kind == "ping":
                session.send({"type": "pong", "t": message.get("t")})
            elif kind == "rtc_offer":
                await self._rtc_offer(session, str(message.get("sdp", "")))
            elif kind == "set_state":
                self._set_state(session, message, tenant_info)
            elif kind in ("accept", "decline"):
                offer = session.offer
                if offer is None or offer.details["call_id"] != message.get("call_id") or offer.answer.done():
                    raise RequestError("that call is not ringing here any more", "not-ringing")
                offer.answer.set_result(kind == "accept")
            elif kind == "hangup":
                if session.leg is None:
                    raise RequestError("no call in progress", "no-call")
                connection = self._connection(session)
                if connection is not None and connection.consult is not None and connection.consult.conference is None:
                    self.calls.cancel_consult(connection)  # hang up on the consulted party only
                else:
                    await session.leg.hangup("agent_hangup", side="callee")
            elif kind == "transfer_complete":
                self.calls.complete_transfer(self._require_connection(session))
            elif kind == "transfer_cancel":
                self.calls.cancel_consult(self._require_connection(session))
            elif kind == "conference":
                self.calls.conference(self._require_connection(session))
            elif kind == "hold":
                connection = self._require_connection(session)
                if connection.consult is not None:
                    raise RequestError("the caller is on hold while you consult", "consulting")
                self.calls.hold(connection, bool(message.get("on")))
                session.send(self._call_message(session))
            elif kind == "dtmf":
                digits = str(message.get("digits", ""))
                if not DIGITS.match(digits):
                    raise RequestError("digits are 0-9, *, # or A-D", "bad-digits")
                with suppress(CallError):
                    self._require_connection(session).caller.send_dtmf(digits)
            elif kind == "transfer":
                await self._transfer(session, message)
            elif kind == "dial":
                self._dial(session, message)
            elif kind == "preview_next":
                await self._preview_next(session)
            elif kind == "preview_skip":
                try:
                    attempt_id = int(message.get("attempt_id") or 0)
                    await self.campaigns.preview_skip(session.tenant_id, session.agent_id, attempt_id)
                except (KeyError, ValueError, TypeError):
                    raise RequestError("that contact is no longer yours to call", "preview-gone") from None
                session.send({"type": "preview_skipped", "attempt_id": attempt_id})
            elif kind == "recording":
                if not tenant_info["recording_pause_allowed"]:
                    raise RequestError("pausing the recording is not allowed for this tenant",
                                       "recording-pause-not-allowed")
                connection = self._require_connection(session)
                session.recording_paused = bool(message.get("paused"))
                self.calls.pause_recording(connection, session.recording_paused, reason="agent")  # notes the event
                session.send(self._call_message(session))
            elif kind == "wrapup":
                await self._wrapup(session, message)
            elif kind.startswith("chat_"):
                await self.chats.handle_agent(session.tenant_id, session.agent_id, message)
            else:
                raise RequestError(f"unknown message type {kind!r}", "unknown-message")
        except RequestError as exc:
            session.send({"type": "error", "error_id": exc.error_id, "params": exc.params, "message": str(exc),
                          "ref": kind})
        except TransferError as exc:
            session.send({"type": "error", "error_id": exc.error_id, "params": {**exc.params, "reason": str(exc)},
                          "message": f"transfer failed: {exc}", "ref": kind})
        except OutboundRefused as exc:
            session.send({"type": "error", "error_id": exc.error_id, "params": exc.params, "message": str(exc),
                          "ref": kind})
        except ChatError as exc:
            session.send({"type": "error", "error_id": exc.error_id, "params": exc.params, "message": str(exc),
                          "ref": kind, "conversation_id": message.get("conversation_id"),
                          "client_id": message.get("client_id")})

    async def _rtc_offer(self, session: AgentSession, sdp: str) -> None:
        try:
            line, answer = await answer_offer(sdp, ice_servers(self.settings, session.username),
                                              label=session.call_id or session.username)
        except OfferError as exc:
            raise RequestError(str(exc), "audio-failed") from exc
        await self._drop_line(session)
        session.line = line
        if session.leg is not None and isinstance(session.leg.stream, BrowserStream):
            session.leg.stream.attach(line)
        session.send({"type": "rtc_answer", "sdp": answer})

    def _set_state(self, session: AgentSession, message: dict[str, Any], tenant_info: dict[str, Any]) -> None:
        state, reason = message.get("state"), message.get("reason")
        if state not in ("available", "break", "offline"):
            raise RequestError("state must be available, break or offline", "bad-state")
        if state == "break" and reason not in tenant_info["break_reasons"]:
            raise RequestError(f"break reason must be one of: {', '.join(tenant_info['break_reasons'])}",
                               "bad-break-reason")
        self.acd.request_state(session.tenant_id, session.agent_id, state, reason if state == "break" else None)
        session.send(self._current_state(session))  # also when nothing changed, or the change waits for the call's end

    async def _transfer(self, session: AgentSession, message: dict[str, Any]) -> None:
        target = message.get("target") or {}
        kind, value = target.get("kind"), str(target.get("value") or "").strip()
        mode = message.get("mode", "blind")
        if mode not in ("blind", "consult"):
            raise RequestError("a transfer is blind or consult", "bad-transfer-mode")
        if kind not in ("agent", "queue", "number") or not value:
            raise RequestError("a transfer needs a target: an agent, a queue or a number", "bad-transfer-target")
        connection = self._require_connection(session)
        if mode == "blind":
            await self.calls.transfer(connection, kind, value)
        else:
            await self.calls.consult(connection, kind, value)
            session.send(self._call_message(session))

    # -- calls the agent places ------------------------------------------------------------------
    def _dial(self, session: AgentSession, message: dict[str, Any]) -> None:
        """The dial pad: check the request (``callcenter.outbound``), make the agent busy in the
        ACD, then place the call in the background (the tab hears ringback meanwhile)."""
        if session.leg is not None or session.offer is not None:
            raise OutboundRefused("finish the call in progress first", "dial-busy")
        if session.line is None:
            raise RequestError("the audio connection is not up yet", "audio-failed")
        tenant_id = session.tenant_id
        attempt_id = message.get("attempt_id")
        if attempt_id is not None:  # a preview campaign's contact: its number, the campaign's caller ID
            try:
                plan, contact = self.campaigns.preview(tenant_id, session.agent_id, int(attempt_id))
            except (KeyError, ValueError, TypeError):
                raise RequestError("that contact is no longer yours to call", "preview-gone") from None
            number, caller_id = contact.phone, plan.caller_id
        else:
            number = normalise_dialed(str(message.get("number") or ""))
            requested = str(message.get("caller_id") or "") or next(iter(self._caller_ids(session)), None)
            caller_id = caller_id_for(self.dialer.routing, tenant_id, requested)
        check_number(self.dialer, tenant_id, number)
        engine_call_id = self.acd.agent_dialing(tenant_id, session.agent_id, number)
        out = Outbound(number, caller_id, engine_call_id, attempt_id=int(attempt_id) if attempt_id is not None else None)
        leg = self._agent_leg(session, f"softphone-{engine_call_id}", number)
        session.leg, session.call_id, session.outbound = leg, None, out
        session.queue, session.recording_paused = direct_queue(session.agent_id), False
        self._spawn(self._place(session, leg, out))

    async def _place(self, session: AgentSession, leg: Call, out: Outbound) -> None:
        """Ring the customer through the tenant's trunks until answered, refused, or the agent
        hangs up; then the conversation, in call control, until either side hangs up."""
        tenant_id, agent_id = session.tenant_id, session.agent_id
        log = {"call_id": out.engine_call_id, "agent": session.username}

        def placed(customer: Call) -> None:
            out.customer = customer
            log["call_id"] = session.call_id = customer.id
            session.send(self._call_message(session))

        ringback = asyncio.ensure_future(self._ringback(leg))
        dialing = asyncio.ensure_future(self.dialer.dial(tenant_id, out.number, caller_id=out.caller_id,
                                                         timeout=DIAL_TIMEOUT, placed=placed))
        hung_up = asyncio.ensure_future(leg.wait_ended())
        try:
            await asyncio.wait({dialing, hung_up}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hung_up.cancel()
            ringback.cancel()
            if not dialing.done():  # the agent hung up (or left) while it rang: CANCEL
                dialing.cancel()
        try:
            customer = await dialing
        except (DialError, asyncio.CancelledError) as exc:
            cause = exc.cause if isinstance(exc, DialError) else "agent_hangup"
            logger.info("call placed by the agent not answered: %s", cause, extra=log)
            self.acd.agent_dial_failed(tenant_id, out.engine_call_id, agent_id)
            if out.customer is not None:
                self.calls.dialed(tenant_id, agent_id, out.customer.id,
                                  {"number": out.number, "caller_id": out.caller_id, "outcome": cause})
            if out.attempt_id is not None:
                await self.campaigns.preview_done(out.attempt_id, dial_outcome(cause), out.customer)
            if isinstance(exc, DialError) and not leg.ended:
                session.send({"type": "error", "error_id": failure_error(exc.cause),
                              "params": {"target": out.number, "reason": str(exc)},
                              "message": f"{out.number}: {exc}", "ref": "dial"})
            await leg.hangup("not_answered", side="platform")
            return
        if leg.ended:  # the agent hung up as it was answered
            await customer.hangup("agent_hangup")
            self.acd.agent_dial_failed(tenant_id, out.engine_call_id, agent_id)
            return
        out.answered = True
        customer.bridge(leg)
        if out.attempt_id is not None:
            self._spawn(self.campaigns.preview_done(out.attempt_id, "person", customer))
        logger.info("call placed by the agent answered", extra=log)
        self.calls.dialed(tenant_id, agent_id, customer.id,
                          {"number": out.number, "caller_id": out.caller_id, "outcome": "answered"})
        session.send(self._call_message(session))
        await self.calls.dialed_out(self.acd, tenant_id, agent_id, customer, leg, out.engine_call_id)

    @staticmethod
    async def _ringback(leg: Call) -> None:
        playback = None
        try:
            with suppress(CallError):
                while not leg.ended:
                    playback = leg.play(RINGBACK, interruptible=False)
                    await playback
        finally:
            if playback is not None:
                playback.stop()

    def _caller_ids(self, session: AgentSession) -> list[str]:
        """The tenant's numbers the agent may call from, the default first: their queue's
        (``AcdService.default_caller_id``), else the tenant's first number."""
        numbers = tenant_numbers(self.dialer.routing, session.tenant_id)
        default = self.acd.default_caller_id(session.tenant_id, session.agent_id)
        if default in numbers:
            numbers.remove(default)
            numbers.insert(0, default)
        return numbers

    async def _preview_next(self, session: AgentSession) -> None:
        """The next contact of the agent's preview campaigns, for the agent to look at and call."""
        if session.leg is not None or session.offer is not None:
            raise OutboundRefused("finish the call in progress first", "dial-busy")
        view = self.acd.agent_view(session.tenant_id, session.agent_id)
        check_agent(view.state if view is not None else AgentState.OFFLINE)
        try:
            plan, contact = await self.campaigns.preview_next(session.tenant_id, session.agent_id)
        except LookupError as exc:
            if str(exc) == "preview-empty":
                raise RequestError("no contact to call now", "preview-empty") from None
            raise RequestError("you work no running preview campaign", "preview-none") from None
        session.send({"type": "preview", "attempt_id": contact.attempt_id,
                      "campaign": {"id": plan.id, "name": plan.name}, "caller_id": plan.caller_id,
                      "contact": {"phone": contact.phone, "name": contact.name, "attributes": contact.attributes}})

    def call_changed(self, connection: Connection) -> None:
        """Call control changed a call behind the tab's back (consult answered or over, transfer completed)."""
        for session in self.sessions.values():
            if session.leg is not None and session.leg is connection.agent:
                session.send(self._call_message(session))

    async def _wrapup(self, session: AgentSession, message: dict[str, Any]) -> None:
        call_id = str(message.get("call_id") or "")
        disposition = str(message.get("disposition") or "")
        notes = str(message.get("notes") or "")
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._save_wrapup, session, call_id, disposition, notes)
        except LookupError as exc:
            raise RequestError(str(exc), "call-not-found") from exc
        except ValueError as exc:  # notes too long, an unknown disposition: the page shows the reason
            raise RequestError(str(exc), "wrapup-invalid", reason=str(exc)) from exc
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            raise RequestError("the database is unavailable: the wrap-up was not saved, try again in a moment",
                               "wrapup-database-unavailable") \
                from exc
        session.send({"type": "wrapup_saved", "call_id": call_id})
        self.acd.end_wrapup(session.tenant_id, session.agent_id)

    def _save_wrapup(self, session: AgentSession, call_id: str, disposition: str, notes: str) -> None:
        with Session(self.db) as db:
            save_wrapup(db, session.tenant_id, int(session.agent_id), call_id, disposition, notes)
            db.commit()

    # -- messages ------------------------------------------------------------------------
    def _connection(self, session: AgentSession) -> Connection | None:
        return self.calls.connection_of(session.tenant_id, session.leg) if session.leg is not None else None

    def _require_connection(self, session: AgentSession) -> Connection:
        connection = self._connection(session)
        if connection is None:
            raise RequestError("no call in progress", "no-call")
        return connection

    def _call_message(self, session: AgentSession) -> dict[str, Any]:
        leg, out = session.leg, session.outbound
        connection = self._connection(session)
        consult = connection.consult if connection is not None else None
        answered = leg.answered_at if out is None else \
            out.customer.answered_at if out.customer is not None and out.answered else None
        return {"type": "call", "call_id": session.call_id, "caller": leg.caller if leg else None,
                "queue": None if out is not None else
                connection.waiting.record_queue if connection and connection.waiting else session.queue,
                "direction": "outbound" if out is not None else "inbound",
                "dialed": out.number if out is not None else None,
                "caller_id": out.caller_id if out is not None else None,
                "answered_at": answered.timestamp() if answered else None,
                "held": bool(connection and connection.held), "recording_paused": session.recording_paused,
                "consult": {"target": consult.target, "kind": consult.kind, "state": consult.state}
                if consult is not None else None,
                "conference": consult is not None and consult.conference is not None}

    def _state_message(self, session: AgentSession, state: AgentState, reason: str | None,
                       since: float) -> dict[str, Any]:
        wrapup_until = self._wrapup_until(session, since) if state == AgentState.WRAP_UP else None
        return {"type": "state", "state": str(state), "reason": reason, "since": since, "wrapup_until": wrapup_until}

    def _wrapup_until(self, session: AgentSession, start: float) -> float | None:
        """When the wrap-up of the agent's last call, begun at ``start``, ends (None: the queue has none)."""
        config = self.acd.queue_settings(session.tenant_id, session.queue or "")
        return start + config.wrapup if config is not None and config.wrapup else None

    def _targets(self, tenant_id: int) -> dict[str, Any]:
        engine = self.acd.engine(tenant_id)
        states = {a.agent_id: str(a.state) for a in engine.agents()} if engine is not None else {}
        agents = sorted(({"username": identity.username, "state": states.get(identity.agent_id)}
                         for identity in self.directory.of_tenant(tenant_id)),
                        key=lambda a: a["username"] or "")
        return {"agents": agents, "queues": sorted(self.acd.queues.get(tenant_id, {}))}

    def _current_state(self, session: AgentSession) -> dict[str, Any]:
        view = self.acd.agent_view(session.tenant_id, session.agent_id)
        if view is not None:
            session.state = self._state_message(session, view.state, view.reason, view.since)
        elif not session.state:  # not in the ACD (yet): an agent without queues
            session.state = self._state_message(session, AgentState.OFFLINE, None, time.time())
        return session.state

    def _welcome(self, session: AgentSession, tenant_info: dict[str, Any]) -> dict[str, Any]:
        self._current_state(session)
        offer = session.offer
        return {
            "type": "welcome",
            "agent": {"id": int(session.agent_id), "username": session.username, "tenant": session.tenant_slug},
            "ice_servers": ice_servers(self.settings, session.username),
            "dispositions": tenant_info["dispositions"],
            "break_reasons": tenant_info["break_reasons"],
            "features": {"recording_pause": tenant_info["recording_pause_allowed"]},
            "targets": self._targets(session.tenant_id),
            "caller_ids": self._caller_ids(session),
            "preview": self.campaigns.preview_campaigns(session.tenant_id, session.agent_id),
            "state": session.state,
            "call": self._call_message(session) if session.leg is not None else None,
            "offer": {"type": "offer", **offer.details} if offer is not None else None,
            "chats": self.chats.agent_chats(session.tenant_id, session.agent_id),
            "chat_offers": self.chats.agent_offers(session.tenant_id, session.agent_id),
        }

    def _load_agent(self, user_id: int) -> tuple[int, str, str, str, dict[str, Any]] | None:
        with Session(self.db) as db:
            row = db.execute(select(Agent, User, Tenant).join(User, User.id == Agent.user_id)
                             .join(Tenant, Tenant.id == Agent.tenant_id).where(Agent.user_id == user_id)).first()
            if row is None:
                return None
            agent, user, tenant = row
            info = {"dispositions": list(tenant.dispositions or []), "break_reasons": list(tenant.break_reasons or []),
                    "recording_pause_allowed": bool(tenant.recording_pause_allowed)}
            return tenant.id, str(agent.id), user.username, tenant.slug, info

    def _event(self, session: AgentSession, kind: str) -> None:
        if session.call_id is not None and session.leg is not None:
            self.notes.record_event(session.tenant_id, session.call_id, kind, session.agent_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for session in list(self.sessions.values()):
            if session.gone is not None:
                session.gone.cancel()
            await self._drop_line(session)
        for task in list(self._tasks):
            task.cancel()


class RequestError(Exception):
    """A tab's request that cannot be done; the message (English) goes back to the tab with
    ``error_id`` and ``params``, which the page translates."""

    def __init__(self, message: str, error_id: str = "refused", **params: str) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.params = params
