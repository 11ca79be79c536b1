"""Errors of flow validation: each names the node, the field and the reason (and the line)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FlowIssue:
    node: str | None
    """Node id, or None for a document-level problem."""
    field: str
    reason: str
    line: int | None = None
    """1-based line in the imported file, when the flow came from a file."""
    type: str | None = None
    """Pydantic's error type for a schema error (``greater_than``, ``missing``, our validators'
    codes such as ``time_range``): the console words ``reason`` in its language from it and ``ctx``."""
    ctx: tuple[tuple[str, object], ...] = ()
    """The values the reason names (pydantic's ``ctx``: ``gt``, ``max_length``...)."""

    def __str__(self) -> str:
        where = f"node '{self.node}'" if self.node else "flow"
        field = f" field '{self.field}'" if self.field else ""
        line = f"line {self.line}: " if self.line else ""
        return f"{line}{where}{field}: {self.reason}"

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"node": self.node, "field": self.field, "reason": self.reason, "line": self.line}
        if self.type:
            out["type"] = self.type
            out["ctx"] = dict(self.ctx)
        return out


class FlowValidationError(ValueError):
    """An invalid flow; ``issues`` lists every problem found."""

    def __init__(self, issues: list[FlowIssue]) -> None:
        self.issues = issues
        super().__init__("invalid flow: " + "; ".join(str(i) for i in issues))
