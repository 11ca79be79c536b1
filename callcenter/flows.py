"""Flow versions in the database: validate, import (a new version), publish on a number, export.

Shared by the CLI and the HTTP API.  A version is stored only after it passed the
schema, the graph checks and the tenant's preconditions, so a refused import leaves
the published version (and the calls on it) untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callcenter.acd_config import QueueSettings
from callcenter.models import (
    DEFAULT_TIMEZONE,
    AcdQueue,
    BusinessCalendarRow,
    Flow,
    FlowVersion,
    Number,
    Tenant,
    User,
)
from ivr.calendar import BusinessCalendar
from ivr.compiler import CompiledFlow, validate_for_tenant
from ivr.nodes import TenantFacts
from ivr.prompts import PromptLibrary
from sip_bridge.routing import RoutingTable
from sip_bridge.routing import Tenant as RoutingTenant


class FlowStoreError(ValueError):
    """A request about flows that cannot be done (unknown flow, number of another tenant, ...)."""


@dataclass(frozen=True)
class ImportResult:
    flow: str
    version: int
    version_id: int
    published_on: str | None


def prompt_library(data_dir: Path) -> PromptLibrary:
    return PromptLibrary(data_dir / "prompts")


def tenant_facts(db: Session, tenant_id: int, prompts: frozenset[str]) -> TenantFacts:
    """What the tenant has; ``prompts`` are the names of its uploaded prompts (PromptLibrary.list)."""
    tenant = db.get(Tenant, tenant_id)
    if tenant is None:
        raise FlowStoreError(f"no tenant with id {tenant_id}")
    table = RoutingTable(tenants={tenant_id: RoutingTenant(tenant_id, tenant.slug,
                                                           tuple(tenant.outbound_prefixes or ()))})
    calendars = db.scalars(select(BusinessCalendarRow.name).where(BusinessCalendarRow.tenant_id == tenant_id))
    return TenantFacts(prompts=prompts, calendars=frozenset(calendars),
                       http_hosts=tuple(tenant.http_allow_hosts or ()),
                       may_dial=lambda number: table.may_dial(tenant_id, number))


def validate(db: Session, tenant_id: int, raw: Any, prompts: frozenset[str], source_text: str | None = None) \
        -> CompiledFlow:
    """Raises ivr.errors.FlowValidationError naming each bad node, field and line."""
    return validate_for_tenant(raw, tenant_facts(db, tenant_id, prompts), source_text=source_text)


def _tenant_number(db: Session, tenant_id: int, number: str) -> Number:
    row = db.scalar(select(Number).where(Number.number == number, Number.tenant_id == tenant_id))
    if row is None:
        raise FlowStoreError(f"number {number} is not a number of this tenant")
    return row


def import_flow(db: Session, tenant_id: int, raw: Any, prompts: frozenset[str], *, source_text: str | None = None,
                number: str | None = None, user_id: int | None = None) -> ImportResult:
    """Validate and store a new version; publish it on ``number`` when given. The caller commits."""
    compiled = validate(db, tenant_id, raw, prompts, source_text)
    target = _tenant_number(db, tenant_id, number) if number is not None else None
    flow = db.scalar(select(Flow).where(Flow.tenant_id == tenant_id, Flow.name == compiled.name))
    if flow is None:
        flow = Flow(tenant_id=tenant_id, name=compiled.name)
        db.add(flow)
        db.flush()
    latest = db.scalar(select(func.max(FlowVersion.version)).where(FlowVersion.flow_id == flow.id)) or 0
    row = FlowVersion(flow_id=flow.id, tenant_id=tenant_id, version=latest + 1, document=compiled.as_json(),
                      created_by=user_id)
    db.add(row)
    db.flush()
    if target is not None:
        target.flow_version_id = row.id
    return ImportResult(compiled.name, row.version, row.id, number)


def find_version(db: Session, tenant_id: int, name: str, version: int | None = None) -> FlowVersion:
    """A version of a tenant's flow (the newest when ``version`` is None)."""
    stmt = select(FlowVersion).join(Flow).where(Flow.tenant_id == tenant_id, Flow.name == name)
    stmt = stmt.where(FlowVersion.version == version) if version is not None else \
        stmt.order_by(FlowVersion.version.desc()).limit(1)
    row = db.scalar(stmt)
    if row is None:
        raise FlowStoreError(f"flow '{name}'" + (f" has no version {version}" if version else " does not exist"))
    return row


def publish(db: Session, tenant_id: int, name: str, version: int, number: str) -> None:
    """Put an existing version live on a number (a rollback is publishing an older version)."""
    row = find_version(db, tenant_id, name, version)
    _tenant_number(db, tenant_id, number).flow_version_id = row.id


def list_flows(db: Session, tenant_id: int) -> list[dict[str, Any]]:
    """Each flow with its newest version and the numbers it is published on."""
    out = []
    for flow in db.scalars(select(Flow).where(Flow.tenant_id == tenant_id).order_by(Flow.name)):
        versions = db.scalars(select(FlowVersion).where(FlowVersion.flow_id == flow.id)
                              .order_by(FlowVersion.version)).all()
        by_id = {v.id: v.version for v in versions}
        published = [{"number": n.number, "version": by_id[n.flow_version_id]}
                     for n in db.scalars(select(Number).where(Number.tenant_id == tenant_id,
                                                              Number.flow_version_id.in_(by_id)))
                     if n.flow_version_id is not None]
        out.append({"name": flow.name, "latest_version": versions[-1].version if versions else None,
                    "versions": [v.version for v in versions], "published": published})
    return out


def flow_versions(db: Session, tenant_id: int, name: str) -> dict[str, Any]:
    """A flow's versions, oldest first, each with when and by whom it was stored and the numbers it
    is live on; and every number of the tenant with the flow and version live on it (to publish on)."""
    flow = db.scalar(select(Flow).where(Flow.tenant_id == tenant_id, Flow.name == name))
    if flow is None:
        raise FlowStoreError(f"flow '{name}' does not exist")
    rows = db.execute(select(FlowVersion, User.username).outerjoin(User, User.id == FlowVersion.created_by)
                      .where(FlowVersion.flow_id == flow.id).order_by(FlowVersion.version)).all()
    live = db.execute(select(Number, FlowVersion.version, Flow.name)
                      .outerjoin(FlowVersion, FlowVersion.id == Number.flow_version_id)
                      .outerjoin(Flow, Flow.id == FlowVersion.flow_id)
                      .where(Number.tenant_id == tenant_id).order_by(Number.number)).all()
    numbers = [{"number": n.number, "description": n.description, "flow": flow_name, "version": version}
               for n, version, flow_name in live]
    return {"flow": name,
            "versions": [{"version": v.version, "created_at": v.created_at.isoformat(), "created_by": user,
                          "published_on": [n["number"] for n in numbers
                                           if n["flow"] == name and n["version"] == v.version]}
                         for v, user in rows],
            "numbers": numbers}


@dataclass(frozen=True)
class SimulationContext:
    """What a simulated run reads from the tenant: calendars, uploaded prompts, queues, dialing rules."""

    calendars: dict[str, BusinessCalendar]
    prompts: frozenset[str]
    queues: dict[str, dict[str, Any]]
    """Queue name -> the skill (and minimum proficiency) its agents need and its routing strategy."""
    facts: TenantFacts
    timezone: str


def simulation_context(db: Session, tenant_id: int, prompts: frozenset[str]) -> SimulationContext:
    calendars = {row.name: BusinessCalendar.model_validate(row.definition)
                 for row in db.scalars(select(BusinessCalendarRow).where(BusinessCalendarRow.tenant_id == tenant_id))}
    queues = {}
    for row in db.scalars(select(AcdQueue).where(AcdQueue.tenant_id == tenant_id)):
        settings = QueueSettings.model_validate(row.config or {})
        queues[row.name] = {"skill": settings.skill or row.name, "min_proficiency": settings.min_proficiency,
                            "strategy": settings.strategy.value}
    tenant = db.get(Tenant, tenant_id)
    return SimulationContext(calendars, prompts, queues, tenant_facts(db, tenant_id, prompts),
                             tenant.timezone if tenant is not None else DEFAULT_TIMEZONE)
