"""Audio for IVR prompts: text-to-speech and tenants' uploaded recordings.

Every file this module produces is a WAV of 16-bit signed mono PCM at 8 kHz,
the format the SIP bridge plays without resampling
(``sip_bridge.media.encoded_prompt(path, codec)`` encodes it once per codec
and keys its cache on the file's mtime, so replacing a file is picked up).

Layout under ``root``::

    tts/<sha256>.wav              spoken text, shared by all tenants (same text, same audio)
    tenant-<id>/<name>.wav        a tenant's uploaded prompts

Files are written to a hidden temporary name in the same folder and renamed
into place, so a reader (a call playing the prompt) sees either the old file
or the new one, never a half-written one. Conversion runs in ``espeak-ng``
and ``sox`` subprocesses (no shell), off the event loop and with a timeout;
the small file-system calls (stat, rename) are done inline.

Errors: :class:`PromptError` (a ``ValueError``) for what the caller can fix
(unknown voice, bad name, unreadable upload, too long, ...), with
:class:`PromptNotFound` as its subclass for a missing prompt;
``RuntimeError`` for a broken installation (tool missing, text-to-speech
failing or hanging).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import uuid
import wave
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

SAMPLE_RATE = 8000
#: IVR voice name -> espeak-ng voice.
TTS_VOICES = {"en": "en-us", "zh": "cmn", "ko": "ko"}
MAX_TTS_CHARS = 2000
#: espeak-ng speed in words per minute.
DEFAULT_SPEED = 150
SPEED_RANGE = (80, 450)
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_PROMPT_SECONDS = 600
#: ``\Z``, not ``$``: ``$`` would accept a trailing newline.
PROMPT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")
#: Part of the TTS cache key: bump when the synthesis pipeline changes.
_TTS_FORMAT = "espeak-sox-8k-v1"
_DEBIAN_PACKAGE = {"espeak-ng": "espeak-ng", "sox": "sox (and libsox-fmt-mp3 for MP3)"}
#: sox arguments for the output format every prompt has.
_SOX_OUT = ["-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "wav"]


class PromptError(ValueError):
    """A prompt request that cannot be served as asked; the message says why."""


class PromptNotFound(PromptError):
    """The tenant has no prompt of that name."""


class PromptLibrary:
    def __init__(self, root: Path, *, tool_timeout: float = 60.0, max_processes: int = 4) -> None:
        self.root = Path(root)
        self.tool_timeout = tool_timeout
        #: Bounds concurrent espeak-ng/sox processes (a burst of uploads must not fork dozens).
        self._slots = asyncio.Semaphore(max_processes)
        #: TTS syntheses in progress by cache key: concurrent requests for one text share one.
        self._tts_jobs: dict[str, asyncio.Task[Path]] = {}

    # --- text to speech -------------------------------------------------------------

    async def tts(self, text: str, voice: str, *, speed: int = DEFAULT_SPEED) -> Path:
        """The WAV of ``text`` spoken in ``voice`` ("en", "zh" or "ko"), made once and cached."""
        if voice not in TTS_VOICES:
            raise PromptError(f"unknown voice {voice!r}: use one of {', '.join(sorted(TTS_VOICES))}")
        if not text.strip():
            raise PromptError("text to speak is empty")
        if len(text) > MAX_TTS_CHARS:
            raise PromptError(f"text to speak is {len(text)} characters long (limit {MAX_TTS_CHARS})")
        if not SPEED_RANGE[0] <= speed <= SPEED_RANGE[1]:
            raise PromptError(f"speed must be {SPEED_RANGE[0]}-{SPEED_RANGE[1]} words per minute")
        key = hashlib.sha256(json.dumps([_TTS_FORMAT, voice, speed, text]).encode()).hexdigest()
        path = self.root / "tts" / f"{key}.wav"
        if path.exists():
            return path
        job = self._tts_jobs.get(key)
        if job is None:
            job = asyncio.ensure_future(self._synthesize(text, TTS_VOICES[voice], speed, path))
            self._tts_jobs[key] = job
            job.add_done_callback(lambda done: self._tts_done(key, done))
        # shield: one caller giving up (call hung up) must not cancel the others' synthesis
        return await asyncio.shield(job)

    def _tts_done(self, key: str, job: asyncio.Task[Path]) -> None:
        self._tts_jobs.pop(key, None)
        if not job.cancelled():
            job.exception()  # retrieved, even if every waiter was cancelled meanwhile

    async def _synthesize(self, text: str, espeak_voice: str, speed: int, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        stem = f".{path.stem}.{uuid.uuid4().hex}"
        spoken, converted = path.with_name(stem + ".espeak.wav"), path.with_name(stem + ".wav")
        try:
            # The text goes in on stdin: never parsed as options, no argv length limit.
            rc, err = await self._tool(
                ["espeak-ng", "-v", espeak_voice, "-s", str(speed), "-b", "1", "-w", str(spoken), "--stdin"],
                text.encode("utf-8"))
            if rc != 0:
                raise RuntimeError(f"espeak-ng failed ({rc}): {_last_line(err)}")
            rc, err = await self._tool(["sox", "-V1", "-G", str(spoken), *_SOX_OUT, str(converted)])
            if rc != 0:
                raise RuntimeError(f"sox could not convert espeak-ng's output: {_last_line(err)}")
            if _frames(converted) == 0:
                raise PromptError("the text produced no audio")
            os.replace(converted, path)
        except TimeoutError:
            raise RuntimeError(f"text-to-speech took longer than {self.tool_timeout:g} s") from None
        finally:
            spoken.unlink(missing_ok=True)
            converted.unlink(missing_ok=True)
        logger.info("tts prompt made", extra={"voice": espeak_voice, "chars": len(text), "file": path.name})
        return path

    # --- tenants' recordings --------------------------------------------------------

    async def import_upload(self, tenant_id: int, name: str, data: bytes, filename: str) -> Path:
        """Convert an uploaded WAV or MP3 (any rate, any channels) into the tenant's prompt ``name``.

        Converted once, here; an existing prompt of that name is replaced
        atomically. ``filename`` only helps tell the format when the content
        does not (and names the file in error messages).
        """
        target = self._prompt_path(tenant_id, name)
        if not data:
            raise PromptError("the uploaded file is empty")
        if len(data) > MAX_UPLOAD_BYTES:
            raise PromptError(f"the uploaded file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        kind = _audio_kind(data, filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".upload-{uuid.uuid4().hex}.wav")
        try:
            # trim bounds the work and the output for a file that decodes to hours of audio.
            rc, err = await self._tool(
                ["sox", "-V1", "-G", "-t", kind, "-", *_SOX_OUT, str(tmp),
                 "trim", "0", str(MAX_PROMPT_SECONDS + 1)], data)
            if rc != 0:
                raise PromptError(f"{_shown(filename)} is not readable {kind.upper()} audio: {_last_line(err)}")
            frames = _frames(tmp)
            if frames == 0:
                raise PromptError(f"{_shown(filename)} contains no audio")
            if frames > MAX_PROMPT_SECONDS * SAMPLE_RATE:
                raise PromptError(f"{_shown(filename)} is longer than {MAX_PROMPT_SECONDS // 60} minutes")
            os.replace(tmp, target)
        except TimeoutError:
            raise PromptError(f"converting {_shown(filename)} took longer than {self.tool_timeout:g} s") from None
        finally:
            tmp.unlink(missing_ok=True)
        logger.info("prompt uploaded", extra={"tenant_id": tenant_id, "prompt": name,
                                              "seconds": round(frames / SAMPLE_RATE, 2)})
        return target

    def recorded(self, tenant_id: int, name: str) -> Path:
        """The tenant's prompt ``name``; PromptNotFound if it has none (other tenants' do not count)."""
        path = self._prompt_path(tenant_id, name)
        if not path.is_file():
            raise PromptNotFound(f"prompt '{name}' not found for this tenant")
        return path

    def delete(self, tenant_id: int, name: str) -> None:
        path = self._prompt_path(tenant_id, name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise PromptNotFound(f"prompt '{name}' not found for this tenant") from None
        logger.info("prompt deleted", extra={"tenant_id": tenant_id, "prompt": name})

    def list(self, tenant_id: int) -> list[str]:
        """The tenant's prompt names, sorted (in-progress uploads are hidden files, not listed)."""
        folder = self._tenant_dir(tenant_id)
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.wav") if PROMPT_NAME.fullmatch(p.stem))

    # --- helpers ----------------------------------------------------------------------

    def _tenant_dir(self, tenant_id: int) -> Path:
        if isinstance(tenant_id, bool) or not isinstance(tenant_id, int) or tenant_id < 0:
            raise PromptError(f"invalid tenant id {tenant_id!r}")
        return self.root / f"tenant-{tenant_id}"

    def _prompt_path(self, tenant_id: int, name: str) -> Path:
        # The name check is also what keeps paths inside the tenant's folder.
        if not isinstance(name, str) or not PROMPT_NAME.fullmatch(name):
            raise PromptError(f"invalid prompt name {name!r}: use 1-64 lower-case letters, digits, "
                              "'-' or '_', starting with a letter or digit")
        return self._tenant_dir(tenant_id) / f"{name}.wav"

    async def _tool(self, argv: Sequence[str], stdin: bytes | None = None) -> tuple[int, str]:
        """Run ``argv`` (no shell) with ``stdin``; (exit code, stderr). TimeoutError after tool_timeout."""
        async with self._slots:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
            except FileNotFoundError:
                raise RuntimeError(f"{argv[0]} is not installed (Debian package {_DEBIAN_PACKAGE[argv[0]]})") from None
            try:
                _, err = await asyncio.wait_for(proc.communicate(stdin), self.tool_timeout)
            finally:
                if proc.returncode is None:  # timed out or cancelled: do not leave it running
                    proc.kill()
                    await proc.wait()
            assert proc.returncode is not None
            return proc.returncode, err.decode("utf-8", "replace")


def _audio_kind(data: bytes, filename: str) -> str:
    """"wav" or "mp3", from the content first (browsers send odd names), else the file name."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    suffix = Path(filename).suffix.lower()
    if suffix in (".wav", ".mp3"):
        return suffix[1:]  # sox will say what is wrong with it
    raise PromptError(f"{_shown(filename)} is neither a WAV nor an MP3 file")


def _frames(path: Path) -> int:
    with wave.open(str(path), "rb") as w:
        return w.getnframes()


def _last_line(stderr: str) -> str:
    """sox's reason, without its "sox FAIL formats:" prefix."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "no details"
    return re.sub(r"^sox (FAIL|WARN) \w+: ", "", lines[-1])[:300]


def _shown(filename: str) -> str:
    return repr(filename[:100]) if filename else "the uploaded file"
