"""A tenant's web chat settings (``Tenant.chat_settings``), and finding a tenant by its widget key."""

from __future__ import annotations

import secrets
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from chat.widget_origin import normalise_origin

from .models import Tenant

DEFAULT_CAPACITY = 3
"""Chats an agent takes at once unless the tenant or the agent says otherwise."""


def new_widget_key() -> str:
    return "wk_" + secrets.token_urlsafe(18)


class ChatSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    widget_key: str = Field(default="", max_length=64)
    """Names the tenant in the widget's script tag (public: it is on the tenant's pages)."""
    enabled: bool = True
    allowed_origins: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=50)
    """Sites that may show the widget (``https://shop.example.com``); empty: none but the node's own pages."""
    queue: str | None = Field(default=None, max_length=64)
    """The ACD queue chats wait in; None: the tenant's first queue."""
    chat_capacity: int = Field(default=DEFAULT_CAPACITY, ge=0, le=10)
    """Chats an agent takes at once (an agent's own ``chat_capacity`` overrides it); 0: no chats."""
    calls_while_chatting: bool = False
    """Whether an agent holding chats may still be offered a call (a call takes the agent whole)."""
    visitor_grace_seconds: int = Field(default=120, ge=10, le=3600)
    """How long a visitor whose connection dropped keeps the conversation and its place in line."""
    greeting: str = Field(default="", max_length=500)
    """Shown at the top of the panel; empty: the widget's own."""
    max_attachment_mb: int = Field(default=10, ge=1, le=10)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return sorted({normalise_origin(origin) for origin in value})


def chat_settings(tenant: Tenant) -> ChatSettings:
    """The tenant's settings; stored fields a newer version no longer knows are ignored."""
    stored = {k: v for k, v in (tenant.chat_settings or {}).items() if k in ChatSettings.model_fields}
    return ChatSettings(**stored)


def save_chat_settings(tenant: Tenant, settings: ChatSettings) -> None:
    tenant.chat_settings = settings.model_dump()


def ensure_widget_key(tenant: Tenant) -> ChatSettings:
    """The tenant's settings with a widget key (made on first use)."""
    settings = chat_settings(tenant)
    if not settings.widget_key:
        settings.widget_key = new_widget_key()
        save_chat_settings(tenant, settings)
    return settings


def tenant_by_widget_key(db: Session, key: str) -> tuple[Tenant, ChatSettings] | None:
    """The active tenant whose widget key is ``key`` (chat enabled), else None."""
    if not key or len(key) > 64:
        return None
    query = select(Tenant).where(Tenant.status == "active", Tenant.chat_settings["widget_key"].as_string() == key)
    for tenant in db.scalars(query):
        settings = chat_settings(tenant)
        if settings.widget_key == key and settings.enabled:
            return tenant, settings
    return None
