"""The node contract: every node type is one class with preconditions, execute and cancel."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from ivr.errors import FlowIssue
from ivr.expressions import Expression, ExpressionError, compile_expression

if TYPE_CHECKING:
    from ivr.runtime import FlowRun

Spec = TypeVar("Spec", bound=BaseModel)


@dataclass(frozen=True)
class TenantFacts:
    """What a flow may refer to in its tenant, checked when the flow is imported."""

    prompts: frozenset[str] = frozenset()
    calendars: frozenset[str] = frozenset()
    http_hosts: tuple[str, ...] = ()
    may_dial: Callable[[str], bool] = field(default=lambda number: False)


class Node(ABC, Generic[Spec]):
    """One node of a compiled flow; shared by every call on that flow version (keep no call state here)."""

    type: ClassVar[str]

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.id: str = spec.id  # type: ignore[attr-defined]

    def references(self) -> dict[str, str | None]:
        """Field path -> node id this node may continue at (checked by the compiler)."""
        nxt = getattr(self.spec, "next", None)
        return {"next": nxt} if "next" in type(self.spec).model_fields else {}

    def subflow(self) -> str | None:
        """The subflow this node enters, if any."""
        return None

    def preconditions(self, facts: TenantFacts) -> list[FlowIssue]:
        """Problems with what this node refers to in the tenant (prompts, calendars, hosts, numbers)."""
        return []

    @abstractmethod
    async def execute(self, run: FlowRun) -> str | None:
        """Do the node's work; the id of the node to go to next, or None to end the section."""

    async def cancel(self, run: FlowRun) -> None:
        """Release what execute() held when the call ends in the middle of it."""

    # -- helpers for subclasses -----------------------------------------------------------
    def issue(self, field: str, reason: str) -> FlowIssue:
        return FlowIssue(self.id, field, reason)

    def prompt_issues(self, facts: TenantFacts, field: str, prompt: object) -> list[FlowIssue]:
        name = getattr(prompt, "file", None)
        if name is not None and name not in facts.prompts:
            return [self.issue(f"{field}.file", f"no uploaded prompt named '{name}' in this tenant")]
        return []


class ExpressionCompileError(Exception):
    def __init__(self, field: str, error: ExpressionError) -> None:
        self.field = field
        self.error = error
        super().__init__(f"{field}: {error}")


def expression(field: str, source: str) -> Expression:
    """Compile an expression of a node's field; errors carry the field for the flow error."""
    try:
        return compile_expression(source)
    except ExpressionError as exc:
        raise ExpressionCompileError(field, exc) from exc
