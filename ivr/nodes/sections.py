"""Nodes that enter a subflow: subflow, and sensitive (a subflow with recording and ASR paused)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.nodes.base import Node
from ivr.schema import SensitiveNode, SubflowNode

if TYPE_CHECKING:
    from ivr.runtime import FlowRun


class Subflow(Node[SubflowNode]):
    type = "subflow"

    def subflow(self) -> str | None:
        return self.spec.subflow

    async def execute(self, run: FlowRun) -> str | None:
        await run.run_section(self.spec.subflow)
        return self.spec.next


class Sensitive(Node[SensitiveNode]):
    """Inside: recording and speech recognition are paused; digits never reach the trace or the logs."""

    type = "sensitive"

    def subflow(self) -> str | None:
        return self.spec.subflow

    async def execute(self, run: FlowRun) -> str | None:
        run.enter_sensitive()
        try:
            await run.run_section(self.spec.subflow)
        finally:
            run.leave_sensitive()
        return self.spec.next
