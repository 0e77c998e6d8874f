"""The demo team: a small pipeline with outreach, contacts, deals and leads to explore."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from server.core.db import transaction
from server.core.models import ApiKey, Team, utcnow
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
    teams.ensure_user(session, team, MARKETER[1], name=MARKETER[0], role="member")
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
    return (
        f"{len(loaded)} shipped workflows, {len(OUTREACH)} outreach, {len(CONTACTS)} contacts, {len(DEALS) + 1} deals "
        f"(deal {won.id} won), {len(LEADS)} leads"
    )


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
