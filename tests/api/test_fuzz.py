"""The whole OpenAPI document, fuzzed with schemathesis: as team A's admin, as team A's member and
as a foreign team's admin. No request gets a 5xx, every 4xx is problem details, and nothing the
foreign team receives carries team A's data."""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from sqlalchemy import text

from server.core.db import make_session_factory, transaction
from server.core.models import Team
from server.core.services.teams import create_key, ensure_user

MARK = "zq7marker"
"""In every name and title of team A's rows, so any response to the foreign team can be searched."""

EXAMPLES = 7
"""Examples per operation, identity and generation mode: the suite's time budget keeps this small."""


def seed(api: Any) -> None:
    """Team A: a contact with outreach, a deal, a lead, a communication, a workflow, a credential."""
    outreach = api.post("/api/v1/outreach", json={"type": "email", "email": f"{MARK}@a.test",
                                                   "description": f"{MARK} outreach"}).json()
    contact = api.post("/api/v1/contacts", json={"name": f"{MARK} contact", "email": f"{MARK}@a.test",
                                                 "company": f"{MARK} corp", "outreach_id": outreach["id"]}).json()
    api.post("/api/v1/deals", json={"title": f"{MARK} deal", "amount": 1234, "contact_id": contact["id"],
                                    "external_id": f"{MARK}-deal"})
    api.post("/api/v1/leads", json={"contact_id": contact["id"], "external_id": f"{MARK}-lead"})
    api.post(f"/api/v1/contacts/{contact['id']}/communications",
             json={"channel": "email", "note": f"{MARK} note"})
    api.post("/api/v1/workflows", json={
        "id": f"{MARK}-wf", "name": f"{MARK} workflow", "entity": "deal", "trigger": {"type": "record_saved"},
        "condition": "record.amount > `1000000`",
        "actions": [{"type": "field_update", "set": {"custom.flag": MARK}}],
    })


def identities(engine: Any, team: Any, make_team: Any) -> dict[str, dict[str, str]]:
    with transaction(make_session_factory(engine)) as session:
        user = ensure_user(session, session.get(Team, team.team_id), f"member@{MARK}.test",
                           name="Member", role="member")
        member_key = create_key(session, user, name="member")
    foreign = make_team("Foreign")
    return {
        "admin": team.headers,
        "member": {"Authorization": f"Bearer {member_key}"},
        "foreign": foreign.headers,
    }


def check(response: Any, who: str, label: str) -> None:
    status = response.status_code
    assert status < 500, f"{label}: {status} {response.text[:500]}"
    if status >= 400:
        kind = (response.headers.get("content-type") or [""])[0]
        assert kind.startswith("application/problem+json"), f"{label}: {status} {kind} {response.text[:300]}"
        body = response.json()
        assert body["status"] == status and body["title"], f"{label}: {body}"
    if who == "foreign":
        assert MARK not in response.text, f"{label}: team A's data in a foreign response: {response.text[:500]}"


def settle(engine: Any) -> None:
    """Executions the fuzzer's workflows queued would retry for minutes against made-up targets:
    end them, so the next test starts from rest."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE action_executions SET status = 'dead' WHERE status <> 'succeeded'"))


@pytest.mark.parametrize("who", ["admin", "member", "foreign"])
def test_no_operation_answers_5xx_or_leaks_another_teams_data(
    api: Any, app: Any, engine: Any, team: Any, make_team: Any, who: str
) -> None:
    seed(api)
    headers = identities(engine, team, make_team)[who]
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30, "the OpenAPI document lost its operations"
    seen = 0
    for operation in operations:
        label = f"{who} {operation.method.upper()} {operation.path}"
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.generate])
            def run(case: Any) -> None:
                nonlocal seen
                case.headers = {**(case.headers or {}), **headers}
                response = case.call()
                seen += 1
                check(response, who, f"{label} {case.as_curl_command()[:400]}")

            run()
    settle(engine)
    print(f"{who}: {seen} requests over {len(operations)} operations")
    assert seen >= len(operations)
    # And team A's data is all still there for team A, whatever the foreign team sent
    if who == "foreign":
        contacts = api.get("/api/v1/contacts").json()
        items = contacts["items"] if isinstance(contacts, dict) else contacts
        assert any(MARK in c["name"] for c in items)
