"""The message catalogues (callcenter/web/i18n/<lang>/<namespace>.json): both languages say the same
things, and every key the pages use exists. Pure file checks, no browser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
I18N = ROOT / "callcenter" / "web" / "i18n"
LANGS = ("en", "zh-CN")
#: Where page code lives: every key its t('…') calls and data-i18n* attributes name must exist.
SOURCES = [ROOT / "callcenter" / "web", ROOT / "softphone_web" / "static", ROOT / "recordings" / "web"]
PLACEHOLDER = re.compile(r"\{(\w+)\}")
#: A whole key in quotes (t('agent.call.hold'), t(cond ? 'a.b' : 'a.c'), data-i18n="qa.calls"), of a
#: namespace that has a catalogue; keys built at run time (`agent.state.${s}`) are left to the browser test.
KEY = re.compile(r"""(?<![\w.$/-])['"]((?:%s)\.[A-Za-z0-9_.-]*[A-Za-z0-9_])['"]""")


def namespaces() -> list[str]:
    return sorted({p.stem for lang in LANGS for p in (I18N / lang).glob("*.json")})


def catalogue(lang: str, ns: str) -> dict[str, str]:
    return json.loads((I18N / lang / f"{ns}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("ns", namespaces())
def test_both_languages_have_the_same_keys_and_placeholders(ns: str) -> None:
    en, zh = catalogue("en", ns), catalogue("zh-CN", ns)
    assert sorted(en) == sorted(zh), f"{ns}: keys only in one language: {sorted(set(en) ^ set(zh))}"
    for key in en:
        assert key.startswith(f"{ns}."), f"{key} is not in namespace {ns}"
        for lang, messages in (("en", en), ("zh-CN", zh)):
            assert isinstance(messages[key], str) and messages[key].strip(), f"{lang} {key} is empty"
        assert set(PLACEHOLDER.findall(en[key])) == set(PLACEHOLDER.findall(zh[key])), f"{key}: placeholders differ"


def test_every_key_the_pages_use_exists() -> None:
    known = {key for ns in namespaces() for key in catalogue("en", ns)}
    pattern = re.compile(KEY.pattern % "|".join(map(re.escape, namespaces())))
    missing, used = [], 0
    for folder in SOURCES:
        for path in sorted(folder.rglob("*")):
            if path.suffix not in (".js", ".html") or "vendor" in path.parts:
                continue
            for key in pattern.findall(path.read_text(encoding="utf-8")):
                used += 1
                if key not in known:
                    missing.append(f"{path.relative_to(ROOT)}: {key}")
    assert used > 300  # the pattern really finds the pages' keys
    assert not missing, "\n".join(missing)
