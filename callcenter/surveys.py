"""The call survey: after the agent hangs up on a caller answered from a queue, the caller goes on
to the flow the tenant picked (``Tenant.survey_flow``, its newest version) instead of being hung up.

The way there: the agent's leg ends; ``CallControl._bridged`` (the caller is not hung up with it:
its ``hangs_up_with_peer`` is off while it talks to an agent) asks the IVR backend for the
tenant's survey flow, pauses the recording, records a ``survey`` call event (the agent's leg ends
there, for reports) and hands the caller's IVR run on (``FlowRun.hand_on``); the ACD's wait for
the end of the call (``AcdService._serve``) returns at that, and the queue node runs the survey
flow on the same call, in the same trace (``ivr.nodes.route.Queue``). Its ``survey`` node stores
the rating through the IVR services (``DbBackend.rate`` -> :func:`store_rating`).

The survey flow starts with the variables :data:`CONTACT` (the call record's id), :data:`AGENT`
(the agent's id) and :data:`QUEUE` (the queue the call record names).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from callcenter import csat
from callcenter.models import Flow, FlowVersion, Tenant

logger = logging.getLogger(__name__)

CONTACT, AGENT, QUEUE = "contact_id", "agent_id", "queue"
"""Variables the survey flow starts with."""


def survey_variables(contact_id: str, agent_id: str, queue: str | None) -> dict[str, Any]:
    return {CONTACT: contact_id, AGENT: agent_id, QUEUE: queue or ""}


def survey_version(db: Session, tenant_id: int) -> int | None:
    """The id of the newest version of the tenant's survey flow; None: no survey (none chosen, or
    the chosen flow has been deleted)."""
    name = db.scalar(select(Tenant.survey_flow).where(Tenant.id == tenant_id))
    if not name:
        return None
    return db.scalar(select(FlowVersion.id).join(Flow, Flow.id == FlowVersion.flow_id)
                     .where(Flow.tenant_id == tenant_id, Flow.name == name)
                     .order_by(FlowVersion.version.desc()).limit(1))


def store_rating(engine: Engine, tenant_id: int, variables: dict[str, Any], rating: int) -> bool:
    """Store a caller's survey rating of the contact named in the survey's ``variables`` (blocking);
    False when they name none of the tenant's contacts or it was rated already."""
    contact = variables.get(CONTACT)
    if not isinstance(contact, str) or not contact:
        return False
    agent = variables.get(AGENT)
    queue = variables.get(QUEUE)
    with Session(engine) as db:
        try:
            csat.record_rating(db, tenant_id=tenant_id, contact_id=contact, channel="voice", rating=rating,
                               agent_id=int(agent) if isinstance(agent, str) and agent.isdigit() else None,
                               queue=queue if isinstance(queue, str) and queue else None)
        except (csat.AlreadyRated, LookupError) as exc:
            logger.info("survey rating not stored: %s", exc, extra={"call_id": contact, "tenant_id": tenant_id})
            return False
        db.commit()
    return True
