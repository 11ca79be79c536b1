"""Automatic QA answers from hand-made transcripts, talk stats and call facts."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from recordings.qa_forms import DEFAULT_FORM, Form, Speaker, parse_form
from recordings.qa_rules import AutoAnswer, CallFacts, Word, auto_answers, find_phrases
from recordings.talk import TalkStats


def word(text: str, start: float, speaker: Speaker = "agent", conf: float = 1.0) -> Word:
    return Word(word=text, start=start, end=start + 0.4, conf=conf, speaker=speaker)


def talk(silence_ratio: float | None = 0.2, overtalk_ratio: float | None = 0.05,
         agent_talk_ratio: float | None = 0.5) -> TalkStats:
    return TalkStats(duration_s=100.0, caller_talk_s=40.0, agent_talk_s=40.0, silence_s=20.0, overtalk_s=5.0,
                     silence_ratio=silence_ratio, overtalk_ratio=overtalk_ratio, agent_talk_ratio=agent_talk_ratio,
                     speech_segments={"caller": [], "agent": []})


FACTS = CallFacts(hold_seconds=30.0, handle_seconds=200.0)


def one_rule(auto: dict[str, Any]) -> Form:
    return parse_form({"name": "n", "sections": [{"id": "s", "title": "t", "questions": [
        {"id": "q", "text": "t", "type": "yes_no", "auto": auto}]}]})


def answer(auto: dict[str, Any], words: list[Word], *, duration: float = 100.0, stats: TalkStats | None = None,
           facts: CallFacts = FACTS, min_conf: float = 0.6) -> AutoAnswer | None:
    return auto_answers(one_rule(auto), words, duration, stats or talk(), facts, min_conf=min_conf).get("q")


def value(auto: dict[str, Any], words: list[Word], **options: Any) -> str | None:
    """Just the answer's value (None: no answer)."""
    result = answer(auto, words, **options)
    return None if result is None else result.value


def said(phrases: list[str], speaker: Speaker = "agent", **limits: float) -> dict[str, Any]:
    return {"rule": "phrase_said", "speaker": speaker, "phrases": phrases, **limits}


# -- phrase matching ---------------------------------------------------------------------

@pytest.mark.parametrize("words", [
    [word("좋은", 1.0), word("하루", 1.4)],  # the phrase's own words
    [word("좋은하루", 1.0)],  # written together
    [word("좋", 1.0), word("은하", 1.2), word("루", 1.4)],  # split elsewhere
    [word("좋은", 1.0), word("하루.", 1.4)],  # punctuation
])
def test_a_phrase_matches_across_word_boundaries(words: list[Word]) -> None:
    [found] = find_phrases(words, "agent", ["좋은 하루"])
    assert found["start"] == 1.0 and found["end"] == words[-1].end
    assert found["text"] == " ".join(w.word for w in words) and found["phrase"] == "좋은 하루"


def test_matching_ignores_case_and_punctuation() -> None:
    [found] = find_phrases([word("Thank", 2.0), word("YOU!", 2.3)], "agent", ["thank you"])
    assert found == {"speaker": "agent", "phrase": "thank you", "text": "Thank YOU!", "start": 2.0, "end": 2.3 + 0.4}


def test_a_phrase_needs_consecutive_words() -> None:
    assert find_phrases([word("좋은", 1.0), word("날", 1.4), word("하루", 1.8)], "agent", ["좋은 하루"]) == []
    assert find_phrases([word("좋은", 1.0)], "agent", ["좋은 하루"]) == []  # the phrase is longer than the words
    assert find_phrases([word("좋은하루요", 1.0)], "agent", ["좋은 하루"]) == []  # a word is matched whole


def test_only_the_given_speakers_words_count() -> None:
    # the caller's word between the agent's two does not break the agent's phrase
    words = [word("좋은", 1.0), word("네", 1.2, "caller"), word("하루", 1.4)]
    assert len(find_phrases(words, "agent", ["좋은 하루"])) == 1
    assert find_phrases(words, "caller", ["좋은 하루"]) == []


def test_words_are_matched_in_time_order() -> None:
    assert len(find_phrases([word("하루", 1.4), word("좋은", 1.0)], "agent", ["좋은 하루"])) == 1


def test_every_occurrence_of_every_phrase_is_found() -> None:
    words = [word("안녕하세요", 1.0), word("고객님", 1.5), word("안녕하세요", 8.0)]
    found = find_phrases(words, "agent", ["안녕하세요", "고객님"])
    assert [(f["phrase"], f["start"]) for f in found] == [("안녕하세요", 1.0), ("고객님", 1.5), ("안녕하세요", 8.0)]


def test_doubtful_words_do_not_count() -> None:
    assert find_phrases([word("좋은", 1.0, conf=0.5), word("하루", 1.4)], "agent", ["좋은 하루"]) == []
    assert len(find_phrases([word("좋은", 1.0, conf=0.5), word("하루", 1.4)], "agent", ["좋은 하루"],
                            min_conf=0.5)) == 1
    # left out before matching: a doubtful word between two sure ones neither makes nor breaks the phrase
    [found] = find_phrases([word("좋은", 1.0), word("음", 1.2, conf=0.3), word("하루", 1.4)], "agent", ["좋은 하루"])
    assert found["text"] == "좋은 하루"


# -- phrase rules ------------------------------------------------------------------------

def test_phrase_said_answers_yes_with_where_and_when() -> None:
    result = answer(said(["안녕하세요", "반갑습니다"]), [word("네", 0.5, "caller"), word("반갑습니다", 3.2)])
    assert result is not None and result.value == "yes"
    assert result.evidence == [{"speaker": "agent", "phrase": "반갑습니다", "text": "반갑습니다", "start": 3.2,
                                "end": 3.6}]
    assert result.reason == "the agent said '반갑습니다' at 3.2 s"


def test_phrase_said_by_the_other_speaker_is_a_no() -> None:
    result = answer(said(["안녕하세요"]), [word("안녕하세요", 1.0, "caller")])
    assert result == AutoAnswer("no", [], "the agent did not say 안녕하세요")


@pytest.mark.parametrize(("start", "expected"), [(29.9, "yes"), (30.0, "yes"), (30.1, "no")])
def test_within_first_s_takes_phrases_starting_by_then(start: float, expected: str) -> None:
    result = answer(said(["안녕하세요"], within_first_s=30), [word("안녕하세요", start)])
    assert result is not None and result.value == expected
    if expected == "no":
        assert result.reason == "the agent did not say 안녕하세요 in the first 30 s"


@pytest.mark.parametrize(("start", "expected"), [(39.9, "no"), (40.0, "yes"), (95.0, "yes")])
def test_within_last_s_counts_back_from_the_recordings_end(start: float, expected: str) -> None:
    assert value(said(["감사합니다"], within_last_s=60), [word("감사합니다", start)], duration=100.0) == expected


def test_a_phrase_said_before_and_inside_the_window_has_the_inside_one_as_evidence() -> None:
    words = [word("감사합니다", 10.0), word("감사합니다", 90.0)]
    result = answer(said(["감사합니다"], within_last_s=60), words, duration=100.0)
    assert result is not None and [e["start"] for e in result.evidence] == [90.0]


def test_both_windows_apply_together() -> None:
    rule = said(["네"], within_first_s=50, within_last_s=60)  # 40 s .. 50 s of a 100 s call
    assert value(rule, [word("네", 45.0)]) == "yes"
    result = answer(rule, [word("네", 30.0), word("네", 55.0)])
    assert result is not None and result.value == "no"
    assert result.reason == "the agent did not say 네 in the first 50 s and in the last 60 s"


def test_a_doubtful_phrase_is_not_said() -> None:
    assert value(said(["안녕하세요"]), [word("안녕하세요", 1.0, conf=0.59)]) == "no"
    assert value(said(["안녕하세요"]), [word("안녕하세요", 1.0, conf=0.59)], min_conf=0.5) == "yes"


def test_phrase_not_said_is_yes_when_never_heard() -> None:
    rule = {"rule": "phrase_not_said", "speaker": "agent", "phrases": ["몰라요", "바보"]}
    assert answer(rule, [word("안녕하세요", 1.0), word("몰라요", 5.0, "caller")]) == \
        AutoAnswer("yes", [], "the agent never said 몰라요 / 바보")


def test_phrase_not_said_is_no_with_every_occurrence() -> None:
    rule = {"rule": "phrase_not_said", "speaker": "agent", "phrases": ["몰라요", "바보"]}
    result = answer(rule, [word("저는", 4.6), word("몰라요", 5.0), word("바보", 60.0), word("몰라", 70.0)])
    assert result is not None and result.value == "no"
    assert [(e["text"], e["start"]) for e in result.evidence] == [("몰라요", 5.0), ("바보", 60.0)]
    assert result.reason == "the agent said '몰라요' at 5.0 s, 60.0 s"


def test_without_any_words_phrase_rules_give_no_answer() -> None:
    # transcription did not run or heard nothing: "never said" must not be concluded
    assert answer(said(["안녕하세요"]), []) is None
    assert answer({"rule": "phrase_not_said", "speaker": "agent", "phrases": ["바보"]}, []) is None


def test_words_of_the_other_speaker_alone_are_a_transcript() -> None:
    assert value(said(["안녕하세요"]), [word("여보세요", 1.0, "caller")]) == "no"


# -- metric rules ------------------------------------------------------------------------

@pytest.mark.parametrize(("rule", "stats", "facts", "expected", "evidence", "reason"), [
    ({"metric": "silence_ratio", "max": 0.5}, talk(silence_ratio=0.62), FACTS, "no",
     {"metric": "silence_ratio", "value": 0.62, "max": 0.5}, "silence_ratio 0.62 is above the maximum 0.5"),
    ({"metric": "silence_ratio", "max": 0.5}, talk(silence_ratio=0.5), FACTS, "yes",
     {"metric": "silence_ratio", "value": 0.5, "max": 0.5}, "silence_ratio 0.5 is within the limits"),
    ({"metric": "agent_talk_ratio", "min": 0.3, "max": 0.7}, talk(agent_talk_ratio=0.25), FACTS, "no",
     {"metric": "agent_talk_ratio", "value": 0.25, "min": 0.3, "max": 0.7},
     "agent_talk_ratio 0.25 is below the minimum 0.3"),
    ({"metric": "overtalk_ratio", "max": 0.1}, talk(overtalk_ratio=0.05), FACTS, "yes",
     {"metric": "overtalk_ratio", "value": 0.05, "max": 0.1}, "overtalk_ratio 0.05 is within the limits"),
    ({"metric": "hold_seconds", "max": 120}, talk(), CallFacts(hold_seconds=121.0, handle_seconds=300.0), "no",
     {"metric": "hold_seconds", "value": 121.0, "max": 120}, "hold_seconds 121 is above the maximum 120"),
    ({"metric": "handle_seconds", "min": 30}, talk(), CallFacts(hold_seconds=0.0, handle_seconds=30.0), "yes",
     {"metric": "handle_seconds", "value": 30.0, "min": 30}, "handle_seconds 30 is within the limits"),
])
def test_metric_rules_compare_with_their_limits(rule: dict[str, Any], stats: TalkStats, facts: CallFacts,
                                                expected: Literal["yes", "no"], evidence: dict[str, Any],
                                                reason: str) -> None:
    assert answer({"rule": "metric", **rule}, [], stats=stats, facts=facts) == AutoAnswer(expected, [evidence], reason)


def test_a_metric_without_a_value_gives_no_answer() -> None:
    assert answer({"rule": "metric", "metric": "agent_talk_ratio", "min": 0.3}, [],
                  stats=talk(agent_talk_ratio=None)) is None  # nobody spoke
    assert answer({"rule": "metric", "metric": "handle_seconds", "max": 600}, [],
                  facts=CallFacts(hold_seconds=0.0, handle_seconds=None)) is None  # never answered


def test_the_default_form_on_a_good_call() -> None:
    form = parse_form(DEFAULT_FORM)
    words = [word("안녕하세요", 1.0), word("고객님", 1.6), word("녹음", 3.0), word("됩니다", 3.4),
             word("환불", 6.0, "caller"), word("받고", 6.5, "caller"),
             word("좋은", 80.0), word("하루", 80.4), word("보내세요", 80.8)]
    answers = auto_answers(form, words, 90.0, talk(silence_ratio=0.3), CallFacts(hold_seconds=0.0, handle_seconds=90.0))
    assert {qid: a.value for qid, a in answers.items()} == {
        "greeting": "yes", "recording_disclosure": "yes", "no_dismissive_language": "yes", "dead_air": "yes",
        "hold_time": "yes", "handle_time": "yes", "polite_closing": "yes"}  # courtesy is for the evaluator
    assert answers["polite_closing"].evidence[0]["text"] == "하루 보내세요"
