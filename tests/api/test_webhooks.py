"""Signed inbound webhooks over real HTTP: Standard Webhooks signatures checked with stdlib HMAC
here, the replay window, rotation, dedupe by webhook-id, limits, team isolation, and the
webhook workflows they run (conditions over the payload, side effects sent to a real peer)."""

from __future__ import annotations

import asyncio

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any

import pytest
from helpers import assert_problem
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from server.app import create_app
from server.core import crypto
from server.core.db import transaction
from server.core.errors import ConfigError, Conflict, Unauthorized
from server.core.models import ActionExecution, Event, HookSecret, Run, WebhookDelivery
from server.core.services import hooks
from server.settings import Settings

HOOK = "lead-form"


def workflows(receiver_url: str) -> list[dict[str, Any]]:
    """Two webhook workflows on one hook, told apart by the payload, each posting it on."""
    return [
        {
            "id": f"{kind}-form",
            "name": f"Forward {kind} form posts",
            "trigger": {"type": "webhook", "name": HOOK},
            "condition": f"payload.kind == '{kind}'",
            "actions": [{"type": "post_to", "url": f"{receiver_url}/{kind}"}],
        }
        for kind in ("demo", "trial")
    ]


def sign(
    secret: str, body: bytes, *, msg_id: str | None = None, at: float | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, computed here with stdlib hmac (not the server's)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    timestamp = str(int(time.time() if at is None else at))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }


def new_secret(app: Litestar, team_id: int) -> str:
    with transaction(app.state.session_factory) as session:
        return hooks.create_secret(session, team_id, app.state.settings).secret


def rotate(app: Litestar, team_id: int, **kwargs: Any) -> str:
    with transaction(app.state.session_factory) as session:
        return hooks.rotate_secret(session, team_id, app.state.settings, **kwargs).secret


def count(engine: Engine, model: Any, *where: Any) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


@pytest.fixture
def setup(app: Litestar, api: TestClient[Litestar], team: Any, receiver: Any) -> str:
    """Team A's two webhook workflows and its signing secret (returned)."""
    for document in workflows(receiver.url):
        resp = api.post("/api/v1/workflows", json=document)
        assert resp.status_code == 201, resp.text
    return new_secret(app, team.team_id)


def body_of(payload: Any) -> bytes:
    return json.dumps(payload).encode()


# --- the happy path --------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["keyed", "public"])
def test_a_signed_webhook_runs_the_workflow_its_payload_matches_and_sends_its_side_effect(
    app: Litestar,
    api: TestClient[Litestar],
    team: Any,
    setup: str,
    receiver: Any,
    engine: Engine,
    route: str,
) -> None:
    # Given the two workflows on the hook, and (public route) a client without the API key
    path = f"/api/v1/hooks/{HOOK}"
    if route == "public":
        path = f"/api/v1/hooks/{team.team_id}/{HOOK}"
        del api.headers["Authorization"]
    payload = {"kind": "demo", "email": "ada@example.com", "score": 20}
    body = body_of(payload)

    # When a signed event is posted
    resp = api.post(path, content=body, headers=sign(setup, body))

    # Then it is accepted as one event whose run matched only the demo workflow
    assert resp.status_code == 202, resp.text
    answer = resp.json()
    (run,) = answer["runs"]
    assert run["matched"] == ["demo-form"]
    assert run["status"] == "ok"
    with Session(engine) as session:
        event = session.get(Event, answer["event_id"])
        assert (event.op, event.name, event.source, event.entity) == (
            "received",
            HOOK,
            "webhook",
            None,
        )
        assert event.payload == payload
        assert event.team_id == team.team_id
        assert event.user_id == (team.user_id if route == "keyed" else None)
    # and the run log explains both evaluations, the trial one failing on the payload
    api.headers.update(team.headers)
    logged = api.get(f"/api/v1/runs/{run['id']}").json()
    by_workflow = {e["workflow"]: e for e in logged["evaluations"]}
    assert by_workflow["demo-form"]["matched"] is True
    assert by_workflow["trial-form"]["matched"] is False
    assert (logged["op"], logged["source"]) == ("received", "webhook")
    (action,) = by_workflow["demo-form"]["actions"]
    assert (action["type"], action["status"]) == ("post_to", "queued")
    # and after commit the side effect delivered the payload to the peer, once
    assert app.state.runtime.runner.join(10)
    (sent,) = receiver.received("/demo")
    assert sent.json()["payload"] == payload
    assert sent.json()["workflow"] == "demo-form"
    assert receiver.received("/trial") == []
    (execution,) = api.get(f"/api/v1/runs/{run['id']}").json()["executions"]
    assert execution["status"] == "succeeded"


def test_the_keyed_route_needs_the_api_key_as_well_as_the_signature(
    client: TestClient[Litestar], setup: str, engine: Engine
) -> None:
    del client.headers["Authorization"]
    body = body_of({"kind": "demo"})
    resp = client.post(f"/api/v1/hooks/{HOOK}", content=body, headers=sign(setup, body))
    assert "API key" in assert_problem(resp, 401)["detail"]
    assert count(engine, Event) == 0


def test_the_webhook_limit_not_the_app_limit_applies(
    api: TestClient[Litestar], app: Litestar, setup: str
) -> None:
    # Given a payload larger than the app-wide body limit but within the webhook limit
    assert app.state.settings.max_body_size < 100_000 < app.state.settings.webhook_max_body_size
    body = body_of({"kind": "demo", "note": "x" * 100_000})
    # When / Then it is accepted
    resp = api.post(f"/api/v1/hooks/{HOOK}", content=body, headers=sign(setup, body))
    assert resp.status_code == 202, resp.text


# --- what is refused ---------------------------------------------------------------------------


def test_a_wrong_signature_is_refused_and_runs_nothing(
    api: TestClient[Litestar], setup: str, engine: Engine, receiver: Any
) -> None:
    body = body_of({"kind": "demo"})
    good = sign(setup, body)
    wrong_secret = sign(hooks.generate_secret(), body)
    tampered = body_of({"kind": "demo", "admin": True})
    for headers, content in ((wrong_secret, body), (good, tampered)):
        resp = api.post(f"/api/v1/hooks/{HOOK}", content=content, headers=headers)
        assert "no webhook-signature entry matches" in assert_problem(resp, 401)["detail"]
    assert count(engine, Event) == 0
    assert count(engine, WebhookDelivery) == 0


def test_one_matching_entry_among_several_passes(api: TestClient[Litestar], setup: str) -> None:
    body = body_of({"kind": "demo"})
    headers = sign(setup, body)
    other = sign(
        hooks.generate_secret(),
        body,
        msg_id=headers["webhook-id"],
        at=int(headers["webhook-timestamp"]),
    )
    headers["webhook-signature"] = (
        f"v2,abc {other['webhook-signature']} {headers['webhook-signature']}"
    )
    resp = api.post(f"/api/v1/hooks/{HOOK}", content=body, headers=headers)
    assert resp.status_code == 202, resp.text


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused_naming_it(
    api: TestClient[Litestar], setup: str, header: str
) -> None:
    body = body_of({"kind": "demo"})
    headers = sign(setup, body)
    del headers[header]
    resp = api.post(f"/api/v1/hooks/{HOOK}", content=body, headers=headers)
    assert f"the {header} header is missing" in assert_problem(resp, 401)["detail"]


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("webhook-timestamp", "yesterday", "whole seconds since the Unix epoch"),
        ("webhook-timestamp", "-5", "whole seconds since the Unix epoch"),
        ("webhook-signature", "v1", "holds no 'v1,<base64 HMAC-SHA256>' entry"),
        ("webhook-signature", "v1,not*base64", "holds no 'v1,<base64 HMAC-SHA256>' entry"),
        ("webhook-signature", "v1a,c2lnbmF0dXJl", "holds no 'v1,<base64 HMAC-SHA256>' entry"),
        ("webhook-id", "has spaces in it", "visible ASCII characters"),
        ("webhook-id", "x" * 201, "visible ASCII characters"),
    ],
)
def test_a_malformed_header_is_refused(
    api: TestClient[Litestar], setup: str, header: str, value: str, reason: str
) -> None:
    body = body_of({"kind": "demo"})
    headers = sign(setup, body)
    headers[header] = value
    resp = api.post(f"/api/v1/hooks/{HOOK}", content=body, headers=headers)
    assert reason in assert_problem(resp, 401)["detail"]


@pytest.mark.parametrize(
    ("offset", "status", "reason"),
    [
        (-301, 401, "in the past"),
        (-3600, 401, "in the past"),
        (301, 401, "in the future"),
        (-290, 202, None),
        (290, 202, None),
    ],
)
def test_the_replay_window_is_five_minutes_either_way(
    api: TestClient[Litestar],
    setup: str,
    engine: Engine,
    offset: int,
    status: int,
    reason: str | None,
) -> None:
    body = body_of({"kind": "demo"})
    # A correct signature made with a timestamp ``offset`` seconds from now
    resp = api.post(
        f"/api/v1/hooks/{HOOK}", content=body, headers=sign(setup, body, at=time.time() + offset)
    )
    if reason is None:
        assert resp.status_code == status, resp.text
        assert count(engine, Event) == 1
    else:
        assert reason in assert_problem(resp, status)["detail"]
        assert count(engine, Event) == 0


def test_a_body_over_the_limit_is_refused_with_413(
    api: TestClient[Litestar], app: Litestar, setup: str, engine: Engine
) -> None:
    limit = app.state.settings.webhook_max_body_size
    body = body_of({"kind": "demo", "note": "x" * limit})
    resp = api.post(f"/api/v1/hooks/{HOOK}", content=body, headers=sign(setup, body))
    body413 = assert_problem(resp, 413)
    assert str(limit) in body413["detail"]
    # Also when streamed without a Content-Length (chunked)
    resp = api.post(
        f"/api/v1/hooks/{HOOK}",
        content=iter([body[:1000], body[1000:]]),
        headers=sign(setup, body),
    )
    assert_problem(resp, 413)
    assert count(engine, Event) == 0


def test_an_endless_body_is_refused_after_the_limit_not_read_whole(
    api: TestClient[Litestar], app: Litestar, team: Any, setup: str
) -> None:
    # Given a sender streaming 4 MiB in 64 KiB chunks to the public route (no API key)
    limit = app.state.settings.webhook_max_body_size
    chunk, chunks = b"x" * 65536, 64
    taken: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        taken.append(1)
        return {"type": "http.request", "body": chunk, "more_body": len(taken) < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": f"/api/v1/hooks/{team.team_id}/{HOOK}", "raw_path": b"",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80), "headers": [(b"content-type", b"application/json")],
    }
    # When the app answers it
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    # Then it is a 413, and the server stopped reading just past its limit
    assert sent[0]["status"] == 413
    assert len(taken) <= limit // len(chunk) + 2 < chunks


def test_an_unknown_or_disabled_hook_is_404_naming_it(
    api: TestClient[Litestar], setup: str, engine: Engine
) -> None:
    body = body_of({"kind": "demo"})
    resp = api.post("/api/v1/hooks/no-such-hook", content=body, headers=sign(setup, body))
    assert "hook 'no-such-hook' not found" in assert_problem(resp, 404)["detail"]
    # When both workflows of the hook are disabled, it is unknown too
    for key in ("demo-form", "trial-form"):
        assert api.post(f"/api/v1/workflows/{key}/disable").status_code == 200
    resp = api.post(f"/api/v1/hooks/{HOOK}", content=body, headers=sign(setup, body))
    assert f"hook '{HOOK}' not found" in assert_problem(resp, 404)["detail"]
    assert count(engine, Event) == 0


@pytest.mark.parametrize(
    "content",
    [
        b"kind=demo",
        b"[1, 2]",
        b'{"a": NaN}',
        b'{"a": 1e400}',
        b'{"a": "\\u0000"}',
        b'{"a": ' + b"[" * 64 + b"]" * 64 + b"}",
        b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b"",
    ],
    ids=["form", "array", "nan", "inf", "nul", "deep", "deeper", "empty"],
)
def test_a_body_that_is_not_a_json_object_is_refused_naming_body(
    api: TestClient[Litestar], setup: str, content: bytes, engine: Engine
) -> None:
    resp = api.post(f"/api/v1/hooks/{HOOK}", content=content, headers=sign(setup, content))
    assert_problem(resp, 422, field="body")
    assert count(engine, WebhookDelivery) == 0


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_payload_nested_64_levels_deep_is_accepted(api: TestClient[Litestar], setup: str) -> None:
    content = b'{"kind": "demo", "a": ' + b"[" * 63 + b"]" * 63 + b"}"
    resp = api.post(f"/api/v1/hooks/{HOOK}", content=content, headers=sign(setup, content))
    assert resp.status_code == 202, resp.text


def test_a_wrong_server_secret_key_is_a_logged_503_not_a_traceback(
    engine: Engine, db_url: str, team: Any, setup: str
) -> None:
    # Given the secret was stored under the test key, and an app configured with another one
    other = create_app(Settings(database_url=db_url, secret_key="another-key"), engine=engine)
    body = body_of({"kind": "demo"})
    handler = Records()
    logging.getLogger("dealflow.api").addHandler(handler)
    try:
        with TestClient(other) as client:
            client.headers.update(team.headers)
            resp = client.post(f"/api/v1/hooks/{HOOK}", content=body, headers=sign(setup, body))
    finally:
        logging.getLogger("dealflow.api").removeHandler(handler)
    # Then the sender is told to retry later, and the log says what to fix, without a traceback
    assert "retry later" in assert_problem(resp, 503)["detail"]
    (record,) = handler.records
    assert "DEALFLOW_SECRET_KEY" in record.getMessage()
    assert record.exc_info is None
    assert setup not in record.getMessage()


# --- teams ---------------------------------------------------------------------------------------


def test_the_public_route_answers_an_unknown_team_like_a_bad_signature(
    client: TestClient[Litestar], setup: str, team: Any
) -> None:
    del client.headers["Authorization"]
    body = body_of({"kind": "demo"})
    unknown = client.post(
        f"/api/v1/hooks/{team.team_id + 1000}/{HOOK}", content=body, headers=sign(setup, body)
    )
    huge = client.post(f"/api/v1/hooks/{2**70}/{HOOK}", content=body, headers=sign(setup, body))
    wrong = client.post(
        f"/api/v1/hooks/{team.team_id}/{HOOK}",
        content=body,
        headers=sign(hooks.generate_secret(), body),
    )
    details = {assert_problem(r, 401)["detail"] for r in (unknown, huge, wrong)}
    assert len(details) == 1


def test_a_team_without_secret_is_told_how_to_make_one_on_the_keyed_route_only(
    client: TestClient[Litestar], team: Any, receiver: Any
) -> None:
    client.headers.update(team.headers)
    for document in workflows(receiver.url):
        assert client.post("/api/v1/workflows", json=document).status_code == 201
    body = body_of({"kind": "demo"})
    headers = sign(hooks.generate_secret(), body)
    keyed = client.post(f"/api/v1/hooks/{HOOK}", content=body, headers=headers)
    assert "dealflow hooks secret create" in assert_problem(keyed, 401)["detail"]
    del client.headers["Authorization"]
    public = client.post(f"/api/v1/hooks/{team.team_id}/{HOOK}", content=body, headers=headers)
    assert "no webhook-signature entry matches" in assert_problem(public, 401)["detail"]


def test_another_teams_secret_cannot_post_to_this_team(
    app: Litestar, api: TestClient[Litestar], team: Any, make_team: Any, setup: str, engine: Engine
) -> None:
    # Given team B with its own secret and the same hook name
    other = make_team("Globex")
    b_secret = new_secret(app, other.team_id)
    body = body_of({"kind": "demo"})
    # When B's secret signs a post to A (public route by id, and keyed route with A's key)
    public = api.post(
        f"/api/v1/hooks/{team.team_id}/{HOOK}", content=body, headers=sign(b_secret, body)
    )
    keyed = api.post(f"/api/v1/hooks/{HOOK}", content=body, headers=sign(b_secret, body))
    # Then both are refused, and A's own secret cannot post to B either
    assert_problem(public, 401)
    assert_problem(keyed, 401)
    to_b = api.post(
        f"/api/v1/hooks/{other.team_id}/{HOOK}", content=body, headers=sign(setup, body)
    )
    assert_problem(to_b, 401)
    assert count(engine, Event) == 0


def test_webhook_ids_are_deduplicated_per_team(
    app: Litestar,
    api: TestClient[Litestar],
    team: Any,
    make_team: Any,
    setup: str,
    engine: Engine,
    receiver: Any,
) -> None:
    # Given team B with the same workflows and its own secret
    other = make_team("Globex")
    b_secret = new_secret(app, other.team_id)
    with TestClient(app) as b_api:
        b_api.headers.update(other.headers)
        for document in workflows(receiver.url):
            assert b_api.post("/api/v1/workflows", json=document).status_code == 201
        body = body_of({"kind": "demo"})
        # When both teams receive a webhook with the same id
        a = api.post(
            f"/api/v1/hooks/{HOOK}", content=body, headers=sign(setup, body, msg_id="msg_same")
        )
        b = b_api.post(
            f"/api/v1/hooks/{HOOK}", content=body, headers=sign(b_secret, body, msg_id="msg_same")
        )
    # Then each team ran its own workflows once
    assert a.status_code == b.status_code == 202
    assert a.json()["event_id"] != b.json()["event_id"]
    assert count(engine, Event, Event.team_id == team.team_id) == 1
    assert count(engine, Event, Event.team_id == other.team_id) == 1


# --- dedupe --------------------------------------------------------------------------------------


def test_a_repeated_webhook_id_gets_the_same_answer_and_runs_once(
    app: Litestar, api: TestClient[Litestar], setup: str, engine: Engine, receiver: Any
) -> None:
    body = body_of({"kind": "demo"})
    first = api.post(
        f"/api/v1/hooks/{HOOK}", content=body, headers=sign(setup, body, msg_id="msg_1")
    )
    assert first.status_code == 202, first.text
    # When the sender retries: same id, freshly signed (a later timestamp), even another body
    later = body_of({"kind": "trial"})
    again = api.post(
        f"/api/v1/hooks/{HOOK}",
        content=later,
        headers=sign(setup, later, msg_id="msg_1", at=time.time() + 60),
    )
    # Then the answer is the first one, byte for byte, and nothing ran again
    assert again.status_code == 202
    assert again.content == first.content
    assert count(engine, Event) == 1
    assert count(engine, Run) == 1
    assert count(engine, ActionExecution) == 1
    assert app.state.runtime.runner.join(10)
    assert len(receiver.received("/demo")) == 1
    assert receiver.received("/trial") == []
    # But a repeat still has to be signed
    forged = api.post(
        f"/api/v1/hooks/{HOOK}",
        content=body,
        headers=sign(hooks.generate_secret(), body, msg_id="msg_1"),
    )
    assert_problem(forged, 401)


def test_a_concurrent_duplicate_is_answered_from_the_stored_delivery(
    app: Litestar,
    api: TestClient[Litestar],
    setup: str,
    engine: Engine,
    receiver: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = body_of({"kind": "demo"})
    first = api.post(
        f"/api/v1/hooks/{HOOK}", content=body, headers=sign(setup, body, msg_id="msg_race")
    )
    assert first.status_code == 202, first.text
    # Given a second delivery of the id that, as if concurrent, did not see the first one's row
    real = hooks._delivery
    looked: list[str] = []

    def raced(scope: Any, webhook_id: str) -> Any:
        looked.append(webhook_id)
        return None if len(looked) == 1 else real(scope, webhook_id)

    monkeypatch.setattr(hooks, "_delivery", raced)
    # When it runs the workflows and then hits the unique constraint on commit
    again = api.post(
        f"/api/v1/hooks/{HOOK}", content=body, headers=sign(setup, body, msg_id="msg_race")
    )
    # Then it answers with the stored delivery, and its own event and side effect were rolled back
    assert looked == ["msg_race", "msg_race"]
    assert again.status_code == 202
    assert again.json() == first.json()
    assert count(engine, Event) == 1
    assert count(engine, ActionExecution) == 1
    assert app.state.runtime.runner.join(10)
    assert len(receiver.received("/demo")) == 1


# --- secrets -------------------------------------------------------------------------------------


def test_rotation_keeps_the_previous_secret_for_its_grace_period_only(
    app: Litestar, api: TestClient[Litestar], team: Any, setup: str, engine: Engine
) -> None:
    def post(secret: str) -> int:
        body = body_of({"kind": "demo"})
        return api.post(
            f"/api/v1/hooks/{HOOK}", content=body, headers=sign(secret, body)
        ).status_code

    first = setup
    # When the secret is rotated, both the new and the previous one are accepted
    second = rotate(app, team.team_id)
    assert (post(first), post(second)) == (202, 202)
    # When the grace period of the previous one is over, it is refused
    with transaction(app.state.session_factory) as session:
        session.execute(
            update(HookSecret)
            .where(HookSecret.expires_at.is_not(None))
            .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )
    assert (post(first), post(second)) == (401, 202)
    # A further rotation keeps the second (in grace) and drops the first for good
    third = rotate(app, team.team_id)
    assert (post(first), post(second), post(third)) == (401, 202, 202)
    assert count(engine, HookSecret) == 2
    # And a third rotation drops the second: at most two secrets are ever live
    fourth = rotate(app, team.team_id)
    assert (post(second), post(third), post(fourth)) == (401, 202, 202)
    with Session(engine) as session:
        statuses = [s.status for s in hooks.list_secrets(session, team.team_id)]
    assert statuses == ["current", "previous"]


def test_the_grace_period_is_measured_from_the_rotation(
    app: Litestar, team: Any, setup: str
) -> None:
    # Given a rotation with a one-hour grace at a known time
    at = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    with transaction(app.state.session_factory) as session:
        made = hooks.rotate_secret(
            session, team.team_id, app.state.settings, grace=dt.timedelta(hours=1), now=at
        )
    assert made.previous_expires_at == at + dt.timedelta(hours=1)
    body = b'{"kind": "demo"}'

    def accepted(secret: str, now: dt.datetime) -> bool:
        with Session(app.state.engine) as session:
            live = hooks.live_secrets(session, team.team_id, app.state.settings, now)
        headers = sign(secret, body, at=now.timestamp())
        try:
            hooks.verify(headers, body, live, now)
        except Unauthorized:
            return False
        return True

    # Then the old secret passes until the hour is over, the new one throughout
    assert accepted(setup, at + dt.timedelta(minutes=59))
    assert not accepted(setup, at + dt.timedelta(minutes=61))
    assert accepted(made.secret, at + dt.timedelta(days=30))


def test_a_second_create_is_refused_with_a_hint_to_rotate(
    app: Litestar, team: Any, setup: str
) -> None:
    with pytest.raises(Conflict, match="rotate"), transaction(app.state.session_factory) as session:
        hooks.create_secret(session, team.team_id, app.state.settings)


def test_secrets_are_stored_encrypted_never_in_plain(
    app: Litestar, team: Any, setup: str, engine: Engine
) -> None:
    # Given a secret in the Standard Webhooks format
    assert setup.startswith("whsec_")
    assert len(base64.b64decode(setup.removeprefix("whsec_"))) == 32
    # Then no column of its row holds it, or its key bytes, in any usual spelling
    raw_key = base64.b64decode(setup.removeprefix("whsec_"))
    with engine.connect() as conn:
        rows = conn.execute(select(HookSecret.__table__)).all()
    (row,) = rows
    stored = " ".join(str(v) for v in row)
    for spelling in (
        setup,
        setup.removeprefix("whsec_"),
        raw_key.hex(),
        base64.urlsafe_b64encode(raw_key).decode(),
    ):
        assert spelling not in stored
    assert row.key_id.startswith("whk_") and len(row.key_id) == 16
    # and only the configured key reads it back
    assert crypto.decrypt(app.state.settings, row.secret_encrypted) == setup
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        crypto.decrypt("another-key", row.secret_encrypted)
    # while listing shows its id, never its value
    with Session(engine) as session:
        (listed,) = hooks.list_secrets(session, team.team_id)
    assert (listed.key_id, listed.status, listed.expires_at) == (row.key_id, "current", None)
    assert setup not in repr(listed)


def test_a_missing_server_secret_key_says_to_set_it() -> None:
    with pytest.raises(ConfigError, match="DEALFLOW_SECRET_KEY"):
        crypto.encrypt(Settings(secret_key=None), "text")
    assert crypto.decrypt("k", crypto.encrypt("k", "text")) == "text"


def test_the_servers_signature_helper_matches_the_scheme(setup: str) -> None:
    body = b'{"kind": "demo"}'
    headers = sign(setup, body, msg_id="msg_x", at=1_700_000_000)
    assert hooks.sign(setup, "msg_x", 1_700_000_000, body) == headers["webhook-signature"]


# --- webhook workflows ---------------------------------------------------------------------------


def test_a_webhook_workflow_needs_no_entity_but_any_other_does(api: TestClient[Litestar]) -> None:
    hook = {
        "id": "no-entity",
        "name": "A webhook workflow",
        "trigger": {"type": "webhook", "name": "pricing-visit"},
        "actions": [],
    }
    resp = api.post("/api/v1/workflows", json=hook)
    assert resp.status_code == 201, resp.text
    assert resp.json()["entity"] is None
    saved = {**hook, "id": "record-saved", "trigger": {"type": "record_saved"}}
    assert_problem(api.post("/api/v1/workflows", json=saved), 422, field="$.entity")
    unnamed = {**hook, "id": "unnamed", "trigger": {"type": "webhook"}}
    assert_problem(api.post("/api/v1/workflows", json=unnamed), 422, field="$.trigger.name")
    bad_name = {**hook, "id": "bad-name", "trigger": {"type": "webhook", "name": "a/b"}}
    assert_problem(api.post("/api/v1/workflows", json=bad_name), 422, field="$.trigger.name")


@pytest.mark.parametrize(
    "action",
    [
        {"type": "field_update", "set": {"score": 20}},
        {"type": "formula", "field": "score", "expression": "score + 20"},
        {"type": "tag_record", "tag": "x"},
    ],
    ids=lambda a: a["type"],
)
def test_a_record_action_in_a_webhook_workflow_is_refused_at_save(
    api: TestClient[Litestar], action: dict[str, Any], receiver: Any
) -> None:
    document = {
        "id": "hook-with-record-action",
        "name": "Cannot work",
        "entity": "lead",
        "trigger": {"type": "webhook", "name": "pricing-visit"},
        "actions": [{"type": "post_to", "url": receiver.url}, action],
    }
    body = assert_problem(
        api.post("/api/v1/workflows", json=document), 422, field="$.actions[1].type"
    )
    assert "no record to change" in body["errors"][0]["message"]


def test_a_webhook_workflow_naming_an_entity_still_listens(
    api: TestClient[Litestar], app: Litestar, team: Any, receiver: Any
) -> None:
    document = {**workflows(receiver.url)[0], "entity": "lead"}
    assert api.post("/api/v1/workflows", json=document).status_code == 201
    secret = new_secret(app, team.team_id)
    body = body_of({"kind": "demo"})
    resp = api.post(f"/api/v1/hooks/{HOOK}", content=body, headers=sign(secret, body))
    assert resp.status_code == 202, resp.text
    assert resp.json()["runs"][0]["matched"] == ["demo-form"]


def test_record_saves_do_not_fire_webhook_workflows(
    api: TestClient[Litestar], setup: str, engine: Engine
) -> None:
    assert api.post("/api/v1/deals", json={"title": "Initech"}).status_code == 201
    assert count(engine, ActionExecution) == 0
    with Session(engine) as session:
        (run,) = session.scalars(select(Run)).all()
    assert run.evaluations == []


def test_the_openapi_document_shows_the_public_route_needs_no_key(
    client: TestClient[Litestar],
) -> None:
    doc = client.get("/schema/openapi.json").json()
    public = doc["paths"]["/api/v1/hooks/{team_id}/{name}"]["post"]
    keyed = doc["paths"]["/api/v1/hooks/{name}"]["post"]
    assert {} in public["security"]
    assert {} not in keyed["security"]
    assert "202" in public["responses"] and "202" in keyed["responses"]


# --- secrets managed over the API ------------------------------------------------------------


def test_an_admin_creates_lists_and_rotates_secrets_over_the_api(
    app: Litestar, api: TestClient[Litestar], team: Any, receiver: Any
) -> None:
    # Given the team's webhook workflows and no secret yet
    for document in workflows(receiver.url):
        assert api.post("/api/v1/workflows", json=document).status_code == 201
    body = body_of({"kind": "demo"})
    public = f"/api/v1/hooks/{team.team_id}/{HOOK}"

    # When the admin creates the team's secret
    made = api.post("/api/v1/team/hook-secrets")

    # Then it is shown once, with where to post, and signs events the server accepts
    assert made.status_code == 201, made.text
    first = made.json()
    assert first["secret"].startswith("whsec_")
    assert first["url"] == f"/api/v1/hooks/{team.team_id}/{{name}}"
    assert api.post(public, content=body, headers=sign(first["secret"], body)).status_code == 202
    # and a second create is refused: rotate instead
    assert_problem(api.post("/api/v1/team/hook-secrets"), 409)

    # When it is rotated with a grace of one hour
    rotated = api.post("/api/v1/team/hook-secrets/rotate", json={"grace_hours": 1})

    # Then both secrets sign for now, the previous one until an hour from now
    assert rotated.status_code == 201, rotated.text
    second = rotated.json()
    assert second["previous_key_id"] == first["key_id"]
    until = dt.datetime.fromisoformat(second["previous_expires_at"])
    assert dt.timedelta(minutes=59) < until - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=1)
    for secret in (first["secret"], second["secret"]):
        assert api.post(public, content=body, headers=sign(secret, body)).status_code == 202
    # and the list shows key ids and status, never a value
    listed = api.get("/api/v1/team/hook-secrets")
    assert [(s["key_id"], s["status"]) for s in listed.json()] == [
        (second["key_id"], "current"), (first["key_id"], "previous")]
    assert "whsec_" not in listed.text
    # and the audit log names both changes by key id, never the secrets
    audit = api.get("/api/v1/audit").json()
    logged = {e["action"]: e for e in audit["items"]}
    assert logged["hook_secret.create"]["target"] == first["key_id"]
    assert logged["hook_secret.rotate"]["target"] == second["key_id"]
    assert logged["hook_secret.rotate"]["user_id"] == team.user_id
    assert "whsec_" not in json.dumps(audit)


@pytest.mark.parametrize("body", [{"grace_hours": -1}, {"grace_hours": 24 * 31},
                                  {"grace_hours": "1"}, {"grace": 1}])
def test_a_bad_rotation_grace_is_refused_and_changes_nothing(
    api: TestClient[Litestar], engine: Engine, body: dict[str, Any]
) -> None:
    resp = api.post("/api/v1/team/hook-secrets/rotate", json=body)

    assert resp.status_code in (400, 422), resp.text
    assert count(engine, HookSecret) == 0


# --- hops: a workflow posting back to a hook stops at the depth limit ---------------------------


@pytest.mark.parametrize("hops", ["0", "4", "5"])
def test_a_webhook_within_the_depth_limit_runs_with_its_hops_as_its_depth(
    api: TestClient[Litestar], setup: str, engine: Engine, hops: str
) -> None:
    body = body_of({"kind": "demo"})
    headers = {**sign(setup, body), "Dealflow-Hops": hops}

    resp = api.post(f"/api/v1/hooks/{HOOK}", content=body, headers=headers)

    assert resp.status_code == 202, resp.text
    (run,) = resp.json()["runs"]
    assert (run["status"], run["matched"]) == ("ok", ["demo-form"])
    with Session(engine) as session:
        assert session.get(Event, resp.json()["event_id"]).depth == int(hops)


@pytest.mark.parametrize("hops", ["6", "1000"])
def test_a_webhook_past_the_depth_limit_is_recorded_and_runs_nothing(
    api: TestClient[Litestar], setup: str, engine: Engine, hops: str
) -> None:
    # Given a delivery that says more side effects led to it than the depth limit allows
    body = body_of({"kind": "demo"})
    headers = {**sign(setup, body), "Dealflow-Hops": hops}

    # When it is posted
    resp = api.post(f"/api/v1/hooks/{HOOK}", content=body, headers=headers)

    # Then it is accepted (a sender retrying would change nothing) and recorded as refused,
    # with no workflow evaluated and nothing queued
    assert resp.status_code == 202, resp.text
    (run,) = resp.json()["runs"]
    assert (run["status"], run["matched"]) == ("limit", [])
    logged = api.get(f"/api/v1/runs/{run['id']}").json()
    assert logged["evaluations"] == []
    assert logged["notes"] == [{"depth_limit": 5, "refused": f"event at depth {hops}"}]
    assert count(engine, ActionExecution) == 0


@pytest.mark.parametrize("hops", ["-1", "two", "1.5", "", "9999999", "0x5", "9" * 5000])
def test_a_malformed_hops_header_is_a_422_naming_it(
    api: TestClient[Litestar], setup: str, engine: Engine, hops: str
) -> None:
    body = body_of({"kind": "demo"})
    headers = {**sign(setup, body), "Dealflow-Hops": hops}

    resp = api.post(f"/api/v1/hooks/{HOOK}", content=body, headers=headers)

    problem = assert_problem(resp, 422, field="Dealflow-Hops")
    assert "Dealflow-Hops: must be a whole number from 0 to 1000000" in str(problem)
    assert count(engine, Event) == 0


def test_two_creates_racing_past_the_check_leave_one_current_secret(
    app: Litestar, api: TestClient[Litestar], team: Any, engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the first create's check and insert done, and a second request whose check ran
    # before that insert (so it saw no secret either)
    first = new_secret(app, team.team_id)
    monkeypatch.setattr(hooks, "_current", lambda session, team_id: None)

    # When the second request goes on to store its secret
    resp = api.post("/api/v1/team/hook-secrets")

    # Then the database refuses a second current secret: a 409, and the first still signs
    assert_problem(resp, 409)
    assert count(engine, HookSecret, HookSecret.expires_at.is_(None)) == 1
    body = body_of({"kind": "demo"})
    assert api.post(f"/api/v1/hooks/{team.team_id}/{HOOK}", content=body,
                    headers=sign(first, body)).status_code in (202, 404)
