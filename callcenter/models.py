"""Database models. Every tenant-owned row carries an indexed ``tenant_id``.

Datetimes are timezone-aware UTC in Python; SQLite stores them as naive UTC.
The hand-written migration in ``migrations/versions`` must match these tables
(``tests/callcenter/test_migrations.py`` compares them).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware-UTC datetimes in Python; naive UTC on SQLite, timestamptz elsewhere."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: call records and audit times must be timezone-aware")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Role(enum.StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    QA = "qa"
    OPERATOR = "operator"
    """Runs the platform (tenants, quotas, usage); a user of the platform tenant only."""


TENANT_ROLES: tuple[Role, ...] = (Role.ADMIN, Role.SUPERVISOR, Role.AGENT, Role.QA)
"""The roles of a customer tenant's users (every role but the operator's)."""
PLATFORM_SLUG = "platform"
"""The reserved tenant of the operators: never a customer, takes no calls."""
DEFAULT_TIMEZONE = "Asia/Shanghai"
LOCALES = ("zh-CN", "en")
"""The languages of the pages; a user's choice is stored in ``users.locale``."""


class TenantStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    """New calls and sign-ins refused, sessions stop working; the data is kept."""


class TenantKind(enum.StrEnum):
    CUSTOMER = "customer"
    PLATFORM = "platform"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class HangupSide(enum.StrEnum):
    CALLER = "caller"
    CALLEE = "callee"
    PLATFORM = "platform"


class Transport(enum.StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


def _in(column: str, values: type[enum.StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


DEFAULT_BREAK_REASONS = ("break", "lunch", "training", "meeting")
DEFAULT_DISPOSITIONS: tuple[dict[str, str], ...] = (
    {"code": "resolved", "label": "Resolved"},
    {"code": "follow_up", "label": "Follow-up needed"},
    {"code": "escalated", "label": "Escalated"},
    {"code": "wrong_number", "label": "Wrong number"},
)
"""Wrap-up codes of a new tenant (migration 0004 gives existing tenants the same list)."""


def default_dispositions() -> list[dict[str, str]]:
    """A fresh copy of DEFAULT_DISPOSITIONS (JSON columns must not share one mutable default)."""
    return [dict(d) for d in DEFAULT_DISPOSITIONS]


DEFAULT_RECORDING_POLICY: dict[str, Any] = {"mode": "all", "percent": 100, "ivr": False, "queues": {}}


def default_recording_policy() -> dict[str, Any]:
    """Every call recorded from the agent's answer; the IVR part not."""
    return {**DEFAULT_RECORDING_POLICY, "queues": {}}


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime()}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    outbound_prefixes: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Allowed dial prefixes for outbound calls; empty list: no outbound calls."""
    http_allow_hosts: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Hosts the IVR's http node may call (exact names or ``*.example.com``); empty: none."""
    asr_model: Mapped[str | None] = mapped_column(String(500))
    """Path of the tenant's vosk model; None: the node's model."""
    break_reasons: Mapped[list[str]] = mapped_column(JSON, default=lambda: list(DEFAULT_BREAK_REASONS))
    """Reason codes agents may give for a break (``missed`` is the ACD's own, always allowed)."""
    dispositions: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=default_dispositions)
    """Wrap-up codes agents pick after a call: ``[{"code": ..., "label": ...}]``."""
    recording_pause_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether agents may pause and resume the recording of a call from the softphone."""
    recording_policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=default_recording_policy)
    """Which calls are recorded: ``{"mode": "all"|"none"|"percent", "percent": 0-100, "ivr": bool,
    "queues": {queue: {"mode": ..., "percent": ...}}}`` (a queue's entry overrides the tenant's)."""
    recording_format: Mapped[str] = mapped_column(String(8), default="opus")
    """Stored file format: ``opus`` (Ogg Opus) or ``flac``."""
    retention_days: Mapped[int | None] = mapped_column(Integer, default=365)
    """Recordings older than this are purged (unless on legal hold); None: kept forever."""
    agents_hear_own_calls: Mapped[bool] = mapped_column(Boolean, default=False)
    """Whether agents may play and download the recordings of their own calls."""
    recording_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The tenant's recording data key, wrapped by the node's master key (created on first use)."""
    transcription_mode: Mapped[str] = mapped_column(String(16), default="vocabulary")
    """``vocabulary``: recognise the common call-center words, the tenant's vocabulary and its QA
    forms' phrases (what small models do well); ``free``: any speech (needs a large model)."""
    transcription_vocabulary: Mapped[list[str]] = mapped_column(JSON, default=list)
    """The tenant's own words and phrases for vocabulary mode (product names, ...)."""
    status: Mapped[str] = mapped_column(String(16), default=TenantStatus.ACTIVE.value)
    kind: Mapped[str] = mapped_column(String(16), default=TenantKind.CUSTOMER.value)
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIMEZONE)
    """IANA name: the pages show times, and reports cut days, in it."""
    quota_concurrent_calls: Mapped[int | None] = mapped_column(Integer)
    """Carrier calls in progress at once, cluster-wide (more are refused, cause ``quota``); None: no limit."""
    quota_agents: Mapped[int | None] = mapped_column(Integer)
    quota_recording_mb: Mapped[int | None] = mapped_column(Integer)
    """Stored recordings (MiB); at it, new calls are not recorded."""
    quota_transcription_minutes: Mapped[int | None] = mapped_column(Integer)
    """Minutes of recordings transcribed in a calendar month (UTC); past it, transcription is skipped."""
    exported_at: Mapped[datetime | None] = mapped_column()
    """The last export of the tenant's data: deleting the tenant is refused before one."""
    chat_settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Web chat: ``callcenter.chat_settings.ChatSettings``'s fields (widget key, allowed origins,
    queue, chats per agent at once, whether an agent in chats may get a call ...)."""
    survey_flow: Mapped[str | None] = mapped_column(String(64))
    """The flow a caller is sent to when the agent hangs up (a satisfaction survey); None: none."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "username", name="uq_users_tenant_username"),
        CheckConstraint(_in("role", Role), name="ck_users_role"),
        CheckConstraint(f"locale IS NULL OR locale IN ({', '.join(map(repr, LOCALES))})", name="ck_users_locale"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    """The user's page language (one of ``LOCALES``); None: the browser's."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Trunk(Base):
    __tablename__ = "trunks"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_trunks_tenant_name"),
        CheckConstraint(_in("outbound_transport", Transport), name="ck_trunks_transport"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    inbound_ips: Mapped[list[str]] = mapped_column(JSON, default=list)
    """IPs / CIDRs allowed to send INVITEs on this trunk."""
    # Digest auth needs the clear password (or HA1 per realm), so it is not hashed.
    inbound_username: Mapped[str | None] = mapped_column(String(100))
    inbound_password: Mapped[str | None] = mapped_column(String(255))
    outbound_host: Mapped[str | None] = mapped_column(String(255))
    outbound_port: Mapped[int] = mapped_column(Integer, default=5060)
    outbound_transport: Mapped[str] = mapped_column(String(8), default=Transport.UDP.value)
    register: Mapped[bool] = mapped_column(Boolean, default=False)
    register_username: Mapped[str | None] = mapped_column(String(100))
    register_password: Mapped[str | None] = mapped_column(String(255))
    register_expires: Mapped[int] = mapped_column(Integer, default=600)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    """Lower first when several trunks can carry an outbound call."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    require_tls: Mapped[bool] = mapped_column(Boolean, default=False)
    """Calls from this trunk must come over TLS (403 otherwise); outbound needs ``outbound_transport`` tls."""
    require_srtp: Mapped[bool] = mapped_column(Boolean, default=False)
    """Media with this trunk must be SRTP (a plain offer gets 488; our offers are RTP/SAVP only)."""


class Number(Base):
    __tablename__ = "numbers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    """The dialed (400) number, digits only, unique across tenants."""
    description: Mapped[str] = mapped_column(String(255), default="")
    flow_version_id: Mapped[int | None] = mapped_column(ForeignKey("flow_versions.id", ondelete="SET NULL"))
    """The IVR flow version published on this number; None: the line-test greeting and echo."""


class Flow(Base):
    """An IVR flow of a tenant; its documents are the versions."""

    __tablename__ = "flows"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_flows_tenant_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FlowVersion(Base):
    """One immutable, validated version of a flow document."""

    __tablename__ = "flow_versions"
    __table_args__ = (UniqueConstraint("flow_id", "version", name="uq_flow_versions_flow_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flow_id: Mapped[int] = mapped_column(ForeignKey("flows.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class BusinessCalendarRow(Base):
    """A tenant's business hours (``ivr.calendar.BusinessCalendar`` as JSON)."""

    __tablename__ = "business_calendars"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_business_calendars_tenant_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)


class CallRecord(Base):
    __tablename__ = "call_records"
    __table_args__ = (
        Index("ix_call_records_tenant_received", "tenant_id", "received_at"),
        Index("ix_call_records_ended_at", "ended_at"),
        Index("ix_call_records_tenant_agent", "tenant_id", "agent_id"),
        Index("ix_call_records_node_open", "node_id", "ended_at"),
        Index("ix_call_records_tenant_caller", "tenant_id", "caller"),
        CheckConstraint(_in("direction", Direction), name="ck_call_records_direction"),
        CheckConstraint(
            f"hangup_side IS NULL OR {_in('hangup_side', HangupSide)}", name="ck_call_records_hangup_side"
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    sip_call_id: Mapped[str] = mapped_column(String(255))
    # Nullable: a call to an unknown number still gets a record. SET NULL so trunks
    # can be deleted without losing the history.
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="SET NULL"))
    trunk_id: Mapped[int | None] = mapped_column(ForeignKey("trunks.id", ondelete="SET NULL"))
    direction: Mapped[str] = mapped_column(String(8))
    caller: Mapped[str] = mapped_column(String(255))
    dialed: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column()
    answered_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    end_cause: Mapped[str | None] = mapped_column(String(64))
    hangup_side: Mapped[str | None] = mapped_column(String(8))
    sip_status: Mapped[int | None] = mapped_column(Integer)
    codec: Mapped[str | None] = mapped_column(String(32))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    """The agent who answered last (a transfer overwrites it); None: no agent took the call."""
    queue: Mapped[str | None] = mapped_column(String(64))
    """The ACD queue the answering agent took the call from."""
    disposition: Mapped[str | None] = mapped_column(String(64))
    """The wrap-up code (one of the tenant's ``dispositions`` when it was saved)."""
    wrapup_notes: Mapped[str | None] = mapped_column(Text)
    wrapup_at: Mapped[datetime | None] = mapped_column()
    node_id: Mapped[str | None] = mapped_column(String(32))
    """The cluster node that held the call (``Settings.node_id``); None on a single node."""
    agent_node: Mapped[str | None] = mapped_column(String(32))
    """The node where the answering agent's side of the call was, when not ``node_id``'s."""
    channel: Mapped[str] = mapped_column(String(8), default="voice", server_default="voice")
    """``voice`` (a call) or ``chat`` (a web chat: its conversation has the same id)."""

    @property
    def duration(self) -> float | None:
        """Talk time in seconds (answer to end); None when unanswered or still running."""
        if self.answered_at is None or self.ended_at is None:
            return None
        return max(0.0, (self.ended_at - self.answered_at).total_seconds())


class CallEvent(Base):
    """What happened to a call at the agent desk: offered, answered, hold, transfer, wrap-up, ..."""

    __tablename__ = "call_events"
    __table_args__ = (Index("ix_call_events_tenant_at", "tenant_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("call_records.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column()
    kind: Mapped[str] = mapped_column(String(32))
    """offered, declined, answered, hold, unhold, transfer, consult, conference, reattached, wrapup, ..."""
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class IvrTrace(Base):
    """The IVR path of one call: nodes visited, inputs, recognitions and how it ended."""

    __tablename__ = "ivr_traces"

    call_id: Mapped[str] = mapped_column(ForeignKey("call_records.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    flow_version_id: Mapped[int | None] = mapped_column(ForeignKey("flow_versions.id", ondelete="SET NULL"))
    result: Mapped[str | None] = mapped_column(String(255))
    trace: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Voicemail(Base):
    __tablename__ = "voicemails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("call_records.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(500))
    seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AcdQueue(Base):
    """A queue (skill group) of a tenant; ``config`` holds acd.model.QueueConfig's fields."""

    __tablename__ = "acd_queues"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_acd_queues_tenant_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Agent(Base):
    """A user who takes calls: skills with proficiency 1-5 and SIP phone credentials."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    skills: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    sip_ha1: Mapped[str | None] = mapped_column(String(64))
    """md5(sip_user:realm:password) for the phone's digest auth; the SIP password itself is never stored."""
    require_tls: Mapped[bool] = mapped_column(Boolean, default=False)
    """The agent's SIP phone must register over TLS (403 otherwise), so it is rung over TLS."""
    require_srtp: Mapped[bool] = mapped_column(Boolean, default=False)
    """Calls to the agent's SIP phone offer SRTP only (RTP/SAVP)."""
    chat_capacity: Mapped[int | None] = mapped_column(Integer)
    """Chats the agent takes at once; None: the tenant's ``chat_settings`` capacity."""


class AgentStateChange(Base):
    """Every agent state change, with its time and reason (reports read these)."""

    __tablename__ = "agent_state_changes"
    __table_args__ = (Index("ix_agent_state_changes_tenant_at", "tenant_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    old_state: Mapped[str] = mapped_column(String(16))
    new_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column()


class AcdSnapshot(Base):
    """The ACD state of a tenant that must survive a restart (agent states, callbacks)."""

    __tablename__ = "acd_snapshots"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    epoch: Mapped[int | None] = mapped_column(BigInteger)
    """The lease epoch of the cluster node that saved it (None on a single node): a save from an
    older epoch (a former owner that was paused) never replaces a newer one."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_logs"
    __table_args__ = (Index("ix_audit_logs_tenant_at", "tenant_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class AuthBan(Base):
    """A source address (``account`` None), or one account from a source, refused after too many
    failed authentications (``authguard``). Kept so a restart does not lift it and so the
    operator can list and lift bans (``callcenter bans``)."""

    __tablename__ = "auth_bans"
    __table_args__ = (Index("ix_auth_bans_until", "until"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    protocol: Mapped[str] = mapped_column(String(8))
    """``sip`` or ``http``."""
    source: Mapped[str] = mapped_column(String(64))
    account: Mapped[str | None] = mapped_column(String(200))
    """The SIP user or ``tenant/username`` banned from ``source``; None: the whole source."""
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    failures: Mapped[int] = mapped_column(Integer)
    since: Mapped[datetime] = mapped_column()
    until: Mapped[datetime] = mapped_column()
    lifted_at: Mapped[datetime | None] = mapped_column()
    lifted_by: Mapped[str | None] = mapped_column(String(100))


class ApiToken(Base):
    """A login session; the same token works as cookie and as bearer token."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    """sha256 hex of the random token; the token itself is never stored."""
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class Recording(Base):
    """One call's recording: two channels (caller, agent), encrypted on disk.

    ``status``: ``recording`` (live, a journal on disk), ``complete``, ``incomplete`` (the node
    died mid-call; the audio up to then is kept), ``failed`` (the recordings disk was full or
    could not be written; no audio is kept, the call itself went on), ``purged`` (retention
    removed the file).
    """

    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_tenant_started", "tenant_id", "started_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    call_id: Mapped[str] = mapped_column(String(36), index=True)
    """The caller's call record (no foreign key: a recording outlives nothing, but must not vanish with it)."""
    status: Mapped[str] = mapped_column(String(16), default="recording")
    format: Mapped[str] = mapped_column(String(8), default="opus")
    storage_key: Mapped[str | None] = mapped_column(String(500))
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    """Checksum of the stored (encrypted) bytes."""
    duration: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    agent_answered_s: Mapped[float | None] = mapped_column(Float)
    """Seconds into the recording at which an agent answered (None: IVR only)."""
    pauses: Mapped[list[list[float]]] = mapped_column(JSON, default=list)
    """Paused intervals ``[[start_s, end_s, reason], ...]`` in seconds from the start."""
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    purged_at: Mapped[datetime | None] = mapped_column()


class Transcript(Base):
    """The words of a recording, by speaker, and the talk analytics; also the transcription job."""

    __tablename__ = "transcripts"
    __table_args__ = (Index("ix_transcripts_tenant_status", "tenant_id", "status"),
                      Index("ix_transcripts_queue", "status", "created_at"))

    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    call_id: Mapped[str] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """``pending``, ``running``, ``done`` or ``failed``."""
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    words: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """``[{"word", "start", "end", "conf", "speaker"}]``, sorted by start."""
    text: Mapped[str] = mapped_column(Text, default="")
    analytics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    worker: Mapped[str | None] = mapped_column(String(100))
    """Who took the job (``node n1``, ``worker host/pid``) while ``running``; the last one after."""
    lease_until: Mapped[datetime | None] = mapped_column()
    """A ``running`` job whose lease passed is taken again (its worker died): the worker renews
    it while it works (PostgreSQL queue, see ``callcenter.transcription``)."""


class QueueThreshold(Base):
    """A queue's wallboard alert thresholds, shared by every node (``callcenter.wallboard``)."""

    __tablename__ = "wallboard_thresholds"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), primary_key=True)
    oldest_contact_age: Mapped[float | None] = mapped_column(Float)
    """Seconds; None: off."""
    service_level: Mapped[float | None] = mapped_column(Float)
    """Percent; None: off."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class QaForm(Base):
    """A tenant's evaluation form; editing one makes a new version (evaluations keep theirs)."""

    __tablename__ = "qa_forms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QaEvaluation(Base):
    """One evaluation of a call with one form: automatic (``evaluator_id`` None) or by a person."""

    __tablename__ = "qa_evaluations"
    __table_args__ = (Index("ix_qa_evaluations_tenant_call", "tenant_id", "call_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    call_id: Mapped[str] = mapped_column(String(36))
    form_id: Mapped[int] = mapped_column(ForeignKey("qa_forms.id", ondelete="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    evaluator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(8))
    """``auto`` or ``manual``."""
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """``{question_id: {"value", "auto_value", "evidence", "reason", "comment", "overridden"}}``."""
    score: Mapped[float | None] = mapped_column(Float)
    section_scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    auto_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QaDispute(Base):
    """An agent's objection to an evaluation, and how QA resolved it."""

    __tablename__ = "qa_disputes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    evaluation_id: Mapped[int] = mapped_column(ForeignKey("qa_evaluations.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    comment: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    """``open``, ``accepted`` or ``rejected``."""
    resolution: Mapped[str] = mapped_column(Text, default="")
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column()


class Campaign(Base):
    """An outbound campaign of a tenant (``campaigns``): who is dialed, how fast, and what a
    person or a machine who answers gets. ``settings`` holds ``CampaignSettings``'s fields
    (``callcenter.api.campaigns``): lines, pacing caps, retries, calling window, messages."""

    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_campaigns_tenant_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(16))
    """``preview``, ``progressive``, ``predictive`` or ``agentless``."""
    status: Mapped[str] = mapped_column(String(16), default="draft")
    """``draft``, ``running``, ``paused``, ``stopped`` or ``finished``."""
    queue: Mapped[str | None] = mapped_column(String(64))
    """The ACD queue whose agents take the campaign's calls (not for agentless campaigns)."""
    flow: Mapped[str | None] = mapped_column(String(64))
    """The flow an agentless campaign's answered calls run."""
    caller_id: Mapped[str | None] = mapped_column(String(32))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()


class CampaignContact(Base):
    """A number a campaign calls, from its imported list, with where it stands."""

    __tablename__ = "campaign_contacts"
    __table_args__ = (UniqueConstraint("campaign_id", "phone", name="uq_campaign_contacts_phone"),
                      Index("ix_campaign_contacts_due", "campaign_id", "status", "next_attempt_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    row: Mapped[int] = mapped_column(Integer)
    """Its row in the imported file (the header is row 1)."""
    phone: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200), default="")
    timezone: Mapped[str | None] = mapped_column(String(64))
    """IANA zone its calling window is read in; None: the campaign's."""
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """``pending`` (due at ``next_attempt_at``), ``dialing``, ``done`` (a person answered),
    ``exhausted`` (no attempt left), ``skipped`` (do-not-call or not allowed)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_outcome: Mapped[str | None] = mapped_column(String(16))
    next_attempt_at: Mapped[datetime | None] = mapped_column()


class CampaignAttempt(Base):
    """One call to a contact: its outcome and the machine detector's verdict (the agent who talked
    and for how long are the call record's)."""

    __tablename__ = "campaign_attempts"
    __table_args__ = (Index("ix_campaign_attempts_campaign_started", "campaign_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("campaign_contacts.id", ondelete="CASCADE"), index=True)
    call_id: Mapped[str | None] = mapped_column(String(36))
    """The call record's id."""
    caller_id: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(16))
    """None while the call is in progress; then one of ``campaigns.outcomes``."""
    amd_seconds: Mapped[float | None] = mapped_column(Float)
    """How long the machine detector listened before its verdict."""
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()


class DoNotCall(Base):
    """A number the tenant must never call from a campaign."""

    __tablename__ = "do_not_call"
    __table_args__ = (UniqueConstraint("tenant_id", "number", name="uq_do_not_call_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(String(200), default="")
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChatConversation(Base):
    """A web chat: the visitor, where it stands, and its counters. Its contact record is the
    ``CallRecord`` with the same id (channel ``chat``): reports, QA and earlier contacts read that."""

    __tablename__ = "chat_conversations"
    __table_args__ = (Index("ix_chat_conversations_tenant_visitor", "tenant_id", "visitor_id"),
                      Index("ix_chat_conversations_tenant_status", "tenant_id", "status"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    visitor_id: Mapped[str] = mapped_column(String(64))
    """The widget's id of the visitor's browser (kept in its storage): a reopened page finds its chat."""
    name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    question: Mapped[str] = mapped_column(Text, default="")
    page_url: Mapped[str] = mapped_column(String(500), default="")
    locale: Mapped[str] = mapped_column(String(8), default="zh-CN")
    queue: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="bot")
    """``bot`` (the FAQ bot answers), ``queued``, ``active`` (with an agent) or ``ended``."""
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    visitor_read_seq: Mapped[int] = mapped_column(Integer, default=0)
    """The last message the visitor has seen (read receipts)."""
    agent_read_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column()
    first_response_at: Mapped[datetime | None] = mapped_column()
    """The agent's first message."""
    ended_at: Mapped[datetime | None] = mapped_column()
    end_cause: Mapped[str | None] = mapped_column(String(32))


class ChatMessage(Base):
    """One message of a conversation; ``seq`` increases by one per conversation (the widget resumes after it)."""

    __tablename__ = "chat_messages"
    __table_args__ = (UniqueConstraint("conversation_id", "seq", name="uq_chat_messages_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("chat_conversations.id", ondelete="CASCADE"))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    sender: Mapped[str] = mapped_column(String(8))
    """``visitor``, ``agent``, ``bot`` or ``system``."""
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text, default="")
    attachment_id: Mapped[str | None] = mapped_column(String(36))
    client_id: Mapped[str | None] = mapped_column(String(64))
    """The sender's own id of the message: a message sent again after a drop is stored once."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChatAttachment(Base):
    """A file sent in a chat (an image or a PDF), stored under the tenant's chat folder."""

    __tablename__ = "chat_attachments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("chat_conversations.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChatSearchTerm(Base):
    """A word of a conversation's transcript (jieba's segmentation, lower case): search finds
    conversations holding every word of the query (``chat.search``)."""

    __tablename__ = "chat_search_terms"
    __table_args__ = (Index("ix_chat_search_terms_tenant_term", "tenant_id", "term"),)

    conversation_id: Mapped[str] = mapped_column(ForeignKey("chat_conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))


class OfflineMessage(Base):
    """What a visitor left when no agent was available, for the tenant to follow up."""

    __tablename__ = "chat_offline_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    email: Mapped[str] = mapped_column(String(200), default="")
    message: Mapped[str] = mapped_column(Text)
    page_url: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column()
    handled_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class FaqPair(Base):
    """A question the FAQ bot answers: its phrasings and the answer (``chat.faq``)."""

    __tablename__ = "faq_pairs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    alternatives: Mapped[list[str]] = mapped_column(JSON, default=list)
    answer: Mapped[str] = mapped_column(Text)
    queue: Mapped[str | None] = mapped_column(String(64))
    """Only the bot of this queue uses it; None: every queue's bot."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CannedReply(Base):
    """A reply an agent inserts in a chat by its short code (``/refund``)."""

    __tablename__ = "canned_replies"
    __table_args__ = (UniqueConstraint("tenant_id", "code", name="uq_canned_replies_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)


class CsatResponse(Base):
    """A customer's satisfaction rating (1-5) of one contact: a chat's rating card or a call's survey."""

    __tablename__ = "csat_responses"
    __table_args__ = (UniqueConstraint("contact_id", name="uq_csat_responses_contact"),
                      Index("ix_csat_responses_tenant_created", "tenant_id", "created_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    contact_id: Mapped[str] = mapped_column(String(36))
    """The contact's ``CallRecord`` id (a call's, or a chat's: its conversation id)."""
    channel: Mapped[str] = mapped_column(String(8))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    queue: Mapped[str | None] = mapped_column(String(64))
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
