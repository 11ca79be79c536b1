"""Entries in a call record's event list, noted without waiting for the database.

The ACD (an offer missed or declined, an answer, a supervisor re-ordering or moving a waiting
call), call control (hold, transfers, consults, conference, recording paused), the softphone
(a tab reattached) and the wallboard (a supervisor monitoring) all note what happened to a call.
None of them may wait for the database in the middle of a call: the note is handed to the call
records (``CallRecordStore``, which writes in submission order on its own thread) in the background.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timezone
from typing import Any, Protocol


class EventRecords(Protocol):
    """The call records (``callcenter.cdr.CallRecordStore``), as far as notes go."""

    def call_event(self, record_id: str, *, tenant_id: int, kind: str, at: datetime, agent_id: int | None = None,
                   detail: dict[str, Any] | None = None) -> Awaitable[None]: ...


class CallNotes:
    def __init__(self, records: EventRecords) -> None:
        self.records = records
        self._tasks: set[asyncio.Task[None]] = set()

    def record_event(self, tenant_id: int, call_id: str, kind: str, agent_id: str | None,
                     detail: dict[str, Any] | None = None) -> None:
        """One entry in the call record's event list (answered, hold, transfer, ...)."""
        task = asyncio.ensure_future(self.records.call_event(
            call_id, tenant_id=tenant_id, kind=kind, at=datetime.now(timezone.utc),
            agent_id=int(agent_id) if agent_id else None, detail=detail))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
