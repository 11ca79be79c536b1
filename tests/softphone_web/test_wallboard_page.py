"""The supervisor wallboard (``/supervisor``) in headless Chromium on a demo node, with a sipp caller.

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

from tests.support.browser import chromium, log_in, tone_wav
from tests.support.node import NodeProcess, free_port
from tests.support.pcap import ivr_call_scenario
from tests.support.sipp import sipp_async

pytestmark = pytest.mark.interop

DEMO = "4001234567"

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
