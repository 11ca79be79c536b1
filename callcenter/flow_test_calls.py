"""Test calls: a tenant admin calls a stored flow version from the console, over WebRTC.

No number is involved and nothing is published: the admin's browser is the caller. Its
side is a :class:`~sip_bridge.call.Call` whose media is the tab (the softphone's
:class:`~softphone_web.browser_leg.BrowserStream` on a :class:`~softphone_web.rtc.WebRtcLine`),
and that call goes through the node's own IVR (:func:`ivr.engine.run_flow` with the
engine's services), so prompts, speech recognition, CRM lookups and a ``queue`` node's
hand-off to the tenant's ACD behave as for a caller from a carrier. Keys pressed on the
page's keypad reach the flow as DTMF; the trace goes to the page as it grows.

The call has a record like any inbound call (caller ``test-call``, the flow's name as the
number dialed, no trunk) with a ``test_call`` event naming the admin, flow and version. It
uses no carrier line, so it is not counted in the tenant's concurrent calls; but it is refused
while the tenant could take no carrier call (suspended, or at its quota), and an admin has
one test call at a time (a second one ends the first).

Signalling is one WebSocket per test call (README "Test calls"): its close ends the call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import WebSocket, WebSocketDisconnect
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from callcenter import flows
from callcenter.call_notes import CallNotes
from callcenter.settings import Settings
from ivr.engine import FlowEngine, run_flow
from ivr.trace import Trace, TraceStep
from sip_bridge.call import Call
from sip_bridge.dtmf import DtmfEvent
from sip_bridge.media import MediaClock
from softphone_web.browser_leg import BrowserStream
from softphone_web.ice import ice_servers
from softphone_web.rtc import OfferError, WebRtcLine, answer_offer

logger = logging.getLogger(__name__)

CALLER = "test-call"
"""The caller number of every test call (how the call list and the console's checklist tell them)."""
DIGITS = re.compile(r"^[0-9*#]{1,32}$")
HUNG_UP = "normal_clearing"
"""The end cause when the page hangs up or goes away: a caller's BYE's."""
OFFER_TIMEOUT = 20.0
"""Seconds the page has, after the welcome, to send its WebRTC offer."""


class CallRecords(Protocol):
    """The record lifecycle of a call (the node's ``RecordObserver``)."""

    async def call_started(self, call: Call) -> None: ...

    async def call_answered(self, call: Call) -> None: ...

    async def call_ended(self, call: Call) -> None: ...


class CarrierSide(Protocol):
    """The SIP endpoint: whether a tenant may take a new call now, and the calls a flow dials."""

    def tenant_refusal(self, tenant_id: int) -> tuple[int, str, str] | None: ...

    async def dial(self, tenant_id: int, number: str, *, caller_id: str = "anonymous",
                   trunk_id: int | None = None, timeout: float = 60.0) -> Call: ...


@dataclass
class LiveTrace(Trace):
    """A trace that tells ``listener`` each time it grows (a node entered, an input, the result)."""

    listener: Callable[[Trace], None] | None = field(default=None, repr=False, compare=False)

    def enter(self, node: str, type_: str) -> TraceStep:
        step = super().enter(node, type_)
        self._changed()
        return step

    def event(self, kind: str, **data: Any) -> None:
        super().event(kind, **data)
        self._changed()

    def finish(self, result: str) -> None:
        super().finish(result)
        self._changed()

    def _changed(self) -> None:
        if self.listener is not None:
            self.listener(self)


@dataclass
class TestCall:
    """One admin's test call: the page's socket and line, and the call leg once the offer came."""

    tenant_id: int
    user_id: int
    username: str
    socket: WebSocket
    call: Call | None = None
    line: WebRtcLine | None = None
    outbox: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)

    def send(self, message: dict[str, Any]) -> None:
        self.outbox.put_nowait(message)


class TestCallService:
    """The node's test calls, and the endpoint (``CallEndpoint``) of their browser legs."""

    def __init__(self, settings: Settings, db: Engine, flows_engine: FlowEngine, records: CallRecords,
                 notes: CallNotes, clock: MediaClock, sip: CarrierSide) -> None:
        self.settings = settings
        self.db = db
        self.flows = flows_engine
        self.records = records
        self.notes = notes
        self.clock = clock
        self.sip = sip
        self.calls: dict[int, TestCall] = {}  # by the admin's user id

    # -- the page's socket -------------------------------------------------------------------
    async def serve(self, ws: WebSocket, *, tenant_id: int, user_id: int, username: str, flow: str,
                    version: int | None) -> None:
        """One test call, from the page's first message to the call's end (or the socket's close).

        Close codes (the socket is accepted first, so that the page can tell why): 4404 no such
        flow version for this tenant, 4429 the tenant may take no call now (suspended, quota)."""
        found = await asyncio.get_running_loop().run_in_executor(None, self._find, tenant_id, flow, version)
        await ws.accept()
        if found is None:
            await ws.close(code=4404, reason="flow version not found")
            return
        refusal = self.sip.tenant_refusal(tenant_id)
        if refusal is not None:
            await ws.close(code=4429, reason=refusal[2])
            return
        version_id, number = found
        previous = self.calls.get(user_id)
        if previous is not None:
            await self._end(previous, "replaced")
            with suppress(Exception):
                await previous.socket.close(code=4409, reason="another test call of yours began")
        test = self.calls[user_id] = TestCall(tenant_id, user_id, username, ws)
        writer = asyncio.ensure_future(self._write(test))
        test.send({"type": "welcome", "flow": flow, "version": number,
                   "ice_servers": ice_servers(self.settings, username)})
        try:
            await self._receive(test, flow, version_id, number)
        except (WebSocketDisconnect, RuntimeError, TimeoutError, ValueError):
            pass  # the page went away, sent no offer in time or sent no JSON: the call (if any) ends
        finally:
            await self._end(test, HUNG_UP)
            if self.calls.get(user_id) is test:
                del self.calls[user_id]
            test.outbox.put_nowait(None)
            with suppress(Exception):
                await writer

    async def _receive(self, test: TestCall, flow: str, version_id: int, number: int) -> None:
        ws = test.socket
        offer = json.loads(await asyncio.wait_for(ws.receive_text(), OFFER_TIMEOUT))
        if not isinstance(offer, dict) or offer.get("type") != "rtc_offer":
            test.send({"type": "error", "error_id": "offer-expected", "message": "the first message is the rtc_offer",
                       "ref": None})
            return
        try:
            test.line, answer = await answer_offer(str(offer.get("sdp", "")), ice_servers(self.settings, test.username),
                                                   label=f"test-call-{test.user_id}")
        except OfferError as exc:
            test.send({"type": "error", "error_id": "offer-refused", "message": str(exc), "ref": "rtc_offer"})
            return
        call = test.call = Call(self, direction="inbound", sip_call_id=f"test-call-{test.user_id}", caller=CALLER,
                                dialed=flow, tenant_id=test.tenant_id, trunk_id=None)
        stream = BrowserStream(call.id, self.clock)
        stream.attach(test.line)
        call.stream = stream
        await self.records.call_started(call)
        self.notes.record_event(test.tenant_id, call.id, "test_call", None,
                                {"user": test.username, "flow": flow, "version": number})
        logger.info("test call of flow %s v%d by %s", flow, number, test.username, extra={"call_id": call.id})
        test.send({"type": "rtc_answer", "sdp": answer, "call_id": call.id})
        runner = asyncio.ensure_future(self._run(test, call, version_id))
        try:
            while (message := await self._next_message(ws, call)) is not None:
                self._dispatch(test, call, message)
        finally:
            if not call.ended:  # the page went away
                await call.hangup(HUNG_UP, side="caller")
            await runner  # the trace saved, the page told how it ended

    async def _next_message(self, ws: WebSocket, call: Call) -> dict[str, Any] | None:
        """The page's next message, or None once the call has ended first."""
        receive = asyncio.ensure_future(ws.receive_text())
        ended = asyncio.ensure_future(call.wait_ended())
        await asyncio.wait({receive, ended}, return_when=asyncio.FIRST_COMPLETED)
        ended.cancel()
        if not receive.done():
            receive.cancel()
            return None
        try:
            message = json.loads(receive.result())
        except (ValueError, RecursionError):
            message = None
        return message if isinstance(message, dict) else {"type": None}

    def _dispatch(self, test: TestCall, call: Call, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "dtmf":
            digits = str(message.get("digits", ""))
            if not DIGITS.match(digits):
                test.send({"type": "error", "error_id": "bad-digits", "message": "digits are 0-9, * or #", "ref": kind})
                return
            for digit in digits:  # as the SIP endpoint hands on a caller's RFC 4733 digits
                call._dtmf_received(DtmfEvent(digit, 100, "info"))
        elif kind == "hangup":
            asyncio.ensure_future(call.hangup(HUNG_UP, side="caller"))
        else:
            test.send({"type": "error", "error_id": "unknown-message", "message": f"unknown message type {kind!r}",
                       "ref": kind})

    async def _run(self, test: TestCall, call: Call, version_id: int) -> None:
        """The flow on the call (the same run as a carrier call's), then the wait for its end
        (a ``queue`` node's caller goes on with an agent after the IVR)."""
        flow, number = await self.flows.loader.load(version_id)

        def changed(trace: Trace) -> None:
            test.send({"type": "trace", "call_id": call.id, "trace": trace.as_dict()})

        trace = LiveTrace(call_id=call.id, tenant_id=test.tenant_id, flow_version_id=version_id, flow=flow.name,
                          version=number, listener=changed)
        await run_flow(call, flow, self.flows.services, trace)
        await call.wait_ended()
        test.send({"type": "ended", "call_id": call.id, "cause": call.end_cause, "result": trace.result,
                   "trace": trace.as_dict()})

    async def _end(self, test: TestCall, cause: str) -> None:
        if test.call is not None and not test.call.ended:
            await test.call.hangup(cause, side="caller")
        line, test.line = test.line, None
        if line is not None:
            await line.close()

    async def _write(self, test: TestCall) -> None:
        with suppress(Exception):
            while (message := await test.outbox.get()) is not None:
                await test.socket.send_text(json.dumps(message))
            await test.socket.close(code=1000)

    def _find(self, tenant_id: int, name: str, version: int | None) -> tuple[int, int] | None:
        with Session(self.db) as db:
            try:
                row = flows.find_version(db, tenant_id, name, version)
            except flows.FlowStoreError:
                return None
            return row.id, row.version

    # -- the browser leg's endpoint (sip_bridge.call.CallEndpoint) -------------------------------
    async def answer(self, call: Call) -> None:
        """The IVR answers: the record says so (the tab's media is up already)."""
        call._mark_answered()
        await self.records.call_answered(call)

    async def hangup(self, call: Call, *, cause: str, status: int, side: str) -> None:
        call._mark_ended(cause, side, None)
        logger.info("test call ended: %s (%s)", cause, side, extra={"call_id": call.id})
        await self.records.call_ended(call)

    async def dial(self, tenant_id: int, number: str, *, caller_id: str = "anonymous",
                   trunk_id: int | None = None, timeout: float = 60.0) -> Call:
        return await self.sip.dial(tenant_id, number, caller_id=caller_id, trunk_id=trunk_id, timeout=timeout)

    def on_bridged_peer_ended(self, call: Call, peer: Call) -> None:
        """The agent hung up: the test call ends as a caller's would."""
        if not call.ended:
            asyncio.ensure_future(call.hangup("bridged_peer_hangup", side="callee"))

    async def stop(self) -> None:
        for test in list(self.calls.values()):
            await self._end(test, "node_stopping")

