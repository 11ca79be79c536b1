"""The campaign runner against stand-in ports: what each kind of answer becomes, the 2 s rule,
the caller ID's rate and the end of a campaign. (The same with a node, sipp contacts and agents:
``test_campaign_calls.py``.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from campaigns.runner import CampaignPlan, CampaignRunner, Dial
from campaigns.settings import CampaignSettings
from sip_bridge.call import Call, DialError
from tests.support.audio import silence, speak, tools_missing

FRAME = 320
pytestmark = pytest.mark.skipif(tools_missing() is not None, reason=str(tools_missing()))


PERSON = "喂？"
MACHINE = "您好，我现在无法接听电话，请在提示音后留言，我会尽快给您回电。"


class FakeCall:
    """An answered contact: its greeting (espeak-ng Mandarin), then silence."""

    def __init__(self, greeting: str) -> None:
        self.id = f"call-{id(self)}"
        self.greeting = silence(0.3) + speak(greeting, voice="cmn")
        self.ended = False
        self.bridged_to: object | None = None
        self.hung_up: str | None = None

    async def audio(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self.greeting), FRAME):
            yield self.greeting[i:i + FRAME]
        while not self.ended:
            yield bytes(FRAME)
            await asyncio.sleep(0)

    async def hangup(self, cause: str = "normal_clearing") -> None:
        self.ended, self.hung_up = True, cause


class Ports:
    """The node as the runner sees it: contacts by phone number, each with how it answers."""

    def __init__(self, answers: dict[str, str], *, per_minute: int = 30, agents: tuple[int, int] = (2, 0)) -> None:
        self.settings = CampaignSettings(caller_id_per_minute=per_minute, max_lines=10)
        self.due = [Dial(i, i, phone, f"contact {i}", {}, 1) for i, phone in enumerate(answers, start=1)]
        self.answers = answers
        self.agents = agents
        self.outcomes: dict[str, str] = {}
        self.messages: list[str] = []
        self.claimed: list[int] = []
        self.finished_campaign = False

    def plan_of(self) -> CampaignPlan:
        return CampaignPlan(1, 1, "test", "progressive", "running", "sales", None, "4001234567", self.settings)

    async def plan(self, campaign_id: int) -> CampaignPlan | None:
        return None if self.finished_campaign else self.plan_of()

    async def recover(self, plan: CampaignPlan) -> None: ...

    async def claim(self, plan: CampaignPlan, wanted: int) -> list[Dial]:
        taken, self.due = self.due[:wanted], self.due[wanted:]
        self.claimed.append(len(taken))
        return taken

    async def finished(self, plan: CampaignPlan, dial: Dial, outcome: str, amd_seconds: float | None) -> None:
        self.outcomes[dial.phone] = outcome

    async def has_work(self, plan: CampaignPlan) -> bool:
        return bool(self.due)

    async def finish(self, plan: CampaignPlan) -> None:
        self.finished_campaign = True

    def staffing(self, plan: CampaignPlan) -> tuple[int, int]:
        return self.agents

    async def dial(self, plan: CampaignPlan, dial: Dial, placed: Callable[[Call], None]) -> Call:
        kind = self.answers[dial.phone]
        if kind in ("busy", "no_answer"):
            raise DialError(kind, 486 if kind == "busy" else 408, kind)
        call = FakeCall(MACHINE if kind == "machine" else PERSON)
        call.kind = kind  # type: ignore[attr-defined]
        placed(call)  # type: ignore[arg-type]
        return call  # type: ignore[return-value]

    def placed(self, plan: CampaignPlan, dial: Dial, call: Call) -> None: ...

    async def connect(self, plan: CampaignPlan, dial: Dial, call: Call, within: float) -> bool:
        if call.kind == "person":  # type: ignore[attr-defined]
            call.bridged_to = object()  # type: ignore[assignment]
            await call.hangup()
            return True
        await asyncio.sleep(within)  # nobody free: the abandon message, then the hang-up
        self.messages.append("abandon")
        await call.hangup()
        return False

    async def leave_message(self, plan: CampaignPlan, call: Call) -> None:
        self.messages.append("machine")

    def note(self, plan: CampaignPlan, call: Call, detail: dict[str, object]) -> None: ...


async def run(ports: Ports, timeout: float = 10.0) -> CampaignRunner:
    runner = CampaignRunner(1, ports)  # type: ignore[arg-type]
    await asyncio.wait_for(runner.run(), timeout)
    return runner


async def test_each_answer_gets_its_outcome_and_the_campaign_finishes() -> None:
    ports = Ports({"13900000001": "person", "13900000002": "busy", "13900000003": "no_answer",
                   "13900000004": "machine"}, agents=(4, 0))
    await run(ports)
    assert ports.outcomes == {"13900000001": "person", "13900000002": "busy", "13900000003": "no_answer",
                              "13900000004": "machine"}
    assert ports.messages == ["machine"]  # after the greeting, once
    assert ports.finished_campaign


async def test_a_person_no_agent_takes_within_2_s_is_abandoned_and_hears_the_message() -> None:
    ports = Ports({"13900000001": "unattended"}, agents=(1, 0))
    runner = await run(ports)
    assert ports.outcomes == {"13900000001": "abandoned"}
    assert ports.messages == ["abandon"]
    assert runner.pacer is not None and runner.pacer.abandon_rate == 1.0  # heard once, not twice


async def test_the_caller_id_rate_caps_the_calls_placed() -> None:
    ports = Ports({f"1390000000{i}": "busy" for i in range(5)}, per_minute=2, agents=(5, 0))
    runner = CampaignRunner(1, ports)  # type: ignore[arg-type]
    task = asyncio.ensure_future(runner.run())
    await asyncio.sleep(1.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sum(ports.claimed) == 2 and len(ports.outcomes) == 2  # the other three wait for the next minute
