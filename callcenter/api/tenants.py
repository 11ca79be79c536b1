"""The caller's own tenant (creating tenants is the operators': ``callcenter.api.operator`` and the CLI)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.api.audit import record_audit
from callcenter.api.deps import ALL_ROLES, AppContext, get_ctx, get_db, require_roles
from callcenter.api.errors import ApiError, conflict
from callcenter.api.routing import notify_routing_changed
from callcenter.models import Flow, Tenant
from callcenter.security import Principal
from callcenter.tenancy import valid_timezone
from ivr.schema import NAME

router = APIRouter(prefix="/api/tenant", tags=["tenant"])

PREFIX_RE = re.compile(r"^[0-9*#+]{1,20}$")
MAX_PREFIXES = 200
HOST_RE = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62}\.)*[A-Za-z0-9-]{1,63}$")


class TenantOut(BaseModel):
    id: int
    name: str
    slug: str
    outbound_prefixes: list[str]
    http_allow_hosts: list[str]
    asr_model: str | None
    recording_pause_allowed: bool
    timezone: str
    survey_flow: str | None


class TenantPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    outbound_prefixes: list[Annotated[str, Field(max_length=20)]] | None = Field(default=None, max_length=MAX_PREFIXES)
    http_allow_hosts: list[Annotated[str, Field(max_length=253)]] | None = Field(
        default=None, max_length=100, description="hosts IVR http nodes may call; *.example.com allowed")
    recording_pause_allowed: bool | None = Field(default=None,
                                                 description="agents may pause call recording from the softphone")
    timezone: str | None = Field(default=None, max_length=64, description="IANA time zone, e.g. Asia/Shanghai")
    survey_flow: str | None = Field(default=None, pattern=NAME,
                                    description="the flow callers go on to when the agent hangs up (a satisfaction "
                                                "survey); null: none")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and not valid_timezone(value):
            raise PydanticCustomError("time_zone", "unknown time zone '{value}': an IANA name such as Asia/Shanghai",
                                      {"value": value})
        return value

    @field_validator("http_allow_hosts")
    @classmethod
    def _hosts(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for host in value:
            if not HOST_RE.fullmatch(host):
                raise PydanticCustomError("host_name",
                                          "invalid host '{value}': a host name, optionally starting with '*.'",
                                          {"value": host})
        return list(dict.fromkeys(h.lower() for h in value))

    @field_validator("outbound_prefixes")
    @classmethod
    def _prefixes(cls, value: list[str] | None) -> list[str] | None:
        return validate_prefixes(value) if value is not None else None


def validate_prefixes(prefixes: list[str]) -> list[str]:
    """Dial prefixes: digits (and * # +), deduplicated, order kept."""
    for p in prefixes:
        if not PREFIX_RE.fullmatch(p):
            raise PydanticCustomError("dial_prefix", "invalid dial prefix '{value}'", {"value": p})
    return list(dict.fromkeys(prefixes))


def _out(t: Tenant) -> TenantOut:
    return TenantOut(id=t.id, name=t.name, slug=t.slug, outbound_prefixes=list(t.outbound_prefixes or []),
                     http_allow_hosts=list(t.http_allow_hosts or []), asr_model=t.asr_model,
                     recording_pause_allowed=bool(t.recording_pause_allowed), timezone=t.timezone,
                     survey_flow=t.survey_flow)


@router.get("", response_model=TenantOut)
def get_tenant(principal: Principal = Depends(require_roles(*ALL_ROLES)), db: Session = Depends(get_db)) -> TenantOut:
    """The caller's tenant."""
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    return _out(tenant)


@router.patch("", response_model=TenantOut)
def patch_tenant(
    body: TenantPatch,
    principal: Principal = Depends(require_roles("admin")),
    db: Session = Depends(get_db),
    ctx: AppContext = Depends(get_ctx),
) -> TenantOut:
    """Rename the tenant or change its allowed outbound prefixes, HTTP allow-list, recording-pause switch,
    time zone or survey flow (null turns the survey off; 422 ``unknown-flow`` for a flow it does not have)."""
    tenant = db.get(Tenant, principal.tenant_id)
    assert tenant is not None
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "survey_flow" in body.model_fields_set:
        changes["survey_flow"] = body.survey_flow
        if body.survey_flow is not None and db.scalar(select(Flow.id).where(
                Flow.tenant_id == tenant.id, Flow.name == body.survey_flow)) is None:
            raise ApiError(422, "unknown-flow", f"this tenant has no flow named '{body.survey_flow}'",
                           params={"flow": body.survey_flow})
    if "name" in changes and db.scalar(
        select(Tenant.id).where(Tenant.name == changes["name"], Tenant.id != tenant.id)
    ):
        raise conflict("tenant-name-taken", "another tenant has this name")
    for key, value in changes.items():
        setattr(tenant, key, value)
    record_audit(db, principal, "tenant.update", f"tenant:{tenant.id}", changes)
    db.commit()
    if "outbound_prefixes" in changes:
        notify_routing_changed(ctx)
    return _out(tenant)
