from asr.matching import match_phrase, normalize_phrase


def test_single_word_phrase_found() -> None:
    assert match_phrase("판매", ["판매", "상담"]) == "판매"
    assert match_phrase("상담", ["판매", "상담"]) == "상담"


def test_longest_phrase_wins_over_its_parts() -> None:
    # grammar decoding can repeat words around the phrase
    assert match_phrase("지원 기술 지원", ["지원", "기술 지원", "기술"]) == "기술 지원"


def test_word_sequence_must_be_contiguous_and_in_order() -> None:
    assert match_phrase("지원 기술", ["기술 지원"]) is None
    assert match_phrase("기술 상담 지원", ["기술 지원"]) is None


def test_whole_words_only() -> None:
    assert match_phrase("판매원", ["판매"]) is None


def test_empty_text_or_no_phrase() -> None:
    assert match_phrase("", ["판매"]) is None
    assert match_phrase("   ", ["판매"]) is None
    assert match_phrase("판매", []) is None
    assert match_phrase("예", ["판매", "상담"]) is None


def test_case_and_whitespace_are_ignored_and_the_phrase_is_returned_as_given() -> None:
    assert match_phrase("talk to  SALES please", ["Sales ", "billing"]) == "Sales "


def test_ties_go_to_the_first_listed_phrase() -> None:
    assert match_phrase("예 아니요", ["아니요", "예"]) == "아니요"


def test_normalize_phrase() -> None:
    assert normalize_phrase("  기술   지원 ") == "기술 지원"
    assert normalize_phrase("SALES") == "sales"
