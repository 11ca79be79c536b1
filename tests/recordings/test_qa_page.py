"""The QA page in real headless Chromium, on a demo node, with a real recorded call.

The call is stored as the node stores recordings (encoded, encrypted: ``tests/support/recordings``),
both sides speaking Korean sentences (espeak-ng) at known times, with a hand-made transcript
whose word times follow the speech. The demo QA user plays it, jumps to a word, overrides an
automatic answer (the comment is required), and submits; the stored evaluation is checked
through the API.

"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.db import make_engine
from callcenter.models import Agent, Tenant, User
from tests.support.audio import silence, speak, tools_missing
from tests.support.browser import chromium, log_in, tone_wav, until
from tests.support.node import NodeProcess
from tests.support.recordings import RecordedCall, make_recorded_call

pytestmark = [pytest.mark.interop, pytest.mark.skipif(tools_missing() is not None, reason=str(tools_missing()))]

#: Who says what, when (seconds from the recording's start).
SCRIPT = [
    ("agent", 0.5, "안녕하세요 고객님 상담원 김민지입니다"),
    ("caller", 4.0, "환불 받고 싶어요"),
    ("agent", 7.0, "네 주문 번호를 알려 주시겠어요"),
    ("caller", 11.0, "일 이 삼 사 오 입니다"),
    ("agent", 14.5, "확인했습니다 환불 처리해 드릴게요"),
    ("caller", 19.0, "고맙습니다"),
    ("agent", 21.0, "감사합니다 행복한 하루 되세요"),
]
RATE = 8000


def build_call() -> tuple[bytes, bytes, list[dict[str, Any]]]:
    """The two channels (16-bit PCM) and the transcript: each sentence's words share its spoken length."""
    channels: dict[str, bytearray] = {"caller": bytearray(), "agent": bytearray()}
    words: list[dict[str, Any]] = []
    for speaker, start, text in SCRIPT:
        pcm = speak(text)
        channel = channels[speaker]
        offset = int(start * RATE) * 2
        if len(channel) < offset:
            channel.extend(silence((offset - len(channel)) / 2 / RATE))
        channel[offset:offset + len(pcm)] = pcm
        seconds = len(pcm) / 2 / RATE
        parts = text.split()
        for i, word in enumerate(parts):
            words.append({"word": word, "start": round(start + seconds * i / len(parts), 2),
                          "end": round(start + seconds * (i + 1) / len(parts) - 0.05, 2),
                          "conf": 0.92, "speaker": speaker})
    tail = silence(1.5)
    return bytes(channels["caller"]) + tail, bytes(channels["agent"]) + tail, sorted(words, key=lambda w: w["start"])


@pytest.fixture(scope="module")
def node(module_node: NodeProcess) -> NodeProcess:
    return module_node


@pytest.fixture(scope="module")
def recorded(node: NodeProcess) -> Iterator[tuple[RecordedCall, list[dict[str, Any]]]]:
    engine = make_engine(f"sqlite:///{node.data_dir}/callcenter.db")
    try:
        with Session(engine) as db:
            tenant_id = db.scalar(select(Tenant.id).where(Tenant.slug == "demo"))
            agent_id = db.scalar(select(Agent.id).join(User, User.id == Agent.user_id)
                                 .where(User.tenant_id == tenant_id, User.username == "agent1"))
        assert tenant_id is not None and agent_id is not None
        caller, agent, words = build_call()
        call = make_recorded_call(engine, node.data_dir, tenant_id, caller_pcm=caller, agent_pcm=agent, words=words,
                                  agent_id=agent_id, queue="sales")
        yield call, words
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def qa_api(node: NodeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=node.http, timeout=30) as client:
        reply = client.post("/api/login", json={"tenant": "demo", "username": "qa", "password": node.staff["qa"]})
        reply.raise_for_status()
        client.headers["Authorization"] = f"Bearer {reply.json()['token']}"
        yield client


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    async with chromium(tone_wav(tmp_path / "mic.wav", 440.0, 1.0)) as b:
        yield b


async def current_time(page: Page) -> float:
    return float(await page.evaluate("document.querySelector('#audio').currentTime"))


async def test_review_a_recorded_call(node: NodeProcess, recorded: tuple[RecordedCall, list[dict[str, Any]]],
                                      qa_api: httpx.Client, browser: Browser, tmp_path: Path) -> None:
    call, words = recorded
    page = await browser.new_page(viewport={"width": 1440, "height": 960})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await log_in(page, f"{node.http}/qa", "qa", node.staff["qa"])

    # The call list shows the call with its automatic score; open it.
    row = page.locator(f'#calls-table tr[data-call-id="{call.call_id}"]')
    await expect(row).to_be_visible(timeout=15_000)
    await expect(row.locator('[data-testid="auto-score"]')).not_to_have_text("–")
    await row.click()
    await expect(page.locator("#call-view")).to_be_visible()
    await expect(page.locator('#transcript [data-testid="word"]')).to_have_count(len(words), timeout=15_000)
    await until(page, "document.querySelector('#audio').readyState >= 1", timeout=15)
    await until(page, "window.qa.state.peaks && window.qa.state.peaks.caller.length > 0")
    duration = await page.evaluate("document.querySelector('#audio').duration")
    assert abs(duration - call.duration) < 0.5, (duration, call.duration)

    # Play: time moves.
    await page.click("#play-btn")
    await until(page, "document.querySelector('#audio').currentTime > 0.5", timeout=10)

    # Click a word: the audio jumps to it and the word lights up.
    target = next(i for i, w in enumerate(words) if w["word"] == "확인했습니다")
    start = words[target]["start"]
    word = page.locator(f'#transcript [data-testid="word"][data-i="{target}"]')
    await word.click()
    assert start - 0.05 <= await current_time(page) <= start + 1.5
    await expect(word).to_have_class(re.compile(r"\bcurrent\b"), timeout=5_000)
    await until(page, f"document.querySelector('#audio').currentTime > {start + 0.3}", timeout=10)

    # Evidence of an automatic answer seeks too: the greeting was said at 0.5 s.
    await page.locator('[data-testid="evidence-greeting"]').first.click()
    assert 0.45 <= await current_time(page) <= 1.5
    await page.click("#play-btn")  # pause
    await until(page, "document.querySelector('#audio').paused")

    # The disclosure ("녹음 됩니다") was never said: automatic "no". Override it; a comment is required.
    disclosure = page.locator('[data-testid="question-recording_disclosure"]')
    await expect(disclosure.locator('[data-testid="auto-recording_disclosure"]')).to_have_text("No")
    await expect(page.locator('[data-testid="question-greeting"] input[value="yes"]')).to_be_checked()
    await disclosure.locator("label", has=page.locator('input[value="yes"]')).click()
    await expect(disclosure).to_have_attribute("data-overridden", "true")
    await page.select_option('[data-testid="answer-courtesy"]', "4")
    await page.click("#eval-submit")
    await expect(page.locator("#eval-error")).to_be_visible()
    await expect(page.locator("#eval-error")).to_contain_text("automatic answer")
    await page.fill('[data-testid="comment-recording_disclosure"]', "The IVR played the recording notice.")
    await page.fill("#eval-comment", "Friendly and quick refund.")
    await page.click("#eval-submit")
    result = page.locator("#eval-result")
    await expect(result).to_be_visible(timeout=10_000)
    evaluation_id = int(await result.get_attribute("data-evaluation-id") or 0)
    await expect(page.locator("#evaluations-count")).to_have_text("2")  # the automatic one and this one

    # Show the waveform, a lit word and the form for the README.
    await page.locator(f'#transcript [data-testid="word"][data-i="{target}"]').click()
    await page.click("#play-btn")
    await until(page, "document.querySelector('#audio').paused")

    stored = qa_api.get(f"/api/qa/evaluations/{evaluation_id}")
    assert stored.status_code == 200, stored.text
    got = stored.json()
    assert got["kind"] == "manual" and got["evaluator"]["username"] == "qa" and got["call_id"] == call.call_id
    assert got["agent"]["username"] == "agent1" and got["comment"] == "Friendly and quick refund."
    disclosed = got["answers"]["recording_disclosure"]
    assert (disclosed["value"], disclosed["auto_value"], disclosed["overridden"]) == ("yes", "no", True)
    assert disclosed["comment"] == "The IVR played the recording notice."
    assert got["answers"]["greeting"]["value"] == "yes" and got["answers"]["greeting"]["evidence"][0]["start"] == 0.5
    assert got["answers"]["courtesy"]["value"] == 4
    assert got["score"] is not None and got["score"] > 0
    listed = qa_api.get("/api/qa/calls").json()["items"]
    assert next(c for c in listed if c["call_id"] == call.call_id)["manual_score"] == got["score"]
    assert errors == []
