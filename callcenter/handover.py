"""Callers handed between nodes of a cluster: a caller entering one node (where its IVR runs)
waits in the queues of the node that owns its tenant (see ``tenant_owners.py``).

The entering node A sends an INVITE to the owner O (``SipEndpoint.dial_node``) with the call's
queue and screen pop in ``X-CC-*`` headers, and relays the caller to that leg (G.711 payloads
untouched, RFC 4733 keys too). O puts the leg in the queue like a local caller (the leg's id is
the caller's record id, so the record, events and recording O writes are the caller's). What
O's ACD records on the caller's IVR run (answered, abandoned, callback, overflow) comes back to
A in messages on the leg (SIP INFO), so A's IVR trace stays whole, and so does the outcome: an IVR
node to continue at, or a voicemail to take on A.

If the leg ends with no outcome and before an agent answered, O is gone: A hands the caller to
the new owner (``reattach``), which finds the call where O's last snapshot left it, so the caller
keeps its place. Each INVITE carries an HMAC of the cluster's shared secret, the time and the
sender, checked with the sender's address against the live nodes (``ClusterHandovers``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sip_bridge.call import Call, CallError, DialError
from sip_bridge.endpoint import Handover
from sip_bridge.message import SipRequest

logger = logging.getLogger(__name__)

HEADER_PREFIX = "X-CC-"
#: Seconds a handover's token stays valid (clocks of a cluster's nodes agree to within this).
TOKEN_WINDOW = 60.0
#: Bytes of the base64 context header at most (one SIP header line holds 8 KB).
MAX_CONTEXT = 6_000
#: Seconds a caller waits for a tenant's owner to appear (a takeover in progress) before giving up.
OWNER_WAIT = 15.0
#: Pause between attempts to reach the owner.
RETRY = 0.5
#: :meth:`HandoverClient.enqueue`'s answer when this node became the tenant's owner meanwhile: the
#: caller waits here after all (an IVR node name cannot contain a NUL).
SERVE_HERE = "\0here"


def _token(secret: bytes, call_id: str, tenant_id: int, node: str, stamp: str) -> str:
    return hmac.new(secret, f"{call_id}|{tenant_id}|{node}|{stamp}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class NodeAddress:
    node_id: str
    sip: tuple[str, int]
    #: its HTTP base URL (a relayed socket connects there)
    http: str = ""


class OwnerLookup(Protocol):
    """Where a tenant's queues are (``TenantOwners``)."""

    async def owner(self, tenant_id: int) -> NodeAddress | None:
        """The live node holding the tenant's lease, or None while nobody does."""

    def epoch(self, tenant_id: int) -> int:
        """The highest lease epoch this node has seen for the tenant (0: none)."""


class Dialer(Protocol):
    async def dial_node(self, tenant_id: int, address: tuple[str, int], *, call_id: str, caller: str,
                        headers: list[tuple[str, str]], timeout: float = 10.0) -> Call: ...


@dataclass
class Context:
    """What travels with a caller to the owner: where it waits and what its screen pop shows."""

    queue: str
    priority: int
    variables: dict[str, Any]
    #: the screen pop's IVR part: ``{"inputs": [...], "variables": {...}}``
    ivr: dict[str, Any]
    record_queue: str = ""
    queued_at: float = field(default_factory=time.time)
    reattach: bool = False

    def encode(self) -> str:
        data = {"queue": self.queue, "priority": self.priority, "variables": self.variables, "ivr": self.ivr,
                "record_queue": self.record_queue, "queued_at": self.queued_at, "reattach": self.reattach}
        text = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()
        if len(text) > MAX_CONTEXT:  # the screen pop loses its variables before the queue is lost
            data["variables"], data["ivr"] = {}, {"inputs": self.ivr.get("inputs", [])[:20], "variables": {}}
            text = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()
            logger.warning("handover context too large: screen pop variables left out")
        return text

    @classmethod
    def decode(cls, text: str) -> Context:
        data = json.loads(base64.urlsafe_b64decode(text.encode()))
        if not isinstance(data, dict) or not isinstance(data.get("queue"), str):
            raise ValueError("handover context without a queue")
        return cls(queue=data["queue"], priority=int(data.get("priority", 0)),
                   variables=dict(data.get("variables") or {}), ivr=dict(data.get("ivr") or {}),
                   record_queue=str(data.get("record_queue") or data["queue"]),
                   queued_at=float(data.get("queued_at") or time.time()), reattach=bool(data.get("reattach")))


class ClusterHandovers:
    """Both ends of a handover for this node: the INVITE's headers and token, and the check of
    an incoming one (``sip_bridge.endpoint.ClusterPeers``)."""

    def __init__(self, node_id: str, secret: bytes, live_addresses: Callable[[], set[str]],
                 clock: Callable[[], float] = time.time) -> None:
        self.node_id = node_id
        self.secret = secret
        self.live_addresses = live_addresses
        self.clock = clock

    def headers(self, call_id: str, tenant_id: int, epoch: int, context: Context) -> list[tuple[str, str]]:
        stamp = f"{self.clock():.0f}"
        return [("X-CC-Tenant", str(tenant_id)), ("X-CC-Call", call_id), ("X-CC-Node", self.node_id),
                ("X-CC-Epoch", str(epoch)), ("X-CC-Time", stamp), ("X-CC-Context", context.encode()),
                ("X-CC-Token", _token(self.secret, call_id, tenant_id, self.node_id, stamp))]

    def is_peer(self, source_ip: str) -> bool:
        """Whether ``source_ip`` is a live node of the cluster (never counted towards a ban)."""
        return source_ip in self.live_addresses()

    def handover(self, request: SipRequest, source_ip: str) -> Handover | None:
        token = request.headers.get("X-CC-Token")
        if token is None:
            return None
        params = {name[len(HEADER_PREFIX):].lower(): value for name, value in request.headers.items()
                  if name.upper().startswith(HEADER_PREFIX.upper())}
        try:
            call_id, tenant_id, node, stamp = params["call"], int(params["tenant"]), params["node"], params["time"]
            fresh = abs(self.clock() - float(stamp)) <= TOKEN_WINDOW
        except (KeyError, ValueError):
            return None
        expected = _token(self.secret, call_id, tenant_id, node, stamp)
        if not fresh or not hmac.compare_digest(expected, token) or source_ip not in self.live_addresses():
            logger.warning("handover refused: bad token, stale, or not from a live node",
                           extra={"source": source_ip, "sip_call_id": request.call_id})
            return None
        return Handover(call_id=call_id, tenant_id=tenant_id, params=params)


class QueueRun(Protocol):
    """What the handover needs of the caller's IVR run (``ivr.runtime.FlowRun``)."""

    call: Call

    @property
    def tenant_id(self) -> int | None: ...

    def record(self, kind: str, **data: Any) -> None: ...

    @property
    def trace(self) -> Any: ...


@dataclass
class Outcome:
    """How a queue stay on the owner ended, as the entering node learns it."""

    answered: bool = False
    #: the trace result text the owner set (``callback: sales``...): the stay is over
    result: str | None = None
    #: an IVR node to go on at (``None``: the call is over)
    ivr_node: str | None = None
    #: a queue whose voicemail the caller leaves on this node
    voicemail: str | None = None

    @property
    def final(self) -> bool:
        return self.answered or self.result is not None or self.ivr_node is not None or self.voicemail is not None


class HandoverClient:
    """The entering node's side: hand a queued caller to the tenant's owner, relay it, and hand
    it again to a new owner if the one it waits on dies."""

    def __init__(self, dialer: Dialer, owners: OwnerLookup, handovers: ClusterHandovers,
                 hold: Callable[[Call], Awaitable[None]], voicemail: Callable[[Any, str], Awaitable[None]]) -> None:
        self.dialer = dialer
        self.owners = owners
        self.handovers = handovers
        #: plays hold music to a caller while no owner can be reached (until cancelled)
        self.hold = hold
        #: takes a voicemail for a queue on this node (the owner's overflow said so)
        self.voicemail = voicemail
        #: legs to owners now, by the owner's node name
        self._relayed: dict[str, set[Call]] = {}

    async def enqueue(self, run: QueueRun, context: Context) -> str | None:
        """Wait in ``context.queue`` on the tenant's owner; returns the IVR node to go on at, or
        None when the call is over (answered and ended, abandoned, called back later...)."""
        call = run.call
        tenant_id = run.tenant_id
        assert tenant_id is not None
        deadline = time.monotonic() + OWNER_WAIT
        music: asyncio.Task[None] | None = None
        try:
            while not call.ended:
                owner = await self.owners.owner(tenant_id)
                if owner is not None and owner.node_id == self.handovers.node_id:
                    return SERVE_HERE  # this node took the tenant over meanwhile
                leg = await self._reach(owner, call, tenant_id, context) if owner is not None else None
                if leg is None:
                    if time.monotonic() > deadline:
                        logger.error("no node hosts this tenant's queues: caller let go", extra={"call_id": call.id})
                        run.record("abandoned", queue=context.queue, reason="no_owner")
                        await call.hangup("no_queue_owner", side="platform")
                        return None
                    if music is None:
                        music = asyncio.ensure_future(self.hold(call))
                    await asyncio.sleep(RETRY)
                    continue
                if music is not None:
                    music.cancel()
                    music = None
                outcome = await self._relay(run, leg, owner.node_id)  # type: ignore[union-attr]
                if call.ended:
                    if not outcome.final:  # the caller hung up while waiting: the owner could not say so
                        run.record("abandoned", queue=context.queue)
                    return None
                if outcome.ivr_node is not None:
                    return outcome.ivr_node
                if outcome.voicemail is not None:
                    await self.voicemail(run, outcome.voicemail)
                    return None
                if outcome.final:
                    await call.hangup("bridged_peer_hangup", side="platform")
                    return None
                # the leg ended with nothing said and no agent: the owner is gone, try its successor
                logger.warning("queue owner %s lost while the caller waited: handing over again", owner.node_id,  # type: ignore[union-attr]
                               extra={"call_id": call.id})
                context.reattach = True
                deadline = time.monotonic() + OWNER_WAIT
            return None
        finally:
            if music is not None:
                music.cancel()

    async def _reach(self, owner: NodeAddress, call: Call, tenant_id: int, context: Context) -> Call | None:
        headers = self.handovers.headers(call.id, tenant_id, self.owners.epoch(tenant_id), context)
        try:
            return await self.dialer.dial_node(tenant_id, owner.sip, call_id=call.id, caller=call.caller,
                                               headers=headers)
        except DialError as exc:
            logger.info("handover to %s failed: %s", owner.node_id, exc, extra={"call_id": call.id})
            return None

    async def _relay(self, run: QueueRun, leg: Call, owner: str) -> Outcome:
        """Bridge the caller to the owner's leg and follow the owner's messages until it ends."""
        call = run.call
        outcome = Outcome()
        call.hangs_up_with_peer = False  # the owner's leg ending must not end the caller (reattach)
        try:
            call.bridge(leg)
        except CallError:
            await leg.hangup("caller_gone")
            return outcome
        relayed = self._relayed.setdefault(owner, set())
        relayed.add(leg)
        try:
            while (message := await leg.next_message()) is not None:
                if "record" in message:
                    kind = str(message["record"])
                    data = message.get("data")
                    run.record(kind, **(data if isinstance(data, dict) else {}))
                    if kind == "answered":
                        outcome.answered = True
                        call.hangs_up_with_peer = True  # from now on the conversation ends together
                elif "result" in message:
                    outcome.result = run.trace.result = str(message["result"])
                elif "ivr_node" in message:
                    outcome.ivr_node = str(message["ivr_node"])
                elif "voicemail" in message:
                    outcome.voicemail = str(message["voicemail"])
        finally:
            relayed.discard(leg)
            call.hangs_up_with_peer = True
            if not leg.ended:
                await leg.hangup("caller_gone")
            if call.bridged_to is leg:
                call.unbridge()
        logger.debug("queue stay on %s over: %s", owner, outcome, extra={"call_id": call.id})
        return outcome


    # -- tenant_owners.OwnershipListener ----------------------------------------------------------
    def node_down(self, node: Any) -> None:
        """A node died: the callers waiting on it are handed to the tenant's next owner (their
        legs to it end here now, rather than when its silence times out)."""
        for leg in list(self._relayed.get(node.node, ())):
            if not leg.ended:
                logger.info("queue owner %s died: taking the caller back", node.node, extra={"call_id": leg.id})
                asyncio.ensure_future(leg.hangup("owner_lost", side="platform"))

    def tenant_gained(self, tenant_id: int, epoch: int) -> None:
        """Nothing: callers of tenants hosted here never reach this client."""

    def tenant_lost(self, tenant_id: int, reason: str) -> None:
        """Nothing: the ACD hands this node's waiting callers over itself."""

    def reap(self, node: Any) -> None:
        """Nothing: the records are the reaper's."""


class RemoteRun:
    """A handed-over caller's IVR run, as the owner's ACD sees it: what it records goes back to
    the entering node (where the IVR trace is kept), in order."""

    def __init__(self, leg: Call, tenant_id: int, context: Context,
                 spawn: Callable[[Awaitable[Any]], Any]) -> None:
        self.call = leg
        self._tenant_id = tenant_id
        self.context = context
        self.variables = dict(context.variables)
        self.sensitive_variables: set[str] = set()
        self._spawn = spawn
        self.trace = _RemoteTrace(self)

    @property
    def tenant_id(self) -> int:
        return self._tenant_id

    def record(self, kind: str, **data: Any) -> None:
        self.send({"record": kind, "data": data})

    def send(self, message: dict[str, object]) -> None:
        """Queue a message to the entering node (sent in order; lost only with the leg)."""
        async def deliver() -> None:
            try:
                await self.call.send_message(message)
            except CallError as exc:
                logger.debug("handover message not delivered: %s", exc, extra={"call_id": self.call.id})

        self._spawn(deliver())


class _RemoteTrace:
    """The part of the IVR trace the ACD writes: the result line."""

    def __init__(self, run: RemoteRun) -> None:
        self._run = run
        self._result: str | None = None
        #: the IVR's steps stay on the entering node; the screen pop travels in the context
        self.steps: list[Any] = []

    @property
    def result(self) -> str | None:
        return self._result

    @result.setter
    def result(self, text: str | None) -> None:
        self._result = text
        self._run.send({"result": text})
