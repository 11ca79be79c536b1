"""The web chat widget in headless Chromium (issue 16). A shop's site on another origin (a tiny HTTP
server on another port of 127.0.0.1) carries the widget's script tag; a visitor chats in Chinese with
agent1 on agent1's own page (another browser context: its network stays up). The visitor's network
is cut three times mid-conversation while both sides keep writing: every message arrives exactly
once and in order on both sides (the visitor's page, and the frames agent1's socket receives).
agent1's page reloads mid-chat and gets the chat back; the visitor reopens the site on a phone (the
panel full screen) and gets the conversation back; the rating card ends it. A site the tenant did
not allow cannot frame the panel.

Set ``CALLCENTER_SCREENSHOTS=<dir>`` to keep pictures of the panel (chat-widget-zh.png, chat-widget-phone-zh.png)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Frame, Page, WebSocket, expect

from tests.support.agent_page import open_softphone
from tests.support.browser import chromium, tone_wav, until
from tests.support.i18n_pages import english_left, english_on
from tests.support.node import NodeProcess, admin_client

pytestmark = pytest.mark.interop

SCREENSHOTS = os.environ.get("CALLCENTER_SCREENSHOTS")  # read at import: conftest clears CALLCENTER_* per test
SITE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>测试商店</title>
<link rel="icon" href="data:,"></head><body><h1>测试商店</h1><p>春茶上新。</p>
<script src="{node}/widget.js" data-key="{key}" async></script></body></html>"""
#: A 1x1 PNG: an image the visitor sends.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
#: The visitor's message sent in the instant the network goes (it may reach the node before the cut, or after).
RACING = "第1次：断网瞬间"
#: The visitor's log as [seq or null, sender, state, text] per item.
LOG_JS = """() => [...document.querySelectorAll('#chat-log > li')].map((li) => [
  li.dataset.seq ? Number(li.dataset.seq) : null, li.dataset.sender, li.dataset.state || '',
  (li.querySelector('.chat-text, .chat-system-text') || {}).textContent || ''])"""


class AgentWire:
    """What agent1's page receives on its socket, frame by frame, across reloads."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, dict[str, Any]]] = []  # (which socket of the page, message)
        self.sockets = 0

    def listen(self, page: Page) -> None:
        page.on("websocket", self._socket)

    def _socket(self, ws: WebSocket) -> None:
        if "/api/agent/ws" not in ws.url:
            return
        self.sockets += 1
        number = self.sockets
        ws.on("framereceived", lambda payload: self.frames.append((number, json.loads(payload))))

    def messages(self, conversation: str, socket: int | None = None) -> list[dict[str, Any]]:
        """The conversation's messages as they came: the welcome's and the accept's transcripts, then one by one."""
        out: list[dict[str, Any]] = []
        for number, m in self.frames:
            if socket is not None and number != socket:
                continue
            if m["type"] == "welcome":
                out += [msg for chat in m.get("chats") or [] if chat["conversation"]["id"] == conversation
                        for msg in chat["messages"]]
            elif m["type"] == "chat" and m["conversation"]["id"] == conversation:
                out += m["messages"]
            elif m["type"] == "chat_message" and m["conversation_id"] == conversation:
                out.append(m["message"])
        return out

    async def got(self, kind: str, *, least_seq: int = 0, **fields: Any) -> dict[str, Any]:
        """The first frame of ``kind`` with ``fields`` (of its message, for a chat_message) and a seq of
        at least ``least_seq``; TimeoutError after 15 s."""
        async with asyncio.timeout(15):
            while True:
                for _, m in self.frames:
                    body = m.get("message", {}) if kind == "chat_message" else m
                    if m["type"] == kind and all(body.get(k) == v for k, v in fields.items()) \
                            and body.get("seq", 0) >= least_seq:
                        return m
                await asyncio.sleep(0.05)


@contextmanager
def shop_site(node: NodeProcess, key: str) -> Iterator[int]:
    """The shop's site on its own port of 127.0.0.1 (an origin of its own): its port."""
    page = SITE.format(node=node.http, key=key).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


async def open_panel(page: Page, site: str) -> Frame:
    if page.url != site:
        await page.goto(site)
    await page.click("[data-cc-chat-launcher]")  # shown once the panel is ready
    await expect(page.locator("[data-cc-chat-launcher]")).to_have_attribute("aria-expanded", "true")
    return next(f for f in page.frames if "/chat?" in f.url)


async def says(page: Page | Frame, text: str) -> None:
    """The visitor's or the agent's box (both #chat-input): type, Enter."""
    await page.fill("#chat-input", text)
    await page.press("#chat-input", "Enter")


async def log_of(frame: Frame) -> list[list[Any]]:
    log: list[list[Any]] = await frame.evaluate(LOG_JS)
    return log


def watch_console(page: Page, problems: list[str]) -> None:
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))


async def test_a_visitor_chats_with_agent1_through_three_network_cuts(module_node: NodeProcess,
                                                                       tmp_path: Path) -> None:
    node = module_node
    with admin_client(node) as admin, shop_site(node, admin.get("/api/chat/settings").json()["widget_key"]) as port:
        site, stranger = f"http://127.0.0.1:{port}/", f"http://localhost:{port}/"
        settings = admin.get("/api/chat/settings").json()
        admin.put("/api/chat/settings", json={**settings, "allowed_origins": [site.rstrip("/")]}).raise_for_status()
        async with chromium(tone_wav(tmp_path / "mic.wav", 440.0, 0.5)) as browser:
            wire = AgentWire()
            agent = await open_softphone(browser, node, "agent1", on_page=wire.listen)
            context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
            problems: list[str] = []
            page = await context.new_page()
            watch_console(page, problems)
            sockets: list[str] = []
            page.on("websocket", lambda ws: sockets.append(ws.url))
            frame = await open_panel(page, site)

            # the pre-chat form says what is wrong, in Chinese, then starts the chat; agent1 takes it
            await frame.click("#prechat-submit")
            await expect(frame.locator("#prechat-name-error")).to_have_text("请填写您的称呼。")
            await frame.fill("#prechat-name", "张三")
            await frame.fill("#prechat-phone", "138 0013 8000")
            await frame.fill("#prechat-question", "我想查询订单的物流")
            await frame.click("#prechat-submit")
            offer = await wire.got("chat_offer")
            conversation = offer["conversation_id"]
            assert (offer["name"], offer["question"], offer["page_url"]) == ("张三", "我想查询订单的物流", site)
            await agent.click(f'#chat-offers .chat-offer[data-conversation-id="{conversation}"] .chat-offer-accept')
            await expect(frame.locator("#chat-subtitle")).to_have_text("客服 agent1 为您服务")

            # typing both ways, emoji, an image (and a file that is not one)
            await frame.fill("#chat-input", "请问")
            await wire.got("chat_typing", conversation_id=conversation, typing=True)
            await agent.fill("#chat-input", "您")
            await expect(frame.locator("#chat-typing")).to_be_visible()
            await agent.fill("#chat-input", "")
            await frame.click("#emoji-toggle")
            await frame.click('#emoji-panel [data-emoji="🙏"]')
            await expect(frame.locator("#chat-input")).to_have_value("请问🙏")
            await frame.press("#chat-input", "Enter")
            await wire.got("chat_message", text="请问🙏")
            (tmp_path / "订单截图.png").write_bytes(PNG)
            await frame.set_input_files("#attach-input", tmp_path / "订单截图.png")
            image = await wire.got("chat_message", sender="visitor", text="")
            assert image["message"]["attachment"]["content_type"] == "image/png"
            await expect(frame.locator("img.chat-thumb")).to_have_js_property("naturalWidth", 1)  # loaded with the token
            (tmp_path / "notes.txt").write_text("not an image")
            await frame.set_input_files("#attach-input", tmp_path / "notes.txt")
            await expect(frame.locator("#chat-notice")).to_have_text("只能发送图片（PNG、JPEG、GIF、WebP）和 PDF 文件。")

            # three cuts of the visitor's network; both sides keep writing while it is down
            expected = ["我想查询订单的物流", "请问🙏"]
            for cut in (1, 2, 3):
                if cut == 3:  # agent1's page reloads mid-chat and gets the chat back
                    before = [m["seq"] for m in wire.messages(conversation)]
                    await agent.reload()
                    await until(agent, f"window.softphone.chats.some(c => c.id === '{conversation}' && c.messages.length)")
                    assert [m["seq"] for m in wire.messages(conversation, socket=2)] == sorted(set(before))
                await says(frame, f"第{cut}次：在线")
                await wire.got("chat_message", text=f"第{cut}次：在线")
                if cut == 1:
                    await says(frame, RACING)
                await context.set_offline(True)
                await wire.got("chat_visitor", conversation_id=conversation, online=False)  # really gone
                await expect(frame.locator("#chat-connection")).to_have_text("重新连接中…")
                for n in (1, 2):
                    await says(frame, f"第{cut}次断网：访客{n}")
                    await expect(frame.locator('#chat-log li[data-state="sending"]', has_text=f"第{cut}次断网：访客{n}")
                                 ).to_have_count(1)
                for n in (1, 2):
                    await says(agent, f"第{cut}次断网：客服{n}")
                    await wire.got("chat_message", text=f"第{cut}次断网：客服{n}")
                await context.set_offline(False)
                await expect(frame.locator("#chat-connection")).to_be_hidden()
                await expect(frame.locator('#chat-log li[data-state="sending"]')).to_have_count(0)
                await expect(frame.locator("#chat-log li[data-seq]", has_text=f"第{cut}次断网：客服2")).to_have_count(1)
                await wire.got("chat_message", text=f"第{cut}次断网：访客2")
                expected += [f"第{cut}次：在线", f"第{cut}次断网：客服1", f"第{cut}次断网：客服2",
                             f"第{cut}次断网：访客1", f"第{cut}次断网：访客2"]
            assert not await english_on(frame, english_left())
            if SCREENSHOTS:
                await page.screenshot(path=str(Path(SCREENSHOTS) / "chat-widget-zh.png"))

            # exactly once and in order: the visitor's page, agent1's two sockets, agent1's page
            shown = await log_of(frame)
            seqs = [entry[0] for entry in shown]
            assert None not in seqs and seqs == list(range(1, len(seqs) + 1)), shown
            texts = [text for _, sender, _, text in shown if sender in ("visitor", "agent") and text]
            assert texts.count(RACING) == 1 and [text for text in texts if text != RACING] == expected, texts
            for socket in (1, 2):
                got = [m["seq"] for m in wire.messages(conversation, socket)]
                assert got == sorted(set(got)), got
            heard = {m["seq"]: m["text"] for m in wire.messages(conversation)}
            assert sorted(heard) == seqs and [heard[seq] for seq in seqs] == [entry[3] for entry in shown]
            on_agent_page = await agent.locator("#chat-messages li[data-seq]").evaluate_all(
                "items => items.map(li => Number(li.dataset.seq))")
            assert on_agent_page == seqs
            resumed = [int(url.rsplit("after=", 1)[1]) for url in sockets if "/api/chat/socket" in url]
            assert len(resumed) >= 4 and resumed[0] == 0 and resumed[1:] == sorted(resumed[1:]) and resumed[1] > 0

            # read receipts both ways: agent1 has seen everything, and sees that the visitor has
            await expect(frame.locator(f'#chat-log li[data-seq="{seqs[-1]}"]')).to_have_attribute("data-state", "read")
            await wire.got("chat_read", conversation_id=conversation,
                           least_seq=max(seq for seq, sender, _, _ in shown if sender == "agent"))

            # the visitor reopens the site on a phone: the conversation is back (an agent's message while
            # the panel is closed counts on the launcher), and the panel takes the screen
            await page.close()
            phone = await context.new_page()
            await phone.set_viewport_size({"width": 390, "height": 844})
            watch_console(phone, problems)
            await phone.goto(site)
            await expect(phone.locator("[data-cc-chat-launcher]")).to_have_attribute("aria-label", "在线咨询")
            await says(agent, "您还在吗？")
            await expect(phone.locator("[data-cc-chat-launcher]")).to_have_attribute("aria-label", "在线咨询 (1)")
            frame = await open_panel(phone, site)
            await expect(frame.locator("#chat-log li[data-seq]")).to_have_count(len(seqs) + 1)
            assert [entry[::3] for entry in await log_of(frame)] == [[seq, text] for seq, *_, text in shown] + [
                [len(seqs) + 1, "您还在吗？"]]
            await wire.got("chat_read", conversation_id=conversation, seq=len(seqs) + 1)
            box = await phone.locator("[data-cc-chat-widget] iframe").bounding_box()
            assert box is not None and (box["width"], box["height"]) == (390, 844)

            # agent1 ends the chat with a disposition; the visitor rates it
            await agent.click("#chat-end")
            await agent.select_option("#chat-end-disposition", "resolved")
            await agent.click("#chat-end-go")
            await expect(frame.locator("#rating-form")).to_be_visible()
            await frame.click('#rating-stars [data-rating="5"]')
            await frame.fill("#rating-comment", "很快就解决了")
            assert not await english_on(frame, english_left())
            if SCREENSHOTS:
                await phone.screenshot(path=str(Path(SCREENSHOTS) / "chat-widget-phone-zh.png"))
            await frame.click("#rating-submit")
            await expect(frame.locator("#chat-done")).to_contain_text("感谢您的评价！")
            assert not problems, problems

            await refused_elsewhere(context, node, settings["widget_key"], stranger, site)


async def refused_elsewhere(context: BrowserContext, node: NodeProcess, key: str, stranger: str, site: str) -> None:
    """A site not in allowed_origins: the browser refuses to frame the panel, no launcher shows."""
    page = await context.new_page()
    reply = await page.request.get(f"{node.http}/chat?key={key}")
    policy = dict(part.strip().split(" ", 1) for part in reply.headers["content-security-policy"].split(";"))
    assert policy["frame-ancestors"] == f"'self' {site.rstrip('/')}"
    assert "x-frame-options" not in reply.headers
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "frame-ancestors" in m.text else None)
    await page.goto(stranger)
    async with asyncio.timeout(10):
        while not refused:
            await asyncio.sleep(0.1)
    await expect(page.locator("[data-cc-chat-launcher]")).to_be_hidden()
    await page.close()
