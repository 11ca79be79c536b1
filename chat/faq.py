"""The FAQ bot: finds the tenant's answer to a visitor's question, or hands the visitor to a person.

Retrieval is BM25 (k1 = 1.5, b = 0.75) over every phrasing of every entry (its question and
each alternative is a document of its own); an entry scores as its best phrasing. A text is
matched on its words (``chat.search.tokens`` in jieba's search mode, so 开发票 also matches 发票)
and its Chinese characters (so 退钱 meets 退款), less the words and characters that only ask
(``STOP_WORDS``: 怎么, 如何, 吗...). See ``features``.

Two choices differ from textbook BM25, both because the documents are phrasings of a few entries:

- A word's rarity (idf) is counted over entries, not phrasings: four phrasings of the refund
  entry that all say 退款 do not make 退款 a common word.
- ``confidence`` (0..1, comparable across queries) is the score divided by the query's
  self-score: what a phrasing of average length holding each query word once would score,
  i.e. the sum of the query words' idf. A word no entry holds counts in that sum with the
  highest idf, so a question about something else (今天天气怎么样) stays far below the
  threshold even when it shares a word with an entry. Shorter phrasings than average can score
  above the self-score; confidence is capped at 1.

``ANSWER_THRESHOLD`` was measured on the Chinese Q&A set in ``tests/chat/test_faq.py``
(paraphrased questions and off-topic ones): see there.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from chat.search import HAN_CHARACTERS, tokens

_HAN = re.compile(f"[{HAN_CHARACTERS}]")

K1 = 1.5
B = 0.75
ANSWER_THRESHOLD = 0.5
"""Answer when the best entry's confidence reaches this; below it the question is a miss. On the set
in ``tests/chat/test_faq.py`` (12 entries) the 27 paraphrases find their entry at 0.54 to 1.0, plain
off-topic questions stay at 0.16 at most, and 17 of 20 questions that share a word with an entry
without being answered by it stay below 0.5 (the 3 others reach 0.50-0.63)."""
MAX_MISSES = 2
"""The second question the bot cannot answer hands the visitor to a person."""

_STOP_WORDS = (
    "的 了 吗 呢 吧 啊 呀 哦 嘛 么 是 在 有 和 与 或 就 都 也 还 要 想 请 请问 一下 我 我们 你 你们 您 "
    "他 她 它 这 那 这个 那个 哪 哪个 哪里 哪儿 什么 怎么 怎么办 怎么样 怎样 如何 为什么 能 能不能 "
    "可以 可不可以 会 该 应该 需要 好 谢谢 你好 您好 办理 操作 处理 弄 一般 东西 时候 "
    "a an the i me my we our you your it is are am be was do does did can could would should will "
    "how what when where why which who to of in on for and or please hi hello thanks")
STOP_WORDS = frozenset(_STOP_WORDS.split())
"""Words that ask rather than say what about (and the verbs of "how do I do X"): they neither
match nor count against a question."""
STOP_CHARS = frozenset("".join(w for w in STOP_WORDS if _HAN.match(w)))
"""The characters of the Chinese stop words, left out of the characters a text is matched on."""

HANDOFF = re.compile(
    r"人工|真人|客服|(?<![a-z])(?:agents?|humans?|persons?|people|operators?|representatives?)(?![a-z])",
    re.IGNORECASE)
"""A visitor asking for a person (转人工, 人工客服, "talk to an agent"), anywhere in what they wrote."""

BotKind = Literal["answer", "handoff", "clarify"]

MESSAGES: dict[str, dict[str, str]] = {
    "zh-CN": {
        "clarify": "抱歉，我没有理解您的问题。请换个说法再问一次，或回复“人工”转接人工客服。",
        "handoff_person": "好的，正在为您转接人工客服，请稍候。",
        "handoff_misses": "抱歉，我暂时无法回答您的问题，正在为您转接人工客服，请稍候。",
    },
    "en": {
        "clarify": "Sorry, I did not understand. Please ask again in other words, or reply \"agent\" "
                   "to talk to a person.",
        "handoff_person": "Sure, connecting you to a person, please wait a moment.",
        "handoff_misses": "Sorry, I cannot answer that. Connecting you to a person, please wait a moment.",
    },
}
"""The bot's own lines per locale (the answers are the tenant's text)."""


def features(text: str) -> list[str]:
    """What ``text`` is matched on: its words (jieba's search mode, repeats kept) but the stop words,
    and each of its Chinese characters but ``STOP_CHARS``. The characters let a phrasing match a
    question that says the same with other words (退钱 / 退款, 密码忘了 / 忘记密码); a
    one-character word is counted as a character only."""
    words = [w for w in tokens(text, for_search=True)
             if w not in STOP_WORDS and not (len(w) == 1 and _HAN.match(w))]
    return words + [c for c in unicodedata.normalize("NFKC", text) if _HAN.match(c) and c not in STOP_CHARS]


@dataclass(frozen=True)
class FaqEntry:
    """One of the tenant's Q&A pairs: a question, other ways to ask it, and the answer."""

    id: int
    question: str
    alternatives: tuple[str, ...]
    answer: str


@dataclass(frozen=True)
class Match:
    """The entry that answers a question best, and how surely."""

    entry: FaqEntry
    score: float
    """BM25 of the entry's best phrasing."""
    confidence: float
    """``score`` over the query's self-score, capped at 1 (see the module's docstring)."""


@dataclass(frozen=True)
class _Phrasing:
    entry: FaqEntry
    counts: Counter[str]
    length: int


class FaqIndex:
    """BM25 over the phrasings of a set of entries; build it with ``FaqIndex.build``."""

    def __init__(self, phrasings: list[_Phrasing], entry_counts: Counter[str], entries: int) -> None:
        self._phrasings = phrasings
        self._entry_counts = entry_counts
        self._entries = entries
        self._average = sum(p.length for p in phrasings) / len(phrasings) if phrasings else 1.0

    @classmethod
    def build(cls, entries: Iterable[FaqEntry]) -> FaqIndex:
        phrasings: list[_Phrasing] = []
        entry_counts: Counter[str] = Counter()
        count = 0
        for entry in entries:
            count += 1
            vocabulary: set[str] = set()
            for text in (entry.question, *entry.alternatives):
                words = features(text)
                if words:
                    phrasings.append(_Phrasing(entry, Counter(words), len(words)))
                    vocabulary.update(words)
            entry_counts.update(vocabulary)
        return cls(phrasings, entry_counts, count)

    def idf(self, word: str) -> float:
        """How telling ``word`` is: high when few entries hold it (highest when none does)."""
        holding = self._entry_counts[word]
        return math.log(1 + (self._entries - holding + 0.5) / (holding + 0.5))

    def _score(self, phrasing: _Phrasing, query: set[str]) -> float:
        norm = K1 * (1 - B + B * phrasing.length / self._average)
        score = 0.0
        for word in query:
            tf = phrasing.counts[word]
            if tf:
                score += self.idf(word) * tf * (K1 + 1) / (tf + norm)
        return score

    def best(self, text: str) -> Match | None:
        """The entry that answers ``text`` best, or None when no phrasing shares a word with it."""
        query = set(features(text))
        best: tuple[float, _Phrasing] | None = None
        for phrasing in self._phrasings:
            score = self._score(phrasing, query)
            if score > 0 and (best is None or score > best[0]):
                best = (score, phrasing)
        if best is None:
            return None
        self_score = sum(self.idf(word) for word in query)
        return Match(best[1].entry, best[0], min(1.0, best[0] / self_score))


@dataclass(frozen=True)
class BotReply:
    """What the bot does with one message of the visitor's."""

    kind: BotKind
    text: str
    """What the bot says to the visitor: the entry's answer, or one of ``MESSAGES``."""
    entry_id: int | None = None
    """The entry answered (``answer`` only)."""
    reason: str | None = None
    """``person`` (the visitor asked for one) or ``misses`` for a handoff; ``low-confidence`` for clarify."""
    confidence: float | None = None
    """The best entry's confidence, when an entry shared a word with the question (for admins trying the bot)."""


class FaqBot:
    """One conversation's bot: answers from ``index``, counts the questions it could not answer.

    ``misses`` lets a caller rebuild the bot of a conversation it did not keep in memory."""

    def __init__(self, index: FaqIndex, locale: str = "zh-CN", *, misses: int = 0) -> None:
        self.index = index
        self.locale = "en" if locale.lower().startswith("en") else "zh-CN"
        self.misses = misses

    def _say(self, key: str) -> str:
        return MESSAGES[self.locale][key]

    def reply(self, text: str) -> BotReply:
        """The bot's answer to the visitor's ``text``: ``handoff`` at once when they ask for a person,
        ``answer`` when an entry is confident enough, else ``clarify`` (the second time: ``handoff``)."""
        if HANDOFF.search(text):
            return BotReply("handoff", self._say("handoff_person"), reason="person")
        match = self.index.best(text)
        confidence = match.confidence if match is not None else None
        if match is not None and match.confidence >= ANSWER_THRESHOLD:
            return BotReply("answer", match.entry.answer, entry_id=match.entry.id, confidence=confidence)
        self.misses += 1
        if self.misses >= MAX_MISSES:
            return BotReply("handoff", self._say("handoff_misses"), reason="misses", confidence=confidence)
        return BotReply("clarify", self._say("clarify"), reason="low-confidence", confidence=confidence)
