"""Runs a call through the flow version published on its number.

The flow runs in its own task; when the caller hangs up that task is cancelled,
so a node waiting on a CRM, a prompt or the ACD stops at once (its ``cancel``
cleans up) and the trace is saved either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import suppress
from typing import Any, Protocol

from ivr.compiler import MAIN, CompiledFlow
from ivr.runtime import CallGone, FlowLoopError, FlowRun
from ivr.services import IvrServices
from ivr.trace import Trace
from sip_bridge.call import Call, CallError

logger = logging.getLogger(__name__)


class FlowLoader(Protocol):
    async def load(self, version_id: int) -> tuple[CompiledFlow, int]:
        """The compiled flow of a stored version and its version number."""
        ...


class FlowEngine:
    def __init__(self, services: IvrServices, loader: FlowLoader) -> None:
        self.services = services
        self.loader = loader

    async def handle(self, call: Call, version_id: int) -> None:
        """Answer the call and run the flow; returns when the IVR is done with the call."""
        flow, version = await self.loader.load(version_id)
        trace = Trace(call_id=call.id, tenant_id=call.tenant_id, flow_version_id=version_id, flow=flow.name,
                      version=version)
        await run_flow(call, flow, self.services, trace)


async def run_flow(call: Call, flow: CompiledFlow, services: IvrServices, trace: Trace,
                   variables: Mapping[str, Any] | None = None) -> None:
    """Answer the call, run a compiled flow on it to the end (or the caller's hangup) and save the trace.

    What a real call and the flow simulator (:mod:`ivr.simulator`, a simulated call) both go through.
    ``variables`` are known before the flow starts (a campaign's contact: its name and attributes).
    """
    run = FlowRun(call, flow, services, trace)
    for name, value in (variables or {}).items():
        run.set_variable(name, value)
    loop = asyncio.get_running_loop()
    task = loop.create_task(_run(run))
    ended = loop.create_task(call.wait_ended())
    try:
        await asyncio.wait({task, ended}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
        if not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        if trace.result is None:
            trace.finish("caller hung up" if call.hangup_side == "caller" else "ended")
        await services.traces.save(trace)


async def _run(run: FlowRun) -> None:
    call = run.call
    try:
        await call.answer()
        await run.run_section(MAIN)
        if not call.ended:  # the main flow ran out of nodes
            run.trace.finish("hangup")
            await call.hangup("ivr_end", side="platform")
    except (CallGone, CallError):
        run.trace.finish("caller hung up")
    except FlowLoopError as exc:
        logger.error("flow %s stopped: %s", run.flow.name, exc, extra={"call_id": call.id})
        run.trace.finish(f"error: {exc}")
        await call.hangup("ivr_error", side="platform")
    except Exception as exc:  # a bug in a node must not leave the caller in silence
        logger.exception("flow %s failed", run.flow.name, extra={"call_id": call.id})
        run.trace.finish(f"error: {type(exc).__name__}")
        await call.hangup("ivr_error", side="platform")
