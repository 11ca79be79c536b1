"""A new tenant from nothing to its first answered call, in headless Chromium and without the API
(issue 18's walk): the operator signs in at ``/`` and creates a tenant with a quota; its admin
signs in at ``/`` in the browser's language, follows the console's checklist (a
carrier trunk, business hours, a queue, an agent, a number), builds a flow in the outline editor (a
menu behind business hours), simulates it and publishes it on the number; the new agent signs in
at ``/`` and lands on the softphone; a carrier's call from sipp presses 1, rings the agent's page,
which answers: the caller's tone reaches the page and the page's the caller. The walk is made once
in Chinese and once in English: no English sentence of the catalogues is left on the Chinese pages,
no Chinese on the English ones.

Set ``CALLCENTER_SCREENSHOTS=<dir>`` to keep the README's pictures of the console, the flow
editor and its simulator, in both languages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from sip_bridge.tones import sine
from tests.support.agent_page import (
    SippCaller,
    answer,
    caller_hears,
    eventually,
    page_hears,
)
from tests.support.browser import chromium, tone_wav, until
from tests.support.i18n_pages import chinese_on, english_left, english_on
from tests.support.node import NodeProcess
from tests.support.pcap import write_rtp_pcap

pytestmark = pytest.mark.interop

SCREENSHOTS = os.environ.get("CALLCENTER_SCREENSHOTS")  # read at import: conftest clears CALLCENTER_* per test


@dataclass(frozen=True)
class Walk:
    locale: str
    tenant: str
    number: str
    carrier: str
    """The tenant's carrier address (another than the demo tenant's)."""
    menu: str

    @property
    def shots(self) -> str:
        """Screenshot name suffix: the Chinese pictures are the README's first ones."""
        return "" if self.locale == "zh-CN" else "-en"

    async def left_over(self, page: Page) -> list[str]:
        """What the page shows in the other language."""
        if self.locale == "zh-CN":
            return await english_on(page, english_left())
        return await chinese_on(page, frozenset({TENANT_NAMES[self.tenant]}))


TENANT_NAMES = {"acme": "Acme 科技", "globex": "Globex"}
WALKS = [Walk("zh-CN", "acme", "4009990001", "127.0.0.3", "销售请按一。"),
         Walk("en-US", "globex", "4009990002", "127.0.0.4", "For sales, press 1.")]
CALLER_TONE, AGENT_TONE = 1000.0, 1400.0


async def sign_in(browser: Browser, node: NodeProcess, tenant: str, username: str, password: str,
                  locale: str) -> Page:
    """A new browser context in ``locale`` signing in at the front door."""
    context = await browser.new_context(locale=locale, viewport={"width": 1440, "height": 1000})
    page = await context.new_page()
    await page.goto(f"{node.http}/")
    await page.fill("#login-tenant", tenant)
    await page.fill("#login-username", username)
    await page.fill("#login-password", password)
    await page.click("#login-submit")
    return page


async def shot(page: Page, name: str, top: str = "body") -> None:
    """A README picture of the viewport, scrolled to ``top``, without a passing toast."""
    if SCREENSHOTS and name:
        await page.evaluate("() => document.querySelectorAll('.toast').forEach(t => { t.hidden = true; })")
        await page.locator(top).first.evaluate("e => { e.scrollIntoView({block: 'start'}); window.scrollBy(0, -60); }")
        await page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))


async def section(page: Page, name: str) -> None:
    await page.click(f'.console-nav [data-section="{name}"]')
    await expect(page.locator(f"#section-{name}:not([aria-busy])")).to_be_visible()


async def create_tenant(browser: Browser, node: NodeProcess, walk: Walk) -> str:
    """The operator creates the tenant (two calls at a time) on /operator, in English; its admin's
    password, shown once."""
    page = await sign_in(browser, node, "platform", "operator", node.operator_password or "", "en-US")
    await page.wait_for_url(f"{node.http}/operator")
    await page.click("#btn-new-tenant")
    await page.fill("#tenant-form-slug", walk.tenant)
    await page.fill("#tenant-form-name", TENANT_NAMES[walk.tenant])
    await page.fill("#quota-concurrent-calls", "2")
    await page.keyboard.press("Enter")
    await expect(page.locator("#created-dialog")).to_be_visible()
    password = await page.locator("#created-password").text_content()
    assert password
    await page.click("#created-close")
    await expect(page.locator(f'tr[data-slug="{walk.tenant}"]')).to_be_visible()
    assert await chinese_on(page, frozenset(TENANT_NAMES.values())) == []
    await shot(page, "operator" if walk.shots else "")
    await page.context.close()
    return password


async def set_up(page: Page, walk: Walk) -> str:
    """The admin's checklist walk on /admin; the new agent's password."""
    await page.wait_for_url("**/admin")
    await expect(page.locator("#checklist li")).to_have_count(8)
    assert await page.get_attribute('#checklist li[data-step="number"]', "data-done") == "false"

    await section(page, "trunks")  # the carrier that brings the tenant's number
    await page.click("#trunk-new")
    await page.fill("#trunk-name", "carrier")
    await page.fill('#trunk-form [name="inbound_ips"]', walk.carrier)
    await page.click("#trunk-save")
    await expect(page.locator("#trunks-table")).to_contain_text("carrier")

    await section(page, "calendars")  # open every day, all day (the test runs at any hour)
    await page.click("#calendar-new")
    await page.fill("#calendar-name", "office")
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        await page.fill(f'#calendar-form [name="weekly.{day}"]', "00:00-24:00")
    await page.fill("#holiday-date", "2026-10-01")
    await page.click("#holiday-add")
    await page.click("#calendar-save")
    await expect(page.locator('#calendars-table tr[data-key="office"]')).to_be_visible()

    await section(page, "queues")
    await page.click("#queue-new")
    await page.fill("#queue-name", "sales")
    await page.fill("#queue-skill", "sales")
    await page.click("#queue-save")
    await expect(page.locator('#queues-table tr[data-key="sales"]')).to_be_visible()

    await section(page, "agents")
    await page.fill("#agent-username", "ann")
    await page.click("#agent-add .skill-add")
    await page.fill('#agent-add [name="skill.0"]', "sales")
    await page.select_option('#agent-add [name="level.0"]', "5")
    await page.click("#agent-add-submit")
    password = await page.locator('#agent-secrets [data-secret="password"]').text_content()
    assert password

    await section(page, "numbers")
    await page.fill("#number-add-number", walk.number)
    await page.click("#number-add button[type=submit]")
    await expect(page.locator(f'#numbers-table tr[data-key="{walk.number}"]')).to_be_visible()
    for name in ("trunks", "calendars", "queues", "agents", "numbers"):
        await section(page, name)
        assert await walk.left_over(page) == [], name
    return password


def card(node: str, field: str) -> str:
    return f'[data-card="{node}"] [data-field="{field}"]'


async def build_flow(page: Page, walk: Walk) -> None:
    """Business hours on the office calendar, then a menu: 1 for the sales queue; closed: goodbye.
    Simulated with key 1 at a Monday noon, then published on the number."""
    await section(page, "flows")
    await until(page, "document.querySelector('#flows-new-name')")
    await page.fill("#flows-new-name", "main")
    await page.click("#flows-new")
    await until(page, "document.querySelector('[data-card=\"start\"]')")
    for node_type in ("queue", "menu", "business_hours"):
        await page.select_option("#flows-add-type", node_type)
        await page.click("#flows-add")
    for added in ("queue_1", "menu_1", "business_hours_1"):
        if not await page.evaluate(f"document.querySelector('[data-card=\"{added}\"]').open"):
            await page.click(f'[data-card="{added}"] > summary')
    await page.fill(card("queue_1", "queue"), "sales")
    await page.fill(card("menu_1", "prompt.tts"), walk.menu)
    await page.fill(card("menu_1", "options.0.key"), "1")
    await page.select_option(card("menu_1", "options.0.next"), "queue_1")
    for branch in ("no_input", "no_match"):
        await page.select_option(card("menu_1", branch), "queue_1")
    await page.fill(card("business_hours_1", "calendar"), "office")
    await page.select_option(card("business_hours_1", "open"), "menu_1")
    await page.select_option(card("business_hours_1", "closed"), "start")
    await page.select_option("#flows-start", "business_hours_1")
    await until(page, "document.querySelector('.issues-ok') && !document.querySelector('#flows-publish').disabled")
    await shot(page, f"flow-editor{walk.shots}", "#section-flows")
    await page.fill("#sim-keys", "1")
    await page.click("#sim-run")
    await until(page, "document.querySelector('#flows-graph [data-node=\"queue_1\"].on-path')")
    assert "sales" in await page.inner_text("#sim-result")
    await shot(page, f"flow-simulator{walk.shots}", "#flows-graph")
    assert await walk.left_over(page) == [], "flows"
    await page.select_option("#flows-publish-number", walk.number)
    await page.click("#flows-publish")
    await until(page, "document.querySelector('[data-version=\"1\"]')")

    await section(page, "checklist")
    for step in ("number", "hours", "queues", "agents", "flow"):
        await expect(page.locator(f'#checklist li[data-step="{step}"]')).to_have_attribute("data-done", "true")
    await shot(page, f"console-checklist{walk.shots}")


@pytest.mark.parametrize("walk", WALKS, ids=[w.locale for w in WALKS])
async def test_operator_creates_a_tenant_that_takes_its_first_call(module_node: NodeProcess, walk: Walk,
                                                                   tmp_path: Path) -> None:
    node = module_node
    tone = write_rtp_pcap(tmp_path / "caller.pcap", sine(CALLER_TONE, 60.0, amplitude=0.3))
    async with chromium(tone_wav(tmp_path / "mic.wav", AGENT_TONE)) as browser:
        admin_password = await create_tenant(browser, node, walk)
        admin = await sign_in(browser, node, walk.tenant, "admin", admin_password, walk.locale)
        agent_password = await set_up(admin, walk)
        await build_flow(admin, walk)

        agent = await sign_in(browser, node, walk.tenant, "ann", agent_password, walk.locale)
        await agent.wait_for_url(f"{node.http}/agent")
        await until(agent, "window.softphone && window.softphone.pc"
                           " && window.softphone.pc.connectionState === 'connected'", timeout=20)
        await agent.click("#btn-available")
        await expect(agent.locator("#btn-available")).to_have_attribute("aria-pressed", "true")
        assert await walk.left_over(agent) == [], "agent"

        caller = SippCaller(node, tmp_path / "caller", "1", tone, number=walk.number, source=walk.carrier)
        await answer(agent)
        await page_hears(agent, CALLER_TONE)
        await caller_hears(caller, AGENT_TONE)
        assert await walk.left_over(agent) == [], "agent in a call"
        await agent.click("#btn-hangup")
        assert caller.finish().successful == 1

        with httpx.Client(base_url=node.http, timeout=30) as api:
            api.post("/api/login", json={"tenant": walk.tenant, "username": "admin",
                                         "password": admin_password}).raise_for_status()

            async def closed() -> bool:
                return bool([c for c in api.get("/api/calls").json() if c["ended_at"]])
            await eventually(closed)
            [call] = api.get("/api/calls").json()
            record = api.get(f"/api/calls/{call['id']}").json()
        assert record["dialed"] == walk.number and record["direction"] == "inbound"
        assert record["queue"] == "sales" and record["agent"]["username"] == "ann", record
        await section(admin, "checklist")
        await expect(admin.locator('#checklist li[data-step="test_call"]')).to_have_attribute("data-done", "true")
