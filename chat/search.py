"""Words of a chat transcript, for search and for the FAQ bot (pure: no database).

Chinese is written without spaces, so a transcript is cut into words with jieba; SQLite's FTS5
trigram tokenizer alone cannot find a two-character word such as 退款. What is indexed
(``terms``) uses jieba's search mode, which also emits the dictionary words inside a longer
word (今天天气 -> 今天, 天气, 今天天气); a query (``query_terms``) is cut in the ordinary way,
so each of its words is one the indexed side emits for the same text. Both cut with the dictionary
only (no HMM guessing of words it does not know): the HMM may join 能 and 换 into one word in one
text and not in another, and a query word must be cut as the transcript's was.
Latin letters and digits make lower-case words of their own; punctuation and spaces make none.

jieba loads its dictionary (about one second, once per process) on the first text it cuts.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata

import jieba  # type: ignore[import-untyped]

MAX_TERM_CHARS = 64
"""A word longer than this is cut to it (the column holds 64 characters), on both sides alike."""

HAN_CHARACTERS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
"""Chinese characters (CJK unified ideographs, extension A, compatibility ideographs), as a character class body."""
_RUNS = re.compile(rf"([{HAN_CHARACTERS}]+)|([^\W_{HAN_CHARACTERS}]+)")
"""A run of Chinese characters (cut by jieba), or a run of other letters and digits (one word)."""

_loaded = threading.Lock()
_ready = False


def _load() -> None:
    """Load jieba's dictionary once, quietly (it logs its progress to stderr at debug level)."""
    global _ready
    if _ready:
        return
    with _loaded:
        if not _ready:
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _ready = True


def tokens(text: str, *, for_search: bool = False) -> list[str]:
    """The words of ``text`` in order, repeats kept: Chinese cut by jieba (its search mode when
    ``for_search``), other words lower-cased; none longer than ``MAX_TERM_CHARS``."""
    words: list[str] = []
    for han, other in _RUNS.findall(unicodedata.normalize("NFKC", text)):
        if other:
            words.append(other.lower()[:MAX_TERM_CHARS])
            continue
        _load()
        cut = jieba.lcut_for_search(han, HMM=False) if for_search else jieba.lcut(han, HMM=False)
        words.extend(w[:MAX_TERM_CHARS] for w in cut)
    return words


def terms(text: str) -> set[str]:
    """What a transcript is indexed under: every word jieba's search mode finds, and the others."""
    return set(tokens(text, for_search=True))


def query_terms(text: str) -> set[str]:
    """The words of a search query; a conversation matches when it holds all of them."""
    return set(tokens(text))
