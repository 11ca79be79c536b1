"""The pages in Chromium under their Content-Security-Policy: each signs in and works with no
violation reported, and another site cannot frame the softphone to click through it."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.support.browser import chromium, log_in, tone_wav, until
from tests.support.node import NodeProcess, free_port

pytestmark = pytest.mark.interop


@pytest.fixture
def foreign_site(module_node: NodeProcess) -> Iterator[str]:
    """A page on another origin (127.0.0.2) that frames the softphone."""
    page = f'<html><body><iframe id="victim" src="{module_node.http}/agent" width="800" height="600"></iframe>'

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.2", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.2:{server.server_port}/"
    server.shutdown()


def _watch(page: Page, violations: list[str]) -> None:
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)


async def test_pages_work_under_their_policy_and_another_site_cannot_frame_the_softphone(
        module_node: NodeProcess, foreign_site: str, tmp_path: Path) -> None:
    node = module_node
    async with chromium(tone_wav(tmp_path / "mic.wav", 1000)) as browser:
        violations: list[str] = []
        agent = await browser.new_page()
        _watch(agent, violations)
        await log_in(agent, f"{node.http}/agent", "agent1", node.agents["agent1"][0])
        # the softphone's module, its WebSocket and its WebRTC line all came up under the policy
        await until(agent, "window.softphone && window.softphone.pc"
                           " && window.softphone.pc.connectionState === 'connected'", timeout=20)
        boss = await browser.new_page()
        _watch(boss, violations)
        await log_in(boss, f"{node.http}/supervisor", "supervisor", node.staff["supervisor"])
        await expect(boss.locator("#agent-rows tr")).to_have_count(2, timeout=15_000)
        qa = await browser.new_page()
        _watch(qa, violations)
        await log_in(qa, f"{node.http}/qa", "qa", node.staff["qa"])
        await qa.wait_for_load_state("networkidle")
        assert violations == []

        framed: list[str] = []
        evil = await browser.new_page()
        evil.on("console", lambda msg: framed.append(msg.text))
        await evil.goto(foreign_site)
        await evil.wait_for_timeout(1500)
        victim = next(f for f in evil.frames if f is not evil.main_frame)
        assert await victim.query_selector("#login-submit") is None  # nothing of the softphone to click
        assert any("frame-ancestors" in text for text in framed), framed
