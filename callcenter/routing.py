"""Loads the SIP bridge's routing table (trunks, numbers, tenants) from the database."""

from __future__ import annotations

import logging

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sip_bridge.routing import Number, RoutingTable, Tenant, Trunk

from . import models

logger = logging.getLogger(__name__)


def load_routing(engine: Engine) -> RoutingTable:
    """A fresh routing table; a trunk with a bad allow-list entry is skipped and logged, not fatal."""
    table = RoutingTable()
    with Session(engine) as db:
        for t in db.scalars(select(models.Tenant)):
            table.tenants[t.id] = Tenant(id=t.id, slug=t.slug, outbound_prefixes=tuple(t.outbound_prefixes or ()),
                                         suspended=t.status == models.TenantStatus.SUSPENDED.value,
                                         max_calls=t.quota_concurrent_calls)
        for n in db.scalars(select(models.Number)):
            table.numbers[n.number] = Number(number=n.number, tenant_id=n.tenant_id)
        for r in db.scalars(select(models.Trunk).where(models.Trunk.enabled.is_(True))):
            try:
                networks = Trunk.networks(list(r.inbound_ips or []))
            except ValueError as exc:
                logger.error("trunk %s skipped: bad inbound address: %s", r.name, exc, extra={"trunk": r.name})
                continue
            table.trunks.append(Trunk(
                id=r.id, tenant_id=r.tenant_id, name=r.name, inbound_networks=networks,
                inbound_username=r.inbound_username, inbound_password=r.inbound_password,
                outbound_host=r.outbound_host, outbound_port=r.outbound_port,
                outbound_transport=r.outbound_transport, register=r.register,
                register_username=r.register_username, register_password=r.register_password,
                register_expires=r.register_expires, priority=r.priority, require_tls=r.require_tls,
                require_srtp=r.require_srtp))
    return table
