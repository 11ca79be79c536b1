"""What the tenant's admin gives the chat: the FAQ bot's question-and-answer pairs (and a box to
try the bot on them) and the agents' canned replies (inserted in a chat by their short code).

Admins write both; every user of the tenant reads the canned replies (agents use them), only
admins the pairs. Other tenants' ids are 404. Every write is audited.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter import chat_store
from callcenter.api.audit import record_audit
from callcenter.api.bounds import DbId, Name
from callcenter.api.deps import ALL_ROLES, get_db, get_owned, require_roles
from callcenter.api.errors import ApiError, conflict
from callcenter.models import AcdQueue, CannedReply, FaqPair
from callcenter.security import Principal
from chat.faq import FaqBot, FaqEntry, FaqIndex

router = APIRouter(prefix="/api/faq", tags=["chat"])
canned_router = APIRouter(prefix="/api/canned-replies", tags=["chat"])
admin = require_roles("admin")
anyone = require_roles(*ALL_ROLES)

MAX_QUESTION = 500
MAX_ALTERNATIVES = 50
MAX_ANSWER = 4000
MAX_CANNED_TEXT = 4000
MAX_PAIRS = 1000
"""Pairs per tenant: the bot builds its index from all of a queue's pairs for each conversation."""
MAX_CANNED = 1000
CANNED_CODE = r"^[A-Za-z0-9_-]{1,32}$"

Phrasing = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION)]


class FaqIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    question: Phrasing
    alternatives: list[Phrasing] = Field(default_factory=list, max_length=MAX_ALTERNATIVES,
                                         description="other ways to ask the question")
    answer: str = Field(min_length=1, max_length=MAX_ANSWER)
    queue: Name | None = Field(default=None, description="only this queue's bot uses it; null: every queue's")


class TryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_QUESTION)
    queue: Name | None = Field(default=None, description="try the bot of this queue; null: the tenant-wide pairs")
    locale: str = Field(default="zh-CN", pattern=r"^[A-Za-z]{2}(-[A-Za-z]{2})?$")


class CannedIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(pattern=CANNED_CODE, description="what the agent types after /")
    text: str = Field(min_length=1, max_length=MAX_CANNED_TEXT)


def _faq_out(row: FaqPair) -> dict[str, Any]:
    return {"id": row.id, "question": row.question, "alternatives": list(row.alternatives or []),
            "answer": row.answer, "queue": row.queue}


def _canned_out(row: CannedReply) -> dict[str, Any]:
    return {"id": row.id, "code": row.code, "text": row.text}


def _check_queue(db: Session, tenant_id: int, queue: str | None) -> None:
    if queue is not None and db.scalar(select(AcdQueue.id).where(AcdQueue.tenant_id == tenant_id,
                                                                 AcdQueue.name == queue)) is None:
        raise ApiError(422, "no-such-queue", f"no queue {queue}", target=queue)


def _count(db: Session, model: type[FaqPair | CannedReply], tenant_id: int) -> int:
    return db.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant_id)) or 0


# -- Q&A pairs ------------------------------------------------------------------------------------
@router.get("")
def list_pairs(principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    """The tenant's Q&A pairs, oldest first."""
    rows = db.scalars(select(FaqPair).where(FaqPair.tenant_id == principal.tenant_id).order_by(FaqPair.id))
    return [_faq_out(row) for row in rows]


@router.post("", status_code=201)
def add_pair(body: FaqIn, principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> dict[str, Any]:
    _check_queue(db, principal.tenant_id, body.queue)
    if _count(db, FaqPair, principal.tenant_id) >= MAX_PAIRS:
        raise ApiError(409, "too-many-faq-pairs", f"a tenant keeps at most {MAX_PAIRS} Q&A pairs", limit=MAX_PAIRS)
    row = FaqPair(tenant_id=principal.tenant_id, **body.model_dump())
    db.add(row)
    db.flush()
    record_audit(db, principal, "faq.create", f"faq:{row.id}", {"question": row.question, "queue": row.queue})
    db.commit()
    return _faq_out(row)


@router.post("/try")
def try_bot(body: TryIn, principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> dict[str, Any]:
    """What the bot of ``queue`` would answer to ``text`` as a visitor's first question (with
    ``confidence``: how surely its best pair answers, 0..1). Nothing is stored."""
    where = FaqPair.tenant_id == principal.tenant_id
    pairs = (chat_store.faq_pairs(db, principal.tenant_id, body.queue) if body.queue is not None
             else db.scalars(select(FaqPair).where(where, FaqPair.queue.is_(None)).order_by(FaqPair.id)))
    index = FaqIndex.build(FaqEntry(p.id, p.question, tuple(p.alternatives or ()), p.answer) for p in pairs)
    return asdict(FaqBot(index, body.locale).reply(body.text))


@router.put("/{pair_id}")
def put_pair(pair_id: DbId, body: FaqIn, principal: Principal = Depends(admin),
             db: Session = Depends(get_db)) -> dict[str, Any]:
    row = get_owned(db, FaqPair, pair_id, principal, "faq")
    _check_queue(db, principal.tenant_id, body.queue)
    for key, value in body.model_dump().items():
        setattr(row, key, value)
    record_audit(db, principal, "faq.update", f"faq:{row.id}", {"question": row.question, "queue": row.queue})
    db.commit()
    return _faq_out(row)


@router.delete("/{pair_id}", status_code=204)
def delete_pair(pair_id: DbId, principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> Response:
    row = get_owned(db, FaqPair, pair_id, principal, "faq")
    record_audit(db, principal, "faq.delete", f"faq:{row.id}", {"question": row.question})
    db.delete(row)
    db.commit()
    return Response(status_code=204)


# -- canned replies -------------------------------------------------------------------------------
@canned_router.get("")
def list_canned(principal: Principal = Depends(anyone), db: Session = Depends(get_db)) -> list[dict[str, Any]]:
    """The tenant's canned replies by code."""
    rows = db.scalars(select(CannedReply).where(CannedReply.tenant_id == principal.tenant_id)
                      .order_by(CannedReply.code))
    return [_canned_out(row) for row in rows]


def _taken(code: str) -> ApiError:
    return conflict("canned-reply-exists", f"a canned reply with code {code} exists")


def _code_free(db: Session, tenant_id: int, code: str, reply_id: int | None = None) -> None:
    taken = db.scalar(select(CannedReply.id).where(CannedReply.tenant_id == tenant_id, CannedReply.code == code))
    if taken is not None and taken != reply_id:
        raise _taken(code)


def _commit_canned(db: Session, principal: Principal, action: str, row: CannedReply) -> None:
    """Audit and commit a new or changed reply; a code another request took meanwhile is 409 too."""
    code = row.code
    try:
        db.flush()
        record_audit(db, principal, action, f"canned_reply:{row.id}", {"code": code})
        db.commit()
    except IntegrityError:
        db.rollback()
        raise _taken(code) from None


@canned_router.post("", status_code=201)
def add_canned(body: CannedIn, principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> dict[str, Any]:
    _code_free(db, principal.tenant_id, body.code)
    if _count(db, CannedReply, principal.tenant_id) >= MAX_CANNED:
        raise ApiError(409, "too-many-canned-replies", f"a tenant keeps at most {MAX_CANNED} canned replies",
                       limit=MAX_CANNED)
    row = CannedReply(tenant_id=principal.tenant_id, code=body.code, text=body.text)
    db.add(row)
    _commit_canned(db, principal, "canned_reply.create", row)
    return _canned_out(row)


@canned_router.put("/{reply_id}")
def put_canned(reply_id: DbId, body: CannedIn, principal: Principal = Depends(admin),
               db: Session = Depends(get_db)) -> dict[str, Any]:
    row = get_owned(db, CannedReply, reply_id, principal, "canned-reply")
    _code_free(db, principal.tenant_id, body.code, row.id)
    row.code, row.text = body.code, body.text
    _commit_canned(db, principal, "canned_reply.update", row)
    return _canned_out(row)


@canned_router.delete("/{reply_id}", status_code=204)
def delete_canned(reply_id: DbId, principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> Response:
    row = get_owned(db, CannedReply, reply_id, principal, "canned-reply")
    record_audit(db, principal, "canned_reply.delete", f"canned_reply:{row.id}", {"code": row.code})
    db.delete(row)
    db.commit()
    return Response(status_code=204)
