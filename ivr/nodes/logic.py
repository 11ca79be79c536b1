"""Nodes that decide without talking: condition, set, goto, business_hours."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.errors import FlowIssue
from ivr.expressions import ExpressionError
from ivr.nodes.base import Node, TenantFacts, expression
from ivr.schema import BusinessHoursNode, ConditionNode, GotoNode, SetNode

if TYPE_CHECKING:
    from ivr.runtime import FlowRun


class Condition(Node[ConditionNode]):
    """The first branch whose ``when`` is true; a branch that fails to evaluate counts as false."""

    type = "condition"

    def __init__(self, spec: ConditionNode) -> None:
        super().__init__(spec)
        self.tests = [expression(f"branches.{i}.when", b.when) for i, b in enumerate(spec.branches)]

    def references(self) -> dict[str, str | None]:
        refs: dict[str, str | None] = {f"branches.{i}.next": b.next for i, b in enumerate(self.spec.branches)}
        refs["default"] = self.spec.default
        return refs

    async def execute(self, run: FlowRun) -> str | None:
        for i, (test, branch) in enumerate(zip(self.tests, self.spec.branches)):
            try:
                if test.evaluate(run.variables):
                    run.record("branch", index=i)
                    return branch.next
            except ExpressionError as exc:
                run.record("error", field=f"branches.{i}.when", reason=str(exc))
        run.record("branch", index=None)
        return self.spec.default


class Set(Node[SetNode]):
    type = "set"

    def __init__(self, spec: SetNode) -> None:
        super().__init__(spec)
        self.values = {name: expression(f"variables.{name}", src) for name, src in spec.variables.items()}

    async def execute(self, run: FlowRun) -> str | None:
        for name, value in self.values.items():
            try:
                run.set_variable(name, value.evaluate(run.variables))
            except ExpressionError as exc:
                run.record("error", field=f"variables.{name}", reason=str(exc))
                run.set_variable(name, None)
        return self.spec.next


class Goto(Node[GotoNode]):
    type = "goto"

    def references(self) -> dict[str, str | None]:
        return {"target": self.spec.target}

    async def execute(self, run: FlowRun) -> str | None:
        return self.spec.target


class BusinessHours(Node[BusinessHoursNode]):
    """Open or closed now, by the tenant's calendar (read live: holidays change without a new flow)."""

    type = "business_hours"

    def references(self) -> dict[str, str | None]:
        return {"open": self.spec.open, "closed": self.spec.closed}

    def preconditions(self, facts: TenantFacts) -> list[FlowIssue]:
        if self.spec.calendar not in facts.calendars:
            return [self.issue("calendar", f"no business calendar named '{self.spec.calendar}' in this tenant")]
        return []

    async def execute(self, run: FlowRun) -> str | None:
        calendar = await run.services.directory.calendar(run.tenant_id, self.spec.calendar)
        if calendar is None:
            run.record("error", reason=f"calendar '{self.spec.calendar}' no longer exists; treated as closed")
            return self.spec.closed
        is_open = calendar.is_open(run.services.now())
        run.record("hours", open=is_open)
        return self.spec.open if is_open else self.spec.closed
