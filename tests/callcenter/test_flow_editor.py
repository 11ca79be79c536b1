"""The console's flow editor in headless Chromium on a demo node.

The demo admin builds a flow in the outline editor (business hours on the demo calendar, a menu
with two keys to the sales and support queues): while the calendar is not chosen an inline error
blocks publishing, and clicking it puts the focus on that field; once fixed, a click on the graph's
menu node selects it in the outline; the simulator with key 1 takes the path to the sales queue,
highlighted on the graph; publishing stores version 1 live on the demo number.

A test call from the editor to a stored version (a greeting, then a menu: key 1 plays the news and
hangs up, key 2 goes to the sales queue): the page hears the greeting through its audio element,
the graph highlights the menu as the call reaches it, the keypad's 1 takes the call down the key-1
branch, the flow hangs up and the page shows the result. The call has a record with the test-call
marker and an event naming the admin. The socket refuses other roles (4403) and flows of other
tenants (4404). (One module, one node for both.)
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.support.browser import chromium, log_in, tone_wav, until
from tests.support.node import NodeProcess, add_tenant, admin_client

pytestmark = pytest.mark.interop

DEMO = "4001234567"


def card(node: str, field: str) -> str:
    return f'[data-card="{node}"] [data-field="{field}"]'


async def add(page: Page, node_type: str) -> None:
    await page.select_option("#flows-add-type", node_type)
    await page.click("#flows-add")


async def expand(page: Page, node: str) -> None:
    if not await page.evaluate(f"document.querySelector('[data-card=\"{node}\"]').open"):
        await page.click(f'[data-card="{node}"] > summary')


async def test_build_check_simulate_and_publish_a_flow(module_node: NodeProcess, tmp_path: Path) -> None:
    node = module_node
    async with chromium(tone_wav(tmp_path / "mic.wav", 440)) as browser:
        page = await browser.new_page(viewport={"width": 1500, "height": 1100})
        await log_in(page, f"{node.http}/admin#flows", "admin", node.admin_password or "")
        await until(page, "document.querySelector('#flows-new-name')")
        await page.fill("#flows-new-name", "acme-main")
        await page.click("#flows-new")
        await until(page, "document.querySelector('[data-card=\"start\"]')")

        for node_type in ("queue", "queue", "menu", "business_hours"):
            await add(page, node_type)
        for added in ("queue_1", "queue_2", "menu_1"):
            await expand(page, added)
        await page.fill(card("queue_1", "queue"), "sales")
        await page.fill(card("queue_2", "queue"), "support")
        await page.fill(card("menu_1", "prompt.tts"), "For sales press 1, for support press 2.")
        await page.fill(card("menu_1", "options.0.key"), "1")
        await page.select_option(card("menu_1", "options.0.next"), "queue_1")
        await page.click('[data-card="menu_1"] [data-add="options"]')
        await page.fill(card("menu_1", "options.1.key"), "2")
        await page.select_option(card("menu_1", "options.1.next"), "queue_2")
        for branch in ("no_input", "no_match"):
            await page.select_option(card("menu_1", branch), "queue_2")
        await page.select_option(card("business_hours_1", "open"), "menu_1")
        await page.select_option(card("business_hours_1", "closed"), "start")
        await page.select_option("#flows-start", "business_hours_1")

        # The calendar is still empty: an inline error names it and publishing is blocked.
        error = '#flows-issues [data-issue-node="business_hours_1"][data-issue-field="calendar"]'
        await until(page, f"document.querySelector('{error}') && document.querySelector('#flows-publish')")
        assert await page.is_disabled("#flows-publish")
        await page.click(error)
        assert await page.evaluate("document.activeElement.dataset.field") == "calendar"
        await page.keyboard.type("demo")
        await until(page, "document.querySelector('.issues-ok') && !document.querySelector('#flows-publish').disabled")

        await page.click('#flows-graph [data-node="menu_1"]')
        await until(page, "document.querySelector('[data-card=\"menu_1\"]').open "
                          "&& document.querySelector('[data-card=\"menu_1\"]').classList.contains('selected')")

        await page.fill("#sim-keys", "1")
        await page.click("#sim-run")
        await until(page, "document.querySelector('#flows-graph [data-node=\"queue_1\"].on-path')")
        on_path = await page.eval_on_selector_all("#flows-graph .flow-node.on-path", "els => els.map(e => e.dataset.node)")
        assert sorted(on_path) == ["business_hours_1", "menu_1", "queue_1"]
        edges = await page.eval_on_selector_all("#flows-graph .flow-edge.on-path",
                                                "els => els.map(e => e.dataset.from + '>' + e.dataset.to)")
        assert sorted(edges) == ["business_hours_1>menu_1", "menu_1>queue_1"]
        assert "sales" in await page.inner_text("#sim-result")

        await page.select_option("#flows-publish-number", DEMO)
        await page.click("#flows-publish")
        await until(page, "document.querySelector('[data-version=\"1\"]')")
    with admin_client(node) as api:
        versions = api.get("/api/flows/acme-main/versions").json()
        assert versions["versions"][0]["published_on"] == [DEMO]
        assert api.get("/api/flows/acme-main").json()["start"] == "business_hours_1"


FLOW = {"name": "trial", "voice": "en", "start": "greet", "nodes": [
    {"id": "greet", "type": "play", "prompt": "Welcome.", "next": "menu"},
    {"id": "menu", "type": "menu", "prompt": {"tts": "Press 1 or 2."}, "timeout": 10,
     "options": [{"key": "1", "next": "news"}, {"key": "2", "next": "sales"}], "no_input": "news",
     "no_match": "news"},
    {"id": "news", "type": "play", "prompt": "No news.", "next": "bye"},
    {"id": "bye", "type": "hangup"},
    {"id": "sales", "type": "queue", "queue": "sales"},
]}

LOUDNESS_JS = """
async (ms) => {
  // The loudest RMS level of the test call's remote audio over ms milliseconds (0: silence).
  const audio = document.querySelector('#testcall-audio');
  if (!audio || !audio.srcObject) return 0;
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 2048;
  ctx.createMediaStreamSource(audio.srcObject).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let loudest = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    analyser.getFloatTimeDomainData(samples);
    loudest = Math.max(loudest, Math.sqrt(samples.reduce((sum, x) => sum + x * x, 0) / samples.length));
  }
  await ctx.close();
  return loudest;
}
"""


async def on_path(page: Page) -> list[str]:
    return await page.eval_on_selector_all("#flows-graph .flow-node.on-path", "els => els.map(e => e.dataset.node)")


async def test_admin_calls_a_flow_from_the_editor(module_node: NodeProcess, tmp_path) -> None:
    node = module_node
    with admin_client(node) as api:
        assert api.post("/api/flows", json=FLOW).status_code == 201
    async with chromium(tone_wav(tmp_path / "mic.wav", 440)) as browser:
        page = await browser.new_page(viewport={"width": 1500, "height": 1100}, locale="en-US")
        await log_in(page, f"{node.http}/admin#flows/trial", "admin", node.admin_password or "")
        await until(page, "document.querySelector('#flows-graph [data-node=\"menu\"]') "
                          "&& !document.querySelector('#testcall-start').disabled")
        await page.click("#testcall-start")
        await until(page, "!document.querySelector('#testcall-keypad [data-key=\"1\"]').disabled")
        assert await page.evaluate(LOUDNESS_JS, 600) > 0.01  # the greeting, spoken by espeak-ng
        await until(page, "document.querySelector('#flows-graph [data-node=\"menu\"].on-path')")
        assert await on_path(page) == ["greet", "menu"]
        await page.click('#testcall-keypad [data-key="1"]')
        await until(page, "document.querySelector('#flows-graph [data-node=\"news\"].on-path')")
        edges = await page.eval_on_selector_all("#flows-graph .flow-edge.on-path",
                                                "els => els.map(e => e.dataset.from + '>' + e.dataset.to)")
        assert "menu>news" in edges
        await until(page, "document.querySelector('#testcall-result').textContent !== ''", timeout=20)
        assert sorted(await on_path(page)) == ["bye", "greet", "menu", "news"]
        assert "hung up" in await page.inner_text("#testcall-result")
        assert await page.is_enabled("#testcall-start") and await page.is_disabled("#testcall-hangup")
    with admin_client(node) as api:
        calls = [c for c in api.get("/api/calls", params={"limit": 50}).json() if c["caller"] == "test-call"]
        assert len(calls) == 1 and calls[0]["direction"] == "inbound" and calls[0]["dialed"] == "trial"
        record = api.get(f"/api/calls/{calls[0]['id']}").json()
        assert record["end_cause"] == "ivr_hangup"
        assert any(e["kind"] == "test_call" and e["detail"] == {"user": "admin", "flow": "trial", "version": 1}
                   for e in record["events"])
        trace = api.get(f"/api/calls/{calls[0]['id']}/ivr-trace").json()
        assert [s["node"] for s in trace["steps"]] == ["greet", "menu", "news", "bye"]


async def close_code(node: NodeProcess, token: str, path: str) -> int | None:
    url = node.http.replace("http", "ws", 1) + path
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        try:
            await ws.recv()
        except ConnectionClosed:
            pass
    return ws.close_code


def token(node: NodeProcess, tenant: str, username: str, password: str) -> str:
    reply = httpx.post(f"{node.http}/api/login", json={"tenant": tenant, "username": username, "password": password})
    reply.raise_for_status()
    return str(reply.json()["token"])


async def test_only_the_tenants_admins_call_its_flows(module_node: NodeProcess) -> None:
    node = module_node
    with admin_client(node) as api:
        api.post("/api/flows", json=FLOW)
    add_tenant(node, "beta", {"boss": "admin"})
    agent = token(node, "demo", "agent1", node.agents["agent1"][0])
    assert await close_code(node, agent, "/api/flows/trial/test-call") == 4403
    other = token(node, "beta", "boss", "boss-secret-1")
    assert await close_code(node, other, "/api/flows/trial/test-call") == 4404
    admin = token(node, "demo", "admin", node.admin_password or "")
    assert await close_code(node, admin, "/api/flows/trial/test-call?version=99") == 4404
