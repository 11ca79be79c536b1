"""A real node in a subprocess (``callcenter demo``), on free ports, for interop tests."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

READY = "callcenter node ready"


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host`` (a loopback address)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((host, 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


_RTP_LOW, _RTP_HIGH = 20000, 60000
_next_rtp = [(os.getpid() % 50) * 600]  # parallel test runs start apart


def rtp_range(size: int = 400) -> tuple[int, int]:
    """Distinct RTP port ranges per node or harness started in this test process; they wrap
    around within 20000-60000 (a whole test run takes more ports than there are)."""
    offset = _next_rtp[0] % (_RTP_HIGH - _RTP_LOW - size - 2)
    _next_rtp[0] = offset + size + 2
    low = _RTP_LOW + offset
    return low, low + size


@dataclass
class NodeProcess:
    data_dir: Path
    sip_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    admin_password: str | None = None
    #: The demo's platform operator (company platform, user operator), printed at creation.
    operator_password: str | None = None
    #: Demo agents printed at creation: username -> (login password, SIP user, SIP secret).
    agents: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    #: Demo QA and supervisor users printed at creation: username -> login password.
    staff: dict[str, str] = field(default_factory=dict)
    #: RTP ports given to the node (two per call: RTP and RTCP).
    rtp_ports: int = 400
    #: The node's address: SIP, HTTP and media listen there and it advertises it (a cluster's
    #: nodes each have their own, see tests/support/cluster.py; pass ports free on it).
    host: str = "127.0.0.1"

    @property
    def sip(self) -> str:
        return f"{self.host}:{self.sip_port}"

    @property
    def http(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def start(self, timeout: float = 60.0) -> NodeProcess:
        low, high = rtp_range(self.rtp_ports)
        args = [sys.executable, "-m", "callcenter", "demo", "--data-dir", str(self.data_dir),
                "--sip-host", self.host, "--sip-port", str(self.sip_port), "--http-host", self.host,
                "--http-port", str(self.http_port), "--advertised-ip", self.host,
                "--rtp-port-min", str(low), "--rtp-port-max", str(high), *self.extra_args]
        log = open(self.data_dir.parent / f"node-{self.sip_port}.log", "a")
        self.log_path = Path(log.name)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True,
                                     env={**os.environ, **self.env})
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"node exited ({self.proc.wait()}): {self.log_path.read_text()[-3000:]}")
            self.output.append(line)
            match = re.search(r"password=(\S+)", line)
            if match:
                self.admin_password = match.group(1)
            agent = re.search(r"Demo agent (\S+) .*login password (\S+), SIP phone (\S+) secret (\S+)", line)
            if agent:
                self.agents[agent.group(1)] = (agent.group(2), agent.group(3), agent.group(4))
            user = re.search(r"Demo user (\S+) \(\S+\): login password (\S+)", line)
            if user:
                self.staff[user.group(1)] = user.group(2)
            operator = re.search(r"Platform operator: .* password (\S+),", line)
            if operator:
                self.operator_password = operator.group(1)
            if READY in line:
                return self
        raise RuntimeError("node did not become ready")

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def logs(self) -> list[dict[str, object]]:
        lines = []
        for raw in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                pass
        return lines

    def cdrs(self) -> list[dict[str, object]]:
        out = subprocess.run([sys.executable, "-m", "callcenter", "cdr", "list", "--data-dir", str(self.data_dir),
                              "--json"], capture_output=True, text=True, check=True)
        return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


@contextmanager
def admin_client(node: NodeProcess, password: str | None = None) -> Iterator[httpx.Client]:
    """An HTTP client of the node's API, logged in as the demo admin, for a ``with`` block."""
    with httpx.Client(base_url=node.http, timeout=30) as client:
        reply = client.post("/api/login", json={"tenant": "demo", "username": "admin",
                                                "password": password or node.admin_password})
        reply.raise_for_status()
        client.headers["Authorization"] = f"Bearer {reply.json()['token']}"
        yield client


def add_tenant(node: NodeProcess, slug: str, users: dict[str, str]) -> str:
    """A second tenant ``slug`` with ``users`` (name: role; agents get an agent row with the demo's
    skills), written straight into the node's database: no API creates tenants. Each password is
    ``<name>-secret-1``."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from callcenter.models import Agent, Tenant, User
    from callcenter.security import hash_password

    engine = create_engine(f"sqlite:///{node.data_dir}/callcenter.db")
    with Session(engine) as db, db.begin():
        tenant = Tenant(name=slug.title(), slug=slug)
        db.add(tenant)
        db.flush()
        for name, role in users.items():
            user = User(tenant_id=tenant.id, username=name, password_hash=hash_password(f"{name}-secret-1"),
                        role=role)
            db.add(user)
            db.flush()
            if role == "agent":
                db.add(Agent(tenant_id=tenant.id, user_id=user.id, skills={"sales": 5, "support": 5}))
    engine.dispose()
    return slug
