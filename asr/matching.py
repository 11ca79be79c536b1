"""Map a recognised text to one of the phrases a menu listens for."""

from __future__ import annotations


def normalize_phrase(phrase: str) -> str:
    """Lower-case, strip and collapse inner whitespace: the form phrases are compared in."""
    return " ".join(phrase.lower().split())


def _occurs(needle: list[str], haystack: list[str]) -> bool:
    n = len(needle)
    return any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


def match_phrase(text: str, phrases: list[str]) -> str | None:
    """The longest phrase (in words) whose word sequence occurs in ``text``, else None.

    Longest wins because grammar decoding can repeat or add words around the
    spoken phrase ("지원 기술 지원" for "기술 지원"): the multi-word phrase
    must beat its own single-word parts. Ties go to the phrase listed first.
    Comparison is on normalised words; the phrase is returned as given.
    """
    words = normalize_phrase(text).split()
    if not words:
        return None
    best: str | None = None
    best_len = 0
    for phrase in phrases:
        needle = normalize_phrase(phrase).split()
        if len(needle) > best_len and _occurs(needle, words):
            best, best_len = phrase, len(needle)
    return best
