"""Tell the SIP node that routing data changed, after the change is committed."""

from __future__ import annotations

import logging

from callcenter.api.deps import AppContext

log = logging.getLogger(__name__)


def notify_routing_changed(ctx: AppContext) -> None:
    """Call ``ctx.on_routing_changed``; a failure is logged, the committed write stands."""
    try:
        ctx.on_routing_changed()
    except Exception:
        log.exception("routing reload failed")
