"""Chats on /qa: listed next to recorded calls with the customer's satisfaction rating, reviewed from
their transcript, and evaluated automatically by the forms' text rules over the messages (the
agent's messages as the agent's speech, the visitor's as the caller's). Tenants never see each other's."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.orm import Session

from callcenter import csat, qa
from callcenter.api.acd import create_agent
from callcenter.chat_search import index_conversation
from callcenter.models import CallRecord, ChatConversation, ChatMessage, Tenant

from .conftest import World

T0 = datetime(2026, 3, 10, 2, 0, tzinfo=timezone.utc)
FORM = {"name": "在线客服", "scoring": "question", "sections": [{"id": "s", "title": "服务", "weight": 1, "questions": [
    {"id": "greeting", "text": "问候", "type": "yes_no", "weight": 1,
     "auto": {"rule": "phrase_said", "speaker": "agent", "phrases": ["您好"], "within_first_s": 30}},
    {"id": "no_shrug", "text": "不说不知道", "type": "yes_no", "weight": 1,
     "auto": {"rule": "phrase_not_said", "speaker": "agent", "phrases": ["不知道"]}},
    {"id": "thanks", "text": "Thanks", "type": "yes_no", "weight": 1,
     "auto": {"rule": "phrase_said", "speaker": "agent", "phrases": ["thank you"], "within_last_s": 60}},
    {"id": "asked", "text": "客户提到退款", "type": "yes_no", "weight": 1,
     "auto": {"rule": "phrase_said", "speaker": "caller", "phrases": ["退款"]}}]}]}
MESSAGES = [("visitor", "我要退款", 0), ("bot", "您好，我是机器人", 5), ("agent", "您好，这里是客服小王。", 25),
            ("visitor", "订单123", 40), ("agent", "已经处理了，Thank you!", 200)]
"""(sender, text, seconds after the chat began); the agent took it at 15 s."""


@pytest.fixture
def chat_id(world: World) -> str:
    with Session(world.engine) as db, db.begin():
        tenant = db.get(Tenant, world.tenant_a)
        assert tenant is not None
        agent, _, _ = create_agent(db, tenant, "a1", {"sales": 5})
        conversation = ChatConversation(tenant_id=tenant.id, visitor_id="v1", name="王女士", phone="13800138000",
                                        question="退款", queue="sales", status="ended", agent_id=agent.id,
                                        created_at=T0, answered_at=T0 + timedelta(seconds=15),
                                        ended_at=T0 + timedelta(seconds=215), end_cause="agent_ended")
        db.add(conversation)
        db.flush()
        db.add(CallRecord(id=conversation.id, sip_call_id=f"chat-{conversation.id}", tenant_id=tenant.id,
                          direction="inbound", caller="13800138000", dialed="web", received_at=T0,
                          answered_at=T0 + timedelta(seconds=15), ended_at=T0 + timedelta(seconds=215),
                          agent_id=agent.id, queue="sales", channel="chat"))
        for seq, (sender, text, seconds) in enumerate(MESSAGES, start=1):
            db.add(ChatMessage(conversation_id=conversation.id, tenant_id=tenant.id, seq=seq, sender=sender,
                               agent_id=agent.id if sender == "agent" else None, text=text,
                               created_at=T0 + timedelta(seconds=seconds)))
        db.flush()
        index_conversation(db, tenant.id, conversation.id, [text for _, text, _ in MESSAGES])
        qa.save_form(db, tenant.id, FORM)
        csat.record_rating(db, tenant_id=tenant.id, contact_id=conversation.id, channel="chat", rating=4,
                           comment="很快")
        return conversation.id


def test_the_text_rules_run_over_the_chat(world: World, chat_id: str) -> None:
    with Session(world.engine) as db, db.begin():
        with pytest.raises(LookupError):
            qa.evaluate_chat(db, world.tenant_b, chat_id)
        (evaluation,) = qa.evaluate_chat(db, world.tenant_a, chat_id)
        answers = {qid: (a["value"], [e["start"] for e in a["evidence"]]) for qid, a in evaluation.answers.items()}
        assert answers == {"greeting": ("yes", [10.0]),  # the bot's 您好 is nobody's
                           "no_shrug": ("yes", []), "thanks": ("yes", [185.0]), "asked": ("yes", [0.0])}
        assert evaluation.score == 100.0 and evaluation.agent_id is not None
        again = qa.evaluate_chat(db, world.tenant_a, chat_id)  # replaced in place, not added
        assert [e.id for e in again] == [evaluation.id]


def test_chats_are_listed_and_reviewed_with_their_rating(world: World, chat_id: str) -> None:
    with Session(world.engine) as db, db.begin():
        qa.evaluate_chat(db, world.tenant_a, chat_id)
    headers = world.login("qa")
    listed = world.client.get("/api/qa/calls", headers=headers).json()
    (item,) = listed["items"]
    assert (item["call_id"], item["channel"], item["recording"], item["auto_score"]) == (chat_id, "chat", None, 100.0)
    assert item["csat"]["rating"] == 4 and item["csat"]["comment"] == "很快"
    assert world.client.get("/api/qa/calls", params={"channel": "voice"}, headers=headers).json()["total"] == 0
    assert world.client.get("/api/qa/calls", params={"q": "退款"}, headers=headers).json()["total"] == 1
    assert world.client.get("/api/qa/calls", params={"q": "发票"}, headers=headers).json()["total"] == 0
    detail = world.client.get(f"/api/qa/calls/{chat_id}", headers=headers).json()
    assert detail["recording"] is None and detail["csat"]["rating"] == 4
    assert detail["chat"]["conversation"]["name"] == "王女士"
    assert [(m["sender"], m["agent"], m["text"]) for m in detail["chat"]["messages"]][2] == \
        ("agent", "a1", "您好，这里是客服小王。")
    assert [e["kind"] for e in detail["evaluations"]] == ["auto"]
    beta = world.login("admin", tenant="beta")
    assert world.client.get(f"/api/qa/calls/{chat_id}", headers=beta).status_code == 404
    assert world.client.get("/api/qa/calls", headers=beta).json()["total"] == 0
