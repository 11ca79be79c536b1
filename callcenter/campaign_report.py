"""A campaign's report, per day (in the tenant's time zone) or per agent, as rows and CSV.

Attempts say how each call ended; who talked and for how long are the call records'."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.models import Agent, CallRecord, Campaign, CampaignAttempt, Tenant, User

DAY_COLUMNS = ("day", "dialed", "persons", "machines", "abandoned", "abandon_rate", "busy", "no_answer", "failed",
               "talk_seconds")
AGENT_COLUMNS = ("agent", "calls", "talk_seconds", "average_talk_seconds")
_OUTCOME_COLUMN = {"person": "persons", "machine": "machines", "abandoned": "abandoned", "busy": "busy",
                   "no_answer": "no_answer", "failed": "failed"}


def rows(db: Session, campaign: Campaign, tenant: Tenant, since: datetime,
         by: Literal["day", "agent"]) -> list[dict[str, Any]]:
    found = db.execute(
        select(CampaignAttempt.started_at, CampaignAttempt.outcome, CallRecord.answered_at, CallRecord.ended_at,
               User.username)
        .outerjoin(CallRecord, CallRecord.id == CampaignAttempt.call_id)
        .outerjoin(Agent, Agent.id == CallRecord.agent_id)
        .outerjoin(User, User.id == Agent.user_id)
        .where(CampaignAttempt.campaign_id == campaign.id, CampaignAttempt.started_at >= since,
               CampaignAttempt.outcome.is_not(None))
        .order_by(CampaignAttempt.started_at)).all()
    zone = ZoneInfo(tenant.timezone)
    if by == "day":
        days: dict[str, Counter[str]] = defaultdict(Counter)
        for started, outcome, answered, ended, agent in found:
            day = days[started.astimezone(zone).date().isoformat()]
            day["dialed"] += 1
            day[_OUTCOME_COLUMN.get(outcome or "", "failed")] += 1
            if agent is not None:
                day["talk_seconds"] += round(_talk(answered, ended))
        return [{"day": d, **{c: counts[c] for c in DAY_COLUMNS[1:] if c != "abandon_rate"},
                 "abandon_rate": _rate(counts)} for d, counts in sorted(days.items())]
    agents: dict[str, Counter[str]] = defaultdict(Counter)
    for _, outcome, answered, ended, agent in found:
        if outcome == "person" and agent is not None:
            agents[agent]["calls"] += 1
            agents[agent]["talk_seconds"] += round(_talk(answered, ended))
    return [{"agent": a, "calls": c["calls"], "talk_seconds": c["talk_seconds"],
             "average_talk_seconds": round(c["talk_seconds"] / c["calls"], 1)} for a, c in sorted(agents.items())]


def _talk(answered: datetime | None, ended: datetime | None) -> float:
    return max(0.0, (ended - answered).total_seconds()) if answered is not None and ended is not None else 0.0


def _rate(counts: Counter[str]) -> float:
    live = counts["persons"] + counts["abandoned"]
    return round(counts["abandoned"] / live, 4) if live else 0.0


def to_csv(report: list[dict[str, Any]], by: Literal["day", "agent"]) -> str:
    """The rows as CSV with a header line (the day or the agent first)."""
    columns = DAY_COLUMNS if by == "day" else AGENT_COLUMNS
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(report)
    return out.getvalue()
