"""Demo tenant for a first run: one number with the demo IVR flow, one loopback trunk, one admin."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from callcenter.acd_config import QueueSettings
from callcenter.chat_settings import ChatSettings, save_chat_settings
from callcenter.api.acd import create_agent
from callcenter.flows import import_flow
from callcenter import qa, tenancy
from callcenter.models import (AcdQueue, BusinessCalendarRow, Campaign, CampaignContact, Flow, Number, Role, Tenant,
                               Trunk, User, utcnow)
from callcenter.models import CannedReply, FaqPair
from campaigns.contacts import parse_contacts
from campaigns.settings import CampaignSettings
from ivr.calendar import ALWAYS_OPEN
from callcenter.security import generate_password, hash_password

DEMO_SLUG = "demo"
DEMO_NAME = "Demo"
DEMO_NUMBER = "4001234567"
DEMO_NUMBER_ZH = "4001234568"
DEMO_FLOWS = {DEMO_NUMBER: ("Demo inbound number", "data/demo-flow.json"),
              DEMO_NUMBER_ZH: ("演示号码（中文语音导航）", "data/demo-flow-zh.json")}
"""Demo number -> (description, its flow): the English (and Korean speech) menu, and the Mandarin one."""
DEMO_SURVEY = "data/demo-survey.json"
"""满意度调查: the call survey flow ``demo-survey`` (a Mandarin prompt, a key or the number said). Imported
but not switched on (``Tenant.survey_flow`` stays None): with it on, every demo caller whose agent hangs
up first hears it, which the demo's call tests and first tries do not expect. The admin turns it on in
the console (Satisfaction) or with ``PATCH /api/tenant {"survey_flow": "demo-survey"}``."""
DEMO_TRUNK = "demo-carrier"
DEMO_ADMIN = "admin"
DEMO_CALENDAR = "demo"
DEMO_OUTBOUND = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]  # any number


DEMO_QUEUES = ("sales", "support")
DEMO_AGENTS = {"agent1": {"sales": 5, "support": 2}, "agent2": {"support": 4}}
DEMO_STAFF = {"qa": Role.QA, "supervisor": Role.SUPERVISOR}
DEMO_CAMPAIGN = "回访示例"
"""A progressive campaign (a draft) on the sales queue, its contacts from ``data/demo-contacts.csv``:
started on /campaigns, it calls them through the demo trunk (127.0.0.1:5070, where
``tests/scenarios/campaign_callee.xml`` answers as persons, busy lines, no answer and machines)."""
DEMO_WIDGET_KEY = "wk_demo"
"""The demo tenant's chat widget key (``/demo-site`` embeds it); chats wait in the support queue."""
DEMO_OPERATOR = "operator"
"""The platform's operator (company ``platform``): creates and manages tenants on /operator."""


@dataclass
class DemoCredentials:
    """Passwords of what was created now (each is shown once, then only its hash is kept)."""

    admin: str | None = None
    agents: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """username -> (login password, SIP user, SIP password)"""
    staff: dict[str, str] = field(default_factory=dict)
    """username -> login password of the QA and supervisor users"""
    operator: str | None = None
    """The password of the operator ``DEMO_OPERATOR`` of the platform tenant"""


def _demo_campaign(db: Session, tenant: Tenant) -> None:
    campaign = Campaign(tenant_id=tenant.id, name=DEMO_CAMPAIGN, mode="progressive", queue="sales",
                        caller_id=DEMO_NUMBER, settings=CampaignSettings().model_dump(), status="draft")
    db.add(campaign)
    db.flush()
    text = resources.files("callcenter").joinpath("data/demo-contacts.csv").read_text("utf-8")
    for row in parse_contacts(text).contacts:
        db.add(CampaignContact(tenant_id=tenant.id, campaign_id=campaign.id, row=row.row, phone=row.phone,
                               name=row.name, timezone=row.timezone, attributes=row.attributes, status="pending",
                               attempts=0))


def _demo_chat_texts(db: Session, tenant: Tenant) -> None:
    """The FAQ bot's Q&A pairs and the agents' canned replies of ``data/demo-faq.json`` (a shop's)."""
    data = json.loads(resources.files("callcenter").joinpath("data/demo-faq.json").read_text("utf-8"))
    if db.scalar(select(FaqPair.id).where(FaqPair.tenant_id == tenant.id).limit(1)) is None:
        db.add_all(FaqPair(tenant_id=tenant.id, **pair) for pair in data["faq"])
    if db.scalar(select(CannedReply.id).where(CannedReply.tenant_id == tenant.id).limit(1)) is None:
        db.add_all(CannedReply(tenant_id=tenant.id, **reply) for reply in data["canned"])


def ensure_demo_tenant(engine: Engine) -> DemoCredentials:
    """Create what is missing of the demo tenant; the passwords of what was created now."""
    created = DemoCredentials()
    with Session(engine) as db, db.begin():
        tenant = db.scalar(select(Tenant).where(Tenant.slug == DEMO_SLUG))
        if tenant is None:
            tenant = Tenant(name=DEMO_NAME, slug=DEMO_SLUG, outbound_prefixes=DEMO_OUTBOUND, created_at=utcnow())
            db.add(tenant)
            db.flush()
        if not tenant.chat_settings:
            save_chat_settings(tenant, ChatSettings(widget_key=DEMO_WIDGET_KEY, queue="support"))
        for number_text, (description, _) in DEMO_FLOWS.items():
            if db.scalar(select(Number.id).where(Number.number == number_text)) is None:
                db.add(Number(tenant_id=tenant.id, number=number_text, description=description))
        if db.scalar(select(Trunk.id).where(Trunk.tenant_id == tenant.id, Trunk.name == DEMO_TRUNK)) is None:
            db.add(
                Trunk(
                    tenant_id=tenant.id,
                    name=DEMO_TRUNK,
                    inbound_ips=["127.0.0.1", "::1"],
                    outbound_host="127.0.0.1",
                    outbound_port=5070,
                    outbound_transport="udp",
                    register=False,
                    register_expires=600,
                    priority=100,
                    enabled=True,
                )
            )
        for username, role in {DEMO_ADMIN: Role.ADMIN, **DEMO_STAFF}.items():
            if db.scalar(select(User.id).where(User.tenant_id == tenant.id, User.username == username)) is None:
                password = generate_password()
                db.add(User(tenant_id=tenant.id, username=username, password_hash=hash_password(password),
                            role=role.value, active=True, created_at=utcnow()))
                if username == DEMO_ADMIN:
                    created.admin = password
                else:
                    created.staff[username] = password
        if db.scalar(select(BusinessCalendarRow.id).where(BusinessCalendarRow.tenant_id == tenant.id,
                                                          BusinessCalendarRow.name == DEMO_CALENDAR)) is None:
            # Open around the clock, so the demo behaves the same at any hour.
            db.add(BusinessCalendarRow(tenant_id=tenant.id, name=DEMO_CALENDAR,
                                       definition=ALWAYS_OPEN.model_dump(mode="json")))
            db.flush()
        for number_text, (_, flow_file) in DEMO_FLOWS.items():
            number = db.scalar(select(Number).where(Number.number == number_text))
            if number is not None and number.tenant_id == tenant.id and number.flow_version_id is None:
                text = resources.files("callcenter").joinpath(flow_file).read_text("utf-8")
                import_flow(db, tenant.id, json.loads(text), frozenset(), source_text=text, number=number_text)
        survey = json.loads(resources.files("callcenter").joinpath(DEMO_SURVEY).read_text("utf-8"))
        if db.scalar(select(Flow.id).where(Flow.tenant_id == tenant.id, Flow.name == survey["name"])) is None:
            import_flow(db, tenant.id, survey, frozenset())
        for name in DEMO_QUEUES:
            if db.scalar(select(AcdQueue.id).where(AcdQueue.tenant_id == tenant.id, AcdQueue.name == name)) is None:
                db.add(AcdQueue(tenant_id=tenant.id, name=name, config=QueueSettings().model_dump(mode="json")))
        if db.scalar(select(Campaign.id).where(Campaign.tenant_id == tenant.id, Campaign.name == DEMO_CAMPAIGN)) is None:
            _demo_campaign(db, tenant)
        qa.ensure_default_form(db, tenant.id)  # every call is scored automatically after transcription
        _demo_chat_texts(db, tenant)
        for username, skills in DEMO_AGENTS.items():
            if db.scalar(select(User.id).where(User.tenant_id == tenant.id, User.username == username)) is None:
                _, password, sip_password = create_agent(db, tenant, username, skills)
                created.agents[username] = (password, f"{tenant.slug}.{username}", sip_password)
        platform = tenancy.ensure_platform(db)
        if db.scalar(select(User.id).where(User.tenant_id == platform.id, User.username == DEMO_OPERATOR)) is None:
            created.operator = tenancy.add_operator(db, DEMO_OPERATOR)
    return created
