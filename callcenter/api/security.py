"""Bans on the tenant's accounts after failed authentication (admin): list and lift.

Bans on whole source addresses concern every tenant; the operator lists and lifts those
with ``callcenter bans``.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from callcenter.api.bounds import DbId
from callcenter.api.deps import AppContext, get_ctx, get_db, require_roles
from callcenter.api.errors import not_found
from callcenter.bans import active_bans, lift_ban
from callcenter.models import AuthBan
from callcenter.security import Principal

router = APIRouter(prefix="/api/security", tags=["security"])
admin = require_roles("admin")


class BanOut(BaseModel):
    id: int
    protocol: str
    source: str
    account: str | None
    failures: int
    since: datetime
    until: datetime


def _out(row: AuthBan) -> BanOut:
    return BanOut(id=row.id, protocol=row.protocol, source=row.source, account=row.account, failures=row.failures,
                  since=row.since, until=row.until)


@router.get("/bans", response_model=list[BanOut])
def list_bans(principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> list[BanOut]:
    """Bans in force on this tenant's accounts (a SIP user or sign-in from one address), oldest first."""
    return [_out(row) for row in active_bans(db, tenant_id=principal.tenant_id)]


@router.delete("/bans/{ban_id}", status_code=204)
def lift(ban_id: DbId, principal: Principal = Depends(admin),
         db: Session = Depends(get_db), ctx: AppContext = Depends(get_ctx)) -> Response:
    """Lift a ban on one of this tenant's accounts now (audited)."""
    row = lift_ban(db, ban_id, principal.username, tenant_id=principal.tenant_id, user_id=principal.user_id)
    if row is None:
        raise not_found("ban")
    db.commit()
    assert ctx.bans is not None
    ctx.bans.lifted(ban_id, row.protocol)
    return Response(status_code=204)
