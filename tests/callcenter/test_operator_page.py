"""The operator's page in Chromium, with the keyboard where a person would use it: an operator
creates a tenant (password shown once), suspends it, exports it and deletes it. The API is served
in-process (uvicorn in a thread): the page needs no SIP node."""

from __future__ import annotations

import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.async_api import Page, expect
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from callcenter import tenancy
from callcenter.api import AppContext, create_app
from callcenter.settings import Settings
from tests.support.browser import chromium, tone_wav
from tests.support.node import free_port

from .conftest import add_tenant

pytestmark = pytest.mark.interop


@pytest.fixture
def api(engine: Engine, data_dir: Path) -> Iterator[tuple[str, str]]:
    """(base URL, operator password) of the API over the test's database, with tenant demo."""
    add_tenant(engine, "demo")
    with Session(engine) as db:
        password = tenancy.add_operator(db, "operator")
        db.commit()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(AppContext(settings=Settings(data_dir=data_dir), engine=engine)),
                                           host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}", password
    server.should_exit = True
    thread.join(10)


async def _confirm(page: Page, typed: str | None = None) -> None:
    await expect(page.locator("#confirm-dialog")).to_be_visible()
    if typed is not None:
        await expect(page.locator("#confirm-ok")).to_be_disabled()
        await page.locator("#confirm-input").fill(typed)
    await page.locator("#confirm-ok").click()


async def test_operator_page_creates_suspends_exports_and_deletes_a_tenant(api: tuple[str, str],
                                                                            tmp_path: Path) -> None:
    http, operator_password = api
    async with chromium(tone_wav(tmp_path / "mic.wav", 440.0, 1.0)) as browser:
        page = await browser.new_page(accept_downloads=True)
        warnings: list[str] = []
        page.on("console", lambda msg: warnings.append(msg.text) if msg.type in ("warning", "error") else None)
        await page.goto(f"{http}/operator")
        await page.locator("#login-tenant").fill("platform")
        await page.locator("#login-username").fill("operator")
        await page.locator("#login-password").fill(operator_password)
        await page.keyboard.press("Enter")
        await expect(page.locator('tr[data-slug="demo"]')).to_be_visible()

        await page.locator("#btn-new-tenant").click()
        await expect(page.locator("#tenant-form-slug")).to_be_focused()
        await page.keyboard.type("acme")
        await page.locator("#tenant-form-name").fill("Acme")
        await page.locator("#quota-concurrent-calls").fill("2")
        await page.keyboard.press("Enter")
        await expect(page.locator("#created-dialog")).to_be_visible()
        password = await page.locator("#created-password").text_content()
        assert password and len(password) >= 16
        await page.locator("#created-close").click()
        assert await page.locator("#created-password").text_content() == ""  # shown once
        with httpx.Client(base_url=http, timeout=30) as client:
            login = client.post("/api/login", json={"tenant": "acme", "username": "admin", "password": password})
            assert login.status_code == 200

        row = page.locator('tr[data-slug="acme"]')
        await expect(row.locator('[data-action="delete"]')).to_be_disabled()  # no export yet
        await row.locator('[data-action="suspend"]').click()
        await _confirm(page)
        await expect(row.locator('[data-action="resume"]')).to_be_visible()
        async with page.expect_download() as download:
            await row.locator('[data-action="export"]').click()
        archive = tmp_path / "acme.zip"
        await (await download.value).save_as(archive)
        with zipfile.ZipFile(archive) as zf:
            assert "manifest.json" in zf.namelist()
        await expect(row.locator('[data-action="delete"]')).to_be_enabled()
        await row.locator('[data-action="delete"]').click()
        await _confirm(page, typed="acme")
        await expect(row).to_have_count(0)
        assert not [w for w in warnings if "i18n" in w], warnings
