"""A throwaway PostgreSQL server for tests: a real ``postgres`` on loopback, no mocks.

``PostgresServer.start()`` runs ``initdb`` into a fresh temporary directory and starts
``postgres`` on a free port, listening only on 127.0.0.1, with its unix socket inside
that directory and ``fsync=off`` (the data is thrown away). PostgreSQL refuses to run
as root: as root, both programs run as the ``postgres`` system user (created by the
Debian ``postgresql`` package) through ``runuser``; otherwise as the current user.
``stop()`` asks the postmaster for a fast shutdown (SIGINT), waits, removes the directory.

The binaries come from Debian's ``postgresql`` package (``./dev test`` installs it);
when they are missing, ``PostgresNotFound`` says so.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL, make_url

BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "postgres"
"""Name of the bootstrap superuser (``initdb -U``), whichever OS user runs the server."""
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
TEST_TIMEZONE = "Asia/Kolkata"
"""Session time zone of the databases ``fresh_database`` makes: not UTC (and not a whole
hour off it), so code that mixes up local and UTC time fails the tests."""


class PostgresNotFound(RuntimeError):
    """The PostgreSQL server binaries are not installed."""


def find_bin_dir() -> Path:
    """Directory with ``initdb`` and ``postgres`` (newest major version first)."""
    candidates = sorted(
        (Path(p) for p in glob.glob(BIN_GLOB)),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for bin_dir in candidates:
        if (bin_dir / "initdb").is_file() and (bin_dir / "postgres").is_file():
            return bin_dir
    raise PostgresNotFound(
        f"PostgreSQL server binaries not found ({BIN_GLOB}/initdb, postgres): "
        "install the Debian package 'postgresql' (apt-get install -y postgresql; ./dev test does it)"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One postmaster in a temporary directory; see the module docstring."""

    def __init__(self) -> None:
        self.bin_dir = find_bin_dir()
        self.root: Path | None = None
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        """Wall time of ``start()`` (initdb + server start + first connection)."""
        self._as_root = os.geteuid() == 0
        if self._as_root:
            try:
                self._pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresNotFound(
                    "running as root, but there is no 'postgres' system user to run the server as "
                    "(the Debian package 'postgresql' creates it)"
                ) from None
            if shutil.which("runuser") is None:
                raise PostgresNotFound("running as root, but 'runuser' (util-linux) is missing")

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "postgres.log"

    def _cmd(self, program: str, *args: str) -> list[str]:
        cmd = [str(self.bin_dir / program), *args]
        return ["runuser", "-u", "postgres", "--", *cmd] if self._as_root else cmd

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3) of ``database`` on this server, over TCP loopback."""
        assert self.port is not None, "server not started"
        return URL.create(
            "postgresql+psycopg", username=SUPERUSER, host="127.0.0.1", port=self.port, database=database
        ).render_as_string(hide_password=False)

    def start(self) -> None:
        started = time.perf_counter()
        # Not under pytest's tmp dir: its parents are private to root, and the server
        # runs as 'postgres'. mkdtemp gives 0700; chown hands it to the server's user.
        self.root = Path(tempfile.mkdtemp(prefix="cc-pg-"))
        if self._as_root:
            os.chown(self.root, self._pw.pw_uid, self._pw.pw_gid)
        initdb = subprocess.run(
            self._cmd(
                "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
                "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions",
            ),
            cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False,
        )
        if initdb.returncode != 0:
            out = initdb.stdout.decode(errors="replace")
            self._cleanup()
            raise RuntimeError(f"initdb failed ({initdb.returncode}):\n{out}")
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = _free_port()
            if self._start_postmaster():
                self.startup_seconds = time.perf_counter() - started
                return
        log = self._read_log()
        self._cleanup()
        raise RuntimeError(f"postgres did not start:\n{log}")

    def _start_postmaster(self) -> bool:
        assert self.root is not None and self.port is not None
        with open(self.log_path, "ab") as log_file:
            self.proc = subprocess.Popen(
                self._cmd(
                    "postgres", "-D", str(self.data_dir), "-p", str(self.port),
                    "-c", "listen_addresses=127.0.0.1",
                    "-c", f"unix_socket_directories={self.root}",
                    "-c", "fsync=off",
                    "-c", "full_page_writes=off",
                    "-c", "max_connections=100",
                ),
                cwd=self.root, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C of the test run does not hit it first
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        log = self._read_log()
        self.stop()
        raise RuntimeError(f"postgres did not accept connections within {START_TIMEOUT:.0f} s:\n{log}")

    def dsn(self, database: str) -> str:
        """libpq connection string (for psycopg directly)."""
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    def _postmaster_pid(self) -> int | None:
        # Under runuser, self.proc is runuser; the postmaster is its child.
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster), wait for it, delete the directory."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            pid = self._postmaster_pid() if self._as_root else proc.pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid or proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._cleanup()

    def halt(self, mode: str = "fast") -> None:
        """Stop the server as an outage does (``pg_ctl stop -m fast``: sessions are cut, or
        ``immediate``: no clean shutdown at all), keeping its data and port for :meth:`resume`."""
        assert self.proc is not None, "server not running"
        subprocess.run(self._cmd("pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w"),
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=True, timeout=STOP_TIMEOUT)
        self.proc.wait(timeout=STOP_TIMEOUT)
        self.proc = None

    def resume(self) -> None:
        """Start a halted server again, on the same port, with its data as it was."""
        if not self._start_postmaster():
            raise RuntimeError(f"postgres did not start again:\n{self._read_log()}")

    def _read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def _cleanup(self) -> None:
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def admin_execute(url: str, sql: str) -> None:
    """Run ``sql`` outside a transaction (CREATE/DROP DATABASE) on the server of ``url``."""
    u = make_url(url)
    with psycopg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database or "postgres",
        autocommit=True,
    ) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def create_database(url: str, name: str, timezone: str | None = TEST_TIMEZONE) -> str:
    """Create database ``name`` on the server of ``url`` (its sessions default to
    ``timezone``); returns the URL of the new database."""
    admin_execute(url, f'CREATE DATABASE "{name}"')
    if timezone is not None:
        admin_execute(url, f"ALTER DATABASE \"{name}\" SET timezone TO '{timezone}'")
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, name: str) -> None:
    """Drop database ``name`` on the server of ``url``, closing its sessions."""
    admin_execute(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_database(url: str, prefix: str = "t") -> Iterator[str]:
    """A new, empty database with a unique name on the server of ``url`` (a superuser's
    URL) for the block; dropped afterwards. Yields its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    new_url = create_database(url, name)
    try:
        yield new_url
    finally:
        drop_database(url, name)
