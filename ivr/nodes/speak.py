"""Nodes that speak to the caller: play, say, hangup."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.errors import FlowIssue
from ivr.nodes.base import Node, TenantFacts, expression
from ivr.say import say_text
from ivr.schema import HangupNode, PlayNode, Prompt, SayNode

if TYPE_CHECKING:
    from ivr.runtime import FlowRun


class Play(Node[PlayNode]):
    type = "play"

    def preconditions(self, facts: TenantFacts) -> list[FlowIssue]:
        return self.prompt_issues(facts, "prompt", self.spec.prompt)

    async def execute(self, run: FlowRun) -> str | None:
        await run.play(self.spec.prompt, barge_in=self.spec.barge_in)
        return self.spec.next


class Say(Node[SayNode]):
    """Digits, numbers, amounts, dates and times, worded for the language and spoken by TTS."""

    type = "say"

    def __init__(self, spec: SayNode) -> None:
        super().__init__(spec)
        self.value = expression("value", spec.value)

    async def execute(self, run: FlowRun) -> str | None:
        try:
            value = self.value.evaluate(run.variables)
            text = say_text(self.spec.kind, value, self.spec.lang, currency=self.spec.currency)
        except (ValueError, TypeError) as exc:  # ExpressionError is a ValueError
            run.record("error", reason=f"cannot say {self.spec.kind}: {exc}")
            return self.spec.next
        await run.play(Prompt(tts=text, voice=self.spec.lang), barge_in=False)
        return self.spec.next


class Hangup(Node[HangupNode]):
    type = "hangup"

    def preconditions(self, facts: TenantFacts) -> list[FlowIssue]:
        return self.prompt_issues(facts, "prompt", self.spec.prompt) if self.spec.prompt else []

    async def execute(self, run: FlowRun) -> str | None:
        if self.spec.prompt is not None:
            await run.play(self.spec.prompt, barge_in=False)
        run.trace.finish("hangup")
        await run.call.hangup("ivr_hangup", side="platform")
        return None
