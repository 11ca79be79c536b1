"""The node's campaigns: a :class:`~campaigns.runner.CampaignRunner` for every running campaign
of a tenant whose ACD this node hosts (one node per tenant in a cluster: the lease holder's),
and what the runners need of the node (:class:`~campaigns.runner.CampaignPorts`): the database,
the SIP endpoint's trunks, the ACD's agents and the IVR's flows.

A person is handed to the campaign's agents by a flow made for the campaign: a ``queue`` node
(the ACD offers the call as any other, first among the agents' calls by the campaign's
priority; the agent's tab takes it at once) whose fallback node plays the abandon message, where
:meth:`AcdService.withdraw` sends the call when no agent has it within the 2 s rule. An
agentless campaign runs the newest version of its flow instead. Either way the call's record has
the IVR trace and a ``campaign`` event with the attempt's outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from callcenter import flows
from callcenter.acd_service import AcdService
from callcenter.call_notes import CallNotes
from callcenter.campaign_store import CampaignStore
from callcenter.models import Tenant, utcnow
from callcenter.outbound import tenant_numbers
from campaigns.outcomes import Outcome
from campaigns.rules import CallingWindow, RetryPolicy
from campaigns.runner import CampaignPlan, CampaignRunner, Dial
from campaigns.settings import CampaignSettings
from ivr.compiler import CompiledFlow, compile_flow
from ivr.engine import FlowEngine, run_flow
from ivr.trace import Trace
from sip_bridge.call import Call, CallError
from sip_bridge.endpoint import SipEndpoint

logger = logging.getLogger(__name__)

T = TypeVar("T")
WATCH_EVERY = 1.0
"""Seconds between looks at the database for campaigns started, paused or stopped (by any node's API)."""
PREVIEW_SKIP_DELAY = 60.0
"""Seconds before a contact an agent skipped is due again."""
ABANDONED = "abandoned"
"""The node of a campaign's flow a person goes to when no agent took the call in time."""


class CampaignService:
    def __init__(self, db: Engine, acd: AcdService, endpoint: SipEndpoint, flows_engine: FlowEngine,
                 notes: CallNotes) -> None:
        self.db = db
        self.store = CampaignStore(db)
        self.acd = acd
        self.endpoint = endpoint
        self.flows = flows_engine
        self.notes = notes
        self.runners: dict[int, CampaignRunner] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None
        self._zones: dict[int, str] = {}
        self._queue_flows: dict[tuple[Any, ...], CompiledFlow] = {}
        #: preview contacts agents hold: attempt id -> (campaign, contact, (tenant id, agent id))
        self._previews: dict[int, tuple[CampaignPlan, Dial, tuple[int, str]]] = {}

    async def start(self) -> None:
        self._watch = asyncio.get_running_loop().create_task(self._watch_loop())

    def wake(self) -> None:
        """A campaign changed through this node's API: look now (called from API worker threads)."""
        with suppress(RuntimeError):
            loop = self._watch.get_loop() if self._watch is not None else None
            if loop is not None:
                loop.call_soon_threadsafe(self._wake.set)

    def live(self, campaign_id: int) -> dict[str, int]:
        """The campaign's calls in progress on this node, and its queue's busy agents."""
        runner = self.runners.get(campaign_id)
        if runner is None:
            return {"lines": 0, "agents_busy": 0}
        plan = runner.plan
        busy = self.acd.staffing(plan.tenant_id, plan.queue)[1] if plan is not None and plan.queue else 0
        return {"lines": runner.lines, "agents_busy": busy}

    async def _watch_loop(self) -> None:
        while True:
            with suppress(Exception):
                for campaign_id, tenant_id in await self._db(self.store.running):
                    if campaign_id not in self._tasks and self.acd.engine(tenant_id) is not None:
                        self._run(campaign_id)
            self._wake.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), WATCH_EVERY)

    def _run(self, campaign_id: int) -> None:
        runner = self.runners[campaign_id] = CampaignRunner(campaign_id, self)
        task = self._tasks[campaign_id] = asyncio.get_running_loop().create_task(runner.run())

        def done(_: asyncio.Task[None]) -> None:
            self._tasks.pop(campaign_id, None)
            self.runners.pop(campaign_id, None)
            if not task.cancelled() and task.exception() is not None:
                logger.error("campaign %d stopped: %r", campaign_id, task.exception())

        task.add_done_callback(done)

    async def stop(self) -> None:
        tasks = [t for t in (self._watch, *self._tasks.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, partial(fn, *args, **kwargs))

    # -- CampaignPorts: the database ---------------------------------------------------------
    async def plan(self, campaign_id: int) -> CampaignPlan | None:
        row = await self._db(self.store.campaign, campaign_id)
        if row is None or self.acd.engine(row.tenant_id) is None:  # gone, or its tenant now hosted elsewhere
            return None
        if row.tenant_id not in self._zones:
            self._zones[row.tenant_id] = await self._db(self._tenant_zone, row.tenant_id)
        caller_id = row.caller_id or (self.acd.default_caller_id(row.tenant_id, queue=row.queue) if row.queue else None) \
            or next(iter(tenant_numbers(self.endpoint.routing, row.tenant_id)), "anonymous")
        return CampaignPlan(row.id, row.tenant_id, row.name, row.mode, row.status, row.queue, row.flow, caller_id,
                            CampaignSettings.model_validate(row.settings))

    def _tenant_zone(self, tenant_id: int) -> str:
        with Session(self.db) as db:
            tenant = db.get(Tenant, tenant_id)
            return tenant.timezone if tenant is not None else "Asia/Shanghai"

    # -- preview campaigns: agents dial the contacts themselves (the softphone asks) ---------------
    def preview_campaigns(self, tenant_id: int, agent_id: str) -> list[dict[str, Any]]:
        """The running preview campaigns ``agent_id`` works (has their queue's skill)."""
        engine = self.acd.engine(tenant_id)
        return [{"id": r.plan.id, "name": r.plan.name} for r in self.runners.values()
                if r.plan is not None and r.plan.mode == "preview" and r.plan.tenant_id == tenant_id
                and engine is not None and r.plan.queue is not None and agent_id in engine.members(r.plan.queue)]

    async def preview_next(self, tenant_id: int, agent_id: str) -> tuple[CampaignPlan, Dial]:
        """The next contact for the agent to call: the one they hold already, else one claimed
        from their preview campaigns. LookupError ``preview-none`` / ``preview-empty``."""
        held = next((p for p in self._previews.values() if p[2] == (tenant_id, agent_id)), None)
        if held is not None:
            return held[0], held[1]
        campaigns = self.preview_campaigns(tenant_id, agent_id)
        if not campaigns:
            raise LookupError("preview-none")
        for campaign in campaigns:
            runner = self.runners.get(campaign["id"])
            plan = runner.plan if runner is not None else None
            if plan is None:
                continue
            for dial in await self.claim(plan, 1):
                self._previews[dial.attempt_id] = (plan, dial, (tenant_id, agent_id))
                return plan, dial
        raise LookupError("preview-empty")

    def preview(self, tenant_id: int, agent_id: str, attempt_id: int) -> tuple[CampaignPlan, Dial]:
        """The contact the agent holds under ``attempt_id`` (KeyError when it is not theirs)."""
        plan, dial, holder = self._previews[attempt_id]
        if holder != (tenant_id, agent_id):
            raise KeyError(attempt_id)
        return plan, dial

    async def preview_skip(self, tenant_id: int, agent_id: str, attempt_id: int) -> None:
        """The agent passes on the contact: due again in a minute (for another agent, or later)."""
        self.preview(tenant_id, agent_id, attempt_id)
        del self._previews[attempt_id]
        await self._db(self.store.release, attempt_id, utcnow() + timedelta(seconds=PREVIEW_SKIP_DELAY))

    async def preview_done(self, attempt_id: int, outcome: Outcome, call: Call | None) -> None:
        """The agent's call to the contact was answered (``person``) or not: the attempt's outcome."""
        held = self._previews.pop(attempt_id, None)
        if held is None:
            return
        plan, dial, _ = held
        if call is not None:
            self.placed(plan, dial, call)
            self.note(plan, call, {"campaign": plan.name, "contact": dial.phone, "attempt": dial.attempt,
                                   "outcome": outcome, "amd_seconds": None})
        await self.finished(plan, dial, outcome, None)

    async def recover(self, plan: CampaignPlan) -> None:
        put_back = await self._db(self.store.recover, plan.id, utcnow())
        if put_back:
            logger.warning("campaign %s: %d contacts left mid-call by a stopped node are due again", plan.name,
                           put_back)

    async def claim(self, plan: CampaignPlan, wanted: int) -> list[Dial]:
        start, end = plan.settings.window.times()
        window = CallingWindow(start, end, frozenset(plan.settings.window.days))
        zone = plan.settings.timezone or self._zones.get(plan.tenant_id, "Asia/Shanghai")
        return await self._db(self.store.claim, plan.id, plan.tenant_id, wanted, utcnow(), caller_id=plan.caller_id,
                              window=window, zone=zone,
                              allowed=partial(self.endpoint.routing.may_dial, plan.tenant_id))

    async def finished(self, plan: CampaignPlan, dial: Dial, outcome: Outcome, amd_seconds: float | None) -> None:
        retry = RetryPolicy(plan.settings.max_attempts, {str(k): v for k, v in plan.settings.retry_delays.items()})
        await self._db(self.store.finished, dial.attempt_id, outcome, utcnow(), retry=retry, amd_seconds=amd_seconds)

    async def has_work(self, plan: CampaignPlan) -> bool:
        return await self._db(self.store.has_work, plan.id)

    async def finish(self, plan: CampaignPlan) -> None:
        await self._db(self.store.set_status, plan.id, "finished", only_from="running")

    # -- CampaignPorts: calls ------------------------------------------------------------------
    def staffing(self, plan: CampaignPlan) -> tuple[int, int]:
        if plan.queue is None:
            return 0, 0
        return self.acd.staffing(plan.tenant_id, plan.queue)

    async def dial(self, plan: CampaignPlan, dial: Dial, placed: Callable[[Call], None]) -> Call:
        return await self.endpoint.dial(plan.tenant_id, dial.phone, caller_id=plan.caller_id,
                                        timeout=plan.settings.ring_seconds, placed=placed)

    def placed(self, plan: CampaignPlan, dial: Dial, call: Call) -> None:
        asyncio.get_running_loop().run_in_executor(None, self.store.placed, dial.attempt_id, call.id)

    def note(self, plan: CampaignPlan, call: Call, detail: dict[str, object]) -> None:
        self.notes.record_event(plan.tenant_id, call.id, "campaign", None, detail)

    async def leave_message(self, plan: CampaignPlan, call: Call) -> None:
        prompt = await self.flows.services.prompts.tts(plan.settings.machine_message, plan.settings.voice)
        with suppress(CallError):
            await call.play(prompt, interruptible=False)

    async def connect(self, plan: CampaignPlan, dial: Dial, call: Call, within: float) -> bool:
        variables = {"campaign": plan.name, "contact": dial.name, **dial.attributes}
        if plan.mode == "agentless":
            version_id = await self._db(self._newest_version, plan.tenant_id, plan.flow or "")
            flow, number = await self.flows.loader.load(version_id)
            trace = Trace(call_id=call.id, tenant_id=plan.tenant_id, flow_version_id=version_id, flow=flow.name,
                          version=number)
            await run_flow(call, flow, self.flows.services, trace, variables)
            return True
        flow = self._queue_flow(plan)
        trace = Trace(call_id=call.id, tenant_id=plan.tenant_id, flow_version_id=None, flow=flow.name, version=0)
        run = asyncio.ensure_future(run_flow(call, flow, self.flows.services, trace, variables))
        deadline = time.monotonic() + within
        while call.bridged_to is None and not run.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        withdrawn = call.bridged_to is None and self.acd.withdraw(plan.tenant_id, call.id, ABANDONED)
        await run
        return not withdrawn and any(e.get("event") == "answered" for step in trace.steps for e in step.events)

    def _newest_version(self, tenant_id: int, name: str) -> int:
        with Session(self.db) as db:
            return flows.find_version(db, tenant_id, name).id

    def _queue_flow(self, plan: CampaignPlan) -> CompiledFlow:
        """The campaign's flow for persons: its queue, or the abandon message and a hang-up."""
        s = plan.settings
        key = (plan.id, plan.queue, s.priority, s.abandon_message, s.voice)
        flow = self._queue_flows.get(key)
        if flow is None:
            flow = self._queue_flows[key] = compile_flow({
                "name": f"campaign-{plan.id}", "voice": s.voice, "start": "agent",
                "nodes": [{"id": "agent", "type": "queue", "queue": plan.queue, "priority": s.priority},
                          {"id": ABANDONED, "type": "hangup", "prompt": s.abandon_message}]})
        return flow
