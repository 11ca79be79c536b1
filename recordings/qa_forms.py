"""QA evaluation forms (in the manner of Amazon Connect's) and their scoring.

A form is JSON stored per tenant (see docs/design/recordings.md, "QA")::

    {"name": "Standard review", "scoring": "question",
     "sections": [{"id": "opening", "title": "Opening", "weight": 30, "questions": [
        {"id": "greeting", "text": "Did the agent greet the caller?", "type": "yes_no", "weight": 10,
         "auto_fail": false, "allow_na": false,
         "auto": {"rule": "phrase_said", "speaker": "agent", "phrases": ["안녕하세요"],
                  "within_first_s": 30}}]}]}

Forms are written by people in an admin UI or by hand, so :func:`parse_form`
reports every problem at once with the path of the offending field
(``sections[1].questions[0].auto.metric: unknown metric 'foo' ...``) rather than
pydantic's raw error list.

Scoring (:func:`score`) is pure arithmetic over the evaluator's answers; the
automatic answers of :mod:`recordings.qa_rules` are only suggestions the
evaluator confirms, so they arrive here as ordinary answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

__all__ = [
    "DEFAULT_FORM", "Answer", "AnswerError", "Form", "FormError", "MetricRule", "PhraseNotSaidRule",
    "PhraseSaidRule", "Question", "ScoreResult", "Section", "Speaker", "normalize_text", "parse_form", "phrases_of",
    "score",
]

Speaker = Literal["caller", "agent"]
Metric = Literal["silence_ratio", "overtalk_ratio", "agent_talk_ratio", "hold_seconds", "handle_seconds"]

_Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_Weight = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
_Bound = Annotated[float, Field(allow_inf_nan=False)]


def normalize_text(text: str) -> str:
    """Case-folded letters and digits only: how phrases and recognised words are compared.

    Spaces go too, because Korean spacing is loose and the recogniser's word
    split is the model's, not the speaker's: "좋은 하루", "좋은하루" and the
    words "좋은", "하루" all compare equal.
    """
    return "".join(ch for ch in text.casefold() if ch.isalnum())


class _Strict(BaseModel):
    # unknown fields are errors: a typo ("within_first" for "within_first_s") must not silently disable a limit
    model_config = ConfigDict(extra="forbid", frozen=True)


class _PhraseRule(_Strict):
    speaker: Speaker
    phrases: list[_Text] = Field(min_length=1)

    @model_validator(mode="after")
    def _phrases_have_words(self) -> _PhraseRule:
        for i, phrase in enumerate(self.phrases):
            if not normalize_text(phrase):  # punctuation only: it could never match a word
                raise ValueError(f"phrases[{i}]: {phrase!r} has no letters or digits")
        return self


class PhraseSaidRule(_PhraseRule):
    """Yes when the speaker says one of the phrases (optionally early or late in the call)."""

    rule: Literal["phrase_said"]
    within_first_s: _Seconds | None = None
    within_last_s: _Seconds | None = None


class PhraseNotSaidRule(_PhraseRule):
    """Yes when the speaker says none of the phrases anywhere in the call."""

    rule: Literal["phrase_not_said"]


class MetricRule(_Strict):
    """Yes when the metric lies within [min, max] (either bound may be left out, not both)."""

    rule: Literal["metric"]
    metric: Metric
    min: _Bound | None = None
    max: _Bound | None = None

    @model_validator(mode="after")
    def _bounds(self) -> MetricRule:
        if self.min is None and self.max is None:
            raise ValueError("a metric rule needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"max: less than min ({self.max:g} < {self.min:g})")
        return self


AutoRule = Annotated[PhraseSaidRule | PhraseNotSaidRule | MetricRule, Field(discriminator="rule")]


class Question(_Strict):
    id: _Id
    text: _Text
    type: Literal["yes_no", "scale"]
    weight: _Weight = 1.0
    allow_na: bool = False
    auto_fail: bool = False
    min: int | None = None
    max: int | None = None
    auto: AutoRule | None = None

    @model_validator(mode="after")
    def _type_fields(self) -> Question:
        if self.type == "scale":
            if self.min is None or self.max is None:
                raise ValueError("a scale question needs min and max")
            if self.min >= self.max:
                raise ValueError(f"max: must be greater than min ({self.max} <= {self.min})")
        else:
            if self.min is not None or self.max is not None:
                raise ValueError(f"{'min' if self.min is not None else 'max'}: only scale questions have min and max")
        if self.auto is not None and self.type != "yes_no":
            raise ValueError("auto: rules answer yes or no, so only yes_no questions can have one")
        return self


class Section(_Strict):
    id: _Id
    title: _Text
    weight: _Weight = 1.0
    questions: list[Question] = Field(min_length=1)


class Form(_Strict):
    name: _Text
    scoring: Literal["question", "section"] = "question"
    sections: list[Section] = Field(min_length=1)

    def questions(self) -> list[Question]:
        """Every question, in form order."""
        return [q for section in self.sections for q in section.questions]


class FormError(ValueError):
    """An invalid form definition; the message lists every problem with its path."""


class AnswerError(ValueError):
    """An answer that does not fit its question (or names no question of the form)."""


# -- parsing -----------------------------------------------------------------------------

_SUB_FIELD = re.compile(r"[a-z_]+(\[[0-9]+\])?")


def _path(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problem(err: Any) -> str:
    loc = list(err["loc"])
    kind = err["type"]
    if "auto" in loc:
        # pydantic puts a tagged union's tag in the path ("auto.metric.max"): the reader wrote "auto.max"
        i = loc.index("auto") + 1
        del loc[i:i + 1]
    ctx = err.get("ctx") or {}
    field = loc[-1] if loc and isinstance(loc[-1], str) else "value"
    if kind == "union_tag_invalid":
        loc.append("rule")
        reason = f"unknown rule {ctx.get('tag')!r} (expected {ctx.get('expected_tags')})"
    elif kind == "union_tag_not_found":
        loc.append("rule")
        reason = "missing (expected 'phrase_said', 'phrase_not_said' or 'metric')"
    elif kind == "literal_error":
        reason = f"unknown {field} {err['input']!r} (expected {ctx.get('expected')})"
    elif kind in ("model_type", "model_attributes_type"):
        reason = "expected a JSON object"
    elif kind == "missing":
        reason = "missing"
    elif kind == "extra_forbidden":
        reason = "unknown field"
    elif kind == "greater_than" and ctx.get("gt") == 0:
        reason = f"must be positive, not {err['input']!r}"
    elif kind in ("string_too_short", "too_short"):
        reason = "must not be empty"
    elif kind == "value_error":
        reason = str(ctx.get("error", err["msg"]))
        # our validators name the field at fault first ("phrases[1]: ...", "max: ..."): move it into the path
        head, sep, rest = reason.partition(": ")
        if sep and _SUB_FIELD.fullmatch(head):
            loc.append(head)
            reason = rest
    else:
        reason = str(err["msg"])
    return f"{_path(loc) or 'form'}: {reason}"


def _duplicate_ids(form: Form) -> list[str]:
    # answers and section scores are keyed by id: one id must name one thing in the whole form
    seen: dict[str, str] = {}
    problems = []
    for s, section in enumerate(form.sections):
        places = [(f"sections[{s}].id", section.id)]
        places += [(f"sections[{s}].questions[{q}].id", question.id) for q, question in enumerate(section.questions)]
        for where, ident in places:
            if ident in seen:
                problems.append(f"{where}: duplicate id {ident!r} (also {seen[ident]})")
            else:
                seen[ident] = where
    return problems


def parse_form(data: dict[str, Any]) -> Form:
    """The validated form; raises :class:`FormError` naming every problem and where it is."""
    if not isinstance(data, dict):
        raise FormError(f"form: expected a JSON object, not {type(data).__name__}")
    try:
        form = Form.model_validate(data)
    except ValidationError as exc:
        raise FormError("; ".join(_problem(err) for err in exc.errors())) from None
    problems = _duplicate_ids(form)
    if problems:
        raise FormError("; ".join(problems))
    return form


def phrases_of(form: Form) -> list[str]:
    """Every phrase the form's rules listen for, once each, in form order (for the transcription vocabulary)."""
    phrases: list[str] = []
    for question in form.questions():
        if isinstance(question.auto, (PhraseSaidRule, PhraseNotSaidRule)):
            phrases.extend(p for p in question.auto.phrases if p not in phrases)
    return phrases


# -- scoring -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Answer:
    """An evaluator's answer: "yes" / "no" / "na" for yes_no questions, an int (or "na") for scale ones."""

    value: str | int


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """Scores in percent (0-100, one decimal); None where nothing was answered."""

    total: float | None
    sections: dict[str, float | None]  # section id -> score, in form order
    auto_failed: bool
    auto_failed_by: list[str]  # ids of the auto-fail questions that failed, in form order
    missing: list[str]  # ids of the questions without an answer, in form order


def _percent(fraction: float) -> float:
    # half-up on the decimal repr: 62.25 -> 62.3 as a person computing it by hand expects (round() gives 62.2)
    return float(Decimal(repr(fraction * 100)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _question_score(question: Question, answer: Answer) -> float | None:
    """The answer as a fraction 0..1; None for N/A. Raises AnswerError for a value the question does not take."""
    value = answer.value
    if value == "na":
        if not question.allow_na:
            raise AnswerError(f"{question.id}: N/A is not allowed for this question")
        return None
    if question.type == "yes_no":
        if value not in ("yes", "no"):
            raise AnswerError(f"{question.id}: expected 'yes', 'no' or 'na', not {value!r}")
        return 1.0 if value == "yes" else 0.0
    assert question.min is not None and question.max is not None  # validated for scale questions
    if isinstance(value, bool) or not isinstance(value, int) or not question.min <= value <= question.max:
        raise AnswerError(f"{question.id}: expected a whole number from {question.min} to {question.max}, "
                          f"not {value!r}")
    return (value - question.min) / (question.max - question.min)


def _fails(question: Question, answer: Answer) -> bool:
    return question.auto_fail and (answer.value == "no" or (question.type == "scale" and answer.value == question.min))


def _weighted_mean(pairs: list[tuple[float, float]]) -> float | None:
    """Mean of (weight, value) pairs; None for none (N/A and unanswered items are left out of the denominator)."""
    total_weight = sum(w for w, _ in pairs)
    return sum(w * v for w, v in pairs) / total_weight if pairs else None


def score(form: Form, answers: dict[str, Answer]) -> ScoreResult:
    """Score the answers to ``form`` as the design describes.

    * yes = full marks, no = 0; a scale answer counts (value - min) / (max - min);
    * N/A and unanswered questions are left out of every denominator;
    * ``question`` scoring: total = weighted mean of all question scores;
      ``section`` scoring: total = weighted mean (by section weight) of the
      section scores, each the weighted mean of its questions; a section with
      nothing answered is left out;
    * an auto-fail question answered "no" (scale: its minimum) makes the total 0
      (section scores are still reported as computed, to show where the rest stood).

    Raises :class:`AnswerError` for an answer to an unknown question or a value its question does not take.
    """
    known = {q.id for q in form.questions()}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise AnswerError(f"answers for questions not in the form: {', '.join(unknown)}")
    all_questions: list[tuple[float, float]] = []
    section_scores: dict[str, float | None] = {}
    section_pairs: list[tuple[float, float]] = []
    failed: list[str] = []
    missing: list[str] = []
    for section in form.sections:
        pairs: list[tuple[float, float]] = []
        for question in section.questions:
            answer = answers.get(question.id)
            if answer is None:
                missing.append(question.id)
                continue
            value = _question_score(question, answer)
            if _fails(question, answer):
                failed.append(question.id)
            if value is not None:
                pairs.append((question.weight, value))
        all_questions.extend(pairs)
        mean = _weighted_mean(pairs)
        section_scores[section.id] = None if mean is None else _percent(mean)
        if mean is not None:
            section_pairs.append((section.weight, mean))
    total = _weighted_mean(all_questions if form.scoring == "question" else section_pairs)
    if failed:
        total = 0.0
    return ScoreResult(total=None if total is None else _percent(total), sections=section_scores,
                       auto_failed=bool(failed), auto_failed_by=failed, missing=missing)


# -- the demo form -----------------------------------------------------------------------

#: A standard review for a Korean call center, used by the demo tenant.
#:
#: Phrases are written in the speech model's own words ("녹음 됩니다", not
#: "녹음됩니다": the small Korean vosk model knows 녹음 and 됩니다 but not the
#: joined form) so that vocabulary-mode transcription listens for them; matching
#: ignores spaces, so either spelling matches a transcript. They were chosen by
#: measuring recognition of espeak-ng speech (see recordings/transcribe.py):
#: short words on their own ("바보", "녹음") came back in many calls that never
#: said them, so the forbidden phrase is "몰라요" (a blunt "dunno", a classic
#: forbidden expression for agents), the disclosure listens for "녹음 됩니다"
#: and the closing for "하루 보내세요" / "하루 되세요" ("좋은/행복한 하루
#: 보내세요") besides "감사합니다".
DEFAULT_FORM: dict[str, Any] = {
    "name": "기본 상담 품질 평가 (standard call review)",
    "scoring": "section",
    "sections": [
        {"id": "opening", "title": "Opening", "weight": 25, "questions": [
            {"id": "greeting", "text": "Did the agent greet the caller (\"안녕하세요\") within the first 30 seconds?",
             "type": "yes_no", "weight": 1,
             "auto": {"rule": "phrase_said", "speaker": "agent", "phrases": ["안녕하세요"], "within_first_s": 30}},
            {"id": "recording_disclosure", "text": "Did the agent tell the caller the call is recorded (\"녹음 됩니다\")?",
             "type": "yes_no", "weight": 1,
             "auto": {"rule": "phrase_said", "speaker": "agent", "phrases": ["녹음 됩니다"]}},
        ]},
        {"id": "conduct", "title": "Conduct", "weight": 40, "questions": [
            {"id": "no_dismissive_language",
             "text": "Did the agent avoid dismissive language (\"몰라요\")? A \"no\" fails the whole review.",
             "type": "yes_no", "weight": 1, "auto_fail": True,
             "auto": {"rule": "phrase_not_said", "speaker": "agent", "phrases": ["몰라요"]}},
            {"id": "courtesy", "text": "Overall courtesy", "type": "scale", "min": 1, "max": 5, "weight": 2},
        ]},
        {"id": "handling", "title": "Call handling", "weight": 20, "questions": [
            {"id": "dead_air", "text": "Was the line silent for at most half of the call?", "type": "yes_no",
             "weight": 1, "allow_na": True, "auto": {"rule": "metric", "metric": "silence_ratio", "max": 0.5}},
            {"id": "hold_time", "text": "Was the caller on hold for at most 2 minutes in total?", "type": "yes_no",
             "weight": 1, "allow_na": True, "auto": {"rule": "metric", "metric": "hold_seconds", "max": 120}},
            {"id": "handle_time", "text": "Was the call handled within 10 minutes?", "type": "yes_no",
             "weight": 1, "allow_na": True, "auto": {"rule": "metric", "metric": "handle_seconds", "max": 600}},
        ]},
        {"id": "closing", "title": "Closing", "weight": 15, "questions": [
            {"id": "polite_closing", "text": "Did the agent close the call politely in its last minute "
                                             "(\"감사합니다\", \"좋은 하루 보내세요\"...)?",
             "type": "yes_no", "weight": 1,
             "auto": {"rule": "phrase_said", "speaker": "agent", "phrases": ["감사합니다", "하루 보내세요", "하루 되세요"],
                      "within_last_s": 60}},
        ]},
    ],
}
