"""The shipped ``notify_slack`` and ``notify_telegram`` plugins, end to end: workflows saved
through the API, deals created, messages sent over real HTTP to a recording server standing
in for Slack's webhook and Telegram's Bot API, with retries, dead executions, save-time
template checks and the bot token kept out of every record."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import at
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine

from server.app import create_app
from server.settings import Settings

CREDENTIALS = "/api/v1/team/credentials"
TOKEN = "123456:ABC-secret-token"
TELEGRAM_PATH = f"/bot{TOKEN}/sendMessage"
SLACK_PATH = "/slack"

SLACK = {
    "type": "notify_slack",
    "text": "New deal {{ record.title }} worth {{ record.amount }}",
    "blocks": [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*{{ record.title }}* ({{ event.op }})"},
        },
        {"type": "divider"},
    ],
}
TELEGRAM = {
    "type": "notify_telegram",
    "text": "<b>{{ record.title | e }}</b>: {{ record.amount }}",
    "parse_mode": "HTML",
}


def notify(*actions: dict[str, Any], key: str = "notify-new-deals") -> dict[str, Any]:
    """A workflow running ``actions`` whenever a deal is created."""
    return {
        "id": key,
        "name": "Tell the team about new deals",
        "entity": "deal",
        "trigger": {"type": "record_saved", "on": ["created"]},
        "actions": list(actions),
    }


@pytest.fixture
def notify_app(engine: Engine, db_url: str, receiver: Any) -> Iterator[Litestar]:
    """The app with the Telegram Bot API pointed at the test's recording server."""
    settings = Settings(
        database_url=db_url,
        secret_key="test-secret-key",
        outbound_allow=("127.0.0.1",),
        extra={"telegram_api_base": receiver.url},
    )
    app = create_app(settings, engine=engine)
    yield app
    assert app.state.runtime.runner.join(10), "side-effect executions still running after 10 s"


@pytest.fixture
def napi(notify_app: Litestar, team: Any, receiver: Any) -> Iterator[TestClient[Litestar]]:
    """A client of ``notify_app`` with team A's key and both credential sets stored."""
    with TestClient(notify_app) as client:
        client.headers.update(team.headers)
        slack = {"webhook_url": receiver.url + SLACK_PATH}
        resp = client.put(f"{CREDENTIALS}/notify_slack", json=slack)
        assert resp.status_code == 200, resp.text
        resp = client.put(
            f"{CREDENTIALS}/notify_telegram", json={"bot_token": TOKEN, "chat_id": "42"}
        )
        assert resp.status_code == 200, resp.text
        yield client


def executions(api: TestClient[Litestar]) -> dict[str, dict[str, Any]]:
    """The team's executions by action type (one each in these tests)."""
    items = api.get("/api/v1/executions").json()["items"]
    return {e["action_type"]: e for e in items}


def settle(app: Litestar) -> None:
    assert app.state.runtime.runner.join(15), "side-effect executions still running after 15 s"


# --- delivery --------------------------------------------------------------------------------


def test_a_new_deal_is_posted_to_slack_and_telegram_once(
    notify_app: Litestar, napi: Any, receiver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Given a workflow notifying both on every new deal, and Telegram accepting the message
    sent = {"ok": True, "result": {"message_id": 7, "chat": {"id": 42}, "text": "…"}}
    receiver.respond(TELEGRAM_PATH, 200, json.dumps(sent).encode())
    resp = napi.post("/api/v1/workflows", json=notify(SLACK, TELEGRAM))
    assert resp.status_code == 201, resp.text

    # When a deal is created and the side effects have run
    deal = napi.post("/api/v1/deals", json={"title": "Initech & Co", "amount": 5000})
    assert deal.status_code == 201, deal.text
    settle(notify_app)
    amount = deal.json()["amount"]
    assert float(amount) == 5000

    # Then Slack's webhook got one message with the rendered text and blocks
    (slack,) = receiver.received(SLACK_PATH)
    assert slack.headers["content-type"] == "application/json"
    assert slack.json() == {
        "text": f"New deal Initech & Co worth {amount}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Initech & Co* (created)"}},
            {"type": "divider"},
        ],
    }
    assert "5000" in slack.json()["text"]
    # and Telegram's sendMessage, under the bot's token, got one message for the stored chat
    (telegram,) = receiver.received(TELEGRAM_PATH)
    assert telegram.json() == {
        "chat_id": "42",
        "text": f"<b>Initech &amp; Co</b>: {amount}",
        "parse_mode": "HTML",
    }
    assert len(receiver.received()) == 2

    # and both executions succeeded at the first attempt
    done = executions(napi)
    assert {k: (e["status"], e["attempts"]) for k, e in done.items()} == {
        "notify_slack": ("succeeded", 1),
        "notify_telegram": ("succeeded", 1),
    }
    assert done["notify_slack"]["result"]["status"] == 200
    assert done["notify_telegram"]["result"] == {"chat_id": "42", "message_id": 7}
    # and neither the bot token nor the webhook URL is in any record or log line
    (run,) = napi.get("/api/v1/runs", params={"workflow": "notify-new-deals"}).json()["items"]
    texts = [
        napi.get(f"/api/v1/runs/{run['id']}").text,
        napi.get("/api/v1/runs").text,
        napi.get("/api/v1/executions").text,
        *(napi.get(f"/api/v1/executions/{e['id']}").text for e in done.values()),
        caplog.text,
        *(str(record.args) for record in caplog.records),
    ]
    for text in texts:
        assert TOKEN not in text
        assert "ABC-secret-token" not in text
        assert receiver.url + SLACK_PATH not in text


def test_the_action_chat_id_wins_over_the_credential_one(
    notify_app: Litestar, napi: Any, receiver: Any
) -> None:
    action = {**TELEGRAM, "chat_id": -100123, "parse_mode": "MarkdownV2"}
    action["text"] = "{{ record.title }}"
    assert napi.post("/api/v1/workflows", json=notify(action)).status_code == 201
    assert napi.post("/api/v1/deals", json={"title": "Globex"}).status_code == 201
    settle(notify_app)
    (telegram,) = receiver.received(TELEGRAM_PATH)
    assert telegram.json() == {"chat_id": -100123, "text": "Globex", "parse_mode": "MarkdownV2"}


# --- retries and failures --------------------------------------------------------------------


def test_a_slack_500_is_retried_and_delivered_once(
    notify_app: Litestar, napi: Any, receiver: Any
) -> None:
    # Given Slack failing once with a 500
    receiver.respond(SLACK_PATH, 500, b"rollup_error")
    assert napi.post("/api/v1/workflows", json=notify(SLACK)).status_code == 201
    # When a deal is created
    assert napi.post("/api/v1/deals", json={"title": "Initech", "amount": 5000}).status_code == 201
    settle(notify_app)
    # Then the second attempt delivered it, and nothing was posted after that
    first, second = receiver.received(SLACK_PATH)
    assert first.json() == second.json()
    execution = executions(napi)["notify_slack"]
    assert (execution["status"], execution["attempts"]) == ("succeeded", 2)
    failed, succeeded = execution["attempt_log"]
    assert failed["error"] == "notify_slack: Slack answered HTTP 500: rollup_error"
    assert succeeded["status"] == "succeeded"


def test_a_slack_429_waits_for_retry_after(notify_app: Litestar, napi: Any, receiver: Any) -> None:
    receiver.respond(SLACK_PATH, 429, b"rate_limited", Retry_After="1")
    assert napi.post("/api/v1/workflows", json=notify(SLACK)).status_code == 201
    assert napi.post("/api/v1/deals", json={"title": "Initech"}).status_code == 201
    settle(notify_app)
    assert len(receiver.received(SLACK_PATH)) == 2
    execution = executions(napi)["notify_slack"]
    assert (execution["status"], execution["attempts"]) == ("succeeded", 2)
    failed, succeeded = execution["attempt_log"]
    assert failed["retry_in_s"] >= 1
    assert (at(succeeded["at"]) - at(failed["at"])).total_seconds() >= 1


def test_a_telegram_rate_limit_is_retried_after_its_retry_after(
    notify_app: Litestar, napi: Any, receiver: Any
) -> None:
    # Given Telegram answering the first message with a rate limit of 1 s
    limited = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    receiver.respond(TELEGRAM_PATH, 429, json.dumps(limited).encode())
    assert napi.post("/api/v1/workflows", json=notify(TELEGRAM)).status_code == 201
    # When a deal is created
    assert napi.post("/api/v1/deals", json={"title": "Initech"}).status_code == 201
    settle(notify_app)
    # Then it was sent again no sooner than 1 s later, and succeeded
    assert len(receiver.received(TELEGRAM_PATH)) == 2
    execution = executions(napi)["notify_telegram"]
    assert (execution["status"], execution["attempts"]) == ("succeeded", 2)
    failed, succeeded = execution["attempt_log"]
    assert failed["error"] == (
        "notify_telegram: Telegram answered 429: Too Many Requests: retry after 1"
    )
    assert failed["retry_in_s"] >= 1
    assert (at(succeeded["at"]) - at(failed["at"])).total_seconds() >= 1
    assert TOKEN not in json.dumps(execution)


@pytest.mark.parametrize(("status", "answer"), [(400, b"invalid_payload"), (404, b"no_service")])
def test_a_slack_4xx_is_dead_at_once_with_slacks_answer(
    notify_app: Litestar, napi: Any, receiver: Any, status: int, answer: bytes
) -> None:
    receiver.respond(SLACK_PATH, status, answer)
    assert napi.post("/api/v1/workflows", json=notify(SLACK)).status_code == 201
    assert napi.post("/api/v1/deals", json={"title": "Initech"}).status_code == 201
    settle(notify_app)
    assert len(receiver.received(SLACK_PATH)) == 1
    execution = executions(napi)["notify_slack"]
    assert (execution["status"], execution["attempts"]) == ("dead", 1)
    assert execution["last_error"] == (
        f"notify_slack: Slack answered HTTP {status}: {answer.decode()}"
    )
    assert execution["next_attempt_at"] is None


def test_a_telegram_400_is_dead_with_its_description_and_no_token(
    notify_app: Litestar, napi: Any, receiver: Any
) -> None:
    refused = {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
    receiver.respond(TELEGRAM_PATH, 400, json.dumps(refused).encode())
    assert napi.post("/api/v1/workflows", json=notify(TELEGRAM)).status_code == 201
    assert napi.post("/api/v1/deals", json={"title": "Initech"}).status_code == 201
    settle(notify_app)
    execution = executions(napi)["notify_telegram"]
    assert (execution["status"], execution["attempts"]) == ("dead", 1)
    assert execution["last_error"] == (
        "notify_telegram: Telegram answered 400: Bad Request: chat not found"
    )
    (run,) = napi.get("/api/v1/runs").json()["items"]
    assert TOKEN not in napi.get(f"/api/v1/runs/{run['id']}").text


def test_a_telegram_5xx_is_retried(notify_app: Litestar, napi: Any, receiver: Any) -> None:
    receiver.respond(TELEGRAM_PATH, 502, b"<html>Bad Gateway</html>")
    assert napi.post("/api/v1/workflows", json=notify(TELEGRAM)).status_code == 201
    assert napi.post("/api/v1/deals", json={"title": "Initech"}).status_code == 201
    settle(notify_app)
    execution = executions(napi)["notify_telegram"]
    assert (execution["status"], execution["attempts"]) == ("succeeded", 2)
    assert execution["attempt_log"][0]["error"] == (
        "notify_telegram: Telegram answered 502: <html>Bad Gateway</html>"
    )


def test_without_credentials_the_executions_are_dead_naming_the_set(
    app: Litestar, api: Any, receiver: Any
) -> None:
    assert api.post("/api/v1/workflows", json=notify(SLACK, TELEGRAM)).status_code == 201
    assert api.post("/api/v1/deals", json={"title": "Initech"}).status_code == 201
    settle(app)
    assert receiver.received() == []
    done = executions(api)
    for name in ("notify_slack", "notify_telegram"):
        assert (done[name]["status"], done[name]["attempts"]) == ("dead", 1)
        assert done[name]["last_error"] == (
            f"'{name}' is not configured for this team: no credentials for '{name}'; "
            f"PUT /api/v1/team/credentials/{name}"
        )


def test_a_template_failing_at_send_time_is_dead_naming_its_path(
    notify_app: Litestar, napi: Any, receiver: Any
) -> None:
    broken = {"type": "section", "text": {"type": "mrkdwn", "text": "{{ 1 / 0 }}"}}
    action = {**SLACK, "blocks": [broken]}
    assert napi.post("/api/v1/workflows", json=notify(action)).status_code == 201
    assert napi.post("/api/v1/deals", json={"title": "Initech"}).status_code == 201
    settle(notify_app)
    assert receiver.received() == []
    execution = executions(napi)["notify_slack"]
    assert (execution["status"], execution["attempts"]) == ("dead", 1)
    assert execution["last_error"].startswith("notify_slack: blocks[0].text.text: template: ")


# --- saving and previewing -------------------------------------------------------------------


def test_a_template_error_is_refused_at_save_with_its_json_path(api: Any) -> None:
    slack = {
        **SLACK,
        "blocks": [
            {"type": "divider"},
            {"type": "section", "text": {"type": "mrkdwn", "text": "{{ record.title"}},
        ],
    }
    telegram = {**TELEGRAM, "text": "{% if record.amount %}big"}
    resp = api.post("/api/v1/workflows", json=notify(slack, telegram))
    assert resp.status_code == 422, resp.text
    errors = {e["field"]: e["message"] for e in resp.json()["errors"]}
    assert set(errors) == {"$.actions[0].blocks[1].text.text", "$.actions[1].text"}
    assert all(message.startswith("template: ") for message in errors.values())
    assert api.get("/api/v1/workflows").json() == []


def test_a_bad_config_is_refused_by_the_schema(api: Any) -> None:
    slack = {"type": "notify_slack", "text": "hi", "webhook_url": "https://hooks.slack.com/x"}
    telegram = {"type": "notify_telegram", "text": "hi", "parse_mode": "Markdown"}
    resp = api.post("/api/v1/workflows", json=notify(slack, telegram))
    assert resp.status_code == 422, resp.text
    fields = {e["field"] for e in resp.json()["errors"]}
    assert fields == {"$.actions[0].webhook_url", "$.actions[1].parse_mode"}


def test_a_dry_run_previews_both_messages_without_credentials(
    notify_app: Litestar, napi: Any, receiver: Any
) -> None:
    resp = napi.post(
        "/api/v1/workflows/test",
        json={"workflow": notify(SLACK, TELEGRAM), "record": {"title": "Initech", "amount": 5000}},
    )
    assert resp.status_code == 200, resp.text
    slack, telegram = resp.json()["actions"]
    assert slack["preview"]["webhook_url"] == "••••"
    assert slack["preview"]["body"]["text"].startswith("New deal Initech worth 5000")
    assert slack["preview"]["body"]["blocks"][0]["text"]["text"] == "*Initech* (created)"
    assert telegram["preview"] == {
        "url": f"{receiver.url}/bot••••/sendMessage",
        "body": {
            "chat_id": "••••",
            "text": telegram["preview"]["body"]["text"],
            "parse_mode": "HTML",
        },
    }
    assert telegram["preview"]["body"]["text"].startswith("<b>Initech</b>: 5000")
    assert TOKEN not in resp.text and receiver.url + SLACK_PATH not in resp.text
    assert receiver.received() == []
