"""Lead scoring and the hand-off to sales through the shipped workflows: signed behaviour
events change a lead's score, and crossing the team's threshold with the rule holding moves
the lead to sal, gives it to the next sales user and emails them, once per crossing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_problem
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine

from server.app import create_app
from server.core.db import make_session_factory, transaction
from server.core.models import Team
from server.core.services import hooks
from server.core.services.teams import ensure_user
from server.settings import Settings

SHIPPED = Path(__file__).resolve().parents[2] / "workflows"
LEAD_WORKFLOWS = (
    "lead-score-pricing-visit",
    "lead-score-demo-request",
    "lead-score-email-click",
    "lead-handoff-sales",
)
RULE = {
    "score_threshold": 50,
    "required_fields": ["contact.email", "contact.company"],
    "condition": "lead.custom.segment != 'student'",
}


def sign(secret: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, computed here with stdlib hmac."""
    msg_id = f"msg_{uuid.uuid4().hex}"
    timestamp = str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }


@dataclass
class Setup:
    client: TestClient[Litestar]
    app: Litestar
    secret: str
    sales: list[int]
    admin_id: int

    def post(self, payload: dict[str, Any], *, public: bool = False, team_id: int = 0) -> Any:
        body = json.dumps(payload).encode()
        path = f"/api/v1/hooks/{team_id}/behaviour" if public else "/api/v1/hooks/behaviour"
        resp = self.client.post(path, content=body, headers=sign(self.secret, body))
        assert resp.status_code == 202, resp.text
        return resp.json()

    def lead(self, email: str | None, company: str | None = "Initech", **fields: Any) -> dict:
        contact = self.client.post(
            "/api/v1/contacts",
            json={"name": f"Contact {email}", "email": email, "company": company},
        )
        assert contact.status_code == 201, contact.text
        body = {"contact_id": contact.json()["id"], **fields}
        resp = self.client.post("/api/v1/leads", json=body)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def read(self, lead_id: int) -> dict[str, Any]:
        resp = self.client.get(f"/api/v1/leads/{lead_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def handoffs(self, lead_id: int) -> list[dict[str, Any]]:
        """The runs of this lead in which the hand-off workflow matched."""
        resp = self.client.get(
            "/api/v1/runs",
            params={"entity": "lead", "record_id": lead_id, "workflow": "lead-handoff-sales"},
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["items"]


@pytest.fixture
def scoring_app(engine: Engine, db_url: str, smtp_server: Any) -> Iterator[Litestar]:
    settings = Settings(
        database_url=db_url, secret_key="test-secret-key", smtp_url=smtp_server.url
    )
    app = create_app(settings, engine=engine)
    yield app
    assert app.state.runtime.runner.join(10)


@pytest.fixture
def setup(scoring_app: Litestar, engine: Engine, team: Any) -> Iterator[Setup]:
    """Team A with the shipped lead workflows, two sales users, the rule and a hook secret."""
    with transaction(make_session_factory(engine)) as session:
        acme = session.get(Team, team.team_id)
        sales = [
            ensure_user(session, acme, f"{name}@acme.test", name=name.title(), role="member").id
            for name in ("maria", "jonas")
        ]
        secret = hooks.create_secret(session, team.team_id, scoring_app.state.settings).secret
    with TestClient(scoring_app) as client:
        client.headers.update(team.headers)
        for key in LEAD_WORKFLOWS:
            document = json.loads((SHIPPED / f"{key}.json").read_text())
            resp = client.post("/api/v1/workflows", json=document)
            assert resp.status_code == 201, resp.text
        resp = client.put(
            "/api/v1/team", json={"settings": {"qualification": RULE, "sales_users": sales}}
        )
        assert resp.status_code == 200, resp.text
        yield Setup(client, scoring_app, secret, sales, team.user_id)


def visit(email: str, url: str = "https://acme.example/pricing") -> dict[str, Any]:
    return {"event": "page_visit", "url": url, "email": email}


def demo(email: str) -> dict[str, Any]:
    return {"event": "demo_request", "email": email}


def sent(smtp_server: Any) -> list[Any]:
    return [message_from_bytes(e.content) for e in smtp_server.envelopes]


# --- scoring ---------------------------------------------------------------------------------


def test_behaviour_events_change_the_score_of_the_contacts_lead(setup: Setup) -> None:
    # Given a lead at mql whose contact has an email
    lead = setup.lead("ada@initech.example", stage="lead")

    # When a pricing visit, a visit elsewhere and an email click are posted (any email case, blanks around it)
    answers = [
        setup.post(visit(" Ada@Initech.example ")),
        setup.post(visit("ada@initech.example", "https://acme.example/blog")),
        setup.post({"event": "email_click", "email": "ada@initech.example"}),
    ]

    # Then the score is 20 + 5; each answer lists the hook's run, the lead's, and (when the
    # score changed) the run of that change
    assert setup.read(lead["id"])["score"] == 25
    assert [run["matched"] for run in answers[0]["runs"]] == [
        [],
        ["lead-score-pricing-visit"],
        [],
    ]
    assert [run["matched"] for run in answers[1]["runs"]] == [[], []]
    assert answers[2]["runs"][1]["matched"] == ["lead-score-email-click"]
    # and the score change is an event of the lead made by the workflow
    runs = setup.client.get(
        "/api/v1/runs", params={"entity": "lead", "record_id": lead["id"]}
    ).json()["items"]
    seen = {(r["op"], r["source"]) for r in runs}
    assert seen >= {("received", "webhook"), ("updated", "workflow")}


def test_an_event_for_an_unknown_contact_is_recorded_as_skipped_with_the_reason(
    setup: Setup,
) -> None:
    # Given a lead of another contact
    lead = setup.lead("ada@initech.example")

    # When an event names an email no contact has, and another names none at all
    unknown = setup.post(demo("nobody@nowhere.example"))
    missing = setup.post({"event": "demo_request"})

    # Then nothing changed, and the hook's run says why each workflow was skipped
    assert setup.read(lead["id"])["score"] == 0
    for answer, reason in (
        (unknown, "no lead of the team has contact_email 'nobody@nowhere.example'"),
        (missing, "trigger.record.contact_email: payload.email is null in the payload"),
    ):
        (run,) = answer["runs"]
        assert run["status"] == "skipped"
        logged = setup.client.get(f"/api/v1/runs/{run['id']}").json()
        skipped = {e["workflow"]: e for e in logged["evaluations"]}
        assert set(skipped) == {
            "lead-score-pricing-visit",
            "lead-score-demo-request",
            "lead-score-email-click",
        }
        assert all(e["matched"] is False for e in skipped.values())
        assert reason in skipped["lead-score-demo-request"]["skipped"]


def test_a_customer_lead_is_not_addressed_by_its_contacts_email(setup: Setup) -> None:
    # Given a contact whose only lead is a customer
    lead = setup.lead("ada@initech.example", stage="customer")

    # When a demo request comes for that email
    answer = setup.post(demo("ada@initech.example"))

    # Then the lead is untouched and the run says no open lead was found
    assert setup.read(lead["id"])["score"] == 0
    assert answer["runs"][0]["status"] == "skipped"


def test_the_public_route_scores_and_hands_off_without_a_user(setup: Setup, team: Any) -> None:
    # Given a qualified-profile lead
    lead = setup.lead("ada@initech.example", stage="mql", score=30)

    # When a demo request comes on the public route (no API key)
    del setup.client.headers["Authorization"]
    setup.post(demo("ada@initech.example"), public=True, team_id=team.team_id)
    setup.client.headers.update(team.headers)

    # Then the lead crossed and was handed off, its history naming no user
    moved = setup.read(lead["id"])
    assert (moved["score"], moved["stage"]) == (70, "sal")
    last = setup.client.get(f"/api/v1/leads/{lead['id']}/history").json()[-1]
    assert (last["from_stage"], last["to_stage"], last["user_id"]) == ("mql", "sal", None)


# --- hand-off --------------------------------------------------------------------------------


def test_crossing_the_threshold_hands_the_lead_to_sales_once(
    setup: Setup, smtp_server: Any
) -> None:
    # Given an mql lead with a complete profile
    lead = setup.lead("ada@initech.example", stage="mql")

    # When a pricing visit (20) and a demo request (60: crossing 50) come in
    setup.post(visit("ada@initech.example"))
    assert setup.read(lead["id"])["stage"] == "mql"
    setup.post(demo("ada@initech.example"))

    # Then the lead is at sal, owned by the first sales user, with the move in its history
    moved = setup.read(lead["id"])
    assert (moved["score"], moved["stage"], moved["owner_id"]) == (60, "sal", setup.sales[0])
    history = setup.client.get(f"/api/v1/leads/{lead['id']}/history").json()
    assert [(h["from_stage"], h["to_stage"], h["user_id"]) for h in history[-1:]] == [
        ("mql", "sal", setup.admin_id)
    ]
    # and the sales user got one email naming the contact and the score
    assert setup.app.state.runtime.runner.join(10)
    (message,) = sent(smtp_server)
    assert message["To"] == "maria@acme.test"
    assert "Contact ada@initech.example (Initech)" in message["Subject"]
    assert "score of 60 (threshold 50)" in message.get_payload()

    # When the score rises further while above the threshold
    setup.post(visit("ada@initech.example"))
    setup.post(visit("ada@initech.example"))

    # Then nothing more happens: one hand-off, one email
    assert setup.read(lead["id"])["score"] == 100
    assert len(setup.handoffs(lead["id"])) == 1
    assert setup.app.state.runtime.runner.join(10)
    assert len(smtp_server.envelopes) == 1


def test_a_lead_at_stage_lead_goes_through_mql_to_sal(setup: Setup) -> None:
    # Given a fresh lead
    lead = setup.lead("ada@initech.example", stage="lead", score=45)

    # When it crosses the threshold
    setup.post(visit("ada@initech.example"))

    # Then both moves are in its history, through allowed transitions only
    history = setup.client.get(f"/api/v1/leads/{lead['id']}/history").json()
    assert [(h["from_stage"], h["to_stage"]) for h in history] == [
        (None, "lead"),
        ("lead", "mql"),
        ("mql", "sal"),
    ]


def test_two_crossing_leads_go_to_two_different_sales_users(
    setup: Setup, smtp_server: Any
) -> None:
    # Given two mql leads of two contacts
    first = setup.lead("ada@initech.example", stage="mql")
    second = setup.lead("bob@globex.example", company="Globex", stage="mql")

    # When both cross the threshold
    setup.post(demo("ada@initech.example"))
    setup.post(visit("ada@initech.example"))
    setup.post(demo("bob@globex.example"))
    setup.post(visit("bob@globex.example"))

    # Then each has its own sales owner, and each owner got the email about their lead
    owners = [setup.read(first["id"])["owner_id"], setup.read(second["id"])["owner_id"]]
    assert owners == setup.sales
    assert setup.app.state.runtime.runner.join(10)
    assert sorted((m["To"], "Globex" in m["Subject"]) for m in sent(smtp_server)) == [
        ("jonas@acme.test", True),
        ("maria@acme.test", False),
    ]


def test_dropping_below_and_crossing_again_fires_again_but_moves_only_marketing_leads(
    setup: Setup,
) -> None:
    # Given a lead handed to sales
    lead = setup.lead("ada@initech.example", stage="mql")
    setup.post(demo("ada@initech.example"))
    setup.post(visit("ada@initech.example"))
    assert setup.read(lead["id"])["stage"] == "sal"

    # When its score drops below the threshold and crosses it again
    resp = setup.client.patch(f"/api/v1/leads/{lead['id']}", json={"score": 10})
    assert resp.status_code == 200, resp.text
    setup.post(demo("ada@initech.example"))

    # Then the crossing is seen (the condition is evaluated past its crossing part) but a
    # sales lead is not moved or reassigned
    again = setup.read(lead["id"])
    assert (again["score"], again["stage"], again["owner_id"]) == (50, "sal", setup.sales[0])
    runs = setup.client.get(
        "/api/v1/runs", params={"entity": "lead", "record_id": lead["id"], "limit": 200}
    ).json()["items"]
    handoff = [
        e
        for r in runs
        for e in r["evaluations"]
        if e["workflow"] == "lead-handoff-sales" and r["source"] == "workflow"
    ]
    # (40: below; 60: crossing, handed off; 50: crossing again, but at sal)
    assert [e["matched"] for e in handoff] == [False, True, False]
    assert handoff[-1]["failed"] == "(record.stage == 'lead' || record.stage == 'mql')"


@pytest.mark.parametrize(
    ("profile", "custom"),
    [
        ({"company": None}, {}),
        ({}, {"segment": "student"}),
    ],
    ids=["missing-company", "condition-false"],
)
def test_a_lead_that_fails_the_rule_is_not_handed_off(
    setup: Setup, profile: dict[str, Any], custom: dict[str, Any]
) -> None:
    # Given a lead that misses a required field, or whose condition is false
    lead = setup.lead("ada@initech.example", **profile, stage="mql", custom=custom)

    # When its score crosses the threshold
    setup.post(demo("ada@initech.example"))
    setup.post(visit("ada@initech.example"))

    # Then it stays with marketing
    after = setup.read(lead["id"])
    assert (after["score"], after["stage"], after["owner_id"]) == (60, "mql", None)


def test_a_lead_created_above_the_threshold_is_handed_off_at_once(setup: Setup) -> None:
    lead = setup.lead("ada@initech.example", stage="mql", score=80)

    assert (setup.read(lead["id"])["stage"], setup.read(lead["id"])["owner_id"]) == (
        "sal",
        setup.sales[0],
    )


def test_without_a_rule_nothing_is_handed_off(setup: Setup) -> None:
    # Given the team drops its rule
    resp = setup.client.put(
        "/api/v1/team", json={"settings": {"qualification": None, "sales_users": setup.sales}}
    )
    assert resp.status_code == 200, resp.text
    lead = setup.lead("ada@initech.example", stage="mql")

    # When the score goes far up
    setup.post(demo("ada@initech.example"))
    setup.post(demo("ada@initech.example"))

    # Then the lead stays with marketing
    assert setup.read(lead["id"])["stage"] == "mql"


# --- settings and definitions ---------------------------------------------------------------


def test_a_bad_qualification_condition_is_refused_naming_it_with_the_position(
    api: TestClient[Litestar],
) -> None:
    rule = {**RULE, "condition": "lead.score >= = 3"}

    problem = assert_problem(
        api.put("/api/v1/team", json={"settings": {"qualification": rule}}),
        422,
        "settings.qualification.condition",
    )

    assert "position 14" in problem["detail"]


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"qualification": {**RULE, "required_fields": ["contact.fax"]}},
         "settings.qualification.required_fields[0]"),
        ({"sales_users": [424242]}, "settings.sales_users[0]"),
    ],
)
def test_bad_fields_and_unknown_sales_users_are_refused(
    api: TestClient[Litestar], settings: dict[str, Any], field: str
) -> None:
    assert_problem(api.put("/api/v1/team", json={"settings": settings}), 422, field)


def test_sales_users_of_another_team_are_refused(
    api: TestClient[Litestar], make_team: Any
) -> None:
    other = make_team("Globex")

    resp = api.put("/api/v1/team", json={"settings": {"sales_users": [other.user_id]}})

    assert_problem(resp, 422, "settings.sales_users[0]")


def test_a_webhook_workflow_addressing_a_record_needs_its_entity(
    api: TestClient[Litestar],
) -> None:
    document = json.loads((SHIPPED / "lead-score-demo-request.json").read_text())
    del document["entity"]

    assert_problem(api.post("/api/v1/workflows", json=document), 422, "$.trigger.record")


def test_a_deal_cannot_be_addressed_by_contact_email(api: TestClient[Litestar]) -> None:
    document = json.loads((SHIPPED / "lead-score-demo-request.json").read_text())
    document["entity"] = "deal"
    document["actions"] = [{"type": "field_update", "set": {"probability": 10}}]

    resp = api.post("/api/v1/workflows", json=document)

    assert_problem(resp, 422, "$.trigger.record.contact_email")


def test_a_lead_is_addressed_by_external_id_and_by_id(
    setup: Setup,
) -> None:
    # Given two workflows on another hook finding the lead by external id and by id
    for key, how in (("by-external-id", "payload.ref"), ("by-id", "payload.lead_id")):
        document = {
            "id": key,
            "name": key,
            "entity": "lead",
            "trigger": {
                "type": "webhook",
                "name": "crm",
                "record": {"external_id" if key == "by-external-id" else "id": how},
            },
            "actions": [
                {
                    "type": "field_update",
                    "set_from": {f"custom.{key.replace('-', '_')}": "payload.note"},
                }
            ],
        }
        assert setup.client.post("/api/v1/workflows", json=document).status_code == 201
    lead = setup.lead("ada@initech.example", external_id="L-7")
    body = json.dumps({"ref": "L-7", "lead_id": lead["id"], "note": "hi"}).encode()

    # When one event names the lead both ways
    resp = setup.client.post("/api/v1/hooks/crm", content=body, headers=sign(setup.secret, body))

    # Then one run of the lead applied both workflows
    assert resp.status_code == 202, resp.text
    assert resp.json()["runs"][1]["matched"] == ["by-external-id", "by-id"]
    assert setup.read(lead["id"])["custom"] == {"by_external_id": "hi", "by_id": "hi"}


def test_a_dry_run_tries_a_scoring_workflow_on_a_lead_and_a_payload(setup: Setup) -> None:
    # Given a lead
    lead = setup.lead("ada@initech.example", stage="mql", score=10)

    # When the pricing workflow is tried on it with a payload naming it, and one naming another
    results = [
        setup.client.post(
            "/api/v1/workflows/test",
            json={
                "workflow_id": "lead-score-pricing-visit",
                "record_id": lead["id"],
                "payload": visit(email),
            },
        )
        for email in ("ada@initech.example", "bob@globex.example")
    ]

    # Then the first would add 20, the second does not address this lead; nothing changed
    assert [r.status_code for r in results] == [200, 200], results[0].text
    first, second = (r.json() for r in results)
    assert (first["trigger_fires"], first["matched"], first["changes"]) == (
        True,
        True,
        {"score": 30},
    )
    assert second["trigger_fires"] is False
    assert setup.read(lead["id"])["score"] == 10


def test_assign_owner_is_refused_on_anything_but_a_lead(api: TestClient[Litestar]) -> None:
    document = {
        "id": "deal-owner",
        "name": "Give deals an owner",
        "entity": "deal",
        "trigger": {"type": "record_saved"},
        "actions": [{"type": "assign_owner", "side": "sales"}],
    }

    assert_problem(api.post("/api/v1/workflows", json=document), 422, "$.actions[0].type")
