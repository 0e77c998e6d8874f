"""Side-effect actions: queued by the save, performed after commit, sent to a real SMTP server."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller
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


def _free_port() -> int:
    # aiosmtpd's Controller cannot take port 0, so ask the OS for a free port first.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Recorder:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    recorder, port = Recorder(), _free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


@pytest.fixture
def mail_app(engine: Engine, db_url: str, smtp: tuple[Recorder, int]) -> Litestar:
    """The app with SMTP_URL pointing at the test's SMTP server."""
    settings = Settings(database_url=db_url, smtp_url=f"smtp://127.0.0.1:{smtp[1]}")
    return create_app(settings, engine=engine)


def test_an_email_action_is_sent_once_after_commit(
    mail_app: Litestar, team: Any, smtp: tuple[Recorder, int]
) -> None:
    recorder, _ = smtp
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
        message = message_from_bytes(recorder.envelopes[0].content)
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
