"""Structured JSON logs on stderr, one object per line.

Every record carries ``ts``, ``level``, ``logger``, ``msg`` and any ``extra`` fields. When
``call_id_var`` is set (per task, per call), its value is added as ``call_id`` unless the
record already has one from ``extra``.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

call_id_var: ContextVar[str | None] = ContextVar("call_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra`.
_RESERVED = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """Format a record as a single-line JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        call_id = call_id_var.get()
        if call_id is not None:
            out["call_id"] = call_id
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class _JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marker class so setup_logging() can replace its own handler and nothing else."""


def setup_logging(level: str) -> None:
    """Send all logging to stderr as JSON lines at ``level`` (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _JsonHandler):
            root.removeHandler(handler)
    handler = _JsonHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
