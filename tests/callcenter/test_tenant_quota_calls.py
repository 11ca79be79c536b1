"""A tenant's quota of concurrent calls and its suspension, where calls come in: sipp as two
tenants' carriers against the SIP endpoint with the node's routing (loaded from the database) and
call records (``RecordObserver``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from callcenter.cdr import CallRecordStore
from callcenter.models import CallRecord, Number, Tenant, Trunk
from callcenter.node import RecordObserver
from callcenter.node_tenants import TenantPolicyWatch
from callcenter.routing import load_routing
from tests.support.endpoint import EndpointHarness
from tests.support.sipp import expect_status_scenario, sipp_async

from .conftest import add_tenant

pytestmark = pytest.mark.interop

A_NUMBER, B_NUMBER = "4005550001", "4005550002"


def _tenants(engine: Engine) -> tuple[int, int]:
    """Tenant alpha (quota: one call at a time) on a carrier at 127.0.0.1, beta at 127.0.0.2."""
    a, b = add_tenant(engine, "alpha"), add_tenant(engine, "beta")
    with Session(engine) as db:
        db.execute(update(Tenant).where(Tenant.id.in_([a, b])).values(quota_concurrent_calls=1))
        for tenant, ip, number in ((a, "127.0.0.1", A_NUMBER), (b, "127.0.0.2", B_NUMBER)):
            db.add(Trunk(tenant_id=tenant, name="carrier", inbound_ips=[ip]))
            db.add(Number(tenant_id=tenant, number=number))
        db.commit()
    return a, b


async def _records(engine: Engine, count: int) -> list[CallRecord]:
    """The call records once ``count`` of them are closed."""
    deadline = time.monotonic() + 10
    while True:
        with Session(engine) as db:
            rows = list(db.scalars(select(CallRecord).where(CallRecord.ended_at.is_not(None))
                                   .order_by(CallRecord.received_at)))
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.1)


async def test_call_over_the_tenant_quota_is_refused_busy_while_another_tenant_calls(
        engine: Engine, store: CallRecordStore, tmp_path: Path) -> None:
    a, b = _tenants(engine)
    harness = EndpointHarness(load_routing(engine))
    harness.endpoint.observer = RecordObserver(store)
    await harness.endpoint.start()
    try:
        first = asyncio.ensure_future(sipp_async(tmp_path / "a1", harness.target, "-sn", "uac", "-s", A_NUMBER,
                                                 "-m", "1", "-d", "3000"))
        deadline = time.monotonic() + 10
        while harness.endpoint.tenant_calls(a) < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert harness.endpoint.tenant_calls(a) == 1
        busy = expect_status_scenario(tmp_path / "busy.xml", 486)
        second = await sipp_async(tmp_path / "a2", harness.target, "-sf", busy, "-s", A_NUMBER, "-m", "1")
        assert second.successful == 1, second
        other = await sipp_async(tmp_path / "b", harness.target, "-sn", "uac", "-s", B_NUMBER, "-m", "1",
                                 "-d", "200", "-i", "127.0.0.2")
        assert other.successful == 1, other
        assert (await first).successful == 1
        records = await _records(engine, 3)
    finally:
        await harness.endpoint.stop()
    by_tenant = {(r.tenant_id, r.end_cause, r.sip_status) for r in records}
    assert by_tenant == {(a, "normal_clearing", 200), (a, "quota", 486), (b, "normal_clearing", 200)}, by_tenant


async def test_suspended_tenant_call_is_refused_once_the_node_sees_the_database(
        engine: Engine, store: CallRecordStore, tmp_path: Path) -> None:
    a, _ = _tenants(engine)
    harness = EndpointHarness(load_routing(engine))
    harness.endpoint.observer = RecordObserver(store)

    async def reload() -> None:
        harness.endpoint.routing = load_routing(engine)

    watch = TenantPolicyWatch(engine, lambda: harness.endpoint.routing, reload)
    assert not await watch.check()
    with Session(engine) as db:  # what `callcenter tenant suspend` writes
        db.execute(update(Tenant).where(Tenant.id == a).values(status="suspended"))
        db.commit()
    assert await watch.check()
    await harness.endpoint.start()
    try:
        refused = expect_status_scenario(tmp_path / "refused.xml", 403)
        result = await sipp_async(tmp_path / "a", harness.target, "-sf", refused, "-s", A_NUMBER, "-m", "1")
        assert result.successful == 1, result
        records = await _records(engine, 1)
    finally:
        await harness.endpoint.stop()
    assert [(r.tenant_id, r.end_cause, r.sip_status) for r in records] == [(a, "suspended", 403)]
