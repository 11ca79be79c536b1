"""The page shell in headless Chromium on a demo node: the front door ``/`` sends each role to its
page with its header; the language switch turns the pages to Chinese, is remembered per user, and
leaves no English sentence of the catalogues on the softphone, the QA page or the wallboard."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.support.browser import chromium, tone_wav, until
from tests.support.i18n_pages import english_left, english_on
from tests.support.node import NodeProcess

pytestmark = pytest.mark.interop

async def sign_in(page: Page, base: str, username: str, password: str, path: str = "/") -> None:
    await page.goto(f"{base}{path}")
    await page.fill("#login-tenant", "demo")
    await page.fill("#login-username", username)
    await page.fill("#login-password", password)
    await page.click("#login-submit")


async def nav(page: Page) -> list[str]:
    await expect(page.locator("#shell-header [data-nav]").first).to_be_visible()
    return await page.eval_on_selector_all("#shell-header [data-nav]", "links => links.map(a => a.dataset.nav)")


@pytest.fixture(scope="module")
def node(module_node: NodeProcess) -> NodeProcess:
    return module_node


async def test_front_door_header_and_language_per_user(node: NodeProcess, tmp_path: Path) -> None:
    agent_password = node.agents["agent1"][0]
    sentences = english_left()
    async with chromium(tone_wav(tmp_path / "mic.wav", 1000.0)) as browser:
        browser: Browser
        admin: BrowserContext = await browser.new_context(locale="en-US")
        page = await admin.new_page()
        # "/" asks for the sign-in; the admin lands on the console, and has the wallboard and QA too
        await sign_in(page, node.http, "admin", node.admin_password or "")
        await page.wait_for_url(f"{node.http}/admin")
        await page.goto(f"{node.http}/supervisor")
        assert await nav(page) == ["admin", "supervisor", "campaigns", "qa"]
        await expect(page.locator("#shell-header [data-nav=supervisor]")).to_have_attribute("aria-current", "page")

        # ?next= takes a signed-in agent to the page asked for; an agent's header has the softphone only
        first: BrowserContext = await browser.new_context(locale="en-US")
        agent = await first.new_page()
        await sign_in(agent, node.http, "agent1", agent_password, "/?next=/agent")
        await agent.wait_for_url(f"{node.http}/agent")
        assert await nav(agent) == ["agent"]
        await expect(agent.locator("#btn-available")).to_have_text("Available")

        # 中文: the page turns, and stays so after a reload and in another browser of the same user
        await agent.select_option("#lang-select", "zh-CN")
        await expect(agent.locator("#btn-available")).to_have_text("空闲")
        await expect(agent.locator("html")).to_have_attribute("lang", "zh-CN")
        await agent.reload()
        await expect(agent.locator("#btn-available")).to_have_text("空闲")
        second: BrowserContext = await browser.new_context(locale="en-US")
        elsewhere = await second.new_page()
        await sign_in(elsewhere, node.http, "agent1", agent_password)
        await elsewhere.wait_for_url(f"{node.http}/agent")
        await expect(elsewhere.locator("#shell-header [data-nav=agent]")).to_have_text("坐席工作台")
        # (the newer tab takes the softphone over: check that one once its line is up)
        await until(elsewhere, "window.softphone && window.softphone.pc"
                    " && window.softphone.pc.connectionState === 'connected'", timeout=20)
        assert await english_on(elsewhere, sentences) == []
        # what the node refuses is worded from its error_id in the page's language, not its English
        await elsewhere.evaluate("window.softphone.ws.send(JSON.stringify({type: 'hangup'}))")
        await expect(elsewhere.locator("#toast-text")).to_have_text("当前没有通话。")

        # the QA page and the wallboard in Chinese: no English sentence of the catalogues left (in
        # English, the same look finds them)
        await expect(page.locator("#agent-rows tr")).to_have_count(2, timeout=15_000)
        assert len(await english_on(page, sentences)) > 20
        await page.select_option("#lang-select", "zh-CN")
        await expect(page.locator("#shell-header [data-nav=supervisor]")).to_have_text("监控大屏")
        await expect(page.locator("#agent-rows tr")).to_have_count(2, timeout=15_000)
        assert await english_on(page, sentences) == []
        # an API's validation error: pydantic's type and values in Chinese (shell.validation.*)
        await page.evaluate("import('/static/shell.js').then((m) => m.api('GET', '/api/reports/intervals?interval=7')"
                            ".catch(m.showError))")
        await expect(page.locator("#shell-error .shell-error-text")).to_have_text(
            re.compile(r"^interval: 请从以下选项中选择：.*15.*day.*。$"))
        await page.goto(f"{node.http}/qa")
        await expect(page.locator("#calls-view")).to_be_visible()
        assert await english_on(page, sentences) == []
        for context in (admin, first, second):
            await context.close()
