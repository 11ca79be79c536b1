"""One running campaign: how many calls to place (the pacer), which contacts (the store), and
each call from the dial to its outcome.

Every half second the runner asks the :class:`~campaigns.pacer.Pacer` how many calls to place
given the campaign's free and busy agents and the calls still without an agent, takes that many
due contacts (the store applies the calling windows, the do-not-call list and the dialing rules),
at most as many as the caller ID's rate allows, and places them. A call:

1. rings the contact (``ring_seconds``); busy, no answer or a failure is the outcome;
2. once answered, the :class:`~campaigns.amd.MachineDetector` listens to the first seconds;
3. a machine gets the campaign's message after its beep (:class:`~campaigns.amd.GreetingEnd`),
   or a hang-up, per campaign;
4. a person goes to a free agent of the campaign's queue at once (agent modes), or runs the
   campaign's flow (agentless). With no agent free within :data:`ABANDON_AFTER` seconds the call
   is an abandoned one: the person hears the campaign's short message, never silence.

What the runner needs of the node (dialing, the ACD's staffing, flows on calls, the database)
comes through :class:`CampaignPorts`, so that the node composes it and tests can stand in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import aclosing, suppress
from dataclasses import dataclass
from typing import Protocol

from campaigns.amd import GreetingEnd, MachineDetector
from campaigns.outcomes import Outcome, dial_outcome
from campaigns.pacer import Pacer, PacerView
from campaigns.rules import CallerIdRate
from campaigns.settings import CampaignSettings
from sip_bridge.call import Call, CallError, DialError

logger = logging.getLogger(__name__)

TICK = 0.5
"""Seconds between the pacer's decisions."""
ABANDON_AFTER = 2.0
"""Seconds a person who answered may wait for an agent (the regulators' 2 s rule)."""
AMD_LIMIT = 6.0
"""Seconds the machine detector may listen before it must decide on what it heard."""


@dataclass(frozen=True)
class CampaignPlan:
    """What the runner knows of its campaign (read again every few ticks: edits apply to new calls)."""

    id: int
    tenant_id: int
    name: str
    mode: str
    status: str
    queue: str | None
    flow: str | None
    caller_id: str
    settings: CampaignSettings


@dataclass(frozen=True)
class Dial:
    """A contact claimed for one call (the store made its attempt)."""

    attempt_id: int
    contact_id: int
    phone: str
    name: str
    attributes: dict[str, str]
    attempt: int


class CampaignPorts(Protocol):
    """The node, as a campaign's calls use it (``callcenter.campaign_service``)."""

    async def plan(self, campaign_id: int) -> CampaignPlan | None: ...

    async def recover(self, plan: CampaignPlan) -> None: ...

    async def claim(self, plan: CampaignPlan, wanted: int) -> list[Dial]: ...

    async def finished(self, plan: CampaignPlan, dial: Dial, outcome: Outcome, amd_seconds: float | None) -> None: ...

    async def has_work(self, plan: CampaignPlan) -> bool: ...

    async def finish(self, plan: CampaignPlan) -> None: ...

    def staffing(self, plan: CampaignPlan) -> tuple[int, int]:
        """The campaign queue's agents (free, busy)."""
        ...

    async def dial(self, plan: CampaignPlan, dial: Dial, placed: Callable[[Call], None]) -> Call: ...

    def placed(self, plan: CampaignPlan, dial: Dial, call: Call) -> None: ...

    async def connect(self, plan: CampaignPlan, dial: Dial, call: Call, within: float) -> bool:
        """Hand a person to a free agent of the campaign (agent modes) or run its flow
        (agentless) until the call ends; False: no agent within ``within`` seconds (the person
        heard the abandon message)."""
        ...

    async def leave_message(self, plan: CampaignPlan, call: Call) -> None: ...

    def note(self, plan: CampaignPlan, call: Call, detail: dict[str, object]) -> None: ...


class CampaignRunner:
    """Places one campaign's calls while it is running; see the module's docstring."""

    def __init__(self, campaign_id: int, ports: CampaignPorts) -> None:
        self.campaign_id = campaign_id
        self.ports = ports
        self.pacer: Pacer | None = None
        self.calls: dict[int, Call | None] = {}
        """Calls in progress by attempt id (None until the call exists)."""
        self.waiting_agent: set[int] = set()
        """Attempts placed that have no agent yet: ringing, being listened to, or connecting."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._rate: CallerIdRate | None = None
        self._reported: set[int] = set()
        """Attempts the pacer heard of before their end (a person no agent took in time)."""
        self.plan: CampaignPlan | None = None
        """The campaign as last read."""

    @property
    def lines(self) -> int:
        return len(self.calls)

    async def run(self) -> None:
        """Until the campaign is no longer running (paused, stopped, finished, deleted); calls in
        progress then go on to their end."""
        plan = self.plan = await self.ports.plan(self.campaign_id)
        if plan is None or plan.status != "running":
            return
        await self.ports.recover(plan)
        self.pacer = Pacer(plan.mode, max_abandon_rate=plan.settings.max_abandon_rate)  # type: ignore[arg-type]
        self._rate = CallerIdRate(plan.settings.caller_id_per_minute)
        ticks = 0
        try:
            while plan is not None and plan.status == "running":
                if not await self._tick(plan):
                    break
                await asyncio.sleep(TICK)
                ticks += 1
                if ticks % 4 == 0:
                    plan = self.plan = await self.ports.plan(self.campaign_id)
                    if plan is not None and self._rate.per_minute != plan.settings.caller_id_per_minute:
                        self._rate = CallerIdRate(plan.settings.caller_id_per_minute)
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _tick(self, plan: CampaignPlan) -> bool:
        """Place the calls the pacer wants; False once the campaign has nothing left to do."""
        assert self.pacer is not None and self._rate is not None
        free, busy = self.ports.staffing(plan)
        now = time.time()
        wanted = self.pacer.to_dial(PacerView(now, free, busy, len(self.waiting_agent),
                                              plan.settings.max_lines - (len(self.calls) - len(self.waiting_agent))))
        wanted = min(wanted, plan.settings.max_lines - len(self.calls))
        wanted = min(wanted, self._rate.free(plan.caller_id, now))
        dials = await self.ports.claim(plan, wanted) if wanted > 0 else []
        for dial in dials:
            self._rate.take(plan.caller_id, now)
            self.calls[dial.attempt_id] = None
            self.waiting_agent.add(dial.attempt_id)
            task = asyncio.get_running_loop().create_task(self._call(plan, dial))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if not dials and not self.calls and not await self.ports.has_work(plan):
            await self.ports.finish(plan)
            logger.info("campaign %s finished: every contact done", plan.name)
            return False
        return True

    async def _call(self, plan: CampaignPlan, dial: Dial) -> None:
        outcome: Outcome = "failed"
        amd_seconds: float | None = None
        started = time.monotonic()
        ring = 0.0
        log = {"call_id": f"campaign-{plan.id}-attempt-{dial.attempt_id}"}
        try:
            def placed(call: Call) -> None:
                self.calls[dial.attempt_id] = call
                log["call_id"] = call.id
                self.ports.placed(plan, dial, call)

            try:
                call = await self.ports.dial(plan, dial, placed)
            except DialError as exc:
                outcome = dial_outcome(exc.cause)
                logger.info("campaign %s: %s not answered (%s)", plan.name, dial.phone, exc.cause, extra=log)
                return
            ring = time.monotonic() - started
            verdict = await self._listen(call)
            amd_seconds = verdict[1] if verdict else None
            if call.ended:
                outcome = "failed" if verdict is None else verdict[0]  # hung up as it answered
            elif verdict is not None and verdict[0] == "machine":
                outcome = "machine"
                self.waiting_agent.discard(dial.attempt_id)
                await self._machine(plan, call)
            else:
                outcome = await self._person(plan, dial, call, ring)
            self.ports.note(plan, call, {"campaign": plan.name, "contact": dial.phone, "attempt": dial.attempt,
                                         "outcome": outcome, "amd_seconds": amd_seconds})
            logger.info("campaign %s: %s %s", plan.name, dial.phone, outcome, extra=log)
        except Exception:
            logger.exception("campaign %s: call to %s failed", plan.name, dial.phone, extra=log)
            call_ = self.calls.get(dial.attempt_id)
            if call_ is not None and not call_.ended:
                await call_.hangup("campaign_error")
        finally:
            self.waiting_agent.discard(dial.attempt_id)
            self.calls.pop(dial.attempt_id, None)
            if self.pacer is not None and dial.attempt_id not in self._reported:
                self.pacer.observe_attempt(outcome, ring_seconds=ring, at=time.time())
            self._reported.discard(dial.attempt_id)
            await self.ports.finished(plan, dial, outcome, amd_seconds)

    async def _listen(self, call: Call) -> tuple[Outcome, float] | None:
        """The machine detector's verdict on the first seconds of the answered call and how long
        it listened; None when the call ended before it could tell."""
        detector = MachineDetector()
        try:
            async with asyncio.timeout(AMD_LIMIT + 1.0), aclosing(call.audio()) as frames:  # type: ignore[type-var]
                async for frame in frames:
                    result = detector.feed(frame)
                    if result is not None:
                        return result.verdict, result.seconds
        except (TimeoutError, CallError):
            pass
        if call.ended:
            return None
        result = detector.timeout()
        return result.verdict, result.seconds

    async def _machine(self, plan: CampaignPlan, call: Call) -> None:
        """The campaign's message after the machine's beep, or a hang-up."""
        if plan.settings.machine_action == "message":
            end = GreetingEnd()
            with suppress(TimeoutError, CallError):
                async with asyncio.timeout(30.0), aclosing(call.audio()) as frames:  # type: ignore[type-var]
                    async for frame in frames:
                        if end.feed(frame):
                            break
            if not call.ended:
                await self.ports.leave_message(plan, call)
        if not call.ended:
            await call.hangup("campaign_machine")

    async def _person(self, plan: CampaignPlan, dial: Dial, call: Call, ring: float) -> Outcome:
        """A person: to an agent (or the flow) until the call ends."""
        started = time.monotonic()
        connecting = asyncio.ensure_future(self.ports.connect(plan, dial, call, ABANDON_AFTER))
        # the pacer counts the call as waiting for an agent until one has it (or the 2 s are up)
        while not connecting.done() and call.bridged_to is None and time.monotonic() - started < ABANDON_AFTER + 0.5:
            await asyncio.sleep(0.05)
        if call.bridged_to is None and plan.mode != "agentless" and self.pacer is not None:
            # no agent: most likely abandoned; the pacer hears it now, not after the message
            self.pacer.observe_attempt("abandoned", ring_seconds=ring, at=time.time())
            self._reported.add(dial.attempt_id)
        self.waiting_agent.discard(dial.attempt_id)
        connected = await connecting
        if connected and self.pacer is not None and plan.mode != "agentless":
            self.pacer.observe_handle(time.monotonic() - started, time.time())
        return "person" if connected else "abandoned"
