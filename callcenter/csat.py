"""Customer satisfaction (CSAT): one rating from 1 to 5 per contact, given on a chat's rating card
or in a call's survey flow (the IVR's ``survey`` node, after the agent hung up).

Plain functions on a SQLAlchemy session, used by the chat service (the visitor's card), the IVR
backend (a call's survey), the wallboard (today's figures), reports and ``/qa``. They flush but
never commit: the caller owns the transaction.

Figures carry the names the reports use (``callcenter.reports``):

- ``CSAT_AVERAGE``: the mean rating (two decimals), None without any rating;
- ``CSAT_RESPONSES``: how many ratings;
- ``CSAT_RESPONSE_RATE`` (reports only): ratings / contacts handled, percent.

A rating is of the contact (its ``CallRecord``: a call's, or a chat's with the conversation's id),
the agent and the queue the contact ended with, unless the caller names them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.models import AcdQueue, CallRecord, CsatResponse, utcnow

logger = logging.getLogger(__name__)

MIN_RATING, MAX_RATING = 1, 5
CHANNELS = ("voice", "chat")
MAX_COMMENT = 2000
"""Characters of a rating's comment (the chat card's text box)."""


class AlreadyRated(ValueError):
    """The contact has a rating already: each contact is rated once (the first answer counts)."""

    error_id = "already-rated"

    def __init__(self, contact_id: str) -> None:
        super().__init__(f"contact {contact_id} has already been rated")
        self.contact_id = contact_id


def check_rating(rating: Any) -> int:
    """``rating`` as a whole number from 1 to 5, or ValueError saying what is allowed."""
    if isinstance(rating, bool) or not isinstance(rating, int) or not MIN_RATING <= rating <= MAX_RATING:
        raise ValueError(f"a rating is a whole number from {MIN_RATING} to {MAX_RATING}, not {rating!r}")
    return rating


def record_rating(db: Session, *, tenant_id: int, contact_id: str, channel: str, rating: int, comment: str = "",
                  agent_id: int | None = None, queue: str | None = None) -> CsatResponse:
    """Store the customer's rating of a contact of the tenant.

    ``agent_id`` and ``queue`` default to the contact record's (the agent and queue it ended with).
    Raises ValueError for a bad rating, channel or comment, LookupError when the tenant has no such
    contact, :class:`AlreadyRated` for a second rating (after an IntegrityError from a concurrent
    first one, the caller's session must be rolled back).
    """
    check_rating(rating)
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}")
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise ValueError(f"a comment has at most {MAX_COMMENT} characters")
    record = db.get(CallRecord, contact_id)
    if record is None or record.tenant_id != tenant_id:
        raise LookupError(f"no contact {contact_id} in this tenant")
    if db.scalar(select(CsatResponse.id).where(CsatResponse.contact_id == contact_id)) is not None:
        raise AlreadyRated(contact_id)
    row = CsatResponse(tenant_id=tenant_id, contact_id=contact_id, channel=channel,
                       agent_id=agent_id if agent_id is not None else record.agent_id,
                       queue=queue if queue is not None else record.queue, rating=rating, comment=comment,
                       created_at=utcnow())
    db.add(row)
    try:
        db.flush()
    except IntegrityError as exc:  # rated at the same moment by another request or node
        raise AlreadyRated(contact_id) from exc
    logger.info("satisfaction rating recorded", extra={
        "tenant_id": tenant_id, "channel": channel, "rating": rating,
        ("conversation_id" if channel == "chat" else "call_id"): contact_id})
    return row


def ratings_of(db: Session, tenant_id: int, contact_ids: Iterable[str]) -> dict[str, CsatResponse]:
    """The ratings of these contacts of the tenant, by contact id (contacts without one are absent)."""
    ids = list(dict.fromkeys(contact_ids))
    found: dict[str, CsatResponse] = {}
    for start in range(0, len(ids), 500):
        for row in db.scalars(select(CsatResponse).where(CsatResponse.tenant_id == tenant_id,
                                                         CsatResponse.contact_id.in_(ids[start:start + 500]))):
            found[row.contact_id] = row
    return found


def rating_out(row: CsatResponse | None) -> dict[str, Any] | None:
    """A rating as the API shows it next to a contact."""
    if row is None:
        return None
    return {"rating": row.rating, "comment": row.comment, "channel": row.channel, "created_at": row.created_at}


def figures(ratings: Iterable[int]) -> dict[str, Any]:
    """``CSAT_AVERAGE`` and ``CSAT_RESPONSES`` of some ratings."""
    values = list(ratings)
    return {"CSAT_AVERAGE": round(sum(values) / len(values), 2) if values else None,
            "CSAT_RESPONSES": len(values)}


def local_day(tz: tzinfo, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the day ``now`` falls on in ``tz`` (23 or 25 hours on DST days)."""
    local = (now or datetime.now(timezone.utc)).astimezone(tz)
    start = datetime(local.year, local.month, local.day, tzinfo=tz)
    following = start.date() + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=tz)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def today_csat(db: Session, tenant_id: int, tz: tzinfo | str, now: datetime | None = None) -> dict[str, Any]:
    """Today's ratings (given since local midnight in ``tz``) for the wallboard: overall, per channel
    and per queue (every configured queue, and any other queue a rating names)."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    start, end = local_day(zone, now)
    rows = db.execute(select(CsatResponse.rating, CsatResponse.channel, CsatResponse.queue).where(
        CsatResponse.tenant_id == tenant_id, CsatResponse.created_at >= start, CsatResponse.created_at < end)).all()
    by_queue: dict[str, list[int]] = defaultdict(list)
    by_channel: dict[str, list[int]] = {channel: [] for channel in CHANNELS}
    for rating, channel, queue in rows:
        by_channel.setdefault(channel, []).append(rating)
        if queue:
            by_queue[queue].append(rating)
    for name in db.scalars(select(AcdQueue.name).where(AcdQueue.tenant_id == tenant_id)):
        by_queue.setdefault(name, [])
    return {"date": start.astimezone(zone).date().isoformat(), "tz": str(zone),
            **figures(rating for rating, _, _ in rows),
            "channels": {channel: figures(values) for channel, values in by_channel.items()},
            "queues": [{"queue": name, **figures(by_queue[name])} for name in sorted(by_queue)]}
