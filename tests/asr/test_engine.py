"""SpeechEngine and SpeechSession with the real Korean model and espeak-ng speech through G.711."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from asr import DISABLED_WARNING, AsrError, Recognition, SpeechEngine, asr_stats
from tests.support.audio import frames, g711_round_trip, noise, silence, speak, speech_end_seconds, trim, utterance
from tests.asr.conftest import feed

MENU = ["판매", "상담"]
RESULT_TIMEOUT = 30.0  # generous: only reached when something is broken


async def test_grammar_mode_tells_판매_from_상담(engine: SpeechEngine) -> None:
    session = engine.session(MENU, call_id="call-grammar")
    spoken = [(word, speed) for speed in (120, 150, 175) for word in MENU]
    for word, speed in spoken:
        await feed(session, utterance(word, speed=speed))
    results = [await session.result(timeout=RESULT_TIMEOUT) for _ in spoken]
    assert all(isinstance(r, Recognition) for r in results)
    assert [r.text for r in results if r] == [word for word, _ in spoken]
    assert [r.phrase for r in results if r] == [word for word, _ in spoken]
    for r in results:
        assert r is not None and 0.0 < r.confidence <= 1.0
        assert r.latency >= 0.0
        assert len(r.words) == 1
    session.close()


async def test_word_times_point_into_the_call(engine: SpeechEngine) -> None:
    session = engine.session(MENU)
    first, second = utterance("판매"), utterance("상담")
    await feed(session, first + second)
    r1 = await session.result(timeout=RESULT_TIMEOUT)
    r2 = await session.result(timeout=RESULT_TIMEOUT)
    assert r1 is not None and r2 is not None
    (_, start1, end1, _), = r1.words
    (_, start2, end2, _), = r2.words
    first_secs = len(first) / 16000
    assert 0.3 < start1 < end1 <= speech_end_seconds(first) + 0.1  # speech starts after 0.5 s of silence
    assert first_secs + 0.3 < start2 < end2 <= first_secs + speech_end_seconds(second) + 0.1
    session.close()


async def test_multi_word_phrase_is_matched(engine: SpeechEngine) -> None:
    # espeak's 기술 is heard as 지원 about half the time (measured: 1 of 12 runs right), so the
    # phrase is one whose words espeak says clearly: 판매 상담 was right 24 times out of 24.
    session = engine.session(["판매", "판매 상담", "상담"])
    await feed(session, utterance("판매 상담"))
    result = await session.result(timeout=RESULT_TIMEOUT)
    assert result is not None and result.phrase == "판매 상담"
    session.close()


async def test_phrase_is_returned_as_the_caller_gave_it(engine: SpeechEngine) -> None:
    session = engine.session([" 판매 ", "상담"])
    assert session.phrases == [" 판매 ", "상담"]
    await feed(session, utterance("판매"))
    result = await session.result(timeout=RESULT_TIMEOUT)
    assert result is not None and result.text == "판매" and result.phrase == " 판매 "
    session.close()


async def test_free_mode_gives_a_recognition(engine: SpeechEngine) -> None:
    session = engine.session(None, call_id="call-free")
    assert not session.grammar_mode
    await feed(session, utterance("안녕하세요"))
    result = await session.result(timeout=RESULT_TIMEOUT)
    assert isinstance(result, Recognition)
    assert result.phrase is None
    assert result.text == " ".join(w[0] for w in result.words)
    assert 0.0 <= result.confidence <= 1.0
    session.close()


def two_words(gap: float) -> bytes:
    """판매, a pause of ``gap`` seconds, 상담 (trimmed espeak audio), padded and through A-law."""
    pcm = g711_round_trip(silence(0.5) + trim(speak("판매")) + silence(gap) + trim(speak("상담")) + silence(1.0))
    return pcm[:len(pcm) - len(pcm) % 320]


async def test_free_mode_short_pause_is_one_utterance_in_two_segments(
        engine: SpeechEngine, caplog: pytest.LogCaptureFixture) -> None:
    """The early final at 100 ms of silence must not split the utterance when the caller goes on."""
    caplog.set_level(logging.INFO, logger="asr")
    session = engine.session(None)
    pcm = two_words(0.12)  # longer than the early final (100 ms), shorter than the hangover (200 ms)
    await feed(session, pcm)
    result = await session.result(timeout=RESULT_TIMEOUT)
    assert result is not None
    assert await session.result(timeout=0.5) is None
    second_starts = 0.5 + len(trim(speak("판매"))) / 16000 + 0.12
    starts = [w[1] for w in result.words]
    assert starts == sorted(starts)
    assert starts[0] < second_starts - 0.2 and starts[-1] > second_starts - 0.1  # words from both halves
    assert result.text == " ".join(w[0] for w in result.words)
    done = [r for r in caplog.records if r.getMessage() == "speech recognised"]
    assert [getattr(r, "segments", None) for r in done] == [2]
    session.close()


async def test_free_mode_long_pause_is_two_utterances(engine: SpeechEngine) -> None:
    session = engine.session(None)
    await feed(session, two_words(0.5))
    first = await session.result(timeout=RESULT_TIMEOUT)
    second = await session.result(timeout=RESULT_TIMEOUT)
    assert first is not None and second is not None
    assert first.words and second.words and first.words[-1][2] <= second.words[0][1]
    session.close()


async def test_grammar_mode_keeps_a_short_pause_inside_the_phrase(engine: SpeechEngine) -> None:
    session = engine.session(["판매", "판매 상담"])
    await feed(session, two_words(0.12))
    result = await session.result(timeout=RESULT_TIMEOUT)
    assert result is not None and result.phrase == "판매 상담"
    session.close()


async def test_out_of_vocabulary_phrases_are_dropped_and_logged_once(
        engine: SpeechEngine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="asr")
    session = engine.session(["판매", "sales", "상담", "customer service"], call_id="call-oov")
    assert session.phrases == ["판매", "상담"]
    lines = [r for r in caplog.records if getattr(r, "dropped", None)]
    assert len(lines) == 1
    assert lines[0].levelno == logging.INFO
    assert lines[0].call_id == "call-oov"  # type: ignore[attr-defined]
    assert lines[0].dropped == ["sales", "customer service"]  # type: ignore[attr-defined]
    await feed(session, utterance("상담"))
    result = await session.result(timeout=RESULT_TIMEOUT)
    assert result is not None and result.phrase == "상담"
    session.close()


async def test_a_menu_with_no_usable_phrase_still_works(engine: SpeechEngine) -> None:
    # an all-OOV grammar must not crash vosk (an empty grammar "[]" segfaults vosk 0.3.45)
    session = engine.session(["sales", "support"])
    assert session.phrases == []
    await feed(session, utterance("판매"))
    result = await session.result(timeout=RESULT_TIMEOUT)
    assert result is not None and result.phrase is None
    session.close()


async def test_speech_started_fires_during_the_utterance(engine: SpeechEngine) -> None:
    pcm = utterance("판매")
    end_frame = int(speech_end_seconds(pcm) / 0.02)
    fired_at: list[int] = []
    fed = 0
    session = engine.session(MENU, on_speech_start=lambda: fired_at.append(fed))
    for frame in frames(pcm):
        fed += 1
        session.feed(frame)
        if fired_at and len(fired_at) == 1 and fed == fired_at[0]:
            assert session.speech_started.is_set()
            assert session.in_speech
        await asyncio.sleep(0)
    assert len(fired_at) == 1
    assert 25 <= fired_at[0] < end_frame  # after the 0.5 s of leading silence, well before the end
    assert fired_at[0] <= 25 + 10  # within ~100 ms of speech onset (+ the espeak onset ramp)
    result = await session.result(timeout=RESULT_TIMEOUT)
    assert result is not None and result.phrase == "판매"
    assert not session.speech_started.is_set()  # result taken: the next wait is for the next utterance
    session.close()


async def test_a_failing_barge_in_callback_does_not_stop_recognition(engine: SpeechEngine) -> None:
    def boom() -> None:
        raise RuntimeError("boom")

    session = engine.session(MENU, on_speech_start=boom)
    await feed(session, utterance("상담"))
    result = await session.result(timeout=RESULT_TIMEOUT)
    assert result is not None and result.phrase == "상담"
    session.close()


async def test_paused_audio_never_reaches_the_recognizer(engine: SpeechEngine) -> None:
    session = engine.session(MENU)
    session.pause()
    await feed(session, utterance("판매") + utterance("상담"))
    assert not session.speech_started.is_set()
    assert session.audio_decoded == 0.0
    session.resume()
    await feed(session, silence(1.0))
    assert await session.result(timeout=0.5) is None
    # and the session still works after resume
    await feed(session, utterance("상담"))
    result = await session.result(timeout=RESULT_TIMEOUT)
    assert result is not None and result.phrase == "상담"
    session.close()


async def test_pausing_mid_utterance_abandons_it(engine: SpeechEngine) -> None:
    session = engine.session(MENU)
    pcm = frames(utterance("판매"))
    half = 40  # the VAD has started (speech from frame 25), the word is not over
    await feed(session, b"".join(pcm[:half]))
    assert session.in_speech
    session.pause()
    assert not session.speech_started.is_set()
    await feed(session, b"".join(pcm[half:]))
    session.resume()
    await feed(session, silence(1.0))
    assert await session.result(timeout=0.5) is None
    await feed(session, utterance("상담"))
    result = await session.result(timeout=RESULT_TIMEOUT)
    assert result is not None and result.phrase == "상담"
    session.close()


async def test_silence_and_line_noise_give_no_result(engine: SpeechEngine) -> None:
    session = engine.session(MENU)
    await feed(session, silence(2.0) + noise(3.0, dbfs=-60.0) + silence(1.0))
    assert not session.speech_started.is_set()
    assert session.audio_decoded == 0.0
    assert await session.result(timeout=0.3) is None
    session.close()


async def test_a_mumble_is_an_empty_recognition_not_no_input(engine: SpeechEngine) -> None:
    session = engine.session(MENU)
    await feed(session, utterance("예"))  # not in the menu; decodes to nothing under this grammar
    result = await session.result(timeout=RESULT_TIMEOUT)
    assert result is not None
    assert (result.text, result.phrase, result.words, result.confidence) == ("", None, [], 0.0)
    session.close()


async def test_odd_frame_sizes_are_recut(engine: SpeechEngine) -> None:
    session = engine.session(MENU)
    pcm = utterance("판매")
    for i in range(0, len(pcm), 480):  # 30 ms packets
        session.feed(pcm[i:i + 480])
        await asyncio.sleep(0)
    result = await session.result(timeout=RESULT_TIMEOUT)
    assert result is not None and result.phrase == "판매"
    session.close()


async def test_close_makes_pending_result_return_none(engine: SpeechEngine) -> None:
    session = engine.session(MENU)
    waiter = asyncio.ensure_future(session.result())
    await asyncio.sleep(0)
    session.close()
    assert await asyncio.wait_for(waiter, RESULT_TIMEOUT) is None
    assert await session.result() is None
    session.feed(bytes(320))  # ignored after close


async def test_live_session_count(engine: SpeechEngine) -> None:
    before = asr_stats()
    sessions = [engine.session(MENU) for _ in range(3)]
    assert asr_stats().sessions == before.sessions + 3
    assert engine.live_sessions == 3
    await feed(sessions[0], utterance("판매"))
    assert await sessions[0].result(timeout=RESULT_TIMEOUT) is not None
    for s in sessions:
        s.close()
        s.close()  # idempotent
    after = asr_stats()
    assert after.sessions == before.sessions
    assert after.sessions_total == before.sessions_total + 3
    assert after.utterances == before.utterances + 1
    assert after.mean_latency is not None and after.mean_latency >= 0.0
    assert engine.live_sessions == 0


async def test_engine_close_closes_its_sessions(model_path: Path) -> None:
    engine = SpeechEngine(model_path, workers=1)
    await engine.start()
    session = engine.session(MENU)
    waiter = asyncio.ensure_future(session.result())
    await asyncio.sleep(0)
    engine.close()
    assert await asyncio.wait_for(waiter, RESULT_TIMEOUT) is None
    assert session.closed and not engine.available
    with pytest.raises(AsrError):
        engine.session(MENU)


async def test_no_model_means_unavailable_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="asr")
    engine = SpeechEngine(None)
    await engine.start()
    await engine.start()  # idempotent: still one line
    assert not engine.available
    lines = [r for r in caplog.records if r.name.startswith("asr")]
    assert [(r.levelno, r.getMessage()) for r in lines] == [(logging.WARNING, DISABLED_WARNING)]
    assert "speech recognition disabled" in DISABLED_WARNING and "DTMF" in DISABLED_WARNING
    with pytest.raises(AsrError):
        engine.session(MENU)
    with pytest.raises(AsrError):
        engine.session(None)
    engine.close()


async def test_bad_model_path_fails_start(tmp_path: Path) -> None:
    engine = SpeechEngine(tmp_path / "missing")
    with pytest.raises(AsrError, match="does not exist"):
        await engine.start()
    assert not engine.available


async def test_a_session_dropped_without_close_leaves_the_live_count(engine: SpeechEngine) -> None:
    import gc

    before = asr_stats().sessions
    session = engine.session(MENU)
    await feed(session, silence(0.2))
    assert asr_stats().sessions == before + 1
    for _ in range(200):  # let its CREATE operation finish so only we hold it
        if session._inflight is None:
            break
        await asyncio.sleep(0.01)
    del session
    gc.collect()
    assert asr_stats().sessions == before
