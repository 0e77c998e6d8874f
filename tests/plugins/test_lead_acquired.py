"""Lead-acquired notifications: a deal created from outreach reaches the channels its team
chose, through the shipped workflows, over real HTTP; other teams' channels hear nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine

from server.app import create_app
from server.settings import Settings

SHIPPED = Path(__file__).resolve().parents[2] / "workflows"
CREDENTIALS = "/api/v1/team/credentials"


@pytest.fixture
def lead_app(engine: Engine, db_url: str, receiver: Any) -> Iterator[Litestar]:
    settings = Settings(
        database_url=db_url, secret_key="test-secret-key", outbound_allow=("127.0.0.1",),
        extra={"telegram_api_base": receiver.url},
    )
    app = create_app(settings, engine=engine)
    yield app
    assert app.state.runtime.runner.join(10)


def set_up(client: TestClient[Litestar], team: Any, receiver: Any, name: str,
           channels: list[str]) -> str:
    """Load the shipped notification workflows for ``team``, point its Slack and Telegram at
    the receiver under ``name``, choose ``channels``; return its bot token."""
    client.headers.update(team.headers)
    for key in ("lead-acquired-slack", "lead-acquired-telegram"):
        document = json.loads((SHIPPED / f"{key}.json").read_text())
        resp = client.post("/api/v1/workflows", json=document)
        assert resp.status_code == 201, resp.text
    token = f"{team.team_id}00:{name}-token"
    assert client.put(f"{CREDENTIALS}/notify_slack",
                      json={"webhook_url": f"{receiver.url}/slack-{name}"}).status_code == 200
    assert client.put(f"{CREDENTIALS}/notify_telegram",
                      json={"bot_token": token, "chat_id": f"chat-{name}"}).status_code == 200
    resp = client.put("/api/v1/team", json={"settings": {"notification_channels": channels}})
    assert resp.status_code == 200, resp.text
    return token


def acquire(client: TestClient[Litestar], title: str) -> None:
    """An email outreach, a contact found by it, and a deal for that contact."""
    outreach = client.post("/api/v1/outreach", json={
        "type": "email", "email": "cto@initech.example", "value": "Q4 campaign",
        "occurred_at": "2026-11-20T09:30:00Z"}).json()
    contact = client.post("/api/v1/contacts", json={
        "name": "Bill Lumbergh", "email": "cto@initech.example", "outreach_id": outreach["id"]}).json()
    resp = client.post("/api/v1/deals", json={
        "title": title, "amount": 24000, "currency": "EUR", "contact_id": contact["id"]})
    assert resp.status_code == 201, resp.text


def test_a_deal_from_outreach_notifies_the_chosen_channels_of_its_team_only(
    lead_app: Litestar, make_team: Any, receiver: Any
) -> None:
    a, b = make_team("Acme"), make_team("Globex")
    runner = lead_app.state.runtime.runner
    with TestClient(lead_app) as client_a, TestClient(lead_app) as client_b:
        # Given two teams with both channels chosen and configured
        token_a = set_up(client_a, a, receiver, "a", ["slack", "telegram"])
        token_b = set_up(client_b, b, receiver, "b", ["slack", "telegram"])
        # When team A acquires a deal through an email outreach
        acquire(client_a, "Initech TPS portal")
        assert runner.join(15)
    # Then A's Slack and Telegram each got one message naming the deal, amount, channel and user
    (slack,) = receiver.received("/slack-a")
    (telegram,) = receiver.received(f"/bot{token_a}/sendMessage")
    for text in (slack.json()["text"], telegram.json()["text"]):
        assert "Initech TPS portal" in text
        assert "24000" in text and "EUR" in text
        assert "from email (Q4 campaign)" in text
        assert "by Admin" in text or "by admin" in text.lower()
    assert telegram.json()["chat_id"] == "chat-a"
    # and B's channels got nothing
    assert receiver.received("/slack-b") == []
    assert receiver.received(f"/bot{token_b}/sendMessage") == []


def test_a_team_without_channels_gets_no_call_and_a_deal_without_outreach_none(
    lead_app: Litestar, make_team: Any, receiver: Any
) -> None:
    a, b = make_team("Acme"), make_team("Globex")
    runner = lead_app.state.runtime.runner
    with TestClient(lead_app) as client_a, TestClient(lead_app) as client_b:
        # Given team A with Slack only, and team B with credentials but no channel chosen
        token_a = set_up(client_a, a, receiver, "a", ["slack"])
        set_up(client_b, b, receiver, "b", [])
        # When each acquires a deal from outreach, and A also creates a deal with no source
        acquire(client_a, "Initech")
        acquire(client_b, "Globex")
        assert client_a.post("/api/v1/deals", json={"title": "Walk-in"}).status_code == 201
        assert runner.join(15)
    # Then only A's Slack heard, once, and nobody's Telegram
    assert [r.json()["text"].split(",")[0] for r in receiver.received("/slack-a")] == [
        "New lead: Initech"
    ]
    assert receiver.received("/slack-b") == []
    assert receiver.received(f"/bot{token_a}/sendMessage") == []
    assert [r for r in receiver.received() if "/bot" in r.path] == []
