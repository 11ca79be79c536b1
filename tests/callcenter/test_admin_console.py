"""The tenant admin console (``/admin``) in headless Chromium on a demo node, for a new tenant's admin:
the day-one checklist turns done as a calendar with a holiday, a queue with a skill, an agent with a
skill (passwords shown once) and a number with a flow are added through the page; a CSV import makes
agents and reports its bad row; the API's 422 lands next to its field; a delete asks first; and in
Chinese no English sentence of the catalogues is left on any of the console's sections."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.support.browser import chromium, log_in, tone_wav
from tests.support.i18n_pages import english_left, english_on
from tests.support.node import NodeProcess, add_tenant

pytestmark = pytest.mark.interop

#: The console's own sections (the flow editor, #flows, is tested with its own page).
SECTIONS = ["checklist", "numbers", "calendars", "prompts", "queues", "agents", "users", "dispositions", "recording",
            "trunks", "audit"]
NUMBER = "4009990001"
FLOW = {"name": "welcome", "voice": "en", "start": "hours", "nodes": [
    {"id": "hours", "type": "business_hours", "calendar": "office", "open": "queue", "closed": "bye"},
    {"id": "queue", "type": "queue", "queue": "sales"},
    {"id": "bye", "type": "hangup", "prompt": "We are closed."}]}
CSV = "username,skills\nbob,support:4\ncarol,sales:2 support:3\nbad name!,sales:5\n"


@pytest.fixture(scope="module")
def node(module_node: NodeProcess) -> NodeProcess:
    add_tenant(module_node, "acme", {"boss": "admin"})
    return module_node


@contextmanager
def api(node: NodeProcess, username: str, password: str, tenant: str = "acme") -> Iterator[httpx.Client]:
    """An API client signed in to ``tenant`` (its session cookie)."""
    with httpx.Client(base_url=node.http, timeout=30) as client:
        reply = client.post("/api/login", json={"tenant": tenant, "username": username, "password": password})
        reply.raise_for_status()
        yield client


async def step(page: Page, step_id: str) -> str | None:
    return await page.get_attribute(f'#checklist li[data-step="{step_id}"]', "data-done")


async def section(page: Page, name: str) -> None:
    """Open a section from the nav and wait for its data (the section is aria-busy until then)."""
    await page.click(f'.console-nav [data-section="{name}"]')
    await expect(page.locator(f"#section-{name}:not([aria-busy])")).to_be_visible()


async def test_new_tenant_sets_up_through_the_console(node: NodeProcess, tmp_path: Path) -> None:
    async with chromium(tone_wav(tmp_path / "mic.wav", 1000.0)) as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
        missing: list[str] = []  # the shell warns "i18n: missing message <key>"
        page.on("console", lambda m: missing.append(m.text) if "i18n" in m.text else None)
        await log_in(page, f"{node.http}/admin", "boss", "boss-secret-1", tenant="acme")
        await expect(page.locator("#checklist li")).to_have_count(8)
        for step_id in ("number", "hours", "queues", "agents", "flow", "test_call"):
            assert await step(page, step_id) == "false", step_id
        assert await step(page, "recording") == "true"  # every call is recorded by default

        # business hours: a new calendar (weekdays 09:00-18:00 preset) with a holiday
        await section(page, "calendars")
        await page.click("#calendar-new")
        await page.fill("#calendar-name", "office")
        await page.fill("#holiday-date", "2026-10-01")
        await page.click("#holiday-add")
        await expect(page.locator('#calendar-holidays tr[data-key="2026-10-01"]')).to_have_count(1)
        await expect(page.locator("#calendar-name")).to_have_value("office")  # kept across the redraw
        await page.click("#calendar-save")
        await expect(page.locator('#calendars-table tr[data-key="office"]')).to_contain_text("1 holidays")

        # a queue with a skill and a relaxation step
        await section(page, "queues")
        await page.click("#queue-new")
        await page.fill("#queue-name", "sales")
        await page.fill("#queue-skill", "sales")
        await page.select_option("#queue-strategy", "most_proficient")
        await page.click("#queue-relax-add")
        await page.click("#queue-save")
        await expect(page.locator('#queues-table tr[data-key="sales"]')).to_contain_text("Most proficient")

        # an agent with a skill: both passwords shown once, and the login one works
        await section(page, "agents")
        await page.fill("#agent-username", "ann")
        await page.click("#agent-add .skill-add")
        await page.fill('#agent-add [name="skill.0"]', "sales")
        await page.select_option('#agent-add [name="level.0"]', "4")
        await page.click("#agent-add-submit")
        password = await page.locator('#agent-secrets [data-secret="password"]').text_content()
        assert password and await page.locator('#agent-secrets [data-secret="sip-password"]').text_content()
        await expect(page.locator('#agents-table tr[data-key="ann"]')).to_contain_text("sales 4")
        with api(node, "ann", password):
            pass

        # a number, refused first (too short: the API's complaint next to the field), then with the flow
        with api(node, "boss", "boss-secret-1") as client:
            client.post("/api/flows", json=FLOW).raise_for_status()
        await section(page, "numbers")
        await page.fill("#number-add-number", "12")
        await page.click("#number-add button[type=submit]")
        await expect(page.locator("#number-add .field-error").first).to_be_visible()
        # pydantic's string_pattern_mismatch in the page's words (shell.validation.*), not the server's
        await expect(page.locator("#number-add .field-error").first).to_have_text("Not in the expected format.")
        await page.fill("#number-add-number", NUMBER)
        await page.select_option("#number-add-flow", "welcome@1")
        await page.click("#number-add button[type=submit]")
        await expect(page.locator(f'#numbers-table tr[data-key="{NUMBER}"] select')).to_have_value("welcome@1")

        await section(page, "checklist")
        for step_id in ("number", "hours", "queues", "agents", "flow"):
            await expect(page.locator(f'#checklist li[data-step="{step_id}"]')).to_have_attribute("data-done", "true")
        assert await step(page, "test_call") == "false"

        # three agents from a CSV, one of them refused in the page with its line
        await section(page, "agents")
        await page.set_input_files("#agent-csv", {"name": "agents.csv", "mimeType": "text/csv", "buffer": CSV.encode()})
        await page.click("#agent-import-submit")
        report = page.locator("#agent-import-table")
        await expect(page.locator(".import-summary")).to_have_text("2 created, 1 failed")
        await expect(report.locator('tr[data-key="4"] .result-error')).to_contain_text("Invalid username")
        await expect(report.locator('tr[data-key="2"] .result-ok')).to_have_count(1)
        await expect(page.locator("#agents-table tbody tr")).to_have_count(3)

        # a delete asks first: cancel keeps the agent, confirm removes it
        delete = page.locator('#agents-table tr[data-key="carol"] .btn-outline-danger')
        await delete.click()
        await page.keyboard.press("Escape")
        await expect(page.locator('#agents-table tr[data-key="carol"]')).to_have_count(1)
        await delete.click()
        await page.click("#confirm-ok")
        await expect(page.locator('#agents-table tr[data-key="carol"]')).to_have_count(0)

        # Chinese: every section, lists included, without an English sentence of the catalogues
        await page.select_option("#lang-select", "zh-CN")
        await expect(page.locator(".console-nav [data-section=agents]")).to_have_text("坐席")
        await expect(page.locator('#agents-table tr[data-key="ann"] button').first).to_have_text("编辑")
        sentences = english_left()
        for name in SECTIONS:
            await section(page, name)
            assert await english_on(page, sentences) == [], name
        assert missing == []


async def test_demo_admin_keeps_the_faq_bots_answers_and_tries_them_in_chinese(module_node: NodeProcess,
                                                                             tmp_path: Path) -> None:
    """The FAQ bot and canned replies sections (issue 16) on the demo tenant, in Chinese: its Q&A pairs
    are listed, a new one with two alternative phrasings (one per line) is added, "try the bot" answers
    a question phrased unlike any stored one and hands off on 转人工, a taken canned-reply code is
    refused next to its field, and no English sentence of the catalogues is left."""
    async with chromium(tone_wav(tmp_path / "mic.wav", 1000.0, 1.0)) as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        missing: list[str] = []
        page.on("console", lambda m: missing.append(m.text) if "i18n" in m.text else None)
        await log_in(page, f"{module_node.http}/admin#faq", "admin", module_node.admin_password or "")
        await expect(page.locator("#section-faq:not([aria-busy]) #faq-table tbody tr")).to_have_count(8)
        await page.click("#faq-new")
        await page.fill("#faq-question", "支持哪些付款方式？")
        await page.fill("#faq-alternatives", "可以用微信支付吗\n\n能用信用卡付款吗")
        await page.fill("#faq-answer", "支持微信支付、支付宝和银行卡。")
        await page.click("#faq-save")
        await expect(page.locator("#faq-table tbody tr").last).to_contain_text("另有 2 种问法")
        for question, kind, said in (("能用支付宝支付吗", "answer", "支持微信支付、支付宝和银行卡。"),
                                     ("我要转人工", "handoff", "转接人工客服")):
            await page.fill("#faq-try-text", question)
            await page.click("#faq-try button[type=submit]")
            await expect(page.locator(f'.faq-reply[data-kind="{kind}"]')).to_contain_text(said)
        sentences = english_left()
        assert await english_on(page, sentences) == []
        await section(page, "canned")
        await page.click("#canned-new")
        await page.fill("#canned-code", "hi")  # the demo's greeting has it
        await page.fill("#canned-text", "您好！")
        await page.click("#canned-save")
        await expect(page.locator("#canned-form .field-error").first).to_have_text("已存在相同代码的快捷回复。")
        assert await english_on(page, sentences) == []
        assert missing == []


async def test_demo_admin_puts_the_chat_on_a_site_and_handles_a_message_in_chinese(module_node: NodeProcess,
                                                                                 tmp_path: Path) -> None:
    """The web chat section (issue 16) on the demo tenant, in Chinese: the tag to paste names this node's
    widget.js and the demo's key; a site that is no origin gets the server's complaint next to the
    sites, a good one is saved (GET /api/chat/settings has it); a message a visitor left offline is
    listed and marked handled, leaving the open ones; and no English sentence of the catalogues is left."""
    with httpx.Client(base_url=module_node.http, timeout=30) as client:
        client.post("/api/chat/offline", json={"key": "wk_demo", "message": "请回电"}).raise_for_status()
    async with chromium(tone_wav(tmp_path / "mic.wav", 1000.0, 1.0)) as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        missing: list[str] = []
        page.on("console", lambda m: missing.append(m.text) if "i18n" in m.text else None)
        await log_in(page, f"{module_node.http}/admin#chat", "admin", module_node.admin_password or "")
        await expect(page.locator("#section-chat:not([aria-busy]) #chat-snippet")).to_have_value(
            f'<script src="{module_node.http}/widget.js" data-key="wk_demo" async></script>')
        await expect(page.locator("#chat-queue")).to_have_value("support")
        await page.fill("#chat-origins", "shop.example.com")
        await page.click("#chat-save")
        await expect(page.locator("#chat-form .field-error").first).to_be_visible()
        await page.fill("#chat-origins", "https://Shop.example.com:443\n")
        await page.click("#chat-save")
        await expect(page.locator("#chat-origins")).to_have_value("https://shop.example.com")  # as the server wrote it
        with api(module_node, "admin", module_node.admin_password or "", tenant="demo") as client:
            assert client.get("/api/chat/settings").json()["allowed_origins"] == ["https://shop.example.com"]

        row = page.locator("#chat-offline-table tbody tr", has_text="请回电")
        await row.get_by_role("button", name="标记为已处理").click()
        await expect(row).to_have_count(0)  # the list shows the open ones
        await page.select_option("#chat-offline-filter", "handled")
        await expect(row).to_contain_text("admin 已处理")
        assert await english_on(page, english_left()) == []
        assert missing == []
