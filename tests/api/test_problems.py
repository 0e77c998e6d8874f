"""Bad requests answer RFC 9457 problem details that say what was wrong and where."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.core.db import make_session_factory, transaction
from server.core.services.teams import revoke_key

API = "/api/v1"
LIMIT = 64 * 1024  # the app fixture's max_body_size


def assert_problem(resp: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """``resp`` is a problem-details answer with ``status``; when given, ``field`` is named."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].split(";")[0] == "application/problem+json"
    body = resp.json()
    assert body["status"] == status
    for key in ("type", "title", "detail"):
        assert isinstance(body[key], str) and body[key], (key, body)
    if field is not None:
        assert body["field"] == field, body
        assert body["errors"], body
        assert body["errors"][0]["field"] == field
        assert all(set(e) >= {"field", "message"} and e["message"] for e in body["errors"])
        assert field in body["detail"]
    return body


def deals(api: Any) -> list[dict[str, Any]]:
    resp = api.get(f"{API}/deals")
    assert resp.status_code == 200
    return resp.json()["items"]


# --- body validation -------------------------------------------------------------------------


def test_wrong_type_is_422_naming_the_field(api) -> None:
    resp = api.post(f"{API}/deals", json={"title": "Website", "amount": "abc"})
    body = assert_problem(resp, 422, field="amount")
    assert body["errors"][0]["source"] == "body"
    assert deals(api) == []


def test_unknown_field_is_422_naming_it(api) -> None:
    resp = api.post(f"{API}/deals", json={"title": "Website", "colour": "red"})
    assert_problem(resp, 422, field="colour")
    assert deals(api) == []


def test_missing_required_field_is_422_naming_it(api) -> None:
    resp = api.post(f"{API}/deals", json={"amount": 1000})
    assert_problem(resp, 422, field="title")
    assert deals(api) == []


def test_wrong_type_nested_in_custom_names_custom(api) -> None:
    resp = api.post(f"{API}/deals", json={"title": "Website", "custom": {"x": [1]}})
    body = assert_problem(resp, 422)
    assert body["field"].startswith("custom")
    assert deals(api) == []


def test_value_out_of_range_names_the_field(api) -> None:
    resp = api.post(f"{API}/deals", json={"title": "Website", "probability": 101})
    assert_problem(resp, 422, field="probability")


def test_patch_with_a_wrong_type_changes_nothing(api) -> None:
    # Given
    deal = api.post(f"{API}/deals", json={"title": "Website", "probability": 30}).json()
    # When
    resp = api.patch(f"{API}/deals/{deal['id']}", json={"probability": "high"})
    # Then
    assert_problem(resp, 422, field="probability")
    assert api.get(f"{API}/deals/{deal['id']}").json() == deal


def test_patch_with_an_unknown_field_changes_nothing(api) -> None:
    # Given
    deal = api.post(f"{API}/deals", json={"title": "Website"}).json()
    # When
    resp = api.patch(f"{API}/deals/{deal['id']}", json={"title": "Renamed", "colour": "red"})
    # Then
    assert_problem(resp, 422, field="colour")
    assert api.get(f"{API}/deals/{deal['id']}").json() == deal


def test_rule_broken_by_a_well_formed_body_names_the_field(api) -> None:
    resp = api.post(f"{API}/outreach", json={"type": "call"})
    body = assert_problem(resp, 422, field="phone")
    assert body["type"] == "urn:dealflow:problem:invalid-input"


@pytest.mark.parametrize(
    "query",
    ["deals?contact_id=99999999999999999999", "deals?owner_id=0", "contacts?outreach_id=-1",
     "outreach?user_id=99999999999999999999", "leads?min_score=99999999999999999999"],
)
def test_out_of_range_id_filter_is_422_naming_it(api, query: str) -> None:
    resp = api.get(f"{API}/{query}")
    assert_problem(resp, 422, field=query.split("?")[1].split("=")[0])


def test_bad_query_parameter_names_it(api) -> None:
    resp = api.get(f"{API}/deals?limit=0")
    body = assert_problem(resp, 422, field="limit")
    assert body["errors"][0]["source"] == "query"


@pytest.mark.parametrize("raw", [b"{not json", b'{"title": "Website"', b"title=Website"])
def test_malformed_json_is_400(api, raw: bytes) -> None:
    resp = api.post(f"{API}/deals", content=raw, headers={"Content-Type": "application/json"})
    body = assert_problem(resp, 400)
    assert "field" not in body
    assert deals(api) == []


def test_empty_body_is_400_asking_for_json(api) -> None:
    resp = api.post(f"{API}/deals", content=b"", headers={"Content-Type": "application/json"})
    body = assert_problem(resp, 400)
    assert "JSON body" in body["detail"]
    assert deals(api) == []


@pytest.mark.parametrize("raw", [b"[1]", b"null", b'"deal"'])
def test_body_that_is_not_an_object_is_422_naming_the_body(api, raw: bytes) -> None:
    resp = api.post(f"{API}/deals", content=raw, headers={"Content-Type": "application/json"})
    assert_problem(resp, 422, field="body")


# --- body size -------------------------------------------------------------------------------


def big_deal() -> bytes:
    body = json.dumps({"title": "Website", "custom": {"note": "x" * LIMIT}}).encode()
    assert len(body) > LIMIT
    return body


def test_oversized_body_is_413_and_creates_nothing(api) -> None:
    # When
    resp = api.post(
        f"{API}/deals", content=big_deal(), headers={"Content-Type": "application/json"}
    )
    # Then
    assert_problem(resp, 413)
    assert deals(api) == []


def test_oversized_chunked_body_is_413_and_creates_nothing(api) -> None:
    # Given: a body sent without Content-Length
    raw = big_deal()
    chunks = (raw[i : i + 4096] for i in range(0, len(raw), 4096))
    # When
    resp = api.post(f"{API}/deals", content=chunks, headers={"Content-Type": "application/json"})
    # Then
    assert resp.request.headers.get("transfer-encoding") == "chunked"
    assert_problem(resp, 413)
    assert deals(api) == []


def test_body_just_under_the_limit_is_accepted(api) -> None:
    # Given
    note = "x" * (LIMIT - 200)
    raw = json.dumps({"title": "Website", "custom": {"note": note}}).encode()
    assert len(raw) < LIMIT
    # When
    resp = api.post(f"{API}/deals", content=raw, headers={"Content-Type": "application/json"})
    # Then
    assert resp.status_code == 201, resp.text
    assert resp.json()["custom"]["note"] == note


# --- authentication --------------------------------------------------------------------------


def assert_unauthorized(resp: Any) -> dict[str, Any]:
    body = assert_problem(resp, 401)
    assert resp.headers["www-authenticate"].startswith("Bearer")
    return body


def test_missing_authorization_is_401_with_a_bearer_challenge(client) -> None:
    assert_unauthorized(client.get(f"{API}/deals"))


@pytest.mark.parametrize(
    "header", ["Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearer", "Bearer   ", "dfk_x"]
)
def test_malformed_authorization_is_401(client, team, header: str) -> None:
    assert_unauthorized(client.get(f"{API}/deals", headers={"Authorization": header}))


def test_unknown_key_is_401(client, team) -> None:
    resp = client.get(f"{API}/deals", headers={"Authorization": f"Bearer {team.key}x"})
    assert_unauthorized(resp)


def test_unauthorized_write_creates_nothing(client, team) -> None:
    # When
    resp = client.post(f"{API}/deals", json={"title": "Website"})
    # Then
    assert_unauthorized(resp)
    assert client.get(f"{API}/deals", headers=team.headers).json()["items"] == []


def test_revoked_key_is_401(client, engine, make_team) -> None:
    # Given: a key that works
    beta = make_team("Beta")
    assert client.get(f"{API}/team", headers=beta.headers).status_code == 200
    # When
    with transaction(make_session_factory(engine)) as session:
        revoke_key(session, beta.key)
    # Then
    assert_unauthorized(client.get(f"{API}/team", headers=beta.headers))


def test_revoking_one_key_leaves_other_teams_keys_working(client, engine, team, make_team) -> None:
    # Given
    beta = make_team("Beta")
    # When
    with transaction(make_session_factory(engine)) as session:
        revoke_key(session, beta.key)
    # Then
    assert client.get(f"{API}/team", headers=team.headers).status_code == 200


# --- not found -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nope", "/nope", "/api/v2/deals", "/api/v1/deals/abc"])
def test_unknown_route_is_404(api, path: str) -> None:
    assert_problem(api.get(path), 404)


def test_wrong_method_is_405(api) -> None:
    assert_problem(api.delete(f"{API}/team"), 405)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/outreach/987654321",
        "/api/v1/contacts/987654321",
        "/api/v1/contacts/987654321/communications",
        "/api/v1/deals/987654321",
        "/api/v1/leads/987654321",
        "/api/v1/leads/987654321/history",
    ],
)
def test_nonexistent_id_is_404(api, path: str) -> None:
    body = assert_problem(api.get(path), 404)
    assert body["type"] == "urn:dealflow:problem:not-found"
    assert "987654321" in body["detail"]
    assert "field" not in body


def test_nonexistent_reference_is_404_naming_the_field(api) -> None:
    resp = api.post(f"{API}/deals", json={"title": "Website", "contact_id": 987654321})
    assert_problem(resp, 404, field="contact_id")
    assert deals(api) == []


def test_foreign_team_reference_is_404_naming_the_field(api, make_team) -> None:
    # Given: a contact of another team
    beta = make_team("Beta")
    contact = api.post(f"{API}/contacts", json={"name": "Ada"}, headers=beta.headers).json()
    # When
    resp = api.post(f"{API}/deals", json={"title": "Website", "contact_id": contact["id"]})
    # Then
    body = assert_problem(resp, 404, field="contact_id")
    assert body["errors"] == [{"field": "contact_id", "message": body["errors"][0]["message"]}]
    assert deals(api) == []


def test_duplicate_unique_value_is_409_naming_the_field(api) -> None:
    # Given
    first = api.post(f"{API}/deals", json={"title": "Website", "external_id": "crm-1"})
    assert first.status_code == 201
    # When
    resp = api.post(f"{API}/deals", json={"title": "Again", "external_id": "crm-1"})
    # Then
    assert_problem(resp, 409, field="external_id")
    assert [d["title"] for d in deals(api)] == ["Website"]
