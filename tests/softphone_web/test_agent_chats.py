"""Chats on the agent page in real headless Chromium, on a demo node: visitors speak the widget's
protocol (tests/support/chat_visitor.py), agent1 (chat capacity 2) takes them in tabs.

Two chats fill agent1's capacity and a third visitor waits, not offered, until agent1 ends one with
a disposition; a canned reply goes in by its short code; every message the agent sends reaches
the visitor exactly once; a reload brings both chats back with their messages.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.agent_page import open_softphone
from tests.support.browser import chromium, tone_wav, until
from tests.support.chat_visitor import Visitor
from tests.support.node import NodeProcess, admin_client

pytestmark = pytest.mark.interop

@pytest.fixture(scope="module")
def node(module_node: NodeProcess) -> Iterator[NodeProcess]:
    """The demo node with agents taking two chats at once."""
    with admin_client(module_node) as admin:
        settings = admin.get("/api/chat/settings").json()
        assert admin.put("/api/chat/settings", json={**settings, "chat_capacity": 2}).status_code == 200
    yield module_node


@pytest.fixture(scope="module")
def canned(node: NodeProcess) -> str:
    """The text of the demo's canned reply /hi."""
    with admin_client(node) as admin:
        replies = admin.get("/api/canned-replies").json()
    return str(next(r["text"] for r in replies if r["code"] == "hi"))


@pytest.fixture
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Browser]:
    async with chromium(tone_wav(tmp_path_factory.mktemp("mic") / "mic.wav", 1000.0)) as b:
        yield b


@pytest.fixture
async def visitors(node: NodeProcess) -> AsyncIterator[list[Visitor]]:
    """Three visitors; their sockets ping as the widget does (the server drops a silent one)."""
    made = [Visitor(node.http) for _ in range(3)]

    async def ping() -> None:
        while True:
            await asyncio.sleep(5)
            for v in made:
                if v.ws is not None:
                    await v.request({"type": "ping"})

    pinger = asyncio.ensure_future(ping())
    yield made
    pinger.cancel()
    for v in made:
        await v.close()


async def _visit(visitor: Visitor, name: str, phone: str, question: str) -> str:
    """Opens the conversation and its socket; the conversation's status (queued: waiting in line)."""
    reply = await visitor.open(question, name=name, phone=phone)
    assert reply.status_code == 201, reply.text
    return str((await visitor.connect())["conversation"]["status"])


def _offer(visitor: Visitor) -> str:
    return f'#chat-offers .chat-offer[data-conversation-id="{visitor.conversation_id}"]'


def _tab(visitor: Visitor) -> str:
    return f'#chat-desk .chat-tab[data-conversation-id="{visitor.conversation_id}"]'


async def _accept(page: Page, visitor: Visitor) -> None:
    await page.click(f"{_offer(visitor)} .chat-offer-accept", timeout=15_000)
    await expect(page.locator(_tab(visitor))).to_have_attribute("aria-selected", "true")


async def _agent_messages(page: Page, visitor: Visitor) -> list[dict[str, object]]:
    chats = await page.evaluate("window.softphone.chats")
    chat = next(c for c in chats if c["id"] == visitor.conversation_id)
    return list(chat["messages"])


async def test_two_chats_fill_the_capacity_a_third_waits_then_comes_and_a_reload_keeps_them(
        node: NodeProcess, canned: str, browser: Browser, visitors: list[Visitor]) -> None:
    page = await open_softphone(browser, node, "agent1")
    one, two, three = visitors
    await _visit(one, "张三", "13800138001", "我的订单还没到")
    await _visit(two, "Li Lei", "13900139002", "How do I get a refund?")
    await expect(page.locator(_offer(one))).to_contain_text("我的订单还没到", timeout=15_000)
    await _accept(page, one)
    await _accept(page, two)
    await expect(page.locator("#chat-desk .chat-tab")).to_have_count(2)
    await expect(page.locator("#idle-panel")).to_be_hidden()

    # Capacity 2 is full: the third visitor waits in line and the page is not offered it.
    assert await _visit(three, "王五", "13700137003", "发票怎么开") == "queued"
    await asyncio.sleep(1.0)
    await expect(page.locator("#chat-offers .chat-offer")).to_have_count(0)

    # /hi offers the canned reply, Tab puts it in, Enter sends it; the visitor gets it once.
    await page.click(_tab(one))
    await page.locator("#chat-input").press_sequentially("/h")
    await expect(page.locator("#chat-canned")).to_contain_text(canned)
    await page.press("#chat-input", "Tab")
    await expect(page.locator("#chat-input")).to_have_value(canned)
    await page.press("#chat-input", "Enter")
    sent = await one.text_arrives(canned)
    await expect(page.locator(f'#chat-messages li[data-seq="{sent["seq"]}"]')).to_contain_text(canned)
    await page.locator("#chat-input").press_sequentially("第二行", delay=10)
    await page.press("#chat-input", "Shift+Enter")
    await page.locator("#chat-input").press_sequentially("还在一条消息里")
    await page.press("#chat-input", "Enter")
    await one.text_arrives("第二行\n还在一条消息里")

    # The visitor answers and reads; the other tab counts what the agent has not seen.
    await one.send("好的，谢谢")
    await expect(page.locator("#chat-messages")).to_contain_text("好的，谢谢")
    await one.request({"type": "read", "seq": one.last_seq})
    await expect(page.locator(f'#chat-messages li[data-seq="{sent["seq"]}"] .chat-receipt')).to_have_attribute(
        "data-receipt", "read")
    await two.send("Are you there?")
    await expect(page.locator(f"{_tab(two)} .chat-tab-unread")).to_have_text("1")
    await two.request({"type": "typing", "typing": True})
    await expect(page.locator(f"{_tab(two)} .chat-tab-typing")).to_be_visible()

    # A reload gets both chats back with their messages, each once.
    before = {v.conversation_id: await _agent_messages(page, v) for v in (one, two)}
    await page.reload()
    await expect(page.locator("#chat-desk .chat-tab")).to_have_count(2, timeout=15_000)
    await until(page, "window.softphone.chats.length === 2 && window.softphone.chats.every(c => c.messages.length)")
    for v in (one, two):
        after = await _agent_messages(page, v)
        assert [m["seq"] for m in after] == [m["seq"] for m in before[v.conversation_id]]
    await page.click(_tab(one))
    await expect(page.locator("#chat-messages li.chat-msg-agent")).to_have_count(2)
    await expect(page.locator("#chat-customer")).to_contain_text("13800138001")

    # Ending one chat with a disposition frees the slot: the waiting visitor is offered now.
    await page.click("#chat-end")
    await page.select_option("#chat-end-disposition", "resolved")
    await page.fill("#chat-end-notes", "订单已补发")
    await page.click("#chat-end-go")
    await one.expect("ended", cause="agent_ended")
    await expect(page.locator(_tab(one))).to_have_count(0)
    await expect(page.locator(_offer(three))).to_contain_text("王五", timeout=15_000)
    await _accept(page, three)
    await expect(page.locator("#chat-desk .chat-tab")).to_have_count(2)

    agent_texts = [m["text"] for m in one.messages.values() if m["sender"] == "agent"]
    assert agent_texts == [canned, "第二行\n还在一条消息里"]
    for v in visitors:
        assert not [seq for seq, n in Counter(v.received).items() if n > 1], "a message reached a visitor twice"
    with admin_client(node) as admin:  # the chat's contact record has the disposition
        record = admin.get(f"/api/calls/{one.conversation_id}").json()
    assert record["disposition"] == "resolved", record
