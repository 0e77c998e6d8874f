"""Side-effect actions: queued by the save, performed after commit, sent to a real SMTP server."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine

from server.app import create_app
from server.settings import Settings

ESCALATION = {
    "id": "negotiation-alert",
    "name": "Tell the sales lead about deals entering negotiation",
    "entity": "deal",
    "trigger": {"type": "record_saved", "fields": ["stage"]},
    "condition": "record.stage == 'negotiation'",
    "actions": [
        {
            "type": "email",
            "to": "sales-lead@example.com",
            "subject": "{{ record.title }} is in {{ record.stage }}",
            "body": "Amount: {{ record.amount }}\n",
        }
    ],
}


@pytest.fixture
def mail_app(engine: Engine, db_url: str, smtp_server: Any) -> Litestar:
    """The app with SMTP_URL pointing at the test's SMTP server."""
    settings = Settings(database_url=db_url, smtp_url=smtp_server.url)
    return create_app(settings, engine=engine)


def test_an_email_action_is_sent_once_after_commit(
    mail_app: Litestar, team: Any, smtp_server: Any
) -> None:
    recorder = smtp_server.recorder
    runner = mail_app.state.runtime.runner
    with TestClient(mail_app) as api:
        api.headers.update(team.headers)
        # Given the escalation workflow and a new deal
        assert api.post("/api/v1/workflows", json=ESCALATION).status_code == 201
        deal = api.post("/api/v1/deals", json={"title": "Initech", "amount": 5000}).json()
        assert runner.join(10)
        assert recorder.envelopes == []

        # When the deal enters negotiation
        resp = api.patch(f"/api/v1/deals/{deal['id']}", json={"stage": "negotiation"})
        assert resp.status_code == 200, resp.text

        # Then the run shows the email queued with its execution
        run = api.get("/api/v1/runs", params={"workflow": "negotiation-alert"}).json()["items"][0]
        (evaluation,) = run["evaluations"]
        (action,) = evaluation["actions"]
        assert (action["type"], action["status"]) == ("email", "queued")
        # and once the runner is done, exactly one rendered message reached the server
        assert runner.join(10)
        assert len(recorder.envelopes) == 1
        message = recorder.message()
        assert message["Subject"] == "Initech is in negotiation"
        assert recorder.envelopes[0].rcpt_tos == ["sales-lead@example.com"]
        (execution,) = api.get(f"/api/v1/runs/{run['id']}").json()["executions"]
        assert execution["id"] == action["execution_id"]
        assert (execution["status"], execution["attempts"]) == ("succeeded", 1)
        assert execution["action_type"] == "email"
        assert execution["result"]["to"] == ["sales-lead@example.com"]

        # When an unrelated field is saved
        resp = api.patch(f"/api/v1/deals/{deal['id']}", json={"title": "Initech TPS"})
        assert resp.status_code == 200, resp.text
        assert runner.join(10)

        # Then nothing more is sent
        assert len(recorder.envelopes) == 1
        matched = api.get("/api/v1/runs", params={"workflow": "negotiation-alert"}).json()
        assert len(matched["items"]) == 1
