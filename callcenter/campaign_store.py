"""Campaigns in the database: the contacts due for a call, each attempt's outcome, the figures.

Synchronous (SQLAlchemy sessions): the campaign service calls it in a worker thread. A contact
is claimed (``dialing``) in the same transaction that creates its attempt, and only the node
hosting the tenant's ACD runs its campaigns, so no contact is called twice at once; a node that
stopped mid-call leaves contacts ``dialing``, which :meth:`CampaignStore.recover` puts back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.orm import Session

from callcenter.models import Campaign, CampaignAttempt, CampaignContact, DoNotCall
from campaigns.outcomes import OUTCOMES
from campaigns.rules import CallingWindow, RetryPolicy
from campaigns.runner import Dial

CLAIM_LOOKAHEAD = 4
"""Contacts read per contact wanted: some are outside their calling window or on the do-not-call list."""


@dataclass
class Figures:
    """A campaign's figures since a moment (the tiles and the list show today's)."""

    contacts: int = 0
    left: int = 0
    dialed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        persons, abandoned = self.outcomes["person"], self.outcomes["abandoned"]
        live = persons + abandoned
        return {"contacts": self.contacts, "left": self.left, "dialed": self.dialed, "persons": persons,
                "machines": self.outcomes["machine"], "abandoned": abandoned,
                "abandon_rate": round(abandoned / live, 4) if live else 0.0,
                **{o: self.outcomes[o] for o in ("busy", "no_answer", "failed", "dnc", "invalid")}}


class CampaignStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def running(self) -> list[tuple[int, int]]:
        """(campaign id, tenant id) of every running campaign."""
        with Session(self.engine) as db:
            return [(c.id, c.tenant_id) for c in db.scalars(select(Campaign).where(Campaign.status == "running"))]

    def campaign(self, campaign_id: int) -> Campaign | None:
        with Session(self.engine, expire_on_commit=False) as db:
            return db.get(Campaign, campaign_id)

    def recover(self, campaign_id: int, now: datetime) -> int:
        """Contacts left ``dialing`` by a node that stopped: due again, their open attempts failed."""
        with Session(self.engine) as db, db.begin():
            db.execute(update(CampaignAttempt).where(CampaignAttempt.campaign_id == campaign_id,
                                                     CampaignAttempt.outcome.is_(None))
                       .values(outcome="failed", ended_at=now))
            result = db.execute(update(CampaignContact).where(CampaignContact.campaign_id == campaign_id,
                                                              CampaignContact.status == "dialing")
                                .values(status="pending", next_attempt_at=now))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def claim(self, campaign_id: int, tenant_id: int, wanted: int, now: datetime, *, caller_id: str,
              window: CallingWindow, zone: str, allowed: Callable[[str], bool]) -> list[Dial]:
        """Up to ``wanted`` contacts due now, inside their calling window, not on the tenant's
        do-not-call list and allowed by its dialing rules; each gets an attempt. Contacts outside
        their window are put off until it opens; the others found are skipped for good."""
        found: list[Dial] = []
        with Session(self.engine) as db, db.begin():
            due = db.scalars(
                select(CampaignContact)
                .where(CampaignContact.campaign_id == campaign_id, CampaignContact.status == "pending",
                       or_(CampaignContact.next_attempt_at.is_(None), CampaignContact.next_attempt_at <= now))
                .order_by(CampaignContact.next_attempt_at.is_not(None), CampaignContact.next_attempt_at,
                          CampaignContact.id)
                .limit(wanted * CLAIM_LOOKAHEAD)).all()
            barred = set(db.scalars(select(DoNotCall.number).where(
                DoNotCall.tenant_id == tenant_id, DoNotCall.number.in_([c.phone for c in due])))) if due else set()
            for contact in due:
                if contact.phone in barred or not allowed(contact.phone):
                    contact.status, contact.last_outcome = "skipped", "dnc" if contact.phone in barred else "invalid"
                    continue
                local_zone = contact.timezone or zone
                if not window.allows(now, local_zone):
                    contact.next_attempt_at = window.next_open(now, local_zone)
                    continue
                if len(found) == wanted:
                    continue
                contact.status, contact.attempts = "dialing", contact.attempts + 1
                attempt = CampaignAttempt(tenant_id=tenant_id, campaign_id=campaign_id, contact_id=contact.id,
                                          caller_id=caller_id, started_at=now)
                db.add(attempt)
                db.flush()
                found.append(Dial(attempt.id, contact.id, contact.phone, contact.name, dict(contact.attributes or {}),
                                  contact.attempts))
        return found

    def placed(self, attempt_id: int, call_id: str) -> None:
        with Session(self.engine) as db, db.begin():
            db.execute(update(CampaignAttempt).where(CampaignAttempt.id == attempt_id).values(call_id=call_id))

    def answered(self, attempt_id: int, at: datetime) -> None:
        with Session(self.engine) as db, db.begin():
            db.execute(update(CampaignAttempt).where(CampaignAttempt.id == attempt_id).values(answered_at=at))

    def finished(self, attempt_id: int, outcome: str, now: datetime, *, retry: RetryPolicy,
                 amd_seconds: float | None = None) -> None:
        """The attempt's outcome, and what becomes of its contact: done after a person, another
        attempt after the outcome's delay, or exhausted."""
        with Session(self.engine) as db, db.begin():
            attempt = db.get(CampaignAttempt, attempt_id)
            if attempt is None:
                return
            attempt.outcome, attempt.ended_at, attempt.amd_seconds = outcome, now, amd_seconds
            contact = db.get(CampaignContact, attempt.contact_id)
            if contact is None or contact.status != "dialing":
                return
            contact.last_outcome = outcome
            delay = retry.after(outcome, contact.attempts)
            if outcome == "person":
                contact.status = "done"
            elif outcome in ("dnc", "invalid"):
                contact.status = "skipped"
            elif delay is None:
                contact.status = "exhausted"
            else:
                contact.status, contact.next_attempt_at = "pending", now + timedelta(seconds=delay)

    def release(self, attempt_id: int, until: datetime) -> None:
        """An attempt that never dialed (an agent skipped a preview contact): forgotten, its
        contact due again at ``until`` with the attempt given back."""
        with Session(self.engine) as db, db.begin():
            attempt = db.get(CampaignAttempt, attempt_id)
            if attempt is None:
                return
            contact = db.get(CampaignContact, attempt.contact_id)
            if contact is not None and contact.status == "dialing":
                contact.status, contact.next_attempt_at = "pending", until
                contact.attempts = max(0, contact.attempts - 1)
            db.delete(attempt)

    def has_work(self, campaign_id: int) -> bool:
        """Whether any contact is still due or being called."""
        with Session(self.engine) as db:
            return db.scalar(select(CampaignContact.id).where(
                CampaignContact.campaign_id == campaign_id,
                CampaignContact.status.in_(("pending", "dialing"))).limit(1)) is not None

    def set_status(self, campaign_id: int, status: str, *, only_from: str | None = None) -> None:
        with Session(self.engine) as db, db.begin():
            stmt = update(Campaign).where(Campaign.id == campaign_id)
            if only_from is not None:
                stmt = stmt.where(Campaign.status == only_from)
            db.execute(stmt.values(status=status))


def figures(db: Session, campaign_ids: list[int], since: datetime) -> dict[int, Figures]:
    """Each campaign's contacts, those left and those skipped, and its attempts by outcome since ``since``."""
    out = {cid: Figures() for cid in campaign_ids}
    if not campaign_ids:
        return out
    for cid, status, last, count in db.execute(
            select(CampaignContact.campaign_id, CampaignContact.status, CampaignContact.last_outcome, func.count())
            .where(CampaignContact.campaign_id.in_(campaign_ids))
            .group_by(CampaignContact.campaign_id, CampaignContact.status, CampaignContact.last_outcome)):
        out[cid].contacts += count
        if status in ("pending", "dialing"):
            out[cid].left += count
        elif status == "skipped":  # never dialed: no attempt says so
            out[cid].outcomes[last or "invalid"] += count
    for cid, outcome, count in db.execute(
            select(CampaignAttempt.campaign_id, CampaignAttempt.outcome, func.count())
            .where(CampaignAttempt.campaign_id.in_(campaign_ids), CampaignAttempt.started_at >= since)
            .group_by(CampaignAttempt.campaign_id, CampaignAttempt.outcome)):
        out[cid].dialed += count
        if outcome in OUTCOMES:
            out[cid].outcomes[outcome] += count
    return out
