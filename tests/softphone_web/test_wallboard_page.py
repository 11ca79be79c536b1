"""The supervisor wallboard (``/supervisor``) in headless Chromium on a demo node, with sipp callers.

Listen, whisper and barge are checked by ear: agent1's page (its own Chromium, microphone 1400 Hz)
answers a sipp caller (1 kHz), the supervisor's page (microphone 2200 Hz) steps in; each page's
analyser says which tones its audio carries, and what the caller hears is captured off the
loopback interface at sipp's media port.

The tile's CONTACTS_IN_QUEUE is watched in the page by a MutationObserver; the time it changes
(browser clock, same host) is compared with ``trigger.first_at`` of the snapshot that changed it:
the engine time of the first ACD event (here the ``Queued`` of the call) the push answers.

Set ``CALLCENTER_SCREENSHOTS=<dir>`` to keep ``supervisor.png``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from sip_bridge.tones import sine
from tests.support.agent_page import SippCaller, answer, caller_hears, eventually, open_softphone, page_hears
from tests.support.browser import chromium, hears_tone, log_in, tone_wav
from tests.support.node import NodeProcess, admin_client, free_port
from tests.support.pcap import ivr_call_scenario, write_rtp_pcap
from tests.support.sipp import sipp_async

pytestmark = pytest.mark.interop

DEMO = "4001234567"
CALLER_TONE, AGENT_TONE, SUPERVISOR_TONE = 1000.0, 1400.0, 2200.0
MONITOR = "#monitor-audio"

WATCH_JS = """
() => {
  const el = document.querySelector('.tile[data-queue="support"] [data-metric="CONTACTS_IN_QUEUE"]');
  window.__changes = [];
  new MutationObserver(() => {
    const snap = window.wallboard.snap;
    window.__changes.push({value: el.textContent, t: Date.now() / 1000,
                           first_at: snap.trigger ? snap.trigger.first_at : null});
  }).observe(el, {childList: true, characterData: true, subtree: true});
}
"""

NOTIFICATIONS_JS = """
window.__notifications = [];
window.Notification = class {
  static permission = 'granted';
  static requestPermission() { return Promise.resolve('granted'); }
  constructor(title, options) { window.__notifications.push({title, body: options && options.body}); }
};
"""


@pytest.fixture(scope="module")
def node(module_node: NodeProcess) -> NodeProcess:
    return module_node


async def test_wallboard_shows_a_waiting_caller_within_a_second(node: NodeProcess, tmp_path: Path) -> None:
    async with chromium(tone_wav(tmp_path / "mic.wav", 1000.0)) as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 860})
        await page.add_init_script(NOTIFICATIONS_JS)
        await log_in(page, f"{node.http}/supervisor", "supervisor", node.staff["supervisor"])
        tile = page.locator('.tile[data-queue="support"]')
        await expect(tile).to_be_visible(timeout=10_000)
        await expect(tile.locator('[data-metric="CONTACTS_IN_QUEUE"]')).to_have_text("0")
        await expect(page.locator("#agent-rows tr")).to_have_count(2)
        await page.evaluate(WATCH_JS)

        # the threshold, set from the tile's own form: a caller waiting more than 3 s turns it red
        await tile.locator(".tile-edit").click()
        await tile.locator('input[name="age"]').fill("3")
        await tile.locator('input[name="sl"]').fill("80")
        await tile.locator('button[type="submit"]').click()
        await expect(tile.locator(".tile-limits")).to_contain_text("longest wait ≤ 3 s")

        xml = ivr_call_scenario(tmp_path / "caller.xml", [("pause", 1500), ("pcap", "pcap/dtmf_2833_2.pcap"),
                                                          ("pause", 8000)])
        call = asyncio.ensure_future(sipp_async(tmp_path, node.sip, "-sf", str(xml), "-s", DEMO, "-m", "1",
                                                "-mp", str(free_port()), timeout=90))
        await expect(tile.locator('[data-metric="CONTACTS_IN_QUEUE"]')).to_have_text("1", timeout=30_000)
        changes = await page.evaluate("window.__changes")
        change = next(c for c in changes if c["value"] == "1")
        assert change["first_at"] is not None, "shown by a periodic refresh, not by the event's push"
        latency = change["t"] - change["first_at"]
        print(f"wallboard page update latency: {latency * 1000:.0f} ms after the ACD event")
        assert latency < 1.0

        await expect(tile).to_have_attribute("data-alert", "true", timeout=10_000)
        notes = await page.evaluate("window.__notifications")
        assert any(n["title"] == "Queue support" for n in notes), notes
        folder = os.environ.get("CALLCENTER_SCREENSHOTS")
        await page.screenshot(path=Path(folder) / "supervisor.png" if folder else tmp_path / "supervisor.png",
                              animations="disabled")
        result = await call
        assert result.successful == 1, str(result)


def test_wallboard_refuses_agents(node: NodeProcess) -> None:
    reply = httpx.post(f"{node.http}/api/login", json={"tenant": "demo", "username": "agent1",
                                                       "password": node.agents["agent1"][0]}, timeout=30)
    headers = {"Authorization": f"Bearer {reply.json()['token']}"}
    assert httpx.get(f"{node.http}/api/supervisor/metrics", headers=headers, timeout=30).status_code == 403


async def test_whisper_reaches_the_agent_only_and_barge_reaches_both(node: NodeProcess, tmp_path: Path) -> None:
    """The issue's "done when": callers wait on the wallboard, the supervisor whispers to agent1
    (verified by ear), and the day's interval report counts the calls made."""
    xml = ivr_call_scenario(tmp_path / "waiting.xml", [("pause", 1500), ("pcap", "pcap/dtmf_2833_2.pcap"),
                                                        ("pause", 8000)])
    waiting = asyncio.ensure_future(sipp_async(tmp_path, node.sip, "-sf", str(xml), "-s", DEMO, "-m", "1",
                                               "-mp", str(free_port()), timeout=90))
    async with chromium(tone_wav(tmp_path / "agent.wav", AGENT_TONE)) as agent_browser, \
            chromium(tone_wav(tmp_path / "boss.wav", SUPERVISOR_TONE)) as boss_browser:
        boss = await boss_browser.new_page(viewport={"width": 1280, "height": 1100})
        await log_in(boss, f"{node.http}/supervisor", "supervisor", node.staff["supervisor"])
        await expect(boss.locator('.tile[data-queue="support"] [data-metric="CONTACTS_IN_QUEUE"]')).to_have_text(
            "1", timeout=30_000)  # nobody is available yet: the caller waits, live on the board
        waiting_row = boss.locator("#waiting-rows tr")
        await expect(waiting_row).to_have_count(1)
        await waiting_row.locator(".w-move").select_option("sales")  # the supervisor moves it
        await expect(waiting_row.locator(".w-queue")).to_have_text("sales")
        await expect(boss.locator('.tile[data-queue="sales"] [data-metric="CONTACTS_IN_QUEUE"]')).to_have_text("1")
        await expect(waiting_row.locator(".w-next")).to_be_disabled()  # alone in line: already served next
        agent2 = boss.locator("#agent-rows tr", has_text="agent2")
        await agent2.locator(".a-set-state").select_option("break:lunch")
        await expect(agent2.locator(".a-state")).to_have_text("Break · lunch")
        await agent2.locator(".a-set-state").select_option("offline")
        await expect(agent2.locator(".a-state")).to_have_text("Offline")
        assert (await waiting).successful == 1  # hangs up after its 8 s: an abandon
        await expect(boss.locator("#no-waiting")).to_be_visible()

        agent = await open_softphone(agent_browser, node, "agent1")
        caller = SippCaller(node, tmp_path / "caller", "1", write_rtp_pcap(tmp_path / "t.pcap", sine(CALLER_TONE, 90.0)))
        await answer(agent)
        await caller_hears(caller, AGENT_TONE)
        row = boss.locator("#agent-rows tr", has_text="agent1")
        await row.locator('button[data-mode="listen"]').click()
        await expect(boss.locator("#monitor-who")).to_have_text("Listening to agent1's call", timeout=15_000)
        await page_hears(boss, CALLER_TONE, audio=MONITOR, among=True)
        await page_hears(boss, AGENT_TONE, audio=MONITOR, among=True)
        assert not await hears_tone(agent, SUPERVISOR_TONE, 1000, among=True)
        assert not caller.hears(SUPERVISOR_TONE, 0.05)

        await boss.click("#monitor-whisper")
        await expect(boss.locator("#monitor-whisper")).to_have_attribute("aria-pressed", "true")
        await page_hears(agent, SUPERVISOR_TONE, among=True)  # the agent hears the supervisor...
        await page_hears(agent, CALLER_TONE, among=True)  # ...and still the caller
        folder = os.environ.get("CALLCENTER_SCREENSHOTS")
        await boss.screenshot(path=Path(folder) / "supervisor.png" if folder else tmp_path / "supervisor.png",
                              animations="disabled", full_page=True)
        await asyncio.sleep(1.5)
        assert not caller.hears(SUPERVISOR_TONE, 0.05), "the caller heard the whisper"
        assert caller.hears(AGENT_TONE, 0.3)

        await boss.click("#monitor-barge")
        await caller_hears(caller, SUPERVISOR_TONE, share=0.15)  # now the caller hears the supervisor
        await caller_hears(caller, AGENT_TONE, share=0.15)
        await page_hears(agent, SUPERVISOR_TONE, among=True)

        await boss.click("#monitor-leave")
        await expect(boss.locator("#monitor-bar")).to_be_hidden()
        await caller_hears(caller, AGENT_TONE)
        await eventually(lambda: _quiet(caller))
        await agent.click("#btn-hangup")
        assert caller.finish().successful == 1

    with admin_client(node) as api:
        audit = api.get("/api/audit", params={"limit": 50}).json()
        assert {"call.listen", "call.whisper", "call.barge"} <= {entry["action"] for entry in audit}
        headers = {"Authorization": api.headers["Authorization"]}
    async with asyncio.timeout(20):  # the call record is written as the call ends
        while True:
            found = httpx.get(f"{node.http}/api/calls/search", headers=headers, timeout=30).json()
            records = [r for r in (found["items"] if isinstance(found, dict) else found) if r["dialed"] == DEMO]
            if all(r["ended_at"] for r in records) and any(r["agent"] == "agent1" for r in records):
                break
            await asyncio.sleep(0.5)
    totals = httpx.get(f"{node.http}/api/reports/intervals", params={"interval": "day"}, headers=headers,
                       timeout=30).json()["totals"]
    figures = {key: sum(row[key] or 0 for row in totals) for key in
               ("CONTACTS_QUEUED", "CONTACTS_HANDLED", "CONTACTS_ABANDONED", "CONTACTS_ABANDONED_SHORT")}
    assert figures["CONTACTS_QUEUED"] == len(records), (figures, records)  # the day's report: the calls made
    assert figures["CONTACTS_HANDLED"] == sum(1 for r in records if r["agent"]) == 1
    assert figures["CONTACTS_ABANDONED"] + figures["CONTACTS_ABANDONED_SHORT"] == len(records) - 1
    sales = next(row for row in totals if row["queue"] == "sales")
    # the moved caller counts in support, the queue it first entered (like a transfer: README "Reports")
    assert sales["CONTACTS_HANDLED"] == 1 and sales["CONTACTS_QUEUED"] == 1


async def _quiet(caller: SippCaller) -> bool:
    return not caller.hears(SUPERVISOR_TONE, 0.05)
