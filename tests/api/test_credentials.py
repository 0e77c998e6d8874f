"""Per-team plugin credentials: encrypted at rest, masked on read, handed to the action that
names them, and never in a run record or a log line."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from helpers import assert_problem
from litestar.testing import TestClient
from sqlalchemy import Engine, select, text

from server.app import create_app
from server.core.db import make_session_factory, transaction
from server.core.models import ActionExecution, Team, TeamCredential
from server.core.services.teams import create_key, ensure_user
from server.settings import Settings

URL = "/api/v1/team/credentials"
TOKEN = "tok-live-9f8e7d6c5b4a3f2e1a2b"
"""A token long enough to show its last 4 characters (``1a2b``) when masked."""


@pytest.fixture
def member(engine: Engine, team: Any) -> dict[str, str]:
    """The headers of a member (not an admin) of team A."""
    with transaction(make_session_factory(engine)) as session:
        user = ensure_user(
            session, session.get(Team, team.team_id), "rep@acme.test", name="Rep", role="member"
        )
        key = create_key(session, user, name="member key")
    return {"Authorization": f"Bearer {key}"}


def token_workflow(*urls: str, key: str = "post-with-token") -> dict[str, Any]:
    """A workflow that sends every new deal to each of ``urls`` with the sample token."""
    return {
        "id": key,
        "name": "Send new deals with the partner's token",
        "entity": "deal",
        "trigger": {"type": "record_saved", "on": ["created"]},
        "actions": [{"type": "post_with_token", "url": url} for url in urls],
    }


def stored(engine: Engine) -> str:
    """Every row of the credentials table, as text."""
    with engine.connect() as conn:
        return repr(conn.execute(text("SELECT * FROM team_credentials")).all())


# --- the API ---------------------------------------------------------------------------------


def test_credentials_round_trip_masked_and_encrypted(api: Any, engine: Engine) -> None:
    # When an admin sets the sample plugin's credentials
    body = {"token": TOKEN, "pin": "12345678901", "region": "eu"}
    resp = api.put(f"{URL}/sample", json=body)
    # Then the answer shows them masked: the last 4 only for values of 12+ characters
    assert resp.status_code == 200, resp.text
    masked = {"token": "••••1a2b", "pin": "••••", "region": "••••"}
    created = resp.json()
    assert (created["plugin"], created["values"]) == ("sample", masked)
    assert created["updated_at"]
    # and reading, listing show the same, never the values
    assert api.get(f"{URL}/sample").json() == created
    assert api.get(URL).json() == [created]
    assert TOKEN not in api.get(URL).text
    # and the database holds only ciphertext
    with engine.connect() as conn:
        column = conn.scalar(select(TeamCredential.values_encrypted))
    assert column and TOKEN not in column and "12345678901" not in column
    assert TOKEN not in stored(engine) and "12345678901" not in stored(engine)

    # When the set is replaced
    resp = api.put(f"{URL}/sample", json={"token": "another-token-0000-zz99"})
    # Then the old keys are gone
    assert resp.json()["values"] == {"token": "••••zz99"}

    # When it is deleted
    assert api.delete(f"{URL}/sample").status_code == 204
    # Then it is gone
    assert_problem(api.get(f"{URL}/sample"), 404)
    assert api.get(URL).json() == []
    assert_problem(api.delete(f"{URL}/sample"), 404)
    assert stored(engine) == "[]"


def test_a_member_reads_but_cannot_change_credentials(api: Any, member: dict[str, str]) -> None:
    assert api.put(f"{URL}/sample", json={"token": TOKEN}).status_code == 200
    # A member reads the masked view
    resp = api.get(f"{URL}/sample", headers=member)
    assert resp.status_code == 200 and resp.json()["values"] == {"token": "••••1a2b"}
    assert api.get(URL, headers=member).status_code == 200
    # but may neither replace nor delete
    assert assert_problem(
        api.put(f"{URL}/sample", json={"token": "x" * 20}, headers=member), 403
    )["required_role"] == "admin"
    assert_problem(api.delete(f"{URL}/sample", headers=member), 403)
    assert api.get(f"{URL}/sample").json()["values"] == {"token": "••••1a2b"}


def test_teams_never_see_or_change_each_others_credentials(
    api: Any, make_team: Any
) -> None:
    other = make_team("Globex").headers
    assert api.put(f"{URL}/sample", json={"token": TOKEN}).status_code == 200
    # Team B sees nothing of A's set
    assert api.get(URL, headers=other).json() == []
    assert_problem(api.get(f"{URL}/sample", headers=other), 404)
    assert_problem(api.delete(f"{URL}/sample", headers=other), 404)
    # and setting its own leaves A's alone
    resp = api.put(f"{URL}/sample", json={"token": "globex-token-xxxx-9999"}, headers=other)
    assert resp.status_code == 200, resp.text
    assert api.get(f"{URL}/sample").json()["values"] == {"token": "••••1a2b"}
    assert api.get(f"{URL}/sample", headers=other).json()["values"] == {"token": "••••9999"}


@pytest.mark.parametrize(
    ("method", "plugin"),
    [("put", "Slack"), ("put", "1slack"), ("put", "sl-ack"), ("put", "s" * 65),
     ("get", "Slack"), ("delete", "sl.ack")],
)
def test_a_bad_plugin_name_is_a_422_naming_plugin(api: Any, method: str, plugin: str) -> None:
    resp = api.request(method.upper(), f"{URL}/{plugin}", json={"token": TOKEN})
    assert_problem(resp, 422, "plugin")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({f"k{i}": "v" for i in range(21)}, "body"),
        ({"Token": "abc"}, "Token"),
        ({"bot-token": "abc"}, "bot-token"),
        ({"token": ""}, "token"),
        ({"token": "x" * 4097}, "token"),
        ({"token": 12345}, "token"),
        ({"token": None}, "token"),
    ],
)
def test_a_bad_body_is_a_422_naming_the_field(api: Any, body: Any, field: str) -> None:
    resp = api.put(f"{URL}/sample", json=body)
    problem = assert_problem(resp, 422, field)
    assert "x" * 100 not in problem["detail"]
    assert api.get(URL).json() == []


def test_a_body_that_is_not_an_object_is_refused(api: Any) -> None:
    resp = api.put(f"{URL}/sample", json=["token", TOKEN])
    assert resp.status_code in (400, 422), resp.text
    assert TOKEN not in resp.text


def test_without_a_secret_key_credentials_are_a_503_saying_why(
    api: Any, engine: Engine, db_url: str, team: Any
) -> None:
    # Given a set stored by a server with a key, and a server without one
    assert api.put(f"{URL}/sample", json={"token": TOKEN}).status_code == 200
    keyless = create_app(Settings(database_url=db_url), engine=engine)
    with TestClient(keyless) as client:
        client.headers.update(team.headers)
        # When it writes or reads credentials, then it answers 503 naming the setting
        for resp in (
            client.put(f"{URL}/sample", json={"token": TOKEN}),
            client.get(f"{URL}/sample"),
            client.get(URL),
        ):
            problem = assert_problem(resp, 503)
            assert "DEALFLOW_SECRET_KEY" in problem["detail"]
            assert TOKEN not in resp.text
    # and the stored set is untouched
    assert api.get(f"{URL}/sample").json()["values"] == {"token": "••••1a2b"}


# --- actions ---------------------------------------------------------------------------------


def test_an_action_gets_the_token_but_no_record_or_log_keeps_it(
    app: Any, api: Any, receiver: Any, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Given the team's sample token and a workflow posting with it to a partner that accepts
    # (/ok) and to one that refuses it (/reject)
    assert api.put(f"{URL}/sample", json={"token": TOKEN}).status_code == 200
    receiver.respond("/reject", 401)
    workflow = token_workflow(receiver.url + "/ok", receiver.url + "/reject")
    assert api.post("/api/v1/workflows", json=workflow).status_code == 201

    # When a deal is created and the side effects have run
    assert api.post("/api/v1/deals", json={"title": "Initech"}).status_code == 201
    assert app.state.runtime.runner.join(10)

    # Then both partners got the real token
    for path in ("/ok", "/reject"):
        (request,) = receiver.received(path)
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
    # and the executions record what happened, with the token scrubbed
    (run,) = api.get("/api/v1/runs", params={"workflow": "post-with-token"}).json()["items"]
    run_resp = api.get(f"/api/v1/runs/{run['id']}")
    ok, rejected = sorted(run_resp.json()["executions"], key=lambda e: e["action_index"])
    assert (ok["status"], ok["result"]) == ("succeeded", {"status": 200, "echo": "••••"})
    assert (rejected["status"], rejected["last_error"]) == (
        "dead",
        "rejected token ••••: HTTP 401",
    )
    assert rejected["attempt_log"][0]["error"] == "rejected token ••••: HTTP 401"
    # and the token is in no answer, no stored execution and no log line
    texts = [run_resp.text, api.get("/api/v1/runs").text, api.get("/api/v1/executions").text]
    texts += [api.get(f"/api/v1/executions/{e['id']}").text for e in (ok, rejected)]
    with engine.connect() as conn:
        rows = conn.execute(
            select(ActionExecution.result, ActionExecution.last_error, ActionExecution.attempt_log)
        ).all()
    texts.append(json.dumps([list(row) for row in rows]))
    texts.append(caplog.text)
    texts += [str(record.args) for record in caplog.records]
    for found in texts:
        assert TOKEN not in found
    assert len(rows) == 2


def test_a_missing_credential_set_makes_the_execution_dead_naming_the_plugin(
    app: Any, api: Any, receiver: Any
) -> None:
    # Given a workflow that needs the sample credentials, which the team never set
    workflow = token_workflow(receiver.url + "/ok")
    assert api.post("/api/v1/workflows", json=workflow).status_code == 201
    # When a deal is created
    assert api.post("/api/v1/deals", json={"title": "Initech"}).status_code == 201
    assert app.state.runtime.runner.join(10)
    # Then nothing was sent and the execution is dead, saying what to do
    assert receiver.received() == []
    (execution,) = api.get("/api/v1/executions").json()["items"]
    assert (execution["status"], execution["attempts"]) == ("dead", 1)
    assert execution["last_error"] == (
        "'sample' is not configured for this team: no credentials for 'sample'; "
        "PUT /api/v1/team/credentials/sample"
    )


def test_a_dry_run_preview_gets_no_credential_values(api: Any, receiver: Any) -> None:
    assert api.put(f"{URL}/sample", json={"token": TOKEN}).status_code == 200
    resp = api.post(
        "/api/v1/workflows/test",
        json={"workflow": token_workflow(receiver.url + "/ok"), "record": {"title": "Initech"}},
    )
    assert resp.status_code == 200, resp.text
    (action,) = resp.json()["actions"]
    assert action["preview"] == {"url": receiver.url + "/ok", "credentials": {}}
    assert TOKEN not in resp.text
    assert receiver.received() == []
