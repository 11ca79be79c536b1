"""Security events: what the node logs, counts and audits besides failed logins."""

from __future__ import annotations

from typing import Protocol


class SecurityEvents(Protocol):
    """Where protocol code reports an attack it noticed (a narrow interface: the node implements it)."""

    def security_event(self, event: str, *, source: str | None, tenant_id: int | None,
                       detail: dict[str, object]) -> None:
        """``event`` is a stable dotted name (``sip.foreign_challenge``); must not block."""
