"""SIP/RTP load benchmark: how many media calls and calls per second a node holds.

Starts a demo node (its own data folder, loopback), then drives it with the
shared sipp yardstick scripts (``../shared/bench/load_step.sh`` and
``cps_step.sh``, the ones that measured Asterisk 18 on this kind of machine):

* concurrency steps: sipp ``uac_pcap`` (G.711 audio both ways, the node echoes
  it, RFC 4733 digit) to a line-test number (no IVR flow: greeting, then echo) holding N calls for DUR seconds; the highest N with
  <= 0.1 % failed calls is the result;
* call-rate steps: sipp ``uac`` at R calls/s; the highest R with no failure.

For each step it prints sipp's successes/failures, the node's CPU (whole
process tree, % of one core), CPU per call, and the RTP packets lost that the
node counted.  The same steps run against ``sipp -sn uas -rtp_echo`` (a C
answer-and-echo peer) as the baseline of the same run: the floor of what a
media call costs on this machine.

usage: python bench/sip_load.py [--concurrency 200,400,600,800] [--rates 100,200,300,400]
                                [--duration 60] [--rate-duration 20] [--no-baseline]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.node import NodeProcess, admin_client, free_port  # noqa: E402

YARDSTICK = ROOT.parent / "shared" / "bench"
NUMBER = "4000000001"
"""A number without an IVR flow: the line test (greeting, then echo), as the yardstick expects."""


def add_line_test_number(node: NodeProcess) -> None:
    with admin_client(node) as api:
        api.post("/api/numbers", json={"number": NUMBER, "description": "line test"}).raise_for_status()


def rtp_lost(node: NodeProcess) -> int:
    text = httpx.get(f"{node.http}/metrics", timeout=10).text
    match = re.search(r"^callcenter_rtp_packets_lost_total (\S+)", text, re.M)
    return int(float(match.group(1))) if match else 0


def step(script: str, target: str, pid: int, value: int, duration: int) -> dict[str, str]:
    out = subprocess.run(["bash", str(YARDSTICK / script), target, NUMBER, str(pid), str(value), str(duration)],
                         capture_output=True, text=True, timeout=duration + 300)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def run_steps(label: str, target: str, pid: int, args: argparse.Namespace, node: NodeProcess | None) -> None:
    print(f"\n== {label}: concurrent media calls (uac_pcap, {args.duration} s per step) ==", flush=True)
    best = 0
    for n in args.concurrency:
        lost_before = rtp_lost(node) if node else 0
        r = step("load_step.sh", target, pid, n, args.duration)
        lost = (rtp_lost(node) - lost_before) if node else "n/a"
        print(f"{label} concurrent={n} ok={r.get('ok')} failed={r.get('failed')} fail%={r.get('fail_pct')} "
              f"cpu%={r.get('node_cpu_pct_of_one_core')} cpu%/call={r.get('cpu_pct_per_call')} rtp_lost={lost}",
              flush=True)
        if float(r.get("fail_pct", "100")) > 0.1:
            break
        best = n
        time.sleep(12)  # let the last calls end before the next step
    print(f"{label}: max concurrent media calls with <= 0.1 % failures: {best}")
    print(f"\n== {label}: call rate (uac, {args.rate_duration} s per step) ==", flush=True)
    best = 0
    for rate in args.rates:
        r = step("cps_step.sh", target, pid, rate, args.rate_duration)
        print(f"{label} rate={rate}cps ok={r.get('ok')} failed={r.get('failed')} fail%={r.get('fail_pct')} "
              f"cpu%={r.get('node_cpu_pct_of_one_core')}", flush=True)
        if int(r.get("failed", "1")) > 0:
            break
        best = rate
        time.sleep(5)
    print(f"{label}: sustained calls/s with no failure: {best}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="200,400,600,800")
    parser.add_argument("--rates", default="100,200,300,400")
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--rate-duration", type=int, default=20)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    args.concurrency = [int(x) for x in args.concurrency.split(",")]
    args.rates = [int(x) for x in args.rates.split(",")]
    if not (YARDSTICK / "load_step.sh").exists():
        print(f"yardstick scripts not found in {YARDSTICK}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        node = NodeProcess(data, extra_args=["--log-level", "WARNING", "--max-calls", "5000"], rtp_ports=8000,
                           env={"CALLCENTER_RATE_LIMIT_PER_IP": "5000", "CALLCENTER_RATE_LIMIT_BURST": "5000"})
        node.start()
        try:
            assert node.proc is not None
            add_line_test_number(node)
            run_steps("callcenter", node.sip, node.proc.pid, args, node)
        finally:
            node.stop()
        if not args.no_baseline:
            port = free_port()
            uas = subprocess.Popen(["sipp", "-sn", "uas", "-rtp_echo", "-i", "127.0.0.1", "-p", str(port),
                                    "-nostdin"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
            time.sleep(1)
            try:
                run_steps("baseline sipp-uas-rtp_echo", f"127.0.0.1:{port}", uas.pid, args, None)
            finally:
                uas.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
