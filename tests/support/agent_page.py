"""The agent page (``/agent``) in headless Chromium with sipp calling: what the page and
the caller hear (tests of the softphone, and of the supervisor stepping into its calls)."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

from sip_bridge.tones import detect_tone
from tests.support.browser import hears_tone, log_in, until
from tests.support.node import NodeProcess, free_port
from tests.support.pcap import ivr_call_scenario
from tests.support.sipp import SippResult, sipp
from tests.support.sniff import RtpSniffer

DEMO = "4001234567"


def screenshot_path(name: str, tmp_path: Path) -> Path:
    folder = os.environ.get("CALLCENTER_SCREENSHOTS")
    return Path(folder) / f"{name}.png" if folder else tmp_path / f"{name}.png"


async def open_softphone(browser: Browser, node: NodeProcess, agent: str,
                         on_page: Callable[[Page], None] | None = None) -> Page:
    """``agent``'s page signed in, its audio line up, available; ``on_page`` sees the page before it
    opens anything (to listen to its socket from the first frame)."""
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    if on_page is not None:
        on_page(page)
    await log_in(page, f"{node.http}/agent", agent, node.agents[agent][0])
    await until(page, "window.softphone && window.softphone.pc"
                " && window.softphone.pc.connectionState === 'connected'", timeout=20)
    await expect(page.locator("#conn-indicator")).to_have_attribute("data-status", "connected")
    await page.click("#btn-available")
    await expect(page.locator("#state-label")).to_have_text("Available")
    return page


class SippCaller(threading.Thread):
    """sipp calls ``number`` (the demo's) from ``source``, presses ``key``, then talks (the tone
    in ``tone``) until the node hangs up."""

    def __init__(self, node: NodeProcess, workdir: Path, key: str, tone: Path, *, number: str = DEMO,
                 source: str = "127.0.0.1") -> None:
        super().__init__()
        workdir.mkdir(parents=True, exist_ok=True)
        self.node, self.workdir, self.key, self.tone = node, workdir, key, tone
        self.number, self.source = number, source
        self.media_port = free_port()
        self.heard = RtpSniffer(self.media_port)
        self.result: SippResult | None = None
        self.start()

    def run(self) -> None:
        xml = ivr_call_scenario(self.workdir / "caller.xml",
                                [("pause", 1500), ("pcap", f"pcap/dtmf_2833_{self.key}.pcap"), ("pause", 500),
                                 ("talk", str(self.tone))], platform_hangs_up=True)
        self.result = sipp(self.workdir, self.node.sip, "-sf", str(xml), "-s", self.number, "-m", "1",
                           "-i", self.source, "-mp", str(self.media_port), timeout=240)

    def hears(self, freq: float, share: float = 0.5) -> bool:
        """Whether ``freq`` carries at least ``share`` of what the caller heard in the last half second."""
        return detect_tone(self.heard.pcm(0.5), freq, threshold=share)

    def finish(self) -> SippResult:
        self.join()
        self.heard.stop()
        assert self.result is not None
        return self.result


async def eventually(check: Any, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.2)


async def page_hears(page: Page, freq: float, timeout: float = 15.0, *, audio: str = "#remote-audio",
                     among: bool = False) -> None:
    await eventually(lambda: hears_tone(page, freq, 600, audio=audio, among=among), timeout)


async def caller_hears(caller: SippCaller, freq: float, timeout: float = 15.0, share: float = 0.5) -> None:
    async def check() -> bool:
        return caller.hears(freq, share)
    await eventually(check, timeout)


async def answer(page: Page) -> None:
    await expect(page.locator("#offer-card")).to_be_visible(timeout=30_000)
    await page.click("#btn-accept")
    await expect(page.locator("#call-panel")).to_be_visible()
