"""A throwaway Redis server for tests: a real ``redis-server`` (Debian package ``redis-server``) on a
loopback address and a free port, in a temporary directory, without persistence.

``halt()`` stops it as an outage does (SIGKILL: nothing saved) and ``resume()`` starts it again on
the same address and port, empty, as a Redis restarted without persistence would be.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

START_TIMEOUT = 10.0


class RedisNotFound(RuntimeError):
    """``redis-server`` is not installed."""


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisNotFound("redis-server not found: install the Debian package 'redis-server' "
                                "(./dev test does it)")
        self.binary = binary
        self.host = host
        self.port = 0
        self.root: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> RedisServer:
        self.root = Path(tempfile.mkdtemp(prefix="cc-redis-"))
        self.port = _free_port(self.host)
        self._launch()
        return self

    def _launch(self) -> None:
        assert self.root is not None
        with open(self.root / "redis.log", "ab") as log:  # the server keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [self.binary, "--bind", self.host, "--port", str(self.port), "--dir", str(self.root),
                 "--save", "", "--appendonly", "no", "--protected-mode", "no", "--daemonize", "no"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT:.0f} s: {self.log()}")

    def log(self) -> str:
        try:
            return (self.root / "redis.log").read_text(errors="replace")[-3000:] if self.root else ""
        except OSError:
            return ""

    def halt(self) -> None:
        """Kill it (an outage); :meth:`resume` brings it back on the same port, empty."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def resume(self) -> None:
        self._launch()

    def stop(self) -> None:
        self.halt()
        if self.root is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.root)
            self.root = None
