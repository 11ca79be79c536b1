"""An in-process event bus: the ACD publishes its typed events per tenant; the supervisor
view and reports subscribe. Subscribers get their own bounded queue, so a slow reader
loses its oldest events (and is told how many) instead of slowing the ACD down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Subscription:
    tenant_id: int
    queue: asyncio.Queue[Any] = field(default_factory=lambda: asyncio.Queue(maxsize=10_000))
    dropped: int = 0

    async def get(self) -> Any:
        return await self.queue.get()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[int, list[Subscription]] = {}

    def publish(self, tenant_id: int, event: Any) -> None:
        for sub in self._subscribers.get(tenant_id, ()):
            if sub.queue.full():
                sub.queue.get_nowait()
                sub.dropped += 1
            sub.queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self, tenant_id: int) -> AsyncIterator[Subscription]:
        """Events of one tenant only, from now on, until the block ends."""
        sub = Subscription(tenant_id)
        self._subscribers.setdefault(tenant_id, []).append(sub)
        try:
            yield sub
        finally:
            self._subscribers[tenant_id].remove(sub)
