"""The survey node: the caller rates the contact from 1 to 5, by key or by saying the number."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.errors import FlowIssue
from ivr.nodes.ask import give_up, record_answer
from ivr.nodes.base import Node, TenantFacts
from ivr.runtime import Answer
from ivr.schema import SurveyNode

if TYPE_CHECKING:
    from ivr.runtime import FlowRun

KEYS = {str(n): n for n in range(1, 6)}
SPOKEN: dict[str, dict[str, int]] = {
    "zh": {**{word: n for n, word in enumerate("一二三四五", start=1)}, "两": 2,
           **{f"{word}分": n for n, word in enumerate("一二三四五", start=1)}, "两分": 2,
           **{f"{n}分": n for n in range(1, 6)}},
    "en": {word: n for n, word in enumerate(("one", "two", "three", "four", "five"), start=1)},
}
"""Phrases recognised as a rating, per language: 一 to 五 (两), 一分 to 五分, 1分 to 5分; one to five."""


class Survey(Node[SurveyNode]):
    """Prompt, then a key 1-5 or a spoken number (grammar-mode recognition of :data:`SPOKEN`), with
    retries; the rating goes into the node's variable and to ``run.services.ratings``."""

    type = "survey"

    def references(self) -> dict[str, str | None]:
        return {"next": self.spec.next, "no_input": self.spec.no_input, "no_match": self.spec.no_match}

    def preconditions(self, facts: TenantFacts) -> list[FlowIssue]:
        issues = self.prompt_issues(facts, "prompt", self.spec.prompt)
        if self.spec.no_match_prompt is not None:
            issues += self.prompt_issues(facts, "no_match_prompt", self.spec.no_match_prompt)
        return issues

    def spoken(self, run: FlowRun) -> dict[str, int]:
        """The spoken ratings listened for: the node's language, else the flow voice's (zh or en)."""
        return SPOKEN[self.spec.lang or ("zh" if run.flow.voice == "zh" else "en")]

    @staticmethod
    def rating(answer: Answer, spoken: dict[str, int]) -> int | None:
        if answer.kind == "dtmf":
            return KEYS.get(answer.digit or "")
        phrase = answer.recognition.phrase if answer.recognition is not None else None
        return spoken.get(phrase) if phrase else None

    async def execute(self, run: FlowRun) -> str | None:
        spec = self.spec
        spoken = self.spoken(run)
        outcome = "no_input"
        for attempt in range(1, spec.retries + 2):
            async with run.listening(list(spoken)) as speech:
                await run.play(spec.prompt, barge_in=spec.barge_in)
                answer = await run.answer(spec.timeout, speech)
            if answer is None:
                outcome = "no_input"
                run.record("no_input", attempt=attempt)
                continue
            record_answer(run, answer)
            rating = self.rating(answer, spoken)
            if rating is not None:
                run.set_variable(spec.variable, rating)
                stored = await run.services.ratings.rate(run, rating)
                run.record("rating", rating=rating, stored=stored)
                return spec.next
            outcome = "no_match"
            run.record("no_match", attempt=attempt)
            if spec.no_match_prompt is not None and attempt <= spec.retries:
                await run.play(spec.no_match_prompt, barge_in=True)
        return await give_up(run, spec.no_input if outcome == "no_input" else spec.no_match, outcome)
