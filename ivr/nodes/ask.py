"""Nodes that ask the caller something: menu and gather."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.errors import FlowIssue
from ivr.nodes.base import Node, TenantFacts
from ivr.runtime import Answer
from ivr.schema import GatherNode, MenuNode, MenuOption

if TYPE_CHECKING:
    from ivr.runtime import FlowRun


def record_answer(run: FlowRun, answer: Answer) -> None:
    if answer.kind == "dtmf":
        run.record("dtmf", digit=answer.digit)
        return
    rec = answer.recognition
    assert rec is not None
    run.record("recognition", text=rec.text, phrase=rec.phrase, confidence=round(rec.confidence, 3),
               latency_ms=round(rec.latency * 1000))


async def give_up(run: FlowRun, branch: str | None, why: str) -> str | None:
    """The branch after the last attempt; without one the platform hangs up."""
    if branch is not None:
        return branch
    run.trace.finish(f"hangup: {why}")
    await run.call.hangup(f"ivr_{why}", side="platform")
    return None


class Menu(Node[MenuNode]):
    type = "menu"

    def __init__(self, spec: MenuNode) -> None:
        super().__init__(spec)
        self.by_key = {o.key: o for o in spec.options if o.key is not None}
        self.by_phrase = {p.strip().lower(): o for o in spec.options for p in o.phrases}

    def references(self) -> dict[str, str | None]:
        refs: dict[str, str | None] = {f"options.{i}.next": o.next for i, o in enumerate(self.spec.options)}
        refs.update(no_input=self.spec.no_input, no_match=self.spec.no_match)
        return refs

    def preconditions(self, facts: TenantFacts) -> list[FlowIssue]:
        issues = self.prompt_issues(facts, "prompt", self.spec.prompt)
        if self.spec.no_match_prompt is not None:
            issues += self.prompt_issues(facts, "no_match_prompt", self.spec.no_match_prompt)
        return issues

    def match(self, answer: Answer) -> MenuOption | None:
        if answer.kind == "dtmf":
            return self.by_key.get(answer.digit or "")
        phrase = answer.recognition.phrase if answer.recognition is not None else None
        return self.by_phrase.get(phrase.strip().lower()) if phrase else None

    async def execute(self, run: FlowRun) -> str | None:
        spec = self.spec
        phrases = list(self.by_phrase)
        outcome = "no_input"
        for attempt in range(1, spec.retries + 2):
            async with run.listening(phrases, enabled=bool(phrases)) as speech:
                await run.play(spec.prompt, barge_in=spec.barge_in)
                answer = await run.answer(spec.timeout, speech)
            if answer is None:
                outcome = "no_input"
                run.record("no_input", attempt=attempt)
                continue
            record_answer(run, answer)
            option = self.match(answer)
            if option is not None:
                return option.next
            outcome = "no_match"
            run.record("no_match", attempt=attempt)
            if spec.no_match_prompt is not None and attempt <= spec.retries:
                await run.play(spec.no_match_prompt, barge_in=True)
        return await give_up(run, spec.no_input if outcome == "no_input" else spec.no_match, outcome)


class Gather(Node[GatherNode]):
    """Digits and/or speech into a variable (``<variable>_confidence`` and ``<variable>_mode`` beside it)."""

    type = "gather"

    def references(self) -> dict[str, str | None]:
        return {"next": self.spec.next, "no_input": self.spec.no_input, "no_match": self.spec.no_match}

    def preconditions(self, facts: TenantFacts) -> list[FlowIssue]:
        return self.prompt_issues(facts, "prompt", self.spec.prompt) if self.spec.prompt else []

    async def execute(self, run: FlowRun) -> str | None:
        spec = self.spec
        outcome = "no_input"
        for attempt in range(1, spec.retries + 2):
            phrases = spec.speech.phrases if spec.speech is not None else None
            async with run.listening(phrases, enabled=spec.speech is not None) as speech:
                if spec.prompt is not None:
                    await run.play(spec.prompt, barge_in=spec.barge_in)
                first_timeout = max(spec.digits.first_timeout if spec.digits else 0.0,
                                    spec.speech.timeout if spec.speech and speech is not None else 0.0)
                answer = await run.answer(first_timeout, speech, dtmf=spec.digits is not None)
                if answer is None:
                    outcome = "no_input"
                    run.record("no_input", attempt=attempt)
                    continue
                value, confidence = await self._value(run, answer)
            if value:
                run.set_variable(spec.variable, value)
                run.set_variable(f"{spec.variable}_confidence", confidence)
                run.set_variable(f"{spec.variable}_mode", answer.kind)
                return spec.next
            outcome = "no_match"
            run.record("no_match", attempt=attempt)
        return await give_up(run, spec.no_input if outcome == "no_input" else spec.no_match, outcome)

    async def _value(self, run: FlowRun, answer: Answer) -> tuple[str | None, float]:
        if answer.kind == "speech":
            record_answer(run, answer)
            rec = answer.recognition
            assert rec is not None
            value = rec.phrase if rec.phrase is not None else rec.text
            return (value or None), rec.confidence
        digits = self.spec.digits
        assert digits is not None and answer.digit is not None
        collected = ""
        key: str | None = answer.digit
        while key is not None:
            if key == digits.terminator:
                break
            collected += key
            if len(collected) >= digits.max:
                break
            event = await run.call.next_dtmf(timeout=digits.inter_timeout)
            run.check_alive()
            key = event.digit if event is not None else None
        run.record("digits", digits=collected, count=len(collected))
        return (collected if len(collected) >= digits.min else None), 1.0
