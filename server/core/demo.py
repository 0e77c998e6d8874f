"""The demo team: a small pipeline with outreach, contacts, deals and leads to explore."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from server.core.db import transaction
from server.core.models import (
    ApiKey,
    Contact,
    Deal,
    Lead,
    LeadStageChange,
    Outreach,
    Team,
    utcnow,
)
from server.core.scope import Actor, TeamScope
from server.core.services import communications, contacts, deals, leads, outreach, teams
from server.core.starter import load_starter

DEMO_TEAM = "Demo"
DEMO_KEY_LABEL = "demo (make run)"

SELLERS = [("Maria Lopez", "maria@demo.local"), ("Jonas Berg", "jonas@demo.local")]
MARKETER = ("Priya Nair", "priya@demo.local")

OUTREACH = [
    {
        "type": "platform",
        "value": "Upwork",
        "description": "Proposal on a Shopify rebuild job",
        "cost": 12,
    },
    {"type": "platform", "value": "PeoplePerHour", "description": "Answered a data pipeline brief"},
    {
        "type": "email",
        "email": "ceo@northwind.example",
        "description": "Cold email, logistics sequence",
    },
    {"type": "call", "phone": "+49 30 1234567", "description": "Follow-up call after trade fair"},
    {
        "type": "social",
        "value": "https://www.linkedin.com/in/example-cto",
        "description": "LinkedIn InMail",
    },
    {"type": "messenger", "value": "@greenleaf_ops", "description": "Telegram intro via partner"},
    {"type": "email", "email": "hello@brightlabs.example", "description": "Newsletter reply"},
    {"type": "platform", "value": "Guru", "description": "Invited to bid on an ERP integration"},
]

CONTACTS = [
    ("Ada Fischer", "ada@northwind.example", "Northwind Logistics", 2),
    ("Tom Becker", "tom@contoso.example", "Contoso Retail", 0),
    ("Lena Wolf", "lena@brightlabs.example", "Bright Labs", 6),
    ("Omar Haddad", "omar@greenleaf.example", "Greenleaf Foods", 5),
    ("Sofia Rossi", "sofia@fabrikam.example", "Fabrikam", 4),
    ("Ken Sato", "ken@tailspin.example", "Tailspin Toys", 7),
    ("Eva Novak", "eva@woodgrove.example", "Woodgrove Bank", 3),
    ("Luca Marino", "luca@adatum.example", "Adatum", 1),
]

DEALS = [
    ("Northwind route planner", 0, 42000, "negotiation", "firm", "high", 20),
    ("Contoso storefront rebuild", 1, 18000, "proposal", "firm", "medium", 35),
    ("Bright Labs analytics", 2, 9500, "discovery", "budgetary", "medium", 50),
    ("Greenleaf ordering portal", 3, 27000, "proposal", "budgetary", "low", 60),
    ("Fabrikam CRM cleanup", 4, 6000, "qualification", "budgetary", "low", 75),
    ("Tailspin mobile app", 5, 55000, "negotiation", "firm", "medium", 28),
    ("Woodgrove data pipeline", 6, 31000, "discovery", "firm", "high", 90),
]

QUALIFICATION = {
    "score_threshold": 60,
    "required_fields": ["contact.email", "contact.company"],
    "condition": "!ends_with(contact.email || '', '@gmail.com')",
}
"""The demo team's rule: a business email, a company and a score of 60."""

LEADS = [(7, "lead", 10), (2, "mql", 45), (4, "mql", 70), (3, "sal", 80), (1, "opportunity", 90)]


@dataclass
class DemoResult:
    created: bool
    key: str
    summary: str


def _populate(session: Session, team: Team, admin_id: int) -> str:
    scope = TeamScope(session, Actor(team_id=team.id, user_id=admin_id))
    loaded = load_starter(scope)
    sellers = [
        teams.ensure_user(session, team, email, name=name, role="member").id
        for name, email in SELLERS
    ]
    marketer = teams.ensure_user(session, team, MARKETER[1], name=MARKETER[0], role="member")
    # Before the leads: the mql lead at 70 crosses the rule's threshold and goes to sales.
    team.settings = {
        **(team.settings or {}),
        "qualification": QUALIFICATION,
        "sales_users": sellers,
        "marketing_users": [marketer.id],
    }
    session.commit()
    now = utcnow()
    outreach_ids = []
    for n, item in enumerate(OUTREACH):
        data = outreach.OutreachIn(
            **item, occurred_at=now - dt.timedelta(days=40 - 4 * n), user_id=sellers[n % 2]
        )
        outreach_ids.append(outreach.create(scope, data).id)
    contact_ids = []
    for n, (name, email, company, source) in enumerate(CONTACTS):
        contact = contacts.create(
            scope,
            contacts.ContactIn(
                name=name, email=email, company=company, outreach_id=outreach_ids[source]
            ),
        )
        contact_ids.append(contact.id)
        communications.create(
            scope,
            contact.id,
            communications.CommunicationIn(
                channel="email", at=now - dt.timedelta(days=3 * n + 1), note="Intro"
            ),
        )
    for n, (title, contact, amount, stage, kind, relationship, days) in enumerate(DEALS):
        deals.create(
            scope,
            deals.DealIn(
                title=title,
                contact_id=contact_ids[contact],
                amount=amount,
                currency="EUR",
                stage=stage,
                expected_close_date=(now + dt.timedelta(days=days)).date(),
                owner_id=sellers[n % 2],
                custom={"proposal_type": kind, "relationship": relationship},
            ),
        )
    won = deals.create(
        scope,
        deals.DealIn(
            title="Adatum support retainer",
            contact_id=contact_ids[7],
            amount=12000,
            currency="EUR",
            stage="negotiation",
            status="won",
            owner_id=sellers[0],
            custom={"proposal_type": "firm", "relationship": "high"},
        ),
    )
    for contact, stage, score in LEADS:
        leads.create(scope, leads.LeadIn(contact_id=contact_ids[contact], stage=stage, score=score))
    past = _history(session, team, admin_id, sellers, now)
    return (
        f"{len(loaded)} shipped workflows, {len(OUTREACH) + past['outreach']} outreach, "
        f"{len(CONTACTS) + past['contacts']} contacts, {len(DEALS) + 1 + past['deals']} deals "
        f"(deal {won.id} won), {len(LEADS) + past['leads']} leads"
    )


HISTORY_WEEKS = 12
HISTORY_CHANNELS = [
    {"type": 1, "value": "Upwork"},
    {"type": 1, "value": "Guru"},
    {"type": 1, "value": "PeoplePerHour"},
    {"type": 2, "email": "lead@prospect.example"},
    {"type": 3, "phone": "+49 30 7654321"},
    {"type": 4, "value": "https://www.linkedin.com/company/example"},
    {"type": 5, "value": "@prospect"},
]


def _history(
    session: Session, team: Team, admin_id: int, sellers: list[int], now: dt.datetime
) -> dict[str, int]:
    """Twelve weeks of earlier outreach, contacts, closed deals and leads that moved through the
    lifecycle, so the analytics reports and charts have something to show. Written as past
    rows (no events: they happened before the demo began)."""
    rng = random.Random(2026)
    team.settings = {
        **(team.settings or {}),
        "outreach_costs": {"platform": 12, "email": 0.5, "call": 3, "social": 2, "messenger": 1},
        "stage_sla_hours": {"mql": 72, "sal": 24},
    }
    made = {"outreach": 0, "contacts": 0, "deals": 0, "leads": 0}
    sources = []
    for day in range(HISTORY_WEEKS * 7, 0, -1):
        for _ in range(rng.choice([0, 1, 1, 2])):
            at = now - dt.timedelta(days=day, hours=rng.randrange(0, 10), minutes=rng.randrange(60))
            channel = rng.choice(HISTORY_CHANNELS)
            row = Outreach(
                team_id=team.id, user_id=rng.choice(sellers), created_by_id=admin_id,
                occurred_at=at, description="Earlier outreach", **channel,
            )  # fmt: skip
            session.add(row)
            sources.append(row)
    session.flush()
    made["outreach"] = len(sources)
    for n, source in enumerate(sources[::3]):
        contact = Contact(
            team_id=team.id, name=f"Prospect {n + 1}", company=f"Prospect {n + 1} Ltd",
            outreach_id=source.id, created_by_id=admin_id,
        )  # fmt: skip
        session.add(contact)
        session.flush()
        made["contacts"] += 1
        if n % 3 == 0:
            won = n % 2 == 0
            amount = Decimal(rng.randrange(30, 400) * 100)
            session.add(
                Deal(
                    team_id=team.id, title=f"Prospect {n + 1} project", contact_id=contact.id,
                    outreach_id=source.id, amount=amount, currency="EUR", stage="negotiation",
                    status="won" if won else "lost", probability=100 if won else 0,
                    weighted_amount=amount if won else Decimal(0), owner_id=source.user_id,
                    closed_at=source.occurred_at + dt.timedelta(days=20), created_by_id=admin_id,
                )
            )  # fmt: skip
            made["deals"] += 1
        _walk(session, rng, team.id, admin_id, contact.id, source.occurred_at, now)
        made["leads"] += 1
    session.commit()
    return made


def _walk(
    session: Session, rng: random.Random, team_id: int, admin_id: int, contact_id: int,
    at: dt.datetime, now: dt.datetime,
) -> None:  # fmt: skip
    """A lead that moves forward through the lifecycle (or is recycled) until it stops."""
    stage, history = "lead", [(None, "lead", at, None)]
    while stage != "customer" and rng.random() < 0.75:
        step = at + dt.timedelta(hours=rng.randrange(4, 120))
        if step >= now:
            break
        at = step
        if stage in ("sal", "opportunity") and rng.random() < 0.25:
            new, reason = "recycled", rng.choice(["no budget", "bad timing", "went silent"])
        else:
            new, reason = LIFECYCLE_NEXT[stage], None
        history.append((stage, new, at, reason))
        stage = new
    lead = Lead(
        team_id=team_id, contact_id=contact_id, stage=stage, stage_changed_at=at,
        score=rng.randrange(0, 100), created_by_id=admin_id,
    )  # fmt: skip
    session.add(lead)
    session.flush()
    for old, new, when, reason in history:
        session.add(
            LeadStageChange(
                team_id=team_id, lead_id=lead.id, from_stage=old, to_stage=new, at=when,
                user_id=admin_id, reason=reason,
            )
        )  # fmt: skip


LIFECYCLE_NEXT = {
    "lead": "mql",
    "mql": "sal",
    "sal": "opportunity",
    "opportunity": "customer",
    "recycled": "mql",
}


def load_demo(factory: sessionmaker[Session]) -> DemoResult:
    """Create the demo team once; every call revokes the previous demo key and issues a new one."""
    with transaction(factory) as session:
        team = session.scalar(select(Team).where(Team.name == DEMO_TEAM))
        created = team is None
        if team is None:
            team, admin, _ = teams.create_team(
                session,
                DEMO_TEAM,
                admin_email="admin@demo.local",
                admin_name="Demo Admin",
                timezone="Europe/Berlin",
                issue_key=False,
            )
        else:
            admin = teams.ensure_user(
                session, team, "admin@demo.local", name="Demo Admin", role="admin"
            )
        session.execute(
            update(ApiKey)
            .where(
                ApiKey.team_id == team.id,
                ApiKey.name == DEMO_KEY_LABEL,
                ApiKey.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow())
        )
        key = teams.create_key(session, admin, name=DEMO_KEY_LABEL)
        team_id, admin_id = team.id, admin.id
    summary = f"team {DEMO_TEAM!r} (id {team_id})"
    if created:
        with factory() as session:
            team = session.get(Team, team_id)
            assert team is not None
            summary += ": " + _populate(session, team, admin_id)
    return DemoResult(created=created, key=key, summary=summary)
