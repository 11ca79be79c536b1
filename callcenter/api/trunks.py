"""SIP trunks of the caller's tenant (admin only). Passwords are write-only."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.orm import Session

from callcenter.api.audit import record_audit
from callcenter.api.bounds import DbId
from callcenter.api.deps import AppContext, get_ctx, get_db, get_owned, require_roles
from callcenter.api.errors import conflict, invalid
from callcenter.api.routing import notify_routing_changed
from callcenter.models import Trunk
from callcenter.security import Principal

router = APIRouter(prefix="/api/trunks", tags=["trunks"])

MAX_INBOUND_IPS = 100
admin = require_roles("admin")


def _check_ips(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    out = []
    for item in value:
        try:
            out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError as exc:
            raise PydanticCustomError("ip_network", "invalid IP or CIDR '{value}'", {"value": item}) from exc
    # A bare IP normalises to /32 or /128; keep it written as the IP for readability.
    return [n.split("/")[0] if n.endswith(("/32", "/128")) else n for n in out]


class _TrunkFields(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    inbound_ips: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=MAX_INBOUND_IPS)
    inbound_username: str | None = Field(default=None, max_length=100)
    inbound_password: str | None = Field(default=None, max_length=255)
    outbound_host: str | None = Field(default=None, max_length=255)
    outbound_port: int | None = Field(default=None, ge=1, le=65535)
    outbound_transport: Literal["udp", "tcp", "tls"] | None = None
    # "register" would shadow BaseModel.register; the JSON name stays "register".
    register_: bool | None = Field(default=None, alias="register")
    register_username: str | None = Field(default=None, max_length=100)
    register_password: str | None = Field(default=None, max_length=255)
    register_expires: int | None = Field(default=None, ge=60, le=86400)
    priority: int | None = Field(default=None, ge=0, le=1_000_000)
    enabled: bool | None = None
    require_tls: bool | None = None
    """Calls from the trunk only over TLS (others get 403); needs outbound_transport tls to send."""
    require_srtp: bool | None = None
    """Media with the trunk only as SRTP (plain offers get 488, ours are RTP/SAVP)."""

    @field_validator("inbound_ips")
    @classmethod
    def _ips(cls, value: list[str] | None) -> list[str] | None:
        return _check_ips(value)


class TrunkCreate(_TrunkFields):
    name: str = Field(min_length=1, max_length=100)


class TrunkPatch(_TrunkFields):
    name: str | None = Field(default=None, min_length=1, max_length=100)


class TrunkOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: int
    name: str
    inbound_ips: list[str]
    inbound_username: str | None
    has_inbound_password: bool
    outbound_host: str | None
    outbound_port: int
    outbound_transport: str
    register_: bool = Field(alias="register")
    register_username: str | None
    has_register_password: bool
    register_expires: int
    priority: int
    enabled: bool
    require_tls: bool
    require_srtp: bool
    status: str | None
    """Live state from the SIP node ("up"/"down"), None when unknown."""


# Columns that may not be set to null through the API.
_NOT_NULL = {"name", "inbound_ips", "outbound_port", "outbound_transport", "register", "register_expires", "priority", "enabled",
             "require_tls", "require_srtp"}
#: The outbound port a new trunk gets when none is given (RFC 3261 19.1.2: 5061 for TLS).
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}


def _status(ctx: AppContext, trunk_id: int) -> str | None:
    try:
        trunks: dict[Any, Any] = ctx.node_status().get("trunks", {}) or {}
    except Exception:
        return None
    value = trunks.get(trunk_id, trunks.get(str(trunk_id)))
    return str(value) if value is not None else None


def _out(t: Trunk, ctx: AppContext) -> TrunkOut:
    return TrunkOut(
        id=t.id,
        name=t.name,
        inbound_ips=list(t.inbound_ips or []),
        inbound_username=t.inbound_username,
        has_inbound_password=bool(t.inbound_password),
        outbound_host=t.outbound_host,
        outbound_port=t.outbound_port,
        outbound_transport=t.outbound_transport,
        register=t.register,
        register_username=t.register_username,
        has_register_password=bool(t.register_password),
        register_expires=t.register_expires,
        priority=t.priority,
        enabled=t.enabled,
        require_tls=t.require_tls,
        require_srtp=t.require_srtp,
        status=_status(ctx, t.id),
    )


def _dump(body: _TrunkFields, **kwargs: Any) -> dict[str, Any]:
    """Model fields as column names (``register_`` -> ``register``)."""
    values = body.model_dump(**kwargs)
    if "register_" in values:
        values["register"] = values.pop("register_")
    return values


def _validate(t: Trunk) -> None:
    if t.register and not (t.outbound_host and t.register_username and t.register_password):
        raise invalid("register needs outbound_host, register_username and register_password")
    if bool(t.inbound_username) != bool(t.inbound_password):
        raise invalid("inbound_username and inbound_password go together")
    if t.require_tls and t.outbound_host and t.outbound_transport != "tls":
        raise invalid("a trunk that requires TLS sends over TLS too: set outbound_transport to tls")


def _name_taken(db: Session, tenant_id: int, name: str, exclude_id: int | None = None) -> bool:
    stmt = select(Trunk.id).where(Trunk.tenant_id == tenant_id, Trunk.name == name)
    if exclude_id is not None:
        stmt = stmt.where(Trunk.id != exclude_id)
    return db.scalar(stmt) is not None


@router.get("", response_model=list[TrunkOut])
def list_trunks(
    principal: Principal = Depends(admin), db: Session = Depends(get_db), ctx: AppContext = Depends(get_ctx)
) -> list[TrunkOut]:
    """The tenant's trunks by priority."""
    rows = db.scalars(
        select(Trunk).where(Trunk.tenant_id == principal.tenant_id).order_by(Trunk.priority, Trunk.id)
    ).all()
    return [_out(t, ctx) for t in rows]


@router.get("/{trunk_id}", response_model=TrunkOut)
def get_trunk(
    trunk_id: DbId, principal: Principal = Depends(admin), db: Session = Depends(get_db), ctx: AppContext = Depends(get_ctx)
) -> TrunkOut:
    return _out(get_owned(db, Trunk, trunk_id, principal, "trunk"), ctx)


@router.post("", response_model=TrunkOut, status_code=201)
def create_trunk(
    body: TrunkCreate,
    principal: Principal = Depends(admin),
    db: Session = Depends(get_db),
    ctx: AppContext = Depends(get_ctx),
) -> TrunkOut:
    """Add a trunk; the SIP node reloads its routing."""
    values = _dump(body, exclude_none=True)
    if _name_taken(db, principal.tenant_id, body.name):
        raise conflict("trunk-name-taken", "a trunk with this name exists")
    trunk = Trunk(
        tenant_id=principal.tenant_id,
        **{"inbound_ips": [], "outbound_port": DEFAULT_PORTS[body.outbound_transport or "udp"],
           "outbound_transport": "udp", "register": False, "register_expires": 600, "priority": 100, "enabled": True,
           "require_tls": False, "require_srtp": False, **values},
    )
    _validate(trunk)
    db.add(trunk)
    db.flush()
    record_audit(db, principal, "trunk.create", f"trunk:{trunk.id}", values)
    db.commit()
    notify_routing_changed(ctx)
    return _out(trunk, ctx)


@router.patch("/{trunk_id}", response_model=TrunkOut)
def patch_trunk(
    trunk_id: DbId,
    body: TrunkPatch,
    principal: Principal = Depends(admin),
    db: Session = Depends(get_db),
    ctx: AppContext = Depends(get_ctx),
) -> TrunkOut:
    """Change some fields; null clears optional fields."""
    trunk = get_owned(db, Trunk, trunk_id, principal, "trunk")
    changes = _dump(body, exclude_unset=True)
    nulled = sorted(k for k, v in changes.items() if v is None and k in _NOT_NULL)
    if nulled:
        raise invalid(f"fields cannot be null: {', '.join(nulled)}")
    if "name" in changes and _name_taken(db, principal.tenant_id, changes["name"], trunk.id):
        raise conflict("trunk-name-taken", "a trunk with this name exists")
    for key, value in changes.items():
        setattr(trunk, key, value)
    _validate(trunk)
    record_audit(db, principal, "trunk.update", f"trunk:{trunk.id}", changes)
    db.commit()
    notify_routing_changed(ctx)
    return _out(trunk, ctx)


@router.delete("/{trunk_id}", status_code=204)
def delete_trunk(
    trunk_id: DbId,
    principal: Principal = Depends(admin),
    db: Session = Depends(get_db),
    ctx: AppContext = Depends(get_ctx),
) -> Response:
    """Remove a trunk; call records keep their history with trunk_id NULL."""
    trunk = get_owned(db, Trunk, trunk_id, principal, "trunk")
    record_audit(db, principal, "trunk.delete", f"trunk:{trunk.id}", {"name": trunk.name})
    db.delete(trunk)
    db.commit()
    notify_routing_changed(ctx)
    return Response(status_code=204)
