"""The ``erp_export`` plugin end to end over real HTTP: credentials through the API, a workflow
with a projection, a deal created, the signed request as the ERP (the receiver) saw it, and the
execution as the API reports it."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from email.utils import format_datetime
from typing import Any

import pytest
from helpers import assert_problem

from plugins import erp_export
from server.plugin import ActionContext, ActionError, retry_after
from server.settings import Settings

CREDENTIALS = "/api/v1/team/credentials/erp_export"
SECRET = "erp-hmac-secret-5f4e3d2c1b0a"
PATH = "/erp"
PROJECTION = (
    "{id: record.id, title: record.title, amount: record.amount, "
    "currency: record.currency, customer: record.contact.company, op: event.op}"
)


def erp_workflow(projection: str = PROJECTION, key: str = "erp-deals") -> dict[str, Any]:
    return {
        "id": key,
        "name": "Export new deals to the ERP",
        "entity": "deal",
        "trigger": {"type": "record_saved", "on": ["created"]},
        "actions": [{"type": "erp_export", "projection": projection}],
    }


@pytest.fixture
def join(app: Any) -> Any:
    def wait(timeout: float = 10) -> None:
        assert app.state.runtime.runner.join(timeout), f"executions still running after {timeout} s"

    return wait


@pytest.fixture
def erp(api: Any, receiver: Any) -> str:
    """The team's erp_export credentials point at the receiver; the URL."""
    url = receiver.url + PATH
    resp = api.put(CREDENTIALS, json={"url": url, "secret": SECRET})
    assert resp.status_code == 200, resp.text
    assert api.post("/api/v1/workflows", json=erp_workflow()).status_code == 201
    return url


@pytest.fixture
def customer(api: Any) -> dict[str, Any]:
    """The contact the exported deals are for."""
    body = {"name": "Bill Lumbergh", "email": "bill@initech.test", "company": "Initech Corp"}
    resp = api.post("/api/v1/contacts", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def create_deal(api: Any, **fields: Any) -> dict[str, Any]:
    resp = api.post("/api/v1/deals", json={"title": "Initech", "amount": 24000, **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


def only_execution(api: Any) -> dict[str, Any]:
    (execution,) = api.get("/api/v1/executions").json()["items"]
    return execution


def texts_about_runs(api: Any, execution: dict[str, Any]) -> list[str]:
    """Every API answer that shows the run and its execution."""
    texts = [
        api.get("/api/v1/runs").text,
        api.get(f"/api/v1/runs/{execution['run_id']}").text,
        api.get("/api/v1/executions").text,
        api.get(f"/api/v1/executions/{execution['id']}").text,
    ]
    assert all(texts)
    return texts


def test_the_projection_is_posted_signed_with_the_idempotency_key(
    api: Any, erp: str, customer: dict[str, Any], receiver: Any, join: Any
) -> None:
    # Given the team's credentials and the workflow (fixture)
    # When a deal with a contact is created and the side effects ran
    deal = create_deal(api, currency="EUR", contact_id=customer["id"])
    join()
    # Then the ERP got one request whose body is exactly the projection, compact JSON, with
    # the contact's company as the customer
    (request,) = receiver.received(PATH)
    expected = {
        "id": deal["id"], "title": "Initech", "amount": 24000.0, "currency": "EUR",
        "customer": "Initech Corp", "op": "created",
    }
    assert request.json() == expected
    assert request.body == json.dumps(expected, separators=(",", ":")).encode()
    assert request.headers["content-type"] == "application/json"
    # and the signature is the HMAC-SHA256 of the bytes received, with the secret
    digest = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-dealflow-signature"], f"sha256={digest}")
    # and the idempotency key is the execution's
    execution = only_execution(api)
    assert request.headers["idempotency-key"] == execution["idempotency_key"]
    # and the execution succeeded with the status and the response's excerpt
    assert (execution["status"], execution["attempts"]) == ("succeeded", 1)
    assert execution["result"] == {"status": 200, "response": "{}"}
    # and the secret is in no answer about the run
    for text in texts_about_runs(api, execution):
        assert SECRET not in text


def test_a_deal_without_a_contact_has_no_customer(
    api: Any, erp: str, receiver: Any, join: Any
) -> None:
    # When a deal without a contact is created
    deal = create_deal(api)
    join()
    # Then the customer is null in the body
    (request,) = receiver.received(PATH)
    assert request.json()["id"] == deal["id"]
    assert request.json()["customer"] is None


def test_a_retry_sends_the_contact_as_it_was_at_the_save(
    api: Any, erp: str, customer: dict[str, Any], receiver: Any, join: Any
) -> None:
    # Given an export that died on a 400
    receiver.respond(PATH, 400, b'{"error": "try later"}')
    create_deal(api, contact_id=customer["id"])
    join()
    execution = only_execution(api)
    assert execution["status"] == "dead"
    # When the contact's company changes, then the execution is retried
    resp = api.patch(f"/api/v1/contacts/{customer['id']}", json={"company": "Initrode"})
    assert resp.status_code == 200, resp.text
    assert api.post(f"/api/v1/executions/{execution['id']}/retry").status_code == 200
    join()
    # Then both requests carry the company the deal was saved with
    first, second = receiver.received(PATH)
    assert first.json()["customer"] == second.json()["customer"] == "Initech Corp"


def test_a_5xx_is_retried_with_the_same_idempotency_key(
    api: Any, erp: str, receiver: Any, join: Any
) -> None:
    # Given an ERP that fails once, then accepts
    receiver.respond(PATH, 500, b'{"error": "database is down"}')
    receiver.respond(PATH, 201, b'{"booked": true}')
    # When a deal is created
    create_deal(api)
    join()
    # Then it was sent twice with one key and one signature, and succeeded on attempt 2
    first, second = receiver.received(PATH)
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.body == second.body
    assert first.headers["x-dealflow-signature"] == second.headers["x-dealflow-signature"]
    execution = only_execution(api)
    assert (execution["status"], execution["attempts"]) == ("succeeded", 2)
    assert execution["result"] == {"status": 201, "response": '{"booked": true}'}
    failed, succeeded = execution["attempt_log"]
    assert failed["status"] == "error" and "HTTP 500" in failed["error"]
    assert "database is down" in failed["error"]
    assert succeeded["status"] == "succeeded"
    assert execution["idempotency_key"] == first.headers["idempotency-key"]


def test_a_408_is_retried_with_the_same_request(
    api: Any, erp: str, receiver: Any, join: Any
) -> None:
    # Given an ERP that times the request out once (408 Request Timeout), then accepts
    receiver.respond(PATH, 408, b"request timeout")
    # When a deal is created
    create_deal(api)
    join()
    # Then the ERP got the same signed request twice, and the execution succeeded on attempt 2
    first, second = receiver.received(PATH)
    assert first.body == second.body
    for name in ("idempotency-key", "x-dealflow-signature"):
        assert first.headers[name] == second.headers[name]
    execution = only_execution(api)
    assert (execution["status"], execution["attempts"]) == ("succeeded", 2)
    timed_out, succeeded = execution["attempt_log"]
    assert timed_out["error"] == "erp_export: the ERP answered HTTP 408: request timeout"
    assert timed_out["retry_in_s"] >= 0 and succeeded["status"] == "succeeded"


def test_a_429_waits_for_retry_after(api: Any, erp: str, receiver: Any, join: Any) -> None:
    # Given an ERP that asks to slow down for 1 s (with a backoff base of 1 s, the jitter
    # alone would often retry sooner)
    receiver.respond(PATH, 429, b"slow down", Retry_After="1")
    # When a deal is created
    create_deal(api)
    join()
    # Then the retry came no sooner than a second later, and succeeded
    assert len(receiver.received(PATH)) == 2
    execution = only_execution(api)
    assert (execution["status"], execution["attempts"]) == ("succeeded", 2)
    limited, succeeded = execution["attempt_log"]
    assert "HTTP 429: slow down" in limited["error"]
    assert limited["retry_in_s"] >= 1
    waited = dt.datetime.fromisoformat(succeeded["at"]) - dt.datetime.fromisoformat(limited["at"])
    assert waited >= dt.timedelta(seconds=1)


def test_a_4xx_is_dead_at_once_with_the_response_in_last_error(
    api: Any, erp: str, receiver: Any, join: Any
) -> None:
    # Given an ERP that refuses the export, explaining why at length
    reason = '{"error": "unknown customer", "detail": "' + "x" * 2000 + '"}'
    receiver.respond(PATH, 400, reason.encode())
    # When a deal is created
    create_deal(api)
    join()
    # Then it was sent once and the execution is dead, with the status and an excerpt
    assert len(receiver.received(PATH)) == 1
    execution = only_execution(api)
    assert (execution["status"], execution["attempts"]) == ("dead", 1)
    assert "HTTP 400" in execution["last_error"]
    assert '{"error": "unknown customer"' in execution["last_error"]
    assert len(execution["last_error"]) < 600
    assert execution["next_attempt_at"] is None
    for text in texts_about_runs(api, execution):
        assert SECRET not in text


def test_a_missing_secret_is_dead_naming_it(api: Any, receiver: Any, join: Any) -> None:
    # Given credentials without the secret
    assert api.put(CREDENTIALS, json={"url": receiver.url + PATH}).status_code == 200
    assert api.post("/api/v1/workflows", json=erp_workflow()).status_code == 201
    # When a deal is created
    create_deal(api)
    join()
    # Then nothing was sent and the execution is dead, naming the key
    assert receiver.received() == []
    execution = only_execution(api)
    assert (execution["status"], execution["attempts"]) == ("dead", 1)
    assert "'secret'" in execution["last_error"] and "'url'" not in execution["last_error"]


def test_a_projection_that_is_null_is_dead(api: Any, erp: str, receiver: Any, join: Any) -> None:
    assert api.post(
        "/api/v1/workflows", json=erp_workflow("record.custom.erp_payload", key="erp-null")
    ).status_code == 201
    create_deal(api)
    join()
    # The valid workflow exported; the null one did not and is dead
    assert len(receiver.received(PATH)) == 1
    executions = api.get("/api/v1/executions", params={"status": "dead"}).json()["items"]
    (dead,) = executions
    assert dead["attempts"] == 1 and "null" in dead["last_error"]


@pytest.mark.parametrize(
    "projection",
    ["{id: record.id, amount: }", "{id: record.id", "nope(record.id)", "record.["],
)
def test_a_bad_projection_is_refused_at_save(api: Any, projection: str) -> None:
    resp = api.post("/api/v1/workflows", json=erp_workflow(projection))
    problem = assert_problem(resp, 422, "$.actions[0].projection")
    assert problem["errors"][0]["message"]
    assert api.get("/api/v1/workflows/erp-deals").status_code == 404


def test_a_dry_run_shows_the_body_and_no_credentials(api: Any, erp: str, receiver: Any) -> None:
    resp = api.post(
        "/api/v1/workflows/test",
        json={"workflow": erp_workflow(), "record": {"title": "Initech", "amount": 5}},
    )
    assert resp.status_code == 200, resp.text
    (action,) = resp.json()["actions"]
    preview = action["preview"]
    assert preview["url"] == "<erp_export url>"
    assert preview["body"]["title"] == "Initech" and preview["body"]["amount"] == 5
    assert SECRET not in resp.text and erp not in resp.text
    assert receiver.received() == []


# --- the pieces --------------------------------------------------------------------------------


def context(**credentials: str) -> ActionContext:
    return ActionContext(
        team_id=1, workflow_id="w", workflow_version=1, action_index=0,
        document={"record": {"id": 1}}, idempotency_key="k-1", credentials=credentials,
        settings=Settings(outbound_allow=("127.0.0.1",)),
    )


def test_an_unreachable_erp_is_a_retryable_error(free_port: Any) -> None:
    ctx = context(url=f"http://127.0.0.1:{free_port()}/erp", secret=SECRET)
    with pytest.raises(ActionError) as caught:
        erp_export.export({"projection": "record"}, ctx)
    assert not caught.value.permanent and "cannot reach" in caught.value.message


def test_a_url_that_is_not_http_is_permanent() -> None:
    with pytest.raises(ActionError) as caught:
        erp_export.export({"projection": "record"}, context(url="ftp://erp.example", secret=SECRET))
    assert caught.value.permanent and "ftp" not in caught.value.message


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
    later = format_datetime(now + dt.timedelta(seconds=90), usegmt=True)
    assert retry_after("1") == 1.0
    assert retry_after(" 120 ") == 120.0
    assert retry_after(later, now) == 90.0
    assert retry_after(format_datetime(now - dt.timedelta(hours=1), usegmt=True), now) == 0
    for junk in (None, "", "soon", "nan", "inf"):
        assert retry_after(junk) is None
