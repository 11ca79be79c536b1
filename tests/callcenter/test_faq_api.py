"""The FAQ bot's Q&A pairs, the canned replies and the kept chats over HTTP: admins write, other
tenants get 404, a chat's transcript is found by a two-character Chinese word."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.acd_config import QueueSettings
from callcenter.chat_search import index_conversation
from callcenter.models import AcdQueue, Agent, AuditLog, ChatConversation, ChatMessage, utcnow

from .conftest import World

REFUND = {"question": "怎么申请退款？", "alternatives": ["退款流程是什么", " 我想退钱 "], "answer": "在订单中申请退款。",
          "queue": None}


def test_admin_adds_edits_and_deletes_a_pair_with_checked_fields(world: World) -> None:
    admin = world.login("admin")
    made = world.client.post("/api/faq", json=REFUND, headers=admin)
    assert made.status_code == 201, made.text
    pair = made.json()
    assert pair["alternatives"] == ["退款流程是什么", "我想退钱"]
    changed = world.client.put(f"/api/faq/{pair['id']}", json={**REFUND, "answer": "请在订单详情中申请。"}, headers=admin)
    assert changed.json()["answer"] == "请在订单详情中申请。"
    assert [p["answer"] for p in world.client.get("/api/faq", headers=admin).json()] == ["请在订单详情中申请。"]
    assert world.client.delete(f"/api/faq/{pair['id']}", headers=admin).status_code == 204
    assert world.client.get("/api/faq", headers=admin).json() == []
    with Session(world.engine) as db:
        actions = db.scalars(select(AuditLog.action).where(AuditLog.tenant_id == world.tenant_a)).all()
    assert {"faq.create", "faq.update", "faq.delete"} <= set(actions)
    for body, field in (({**REFUND, "question": "   "}, "question"), ({**REFUND, "answer": "x" * 4001}, "answer"),
                        ({**REFUND, "alternatives": ["ok", ""]}, "alternatives"), ({**REFUND, "extra": 1}, "extra")):
        resp = world.client.post("/api/faq", json=body, headers=admin)
        assert resp.status_code == 422 and field in resp.json()["details"][0]["loc"], resp.text
    resp = world.client.post("/api/faq", json={**REFUND, "queue": "nope"}, headers=admin)
    assert (resp.status_code, resp.json()["error_id"]) == (422, "no-such-queue")


def test_a_pair_can_belong_to_one_queue_and_the_bot_of_that_queue_answers_from_it(world: World) -> None:
    with Session(world.engine) as db:
        db.add(AcdQueue(tenant_id=world.tenant_a, name="sales", config=QueueSettings().model_dump(mode="json")))
        db.commit()
    admin = world.login("admin")
    pair = world.client.post("/api/faq", json={**REFUND, "queue": "sales"}, headers=admin).json()
    answered = world.client.post("/api/faq/try", json={"text": "我想退钱，该怎么操作", "queue": "sales"}, headers=admin)
    assert answered.json() | {"confidence": None} == {"kind": "answer", "text": REFUND["answer"],
                                                      "entry_id": pair["id"], "reason": None, "confidence": None}
    elsewhere = world.client.post("/api/faq/try", json={"text": "我想退钱，该怎么操作"}, headers=admin).json()
    assert elsewhere["kind"] == "clarify"
    person = world.client.post("/api/faq/try", json={"text": "转人工", "locale": "en"}, headers=admin).json()
    assert (person["kind"], person["reason"]) == ("handoff", "person") and "person" in person["text"]


def test_other_tenants_pairs_and_replies_are_404(world: World) -> None:
    alpha = world.login("admin")
    pair = world.client.post("/api/faq", json=REFUND, headers=alpha).json()
    reply = world.client.post("/api/canned-replies", json={"code": "hi", "text": "您好"}, headers=alpha).json()
    beta = world.login("admin", tenant="beta")
    assert world.client.get("/api/faq", headers=beta).json() == []
    assert world.client.get("/api/canned-replies", headers=beta).json() == []
    for method, path, body in (("PUT", f"/api/faq/{pair['id']}", REFUND), ("DELETE", f"/api/faq/{pair['id']}", None),
                               ("PUT", f"/api/canned-replies/{reply['id']}", {"code": "hi", "text": "x"}),
                               ("DELETE", f"/api/canned-replies/{reply['id']}", None)):
        resp = world.client.request(method, path, json=body, headers=beta)
        assert resp.status_code == 404, (method, path, resp.text)
    assert world.client.post("/api/canned-replies", json={"code": "hi", "text": "Hello"}, headers=beta
                             ).status_code == 201  # codes are unique per tenant only
    assert world.client.get("/api/canned-replies", headers=alpha).json() == [reply]


def test_canned_reply_codes_are_unique_and_checked_and_agents_only_read_them(world: World) -> None:
    admin = world.login("admin")
    hi = world.client.post("/api/canned-replies", json={"code": "hi", "text": "您好，很高兴为您服务。"}, headers=admin).json()
    bye = world.client.post("/api/canned-replies", json={"code": "bye", "text": "再见"}, headers=admin).json()
    again = world.client.post("/api/canned-replies", json={"code": "hi", "text": "x"}, headers=admin)
    renamed = world.client.put(f"/api/canned-replies/{bye['id']}", json={"code": "hi", "text": "x"}, headers=admin)
    assert (again.status_code, again.json()["error_id"]) == (409, "canned-reply-exists")
    assert (renamed.status_code, renamed.json()["error_id"]) == (409, "canned-reply-exists")
    for code in ("", "a" * 33, "has space", "斜杠"):
        assert world.client.post("/api/canned-replies", json={"code": code, "text": "x"},
                                 headers=admin).status_code == 422, code
    reply = world.client.put(f"/api/canned-replies/{hi['id']}", json={"code": "hi", "text": "您好！"},
                             headers=admin).json()
    assert reply == {"id": hi["id"], "code": "hi", "text": "您好！"}
    pair = world.client.post("/api/faq", json=REFUND, headers=admin).json()
    agent = world.login("agent")
    assert world.client.get("/api/canned-replies", headers=agent).json() == [bye, reply]
    for method, path, body in (("GET", "/api/faq", None), ("POST", "/api/faq", REFUND),
                               ("PUT", f"/api/faq/{pair['id']}", REFUND), ("DELETE", f"/api/faq/{pair['id']}", None),
                               ("POST", "/api/faq/try", {"text": "退款"}),
                               ("POST", "/api/canned-replies", {"code": "x", "text": "x"}),
                               ("PUT", f"/api/canned-replies/{reply['id']}", {"code": "x", "text": "x"}),
                               ("DELETE", f"/api/canned-replies/{reply['id']}", None)):
        assert world.client.request(method, path, json=body, headers=agent).status_code == 403, (method, path)


def _chat(world: World, tenant_id: int, texts: list[str], *, agent_username: str | None = None, minutes: int = 0) -> str:
    """A kept chat written straight into the database, indexed as the chat service does at its end."""
    with Session(world.engine) as db:
        agent_id = None
        if agent_username is not None:
            agent = Agent(tenant_id=tenant_id, user_id=world.users[agent_username], skills={})
            db.add(agent)
            db.flush()
            agent_id = agent.id
        chat = ChatConversation(tenant_id=tenant_id, visitor_id="v1", name="王先生", phone="13800138000",
                                question=texts[0], queue="sales", status="ended", agent_id=agent_id,
                                created_at=utcnow() + timedelta(minutes=minutes))
        db.add(chat)
        db.flush()
        db.add_all(ChatMessage(conversation_id=chat.id, tenant_id=tenant_id, seq=seq, text=text, agent_id=agent_id,
                               sender="visitor" if seq % 2 else "agent") for seq, text in enumerate(texts, 1))
        index_conversation(db, tenant_id, chat.id, [chat.name, *texts])
        db.commit()
        return chat.id


def test_search_finds_a_two_character_word_in_the_tenants_chats_newest_first(world: World) -> None:
    older = _chat(world, world.tenant_a, ["你好", "我要申请退款，谢谢"])
    newer = _chat(world, world.tenant_a, ["退款多久到账？"], minutes=1)
    _chat(world, world.tenant_a, ["发票怎么开"])
    _chat(world, world.tenant_b, ["我要退款"])
    supervisor = world.login("supervisor")
    hits = world.client.get("/api/chats/search", params={"q": "退款"}, headers=supervisor).json()
    assert [h["id"] for h in hits] == [newer, older]
    assert hits[1]["snippet"] == "我要申请退款，谢谢" and hits[1]["phone"] == "13800138000"
    both = world.client.get("/api/chats/search", params={"q": "申请 退款"}, headers=supervisor).json()
    assert [h["id"] for h in both] == [older]
    assert world.client.get("/api/chats/search", params={"q": "？！"}, headers=supervisor).json() == []
    assert world.client.get("/api/chats/search", params={"q": "退款"}, headers=world.login("agent")).status_code == 403


def test_a_transcript_is_read_by_reviewers_and_by_the_agent_who_took_it(world: World) -> None:
    chat = _chat(world, world.tenant_a, ["我要申请退款", "好的，马上为您处理"], agent_username="agent")
    other = _chat(world, world.tenant_a, ["发票怎么开"])
    transcript = world.client.get(f"/api/chats/{chat}", headers=world.login("qa")).json()
    assert transcript["conversation"]["agent"] == "agent"
    assert [(m["seq"], m["sender"], m["text"]) for m in transcript["messages"]] == [
        (1, "visitor", "我要申请退款"), (2, "agent", "好的，马上为您处理")]
    agent = world.login("agent")
    assert world.client.get(f"/api/chats/{chat}", headers=agent).status_code == 200
    assert world.client.get(f"/api/chats/{other}", headers=agent).status_code == 403
    beta = world.client.get(f"/api/chats/{chat}", headers=world.login("admin", tenant="beta"))
    assert (beta.status_code, beta.json()["error_id"]) == (404, "chat-not-found")
    with Session(world.engine) as db:
        assert db.scalar(select(AuditLog.target).where(AuditLog.action == "chat.read").limit(1)) == f"chat:{chat}"
