"""Secrets never leak: after a scenario that stores credentials for every shipped plugin, a
webhook secret and an API key, runs side effects that succeed and fail (with services that
echo the secret back), dry-runs and exports workflows, none of the secret values is in the
logs, the console, any row of any table, any API answer, any admin console page or the
exported files."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine, select

from console.console_forms import sign_in

from server.app import create_app
from server.cli import main as dealflow
from server.core.db import make_session_factory, transaction
from server.core.models import Base
from server.core.services.hooks import create_secret
from server.settings import Settings

SERVER_KEY = "server-secret-key-4f1c9a7e2b"
SLACK_PATH = "/slack/T0001/B0002/slack-webhook-secret-9d8c7b"
TOKEN = "987654:telegram-bot-token-secret-e5d4"
MAILCHIMP_KEY = "mailchimp-api-key-secret-1a2b3c-us21"
ERP_SECRET = "erp-hmac-secret-value-77aa88bb"
HOOK = "web-form"
LIST = "list0001"


def workflows() -> list[dict[str, Any]]:
    deal = {
        "id": "new-deal-everywhere",
        "name": "Tell Slack and Telegram, export to the ERP",
        "entity": "deal",
        "trigger": {"type": "record_saved", "on": ["created"]},
        "actions": [
            {"type": "notify_slack", "text": "New deal {{ record.title }}"},
            {"type": "notify_telegram", "text": "New deal {{ record.title }}"},
            {"type": "erp_export", "projection": "{id: record.id, title: record.title}"},
        ],
    }
    contact = {
        "id": "newsletter",
        "name": "Subscribe new contacts",
        "entity": "contact",
        "trigger": {"type": "record_saved", "on": ["created"]},
        "actions": [{"type": "email_marketing", "list_id": LIST, "operation": "subscribe"}],
    }
    hook = {
        "id": "form-posts",
        "name": "Web form posts",
        "trigger": {"type": "webhook", "name": HOOK},
        "actions": [{"type": "notify_slack", "text": "Form: {{ payload.kind }}"}],
    }
    return [deal, contact, hook]


def signed(secret: str, body: bytes) -> dict[str, str]:
    msg_id, timestamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }


@pytest.fixture
def leak_app(engine: Engine, db_url: str, receiver: Any) -> Iterator[Litestar]:
    settings = Settings(
        database_url=db_url,
        secret_key=SERVER_KEY,
        outbound_allow=("127.0.0.1",),
        extra={"telegram_api_base": receiver.url},
    )
    app = create_app(settings, engine=engine)
    yield app
    assert app.state.runtime.runner.join(20), "side-effect executions still running after 20 s"


def every_row(engine: Engine) -> str:
    """Every value of every row of every table, as text."""
    out = []
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                out.append(json.dumps([str(value) for value in row]))
    return "\n".join(out)


def test_no_secret_appears_anywhere_after_a_full_scenario(
    leak_app: Litestar,
    engine: Engine,
    db_url: str,
    team: Any,
    receiver: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="dealflow")
    answers: list[str] = []

    def keep(response: httpx.Response) -> None:
        response.read()
        answers.append(f"{response.headers}\n{response.text}")

    runner = leak_app.state.runtime.runner
    slack_url = receiver.url + SLACK_PATH
    telegram_path = f"/bot{TOKEN}/sendMessage"
    # Given every service fails once (500), then refuses (400) echoing the secret it was sent
    for path, secret in (
        (SLACK_PATH, slack_url),
        (telegram_path, TOKEN),
        ("/erp", ERP_SECRET),
    ):
        receiver.respond(path, 500, b"busy")
        receiver.respond(path, 400, json.dumps({"error": f"bad secret {secret}"}).encode())
    with TestClient(leak_app) as api:
        api.event_hooks = {"request": [], "response": [keep]}
        api.headers.update(team.headers)
        # and credentials for every shipped plugin, a webhook secret and the workflows
        credentials = {
            "notify_slack": {"webhook_url": slack_url},
            "notify_telegram": {"bot_token": TOKEN, "chat_id": "42"},
            "email_marketing": {"api_key": MAILCHIMP_KEY, "base_url": receiver.url},
            "erp_export": {"url": receiver.url + "/erp", "secret": ERP_SECRET},
        }
        for plugin, values in credentials.items():
            resp = api.put(f"/api/v1/team/credentials/{plugin}", json=values)
            assert resp.status_code == 200, resp.text
        with transaction(make_session_factory(engine)) as session:
            hook_secret = create_secret(session, team.team_id, leak_app.state.settings).secret
        for document in workflows():
            assert api.post("/api/v1/workflows", json=document).status_code == 201

        # When records are saved and a signed webhook arrives, and the side effects run
        assert api.post("/api/v1/deals", json={"title": "Initech"}).status_code == 201
        contact = {"name": "Ada", "email": "ada@example.com"}
        assert api.post("/api/v1/contacts", json=contact).status_code == 201
        body = json.dumps({"kind": "demo"}).encode()
        resp = api.post(f"/api/v1/hooks/{HOOK}", content=body, headers=signed(hook_secret, body))
        assert resp.status_code == 202, resp.text
        assert runner.join(20)
        # (a wrong signature and a bad credential body are answered too)
        api.post(f"/api/v1/hooks/{HOOK}", content=body, headers=signed("whsec_" + "A" * 44, body))
        api.put("/api/v1/team/credentials/erp_export", json={"url": 7, "secret": ERP_SECRET})
        # and the workflows are dry-run, and everything is read back
        for document in workflows()[:2]:
            trial = {"workflow": document, "record": {"title": "T", "email": "t@example.com"}}
            assert api.post("/api/v1/workflows/test", json=trial).status_code == 200
        api.get("/api/v1/team/credentials")
        for plugin in credentials:
            api.get(f"/api/v1/team/credentials/{plugin}")
        for run in api.get("/api/v1/runs", params={"limit": 200}).json()["items"]:
            api.get(f"/api/v1/runs/{run['id']}")
        executions = api.get("/api/v1/executions", params={"limit": 200}).json()["items"]
        for execution in executions:
            api.get(f"/api/v1/executions/{execution['id']}")
        api.get("/api/v1/workflows")
        api.get("/api/v1/team")
        # and the admin console shows the same: settings, workflows, runs and their executions
        assert sign_in(api, key=team.key).status_code == 303
        console_pages = ["/console/settings", "/console/workflows", "/console/runs?limit=200",
                         *[f"/console/workflows/{d['id']}" for d in workflows()],
                         *[f"/console/runs/{e['run_id']}" for e in executions]]
        for path in console_pages:
            assert api.get(path).status_code == 200, path
    # and the workflows are exported by the CLI
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("DEALFLOW_SECRET_KEY", SERVER_KEY)
    exported = tmp_path / "export"
    assert dealflow(["workflows", "export", "--team", str(team.team_id), str(exported)]) == 0

    # Then the side effects did fail with the services' answers (so there were errors to leak)
    statuses = {e["action_type"]: e["status"] for e in executions}
    assert statuses["notify_telegram"] == "dead"
    assert statuses["erp_export"] == "dead"
    assert any("HTTP 400" in json.dumps(e) for e in executions)
    # and no secret is in the logs, the console, the database, an answer or the export
    places = {
        "logs": "\n".join(
            f"{r.getMessage()} {r.exc_text or ''} {r.__dict__}" for r in caplog.records
        ),
        "console": "".join(capfd.readouterr()),
        "database": every_row(engine),
        "answers": "\n".join(answers),
        "export": "\n".join(p.read_text() for p in sorted(exported.rglob("*")) if p.is_file()),
    }
    assert places["answers"] and places["database"] and places["export"]
    secrets = {
        "server key": SERVER_KEY,
        "api key": team.key,
        "webhook secret": hook_secret,
        "webhook secret bytes": hook_secret.removeprefix("whsec_"),
        "slack webhook url": slack_url,
        "slack webhook path": SLACK_PATH,
        "telegram token": TOKEN,
        "mailchimp key": MAILCHIMP_KEY,
        "erp secret": ERP_SECRET,
    }
    found = [
        f"{name} in {where}"
        for name, value in secrets.items()
        for where, text in places.items()
        if value in text
    ]
    assert found == []
