"""Words of a transcript (``chat.search``): a query word is found in the transcript that holds it.

The first text cut loads jieba's dictionary (about a second, once per process)."""

from __future__ import annotations

import pytest

from chat.search import MAX_TERM_CHARS, query_terms, terms


@pytest.mark.parametrize(("transcript", "query"), [
    ("我要申请退款，谢谢", "退款"),  # a two-character word: FTS5's trigram tokenizer cannot find it
    ("我要申请退款，谢谢", "申请退款"),
    ("您好，我的快递单号是多少？", "单号"),
    ("发票抬头写错了", "发票"),
    ("今天天气怎么样", "天气"),  # inside a longer dictionary word (今天天气)
    ("能开发票吗", "发票"),  # the segmenter prefers 开发 + 票 here; the search mode still emits 发票
    ("My ORDER #A123 never arrived", "order a123"),
    ("订单ABC123还没到", "abc123 订单"),
])
def test_every_query_word_is_among_the_transcript_terms(transcript: str, query: str) -> None:
    assert query_terms(query) <= terms(transcript)


def test_punctuation_and_spaces_make_no_terms() -> None:
    assert terms("  退款！？，。 ... -- 🙂") == {"退款"}
    assert query_terms("，。！") == set()


def test_latin_words_are_lower_cased_and_full_width_letters_normalised() -> None:
    assert terms("Refund ＲＥＦＵＮＤ refund_policy") == {"refund", "policy"}


def test_a_term_is_at_most_64_characters_on_both_sides() -> None:
    long_word = "x" * 100
    assert terms(long_word) == query_terms(long_word) == {"x" * MAX_TERM_CHARS}


def test_a_word_absent_from_the_transcript_is_not_among_its_terms() -> None:
    assert not query_terms("发票") <= terms("我要申请退款，谢谢")
