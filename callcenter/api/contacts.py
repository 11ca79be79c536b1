"""A customer's earlier contacts: the tenant's calls and chats from one phone number, for the
agent page's chat view (issue 16) and anyone else who answers that customer.

A chat's contact record is a ``CallRecord`` row with ``channel="chat"`` and the visitor's phone as
``caller``, so one query over ``call_records`` finds both channels.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.api.deps import get_db, require_roles
from callcenter.api.errors import invalid
from callcenter.models import Agent, CallRecord, User
from callcenter.security import Principal

router = APIRouter(tags=["contacts"])
readers = require_roles("agent", "supervisor", "admin")

#: Contacts one answer lists, newest first.
HISTORY_LIMIT = 20
#: Longest phone parameter accepted, separators included.
MAX_PHONE_INPUT = 40
#: What is left once spaces, dashes, dots and brackets are taken out: an optional +, then digits.
PHONE = re.compile(r"\+?[0-9]{3,32}")
SEPARATORS = re.compile(r"[\s().-]")


def normalise_phone(raw: str) -> str:
    """The number as records store it (``+8613800138000``, ``13800138000``): separators removed;
    ValueError when what remains is not an optional + and 3 to 32 digits."""
    phone = SEPARATORS.sub("", raw)
    if not PHONE.fullmatch(phone):
        raise ValueError("phone: an optional + and 3 to 32 digits")
    return phone


def contact_history(db: Session, tenant_id: int, phone: str, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The tenant's last ``limit`` calls and chats whose customer number is ``phone``, newest first:
    ``{id, channel, received_at, queue, agent, disposition, duration}`` (``agent``: the username of
    the agent who handled it last, or None)."""
    rows = db.execute(
        select(CallRecord, User.username)
        .outerjoin(Agent, Agent.id == CallRecord.agent_id)
        .outerjoin(User, User.id == Agent.user_id)
        .where(CallRecord.tenant_id == tenant_id, CallRecord.caller == phone)
        .order_by(CallRecord.received_at.desc(), CallRecord.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": record.id,
            "channel": record.channel,
            "received_at": record.received_at.isoformat(),
            "queue": record.queue,
            "agent": username,
            "disposition": record.disposition,
            "duration": record.duration,
        }
        for record, username in rows
    ]


@router.get("/api/contacts/history")
def history(
    phone: Annotated[str, Query(min_length=1, max_length=MAX_PHONE_INPUT)],
    principal: Principal = Depends(readers),
    db: Session = Depends(get_db),
) -> list[dict[str, Any]]:
    """Earlier calls and chats of the customer with ``phone`` in the caller's tenant; 422 on a bad number."""
    try:
        number = normalise_phone(phone)
    except ValueError as exc:
        raise invalid(str(exc)) from exc
    return contact_history(db, principal.tenant_id, number)
