"""CallRecordStore: group commit off the loop, lifecycle updates, dangling records."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from callcenter.cdr import CallRecordStore
from callcenter.metrics import REGISTRY
from callcenter.models import CallRecord

from .conftest import T0, add_tenant, start_call



def _get(engine: Engine, record_id: str) -> CallRecord:
    with Session(engine) as db:
        record = db.get(CallRecord, record_id)
        assert record is not None
        return record


async def test_100_concurrent_starts_all_committed(store: CallRecordStore, engine: Engine) -> None:
    tenant = add_tenant(engine, "alpha")
    batches_before = REGISTRY.get_sample_value("callcenter_cdr_batch_size_count") or 0
    ids = await asyncio.gather(*(start_call(store, tenant, T0 + timedelta(seconds=i)) for i in range(100)))
    with Session(engine) as db:  # a separate connection sees them: committed
        found = set(db.scalars(select(CallRecord.id)).all())
    assert found == set(ids)
    batches = (REGISTRY.get_sample_value("callcenter_cdr_batch_size_count") or 0) - batches_before
    assert 1 <= batches < 100  # grouped: fewer commits than writes


async def test_lifecycle_and_duration(store: CallRecordStore, engine: Engine) -> None:
    record_id = await start_call(store)
    await store.call_answered(record_id, answered_at=T0 + timedelta(seconds=2), codec="PCMA")
    await store.call_ended(record_id, ended_at=T0 + timedelta(seconds=12.5), end_cause="normal_clearing",
                           hangup_side="caller", sip_status=200)
    record = _get(engine, record_id)
    assert record.codec == "PCMA" and record.end_cause == "normal_clearing" and record.sip_status == 200
    assert record.duration == 10.5
    assert record.received_at == T0 and record.received_at.tzinfo is not None


async def test_first_end_wins(store: CallRecordStore, engine: Engine) -> None:
    record_id = await start_call(store)
    await store.call_ended(record_id, ended_at=T0, end_cause="normal_clearing", hangup_side="callee", sip_status=200)
    await store.call_ended(record_id, ended_at=T0, end_cause="rtp_timeout", hangup_side="platform", sip_status=None)
    assert _get(engine, record_id).end_cause == "normal_clearing"


async def test_unanswered_has_no_duration(store: CallRecordStore, engine: Engine) -> None:
    record_id = await start_call(store)
    await store.call_ended(record_id, ended_at=T0, end_cause="not_found", hangup_side="platform", sip_status=404)
    assert _get(engine, record_id).duration is None


async def test_one_bad_row_fails_alone(store: CallRecordStore, engine: Engine) -> None:
    good = [start_call(store) for _ in range(10)]
    bad = start_call(store, tenant_id=999)  # no such tenant: FK violation
    results = await asyncio.gather(*good, bad, return_exceptions=True)
    assert all(isinstance(r, str) for r in results[:10])
    assert isinstance(results[10], Exception)
    with Session(engine) as db:
        assert db.scalar(select(func.count()).select_from(CallRecord)) == 10


async def test_naive_datetime_rejected_before_queueing(store: CallRecordStore) -> None:
    with pytest.raises(ValueError):
        await start_call(store, at=datetime(2025, 1, 1))
    with pytest.raises(ValueError):
        await store.call_ended("x", ended_at=T0, end_cause="x", hangup_side="nobody", sip_status=None)


async def test_close_flushes_pending(engine: Engine) -> None:
    store = CallRecordStore(engine)
    await store.start()
    tasks = [asyncio.create_task(start_call(store)) for _ in range(50)]
    await asyncio.sleep(0)  # let every task enqueue
    await store.close()
    ids = await asyncio.gather(*tasks)
    with Session(engine) as db:
        assert set(db.scalars(select(CallRecord.id)).all()) == set(ids)
    with pytest.raises(RuntimeError):
        await start_call(store)


async def test_close_dangling_interrupts_open_records(store: CallRecordStore, engine: Engine) -> None:
    open_id = await start_call(store)
    done_id = await start_call(store)
    await store.call_ended(done_id, ended_at=T0, end_cause="normal_clearing", hangup_side="caller", sip_status=200)
    assert CallRecordStore(engine).close_dangling() == 1
    record = _get(engine, open_id)
    assert record.end_cause == "interrupted" and record.ended_at is not None
    assert _get(engine, done_id).end_cause == "normal_clearing"
    assert CallRecordStore(engine).close_dangling() == 0


async def test_loop_is_not_blocked_by_writes(store: CallRecordStore) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.create_task(ticker())
    await asyncio.gather(*(start_call(store) for _ in range(200)))
    t.cancel()
    assert ticks > 1
