"""Runs a flow without a call: typed keys and speech, a chosen time, mocked CRM answers.

The flow goes through :func:`ivr.engine.run_flow`, the same driver, runtime and node classes
as a real call; only the call and the platform services are simulated (:class:`SimCall`,
:class:`SimServices`). Prompts "play" at once, and a node that waits for the caller gets the
next typed input at once, so nothing sleeps. When a menu or gather waits and no input is left,
the simulated caller hangs up and the result says which node wanted input.

Inputs are consumed in order: at each prompt, the next entry of ``keys`` answers (a string of
digits: the first answers the prompt, the rest are typed ahead, e.g. ``"1234#"`` for a gather;
``""`` is silence: a no-input attempt); once the keys are used up, the next entry of ``speech``
answers a prompt that listens for speech (grammar mode matches it against the phrases as the
recognizer does).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from asr import Recognition, match_phrase
from ivr.calendar import BusinessCalendar
from ivr.compiler import CompiledFlow
from ivr.engine import run_flow
from ivr.http_fetch import HttpFetchError
from ivr.runtime import MAX_STEPS, CallGone, FlowRun
from ivr.services import HttpPolicy, IvrServices
from ivr.trace import Trace
from sip_bridge.call import DialError
from sip_bridge.dtmf import DtmfEvent
from sip_bridge.media import Playback

WALL_TIME = 2.0
"""Seconds a simulation may take (a flow runs in milliseconds; more means something waits)."""
INPUT_NODES = ("menu", "gather", "survey")
CALLER = "13800138000"
DIALED = "4000000000"


@dataclass(frozen=True)
class HttpMock:
    """What an http node's request answers in the simulation."""

    status: int = 200
    body: Any = None


@dataclass(frozen=True)
class Heard:
    """A prompt as the simulated caller hears it: TTS text, an uploaded prompt's name, or a tone."""

    tts: str | None = None
    voice: str | None = None
    file: str | None = None
    tone: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass
class SimulationResult:
    heard: dict[int, list[Heard]] = field(default_factory=dict)
    """Step index -> prompts heard in it."""
    queue: dict[str, Any] | None = None
    voicemail: bool = False
    rating: int | None = None
    """What the caller rated in a survey node (the simulation stores nothing)."""
    error: dict[str, Any] | None = None
    keys_left: list[str] = field(default_factory=list)
    speech_left: list[str] = field(default_factory=list)


class _Inputs:
    def __init__(self, keys: list[str], speech: list[str]) -> None:
        self.keys = deque(keys)
        self.speech = deque(speech)
        self.buffer: deque[str] = deque()  # digits typed ahead
        self.keys_taken = 0
        """Prompts answered by a key (or a silent key entry): a speech session opened before
        compares it to know that a key answered first."""


class SimCall:
    """The part of :class:`sip_bridge.call.Call` a flow uses, answered from the typed inputs."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.id = "simulation"
        self.caller = CALLER
        self.dialed = DIALED
        self.tenant_id = sim.tenant_id
        self.sensitive = False
        self.hangup_side: str | None = None
        self.bridged_to: SimCall | None = None
        self._ended = asyncio.Event()

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    @property
    def pending_dtmf(self) -> bool:
        return bool(self.sim.inputs.buffer)

    async def answer(self) -> None:
        return None

    async def hangup(self, cause: str = "normal_clearing", *, status: int = 480, side: str = "platform") -> None:
        if not self.ended:
            self.hangup_side = side
            self._ended.set()

    async def wait_ended(self) -> None:
        await self._ended.wait()

    def play(self, source: Any, *, interruptible: bool = True) -> Playback:
        self.sim.hear(source if isinstance(source, Heard) else Heard(tone="beep"))
        playback = Playback(b"", interruptible)
        playback.finish(True)
        return playback

    async def audio(self) -> AsyncIterator[bytes]:
        return
        yield b""  # an async generator that ends at once: the simulated caller sends no audio

    async def next_dtmf(self, timeout: float | None = None) -> DtmfEvent | None:
        """A typed-ahead digit; with no timeout (a prompt waiting for its answer) the next key entry."""
        inputs = self.sim.inputs
        if not inputs.buffer and timeout is None and not self.ended and self.sim.asking():
            if inputs.keys:
                inputs.buffer.extend(inputs.keys.popleft())
                if not inputs.buffer:
                    inputs.keys_taken += 1
                    return None  # "": the caller stays silent this time
            elif not (self.sim.listening and inputs.speech):
                await self.sim.starved()
                return None
        if not inputs.buffer:
            return None
        if timeout is None:
            inputs.keys_taken += 1
        return DtmfEvent(inputs.buffer.popleft(), 100, "simulation")

    async def dial(self, number: str, trunk: int | None = None, *, timeout: float = 60.0) -> SimCall:
        if not self.sim.may_dial(number):
            raise DialError(f"{number} is not allowed by the tenant's outbound dialing rules", 403, "rejected")
        return SimCall(self.sim)

    def bridge(self, other: SimCall) -> None:
        """The simulation ends when the caller is connected: both legs hang up."""
        self.bridged_to, other.bridged_to = other, self
        for leg in (self, other):
            leg.hangup_side = "platform"
            leg._ended.set()


class SimSpeechSession:
    def __init__(self, sim: Simulation, phrases: list[str] | None) -> None:
        self.sim = sim
        self.phrases = phrases
        self.mark = sim.inputs.keys_taken  # keys taken since then answered before speech could
        self.paused = False
        self.stalled = False
        self.speech_started = asyncio.Event()
        sim.listening += 1

    def feed(self, frame: bytes) -> None:
        return None

    def pause(self) -> None:
        """Inside a sensitive section: speech is not listened for (only keys answer)."""
        if not self.paused:
            self.paused = True
            self.sim.listening -= 1

    def close(self) -> None:
        if not self.paused:
            self.sim.listening -= 1

    async def result(self, timeout: float | None = None) -> Recognition | None:
        await asyncio.sleep(0)  # the key task of the same wait goes first: keys answer before speech
        inputs = self.sim.inputs
        if inputs.keys_taken > self.mark or self.sim.call.ended or self.paused:
            return None
        if not inputs.speech:
            await self.sim.starved()
            return None
        text = inputs.speech.popleft()
        phrase = match_phrase(text, self.phrases) if self.phrases else None
        return Recognition(text=text, confidence=1.0, phrase=phrase)


class SimSpeechEngine:
    available = True
    wedged = False

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    def session(self, phrases: list[str] | None = None, *, call_id: str | None = None,
                on_speech_start: Callable[[], None] | None = None) -> SimSpeechSession:
        return SimSpeechSession(self.sim, phrases)


class SimPrompts:
    def __init__(self, sim: Simulation) -> None:
        self.sim = sim

    async def tts(self, text: str, voice: str) -> Heard:
        return Heard(tts=text, voice=voice)

    def recorded(self, tenant_id: int, name: str) -> Heard:
        if name not in self.sim.prompts:
            # A call would end here with an error (PromptNotFound, logged with its traceback); the
            # simulation ends the same way, reported and without a traceback in the node's log.
            self.sim.fail("missing-prompt", f"no uploaded prompt named '{name}' in this tenant")
            raise CallGone()
        return Heard(file=name)


class Simulation:
    """One simulated run: the services a FlowRun asks for, answered from what the request gave."""

    def __init__(self, flow: CompiledFlow, *, keys: list[str], speech: list[str], at: datetime,
                 calendars: dict[str, BusinessCalendar], prompts: frozenset[str],
                 http: dict[str, HttpMock], queues: dict[str, dict[str, Any]],
                 may_dial: Callable[[str], bool], tenant_id: int | None) -> None:
        self.flow = flow
        self.inputs = _Inputs(keys, speech)
        self.at = at.astimezone(timezone.utc)
        self.calendars = calendars
        self.prompts = prompts
        self.http = http
        self.queues = queues
        self.may_dial = may_dial
        self.tenant_id = tenant_id
        self.listening = 0  # speech sessions open and not paused
        self.trace = Trace(call_id="simulation", tenant_id=tenant_id, flow_version_id=None, flow=flow.name,
                           version=None)
        self.call = SimCall(self)
        self.result = SimulationResult()

    # -- what the call and the services report -------------------------------------------------
    def _node(self) -> str | None:
        return self.trace.current.node if self.trace.current is not None else None

    def hear(self, heard: Heard) -> None:
        self.result.heard.setdefault(len(self.trace.steps) - 1, []).append(heard)

    def asking(self) -> bool:
        """Whether the current node asks the caller something (keys and speech answer only those)."""
        return self.trace.current is not None and self.trace.current.type in INPUT_NODES

    async def starved(self) -> None:
        """A menu or gather waits and no input is left: the simulated caller hangs up."""
        step = self.trace.current
        if step is None or not self.asking() or self.call.ended:
            return
        self.fail("needs-input", f"node '{step.node}' waits for the caller's input and none is left")
        await self.call.hangup(side="caller")

    def fail(self, code: str, message: str) -> None:
        if self.result.error is None:
            self.result.error = {"code": code, "node": self._node(), "message": message}

    # -- IvrServices ------------------------------------------------------------------------------
    async def calendar(self, tenant_id: int | None, name: str) -> BusinessCalendar | None:
        found = self.calendars.get(name)
        if found is None:
            self.fail("missing-calendar", f"no business calendar named '{name}' in this tenant")
        return found

    async def http_policy(self, tenant_id: int | None) -> HttpPolicy:
        return HttpPolicy()

    async def fetch_json(self, url: str, **_: Any) -> Any:
        node = self._node()
        mock = self.http.get(node or "")
        if mock is None:
            raise HttpFetchError("connection", f"no mocked answer for node '{node}'")
        if not 200 <= mock.status < 300:
            raise HttpFetchError("bad_status", f"HTTP {mock.status}", status=mock.status)
        return mock.body

    async def enqueue(self, run: FlowRun, queue: str, priority: int, variables: dict[str, Any]) -> str | None:
        config = self.queues.get(queue)
        self.result.queue = {"queue": queue, "priority": priority, "configured": config is not None, **(config or {}),
                             "variables": variables}
        return None

    async def save(self, trace: Trace) -> None:
        return None

    async def store(self, run: FlowRun, path: Path, seconds: float) -> None:
        self.result.voicemail = True

    async def rate(self, run: FlowRun, rating: int) -> bool:
        self.result.rating = rating
        return False

    # -- running ----------------------------------------------------------------------------------
    async def run(self) -> None:
        folder = Path(tempfile.mkdtemp(prefix="ivr-sim-"))
        services = IvrServices(prompts=SimPrompts(self), speech=lambda _tenant: SimSpeechEngine(self),  # type: ignore[arg-type,return-value]
                               directory=self, queue=self, traces=self, voicemail=self, voicemail_dir=folder,
                               now=lambda: self.at, fetch_json=self.fetch_json, ratings=self)
        try:
            await asyncio.wait_for(run_flow(self.call, self.flow, services, self.trace),  # type: ignore[arg-type]
                                   timeout=WALL_TIME)
        except TimeoutError:
            self.fail("timeout", f"the flow did not finish within {WALL_TIME:g} s")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        outcome = self.trace.result or ""
        if outcome.startswith("error: more than"):
            self.fail("loop", f"more than {MAX_STEPS} steps: the flow loops")
        elif outcome.startswith("error:") and self.result.error is None:
            self.fail("failed", outcome.removeprefix("error: "))
        self.result.keys_left = ["".join(self.inputs.buffer)] * bool(self.inputs.buffer) + list(self.inputs.keys)
        self.result.speech_left = list(self.inputs.speech)

    def report(self) -> dict[str, Any]:
        """The simulation as the API answers it: path, steps (heard, inputs, branch, exit), result, error."""
        steps = []
        for index, step in enumerate(self.trace.steps):
            events = [{k: v for k, v in e.items() if k != "at"} for e in step.events]
            item: dict[str, Any] = {"node": step.node, "type": step.type,
                                    "heard": [h.as_dict() for h in self.result.heard.get(index, [])],
                                    "inputs": [_input(e) for e in events if e["event"] in ("dtmf", "recognition",
                                                                                             "digits")],
                                    "events": events, "exit": step.exit, "branch": None}
            node = self.flow.nodes.get(step.node)
            if node is not None and step.exit is not None:
                fields = [name for name, target in node.references().items() if target == step.exit]
                outcome = next((e["event"] for e in reversed(events) if e["event"] in fields), None)
                item["branch"] = outcome or (fields[0] if fields else None)
            steps.append(item)
        return {"path": [s["node"] for s in steps], "steps": steps, "result": self._outcome(),
                "error": self.result.error,
                "unused": {"keys": self.result.keys_left, "speech": self.result.speech_left}}

    def _outcome(self) -> dict[str, Any] | None:
        text = self.trace.result
        if text is None or self.result.error is not None and self.result.error["code"] != "missing-calendar":
            return None
        kind, _, detail = text.partition(": ")
        outcome: dict[str, Any] = {"kind": kind, "text": text}
        if kind == "queue" and self.result.queue is not None:
            outcome.update(self.result.queue)
        elif kind == "transfer":
            outcome["number"] = detail
        elif kind == "hangup" and detail:
            outcome["reason"] = detail
        if self.result.rating is not None:
            outcome["rating"] = self.result.rating
        if self.result.voicemail:
            outcome["voicemail"] = True
            if kind == "hangup" and not detail:
                outcome["kind"] = "voicemail"
        return outcome


def _input(event: dict[str, Any]) -> dict[str, Any]:
    if event["event"] == "dtmf":
        return {"key": event.get("digit")}
    if event["event"] == "digits":
        return {"digits": event.get("digits")}
    return {"speech": event.get("text"), "phrase": event.get("phrase")}


async def simulate(flow: CompiledFlow, **kwargs: Any) -> dict[str, Any]:
    """Run ``flow`` once (see :class:`Simulation` for the arguments) and report what happened."""
    sim = Simulation(flow, **kwargs)
    await sim.run()
    return sim.report()
