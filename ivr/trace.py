"""The IVR trace of one call: nodes visited with their time, inputs, recognitions and exit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

MASK = "***"
"""What a trace shows instead of input collected inside a sensitive section."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class TraceStep:
    node: str
    type: str
    at: str = field(default_factory=_now)
    events: list[dict[str, Any]] = field(default_factory=list)
    exit: str | None = None

    def as_dict(self) -> dict[str, Any]:
        step: dict[str, Any] = {"node": self.node, "type": self.type, "at": self.at}
        if self.events:
            step["events"] = self.events
        if self.exit is not None:
            step["exit"] = self.exit
        return step


@dataclass
class Trace:
    call_id: str
    tenant_id: int | None
    flow_version_id: int | None
    flow: str
    version: int | None
    steps: list[TraceStep] = field(default_factory=list)
    result: str | None = None
    """How the IVR ended: ``queue: support``, ``transfer: 0123``, ``hangup``, ``caller hung up``, ..."""

    def enter(self, node: str, type_: str) -> TraceStep:
        step = TraceStep(node, type_)
        self.steps.append(step)
        return step

    @property
    def current(self) -> TraceStep | None:
        return self.steps[-1] if self.steps else None

    def event(self, kind: str, **data: Any) -> None:
        """Record an input, a recognition or an outcome on the current step."""
        if self.current is not None:
            self.current.events.append({"event": kind, "at": _now(), **data})

    def finish(self, result: str) -> None:
        if self.result is None:
            self.result = result
            if self.current is not None and self.current.exit is None:
                self.current.exit = result

    def as_dict(self) -> dict[str, Any]:
        return {"flow": self.flow, "version": self.version, "result": self.result,
                "steps": [s.as_dict() for s in self.steps]}
