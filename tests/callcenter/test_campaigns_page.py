"""The outbound campaigns page (``/campaigns``) in headless Chromium on a demo node, in Chinese: the
admin creates a progressive campaign, imports a GB18030 CSV (Excel's plain "CSV" in China) with a
good row, a duplicate and an invalid number and reads the per-row report in Chinese, sees the
contact, starts and pauses the campaign, downloads the report as CSV and adds a number to the
do-not-call list; no English sentence of the catalogues is left and the console stays clean. The
wallboard then shows the campaign's tile. No agent is signed in: the progressive campaign places
no call, and nothing here depends on one.

Set ``CALLCENTER_SCREENSHOTS=<dir>`` to keep the README's picture (campaigns-zh.png)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from playwright.async_api import ConsoleMessage, expect

from tests.support.browser import chromium, log_in, tone_wav
from tests.support.i18n_pages import english_left, english_on
from tests.support.node import NodeProcess

pytestmark = pytest.mark.interop

SCREENSHOTS = os.environ.get("CALLCENTER_SCREENSHOTS")  # read at import: conftest clears CALLCENTER_* per test
ZH = json.loads((Path(__file__).resolve().parents[2] / "callcenter/web/i18n/zh-CN/campaigns.json").read_text("utf-8"))
#: Row 2 is imported; row 3 is row 2's number written the international way; row 4 is no number.
CSV = "手机号,姓名\n13800138000,张三\n+86 138-0013-8000,张三（重复）\n12345,李四\n".encode("gb18030")
NAME = "春季回访"


async def test_admin_runs_a_campaign_from_the_page_in_chinese(module_node: NodeProcess, tmp_path: Path) -> None:
    node = module_node
    async with chromium(tone_wav(tmp_path / "mic.wav", 1000.0, 1.0)) as browser:
        context = await browser.new_context(locale="zh-CN", viewport={"width": 1360, "height": 1000})
        page = await context.new_page()
        problems: list[str] = []  # console errors and warnings, the shell's "i18n: missing message" among them

        def on_console(message: ConsoleMessage) -> None:
            # (the shell's /api/me before signing in is answered 401: the sign-in form, not a fault)
            if message.type in ("error", "warning") and "status of 401" not in message.text:
                problems.append(message.text)

        page.on("console", on_console)
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        await log_in(page, f"{node.http}/campaigns", "admin", node.admin_password or "")
        await expect(page.locator("#shell-header [data-nav=campaigns]")).to_have_attribute("aria-current", "page")
        await expect(page.locator("#campaigns-table")).to_be_visible()  # the demo's own campaign

        # a progressive campaign on the sales queue, a demo number as its caller ID
        await page.click("#campaign-new")
        await page.fill("#campaign-name", NAME)
        await expect(page.locator("#campaign-mode")).to_have_value("progressive")
        await page.select_option("#campaign-queue", "sales")
        await page.select_option("#campaign-caller-id", index=1)
        await page.fill("#campaign-max-abandon", "3")
        assert not await english_on(page, english_left())  # the editor's words
        await page.click("#campaign-save")
        await expect(page.locator("#campaign-title")).to_have_text(NAME)
        await expect(page.locator("#campaign-status")).to_have_text(ZH["campaigns.status.draft"])
        campaign_id = page.url.rsplit("#", 1)[1]

        # the import's report, row by row, in Chinese
        csv_file = tmp_path / "名单.csv"
        csv_file.write_bytes(CSV)
        await page.set_input_files("#contacts-file", csv_file)
        await page.click("#contacts-import-submit")
        await expect(page.locator("#contacts-report-summary")).to_have_text(
            ZH["campaigns.contacts.report_summary"].format(total=3, imported=1, duplicates=1, invalid=1))
        duplicate = page.locator('#contacts-report-table tr[data-key="3"] [data-error]')
        await expect(duplicate).to_have_text(ZH["campaigns.row_error.duplicate"])
        invalid = page.locator('#contacts-report-table tr[data-key="4"] [data-error]')
        error_id = await invalid.get_attribute("data-error")
        assert error_id in ("phone-invalid", "phone-too-short"), error_id
        await expect(invalid).to_have_text(ZH[f"campaigns.row_error.{error_id}"])
        contact = page.locator('#contacts-table tr[data-key="13800138000"]')
        await expect(contact).to_contain_text("张三")
        await expect(contact).to_contain_text(ZH["campaigns.contact_status.pending"])
        await expect(page.locator('#campaign-figures [data-figure="contacts"] dd')).to_have_text("1")

        # start, then pause: the buttons follow the status
        await page.click("#campaign-start")
        await expect(page.locator("#campaign-status")).to_have_text(ZH["campaigns.status.running"])
        await page.click("#campaign-pause")
        await expect(page.locator("#campaign-status")).to_have_text(ZH["campaigns.status.paused"])
        await expect(page.locator("#campaign-resume")).to_be_visible()
        await expect(page.locator("#campaign-start")).to_have_count(0)

        # the report's CSV link downloads with the page's session
        href = await page.get_attribute("#report-csv", "href")
        assert href == f"/api/campaigns/{campaign_id}/report?by=day&format=csv"
        reply = await page.request.get(f"{node.http}{href}")
        assert reply.status == 200 and reply.headers["content-type"].startswith("text/csv")
        assert (await reply.text()).startswith("day,dialed,")

        # the do-not-call list
        await page.fill("#dnc-numbers", "139 0013 9000")
        await page.click("#dnc-add-submit")
        await expect(page.locator('#dnc-table tr[data-key="13900139000"]')).to_be_visible()

        if SCREENSHOTS:
            await page.evaluate("() => document.querySelectorAll('.toast').forEach(t => { t.hidden = true; })")
            await page.locator("#campaign-detail").evaluate("e => { e.scrollIntoView({block: 'start'}); window.scrollBy(0, -70); }")
            await page.screenshot(path=str(Path(SCREENSHOTS) / "campaigns-zh.png"))
        assert not await english_on(page, english_left())

        # the wallboard's tile of the paused campaign
        await page.goto(f"{node.http}/supervisor")
        tile = page.locator(f'#campaign-tiles [data-campaign="{campaign_id}"]')
        await expect(tile.locator(".tile-name")).to_have_text(NAME)
        await expect(tile.locator(".campaign-tile-status")).to_have_text("已暂停")
        await expect(tile.locator('[data-metric="left"]')).to_have_text("1")
        assert not problems, problems
