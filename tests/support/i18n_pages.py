"""What a test needs to check that a page speaks one language: the en catalogues' sentences that
read differently in Chinese, and the ones left visible on a page (text, placeholders, titles,
aria-labels and the title)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.async_api import Frame, Page

I18N = Path(__file__).resolve().parents[2] / "callcenter" / "web" / "i18n"
#: Words that stay as they are in Chinese (names of things, not sentences).
PROPER = {"IVR", "SIP", "CSV", "ID", "WebRTC", "HTTP", "HTTPS", "JSON", "English", "N/A"}
#: The demo tenant's own names on the pages (users, queues, company): its data, not the pages' words.
DATA = {"Demo", "demo", "admin", "agent1", "agent2", "qa", "supervisor", "sales", "support"}

VISIBLE_TEXT_JS = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, text = node.textContent.trim();
    if (text && node.parentElement.checkVisibility({ checkVisibilityCSS: true })) out.push(text);
  }
  for (const el of document.querySelectorAll('[placeholder], [title], [aria-label]')) {
    if (!el.checkVisibility()) continue;
    for (const name of ['placeholder', 'title', 'aria-label']) if (el.getAttribute(name)) out.push(el.getAttribute(name).trim());
  }
  out.push(document.title);
  return out;
}"""


def english_left() -> list[str]:
    """The en catalogues' sentences that read differently in Chinese: none may remain on a zh-CN page."""
    left = set()
    for path in (I18N / "en").glob("*.json"):
        en = json.loads(path.read_text(encoding="utf-8"))
        zh = json.loads((I18N / "zh-CN" / path.name).read_text(encoding="utf-8"))
        for key, value in en.items():
            text = value.split("{")[0].strip(" :…·")  # the literal start of a message with placeholders
            if len(text) > 2 and value != zh[key] and text not in PROPER:
                left.add(text)
    return sorted(left)


async def english_on(page: Page | Frame, sentences: list[str]) -> list[str]:
    texts = await page.evaluate(VISIBLE_TEXT_JS)
    return sorted({f"{text!r} has {s!r}" for text in texts if text not in DATA for s in sentences
                   if text == s or (" " in s and s in text)})


CJK = re.compile(r"[\u4e00-\u9fff]")
LANGUAGE_NAMES = {"中文", "English"}
"""The language switch names each language in itself, whatever the page's language."""


async def chinese_on(page: Page, data: frozenset[str] = frozenset()) -> list[str]:
    """Visible texts with Chinese characters on a page meant to be English (``data``: the tenant's
    own names, which may be Chinese)."""
    texts = await page.evaluate(VISIBLE_TEXT_JS)
    return sorted({text for text in texts if CJK.search(text) and text not in LANGUAGE_NAMES | data})
