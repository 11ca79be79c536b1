"""A cluster on one machine, for the tests (``tests/support/cluster.py``) and ``./dev cluster``
(:mod:`callcenter.devcluster`): the SIP front (Kamailio with the repository's
``cluster/kamailio/kamailio.cfg``) and what each node is started with.

Addresses are on the loopback network (all of 127.0.0.0/8 is loopback on Linux, nothing to
configure): the front, PostgreSQL and Redis on 127.0.0.10, node *i* on 127.0.0.(11 + *i*), each
with its own SIP and HTTP ports and RTP range, advertising its own address.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

FRONT_HOST = "127.0.0.10"
"""The front's address (and PostgreSQL's and Redis's)."""
KAMAILIO_CONFIG = Path(str(resources.files("cluster").joinpath("kamailio/kamailio.cfg")))
#: Seconds Kamailio may take to answer its control socket after start.
FRONT_START_TIMEOUT = 15.0


def node_host(index: int) -> str:
    """Node ``index``'s address (0: 127.0.0.11)."""
    return f"127.0.0.{11 + index}"


def node_id(index: int) -> str:
    """Node ``index``'s name (0: ``n1``)."""
    return f"n{index + 1}"


@dataclass(frozen=True)
class ClusterKeys:
    """What every node of a cluster must share besides PostgreSQL and Redis."""

    secret_key: str
    """Digest nonces and sessions: a nonce one node made is checked by another."""
    recording_master_key: str
    """Wraps the tenants' recording keys: any node reads any recording."""

    @classmethod
    def generate(cls) -> ClusterKeys:
        return cls(secrets.token_urlsafe(48), base64.b64encode(secrets.token_bytes(32)).decode("ascii"))

    @classmethod
    def kept_in(cls, path: Path) -> ClusterKeys:
        """The keys stored in ``path`` (JSON), generated and stored there the first time."""
        if path.exists():
            return cls(**json.loads(path.read_text()))
        keys = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"secret_key": keys.secret_key, "recording_master_key": keys.recording_master_key}, fh)
        return keys


def node_arguments(index: int, *, redis_url: str, database_url: str, front: str) -> list[str]:
    """The cluster flags of node ``index``'s ``callcenter demo`` (its addresses and ports are the
    caller's: ``--sip-host``, ``--advertised-ip``, ``--http-host`` = :func:`node_host`)."""
    return ["--node-id", node_id(index), "--redis-url", redis_url, "--database-url", database_url,
            "--sip-outbound-proxy", front]


def node_environment(keys: ClusterKeys, recordings_dir: Path) -> dict[str, str]:
    """The environment every node of the cluster shares (settings without a flag)."""
    return {"CALLCENTER_SECRET_KEY": keys.secret_key, "CALLCENTER_RECORDING_MASTER_KEY": keys.recording_master_key,
            "CALLCENTER_SIP_FRONT_IPS": json.dumps([FRONT_HOST]), "CALLCENTER_RECORDINGS_DIR": str(recordings_dir)}


class KamailioNotFound(RuntimeError):
    """``kamailio`` is not installed."""


class Front:
    """Kamailio as the cluster's SIP front on ``host:port`` (UDP and TCP), dispatching to ``nodes``
    (``ip:port`` of their SIP endpoints); its list, control socket and log live in ``workdir``."""

    def __init__(self, host: str, port: int, workdir: Path, nodes: list[str]) -> None:
        binary = shutil.which("kamailio") or ("/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None)
        kamcmd = shutil.which("kamcmd") or ("/usr/sbin/kamcmd" if Path("/usr/sbin/kamcmd").exists() else None)
        if binary is None or kamcmd is None:
            raise KamailioNotFound("kamailio not found: install the Debian package 'kamailio' "
                                   "(./dev test and ./dev cluster do it)")
        self.binary, self.kamcmd = binary, kamcmd
        self.host, self.port, self.workdir, self.nodes = host, port, workdir, list(nodes)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "kamailio.log"

    @property
    def _ctl(self) -> str:
        return f"unixs:{self.workdir / 'kamailio.ctl'}"

    def start(self) -> Front:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "nodes.list").write_text("".join(f"1 sip:{node}\n" for node in self.nodes))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-f", str(KAMAILIO_CONFIG), "-DD", "-E", "-m", "64", "-M", "8",
                 "-l", f"udp:{self.address}", "-l", f"tcp:{self.address}",
                 "-A", f'DISPATCHER_LIST="{self.workdir / "nodes.list"}"', "-A", f'CTL_SOCKET="{self._ctl}"',
                 "-Y", str(self.workdir), "-w", str(self.workdir)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + FRONT_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kamailio exited ({self.proc.returncode}): {self.log()}")
            with contextlib.suppress(RuntimeError):
                self.states()
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"kamailio did not answer within {FRONT_START_TIMEOUT:.0f} s: {self.log()}")

    def states(self) -> dict[str, str]:
        """Each node (``ip:port``) and its dispatcher flags: ``AP`` active (probed), ``IP``
        inactive, ``TP`` trying. Raises RuntimeError when Kamailio does not answer."""
        out = subprocess.run([self.kamcmd, "-s", self._ctl, "dispatcher.list"], capture_output=True, text=True,
                             timeout=5)
        if out.returncode != 0:
            raise RuntimeError(f"kamcmd dispatcher.list failed: {out.stderr.strip()}")
        states: dict[str, str] = {}
        uri = None
        for line in out.stdout.splitlines():
            key, _, value = line.strip().partition(": ")
            if key == "URI":
                uri = value.removeprefix("sip:")
            elif key == "FLAGS" and uri is not None:
                states[uri] = value
        return states

    def set_state(self, node: str, state: str) -> None:
        """Set a node's dispatcher state by hand: ``d`` disabled (no calls, no probes), ``ap``
        active and probed again (``kamcmd dispatcher.set_state``)."""
        out = subprocess.run([self.kamcmd, "-s", self._ctl, "dispatcher.set_state", state, "1", f"sip:{node}"],
                             capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            raise RuntimeError(f"kamcmd dispatcher.set_state failed: {out.stderr.strip() or out.stdout.strip()}")

    def active(self) -> set[str]:
        """The nodes the front sends new calls to."""
        return {node for node, flags in self.states().items() if flags.startswith("A")}

    def wait_for(self, check: Callable[[set[str]], bool], timeout: float = 15.0) -> set[str]:
        """The active nodes as soon as ``check`` accepts them (RuntimeError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            active = self.active()
            if check(active):
                return active
            if time.monotonic() > deadline:
                raise RuntimeError(f"front: active nodes still {sorted(active)} after {timeout} s")
            time.sleep(0.05)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # the main process ends its children
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
