"""The console's flow editor in headless Chromium on a demo node.

The demo admin builds a flow in the outline editor (business hours on the demo calendar, a menu
with two keys to the sales and support queues): while the calendar is not chosen an inline error
blocks publishing, and clicking it puts the focus on that field; once fixed, a click on the graph's
menu node selects it in the outline; the simulator with key 1 takes the path to the sales queue,
highlighted on the graph; publishing stores version 1 live on the demo number.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page

from tests.support.browser import chromium, log_in, tone_wav, until
from tests.support.node import NodeProcess, admin_client

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
