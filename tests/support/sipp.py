"""Running sipp (Debian sip-tester) as the carrier or as a called party."""

from __future__ import annotations

import asyncio
import csv
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PCAP_DIR = Path("/usr/share/sip-tester")
SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


@dataclass
class SippResult:
    returncode: int
    successful: int
    failed: int
    output: str
    errors: str

    def __str__(self) -> str:
        return f"sipp rc={self.returncode} ok={self.successful} failed={self.failed}\n{self.output[-2000:]}\n{self.errors[-3000:]}"


def _prepare(workdir: Path, target: str, args: tuple[str, ...], timeout: float) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    pcap = workdir / "pcap"
    if not pcap.exists():
        pcap.mkdir()
        for f in PCAP_DIR.glob("*.pcap"):
            shutil.copy(f, pcap / f.name)
    for old in [*workdir.glob("stat.csv"), *workdir.glob("*_errors.log")]:
        old.unlink()
    return ["sipp", target, "-i", "127.0.0.1", "-nostdin", "-trace_stat", "-stf", "stat.csv", "-trace_err",
            "-timeout", f"{int(timeout)}s", "-timeout_error", *args]


def _result(workdir: Path, returncode: int, output: str) -> SippResult:
    ok = bad = 0
    stat = workdir / "stat.csv"
    if stat.exists():
        rows = list(csv.reader(stat.open(), delimiter=";"))
        if len(rows) >= 2:
            header, last = rows[0], rows[-1]
            ok = int(last[header.index("SuccessfulCall(C)")])
            bad = int(last[header.index("FailedCall(C)")])
    errors = "\n".join(p.read_text(errors="replace") for p in workdir.glob("*_errors.log"))
    return SippResult(returncode, ok, bad, output, errors)


def sipp(workdir: Path, target: str, *args: str, timeout: float = 120.0) -> SippResult:
    """Run sipp to completion in ``workdir`` (given a ``pcap/`` folder) and read its statistics."""
    cmd = _prepare(workdir, target, args, timeout)
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout + 30)
    return _result(workdir, proc.returncode, proc.stdout + proc.stderr)


async def sipp_async(workdir: Path, target: str, *args: str, timeout: float = 60.0) -> SippResult:
    """The same, without blocking the event loop (for tests with an in-process endpoint)."""
    cmd = _prepare(workdir, target, args, timeout)
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=workdir, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout + 30)
    return _result(workdir, proc.returncode or 0, out.decode(errors="replace"))


def scenario(name: str) -> str:
    return str(SCENARIOS / name)


def expect_status_scenario(path: Path, status: int, *, method: str = "INVITE", extra_headers: str = "",
                           to_tag: str = "", codecs: str = "0", rtpmap: str = "a=rtpmap:0 PCMU/8000") -> str:
    """A one-request scenario that passes only if the node answers ``status``."""
    body = ""
    ctype = ""
    if method == "INVITE":
        ctype = "Content-Type: application/sdp\n"
        body = ("\nv=0\no=user1 1 1 IN IP4 [local_ip]\ns=-\nc=IN IP4 [local_ip]\nt=0 0\n"
                f"m=audio [media_port] RTP/AVP {codecs}\n{rtpmap}\n")
    to = f"<sip:[service]@[remote_ip]:[remote_port]>{';tag=' + to_tag if to_tag else ''}"
    ack = ""
    if method == "INVITE" and status >= 300:
        ack = """  <send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-3]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
]]></send>
"""
    path.write_text(f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="expect {status}">
  <send retrans="500"><![CDATA[
{method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag[call_number]
To: {to}
Call-ID: [call_id]
CSeq: 1 {method}
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
{extra_headers}{ctype}Content-Length: [len]
{body}
]]></send>
  <recv response="100" optional="true"/>
  <recv response="{status}"/>
{ack}</scenario>
""")
    return str(path)
