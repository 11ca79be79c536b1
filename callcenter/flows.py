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

from callcenter.models import BusinessCalendarRow, Flow, FlowVersion, Number, Tenant
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
