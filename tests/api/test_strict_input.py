"""Wrong types and unknown query parameters are refused, naming the field, never converted or
ignored; what JSON cannot say natively (dates, an integer for a float) is still taken."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import assert_problem

API = "/api/v1"


@pytest.fixture
def rows(api: Any, team: Any) -> dict[str, Any]:
    """One record of each entity, so a wrongly typed reference would point at a real row."""
    outreach = api.post(f"{API}/outreach", json={"type": "call", "phone": "+15550100"}).json()
    contact = api.post(f"{API}/contacts", json={"name": "Ada", "outreach_id": outreach["id"]})
    contact = contact.json()
    deal = api.post(f"{API}/deals", json={"title": "Website", "contact_id": contact["id"],
                                          "amount": 100, "probability": 30}).json()
    lead = api.post(f"{API}/leads", json={"contact_id": contact["id"], "score": 10}).json()
    touch = api.post(f"{API}/contacts/{contact['id']}/communications",
                     json={"channel": "email"}).json()
    return {"outreach": outreach, "contact": contact, "deal": deal, "lead": lead,
            "touch": touch, "user": team.user_id}


def snapshot(api: Any) -> dict[str, Any]:
    """Everything a refused request must leave as it was."""
    found = {name: api.get(f"{API}/{name}").json()["items"]
             for name in ("outreach", "contacts", "deals", "leads")}
    found["team"] = api.get(f"{API}/team").json()
    return found


# --- bodies ----------------------------------------------------------------------------------

# (method, path, body, the field named); ``{contact}`` etc. are the ids of ``rows``.
WRONG_TYPES = [
    ("post", "outreach", {"type": "call", "phone": "+15550101", "cost": "5"}, "cost"),
    ("post", "outreach", {"type": "call", "phone": "+15550101", "user_id": "{user}"}, "user_id"),
    ("post", "outreach", {"type": "3", "phone": "+15550101"}, "type"),
    ("post", "contacts", {"name": "Bob", "outreach_id": "{outreach}"}, "outreach_id"),
    ("post", "contacts", {"name": "Bob", "last_contacted_at": 1767225600}, "last_contacted_at"),
    ("post", "contacts/{contact}/communications", {"channel": "call", "at": 1767225600}, "at"),
    ("post", "deals", {"title": "Audit", "amount": "12"}, "amount"),
    ("post", "deals", {"title": "Audit", "probability": "70"}, "probability"),
    ("post", "deals", {"title": "Audit", "contact_id": "{contact}"}, "contact_id"),
    ("post", "deals", {"title": "Audit", "amount": True}, "amount"),
    ("post", "leads", {"contact_id": "{contact}"}, "contact_id"),
    ("post", "leads", {"contact_id": 0, "score": "5"}, "score"),
    ("put", "deals/external/crm-9", {"title": "Audit", "amount": "12"}, "amount"),
    ("put", "contacts/external/crm-9", {"name": "Bob", "outreach_id": "{outreach}"},
     "outreach_id"),
    ("put", "leads/external/crm-9", {"contact_id": "{contact}"}, "contact_id"),
    ("put", "team", {"settings": {"outreach_costs": {"call": "5"}}},
     "settings.outreach_costs"),
    ("put", "team", {"settings": {"stage_sla_hours": {"lead": "24"}}},
     "settings.stage_sla_hours"),
    ("post", "team/keys", {"name": "importer", "user_id": "{user}"}, "user_id"),
]

WRONG_TYPE_PATCHES = [
    ("outreach/{outreach}", {"cost": "5"}, "cost"),
    ("outreach/{outreach}", {"user_id": "{user}"}, "user_id"),
    ("contacts/{contact}", {"outreach_id": "{outreach}"}, "outreach_id"),
    ("contacts/{contact}/communications/{touch}", {"at": 1767225600}, "at"),
    ("deals/{deal}", {"amount": "12"}, "amount"),
    ("deals/{deal}", {"probability": "70"}, "probability"),
    ("deals/{deal}", {"owner_id": "{user}"}, "owner_id"),
    ("leads/{lead}", {"score": "5"}, "score"),
    ("leads/{lead}", {"owner_id": "{user}"}, "owner_id"),
]


def filled(value: Any, rows: dict[str, Any]) -> Any:
    """``value`` with ``{contact}``-style placeholders replaced by the ids of ``rows``."""
    ids = {name: row if isinstance(row, int) else row["id"] for name, row in rows.items()}
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: filled(item, rows) for key, item in value.items()}
    return value


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    WRONG_TYPES,
    ids=[f"{m} {p} {f}" for m, p, _, f in WRONG_TYPES],
)
def test_a_wrong_type_in_a_body_is_422_naming_the_field(
    api: Any, rows: dict[str, Any], method: str, path: str, body: dict[str, Any], field: str
) -> None:
    # Given
    before = snapshot(api)
    # When
    resp = api.request(method.upper(), f"{API}/{filled(path, rows)}", json=filled(body, rows))
    # Then
    problem = assert_problem(resp, 422, field=field)
    assert problem["type"] == "urn:dealflow:problem:invalid-field"
    assert problem["errors"][0]["source"] == "body"
    assert snapshot(api) == before


@pytest.mark.parametrize(
    ("path", "body", "field"),
    WRONG_TYPE_PATCHES,
    ids=[f"{p} {f}" for p, _, f in WRONG_TYPE_PATCHES],
)
def test_a_wrong_type_in_a_patch_is_422_and_changes_nothing(
    api: Any, rows: dict[str, Any], path: str, body: dict[str, Any], field: str
) -> None:
    # Given
    url = f"{API}/{filled(path, rows)}"
    before = api.get(url).json()
    # When
    resp = api.patch(url, json=filled(body, rows))
    # Then
    assert_problem(resp, 422, field=field)
    assert api.get(url).json() == before


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("deals", {"title": "Audit", "amount": 12, "expected_close_date": "2027-03-31"},
         {"amount": 12.0, "expected_close_date": "2027-03-31"}),
        ("outreach", {"type": 3, "phone": "+15550102", "cost": 5},
         {"type": 3, "type_name": "call", "cost": 5.0}),
        ("outreach", {"type": "call", "phone": "+15550102", "occurred_at": "2027-03-31T09:30:00Z"},
         {"type": 3, "occurred_at": "2027-03-31T09:30:00Z"}),
        ("contacts", {"name": "Bob", "last_contacted_at": "2027-03-31T09:30:00+02:00"},
         {"last_contacted_at": "2027-03-31T07:30:00Z"}),
    ],
    ids=["deal amount int and ISO date", "outreach type code and int cost",
         "outreach type name and ISO datetime", "contact datetime with offset"],
)
def test_what_json_cannot_say_natively_is_still_taken(
    api: Any, path: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    resp = api.post(f"{API}/{path}", json=body)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert {key: created[key] for key in expected} == expected


# --- query parameters ------------------------------------------------------------------------

# (list endpoint, one of the parameters it takes)
LISTS = [("outreach", "limit"), ("contacts", "limit"), ("deals", "limit"), ("leads", "limit"),
         ("contacts/{contact}/communications", "limit"), ("workflows", "entity"),
         ("runs", "limit"), ("executions", "limit")]


@pytest.mark.parametrize(("path", "known"), LISTS)
def test_an_unknown_query_parameter_is_400_naming_it(
    api: Any, rows: dict[str, Any], path: str, known: str
) -> None:
    url = f"{API}/{filled(path, rows)}"
    assert api.get(f"{url}?{known}=5").status_code in (200, 422)
    resp = api.get(f"{url}?colour=red")
    problem = assert_problem(resp, 400, field="colour")
    assert problem["type"] == "urn:dealflow:problem:unknown-parameter"
    assert problem["errors"][0]["source"] == "query"
    assert known in problem["accepted"]
    assert known in problem["detail"]


def test_every_unknown_parameter_is_named_and_known_ones_still_filter(
    api: Any, rows: dict[str, Any]
) -> None:
    # When
    resp = api.get(f"{API}/deals?stage=new&colour=red&sort=title&colour=blue")
    # Then
    problem = assert_problem(resp, 400, field="colour")
    assert [e["field"] for e in problem["errors"]] == ["colour", "sort"]
    assert {"stage", "status", "limit", "cursor"} <= set(problem["accepted"])
    listed = api.get(f"{API}/deals?stage=won&limit=10")
    assert listed.status_code == 200 and listed.json()["items"] == []


def test_an_endpoint_without_query_parameters_refuses_any(api: Any, rows: dict[str, Any]) -> None:
    resp = api.get(f"{API}/deals/{rows['deal']['id']}?fields=title")
    problem = assert_problem(resp, 400, field="fields")
    assert problem["accepted"] == []


def test_a_write_with_an_unknown_query_parameter_changes_nothing(api: Any) -> None:
    resp = api.post(f"{API}/deals?dry_run=1", json={"title": "Audit"})
    assert_problem(resp, 400, field="dry_run")
    assert api.get(f"{API}/deals").json()["items"] == []


def test_the_openapi_document_still_takes_any_query(client: Any) -> None:
    assert client.get("/schema/openapi.json?v=1").status_code == 200
