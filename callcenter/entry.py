"""Where inbound calls go: the IVR flow published on the dialed number, or the line test.

A number with a published flow runs it (``ivr.engine``).  A number without one is a
line test: a greeting spoken once by espeak-ng into the data folder (a two-tone
chime if espeak-ng is missing), then the caller hears their own voice back
(payloads relayed untouched), which proves media in both directions.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import wave
from pathlib import Path

from callcenter.ivr_backend import DbBackend
from callcenter.recording_service import RecordingService
from ivr.engine import FlowEngine
from sip_bridge.call import Call, CallError
from sip_bridge.media import load_wav_pcm
from sip_bridge.tones import sine

logger = logging.getLogger(__name__)

GREETING_TEXT = "Welcome to the call center demo. After the tone you will hear yourself."


class EntryPoints:
    def __init__(self, data_dir: Path, flows: FlowEngine, backend: DbBackend,
                 recordings: RecordingService | None = None) -> None:
        self.flows = flows
        self.recordings = recordings
        self.backend = backend
        self.prompt_dir = data_dir / "prompts"
        #: The greeting with its closing tone, 8 kHz WAV; played by path so that
        #: ``media.encoded_prompt`` encodes it once per codec, not once per call.
        self.greeting = self.prompt_dir / "welcome.wav"

    async def prepare(self) -> None:
        """Make the greeting prompt once (off the event loop)."""
        await asyncio.get_running_loop().run_in_executor(None, self._make_greeting)

    def _make_greeting(self) -> None:
        self.prompt_dir.mkdir(parents=True, exist_ok=True)
        spoken = self.prompt_dir / "greeting.wav"
        if not spoken.exists() and shutil.which("espeak-ng"):
            tmp = spoken.with_suffix(".tmp.wav")
            result = subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(tmp), GREETING_TEXT],
                                    capture_output=True, timeout=60)
            if result.returncode == 0:
                tmp.replace(spoken)
        pcm = load_wav_pcm(spoken) if spoken.exists() else sine((523.0, 659.0), 0.6)
        tmp = self.greeting.with_suffix(".tmp.wav")
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(pcm + sine(440.0, 0.3))
        tmp.replace(self.greeting)

    async def handle(self, call: Call) -> None:
        version_id = await self.backend.published_version(call.dialed)
        if version_id is not None:
            if self.recordings is not None and call.tenant_id is not None:
                self.recordings.ivr_started(call, call.tenant_id)
            await self.flows.handle(call, version_id)
        else:
            await self.line_test(call)

    async def line_test(self, call: Call) -> None:
        """Answer, greet, then echo until the caller hangs up."""
        try:
            await call.answer()
            if call.ended:
                return
            await call.play(self.greeting)
            if call.ended:
                return
            call.echo()
        except CallError as exc:  # the caller hung up between two steps
            logger.debug("entry stopped: %s", exc, extra={"call_id": call.id})
            return
        await call.wait_ended()
