"""Dry run over HTTP: the engine's matching, conditions and actions on a sample, with nothing
written and nothing sent."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine

from server.app import create_app
from server.settings import Settings

URL = "/api/v1/workflows/test"

PROBABILITY = {
    "id": "deal-probability-70",
    "name": "70%: negotiation, firm proposal",
    "entity": "deal",
    "trigger": {"type": "record_saved"},
    "condition": "record.stage == 'negotiation' && record.custom.proposal_type == 'firm'",
    "actions": [
        {"type": "field_update", "set": {"probability": 70}},
        {"type": "formula", "field": "custom.expected", "expression": "amount * probability / 100"},
    ],
}


def dry_run(client: TestClient[Litestar], body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(URL, json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def runs(client: TestClient[Litestar]) -> list[dict[str, Any]]:
    return client.get("/api/v1/runs").json()["items"]


def test_an_inline_workflow_matching_a_sample_shows_its_changes(api) -> None:
    record = {"stage": "negotiation", "amount": 1000, "custom": {"proposal_type": "firm"}}

    result = dry_run(api, {"workflow": PROBABILITY, "record": record})

    assert (result["trigger_fires"], result["matched"]) == (True, True)
    assert result["condition"] == {"matched": True}
    assert result["changes"] == {"probability": 70, "custom.expected": 700}
    assert result["record_after"] == {
        **record,
        "probability": 70,
        "custom": {"proposal_type": "firm", "expected": 700},
    }
    assert [(a["type"], a["kind"], a["preview"]) for a in result["actions"]] == [
        ("field_update", "record", {"changes": {"probability": 70}}),
        ("formula", "record", {"changes": {"custom.expected": 700}}),
    ]
    assert result["version"] is None
    assert runs(api) == []


def test_a_non_match_names_the_failed_part_and_changes_nothing(api) -> None:
    record = {"stage": "proposal", "amount": 1000, "custom": {"proposal_type": "firm"}}

    result = dry_run(api, {"workflow": PROBABILITY, "record": record})

    assert result["trigger_fires"] is True
    assert result["matched"] is False
    assert result["condition"] == {
        "matched": False,
        "failed": "record.stage == 'negotiation'",
        "values": {"record.stage": "proposal"},
    }
    assert (result["changes"], result["actions"]) == ({}, [])
    assert result["record_after"] == record


def test_a_stored_workflow_on_an_existing_deal_writes_nothing(api) -> None:
    # Given a deal in negotiation, then a stored workflow (saved after it, so it did not run)
    body = {"title": "Initech", "stage": "negotiation", "amount": 1000}
    deal = api.post("/api/v1/deals", json={**body, "custom": {"proposal_type": "firm"}}).json()
    assert api.post("/api/v1/workflows", json=PROBABILITY).status_code == 201
    runs_before = runs(api)

    # When the stored workflow is tried on the deal by id
    result = dry_run(api, {"workflow_id": "deal-probability-70", "record_id": deal["id"]})

    # Then it says what it would do, and the deal and the run log are unchanged
    assert (result["workflow"], result["version"]) == ("deal-probability-70", 1)
    assert result["matched"] is True
    assert result["changes"] == {"probability": 70, "custom.expected": 700}
    assert result["record_after"]["id"] == deal["id"]
    assert result["record_after"]["probability"] == 70
    assert api.get(f"/api/v1/deals/{deal['id']}").json() == deal
    assert runs(api) == runs_before


def test_a_dry_run_refuses_a_missing_or_invalid_workflow(api) -> None:
    missing = api.post(URL, json={"record": {"stage": "x"}})
    broken = {**PROBABILITY, "condition": "record.stage == "}
    invalid = api.post(URL, json={"workflow": broken, "record": {"stage": "x"}})

    assert missing.status_code == 422
    assert missing.json()["field"] == "workflow"
    assert invalid.status_code == 422
    assert invalid.json()["errors"] == [
        {"field": "$.condition", "message": "incomplete expression at position 16"}
    ]


def test_an_email_preview_is_rendered_and_nothing_is_sent(
    engine: Engine, db_url: str, team: Any, smtp_server: Any
) -> None:
    # Given an app that can send mail to a real SMTP server, and an existing deal
    recorder = smtp_server.recorder
    app = create_app(Settings(database_url=db_url, smtp_url=smtp_server.url), engine=engine)
    approval = {
        "id": "approval",
        "name": "Ask for approval",
        "entity": "deal",
        "trigger": {"type": "record_saved"},
        "condition": "record.amount > `500`",
        "actions": [
            {
                "type": "email",
                "to": ["{{ record.custom.manager }}", "sales-lead@example.com"],
                "subject": "Approve {{ record.title }} ({{ record.amount }} {{ record.currency }})",
                "body": "Stage: {{ record.stage }}\nOwner: {{ team.name }}\n",
            }
        ],
    }
    with TestClient(app) as client:
        client.headers.update(team.headers)
        deal = client.post(
            "/api/v1/deals",
            json={"title": "Initech", "amount": 900, "custom": {"manager": "lumbergh@example.com"}},
        ).json()

        # When the email workflow is tried on it
        result = dry_run(client, {"workflow": approval, "record_id": deal["id"]})
        assert app.state.runtime.runner.join(10)

        # Then the preview shows the rendered message
        (action,) = result["actions"]
        assert (action["type"], action["kind"], action["error"]) == ("email", "side_effect", None)
        assert action["preview"]["to"] == ["lumbergh@example.com", "sales-lead@example.com"]
        assert action["preview"]["subject"] == "Approve Initech (900.0 USD)"
        assert action["preview"]["body"] == "Stage: new\nOwner: Acme\n"
        assert result["changes"] == {}
        # and nothing was sent, queued or written
        assert recorder.envelopes == []
        (only_run,) = runs(client)  # the deal's own save, before the dry run
        assert (only_run["record_id"], only_run["op"]) == (deal["id"], "created")
        assert client.get(f"/api/v1/deals/{deal['id']}").json() == deal


def test_a_webhook_workflow_is_tried_on_a_payload(api) -> None:
    # Given a webhook workflow that only wants demo requests
    workflow = {
        "id": "demo-request", "name": "Demo requests", "trigger": {"type": "webhook", "name": "site"},
        "condition": "payload.kind == 'demo' && event.name == 'site'",
        "actions": [{"type": "email", "to": "sales@example.com", "subject": "Demo: {{ payload.email }}",
                     "body": "x"}],
    }
    # When it is dry-run on a demo payload and on a newsletter payload
    hit = api.post("/api/v1/workflows/test", json={
        "workflow": workflow, "payload": {"kind": "demo", "email": "a@initech.example"}})
    miss = api.post("/api/v1/workflows/test", json={"workflow": workflow, "payload": {"kind": "news"}})
    # Then the first fires and matches with the email rendered from the payload; the second does not
    assert hit.status_code == 200, hit.text
    body = hit.json()
    assert (body["trigger_fires"], body["matched"]) == (True, True)
    assert "Demo: a@initech.example" in str(body["actions"][0]["preview"])
    assert miss.json()["trigger_fires"] is True and miss.json()["matched"] is False
    # and an op that makes no sense for a webhook is refused, naming op
    bad = api.post("/api/v1/workflows/test", json={"workflow": workflow, "payload": {}, "op": "created"})
    assert bad.status_code == 422 and bad.json()["field"] == "op"


def test_a_schedule_workflow_is_tried_on_an_occurrence(api) -> None:
    # Given a workflow for leads that breach the sal stage's SLA
    workflow = {
        "id": "sla", "name": "SLA breached in sal", "entity": "lead",
        "trigger": {"type": "schedule", "kind": "sla_breached", "stage": "sal", "hours": 24},
        "condition": "event.kind == 'sla_breached' && event.hours == `24` && record.stage == 'sal'",
        "actions": [{"type": "field_update", "set": {"custom.escalated": True}}],
    }
    # When it is tried on a sample lead
    result = api.post("/api/v1/workflows/test", json={
        "workflow": workflow, "record": {"stage": "sal", "score": 10, "custom": {}}})
    # Then it runs as the scanner would run it on a due occurrence
    assert result.status_code == 200, result.text
    body = result.json()
    assert (body["trigger_fires"], body["matched"]) == (True, True)
    assert body["changes"] == {"custom.escalated": True}
    # and an op other than the scanner's is refused, naming op
    refused = api.post("/api/v1/workflows/test", json={
        "workflow": workflow, "record": {"stage": "sal"}, "op": "updated"})
    assert refused.status_code == 422 and refused.json()["field"] == "op"


STAGE_MOVE = {
    "id": "to-negotiation",
    "name": "Proposal to negotiation",
    "entity": "deal",
    "trigger": {"type": "stage_changed", "from": ["proposal"], "to": ["negotiation"]},
    "condition": "previous.amount < record.amount",
    "actions": [{"type": "field_update", "set": {"custom.raised": True}}],
}


def test_a_previous_record_decides_the_trigger_and_the_condition(api) -> None:
    record = {"stage": "negotiation", "amount": 2000, "custom": {}}

    # When the sample moved from proposal with a smaller amount: the trigger fires and matches
    moved = dry_run(api, {"workflow": STAGE_MOVE, "record": record,
                          "previous": {"stage": "proposal", "amount": 1000, "custom": {}},
                          "op": "updated"})
    # When it came from another stage: the stage_changed filter does not fire
    other = dry_run(api, {"workflow": STAGE_MOVE, "record": record,
                          "previous": {"stage": "qualified", "amount": 1000, "custom": {}},
                          "op": "updated"})
    # When the amount did not grow: the trigger fires, the condition names what was false
    same = dry_run(api, {"workflow": STAGE_MOVE, "record": record,
                         "previous": {"stage": "proposal", "amount": 2000, "custom": {}},
                         "op": "updated"})

    assert (moved["trigger_fires"], moved["matched"]) == (True, True)
    assert moved["changes"] == {"custom.raised": True}
    assert other["trigger_fires"] is False and other["changes"] == {}
    assert (same["trigger_fires"], same["matched"]) == (True, False)
    assert "previous.amount < record.amount" in same["condition"]["failed"]
    assert same["changes"] == {}
    assert runs(api) == []


CONTACT_COMPANY = {
    "id": "initech-customer",
    "name": "Initech customers",
    "entity": "deal",
    "trigger": {"type": "record_saved"},
    "condition": "record.contact.company == 'Initech'",
    "actions": [{"type": "field_update", "set_from": {"custom.customer": "record.contact.name"}}],
}


def test_a_stored_deal_is_tried_with_its_contact(api) -> None:
    # Given a deal with a contact
    contact = api.post("/api/v1/contacts", json={"name": "Bill", "company": "Initech"}).json()
    deal = api.post("/api/v1/deals", json={"title": "TPS", "contact_id": contact["id"]}).json()
    # When a workflow on the contact's company is tried on the deal by id
    result = dry_run(api, {"workflow": CONTACT_COMPANY, "record_id": deal["id"]})
    # Then the condition saw the contact, and the action read it
    assert result["matched"] is True
    assert result["changes"] == {"custom.customer": "Bill"}
    assert result["record_after"]["contact"] == api.get(f"/api/v1/contacts/{contact['id']}").json()


def test_a_sample_naming_another_teams_contact_gets_no_contact(api, make_team, client) -> None:
    # Given another team's contact
    theirs = make_team("Globex")
    hank = client.post("/api/v1/contacts", headers=theirs.headers,
                       json={"name": "Hank Scorpio", "company": "Initech"}).json()
    # When a sample deal naming its id is tried
    result = dry_run(api, {"workflow": CONTACT_COMPANY, "record": {"contact_id": hank["id"]}})
    # Then the sample's contact is null and nothing of the other team shows
    assert result["matched"] is False
    assert result["record_after"]["contact"] is None
    assert "Hank" not in str(result)


def test_a_sample_with_its_own_contact_keeps_it(api) -> None:
    record = {"contact_id": 999, "contact": {"name": "Pasted", "company": "Initech"}}
    result = dry_run(api, {"workflow": CONTACT_COMPANY, "record": record})
    assert result["changes"] == {"custom.customer": "Pasted"}


def test_a_sample_whose_contact_id_cannot_be_an_id_has_no_contact(api) -> None:
    # A sample is free-form: whatever its contact_id holds, the answer is never a 500
    for value in ([1], {"id": 1}, 2**70, "abc", True, -1, 1.5):
        record = {"title": "T", "contact_id": value, "custom": {}}
        result = dry_run(api, {"workflow": CONTACT_COMPANY, "record": record})
        assert result["matched"] is False, (value, result)
