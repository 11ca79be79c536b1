"""The wallboard's day charts (``charts.js`` on ``/supervisor``) in headless Chromium on a demo node.

Before any call the charts say "No calls yet today". agent2's desk phone (sipp, registered,
answering with an audio echo) takes a first caller pressing 2 (support); a second caller queued
behind it hangs up after about 7 s (an abandon: longer than ``short_abandon``, 5 s). The page's
figures per hour (``window.dayCharts.data``) must equal ``GET /api/reports/intervals`` for the
same window, and the SVG bars of the calls' hour must carry those counts in their titles. The
day and the hour labels are the tenant's time zone's (``tenant.timezone``), not the browser's: the
browser runs in another zone (America/New_York) to tell them apart.

Set ``CALLCENTER_SCREENSHOTS=<dir>`` to keep ``day-charts.png``.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import expect

from tests.support.browser import chromium, log_in, tone_wav
from tests.support.node import NodeProcess, admin_client, free_port
from tests.support.pcap import ivr_call_scenario
from tests.support.sipp import scenario, sipp_async

pytestmark = pytest.mark.interop

DEMO = "4001234567"
PRESS_2 = [("pause", 1000), ("pcap", "pcap/dtmf_2833_2.pcap")]
FIGURES = ("CONTACTS_QUEUED", "CONTACTS_HANDLED", "CONTACTS_ABANDONED", "CONTACTS_ABANDONED_SHORT", "SERVICE_LEVEL")


@pytest.fixture(scope="module")
def node(module_node: NodeProcess) -> NodeProcess:
    return module_node


def desk_phone(node: NodeProcess, agent: str, workdir: Path) -> subprocess.Popen[bytes]:
    """The agent's desk phone: sipp registered as the agent, answering with an audio echo."""
    _, sip_user, secret = node.agents[agent]
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        ["sipp", node.sip, "-sf", scenario("desk_phone.xml"), "-oocsf", scenario("agent_answer_call.xml"),
         "-s", sip_user, "-au", sip_user, "-ap", secret, "-i", "127.0.0.1", "-p", str(free_port()),
         "-mp", str(free_port()), "-m", "1", "-rtp_echo", "-nostdin"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_until_available(api: httpx.Client, username: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        agent = next(a for a in api.get("/api/agents").json() if a["username"] == username)
        if (agent["live"] or {}).get("state") == "available":
            return
        assert time.monotonic() < deadline, f"{username} never became available: {agent}"
        await asyncio.sleep(0.2)


def caller(tmp_path: Path, name: str, node: NodeProcess, wait_ms: int) -> asyncio.Future[Any]:
    """A caller into the demo number pressing 2 (support), hanging up ``wait_ms`` later."""
    workdir = tmp_path / name
    workdir.mkdir()
    xml = ivr_call_scenario(workdir / "caller.xml", PRESS_2 + [("pause", wait_ms)])
    return asyncio.ensure_future(sipp_async(workdir, node.sip, "-sf", str(xml), "-s", DEMO, "-m", "1",
                                            "-mp", str(free_port()), timeout=60))


def figures(point: dict[str, Any]) -> dict[str, Any]:
    out = {k: point[k] for k in FIGURES}
    if out["SERVICE_LEVEL"] is not None:
        out["SERVICE_LEVEL"] = round(out["SERVICE_LEVEL"], 6)
    return out


async def test_day_charts_match_the_interval_report(node: NodeProcess, tmp_path: Path) -> None:
    token = httpx.post(f"{node.http}/api/login", timeout=30, json={
        "tenant": "demo", "username": "supervisor", "password": node.staff["supervisor"]}).json()["token"]
    supervisor = httpx.Client(base_url=node.http, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with chromium(tone_wav(tmp_path / "mic.wav", 1000.0)) as browser:
        # a browser in another zone than the tenant's (Asia/Shanghai): the charts follow the tenant
        page = await browser.new_page(viewport={"width": 1280, "height": 1100}, timezone_id="America/New_York")
        await log_in(page, f"{node.http}/supervisor", "supervisor", node.staff["supervisor"])
        await expect(page.locator("#charts-queue option")).to_have_text(["All queues", "sales", "support"],
                                                                        timeout=10_000)
        await expect(page.locator("#charts-empty")).to_be_visible()
        await expect(page.locator("#charts-empty")).to_have_text("No calls yet today.")
        await expect(page.locator("#charts-body")).to_be_hidden()

        phone = desk_phone(node, "agent2", tmp_path / "agent2")
        try:
            with admin_client(node) as api:
                await wait_until_available(api, "agent2")
            answered = caller(tmp_path, "answered", node, 10_000)  # agent2 answers it
            await asyncio.sleep(1.5)
            abandoned = caller(tmp_path, "abandoned", node, 7_000)  # waits behind it, hangs up
            results = await asyncio.gather(answered, abandoned)
            assert all(r.successful == 1 for r in results), "\n".join(map(str, results))
        finally:
            phone.terminate()
            phone.wait(10)

        # the records are written as the calls end: refresh until the page has both calls
        deadline = time.monotonic() + 15
        while True:
            data = await page.evaluate("window.dayCharts.refresh()")
            day = {k: sum(p[k] for p in data["total"]) for k in ("CONTACTS_QUEUED", "CONTACTS_HANDLED",
                                                                  "CONTACTS_ABANDONED")}
            if day == {"CONTACTS_QUEUED": 2, "CONTACTS_HANDLED": 1, "CONTACTS_ABANDONED": 1}:
                break
            assert time.monotonic() < deadline, day
            await asyncio.sleep(0.5)

        # the page's figures, hour by hour, are the report's for the same window
        request = data["request"]
        zone = supervisor.get("/api/me").json()["tenant"]["timezone"]
        assert request["tz"] == zone != "America/New_York"
        assert request["since"] == datetime.now(ZoneInfo(zone)).strftime("%Y-%m-%dT00:00:00") or \
            request["since"] == (datetime.now(ZoneInfo(zone)) - timedelta(minutes=5)).strftime("%Y-%m-%dT00:00:00")
        body = supervisor.get("/api/reports/intervals", params={
            "by": "queue", "interval": "60", "since": request["since"], "until": request["until"],
            "tz": request["tz"], "sl_threshold": data["sl_threshold"]["support"]}).json()
        assert [h["interval_start"] for h in data["hours"]] == sorted({r["interval_start"] for r in body["rows"]})
        for queue in ("sales", "support"):
            rows = [figures(r) for r in body["rows"] if r["queue"] == queue]
            assert [figures(p) for p in data["byQueue"][queue]] == rows, queue
        assert [figures(p) for p in data["total"]] == [
            figures(p) for p in data["byQueue"]["support"]]  # sales had no calls
        busy = [p for p in data["total"] if p["CONTACTS_QUEUED"]]
        assert 1 <= len(busy) <= 2  # both calls in the current hour, unless it turned meanwhile

        # the SVG: bars titled with those counts, an accessible summary
        await expect(page.locator("#charts-empty")).to_be_hidden()
        volume = page.locator("#chart-volume svg[role=img]")
        await expect(volume).to_have_attribute("aria-label", "Contacts per hour today, All queues: 2 offered, "
                                               "1 handled, 1 abandoned" + ("" if len(busy) > 1 else
                                                                          f"; busiest hour "
                                                                          f"{await hour_span(page, busy[0])} with 2 offered."))
        for point in busy:
            start = point["interval_start"]
            for series, key in (("offered", "CONTACTS_QUEUED"), ("handled", "CONTACTS_HANDLED"),
                                ("abandoned", "CONTACTS_ABANDONED")):
                bar = volume.locator(f'rect.bar[data-series="{series}"][data-start="{start}"]')
                if point[key]:
                    await expect(bar.locator("title")).to_have_text(f"{series.capitalize()} "
                                                                    f"{await hour_span(page, point)}: {point[key]}")
                else:
                    await expect(bar).to_have_count(0)
        sl = page.locator("#chart-sl svg[role=img]")
        await expect(sl).to_have_attribute("aria-label", starts_with("Service level per hour today, All queues: "))
        await expect(sl.locator("circle.dot")).to_have_count(len([p for p in data["total"]
                                                                   if p["SERVICE_LEVEL"] is not None]))

        # one queue: the selector switches the charts to its figures
        await page.select_option("#charts-queue", "sales")
        await expect(page.locator("#charts-empty")).to_be_visible()
        await page.select_option("#charts-queue", "support")
        await expect(volume).to_have_attribute("aria-label", starts_with("Contacts per hour today, Queue support: 2 offered"))

        folder = os.environ.get("CALLCENTER_SCREENSHOTS")
        await page.locator(".charts-card").screenshot(
            path=Path(folder) / "day-charts.png" if folder else tmp_path / "day-charts.png", animations="disabled")
    supervisor.close()


def starts_with(prefix: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(prefix))


async def hour_span(page: Any, point: dict[str, Any]) -> str:
    """The hour as the page labels it: in the tenant's zone (the report's ``tz``), in the page's
    language. (It used the browser's zone before the charts followed the tenant's.)"""
    return await page.evaluate("""(p) => {
      const f = (iso) => new Intl.DateTimeFormat(document.documentElement.lang,
        {timeZone: window.dayCharts.data.tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23'}).format(new Date(iso));
      return `${f(p.interval_start)}–${f(p.interval_end)}`;
    }""", point)
