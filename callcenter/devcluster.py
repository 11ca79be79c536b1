"""``./dev cluster``: a three-node cluster on this machine, for trying it out.

PostgreSQL (port 5432), Redis (6379) and Kamailio, the SIP front (5060), on 127.0.0.10; nodes
n1, n2, n3 on 127.0.0.11, .12, .13 (SIP 5060, HTTP 8000, RTP ranges of their own), with the
demo tenant. Data stays in ``./data-cluster`` (PostgreSQL, Redis's append-only file, the nodes'
folders, the recordings they share, the cluster's keys); delete it to start afresh. Ctrl-C (or
SIGTERM) stops everything. The front and nodes come from :mod:`callcenter.local_cluster`, as in
the tests' cluster (``tests/support/cluster.py``).

    python -m callcenter.devcluster [--dir data-cluster] [--nodes 3]
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

from callcenter.local_cluster import (
    FRONT_HOST,
    ClusterKeys,
    Front,
    node_arguments,
    node_environment,
    node_host,
    node_id,
)

SIP_PORT = 5060
HTTP_PORT = 8000
POSTGRES_PORT = 5432
REDIS_PORT = 6379
RTP_PORTS_PER_NODE = 3000
READY = "callcenter node ready"
START_TIMEOUT = 120.0


class Stop(Exception):
    """Ctrl-C or SIGTERM."""


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise SystemExit("PostgreSQL is not installed (Debian package postgresql; ./dev cluster installs it)")
    return Path(found[-1]).parent


class Processes:
    """What this run started, stopped in reverse order."""

    def __init__(self) -> None:
        self.stoppers: list[tuple[str, subprocess.Popen[bytes] | subprocess.Popen[str], signal.Signals]] = []

    def add(self, name: str, proc: subprocess.Popen[bytes] | subprocess.Popen[str],
            sig: signal.Signals = signal.SIGTERM) -> None:
        self.stoppers.append((name, proc, sig))

    def stop(self) -> None:
        for name, proc, sig in reversed(self.stoppers):
            if proc.poll() is None:
                print(f"stopping {name}", flush=True)
                with contextlib.suppress(ProcessLookupError):  # each runs in a session of its own
                    os.killpg(proc.pid, sig)
        for name, proc, _ in reversed(self.stoppers):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop: killed", flush=True)
                proc.kill()


def start_postgres(root: Path, procs: Processes) -> str:
    """PostgreSQL on 127.0.0.10:5432 with its data in ``root/postgres`` (created the first time);
    the URL of database ``callcenter``. As root it runs as the ``postgres`` user, as it must."""
    bin_dir, data = _postgres_bin(), root / "postgres"
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        as_postgres = ["runuser", "-u", "postgres", "--"]
        user = pwd.getpwnam("postgres")
    sockets = root / "postgres-run"
    for folder in (data, sockets):
        folder.mkdir(parents=True, exist_ok=True)
        if as_postgres:
            os.chown(folder, user.pw_uid, user.pw_gid)
    if not (data / "PG_VERSION").exists():
        print("creating the PostgreSQL cluster in", data, flush=True)
        subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                        "--encoding=UTF8", "--locale=C"], check=True, stdout=subprocess.DEVNULL)
    log = open(root / "postgres.log", "ab")
    proc = subprocess.Popen([*as_postgres, str(bin_dir / "postgres"), "-D", str(data), "-p", str(POSTGRES_PORT),
                             "-c", f"listen_addresses={FRONT_HOST}", "-c", f"unix_socket_directories={sockets}"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    procs.add("postgres", proc, signal.SIGINT)  # fast shutdown
    dsn = f"host={FRONT_HOST} port={POSTGRES_PORT} user=postgres"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            with psycopg.connect(f"{dsn} dbname=postgres", autocommit=True, connect_timeout=2) as conn:
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'callcenter'").fetchone() is None:
                    conn.execute("CREATE DATABASE callcenter")
                break
        except psycopg.OperationalError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"PostgreSQL did not start: see {root / 'postgres.log'}") from None
            time.sleep(0.1)
    return f"postgresql+psycopg://postgres@{FRONT_HOST}:{POSTGRES_PORT}/callcenter"


def start_redis(root: Path, procs: Processes) -> str:
    """Redis on 127.0.0.10:6379, its append-only file in ``root/redis``."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (Debian package redis-server; ./dev cluster installs it)")
    (root / "redis").mkdir(parents=True, exist_ok=True)
    log = open(root / "redis.log", "ab")
    proc = subprocess.Popen([binary, "--bind", FRONT_HOST, "--port", str(REDIS_PORT), "--dir", str(root / "redis"),
                             "--appendonly", "yes", "--save", "", "--protected-mode", "no", "--daemonize", "no"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    procs.add("redis", proc)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        with contextlib.suppress(OSError), socket.create_connection((FRONT_HOST, REDIS_PORT), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            if conn.recv(16).startswith(b"+PONG") and proc.poll() is None:
                return f"redis://{FRONT_HOST}:{REDIS_PORT}/0"
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"Redis did not start: see {root / 'redis.log'}")
        time.sleep(0.05)


def start_node(index: int, root: Path, procs: Processes, *, redis_url: str, database_url: str, front: str,
               keys: ClusterKeys) -> tuple[subprocess.Popen[str], list[str]]:
    """Node ``index`` (``callcenter demo``); its first lines (the demo's passwords) echoed as they come."""
    host, name = node_host(index), node_id(index)
    low = 20000 + index * RTP_PORTS_PER_NODE
    args = [sys.executable, "-m", "callcenter", "demo", "--data-dir", str(root / name), "--sip-host", host,
            "--sip-port", str(SIP_PORT), "--advertised-ip", host, "--http-host", host, "--http-port", str(HTTP_PORT),
            "--rtp-port-min", str(low), "--rtp-port-max", str(low + RTP_PORTS_PER_NODE - 1),
            *node_arguments(index, redis_url=redis_url, database_url=database_url, front=front)]
    log = open(root / f"{name}.log", "ab")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True,
                            env={**os.environ, **node_environment(keys, root / "recordings")},
                            start_new_session=True)
    procs.add(name, proc)
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"node {name} exited ({proc.wait()}): see {root / f'{name}.log'}")
        lines.append(line.rstrip())
        print(f"[{name}] {line.rstrip()}", flush=True)
        if READY in line:
            threading.Thread(target=_drain, args=(proc,), daemon=True).start()
            return proc, lines
    raise SystemExit(f"node {name} did not become ready within {START_TIMEOUT:.0f} s: see {root / f'{name}.log'}")


def _drain(proc: subprocess.Popen[str]) -> None:
    """Keep reading a node's stdout (it prints little after it is ready) so it never blocks."""
    assert proc.stdout is not None
    for _ in proc.stdout:
        pass


def run(root: Path, nodes: int) -> None:
    started = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    keys = ClusterKeys.kept_in(root / "cluster-keys.json")
    procs = Processes()
    front = Front(FRONT_HOST, SIP_PORT, root / "front", [f"{node_host(i)}:{SIP_PORT}" for i in range(nodes)])

    def stop(signum: int, frame: object) -> None:
        raise Stop()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        database_url = start_postgres(root, procs)
        redis_url = start_redis(root, procs)
        front.start()
        assert front.proc is not None
        procs.add("kamailio", front.proc)
        # the first node migrates the database and creates the demo tenant; then the others together
        _, lines = start_node(0, root, procs, redis_url=redis_url, database_url=database_url, front=front.address,
                              keys=keys)
        with ThreadPoolExecutor(max(1, nodes - 1)) as pool:
            for future in [pool.submit(start_node, index, root, procs, redis_url=redis_url,
                                       database_url=database_url, front=front.address, keys=keys)
                           for index in range(1, nodes)]:
                future.result()
        front.wait_for(lambda active: len(active) == nodes, timeout=30)
        password = next((m.group(1) for line in lines if (m := re.search(r"password=(\S+)", line))), None)
        print(summary(root, nodes, front.address, password, time.monotonic() - started), flush=True)
        while all(proc.poll() is None for _, proc, _ in procs.stoppers):
            time.sleep(1)
        dead = [name for name, proc, _ in procs.stoppers if proc.poll() is not None]
        print(f"{', '.join(dead)} exited: stopping the cluster", flush=True)
    except Stop:
        print("\nstopping the cluster", flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C must not leave half of it running
            signal.signal(sig, signal.SIG_IGN)
        procs.stop()


def summary(root: Path, nodes: int, front: str, password: str | None, seconds: float) -> str:
    pages = ", ".join(f"http://{node_host(i)}:{HTTP_PORT}/agent" for i in range(nodes))
    admin = (f"tenant demo, user admin, password {password}" if password is not None else
             "tenant demo, user admin (its password was printed when the tenant was created; "
             f"delete {root} to start afresh)")
    return f"""
Cluster up in {seconds:.0f} s: PostgreSQL, Redis and Kamailio (the SIP front) on {FRONT_HOST}, nodes \
{', '.join(f'{node_id(i)} {node_host(i)}' for i in range(nodes))}.
  Call it:        sipp -sn uac {front} -s 4001234567    (uac_pcap from a folder holding sipp's pcap/)
  Agents log in:  {pages}
  Admin:          {admin}
  Desk phones:    register demo.agent1 / demo.agent2 to {front} (the front, never a node)
  Logs:           {root}/n1.log ... (JSON), {root}/front/kamailio.log, postgres.log, redis.log
  Stop:           Ctrl-C (everything stops; the data stays in {root})
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m callcenter.devcluster", description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("data-cluster"), help="where the data stays")
    parser.add_argument("--nodes", type=int, default=3, choices=range(1, 10), metavar="N",
                        help="how many nodes (127.0.0.11 ...), 3 by default")
    args = parser.parse_args(argv)
    run(args.dir.resolve(), args.nodes)


if __name__ == "__main__":
    main()
