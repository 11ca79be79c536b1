"""Dialed numbers (400 numbers) of the caller's tenant (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.api.audit import record_audit
from callcenter.api.bounds import DbId
from callcenter.api.deps import AppContext, get_ctx, get_db, get_owned, require_roles
from callcenter.api.errors import conflict, invalid
from callcenter.api.routing import notify_routing_changed
from callcenter.models import Number
from callcenter.security import Principal

router = APIRouter(prefix="/api/numbers", tags=["numbers"])

NUMBER_PATTERN = r"^[0-9]{3,32}$"
admin = require_roles("admin")


class NumberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(pattern=NUMBER_PATTERN, description="digits only, unique across tenants")
    description: str = Field(default="", max_length=255)


class NumberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str | None = Field(default=None, pattern=NUMBER_PATTERN)
    description: str | None = Field(default=None, max_length=255)


class NumberOut(BaseModel):
    id: int
    number: str
    description: str
    flow_version_id: int | None
    """The IVR flow version live on this number (publish with /api/flows/{name}/publish)."""


def _out(n: Number) -> NumberOut:
    return NumberOut(id=n.id, number=n.number, description=n.description, flow_version_id=n.flow_version_id)


def _number_taken(db: Session, number: str, exclude_id: int | None = None) -> bool:
    # Global check: a number routes to exactly one tenant.
    stmt = select(Number.id).where(Number.number == number)
    if exclude_id is not None:
        stmt = stmt.where(Number.id != exclude_id)
    return db.scalar(stmt) is not None


@router.get("", response_model=list[NumberOut])
def list_numbers(principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> list[NumberOut]:
    rows = db.scalars(select(Number).where(Number.tenant_id == principal.tenant_id).order_by(Number.number)).all()
    return [_out(n) for n in rows]


@router.get("/{number_id}", response_model=NumberOut)
def get_number(number_id: DbId, principal: Principal = Depends(admin), db: Session = Depends(get_db)) -> NumberOut:
    return _out(get_owned(db, Number, number_id, principal, "number"))


@router.post("", response_model=NumberOut, status_code=201)
def create_number(
    body: NumberCreate,
    principal: Principal = Depends(admin),
    db: Session = Depends(get_db),
    ctx: AppContext = Depends(get_ctx),
) -> NumberOut:
    """Add a number to the tenant; the SIP node reloads its routing."""
    if _number_taken(db, body.number):
        raise conflict("number-taken", "this number is already assigned")
    number = Number(tenant_id=principal.tenant_id, **body.model_dump())
    db.add(number)
    db.flush()
    record_audit(db, principal, "number.create", f"number:{number.id}", body.model_dump())
    db.commit()
    notify_routing_changed(ctx)
    return _out(number)


@router.patch("/{number_id}", response_model=NumberOut)
def patch_number(
    number_id: DbId,
    body: NumberPatch,
    principal: Principal = Depends(admin),
    db: Session = Depends(get_db),
    ctx: AppContext = Depends(get_ctx),
) -> NumberOut:
    number = get_owned(db, Number, number_id, principal, "number")
    changes = body.model_dump(exclude_unset=True)
    for key in ("number", "description"):
        if key in changes and changes[key] is None:
            raise invalid(f"{key} cannot be null")
    if "number" in changes and _number_taken(db, changes["number"], number.id):
        raise conflict("number-taken", "this number is already assigned")
    for key, value in changes.items():
        setattr(number, key, value)
    record_audit(db, principal, "number.update", f"number:{number.id}", changes)
    db.commit()
    notify_routing_changed(ctx)
    return _out(number)


@router.delete("/{number_id}", status_code=204)
def delete_number(
    number_id: DbId,
    principal: Principal = Depends(admin),
    db: Session = Depends(get_db),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    number = get_owned(db, Number, number_id, principal, "number")
    record_audit(db, principal, "number.delete", f"number:{number.id}", {"number": number.number})
    db.delete(number)
    db.commit()
    notify_routing_changed(ctx)
    return Response(status_code=204)
