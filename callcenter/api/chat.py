"""Web chat over HTTP: the widget's requests and socket (public, by widget key and conversation
token), attachments, the offline messages, and the tenant's chat settings.

The visitor's requests are served by the node's ``ChatService`` (``callcenter.chat_service``):
conversations live in its memory, on the node hosting the tenant. In a cluster any node takes
the widget's requests: one for a tenant hosted elsewhere is passed to its owner (HTTP forwarded,
the socket relayed like the agents' sockets, ``socket_proxy.py``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request, UploadFile, WebSocket
import httpx
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from callcenter.api.audit import record_audit
from callcenter.api.bounds import DbId
from callcenter.api.browser_security import origin_allowed
from callcenter.api.deps import AppContext, current_principal, get_ctx, get_db, public, require_roles
from callcenter.api.errors import ApiError, not_found
from callcenter.api.socket_proxy import relayed
from callcenter.handover import NodeAddress
from callcenter.chat_service import ChatError, ChatService, LiveChat
from callcenter.chat_settings import ChatSettings, chat_settings, ensure_widget_key, new_widget_key, save_chat_settings
from callcenter.models import Agent, ChatAttachment, ChatConversation, OfflineMessage, Role, Tenant, User, utcnow
from callcenter.security import Principal
from chat.attachments import AttachmentError

router = APIRouter(prefix="/api/chat", tags=["chat"])

admin = require_roles(Role.ADMIN.value)
staff = require_roles(Role.ADMIN.value, Role.SUPERVISOR.value)
READ_ATTACHMENT = (Role.AGENT.value, Role.SUPERVISOR.value, Role.QA.value, Role.ADMIN.value)
MAX_UPLOAD = 10 * 1024 * 1024


class OpenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=64)
    visitor_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{8,64}$")
    name: str | None = Field(default=None, max_length=100)
    phone: str = Field(default="", pattern=r"^[0-9+\- ]{0,32}$")
    question: str | None = Field(default=None, max_length=2000)
    page_url: str = Field(default="", max_length=500)
    locale: str = Field(default="zh-CN", pattern=r"^(zh-CN|en)$")


class OfflineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=64)
    name: str = Field(default="", max_length=100)
    phone: str = Field(default="", pattern=r"^[0-9+\- ]{0,32}$")
    email: str = Field(default="", max_length=200)
    message: str = Field(min_length=1, max_length=4000)
    page_url: str = Field(default="", max_length=500)


class SettingsIn(ChatSettings):
    """The settings an admin sends; an empty ``widget_key`` makes a new one (the old stops working)."""


def _chats(ctx: AppContext) -> ChatService:
    if ctx.chats is None:
        raise ApiError(503, "chat-unavailable", "web chat runs on a node with its ACD")
    chats: ChatService = ctx.chats
    return chats


def _refused(exc: ChatError) -> ApiError:
    headers = {"Retry-After": "60"} if exc.status == 429 else None
    return ApiError(exc.status, exc.error_id, str(exc), headers)


def _source(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


async def _elsewhere(ctx: AppContext, tenant_id: int, request: Request) -> NodeAddress | None:
    """The node hosting ``tenant_id`` when that is not this one (a cluster), else None. A request
    another node forwarded here is never sent on (the two may disagree for a moment during a
    takeover): 503, the widget tries again."""
    owners = ctx.owners
    if owners is None or owners.local(tenant_id):
        return None
    owner: NodeAddress | None = await owners.owner(tenant_id)
    if owner is None or not owner.http or request.headers.get(FORWARDED_MARK):
        raise ApiError(503, "tenant-moving", "no node hosts this chat right now; try again in a moment",
                       {"Retry-After": "1"})
    return owner


FORWARDED_HEADERS = ("content-type", "authorization", "cookie")
FORWARDED_MARK = "x-callcenter-forwarded"


async def _forward(request: Request, owner: NodeAddress, body: bytes | None = None) -> Response:
    """The same request, answered by ``owner`` (its answer passed back as it is)."""
    headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS}
    headers[FORWARDED_MARK] = "1"
    url = owner.http.rstrip("/") + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    async with httpx.AsyncClient(timeout=30) as http:
        try:
            reply = await http.request(request.method, url, headers=headers,
                                       content=body if body is not None else await request.body())
        except httpx.HTTPError as exc:
            raise ApiError(503, "tenant-moving", f"the node hosting this chat did not answer ({exc}); try again",
                           {"Retry-After": "1"}) from exc
    return Response(reply.content, status_code=reply.status_code, media_type=reply.headers.get("content-type"))


def _conversation_tenant(ctx: AppContext, conversation_id: str) -> int | None:
    with ctx.sessions() as db:
        row = db.get(ChatConversation, conversation_id[:36])
        return row.tenant_id if row is not None else None


@router.get("/widget/{key}", dependencies=[Depends(public)])
async def widget(key: Annotated[str, Path(max_length=64)], ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """What the widget shows before a chat: the tenant's name, whether anyone answers now, the bot."""
    chats = _chats(ctx)
    try:
        return await run_in_threadpool(chats.widget_info, key)
    except ChatError as exc:
        raise _refused(exc) from exc


@router.post("/conversations", dependencies=[Depends(public)], status_code=201)
async def open_conversation(body: OpenIn, request: Request, ctx: AppContext = Depends(get_ctx)) -> Any:
    """A new conversation (name and question given), or the visitor's open one (only the key and
    ``visitor_id``: 200, or 404 ``no-open-conversation``). 409 ``chat-offline``: nobody can take it."""
    chats = _chats(ctx)
    try:
        tenant, _ = await run_in_threadpool(chats.widget, body.key)
        if (owner := await _elsewhere(ctx, tenant.id, request)) is not None:
            return await _forward(request, owner, body.model_dump_json(exclude_unset=True).encode())
        if body.question is None:
            if body.visitor_id is None:
                raise ChatError("give the question, or the visitor_id of an open conversation", "invalid-request")
            return JSONResponse(chats.find_open(tenant.id, body.visitor_id))
        chats.admit(_source(request))
        question = body.question.strip()
        if not question:
            raise ChatError("the question must not be empty", "invalid-request")
        return await chats.open(body.key, body.visitor_id, (body.name or "").strip(), body.phone.strip(), question,
                                body.page_url, body.locale)
    except ChatError as exc:
        raise _refused(exc) from exc


@router.websocket("/socket")
async def visitor_socket(ws: WebSocket, token: str = Query("", max_length=200),
                         after: int = Query(0, ge=0, le=10_000_000)) -> None:
    """The visitor's socket (contract in README "Web chat"): messages after ``after``, then live."""
    ctx: AppContext = ws.app.state.ctx
    if not origin_allowed(ws, ctx.settings):
        await ws.close(code=1008)
        return
    if ctx.chats is None:
        await ws.accept()
        await ws.close(code=1013, reason="web chat is not served by this node")
        return
    if ctx.chats.chat_of_token(token) is None and ctx.owners is not None:
        tenant_id = await run_in_threadpool(_conversation_tenant, ctx, token.partition(".")[0])
        if tenant_id is not None and await relayed(ws, tenant_id):
            return
    await ctx.chats.serve_visitor(ws, token, after)


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def _agent_id(db: Session, principal: Principal) -> str | None:
    agent_id = db.scalar(select(Agent.id).where(Agent.user_id == principal.user_id))
    return str(agent_id) if agent_id is not None else None


@router.post("/attachments", dependencies=[Depends(public)], status_code=201)
async def upload(request: Request, file: UploadFile, conversation_id: str | None = Form(default=None, max_length=36),
                 ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """A file for a chat: the visitor's (``Authorization: Bearer <conversation token>``) or its agent's
    (signed in, ``conversation_id``). Images and PDF only (415), size-capped (413)."""
    chats = _chats(ctx)
    token = _bearer(request)
    chat = chats.chat_of_token(token)
    if chat is None:
        chat_id = token.partition(".")[0] if "." in token else conversation_id or ""
        tenant_id = await run_in_threadpool(_conversation_tenant, ctx, chat_id) if ctx.owners is not None else None
        if tenant_id is not None and (owner := await _elsewhere(ctx, tenant_id, request)) is not None:
            return await _forward(request, owner)  # type: ignore[return-value]
        chat = await _agents_chat(request, ctx, chats, conversation_id)
    data = await file.read(MAX_UPLOAD + 1)
    try:
        return await chats.attach(chat, file.filename or "file", data)
    except AttachmentError as exc:
        raise ApiError(exc.status, exc.error_id, str(exc)) from exc


async def _agents_chat(request: Request, ctx: AppContext, chats: ChatService, conversation_id: str | None) -> LiveChat:
    principal, agent_id = await run_in_threadpool(_signed_in_agent, request, ctx)
    chat = chats.chats.get(conversation_id or "")
    if chat is None or chat.tenant_id != principal.tenant_id or agent_id is None or chat.agent_id != agent_id:
        raise not_found("chat")
    return chat


def _signed_in_agent(request: Request, ctx: AppContext) -> tuple[Principal, str | None]:
    with ctx.sessions() as db:
        principal = current_principal(request, db)
        return principal, _agent_id(db, principal)


@router.get("/attachments/{attachment_id}", dependencies=[Depends(public)])
async def download(attachment_id: Annotated[str, Path(max_length=36)], request: Request, token: str = Query("", max_length=200),
                   ctx: AppContext = Depends(get_ctx)) -> Response:
    """A chat's file: for the visitor of its conversation (``token``), its agent, or the tenant's
    supervisors, QA staff and admins (kept on the node hosting the tenant)."""
    tenant_id = await run_in_threadpool(_attachment_tenant, ctx, attachment_id)
    if tenant_id is not None and (owner := await _elsewhere(ctx, tenant_id, request)) is not None:
        return await _forward(request, owner)
    return await run_in_threadpool(_download, ctx, attachment_id, request, token)


def _attachment_tenant(ctx: AppContext, attachment_id: str) -> int | None:
    with ctx.sessions() as db:
        row = db.get(ChatAttachment, attachment_id[:36])
        return row.tenant_id if row is not None else None


def _download(ctx: AppContext, attachment_id: str, request: Request, token: str) -> FileResponse:
    with ctx.sessions() as db:
        return _checked_file(db, ctx, attachment_id, request, token)


def _checked_file(db: Session, ctx: AppContext, attachment_id: str, request: Request, token: str) -> FileResponse:
    row = db.get(ChatAttachment, attachment_id[:36])
    if row is None:
        raise not_found("attachment")
    visitor = ctx.chats.chat_of_token(token) if ctx.chats is not None and token else None
    if visitor is None or visitor.id != row.conversation_id:
        principal = current_principal(request, db)
        conversation = db.get(ChatConversation, row.conversation_id)
        mine = principal.role != Role.AGENT.value or (
            conversation is not None and str(conversation.agent_id) == _agent_id(db, principal))
        if principal.tenant_id != row.tenant_id or principal.role not in READ_ATTACHMENT or not mine:
            raise not_found("attachment")
    path = _chats(ctx).attachments_dir / str(row.tenant_id) / row.id
    if not path.is_file():
        raise not_found("attachment")
    disposition = "inline" if row.content_type.startswith("image/") else "attachment"
    return FileResponse(path, media_type=row.content_type, filename=row.filename, content_disposition_type=disposition,
                        headers={"Cache-Control": "private, max-age=3600"})


@router.post("/offline", dependencies=[Depends(public)], status_code=201)
def leave_message(body: OfflineIn, request: Request, ctx: AppContext = Depends(get_ctx),
                  db: Session = Depends(get_db)) -> dict[str, Any]:
    """What a visitor leaves when nobody can chat, for the tenant to follow up."""
    chats = _chats(ctx)
    try:
        tenant, _ = chats.widget(body.key)
        chats.admit(_source(request))
    except ChatError as exc:
        raise _refused(exc) from exc
    row = OfflineMessage(tenant_id=tenant.id, name=body.name.strip(), phone=body.phone.strip(),
                         email=body.email.strip(), message=body.message.strip(), page_url=body.page_url)
    db.add(row)
    db.commit()
    return {"id": row.id}


@router.get("/offline")
def offline_messages(principal: Principal = Depends(staff), db: Session = Depends(get_db),
                     handled: bool | None = Query(None), limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    query = select(OfflineMessage).where(OfflineMessage.tenant_id == principal.tenant_id)
    if handled is not None:
        query = query.where(OfflineMessage.handled_at.is_not(None) if handled else OfflineMessage.handled_at.is_(None))
    rows = db.scalars(query.order_by(OfflineMessage.id.desc()).limit(limit)).all()
    names = dict(db.execute(select(User.id, User.username).where(User.tenant_id == principal.tenant_id)).tuples().all())
    return {"messages": [{"id": r.id, "name": r.name, "phone": r.phone, "email": r.email, "message": r.message,
                          "page_url": r.page_url, "created_at": r.created_at.isoformat(),
                          "handled_at": r.handled_at.isoformat() if r.handled_at else None,
                          "handled_by": names.get(r.handled_by) if r.handled_by else None} for r in rows]}


@router.post("/offline/{message_id}/handled")
def offline_handled(message_id: DbId, principal: Principal = Depends(staff),
                    db: Session = Depends(get_db)) -> dict[str, Any]:
    row = db.get(OfflineMessage, message_id)
    if row is None or row.tenant_id != principal.tenant_id:
        raise not_found("offline-message")
    row.handled_at, row.handled_by = utcnow(), principal.user_id
    db.commit()
    return {"id": row.id, "handled_at": row.handled_at.isoformat()}


@router.get("/settings")
def get_settings(principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> dict[str, Any]:
    """The tenant's chat settings; the widget key is made on first use."""
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    settings = ensure_widget_key(tenant)
    db.commit()
    return settings.model_dump()


@router.put("/settings")
def put_settings(body: SettingsIn, principal: Principal = Depends(admin), ctx: AppContext = Depends(get_ctx),
                 db: Session = Depends(get_db)) -> dict[str, Any]:
    """Change the settings; the widget key is the node's to make: an empty one asks for a new key
    (the old one stops working at once), any other value keeps the current key."""
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    old = chat_settings(tenant)
    settings = ChatSettings(**body.model_dump())
    settings.widget_key = old.widget_key if body.widget_key and old.widget_key else new_widget_key()
    save_chat_settings(tenant, settings)
    record_audit(db, principal, "chat.settings", f"tenant:{tenant.id}",
                 {k: v for k, v in settings.model_dump().items() if k != "widget_key"})
    db.commit()
    ctx.on_acd_changed()  # capacities and the calls-while-chatting policy are the ACD's
    return chat_settings(tenant).model_dump()
