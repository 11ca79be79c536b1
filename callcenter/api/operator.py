"""The operators' API: customer tenants (create with a first admin, quotas, suspend, resume, export,
delete) and their usage per day. Only operators (``require_operator``); the lifecycle itself is
``callcenter.tenancy``, shared with the CLI."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter import tenancy, usage
from callcenter.api.deps import AppContext, get_ctx, get_db, public, require_operator
from callcenter.api.errors import ApiError, invalid
from callcenter.api.pages import WEB
from callcenter.api.recordings import _archive
from callcenter.api.routing import notify_routing_changed
from callcenter.models import Agent, Tenant, utcnow
from callcenter.security import Principal
from callcenter.tenant_export import write_export

router = APIRouter(prefix="/api/operator", tags=["operator"])
page_router = APIRouter(tags=["pages"])

Slug = Annotated[str, Path(min_length=1, max_length=64, description="the tenant's sign-in name")]
Quota = Annotated[int | None, Field(ge=0, le=tenancy.MAX_QUOTA, description="null: no limit")]
MAX_USAGE_DAYS = 366
EXPORT_SPOOL = 16 * 1024 * 1024
"""An export up to this size stays in memory; a larger one goes to a temporary file."""
CHUNK = 256 * 1024
T = TypeVar("T")


class Quotas(BaseModel):
    quota_concurrent_calls: Quota = None
    quota_agents: Quota = None
    quota_recording_mb: Quota = None
    quota_transcription_minutes: Quota = None
    """Minutes of recordings transcribed a calendar month."""


class TenantCreate(Quotas):
    model_config = ConfigDict(extra="forbid")
    slug: str = Field(pattern=tenancy.SLUG_RE.pattern, description="sign-in name, e.g. acme")
    name: str = Field(min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64, description="IANA name; default Asia/Shanghai")


class TenantPatch(Quotas):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)


class TenantView(Quotas):
    id: int
    slug: str
    name: str
    status: str
    timezone: str
    created_at: datetime
    exported_at: datetime | None
    agents: int
    recording_bytes: int
    """Recordings in storage now."""
    calls_in_progress: int | None
    """Cluster-wide, from the node; None where the API runs without one."""
    today: dict[str, Any]
    """The tenant's usage so far today (its time zone): ``usage.DayUsage`` without tenant and day."""


class FirstAdmin(BaseModel):
    username: str
    password: str
    """Shown here only: the database keeps its argon2 hash."""


class TenantCreated(BaseModel):
    tenant: TenantView
    admin: FirstAdmin


def _call(step: Callable[[], T]) -> T:
    """Run a lifecycle step, its refusals as API errors."""
    try:
        return step()
    except tenancy.TenancyError as exc:
        raise ApiError(exc.status, exc.error_id, exc.message) from None


def _actor(principal: Principal) -> tenancy.Actor:
    return tenancy.Actor(principal.user_id, "api")


def _view(db: Session, tenant: Tenant, ctx: AppContext) -> TenantView:
    today = usage.tenant_usage(db, tenant, usage.today(tenant), usage.today(tenant))[0]
    live = ctx.tenant_calls.cluster(tenant.id) if ctx.tenant_calls is not None else None
    return TenantView(
        id=tenant.id, slug=tenant.slug, name=tenant.name, status=tenant.status, timezone=tenant.timezone,
        created_at=tenant.created_at, exported_at=tenant.exported_at,
        agents=db.scalar(select(func.count()).select_from(Agent).where(Agent.tenant_id == tenant.id)) or 0,
        recording_bytes=tenancy.stored_recording_bytes(db, tenant.id), calls_in_progress=live,
        today={k: v for k, v in vars(today).items() if k not in ("tenant", "day")},
        **{name: getattr(tenant, name) for name in tenancy.QUOTA_FIELDS})


def _find(db: Session, slug: str) -> Tenant:
    return _call(lambda: tenancy.find(db, slug))


@router.get("/tenants", response_model=list[TenantView])
def list_tenants(principal: Principal = Depends(require_operator), db: Session = Depends(get_db),
                 ctx: AppContext = Depends(get_ctx)) -> list[TenantView]:
    """Every customer tenant with its status, quotas, today's usage and calls in progress."""
    return [_view(db, t, ctx) for t in tenancy.customers(db)]


@router.post("/tenants", response_model=TenantCreated, status_code=201)
def create_tenant(body: TenantCreate, principal: Principal = Depends(require_operator),
                  db: Session = Depends(get_db), ctx: AppContext = Depends(get_ctx)) -> TenantCreated:
    """A tenant and its first admin (user ``admin``), whose password is in this reply only.
    409 ``tenant-slug-taken``, ``tenant-name-taken``, ``slug-reserved``; 422 ``invalid-timezone``."""
    quotas = body.model_dump(include=set(tenancy.QUOTA_FIELDS))
    tenant, password = _call(lambda: tenancy.create(db, body.slug, body.name, quotas, _actor(principal),
                                                    timezone=body.timezone))
    db.commit()
    notify_routing_changed(ctx)
    return TenantCreated(tenant=_view(db, tenant, ctx), admin=FirstAdmin(username=tenancy.FIRST_ADMIN,
                                                                          password=password))


@router.get("/tenants/{slug}", response_model=TenantView)
def get_tenant(slug: Slug, principal: Principal = Depends(require_operator), db: Session = Depends(get_db),
               ctx: AppContext = Depends(get_ctx)) -> TenantView:
    return _view(db, _find(db, slug), ctx)


@router.patch("/tenants/{slug}", response_model=TenantView)
def patch_tenant(slug: Slug, body: TenantPatch, principal: Principal = Depends(require_operator),
                 db: Session = Depends(get_db), ctx: AppContext = Depends(get_ctx)) -> TenantView:
    """Rename the tenant or change quotas (a quota sent as null: no limit; one left out: unchanged).
    The concurrent-calls quota applies to the next call on every node."""
    tenant = _find(db, slug)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name", "") is None:
        raise invalid("name: a tenant keeps a name")
    _call(lambda: tenancy.update(db, tenant, changes, _actor(principal)))
    db.commit()
    notify_routing_changed(ctx)
    return _view(db, tenant, ctx)


@router.post("/tenants/{slug}/suspend", response_model=TenantView)
def suspend_tenant(slug: Slug, principal: Principal = Depends(require_operator), db: Session = Depends(get_db),
                   ctx: AppContext = Depends(get_ctx)) -> TenantView:
    """New calls refused (cause ``suspended``), sign-ins refused (403 ``tenant-suspended``), sessions
    ended; calls in progress go on; the data is kept."""
    tenant = tenancy.suspend(db, _find(db, slug), _actor(principal))
    db.commit()
    notify_routing_changed(ctx)
    return _view(db, tenant, ctx)


@router.post("/tenants/{slug}/resume", response_model=TenantView)
def resume_tenant(slug: Slug, principal: Principal = Depends(require_operator), db: Session = Depends(get_db),
                  ctx: AppContext = Depends(get_ctx)) -> TenantView:
    tenant = tenancy.resume(db, _find(db, slug), _actor(principal))
    db.commit()
    notify_routing_changed(ctx)
    return _view(db, tenant, ctx)


@router.get("/tenants/{slug}/export", response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}, "description": "the tenant's data as a zip"}})
def export_tenant(slug: Slug, principal: Principal = Depends(require_operator), db: Session = Depends(get_db),
                  ctx: AppContext = Depends(get_ctx)) -> StreamingResponse:
    """Every record, trace, recording (decrypted), transcript and the configuration as a zip
    (layout: ``callcenter.tenant_export``); the tenant may be deleted after it."""
    tenant = _find(db, slug)
    storage, keys = _archive(ctx)
    spool = tempfile.SpooledTemporaryFile(max_size=EXPORT_SPOOL)
    try:
        counts = write_export(db, tenant, spool, storage, lambda: keys.get(tenant.id), ctx.settings.data_dir)
        tenant.exported_at = utcnow()
        tenancy.audit(db, _actor(principal), "tenant.export", f"tenant:{slug}", counts)
        db.commit()
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise

    def body() -> Iterator[bytes]:
        with spool:
            while block := spool.read(CHUNK):
                yield block

    stamp = tenant.exported_at.strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(body(), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="tenant-{slug}-{stamp}.zip"', "Content-Length": str(size),
        "Cache-Control": "private, no-store"})


@router.delete("/tenants/{slug}", status_code=204)
def delete_tenant(slug: Slug, principal: Principal = Depends(require_operator), db: Session = Depends(get_db),
                  ctx: AppContext = Depends(get_ctx)) -> Response:
    """Every row and file of the tenant, for good; 409 ``export-required`` before an export."""
    tenant = _find(db, slug)
    tenant_id = tenant.id
    settings = ctx.settings
    _call(lambda: tenancy.delete_tenant(db, tenant, settings.data_dir, settings.effective_recordings_dir,
                                        _actor(principal)))
    db.commit()
    _archive(ctx)[1].forget(tenant_id)
    notify_routing_changed(ctx)
    ctx.on_acd_changed()
    return Response(status_code=204)


@router.get("/usage", responses={200: {"content": {"text/csv": {}}, "description": "JSON rows, or CSV"}})
def get_usage(principal: Principal = Depends(require_operator), db: Session = Depends(get_db),
              from_: date | None = Query(None, alias="from", description="first day (default: 30 days ago)"),
              to: date | None = Query(None, description="last day, included (default: today)"),
              tenant: str | None = Query(None, max_length=64, description="only this tenant (slug)"),
              format: Literal["json", "csv"] = "json") -> Any:
    """Usage per tenant per day, in each tenant's time zone: calls (and those refused for quota or
    suspension), inbound and outbound minutes, peak concurrent calls, recording bytes and
    transcription minutes. ``format=csv`` for billing."""
    tenants = [_find(db, tenant)] if tenant is not None else tenancy.customers(db)
    last = to or max((usage.today(t) for t in tenants), default=utcnow().date())
    first = from_ or last - timedelta(days=30)
    if first > last or (last - first).days >= MAX_USAGE_DAYS or first.year < 1971 or last.year > 9998:
        raise invalid(f"from..to: at most {MAX_USAGE_DAYS} days, from not after to")
    rows = [row for t in tenants for row in usage.tenant_usage(db, t, first, last)]
    if format == "csv":
        return Response(usage.to_csv(rows), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="usage-{first}-{last}.csv"'})
    return [{**vars(r), "day": r.day.isoformat()} for r in rows]


@page_router.get("/operator", dependencies=[Depends(public)], include_in_schema=False)
def operator_page() -> FileResponse:
    """The operator's page; it signs in through the page shell (the page itself holds no data)."""
    return FileResponse(WEB / "operator.html", headers={"Cache-Control": "no-cache"})
