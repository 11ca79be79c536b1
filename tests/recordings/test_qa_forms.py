"""QA forms: validation messages with their paths, and scoring computed by hand."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from recordings.qa_forms import (
    DEFAULT_FORM, Answer, AnswerError, Form, FormError, MetricRule, PhraseSaidRule, parse_form, phrases_of, score,
)


def form_data(scoring: str = "question") -> dict[str, Any]:
    """Section A (weight 30): a yes/no (10) and a yes/no allowing N/A (20);
    section B (weight 70): a 1-5 scale (10) and an auto-fail yes/no (5)."""
    return {"name": "Test review", "scoring": scoring, "sections": [
        {"id": "a", "title": "A", "weight": 30, "questions": [
            {"id": "q1", "text": "Greeted?", "type": "yes_no", "weight": 10},
            {"id": "q2", "text": "Verified?", "type": "yes_no", "weight": 20, "allow_na": True}]},
        {"id": "b", "title": "B", "weight": 70, "questions": [
            {"id": "q3", "text": "Courtesy", "type": "scale", "min": 1, "max": 5, "weight": 10},
            {"id": "q4", "text": "No insults?", "type": "yes_no", "weight": 5, "auto_fail": True}]},
    ]}


def answers(**values: str | int) -> dict[str, Answer]:
    return {qid: Answer(value) for qid, value in values.items()}


# -- parsing -----------------------------------------------------------------------------

def test_the_default_form_is_valid_and_listens_for_its_phrases() -> None:
    form = parse_form(DEFAULT_FORM)
    assert form.scoring == "section"
    assert phrases_of(form) == ["안녕하세요", "녹음 됩니다", "몰라요", "감사합니다", "하루 보내세요", "하루 되세요"]
    questions = {q.id: q for q in form.questions()}
    greeting = questions["greeting"].auto
    assert isinstance(greeting, PhraseSaidRule) and greeting.speaker == "agent" and greeting.within_first_s == 30
    closing = questions["polite_closing"].auto
    assert isinstance(closing, PhraseSaidRule) and closing.within_last_s == 60
    assert questions["no_dismissive_language"].auto_fail
    assert questions["courtesy"].type == "scale" and questions["courtesy"].auto is None
    limits = {q.auto.metric: q.auto.max for q in form.questions() if isinstance(q.auto, MetricRule)}
    assert limits == {"silence_ratio": 0.5, "hold_seconds": 120, "handle_seconds": 600}


def test_parsing_fills_the_defaults() -> None:
    form = parse_form({"name": "n", "sections": [{"id": "s", "title": "t", "questions": [
        {"id": "q", "text": "t", "type": "yes_no"}]}]})
    assert isinstance(form, Form) and form.scoring == "question"
    [question] = form.questions()
    assert (question.weight, question.allow_na, question.auto_fail, question.auto) == (1.0, False, False, None)
    assert form.sections[0].weight == 1.0


def question_with(**fields: Any) -> dict[str, Any]:
    """A form whose second section's first question has ``fields`` (over a valid yes/no question)."""
    data = form_data()
    data["sections"][1]["questions"][0] = {"id": "q3", "text": "t", "type": "yes_no", **fields}
    return data


@pytest.mark.parametrize(("data", "message"), [
    (question_with(auto={"rule": "metric", "metric": "foo", "max": 1}),
     "sections[1].questions[0].auto.metric: unknown metric 'foo' (expected 'silence_ratio', 'overtalk_ratio', "
     "'agent_talk_ratio', 'hold_seconds' or 'handle_seconds')"),
    (question_with(auto={"rule": "metric", "metric": "hold_seconds"}),
     "sections[1].questions[0].auto: a metric rule needs min, max or both"),
    (question_with(auto={"rule": "metric", "metric": "hold_seconds", "min": 5, "max": 1}),
     "sections[1].questions[0].auto.max: less than min (1 < 5)"),
    (question_with(auto={"rule": "metric", "max": 1}), "sections[1].questions[0].auto.metric: missing"),
    (question_with(auto={"rule": "metric", "metric": "hold_seconds", "max": 1, "speaker": "agent"}),
     "sections[1].questions[0].auto.speaker: unknown field"),
    (question_with(auto={"rule": "shouted"}),
     "sections[1].questions[0].auto.rule: unknown rule 'shouted' (expected 'phrase_said', 'phrase_not_said', "
     "'metric')"),
    (question_with(auto={"speaker": "agent", "phrases": ["네"]}),
     "sections[1].questions[0].auto.rule: missing (expected 'phrase_said', 'phrase_not_said' or 'metric')"),
    (question_with(auto={"rule": "phrase_said", "speaker": "boss", "phrases": ["네"]}),
     "sections[1].questions[0].auto.speaker: unknown speaker 'boss' (expected 'caller' or 'agent')"),
    (question_with(auto={"rule": "phrase_said", "speaker": "agent", "phrases": []}),
     "sections[1].questions[0].auto.phrases: must not be empty"),
    (question_with(auto={"rule": "phrase_said", "speaker": "agent", "phrases": ["네", " "]}),
     "sections[1].questions[0].auto.phrases[1]: must not be empty"),
    (question_with(auto={"rule": "phrase_said", "speaker": "agent", "phrases": ["네", "?!"]}),
     "sections[1].questions[0].auto.phrases[1]: '?!' has no letters or digits"),
    (question_with(auto={"rule": "phrase_said", "speaker": "agent", "phrases": ["네"], "within_first_s": 0}),
     "sections[1].questions[0].auto.within_first_s: must be positive, not 0"),
    (question_with(auto={"rule": "phrase_not_said", "speaker": "agent", "phrases": ["네"], "within_last_s": 9}),
     "sections[1].questions[0].auto.within_last_s: unknown field"),
    (question_with(auto="안녕하세요"), "sections[1].questions[0].auto: expected a JSON object"),
    (question_with(type="scale", min=5, max=5), "sections[1].questions[0].max: must be greater than min (5 <= 5)"),
    (question_with(type="scale", min=1), "sections[1].questions[0]: a scale question needs min and max"),
    (question_with(max=5), "sections[1].questions[0].max: only scale questions have min and max"),
    (question_with(type="scale", min=1, max=5, auto={"rule": "metric", "metric": "hold_seconds", "max": 1}),
     "sections[1].questions[0].auto: rules answer yes or no, so only yes_no questions can have one"),
    (question_with(type="stars"),
     "sections[1].questions[0].type: unknown type 'stars' (expected 'yes_no' or 'scale')"),
    (question_with(weight=0), "sections[1].questions[0].weight: must be positive, not 0"),
    (question_with(weight=-2), "sections[1].questions[0].weight: must be positive, not -2"),
    (question_with(text=""), "sections[1].questions[0].text: must not be empty"),
    (question_with(id="q1"), "sections[1].questions[0].id: duplicate id 'q1' (also sections[0].questions[0].id)"),
    (question_with(id="a"), "sections[1].questions[0].id: duplicate id 'a' (also sections[0].id)"),
    ({"name": "n", "scoring": "average", "sections": []},
     "scoring: unknown scoring 'average' (expected 'question' or 'section'); sections: must not be empty"),
    ({"sections": [{"id": "s", "title": "t", "weight": 0, "questions": []}]},
     "name: missing; sections[0].weight: must be positive, not 0; sections[0].questions: must not be empty"),
])
def test_invalid_forms_are_reported_with_the_path_of_each_problem(data: dict[str, Any], message: str) -> None:
    with pytest.raises(FormError) as caught:
        parse_form(data)
    assert str(caught.value) == message


def test_a_form_must_be_an_object() -> None:
    with pytest.raises(FormError, match="^form: expected a JSON object, not list$"):
        parse_form([])  # type: ignore[arg-type]


def test_every_problem_is_reported_at_once() -> None:
    data = copy.deepcopy(DEFAULT_FORM)
    data["sections"][0]["questions"][0]["auto"]["speaker"] = "robot"
    data["sections"][2]["questions"][0]["auto"]["metric"] = "loudness"
    with pytest.raises(FormError) as caught:
        parse_form(data)
    assert str(caught.value).split("; ") == [
        "sections[0].questions[0].auto.speaker: unknown speaker 'robot' (expected 'caller' or 'agent')",
        "sections[2].questions[0].auto.metric: unknown metric 'loudness' (expected 'silence_ratio', "
        "'overtalk_ratio', 'agent_talk_ratio', 'hold_seconds' or 'handle_seconds')",
    ]


def test_phrases_are_listed_once_in_form_order() -> None:
    data = form_data()
    data["sections"][0]["questions"][0]["auto"] = {"rule": "phrase_said", "speaker": "agent",
                                                   "phrases": ["안녕하세요", "반갑습니다"]}
    data["sections"][1]["questions"][1]["auto"] = {"rule": "phrase_not_said", "speaker": "caller",
                                                   "phrases": ["바보", "안녕하세요"]}
    data["sections"][0]["questions"][1]["auto"] = {"rule": "metric", "metric": "hold_seconds", "max": 60}
    assert phrases_of(parse_form(data)) == ["안녕하세요", "반갑습니다", "바보"]


# -- scoring -----------------------------------------------------------------------------

def test_question_scoring_is_the_weighted_mean_of_all_questions() -> None:
    # q1 yes = 1, q2 no = 0, q3 4 on 1..5 = 3/4, q4 yes = 1
    # total = (10*1 + 20*0 + 10*0.75 + 5*1) / 45 = 22.5 / 45 = 50 %
    # sections: a = 10/30 = 33.3 %, b = (7.5 + 5) / 15 = 83.3 %
    result = score(parse_form(form_data("question")), answers(q1="yes", q2="no", q3=4, q4="yes"))
    assert result.total == 50.0
    assert result.sections == {"a": 33.3, "b": 83.3}
    assert (result.auto_failed, result.auto_failed_by, result.missing) == (False, [], [])


def test_section_scoring_weights_the_sections() -> None:
    # (30 * 1/3 + 70 * 5/6) / 100 = (10 + 58.33) / 100 = 68.3 %
    result = score(parse_form(form_data("section")), answers(q1="yes", q2="no", q3=4, q4="yes"))
    assert result.total == 68.3
    assert result.sections == {"a": 33.3, "b": 83.3}


@pytest.mark.parametrize(("scoring", "total"), [
    ("question", 90.0),  # (10 + 7.5 + 5) / (10 + 10 + 5) = 22.5 / 25
    ("section", 88.3),  # (30 * 1 + 70 * 5/6) / 100
])
def test_na_answers_are_left_out_of_the_denominators(scoring: str, total: float) -> None:
    result = score(parse_form(form_data(scoring)), answers(q1="yes", q2="na", q3=4, q4="yes"))
    assert result.total == total
    assert result.sections == {"a": 100.0, "b": 83.3}


def test_a_section_with_only_na_is_left_out_of_the_total() -> None:
    data = form_data("section")
    data["sections"][0]["questions"][0]["allow_na"] = True
    result = score(parse_form(data), answers(q1="na", q2="na", q3=5, q4="yes"))
    assert result.sections == {"a": None, "b": 100.0}
    assert result.total == 100.0


@pytest.mark.parametrize("scoring", ["question", "section"])
def test_an_auto_fail_no_makes_the_total_zero(scoring: str) -> None:
    result = score(parse_form(form_data(scoring)), answers(q1="yes", q2="yes", q3=5, q4="no"))
    assert result.total == 0.0
    assert result.auto_failed and result.auto_failed_by == ["q4"]
    assert result.sections == {"a": 100.0, "b": 66.7}  # (10 * 1 + 5 * 0) / 15: still shown as computed


def test_a_scale_auto_fail_fails_at_its_minimum_only() -> None:
    data = form_data()
    data["sections"][1]["questions"][0]["auto_fail"] = True
    form = parse_form(data)
    at_min = score(form, answers(q1="yes", q2="yes", q3=1, q4="yes"))
    assert at_min.total == 0.0 and at_min.auto_failed_by == ["q3"]
    above = score(form, answers(q1="yes", q2="yes", q3=2, q4="yes"))
    # (10 + 20 + 10 * 1/4 + 5) / 45 = 37.5 / 45 = 83.3 %
    assert above.total == 83.3 and not above.auto_failed


def test_unanswered_questions_are_listed_and_left_out() -> None:
    result = score(parse_form(form_data("section")), answers(q1="no", q3=3))
    assert result.missing == ["q2", "q4"]
    # a = 0 %, b = 1/2 = 50 %; total = (30 * 0 + 70 * 0.5) / 100
    assert result.sections == {"a": 0.0, "b": 50.0}
    assert result.total == 35.0


@pytest.mark.parametrize("given", [{}, {"q2": "na"}])
def test_nothing_answered_has_no_total(given: dict[str, str]) -> None:
    result = score(parse_form(form_data()), answers(**given))
    assert result.total is None
    assert result.sections == {"a": None, "b": None}
    assert not result.auto_failed


def test_scores_round_half_up_to_one_decimal() -> None:
    # a 0..400 scale answered 1: 0.25 % (round() would give 0.2)
    form = parse_form({"name": "n", "sections": [{"id": "s", "title": "t", "questions": [
        {"id": "q", "text": "t", "type": "scale", "min": 0, "max": 400}]}]})
    assert score(form, answers(q=1)).total == 0.3


@pytest.mark.parametrize(("given", "message"), [
    ({"q9": "yes"}, "answers for questions not in the form: q9"),
    ({"q1": "na"}, "q1: N/A is not allowed for this question"),
    ({"q1": "maybe"}, "q1: expected 'yes', 'no' or 'na', not 'maybe'"),
    ({"q1": 1}, "q1: expected 'yes', 'no' or 'na', not 1"),
    ({"q3": 6}, "q3: expected a whole number from 1 to 5, not 6"),
    ({"q3": "yes"}, "q3: expected a whole number from 1 to 5, not 'yes'"),
    ({"q3": True}, "q3: expected a whole number from 1 to 5, not True"),
    ({"q3": "na"}, "q3: N/A is not allowed for this question"),
])
def test_answers_that_do_not_fit_their_question_are_refused(given: dict[str, Any], message: str) -> None:
    with pytest.raises(AnswerError) as caught:
        score(parse_form(form_data()), {qid: Answer(value) for qid, value in given.items()})
    assert str(caught.value) == message


def test_the_default_form_scores_a_good_call() -> None:
    form = parse_form(DEFAULT_FORM)
    perfect = {q.id: Answer(5 if q.type == "scale" else "yes") for q in form.questions()}
    assert score(form, perfect).total == 100.0
    # courtesy 3 of 1..5 = 50 %: conduct = (1 + 2 * 0.5) / 3 = 66.7 %; total = (25 + 40 * 2/3 + 20 + 15) / 100
    result = score(form, {**perfect, "courtesy": Answer(3)})
    assert result.sections["conduct"] == 66.7 and result.total == 86.7
    failed = score(form, {**perfect, "no_dismissive_language": Answer("no")})
    assert failed.total == 0.0 and failed.auto_failed_by == ["no_dismissive_language"]
