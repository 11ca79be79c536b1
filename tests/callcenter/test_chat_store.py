"""The chats' writer: in order, a change the database refuses skipped without losing its batch."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from callcenter import chat_store as store
from callcenter.models import ChatMessage, utcnow
from tests.callcenter.conftest import add_tenant


async def test_a_refused_change_is_skipped_and_the_rest_of_its_batch_written(engine: Engine) -> None:
    tenant_id = add_tenant(engine, "acme")
    with Session(engine) as db, db.begin():
        conversation_id = store.create_conversation(db, store.NewConversation(
            tenant_id, "v" * 16, "张三", "13800138000", "在吗", "", "zh-CN", "support", "queued", None), utcnow())
    writer = store.ChatWriter(engine)

    def message(seq: int, text: str) -> store.Change:
        return lambda db: store.add_message(db, conversation_id, tenant_id, {
            "seq": seq, "sender": "visitor", "text": text, "attachment": None, "client_id": None}, None, utcnow())

    for change in (message(1, "一"), message(2, "二"), message(2, "重复的序号"), message(3, "三")):
        writer.put(change)  # one batch: the third breaks the unique (conversation, seq)
    task = asyncio.ensure_future(writer.run())
    try:
        for _ in range(100):
            with Session(engine) as db:
                texts = list(db.scalars(select(ChatMessage.text).order_by(ChatMessage.seq)))
            if len(texts) == 3:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert texts == ["一", "二", "三"]
