"""Web chats and calls in one ACD, on a demo node: real sockets on both sides (the widget's
protocol for visitors, the /agent socket with WebRTC for the agent) and a real SIP caller.

agent1 takes two chats at once (their capacity), not a third; the tenant's setting keeps calls
from an agent in chats; a freed slot takes the oldest waiting chat; a visitor whose connection
drops gets every message once, in order, on reconnecting; the records and the transcript are
in the database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from softphone_web.agent_client import AgentClient
from tests.support.call_peers import call_into
from tests.support.chat_visitor import Visitor
from tests.support.endpoint import EndpointHarness
from tests.support.node import NodeProcess, admin_client

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def chat_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = NodeProcess(tmp_path_factory.mktemp("chat-node")).start()
    with admin_client(node) as api:
        agent1 = next(a for a in api.get("/api/agents").json() if a["username"] == "agent1")
        assert api.patch(f"/api/agents/{agent1['id']}", json={"chat_capacity": 2}).status_code == 200
    yield node
    node.stop()


def put_settings(node: NodeProcess, **changes: Any) -> None:
    with admin_client(node) as api:
        settings = api.get("/api/chat/settings").json()
        reply = api.put("/api/chat/settings", json={**settings, **changes})
        assert reply.status_code == 200, reply.text


async def offered(agent: AgentClient, visitor: Visitor, timeout: float = 10.0) -> dict[str, Any]:
    """The chat offer for ``visitor`` the agent got (``expect`` skips what it is not waiting for:
    look in everything the agent received)."""
    async with asyncio.timeout(timeout):
        while True:
            offer = next((m for m in agent.messages if m["type"] == "chat_offer"
                          and m["conversation_id"] == visitor.conversation_id), None)
            if offer is not None:
                assert offer["name"] == "张三" and offer["queue"] == "support"
                return offer
            await asyncio.sleep(0.05)


async def test_capacity_calls_and_messages_across_drops(chat_node: NodeProcess, carrier: EndpointHarness) -> None:
    node = chat_node
    with httpx.Client(base_url=node.http) as http:  # nobody signed in: the widget offers the offline form
        assert http.get("/api/chat/widget/wk_demo").json()["online"] is False
        refused = http.post("/api/chat/conversations", json={"key": "wk_demo", "question": "在吗？"})
        assert (refused.status_code, refused.json()["error_id"]) == (409, "chat-offline")
    agent = AgentClient(node.http, "demo", "agent1", node.agents["agent1"][0])
    await agent.connect()
    await agent.send({"type": "set_state", "state": "available"})
    await agent.expect("state", state="available")
    visitors = [Visitor(node.http) for _ in range(3)]
    caller = None
    try:
        first, second, third = visitors
        for n, visitor in enumerate(visitors):
            assert (await visitor.open(f"问题{n}：我要退款")).status_code == 201
            await visitor.connect()
        for visitor in (first, second):
            await offered(agent, visitor)
            await agent.send({"type": "chat_accept", "conversation_id": visitor.conversation_id})
            chat = await agent.expect("chat", timeout=5)
            assert chat["conversation"]["id"] == visitor.conversation_id
            await visitor.expect("status", status="active", agent="agent1")
        # capacity 2: the third waits, first in line
        await third.expect("status", status="queued", position=1)
        with pytest.raises(TimeoutError):
            await offered(agent, third, timeout=1.5)

        # a call while agent1 is in chats: not offered (the tenant's default), then offered once allowed
        caller = await call_into(carrier, node, "2")  # 2: support
        with pytest.raises(TimeoutError):
            await agent.expect("offer", timeout=6)
        put_settings(node, calls_while_chatting=True)
        call_offer = await agent.expect("offer", timeout=10)
        await agent.send({"type": "decline", "call_id": call_offer["call_id"]})
        await caller.hang_up()
        caller = None
        put_settings(node, calls_while_chatting=False)
        await agent.send({"type": "set_state", "state": "available"})  # the decline meant a missed break
        await agent.expect("state", state="available")

        # the second visitor's connection drops three times while both sides write
        expected_from_agent, expected_from_visitor = [], []
        for drop in range(3):
            await second.drop()
            text = f"客服消息{drop}"
            await agent.send({"type": "chat_send", "conversation_id": second.conversation_id, "text": text,
                              "client_id": f"a{drop}"})
            expected_from_agent.append(text)
            await second.connect()  # resumes after the last seq it holds
            mine = f"访客消息{drop}"
            client_id = await second.send(mine)
            await second.send(mine, client_id)  # sent again (no answer seen): stored once
            expected_from_visitor.append(mine)
        await second.text_arrives(expected_from_agent[-1])
        for text in expected_from_visitor:
            await second.text_arrives(text)
        # every seq from 1 on, each message stored once (the resend was answered with the stored one)
        assert sorted(second.messages) == list(range(1, second.last_seq + 1))
        texts = [second.messages[s]["text"] for s in sorted(second.messages)]
        assert all(texts.count(t) == 1 for t in expected_from_agent + expected_from_visitor)
        order = [t for t in texts if t in expected_from_agent + expected_from_visitor]
        assert [t for t in order if t.startswith("客服")] == expected_from_agent
        assert [t for t in order if t.startswith("访客")] == expected_from_visitor

        # agent1 ends the first chat with a disposition: the slot takes the waiting chat
        code = "resolved"  # one of the demo's dispositions
        await agent.send({"type": "chat_end", "conversation_id": first.conversation_id, "disposition": code,
                          "notes": "已退款"})
        await first.expect("ended", cause="agent_ended")
        await offered(agent, third)
        await agent.send({"type": "chat_accept", "conversation_id": third.conversation_id})
        await third.expect("status", status="active")
        await first.request({"type": "rate", "rating": 5, "comment": "很好"})
        await first.expect("rated")
        for visitor in (second, third):  # agent1 free again for the next test
            await agent.send({"type": "chat_end", "conversation_id": visitor.conversation_id, "disposition": code,
                              "notes": ""})
            await agent.expect("chat_closed", conversation_id=visitor.conversation_id)
    finally:
        if caller is not None:
            await caller.hang_up()
        for visitor in visitors:
            await visitor.close()
        await agent.close()
    await asyncio.sleep(0.5)  # the writer's last batch
    with admin_client(node) as api:
        record = api.get(f"/api/calls/{first.conversation_id}").json()
        assert (record["channel"], record["agent"]["username"], record["disposition"]) == ("chat", "agent1", code)


async def test_the_bot_answers_a_paraphrase_and_hands_off_with_the_transcript(chat_node: NodeProcess) -> None:
    """The FAQ bot of the support queue answers a question asked differently from the stored one
    (怎么申请退款？), then the visitor asks for a person: the chat is offered to agent1, whose page
    gets the whole conversation, the bot's answer included."""
    node = chat_node
    with admin_client(node) as api:
        support = next(q for q in api.get("/api/queues").json() if q["name"] == "support")
        assert api.patch(f"/api/queues/{support['id']}", json={"faq_bot": True}).status_code == 200
    agent = AgentClient(node.http, "demo", "agent1", node.agents["agent1"][0])
    visitor = Visitor(node.http)
    try:
        await agent.connect()
        await agent.send({"type": "set_state", "state": "available"})
        await agent.expect("state", state="available")
        for _ in range(20):  # the queue's new setting reaches the node's ACD
            if (await visitor.open("我想退钱，该怎么操作")).status_code == 201 and (
                    (await visitor.connect())["conversation"]["status"] == "bot"):
                break
            await visitor.close()
            visitor = Visitor(node.http)
            await asyncio.sleep(0.2)
        assert (await visitor.text_arrives("我想退钱，该怎么操作"))["sender"] == "visitor"
        bot = [m for m in visitor.messages.values() if m["sender"] == "bot"]  # answered before the socket opened
        assert len(bot) == 1 and "申请退款" in bot[0]["text"], visitor.messages
        with pytest.raises(TimeoutError):  # the bot answered: nobody is offered the chat
            await offered(agent, visitor, timeout=1)
        await visitor.send("转人工")
        await offered(agent, visitor)
        await agent.send({"type": "chat_accept", "conversation_id": visitor.conversation_id})
        chat = await agent.expect("chat", timeout=5)
        transcript = [(m["sender"], m["text"]) for m in chat["messages"]]
        assert ("visitor", "我想退钱，该怎么操作") in transcript and ("visitor", "转人工") in transcript
        assert [s for s, t in transcript if s == "bot" and "申请退款" in t]
    finally:
        await visitor.close()
        await agent.close()
        with admin_client(node) as api:
            api.patch(f"/api/queues/{support['id']}", json={"faq_bot": False})


def test_one_address_cannot_flood_the_queues_with_chats(chat_node: NodeProcess) -> None:
    """Anyone may start a chat: one address gets ``chat_opens_per_minute`` (20) a minute, then 429.
    Runs last in the module: it spends this address's allowance."""
    with httpx.Client(base_url=chat_node.http) as http:
        answers = [http.post("/api/chat/conversations", json={"key": "wk_demo", "question": f"第{n}次"})
                   for n in range(25)]
    statuses = [a.status_code for a in answers]
    assert 429 in statuses and set(statuses) <= {201, 409, 429}
    refused = answers[statuses.index(429)]
    assert refused.json()["error_id"] == "too-many-chats" and refused.headers["retry-after"] == "60"
