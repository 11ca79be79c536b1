"""A service's background task: started once, stopped by cancelling it and waiting for its end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn

logger = logging.getLogger(__name__)

STOP_WAIT = 5.0
"""Seconds :meth:`Background.stop` waits for the cancelled task to end."""


class Background:
    """Holds at most one task; :meth:`stop` is safe to call when none runs."""

    def __init__(self) -> None:
        self._task: asyncio.Task[Any] | None = None

    def start(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        if self._task is not None:
            work.close()
            raise RuntimeError(f"{name} is running already")
        self._task = asyncio.create_task(work, name=name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # a task stuck in a call that swallows its cancellation must not hang the node's stop
        await asyncio.wait({task}, timeout=STOP_WAIT)
        if not task.done():
            logger.warning("background task did not stop within %.0f s: left behind", STOP_WAIT,
                           extra={"task": task.get_name()})
            return
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def every(period: float, step: Callable[[], Awaitable[None]]) -> NoReturn:
    """``await step()`` every ``period`` seconds (after each step ends), until cancelled. A step
    that fails is logged and the next one runs: a heartbeat must not stop over one bad reply."""
    while True:
        try:
            await step()
        except Exception:
            logger.exception("background step failed", extra={"step": getattr(step, "__qualname__", repr(step))})
        await asyncio.sleep(period)
