"""ivr.prompts with the real espeak-ng and sox."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ivr.prompts import MAX_TTS_CHARS, PromptError, PromptLibrary, PromptNotFound
from sip_bridge.media import encoded_prompt

pytestmark = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")),
                                reason="needs espeak-ng and sox (Debian packages)")


@pytest.fixture
def lib(tmp_path: Path) -> PromptLibrary:
    return PromptLibrary(tmp_path / "prompts")


@pytest.fixture
def tool_runs(lib: PromptLibrary, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the tools the library runs, in order."""
    runs: list[str] = []
    real = lib._tool

    async def counting(argv: Sequence[str], stdin: bytes | None = None) -> tuple[int, str]:
        runs.append(argv[0])
        return await real(argv, stdin)

    monkeypatch.setattr(lib, "_tool", counting)
    return runs


def read_wav(path: Path) -> tuple[tuple[int, int, int], np.ndarray[Any, Any]]:
    """((rate, channels, sample width), samples) of a WAV file."""
    with wave.open(str(path), "rb") as w:
        shape = (w.getframerate(), w.getnchannels(), w.getsampwidth())
        return shape, np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def assert_prompt_format(path: Path, min_seconds: float = 0.2) -> np.ndarray[Any, Any]:
    shape, samples = read_wav(path)
    assert shape == (8000, 1, 2)
    assert len(samples) >= min_seconds * 8000
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    assert rms > 300, f"audio is (nearly) silent: rms {rms:.0f}"
    return samples


def sox_make(path: Path, *args: str) -> None:
    """Make an audio file with sox: ``args`` are output options, then "synth" and its arguments."""
    i = args.index("synth")
    subprocess.run(["sox", "-n", *args[:i], str(path), *args[i:]], check=True, capture_output=True)


# --- text to speech -----------------------------------------------------------------

@pytest.mark.parametrize("voice, text", [
    ("en", "Thank you for calling. Press one for sales."),
    ("zh", "您好，欢迎致电客服中心。"),
    ("ko", "안녕하세요, 고객센터입니다."),
])
async def test_tts_voices_make_8k_mono_speech(lib: PromptLibrary, voice: str, text: str) -> None:
    path = await lib.tts(text, voice)
    assert path.parent == lib.root / "tts"
    assert_prompt_format(path, min_seconds=0.5)
    encoded_prompt(path, "PCMU")  # the SIP bridge can play it


async def test_tts_cache_hit_does_not_rerun_espeak(lib: PromptLibrary, tool_runs: list[str]) -> None:
    first = await lib.tts("Your call is important to us.", "en")
    mtime = first.stat().st_mtime_ns
    assert tool_runs == ["espeak-ng", "sox"]
    again = await lib.tts("Your call is important to us.", "en")
    assert again == first and again.stat().st_mtime_ns == mtime
    assert tool_runs == ["espeak-ng", "sox"]
    # a new library on the same folder (node restart) finds the file too
    assert await PromptLibrary(lib.root).tts("Your call is important to us.", "en") == first
    # voice, speed and text are all part of the key
    assert await lib.tts("Your call is important to us.", "en", speed=120) != first
    assert await lib.tts("Your call is important to us!", "en") != first
    assert await lib.tts("Your call is important to us.", "ko") != first


async def test_tts_concurrent_requests_share_one_run(lib: PromptLibrary, tool_runs: list[str]) -> None:
    paths = await asyncio.gather(*(lib.tts("Please hold.", "en") for _ in range(5)))
    assert len(set(paths)) == 1
    assert tool_runs.count("espeak-ng") == 1
    assert lib._tts_jobs == {}


async def test_tts_waiter_cancelled_does_not_cancel_others(lib: PromptLibrary) -> None:
    first = asyncio.ensure_future(lib.tts("Goodbye.", "en"))
    second = asyncio.ensure_future(lib.tts("Goodbye.", "en"))
    await asyncio.sleep(0)  # both are waiting on the one synthesis now
    first.cancel()
    assert_prompt_format(await second)
    assert first.cancelled()


async def test_tts_text_starting_with_dashes(lib: PromptLibrary, tmp_path: Path) -> None:
    evil = tmp_path / "evil.wav"
    assert_prompt_format(await lib.tts(f"-v xx --help -w {evil}", "en"), min_seconds=0.5)
    assert not evil.exists()


async def test_tts_rejects_bad_input(lib: PromptLibrary) -> None:
    with pytest.raises(PromptError, match="en, ko, zh"):
        await lib.tts("Hello", "fr")
    with pytest.raises(PromptError, match="en, ko, zh"):
        await lib.tts("Hello", "en-us")
    with pytest.raises(PromptError, match="empty"):
        await lib.tts("  \n", "en")
    with pytest.raises(PromptError, match="limit"):
        await lib.tts("a" * (MAX_TTS_CHARS + 1), "en")
    with pytest.raises(PromptError, match="speed"):
        await lib.tts("Hello", "en", speed=5)
    assert not (lib.root / "tts").exists()


async def test_tts_leaves_no_temporary_files(lib: PromptLibrary) -> None:
    await lib.tts("One moment please.", "en")
    assert [p.name.startswith(".") for p in (lib.root / "tts").iterdir()] == [False]


# --- uploads --------------------------------------------------------------------------

async def test_upload_44k_stereo_wav_becomes_8k_mono(lib: PromptLibrary, tmp_path: Path) -> None:
    src = tmp_path / "hd.wav"
    sox_make(src, "-r", "44100", "-c", "2", "-b", "16", "synth", "2", "sine", "440")
    path = await lib.import_upload(7, "welcome", src.read_bytes(), "Welcome Message.WAV")
    assert path == lib.root / "tenant-7" / "welcome.wav"
    samples = assert_prompt_format(path, min_seconds=1.9)
    assert len(samples) <= 2.1 * 8000
    # still a 440 Hz tone after resampling
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * 8000 / len(samples) - 440) < 5
    assert lib.recorded(7, "welcome") == path
    assert lib.list(7) == ["welcome"]


async def test_upload_mp3(lib: PromptLibrary, tmp_path: Path) -> None:
    src = tmp_path / "music.mp3"
    try:
        sox_make(src, "-r", "44100", "-c", "2", "synth", "1.5", "sine", "300")
    except subprocess.CalledProcessError:
        if not shutil.which("lame"):
            pytest.skip("cannot write MP3: needs libsox-fmt-mp3 (sox) or lame")
        wav = tmp_path / "music.wav"
        sox_make(wav, "-r", "44100", "-c", "2", "-b", "16", "synth", "1.5", "sine", "300")
        subprocess.run(["lame", "--quiet", str(wav), str(src)], check=True)
    # the content, not the name, tells the format
    path = await lib.import_upload(1, "hold-music", src.read_bytes(), "upload.bin")
    assert_prompt_format(path, min_seconds=1.4)


async def test_upload_replaces_atomically(lib: PromptLibrary, tmp_path: Path) -> None:
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    sox_make(short, "-r", "8000", "-c", "1", "-b", "16", "synth", "0.5", "sine", "500")
    sox_make(long, "-r", "16000", "-c", "1", "-b", "16", "synth", "1.5", "sine", "500")
    path = await lib.import_upload(3, "menu", short.read_bytes(), "short.wav")
    await lib.import_upload(3, "menu", long.read_bytes(), "long.wav")
    assert len(read_wav(path)[1]) == 1.5 * 8000
    assert [p.name for p in path.parent.iterdir()] == ["menu.wav"]


async def test_upload_garbage_gives_sox_reason(lib: PromptLibrary) -> None:
    with pytest.raises(PromptError, match="not readable WAV audio: .*RIFF"):
        await lib.import_upload(1, "junk", b"\x00\x01garbage" * 100, "junk.wav")
    with pytest.raises(PromptError, match="neither a WAV nor an MP3"):
        await lib.import_upload(1, "junk", b"%PDF-1.4 not audio", "junk.pdf")
    with pytest.raises(PromptError, match="WAV"):  # a WAV header with nothing sensible after it
        await lib.import_upload(1, "junk", b"RIFF\x24\x00\x00\x00WAVEfmt garbage", "x.wav")
    with pytest.raises(PromptError, match="empty"):
        await lib.import_upload(1, "junk", b"", "x.wav")
    assert lib.list(1) == []
    assert list((lib.root / "tenant-1").iterdir()) == []


async def test_upload_limits(lib: PromptLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ivr.prompts

    with pytest.raises(PromptError, match="larger than 20 MB"):
        await lib.import_upload(1, "big", b"RIFF" + bytes(20 * 1024 * 1024), "big.wav")
    monkeypatch.setattr(ivr.prompts, "MAX_PROMPT_SECONDS", 2)
    src = tmp_path / "long.wav"
    sox_make(src, "-r", "8000", "-c", "1", "-b", "16", "synth", "4", "sine", "500")
    with pytest.raises(PromptError, match="longer than"):
        await lib.import_upload(1, "long", src.read_bytes(), "long.wav")
    assert lib.list(1) == []


@pytest.mark.parametrize("name", ["", "Welcome", "-menu", "_menu", "a b", "../etc", "a/b", "menu.wav",
                                  "x" * 65, "ménu", "menu\n"])
async def test_bad_names_rejected(lib: PromptLibrary, name: str) -> None:
    with pytest.raises(PromptError, match="invalid prompt name"):
        await lib.import_upload(1, name, b"RIFF", "x.wav")
    with pytest.raises(PromptError, match="invalid prompt name"):
        lib.recorded(1, name)
    with pytest.raises(PromptError, match="invalid prompt name"):
        lib.delete(1, name)


async def test_tenant_isolation_list_and_delete(lib: PromptLibrary, tmp_path: Path) -> None:
    src = tmp_path / "tone.wav"
    sox_make(src, "-r", "8000", "-c", "1", "-b", "16", "synth", "0.5", "sine", "500")
    await lib.import_upload(1, "greeting", src.read_bytes(), "tone.wav")
    await lib.import_upload(1, "after-hours", src.read_bytes(), "tone.wav")
    await lib.import_upload(2, "x" * 64, src.read_bytes(), "tone.wav")
    assert lib.list(1) == ["after-hours", "greeting"]
    assert lib.list(2) == ["x" * 64]
    assert lib.list(3) == []
    assert lib.recorded(1, "greeting").is_file()
    with pytest.raises(PromptNotFound, match="prompt 'greeting' not found for this tenant"):
        lib.recorded(2, "greeting")
    with pytest.raises(PromptNotFound):
        lib.delete(2, "greeting")
    lib.delete(1, "greeting")
    assert lib.list(1) == ["after-hours"]
    with pytest.raises(PromptNotFound):
        lib.recorded(1, "greeting")
    with pytest.raises(PromptError, match="tenant"):
        lib.recorded(-1, "greeting")


async def test_tool_timeout(tmp_path: Path) -> None:
    lib = PromptLibrary(tmp_path / "prompts", tool_timeout=0.001)
    src = tmp_path / "tone.wav"
    sox_make(src, "-r", "44100", "-c", "2", "-b", "16", "synth", "30", "sine", "500")
    with pytest.raises(PromptError, match="took longer"):
        await lib.import_upload(1, "slow", src.read_bytes(), "tone.wav")
    with pytest.raises(RuntimeError, match="took longer"):
        await lib.tts("A long sentence that takes espeak a little while to say. " * 20, "en")
    assert lib.list(1) == []
    assert list((lib.root / "tenant-1").iterdir()) == []
    assert list((lib.root / "tts").iterdir()) == []
