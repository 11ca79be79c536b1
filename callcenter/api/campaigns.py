"""Outbound campaigns (admins and supervisors): create, import contacts from CSV, start, pause,
resume, stop, follow them live and report; and the tenant's do-not-call list.

The calls themselves are the node's (``callcenter.campaign_service``): it runs every campaign
whose status is ``running`` on the node hosting the tenant's ACD, so the status written here is
the whole command.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from callcenter import campaign_report
from callcenter.api.audit import record_audit
from callcenter.api.bounds import DbId
from callcenter.api.deps import AppContext, get_ctx, get_db, get_owned, require_roles
from callcenter.api.errors import ApiError, conflict, validation_details
from callcenter.campaign_store import Figures, figures
from callcenter.models import (
    AcdQueue,
    Campaign,
    CampaignContact,
    DoNotCall,
    Flow,
    Number,
    Tenant,
    utcnow,
)
from callcenter.security import Principal
from campaigns.contacts import (
    ContactsError,
    PhoneError,
    decode_csv,
    normalise_phone,
    parse_contacts,
)
from campaigns.outcomes import TRANSITIONS
from campaigns.settings import CampaignSettings
from sip_bridge.routing import prefix_allows

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])
dnc_router = APIRouter(prefix="/api/dnc", tags=["campaigns"])
staff = require_roles("admin", "supervisor")

NAME = r"^[A-Za-z0-9\u4e00-\u9fff][A-Za-z0-9_.\- \u4e00-\u9fff]{0,63}$"
Mode = Literal["preview", "progressive", "predictive", "agentless"]
MAX_CSV_BYTES = 20 * 1024 * 1024
MAX_DNC_NUMBERS = 10_000


class CampaignIn(CampaignSettings):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    mode: Mode
    queue: str | None = Field(default=None, max_length=64, description="whose agents take the calls")
    flow: str | None = Field(default=None, max_length=64, description="what an agentless call runs")
    caller_id: str | None = Field(default=None, max_length=32, description="one of the tenant's numbers")


class CampaignPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, pattern=NAME)
    mode: Mode | None = None
    queue: str | None = Field(default=None, max_length=64)
    flow: str | None = Field(default=None, max_length=64)
    caller_id: str | None = Field(default=None, max_length=32)
    settings: dict[str, Any] | None = Field(default=None, description="CampaignSettings' fields to change")


class DncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    numbers: list[Annotated[str, Field(max_length=40)]] = Field(min_length=1, max_length=MAX_DNC_NUMBERS)
    note: str = Field(default="", max_length=200)


def _settings_fields() -> set[str]:
    return set(CampaignSettings.model_fields)


def _check(db: Session, tenant_id: int, mode: str, queue: str | None, flow: str | None,
           caller_id: str | None) -> None:
    """The campaign's queue, flow and caller ID exist in the tenant (422 with the field's error id)."""
    if mode == "agentless":
        if not flow:
            raise ApiError(422, "flow-required", "an agentless campaign runs a flow: name it")
        if db.scalar(select(Flow.id).where(Flow.tenant_id == tenant_id, Flow.name == flow)) is None:
            raise ApiError(422, "no-such-flow", f"no flow {flow}", target=flow)
    else:
        if not queue:
            raise ApiError(422, "queue-required", "the campaign's agents are a queue's: name it")
        if db.scalar(select(AcdQueue.id).where(AcdQueue.tenant_id == tenant_id, AcdQueue.name == queue)) is None:
            raise ApiError(422, "no-such-queue", f"no queue {queue}", target=queue)
    if caller_id is not None and db.scalar(select(Number.id).where(Number.tenant_id == tenant_id,
                                                                   Number.number == caller_id)) is None:
        raise ApiError(422, "bad-caller-id", f"{caller_id} is not one of this tenant's numbers", number=caller_id)


def _day_start(tenant: Tenant) -> datetime:
    """Midnight today in the tenant's time zone (the figures are today's)."""
    local = utcnow().astimezone(ZoneInfo(tenant.timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _live(ctx: AppContext, campaign_id: int) -> dict[str, int]:
    service = ctx.campaigns
    return service.live(campaign_id) if service is not None else {"lines": 0, "agents_busy": 0}


def _out(ctx: AppContext, c: Campaign, figs: Figures) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "mode": c.mode, "status": c.status, "queue": c.queue, "flow": c.flow,
            "caller_id": c.caller_id, **CampaignSettings.model_validate(c.settings).model_dump(),
            "created_at": c.created_at.isoformat(), "started_at": c.started_at.isoformat() if c.started_at else None,
            "stats": {**figs.as_dict(), **_live(ctx, c.id)}}


def _one(ctx: AppContext, db: Session, c: Campaign, principal: Principal) -> dict[str, Any]:
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    return _out(ctx, c, figures(db, [c.id], _day_start(tenant))[c.id])


@router.get("")
def list_campaigns(principal: Principal = Depends(staff), db: Session = Depends(get_db),
                   ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    rows = db.scalars(select(Campaign).where(Campaign.tenant_id == principal.tenant_id)
                      .order_by(Campaign.created_at.desc(), Campaign.id.desc())).all()
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    figs = figures(db, [c.id for c in rows], _day_start(tenant))
    return {"campaigns": [_out(ctx, c, figs[c.id]) for c in rows]}


@router.get("/choices")
def campaign_choices(principal: Principal = Depends(staff), db: Session = Depends(get_db)) -> dict[str, list[str]]:
    """What a campaign may name: the tenant's queues, flows and numbers (its caller IDs); supervisors
    may not read those lists whole, but may pick from them here."""
    tid = principal.tenant_id
    return {"queues": list(db.scalars(select(AcdQueue.name).where(AcdQueue.tenant_id == tid).order_by(AcdQueue.name))),
            "flows": list(db.scalars(select(Flow.name).where(Flow.tenant_id == tid).order_by(Flow.name))),
            "numbers": list(db.scalars(select(Number.number).where(Number.tenant_id == tid).order_by(Number.number)))}


@router.get("/live")
def live_campaigns(principal: Principal = Depends(staff), db: Session = Depends(get_db),
                   ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Today's figures of the running and paused campaigns (the wallboard's tiles)."""
    rows = db.scalars(select(Campaign).where(Campaign.tenant_id == principal.tenant_id,
                                             Campaign.status.in_(("running", "paused"))).order_by(Campaign.name)).all()
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    figs = figures(db, [c.id for c in rows], _day_start(tenant))
    return {"campaigns": [{"id": c.id, "name": c.name, "mode": c.mode, "status": c.status,
                           "max_abandon_rate": CampaignSettings.model_validate(c.settings).max_abandon_rate,
                           **{k: v for k, v in figs[c.id].as_dict().items()
                              if k in ("dialed", "persons", "machines", "abandoned", "abandon_rate", "left")},
                           **_live(ctx, c.id)} for c in rows]}


@router.post("", status_code=201)
def create_campaign(body: CampaignIn, principal: Principal = Depends(staff), db: Session = Depends(get_db),
                    ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    if db.scalar(select(Campaign.id).where(Campaign.tenant_id == principal.tenant_id,
                                           Campaign.name == body.name)) is not None:
        raise conflict("campaign-exists", f"a campaign named {body.name} exists")
    _check(db, principal.tenant_id, body.mode, body.queue, body.flow, body.caller_id)
    settings = body.model_dump(include=_settings_fields())
    campaign = Campaign(tenant_id=principal.tenant_id, name=body.name, mode=body.mode, queue=body.queue,
                        flow=body.flow, caller_id=body.caller_id, settings=settings, status="draft")
    db.add(campaign)
    db.flush()
    record_audit(db, principal, "campaign.create", f"campaign:{campaign.id}", {"name": body.name, "mode": body.mode})
    db.commit()
    return _one(ctx, db, campaign, principal)


@router.get("/{campaign_id}")
def get_campaign(campaign_id: DbId, principal: Principal = Depends(staff), db: Session = Depends(get_db),
                 ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    return _one(ctx, db, get_owned(db, Campaign, campaign_id, principal, "campaign"), principal)


@router.patch("/{campaign_id}")
def patch_campaign(campaign_id: DbId, body: CampaignPatch, principal: Principal = Depends(staff),
                   db: Session = Depends(get_db), ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Change a campaign; a running one takes the new settings on its next call."""
    campaign = get_owned(db, Campaign, campaign_id, principal, "campaign")
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name") and changes["name"] != campaign.name and db.scalar(select(Campaign.id).where(
            Campaign.tenant_id == principal.tenant_id, Campaign.name == changes["name"])) is not None:
        raise conflict("campaign-exists", f"a campaign named {changes['name']} exists")
    if "mode" in changes and changes["mode"] != campaign.mode and campaign.status in ("running", "paused"):
        raise conflict("campaign-running", "stop the campaign before changing its mode")
    for key in ("name", "mode", "queue", "flow", "caller_id"):
        if key in changes and (changes[key] is not None or key in ("queue", "flow", "caller_id")):
            setattr(campaign, key, changes[key])
    _check(db, principal.tenant_id, campaign.mode, campaign.queue, campaign.flow, campaign.caller_id)
    if changes.get("settings") is not None:
        try:
            merged = CampaignSettings.model_validate({**campaign.settings, **changes["settings"]})
        except ValidationError as exc:  # each next to its field on the page, as a POST's are
            raise ApiError(422, "invalid-request", "request validation failed",
                           details=validation_details(exc.errors(), ["body", "settings"])) from None
        campaign.settings = merged.model_dump()
    record_audit(db, principal, "campaign.update", f"campaign:{campaign.id}", changes)
    db.commit()
    return _one(ctx, db, campaign, principal)


@router.delete("/{campaign_id}", status_code=204)
def delete_campaign(campaign_id: DbId, principal: Principal = Depends(staff), db: Session = Depends(get_db)) -> Response:
    campaign = get_owned(db, Campaign, campaign_id, principal, "campaign")
    if campaign.status in ("running", "paused"):
        raise conflict("campaign-running", "stop the campaign before deleting it")
    record_audit(db, principal, "campaign.delete", f"campaign:{campaign.id}", {"name": campaign.name})
    db.delete(campaign)
    db.commit()
    return Response(status_code=204)


@router.post("/{campaign_id}/contacts", openapi_extra={
    "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string",
                                                                          "maxLength": MAX_CSV_BYTES}}}}})
async def import_contacts(campaign_id: DbId, request: Request, principal: Principal = Depends(staff),
                          ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Add the contacts of a CSV file (UTF-8 or GB18030, a header row naming the phone column):
    numbers normalised, every duplicate and invalid row reported with its row number, the other
    columns kept as the contact's attributes (the agent's screen pop and the flow see them)."""
    data = await request.body()
    if len(data) > MAX_CSV_BYTES:
        raise ApiError(413, "body-too-large", f"a contact list is at most {MAX_CSV_BYTES} bytes")
    return await run_in_threadpool(_import, ctx, principal, campaign_id, data)


def _import(ctx: AppContext, principal: Principal, campaign_id: int, data: bytes) -> dict[str, Any]:
    with ctx.sessions() as db:
        campaign = get_owned(db, Campaign, campaign_id, principal, "campaign")
        tenant = db.get(Tenant, principal.tenant_id)
        assert tenant is not None
        existing = set(db.scalars(select(CampaignContact.phone).where(CampaignContact.campaign_id == campaign.id)))
        try:
            result = parse_contacts(decode_csv(data), existing=existing)
        except ContactsError as exc:
            raise ApiError(422, exc.error_id, str(exc)) from None
        invalid = [vars(p) for p in result.invalid]
        imported = 0
        for row in result.contacts:
            if not prefix_allows(tenant.outbound_prefixes, row.phone):
                invalid.append({"row": row.row, "value": row.phone, "error_id": "number-not-allowed",
                                "message": f"{row.phone} is not allowed by this tenant's dialing rules"})
                continue
            db.add(CampaignContact(tenant_id=tenant.id, campaign_id=campaign.id, row=row.row, phone=row.phone,
                                   name=row.name, timezone=row.timezone, attributes=row.attributes,
                                   status="pending", attempts=0))
            imported += 1
        record_audit(db, principal, "campaign.import", f"campaign:{campaign.id}",
                     {"imported": imported, "rows": result.total_rows})
        db.commit()
    return {"total_rows": result.total_rows, "imported": imported, "duplicates": [vars(p) for p in result.duplicates],
            "invalid": sorted(invalid, key=lambda p: p["row"])}


@router.get("/{campaign_id}/contacts")
def list_contacts(campaign_id: DbId, principal: Principal = Depends(staff), db: Session = Depends(get_db),
                  status: Literal["pending", "dialing", "done", "exhausted", "skipped"] | None = None,
                  limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=10_000_000)) -> dict[str, Any]:
    campaign = get_owned(db, Campaign, campaign_id, principal, "campaign")
    where = [CampaignContact.campaign_id == campaign.id]
    if status is not None:
        where.append(CampaignContact.status == status)
    total = db.scalar(select(func.count()).select_from(CampaignContact).where(*where)) or 0
    rows = db.scalars(select(CampaignContact).where(*where).order_by(CampaignContact.row)
                      .limit(limit).offset(offset)).all()
    return {"total": total, "contacts": [
        {"id": c.id, "row": c.row, "phone": c.phone, "name": c.name, "timezone": c.timezone,
         "attributes": c.attributes, "status": c.status, "attempts": c.attempts, "last_outcome": c.last_outcome,
         "next_attempt_at": c.next_attempt_at.isoformat() if c.next_attempt_at else None} for c in rows]}


@router.post("/{campaign_id}/{action}")
def change_status(campaign_id: DbId, action: Literal["start", "pause", "resume", "stop"],
                  principal: Principal = Depends(staff), db: Session = Depends(get_db),
                  ctx: AppContext = Depends(get_ctx)) -> dict[str, Any]:
    """Start (again, after a stop: the contacts still due), pause, resume or stop the campaign."""
    campaign = get_owned(db, Campaign, campaign_id, principal, "campaign")
    sources, target = TRANSITIONS[action]
    if campaign.status not in sources:
        raise conflict("campaign-state", f"a {campaign.status} campaign cannot {action}")
    if action == "start":
        due = db.scalar(select(CampaignContact.id).where(CampaignContact.campaign_id == campaign.id,
                                                         CampaignContact.status.in_(("pending", "dialing"))).limit(1))
        if due is None:
            raise conflict("campaign-empty", "the campaign has no contact left to call: import some")
        _check(db, principal.tenant_id, campaign.mode, campaign.queue, campaign.flow, campaign.caller_id)
        campaign.started_at = utcnow()
    campaign.status = target
    record_audit(db, principal, f"campaign.{action}", f"campaign:{campaign.id}", {})
    db.commit()
    if ctx.campaigns is not None:
        ctx.campaigns.wake()
    return _one(ctx, db, campaign, principal)


@router.get("/{campaign_id}/report", responses={200: {"content": {"text/csv": {}}, "description": "JSON rows, or CSV"}})
def report(campaign_id: DbId, principal: Principal = Depends(staff), db: Session = Depends(get_db),
           by: Literal["day", "agent"] = "day", format: Literal["json", "csv"] = "json",
           days: int = Query(31, ge=1, le=366, description="the last N days")) -> Any:
    """The campaign per day (in the tenant's time zone) or per agent: dialed, persons, machines,
    abandoned and the abandon rate, unanswered calls, talk time."""
    campaign = get_owned(db, Campaign, campaign_id, principal, "campaign")
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    since = _day_start(tenant) - timedelta(days=days - 1)
    rows = campaign_report.rows(db, campaign, tenant, since, by)
    if format == "csv":
        return Response(campaign_report.to_csv(rows, by), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="campaign-{campaign.id}-by-{by}.csv"'})
    return {"rows": rows}


# -- the do-not-call list ---------------------------------------------------------------------------
@dnc_router.get("")
def list_dnc(principal: Principal = Depends(staff), db: Session = Depends(get_db),
             limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=10_000_000)) -> dict[str, Any]:
    where = DoNotCall.tenant_id == principal.tenant_id
    total = db.scalar(select(func.count()).select_from(DoNotCall).where(where)) or 0
    rows = db.scalars(select(DoNotCall).where(where).order_by(DoNotCall.number).limit(limit).offset(offset)).all()
    return {"total": total, "numbers": [{"number": r.number, "note": r.note, "added_at": r.added_at.isoformat()}
                                        for r in rows]}


@dnc_router.post("")
def add_dnc(body: DncIn, principal: Principal = Depends(staff), db: Session = Depends(get_db)) -> dict[str, Any]:
    """Numbers no campaign of the tenant calls (normalised as contact numbers are)."""
    invalid: list[dict[str, str]] = []
    numbers: set[str] = set()
    for raw in body.numbers:
        try:
            numbers.add(normalise_phone(raw))
        except PhoneError as exc:
            invalid.append({"value": raw, "error_id": exc.error_id, "message": str(exc)})
    known = set(db.scalars(select(DoNotCall.number).where(DoNotCall.tenant_id == principal.tenant_id,
                                                          DoNotCall.number.in_(numbers)))) if numbers else set()
    added = sorted(numbers - known)
    db.add_all(DoNotCall(tenant_id=principal.tenant_id, number=n, note=body.note) for n in added)
    record_audit(db, principal, "dnc.add", "dnc", {"added": len(added)})
    db.commit()
    return {"added": len(added), "invalid": invalid}


@dnc_router.delete("/{number}", status_code=204)
def remove_dnc(number: Annotated[str, Field(max_length=40)], principal: Principal = Depends(staff),
               db: Session = Depends(get_db)) -> Response:
    try:
        normalised = normalise_phone(number)
    except PhoneError:
        normalised = number
    result = db.execute(delete(DoNotCall).where(DoNotCall.tenant_id == principal.tenant_id,
                                                DoNotCall.number == normalised))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise ApiError(404, "number-not-found", "this number is not on the do-not-call list")
    record_audit(db, principal, "dnc.remove", "dnc", {"number": normalised})
    db.commit()
    return Response(status_code=204)
