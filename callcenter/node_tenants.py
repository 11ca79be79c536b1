"""Keeps a running node's view of each tenant's status and call quota in step with the database.

The operator API reloads the routing table at once (and, in a cluster, on every node through
``config_sync``); the CLI (``callcenter tenant suspend``, ``update --concurrent-calls``) writes only
the database. So each node also reads the tenants' status and quota every ``RELOAD_PERIOD`` and
reloads its routing when they differ from the table's: a suspension takes effect within seconds
whoever made it, at the cost of one small query per period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from sip_bridge.routing import RoutingTable

from .db_health import database_unavailable
from .models import Tenant, TenantStatus

logger = logging.getLogger(__name__)

RELOAD_PERIOD = 5.0
"""Seconds between two readings of the tenants' status and quota."""

Policies = dict[int, tuple[bool, int | None]]
"""tenant id -> (suspended, quota of concurrent calls)"""


def stored_policies(engine: Engine) -> Policies:
    with Session(engine) as db:
        rows = db.execute(select(Tenant.id, Tenant.status, Tenant.quota_concurrent_calls))
        return {tid: (status == TenantStatus.SUSPENDED.value, quota) for tid, status, quota in rows}


def loaded_policies(table: RoutingTable) -> Policies:
    return {t.id: (t.suspended, t.max_calls) for t in table.tenants.values()}


class TenantPolicyWatch:
    """See module. ``routing`` gives the table in use, ``reload`` replaces it from the database."""

    def __init__(self, engine: Engine, routing: Callable[[], RoutingTable], reload: Callable[[], Awaitable[None]],
                 period: float = RELOAD_PERIOD) -> None:
        self.engine = engine
        self.routing = routing
        self.reload = reload
        self.period = period
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> bool:
        """Reload when the database differs from the table in use; whether it did."""
        stored = await asyncio.to_thread(stored_policies, self.engine)
        if stored == loaded_policies(self.routing()):
            return False
        logger.info("tenant status or call quota changed in the database: reloading routing")
        await self.reload()
        return True

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.check()
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                # the outage is logged by the node's database health; the next period tries again

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="tenant-policies")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
