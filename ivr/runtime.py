"""One call's run through a flow: variables, trace, prompts and listening for input.

Node classes do their work through a :class:`FlowRun`; it hides how a prompt is
found (TTS cache or the tenant's upload), how speech reaches the recognizer (one
feeding task per listening node, paused inside sensitive sections) and how a key
press or a spoken answer is awaited.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asr import Recognition, SpeechSession, Vad, VadEvent
from ivr.schema import Prompt
from ivr.services import IvrServices
from ivr.trace import MASK, Trace
from sip_bridge.call import Call, CallError
from sip_bridge.media import Playback

if TYPE_CHECKING:
    from ivr.compiler import CompiledFlow

logger = logging.getLogger(__name__)

SPEECH_RESULT_GRACE = 8.0
"""Once the caller has started speaking, how long to wait for the end of the utterance."""


MAX_STEPS = 1000
"""Nodes one call may visit; more means a loop in the flow (a menu retried forever by goto)."""


class FlowLoopError(RuntimeError):
    pass


class CallGone(Exception):
    """The caller hung up; the run stops."""


@dataclass(frozen=True)
class FollowUp:
    """A flow the caller goes on to once the agent is done with them, instead of being hung up (a
    satisfaction survey: Amazon Connect's disconnect flow), and the variables it starts with."""

    flow: CompiledFlow
    variables: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    """A caller's answer to a prompt: one key or one recognised utterance."""

    kind: str  # "dtmf" | "speech"
    digit: str | None = None
    recognition: Recognition | None = None


class FlowRun:
    def __init__(self, call: Call, flow: CompiledFlow, services: IvrServices, trace: Trace) -> None:
        self.call = call
        self.flow = flow
        self.services = services
        self.trace = trace
        self.sensitive_depth = 0
        self.sensitive_variables: set[str] = set()
        self.steps = 0
        now = services.now()
        self.variables: dict[str, Any] = {
            "caller": call.caller, "dialed": call.dialed, "call_id": call.id,
            "date": now.date().isoformat(), "weekday": now.isoweekday(), "hour": now.hour,
        }
        #: The prompt that speech from the caller interrupts (barge-in), if any.
        self._barge_target: Playback | None = None
        self._listening = 0
        #: Set once speech recognition did not answer in time (a wedged pool): keys only from then on.
        self._keys_only = False
        #: Where the caller goes once the agent is done (:meth:`hand_on`), until the queue node runs it.
        self.follow_up: FollowUp | None = None
        self._handed_on = asyncio.Event()

    # -- state ---------------------------------------------------------------------------
    @property
    def sensitive(self) -> bool:
        return self.sensitive_depth > 0

    @property
    def tenant_id(self) -> int | None:
        return self.call.tenant_id

    def set_variable(self, name: str, value: Any) -> None:
        self.variables[name] = value
        if self.sensitive:
            self.sensitive_variables.add(name)
        else:
            self.sensitive_variables.discard(name)

    def shareable_variables(self) -> dict[str, Any]:
        """Variables that may leave the IVR (to the ACD, the agent's screen): none from a sensitive section."""
        return {k: v for k, v in self.variables.items() if k not in self.sensitive_variables}

    def record(self, kind: str, **data: Any) -> None:
        """Add an event to the trace; inputs inside a sensitive section are masked."""
        if self.sensitive:
            data = {k: (MASK if k in ("digits", "digit", "text", "phrase", "value") else v) for k, v in data.items()}
        self.trace.event(kind, **data)

    def enter_sensitive(self) -> None:
        self.sensitive_depth += 1
        self.call.sensitive = True

    def leave_sensitive(self) -> None:
        self.sensitive_depth -= 1
        self.call.sensitive = self.sensitive_depth > 0

    async def run_section(self, section: str) -> None:
        """Run a section (the main flow or a subflow) until a node has no next step."""
        node_id: str | None = self.flow.starts[section]
        while node_id is not None:
            self.check_alive()
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise FlowLoopError(f"more than {MAX_STEPS} steps: the flow loops")
            node = self.flow.nodes[node_id]
            step = self.trace.enter(node.id, node.type)
            try:
                node_id = await node.execute(self)
            except asyncio.CancelledError:
                await node.cancel(self)
                raise
            if step.exit is None and node_id is not None:
                step.exit = node_id
            await asyncio.sleep(0)  # a chain of goto/set/condition must not hold the event loop

    def check_alive(self) -> None:
        if self.call.ended:
            raise CallGone()

    # -- after the hand-off --------------------------------------------------------------
    def hand_on(self, follow_up: FollowUp) -> None:
        """The agent is done and the caller, still on the line, goes on to ``follow_up``: the queue
        node waiting for the hand-off runs it (:meth:`run_follow_up`) and then ends the call."""
        self.follow_up = follow_up
        self._handed_on.set()

    async def handed_on(self) -> None:
        """Returns once :meth:`hand_on` has been called (what the hand-off waits for besides the end)."""
        await self._handed_on.wait()

    async def run_follow_up(self) -> None:
        """The follow-up flow's main section on this call: in this run's trace (its steps follow the
        queue's) and with this run's variables, plus its own."""
        from ivr.compiler import MAIN  # the compiler builds nodes, which import this module

        follow_up, self.follow_up = self.follow_up, None
        assert follow_up is not None
        self.record("follow_up", flow=follow_up.flow.name)
        self.flow = follow_up.flow
        for name, value in follow_up.variables.items():
            self.set_variable(name, value)
        await self.run_section(MAIN)

    # -- prompts -------------------------------------------------------------------------
    async def prompt_path(self, prompt: Prompt) -> Path:
        if prompt.file is not None:
            if self.tenant_id is None:
                raise CallError("a recorded prompt needs a tenant")
            return self.services.prompts.recorded(self.tenant_id, prompt.file)
        assert prompt.tts is not None
        return await self.services.prompts.tts(prompt.tts, prompt.voice or self.flow.voice)

    async def play(self, prompt: Prompt, *, barge_in: bool) -> bool:
        """Play a prompt to the end (True) or until the caller interrupts it (False).

        With barge-in, a key the caller already typed ahead skips the prompt.
        """
        if barge_in and self.call.pending_dtmf:
            self.record("typed_ahead")
            return False
        return await self.play_path(await self.prompt_path(prompt), barge_in=barge_in)

    async def play_path(self, path: Path | bytes, *, barge_in: bool) -> bool:
        self.check_alive()
        try:
            playback = self.call.play(path, interruptible=barge_in)
        except CallError as exc:
            raise CallGone() from exc
        self._barge_target = playback if barge_in else None
        # Outside a listening block nothing hears the caller: a voice detector alone stops the prompt.
        detector = asyncio.get_running_loop().create_task(self._detect_speech(playback)) \
            if barge_in and not self._listening and not self.sensitive else None
        try:
            completed = await playback
        finally:
            self._barge_target = None
            if detector is not None:
                detector.cancel()
        self.check_alive()
        if not completed:
            self.record("barge_in")
        return completed

    async def _detect_speech(self, playback: Playback) -> None:
        vad = Vad()
        try:
            async for frame in self.call.audio():
                if vad.process(frame) is VadEvent.START:
                    playback.stop()
                    return
        except CallError:
            return

    def _speech_started(self) -> None:
        target = self._barge_target
        if target is not None:
            target.stop()

    # -- listening -----------------------------------------------------------------------
    @asynccontextmanager
    async def listening(self, phrases: list[str] | None, *, enabled: bool = True) -> AsyncIterator[SpeechSession | None]:
        """A speech session fed with the caller's audio for the duration of the block.

        Yields None when speech is not wanted or no model is configured (DTMF still works), and
        for the rest of the call once recognition did not answer in time (``engine.wedged``).
        """
        engine = self.services.speech(self.tenant_id)
        if not enabled or not engine.available:
            yield None
            return
        if self._keys_only or engine.wedged:
            self._speech_unavailable()
            yield None
            return
        session = engine.session(phrases, call_id=self.call.id, on_speech_start=self._speech_started)
        if self.sensitive:
            session.pause()
        feeder = asyncio.get_running_loop().create_task(self._feed(session))
        self._listening += 1
        try:
            yield session
        finally:
            self._listening -= 1
            feeder.cancel()
            with suppress(asyncio.CancelledError):
                await feeder
            if session.stalled:
                self._speech_unavailable()
            session.close()

    def _speech_unavailable(self) -> None:
        """Speech recognition does not answer in time: keys only for this call, said once."""
        if self._keys_only:
            return
        self._keys_only = True
        logger.warning("speech recognition unavailable (the recognizer pool does not answer): this call's menus "
                       "take keys only", extra={"call_id": self.call.id})
        self.record("speech_unavailable")

    async def _feed(self, session: SpeechSession) -> None:
        try:
            async for frame in self.call.audio():
                session.feed(frame)
        except CallError:
            return

    async def answer(self, timeout: float, speech: SpeechSession | None, *, dtmf: bool = True) -> Answer | None:
        """The caller's next key press or utterance within ``timeout`` seconds, or None.

        An utterance already under way when the time is up gets a grace period to finish. If
        speech gives up meanwhile (the recognizer pool does not answer), keys are waited for until
        the time is up.
        """
        self.check_alive()
        loop = asyncio.get_running_loop()
        tasks: dict[asyncio.Future[Any], str] = {}
        if dtmf:
            tasks[loop.create_task(self.call.next_dtmf())] = "dtmf"
        if speech is not None:
            tasks[loop.create_task(speech.result())] = "speech"
        waiting = set(tasks)
        deadline = loop.time() + timeout
        graced = False
        answer: Answer | None = None
        try:
            while waiting and answer is None:
                done, waiting = await asyncio.wait(waiting, timeout=max(0.0, deadline - loop.time()),
                                                   return_when=asyncio.FIRST_COMPLETED)
                if not done:
                    if graced or speech is None or speech.stalled or not speech.speech_started.is_set():
                        break
                    graced = True
                    deadline = loop.time() + SPEECH_RESULT_GRACE
                    continue
                answer = next((a for task in done if (a := self._answer(tasks[task], task)) is not None), None)
                if answer is None and self.call.ended:
                    break
                if answer is None and speech is not None and speech.stalled:
                    self._speech_unavailable()
        finally:
            for task in tasks:
                task.cancel()
        self.check_alive()
        return answer

    @staticmethod
    def _answer(kind: str, task: asyncio.Future[Any]) -> Answer | None:
        if task.cancelled() or task.exception() is not None or task.result() is None:
            return None
        if kind == "dtmf":
            return Answer("dtmf", digit=task.result().digit)
        return Answer("speech", recognition=task.result())
