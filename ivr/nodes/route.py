"""Nodes that send the call somewhere: queue (the ACD), transfer (an external number), voicemail."""

from __future__ import annotations

import asyncio
import wave
from contextlib import suppress
from typing import TYPE_CHECKING

import numpy as np

from ivr.errors import FlowIssue
from ivr.nodes.ask import give_up
from ivr.nodes.base import Node, TenantFacts
from ivr.schema import QueueNode, TransferNode, VoicemailNode
from sip_bridge.call import CallError, DialError
from sip_bridge.tones import sine

if TYPE_CHECKING:
    from ivr.runtime import FlowRun

BEEP = sine(1000.0, 0.4)
SILENCE_RMS = 300.0
"""Frames quieter than this (16-bit RMS) count as silence when ending a voicemail."""


class Queue(Node[QueueNode]):
    """Hands the call to the ACD with its priority and variables; the trace records ``queue: <name>``.

    When the agent is done and the platform hands the caller on to another flow (a survey:
    ``FlowRun.hand_on``), that flow runs here, in the same trace, and the call ends after it."""

    type = "queue"

    async def execute(self, run: FlowRun) -> str | None:
        spec = self.spec
        variables = run.shareable_variables()
        if spec.variables is not None:
            variables = {k: v for k, v in variables.items() if k in spec.variables}
        result = f"queue: {spec.queue}"
        run.trace.finish(result)
        await run.services.traces.save(run.trace)  # visible while the caller waits
        resume_at = await run.services.queue.enqueue(run, spec.queue, spec.priority, variables)
        if run.follow_up is not None and not run.call.ended:  # the agent hung up: the survey, then the end
            await run.run_follow_up()
            if not run.call.ended:
                await run.call.hangup("ivr_end", side="platform")
            run.check_alive()  # the run ends here, also when this queue node is inside a subflow
        if resume_at is not None:  # the ACD sends the call back into the IVR (a queue fallback)
            run.trace.result = None
            run.record("queue_fallback", next=resume_at)
        return resume_at


class Transfer(Node[TransferNode]):
    """Dials an external number through the tenant's trunks (its dialing rules apply) and bridges."""

    type = "transfer"

    def references(self) -> dict[str, str | None]:
        return {"on_failure": self.spec.on_failure}

    def preconditions(self, facts: TenantFacts) -> list[FlowIssue]:
        if not facts.may_dial(self.spec.number):
            return [self.issue("number", f"{self.spec.number} is not allowed by the tenant's outbound dialing rules")]
        return []

    async def execute(self, run: FlowRun) -> str | None:
        spec = self.spec
        run.record("dialing", number=spec.number)
        try:
            other = await run.call.dial(spec.number, timeout=spec.timeout)
        except (DialError, CallError) as exc:
            run.record("transfer_failed", reason=str(exc), status=getattr(exc, "status", None))
            return await give_up(run, spec.on_failure, "transfer_failed")
        if run.call.ended:
            await other.hangup("caller_gone")
            run.check_alive()
        run.trace.finish(f"transfer: {spec.number}")
        await run.services.traces.save(run.trace)
        run.call.bridge(other)
        # Either side hanging up ends the other (the endpoint does that for bridged legs).
        waits = {asyncio.ensure_future(run.call.wait_ended()), asyncio.ensure_future(other.wait_ended())}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            if not other.ended and run.call.ended:
                await other.hangup("caller_gone")
        return None


class Voicemail(Node[VoicemailNode]):
    """Records the caller after a beep until the finish key, silence, the time limit or hangup."""

    type = "voicemail"

    def preconditions(self, facts: TenantFacts) -> list[FlowIssue]:
        return self.prompt_issues(facts, "prompt", self.spec.prompt) if self.spec.prompt else []

    async def execute(self, run: FlowRun) -> str | None:
        spec = self.spec
        if spec.prompt is not None:
            await run.play(spec.prompt, barge_in=True)
        await run.play_path(BEEP, barge_in=False)
        folder = run.services.voicemail_dir / f"tenant-{run.tenant_id}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{run.call.id}-{self.id}.wav"
        silence_ended = asyncio.Event()
        frames = 0
        loop = asyncio.get_running_loop()

        async def capture(out: wave.Wave_write) -> None:
            nonlocal frames
            quiet = 0
            heard = False
            async for frame in run.call.audio():
                out.writeframes(frame)
                frames += 1
                loud = float(np.sqrt(np.mean(np.frombuffer(frame, "<i2").astype(np.float32) ** 2))) > SILENCE_RMS
                heard = heard or loud
                quiet = 0 if loud else quiet + 1
                if heard and quiet * 0.02 >= spec.silence_seconds:
                    silence_ended.set()

        async def finish_key() -> None:
            while (event := await run.call.next_dtmf()) is not None:
                if event.digit == spec.finish_key:
                    return

        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(8000)
            tasks = {loop.create_task(capture(out)), loop.create_task(finish_key()),
                     loop.create_task(silence_ended.wait())}
            try:
                await asyncio.wait(tasks, timeout=spec.max_seconds, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with suppress(asyncio.CancelledError, CallError):
                        await task
        seconds = frames * 0.02
        run.record("voicemail", seconds=round(seconds, 2))
        await run.services.voicemail.store(run, path, seconds)
        run.check_alive()
        return spec.next
