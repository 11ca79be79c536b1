"""Automatic answers to QA questions, from the transcript, the talk analytics and the call's facts.

They are suggestions with evidence (the words heard and when, or the metric
and its limit) that the evaluator confirms or overrides, so a rule that lacks
its data gives no answer at all rather than a guess: no transcript words
means transcription did not run or heard nothing, and "the agent never said
안녕하세요" must not be concluded from that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .qa_forms import Form, MetricRule, PhraseNotSaidRule, PhraseSaidRule, Speaker, normalize_text
from .talk import TalkStats

__all__ = ["AutoAnswer", "CallFacts", "Word", "auto_answers", "find_phrases"]


@dataclass(frozen=True, slots=True)
class Word:
    """A recognised word: seconds from the recording's start, recogniser confidence 0..1, and who said it."""

    word: str
    start: float
    end: float
    conf: float
    speaker: Speaker


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the call records say: total hold time, and agent handle time (None if the agent never answered)."""

    hold_seconds: float
    handle_seconds: float | None


@dataclass(frozen=True, slots=True)
class AutoAnswer:
    """A suggested answer with what it rests on (phrase occurrences or the metric) and a short English reason."""

    value: Literal["yes", "no"]
    evidence: list[dict[str, Any]]
    reason: str


def find_phrases(words: list[Word], speaker: Speaker, phrases: list[str], *, min_conf: float = 0.6,
                 within_first_s: float | None = None, within_last_s: float | None = None,
                 duration: float = 0.0) -> list[dict[str, Any]]:
    """Every occurrence of any of ``phrases`` in ``speaker``'s words, as evidence dicts, by start time.

    A phrase occurs where consecutive words of the speaker, concatenated after
    :func:`~recordings.qa_forms.normalize_text`, spell it exactly: "좋은 하루"
    matches the words "좋은", "하루" and the single word "좋은하루". Words
    below ``min_conf`` are left out before matching (a doubtful word neither
    makes nor breaks a phrase). ``within_first_s`` keeps occurrences starting
    at or before that second; ``within_last_s`` those starting at or after
    ``duration - within_last_s``.
    """
    heard = [w for w in sorted((w for w in words if w.speaker == speaker), key=lambda w: w.start)
             if w.conf >= min_conf and normalize_text(w.word)]
    texts = [normalize_text(w.word) for w in heard]
    found: list[dict[str, Any]] = []
    for i in range(len(heard)):
        start = heard[i].start
        if within_first_s is not None and start > within_first_s:
            break
        if within_last_s is not None and start < duration - within_last_s:
            continue
        for phrase in phrases:
            target = normalize_text(phrase)
            spelled = ""
            for j in range(i, len(heard)):
                spelled += texts[j]
                if not target.startswith(spelled):
                    break
                if spelled == target:
                    text = " ".join(w.word for w in heard[i:j + 1])
                    found.append({"speaker": speaker, "phrase": phrase, "text": text, "start": start,
                                  "end": heard[j].end})
                    break
    return found


def _window(rule: PhraseSaidRule) -> str:
    parts = []
    if rule.within_first_s is not None:
        parts.append(f"in the first {rule.within_first_s:g} s")
    if rule.within_last_s is not None:
        parts.append(f"in the last {rule.within_last_s:g} s")
    return " and ".join(parts)


def _phrase_answer(rule: PhraseSaidRule | PhraseNotSaidRule, words: list[Word], duration: float,
                   min_conf: float) -> AutoAnswer:
    listed = " / ".join(rule.phrases)
    if isinstance(rule, PhraseSaidRule):
        found = find_phrases(words, rule.speaker, rule.phrases, min_conf=min_conf, within_first_s=rule.within_first_s,
                             within_last_s=rule.within_last_s, duration=duration)
        if not found:
            where = _window(rule)
            return AutoAnswer("no", [], f"the {rule.speaker} did not say {listed}{' ' + where if where else ''}")
        first = found[0]
        return AutoAnswer("yes", found, f"the {rule.speaker} said {first['text']!r} at {first['start']:.1f} s")
    found = find_phrases(words, rule.speaker, rule.phrases, min_conf=min_conf)
    if not found:
        return AutoAnswer("yes", [], f"the {rule.speaker} never said {listed}")
    times = ", ".join(f"{f['start']:.1f} s" for f in found)
    return AutoAnswer("no", found, f"the {rule.speaker} said {found[0]['text']!r} at {times}")


def _metric_value(rule: MetricRule, talk: TalkStats, facts: CallFacts) -> float | None:
    values: dict[str, float | None] = {
        "silence_ratio": talk.silence_ratio, "overtalk_ratio": talk.overtalk_ratio,
        "agent_talk_ratio": talk.agent_talk_ratio, "hold_seconds": facts.hold_seconds,
        "handle_seconds": facts.handle_seconds,
    }
    return values[rule.metric]


def _metric_answer(rule: MetricRule, value: float) -> AutoAnswer:
    evidence: dict[str, Any] = {"metric": rule.metric, "value": value}
    if rule.min is not None:
        evidence["min"] = rule.min
    if rule.max is not None:
        evidence["max"] = rule.max
    if rule.min is not None and value < rule.min:
        return AutoAnswer("no", [evidence], f"{rule.metric} {value:g} is below the minimum {rule.min:g}")
    if rule.max is not None and value > rule.max:
        return AutoAnswer("no", [evidence], f"{rule.metric} {value:g} is above the maximum {rule.max:g}")
    return AutoAnswer("yes", [evidence], f"{rule.metric} {value:g} is within the limits")


def auto_answers(form: Form, words: list[Word], duration: float, talk: TalkStats, facts: CallFacts, *,
                 min_conf: float = 0.6) -> dict[str, AutoAnswer]:
    """Question id -> automatic answer, for the questions with a rule whose data is there.

    ``words``: the whole transcript (both speakers); ``duration``: the
    recording's length in seconds (for ``within_last_s``). Phrase rules give
    no answer when the transcript has no words at all, metric rules none when
    their metric is None (no speech to share out, no agent handle time).
    """
    answers: dict[str, AutoAnswer] = {}
    for question in form.questions():
        rule = question.auto
        if isinstance(rule, (PhraseSaidRule, PhraseNotSaidRule)):
            if words:
                answers[question.id] = _phrase_answer(rule, words, duration, min_conf)
        elif isinstance(rule, MetricRule):
            value = _metric_value(rule, talk, facts)
            if value is not None:
                answers[question.id] = _metric_answer(rule, value)
    return answers
