"""Running baresip (Debian baresip-core 1.0) headless as an independent SIP peer.

No sound card: the ``aufile`` module plays a WAV as the microphone, and the
``sndfile`` filter writes what baresip decoded from the network (what its user
would hear) to ``<workdir>/sound/dump-*-dec.wav``.  The 1.0 ``aufile`` module
has no player, so the player is an ``aubridge`` device nobody reads.  baresip is
driven through ``ctrl_tcp``: netstring-framed JSON commands (the ``menu``
module's commands: ``dial``, ``hangup``, ``quit``...) and events.

baresip 1.0 matches an incoming INVITE to an account by the Request-URI user,
so the account's ``user`` must be the number the platform dials.

SIP over TLS: baresip 1.0 reads its certificate and private key from one PEM file
(``certificate``) and trusts ``ca_file``; SRTP with SDES comes from its ``srtp``
module, per account (``mediaenc=srtp-mand``: RTP/SAVP only).
"""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path
from typing import Any

from .node import free_port, rtp_range

BARESIP = "baresip"
MODULE_PATH = "/usr/lib/baresip/modules"
#: baresip exits by itself after this long, even if a test dies without stopping it.
MAX_LIFETIME = 120


def write_wav(path: Path, pcm: bytes, rate: int = 8000) -> Path:
    """16-bit mono PCM as a WAV file (what aufile reads)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def read_wav(path: Path) -> bytes:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000), path
        return w.readframes(w.getnframes())


class Baresip:
    """One baresip process with its own config dir, SIP port and ctrl_tcp port, on 127.0.0.1."""

    def __init__(self, workdir: Path, source_wav: Path, *, user: str = "baresip",
                 answermode: str = "manual", certificate: Path | None = None, ca_file: Path | None = None,
                 mediaenc: str | None = None) -> None:
        self.workdir = workdir
        self.source_wav = source_wav
        self.user = user
        self.answermode = answermode
        self.certificate = certificate
        self.ca_file = ca_file
        self.mediaenc = mediaenc
        self.sip_port = free_port()
        self.ctrl_port = free_port()
        self.rtp_low, self.rtp_high = rtp_range(40)
        self.config_dir = workdir / "baresip"
        self.sound_dir = workdir / "sound"
        self.log_path = workdir / "baresip.log"
        self.events: list[dict[str, Any]] = []
        self._event_added = asyncio.Event()
        self._responses: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._token = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@127.0.0.1"

    def _write_config(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.sound_dir.mkdir(parents=True, exist_ok=True)
        config = f"""\
poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{self.sip_port}
net_interface\t\t127.0.0.1
call_local_timeout\t30
call_max_calls\t\t4
audio_player\t\taubridge,nobody
audio_alert\t\taubridge,nobody
audio_source\t\taufile,{self.source_wav}
ausrc_srate\t\t8000
auplay_srate\t\t8000
ausrc_channels\t\t1
auplay_channels\t\t1
audio_buffer\t\t20-160
rtp_ports\t\t{self.rtp_low}-{self.rtp_high}
rtcp_mux\t\tno
jitter_buffer_delay\t1-10
module_path\t\t{MODULE_PATH}
module\t\t\tg711.so
module\t\t\taufile.so
module\t\t\taubridge.so
module\t\t\tsndfile.so
module\t\t\tctrl_tcp.so
module_app\t\taccount.so
module_app\t\tmenu.so
ctrl_tcp_listen\t\t127.0.0.1:{self.ctrl_port}
snd_path\t\t{self.sound_dir}
"""
        if self.certificate is not None:
            config += f"sip_certificate\t\t{self.certificate}\n"
        if self.ca_file is not None:
            config += f"sip_cafile\t\t{self.ca_file}\n"
        if self.mediaenc is not None:
            config += "module\t\t\tsrtp.so\n"
        (self.config_dir / "config").write_text(config)
        (self.config_dir / "accounts").write_text(f"<{self.aor}>;{self.account_params()}\n")
        (self.config_dir / "contacts").write_text("")

    def account_params(self) -> str:
        """The account's parameters; regint=0: a local account that never registers."""
        params = f"regint=0;answermode={self.answermode};audio_codecs=pcmu,pcma"
        return params + (f";mediaenc={self.mediaenc}" if self.mediaenc else "")

    async def start(self, timeout: float = 10.0) -> Baresip:
        self._write_config()
        log = self.log_path.open("wb")
        self._proc = await asyncio.create_subprocess_exec(
            BARESIP, "-f", str(self.config_dir), "-t", str(MAX_LIFETIME), stdin=asyncio.subprocess.DEVNULL,
            stdout=log, stderr=asyncio.subprocess.STDOUT)
        log.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._proc.returncode is not None:
                raise RuntimeError(f"baresip exited ({self._proc.returncode}): {self.log()}")
            try:
                self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
                break
            except OSError:
                if loop.time() > deadline:
                    raise RuntimeError(f"baresip ctrl_tcp did not come up: {self.log()}") from None
                await asyncio.sleep(0.05)
        self._read_task = asyncio.ensure_future(self._read_loop())
        # ctrl_tcp listens before the account and menu modules are loaded: wait for them.
        while True:
            reply = await self.command("reginfo", timeout=max(deadline - loop.time(), 0.1))
            if reply.get("ok") and self.aor in reply.get("data", ""):
                return self
            if loop.time() > deadline:
                raise RuntimeError(f"baresip not ready: {reply} {self.log()}")
            await asyncio.sleep(0.05)

    async def _read_loop(self) -> None:
        assert self._reader is not None
        buffer = b""
        while True:
            chunk = await self._reader.read(65536)
            if not chunk:
                return
            buffer += chunk
            while b":" in buffer:
                size_text, rest = buffer.split(b":", 1)
                size = int(size_text)
                if len(rest) < size + 1:
                    break
                message = json.loads(rest[:size])
                buffer = rest[size + 1:]  # skip the trailing ","
                if message.get("response"):
                    future = self._responses.pop(message.get("token", ""), None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif message.get("event"):
                    self.events.append(message)
                    self._event_added.set()

    async def command(self, command: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Send a menu command; its response ({"ok": ..., "data": ...})."""
        assert self._writer is not None
        self._token += 1
        token = str(self._token)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._responses[token] = future
        data = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._writer.write(str(len(data)).encode() + b":" + data + b",")
        await self._writer.drain()
        return await asyncio.wait_for(future, timeout)

    async def dial(self, uri: str) -> None:
        reply = await self.command("dial", uri)
        assert reply.get("ok"), reply

    async def hangup(self) -> None:
        reply = await self.command("hangup")
        assert reply.get("ok"), reply

    async def wait_event(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The first event of this type (e.g. CALL_ESTABLISHED, CALL_CLOSED), waiting for it if need be."""
        async def find() -> dict[str, Any]:
            while True:
                for event in self.events:
                    if event.get("type") == kind:
                        return event
                self._event_added.clear()
                await self._event_added.wait()

        try:
            return await asyncio.wait_for(find(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"baresip: no {kind} event within {timeout} s; events: "
                                 f"{[e.get('type') for e in self.events]}\n{self.log()}") from None

    async def stop(self, timeout: float = 10.0) -> int:
        """Quit baresip (which closes its WAV recordings) and wait for it to exit."""
        proc = self._proc
        if proc is None:
            return 0
        if proc.returncode is None and self._writer is not None:
            try:
                await self.command("quit", timeout=2.0)
            except (OSError, asyncio.TimeoutError, ConnectionError):
                pass
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
        if self._writer is not None:
            self._writer.close()
        if self._read_task is not None:
            self._read_task.cancel()
        return proc.returncode or 0

    def heard(self, index: int = -1) -> bytes:
        """What baresip decoded from the network during its (single) call, as 8 kHz PCM.

        baresip starts a new recording when the media is updated (a re-INVITE: hold,
        resume): ``index`` picks one, oldest first; the default is the last."""
        files = sorted(self.sound_dir.glob("dump-*-dec.wav"))
        assert files, f"baresip recorded nothing in {self.sound_dir}\n{self.log()}"
        return read_wav(files[index])

    def log(self) -> str:
        try:
            text = self.log_path.read_bytes().decode(errors="replace")
        except OSError:
            return ""
        # the menu module's status line repaints itself with \r; keep the log readable
        lines = [line.split("\r")[-1] for line in text.splitlines()]
        return "\n".join(lines)[-4000:]
