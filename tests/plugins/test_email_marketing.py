"""The ``email_marketing`` plugin end to end: workflows saved and records changed through the
API, requests received over real HTTP by a Mailchimp-compatible members API (the receiver),
on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import pytest
from helpers import assert_problem

API_KEY = "mc-key-0123456789abcdef-us21"
LIST = "a1b2c3d4e5"
EMAIL = "Ada.Lovelace@Example.com"
HASH = hashlib.md5(EMAIL.lower().encode()).hexdigest()  # noqa: S324
MEMBER = f"/lists/{LIST}/members/{HASH}"
TAGS = f"{MEMBER}/tags"


@pytest.fixture
def join(app: Any) -> Any:
    def wait() -> None:
        assert app.state.runtime.runner.join(10), "executions still running after 10 s"

    return wait


@pytest.fixture
def service(api: Any, receiver: Any) -> Any:
    """The team's email_marketing credentials, pointing at the receiver."""
    resp = api.put(
        "/api/v1/team/credentials/email_marketing",
        json={"api_key": API_KEY, "base_url": receiver.url},
    )
    assert resp.status_code == 200, resp.text
    return receiver


def workflow(on: tuple[str, ...] = ("created",), **action: Any) -> dict[str, Any]:
    return {
        "id": "newsletter",
        "name": "Keep the newsletter list in step with contacts",
        "entity": "contact",
        "trigger": {"type": "record_saved", "on": list(on)},
        "actions": [{"type": "email_marketing", "list_id": LIST, **action}],
    }


def save(api: Any, document: dict[str, Any]) -> None:
    resp = api.post("/api/v1/workflows", json=document)
    assert resp.status_code == 201, resp.text


def create_contact(api: Any, **fields: Any) -> dict[str, Any]:
    resp = api.post("/api/v1/contacts", json={"name": "Ada Lovelace", "email": EMAIL, **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


def executions(api: Any) -> list[dict[str, Any]]:
    resp = api.get("/api/v1/executions")
    assert resp.status_code == 200, resp.text
    return sorted(resp.json()["items"], key=lambda e: e["id"])


def assert_no_key(api: Any) -> None:
    """The api key is in no run or execution the API shows."""
    texts = [api.get("/api/v1/runs").text, api.get("/api/v1/executions").text]
    for run in api.get("/api/v1/runs").json()["items"]:
        texts.append(api.get(f"/api/v1/runs/{run['id']}").text)
    for execution in executions(api):
        texts.append(api.get(f"/api/v1/executions/{execution['id']}").text)
    for text in texts:
        assert API_KEY not in text


def test_creating_then_updating_a_contact_updates_one_member(
    api: Any, service: Any, join: Any
) -> None:
    # Given a workflow subscribing contacts to the list with merge fields, on create and update
    save(
        api,
        workflow(
            on=("created", "updated"),
            operation="subscribe",
            merge_fields={
                "FNAME": "record.name", "COMPANY": "record.company", "PHONE": "record.phone"
            },
        ),
    )
    # When a contact is created, then updated
    contact = create_contact(api, company="Analytical Engines")
    join()
    resp = api.patch(f"/api/v1/contacts/{contact['id']}", json={"company": "Babbage & Co"})
    assert resp.status_code == 200, resp.text
    join()

    # Then the service got two PUTs to the same member (its hash): an update, no duplicate
    first, second = service.received(MEMBER, method="PUT")
    assert [r.path for r in service.received(method="PUT")] == [MEMBER, MEMBER]
    assert service.received(method="POST") == []
    assert first.json() == {
        "email_address": EMAIL,
        "status_if_new": "subscribed",
        # a null (no phone) is left out rather than clearing the service's value
        "merge_fields": {"FNAME": "Ada Lovelace", "COMPANY": "Analytical Engines"},
    }
    assert second.json()["merge_fields"]["COMPANY"] == "Babbage & Co"
    for request in (first, second):
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        assert request.headers["content-type"] == "application/json"
    # and each execution sent its own idempotency key, and recorded the member
    done = executions(api)
    assert [first.headers["idempotency-key"], second.headers["idempotency-key"]] == [
        e["idempotency_key"] for e in done
    ]
    assert len({e["idempotency_key"] for e in done}) == 2
    for execution in done:
        assert (execution["status"], execution["attempts"]) == ("succeeded", 1)
        assert execution["result"] == {
            "status": 200, "operation": "subscribe", "subscriber_hash": HASH
        }
    assert_no_key(api)


def test_unsubscribe_puts_the_member_unsubscribed(api: Any, service: Any, join: Any) -> None:
    save(api, workflow(operation="unsubscribe"))
    create_contact(api)
    join()
    (request,) = service.received(method="PUT")
    assert request.path == MEMBER
    assert request.json() == {
        "email_address": EMAIL,
        "status_if_new": "unsubscribed",
        "status": "unsubscribed",
        "merge_fields": {},
    }
    (execution,) = executions(api)
    assert execution["result"] == {
        "status": 200, "operation": "unsubscribe", "subscriber_hash": HASH
    }


def test_tag_posts_to_the_member_tags(api: Any, service: Any, join: Any) -> None:
    service.respond(TAGS, 204)
    save(api, workflow(operation="tag", tags=["dealflow", "vip"]))
    create_contact(api)
    join()
    assert service.received(method="PUT") == []
    (request,) = service.received(TAGS)
    assert request.json() == {
        "tags": [{"name": "dealflow", "status": "active"}, {"name": "vip", "status": "active"}]
    }
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    (execution,) = executions(api)
    assert request.headers["idempotency-key"] == execution["idempotency_key"]
    assert execution["result"] == {"status": 204, "operation": "tag", "subscriber_hash": HASH}


def test_subscribe_with_tags_puts_then_tags(api: Any, service: Any, join: Any) -> None:
    save(api, workflow(operation="subscribe", tags=["dealflow"]))
    create_contact(api)
    join()
    (put,) = service.received(MEMBER, method="PUT")
    (tags,) = service.received(TAGS)
    (execution,) = executions(api)
    # one key per request: the tags request has its own, derived from the execution's
    assert put.headers["idempotency-key"] == execution["idempotency_key"]
    assert tags.headers["idempotency-key"] == execution["idempotency_key"] + ":tags"
    assert tags.json() == {"tags": [{"name": "dealflow", "status": "active"}]}
    assert execution["result"] == {
        "status": 200, "tags_status": 200, "operation": "subscribe", "subscriber_hash": HASH
    }


@pytest.mark.parametrize("status", [500, 429])
def test_a_busy_service_is_retried_with_the_same_key_after_retry_after(
    api: Any, service: Any, join: Any, status: int
) -> None:
    # Given a service that answers 500/429 asking for a second's pause, then 200
    service.respond(MEMBER, status, b'{"title": "busy"}', Retry_After="1")
    save(api, workflow(operation="subscribe"))
    # When a contact is created
    create_contact(api)
    join()
    # Then the PUT was sent twice with the same idempotency key, no sooner than asked
    first, second = service.received(MEMBER, method="PUT")
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert first.json() == second.json()
    (execution,) = executions(api)
    assert (execution["status"], execution["attempts"]) == ("succeeded", 2)
    failed, succeeded = execution["attempt_log"]
    assert failed["error"] == f'email_marketing: PUT {MEMBER}: HTTP {status}: {{"title": "busy"}}'
    assert failed["retry_in_s"] >= 1
    assert succeeded["status"] == "succeeded"


def test_a_refusal_is_dead_at_once_with_an_excerpt_of_the_answer(
    api: Any, service: Any, join: Any
) -> None:
    # Given a service refusing with a long problem document that echoes the api key
    problem = {"title": "Invalid Resource", "detail": f"key {API_KEY}: " + "x" * 1000}
    service.respond(MEMBER, 400, json.dumps(problem).encode())
    save(api, workflow(operation="subscribe"))
    # When a contact is created
    create_contact(api)
    join()
    # Then one attempt was made and the execution is dead with the start of the answer
    assert len(service.received(MEMBER, method="PUT")) == 1
    (execution,) = executions(api)
    assert (execution["status"], execution["attempts"]) == ("dead", 1)
    prefix = f"email_marketing: PUT {MEMBER}: HTTP 400: "
    error = execution["last_error"]
    assert error.startswith(prefix + '{"title": "Invalid Resource", "detail": "key ••••: xxx')
    assert len(error) - len(prefix) <= 500
    assert_no_key(api)


def test_a_contact_without_an_email_is_dead_naming_the_expression(
    api: Any, service: Any, join: Any
) -> None:
    save(api, workflow(operation="subscribe"))
    resp = api.post("/api/v1/contacts", json={"name": "No Mail"})
    assert resp.status_code == 201, resp.text
    join()
    assert service.requests == []
    (execution,) = executions(api)
    assert (execution["status"], execution["attempts"]) == ("dead", 1)
    assert execution["last_error"] == "email_marketing: email (record.email) is missing"


def test_an_unreachable_service_is_retried_until_it_answers(
    api: Any, service: Any, join: Any, free_port: Any
) -> None:
    # Given credentials pointing at a port nothing listens on
    url = "/api/v1/team/credentials/email_marketing"
    body = {"api_key": API_KEY, "base_url": f"http://127.0.0.1:{free_port()}"}
    assert api.put(url, json=body).status_code == 200
    save(api, workflow(operation="subscribe"))
    # When a contact is created, its first attempt fails and is to be retried
    create_contact(api)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(e["attempt_log"] for e in executions(api)):
        time.sleep(0.02)
    (execution,) = executions(api)
    assert execution["attempt_log"][0]["error"] == f"email_marketing: PUT {MEMBER}: ConnectError"
    assert "retry_in_s" in execution["attempt_log"][0]
    # When the base URL is fixed, a retry reaches the service
    assert api.put(url, json={**body, "base_url": service.url}).status_code == 200
    join()
    assert len(service.received(MEMBER, method="PUT")) == 1
    assert executions(api)[0]["status"] == "succeeded"


def test_bad_expressions_are_refused_at_save_with_their_path(api: Any) -> None:
    document = workflow(
        operation="subscribe", email="record.[", merge_fields={"FNAME": "record.name", "X": "nope("}
    )
    problem = assert_problem(api.post("/api/v1/workflows", json=document), 422)
    messages = {e["field"]: e["message"] for e in problem["errors"]}
    assert set(messages) == {"$.actions[0].email", "$.actions[0].merge_fields.X"}
    assert "syntax error" in messages["$.actions[0].email"] or "incomplete" in messages[
        "$.actions[0].email"
    ]
    assert api.get("/api/v1/workflows").json() == []


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ({"operation": "tag"}, "$.actions[0].tags"),
        ({"operation": "tag", "tags": ["a"], "merge_fields": {"A": "record.name"}},
         "$.actions[0].merge_fields"),
        ({"operation": "unsubscribe", "tags": ["a"]}, "$.actions[0].tags"),
        ({"operation": "resubscribe"}, "$.actions[0].operation"),
        ({"operation": "subscribe", "list_id": "../admin"}, "$.actions[0].list_id"),
        ({"operation": "subscribe", "api_key": "k"}, "$.actions[0].api_key"),
    ],
)
def test_configs_the_operation_cannot_use_are_refused(
    api: Any, action: dict[str, Any], field: str
) -> None:
    problem = assert_problem(api.post("/api/v1/workflows", json=workflow(**action)), 422)
    assert [e["field"] for e in problem["errors"]] == [field]


def test_a_dry_run_previews_the_request_without_the_key(api: Any, service: Any) -> None:
    document = workflow(operation="subscribe", merge_fields={"FNAME": "record.name"}, tags=["t"])
    resp = api.post(
        "/api/v1/workflows/test",
        json={"workflow": document, "record": {"name": "Ada Lovelace", "email": EMAIL}},
    )
    assert resp.status_code == 200, resp.text
    (action,) = resp.json()["actions"]
    assert action["preview"] == {
        "method": "PUT",
        "path": MEMBER,
        "body": {
            "email_address": EMAIL,
            "status_if_new": "subscribed",
            "merge_fields": {"FNAME": "Ada Lovelace"},
        },
        "headers": {"Authorization": "Bearer ••••"},
        "then": {
            "method": "POST",
            "path": TAGS,
            "body": {"tags": [{"name": "t", "status": "active"}]},
        },
    }
    assert API_KEY not in resp.text
    assert service.requests == []
