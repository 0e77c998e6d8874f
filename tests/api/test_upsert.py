"""Upsert by external id: PUT /{contacts|deals|leads}/external/{external_id} creates the record
once and updates it afterwards, per team, even when two requests race."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from helpers import assert_problem

from server.core.scope import Actor, TeamScope
from server.core.services import contacts, deals, leads
from server.core.services import upsert as upsert_module
from server.core.services.contacts import ContactIn, ContactPut
from server.core.services.deals import DealIn, DealPut
from server.core.services.leads import LeadIn, LeadPut

API = "/api/v1"


def new_contact(client: Any, headers: dict[str, str] | None = None) -> int:
    resp = client.post(f"{API}/contacts", json={"name": "Peter Gibbons"}, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


@dataclass(frozen=True)
class Entity:
    """One record type as an upsert test sees it."""

    name: str
    collection: str
    required: Callable[[Any, dict[str, str] | None], dict[str, Any]]
    """The fields a create body needs, made fresh (a lead needs a contact of the team)."""
    more: dict[str, Any]
    """Optional fields a first PUT sets."""
    change: dict[str, Any]
    """Fields a later PUT changes."""
    service: Any
    put_type: type
    in_type: type

    @property
    def url(self) -> str:
        return f"{API}/{self.collection}"

    def put(self, client: Any, external_id: str, body: dict[str, Any], **kw: Any) -> Any:
        return client.put(f"{self.url}/external/{external_id}", json=body, **kw)

    def listed(self, client: Any, **params: Any) -> list[dict[str, Any]]:
        resp = client.get(self.url, params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()["items"]


ENTITIES = [
    Entity(
        "contact",
        "contacts",
        lambda client, headers: {"name": "Bill Lumbergh"},
        {"email": "bill@initech.example", "company": "Initech", "custom": {"tier": "gold"}},
        {"name": "William Lumbergh"},
        contacts,
        ContactPut,
        ContactIn,
    ),
    Entity(
        "deal",
        "deals",
        lambda client, headers: {"title": "TPS reports"},
        {"amount": 1200.5, "currency": "EUR", "probability": 40, "custom": {"tier": "gold"}},
        {"title": "TPS reports, phase 2"},
        deals,
        DealPut,
        DealIn,
    ),
    Entity(
        "lead",
        "leads",
        lambda client, headers: {"contact_id": new_contact(client, headers)},
        {"score": 40, "stage": "mql", "custom": {"tier": "gold"}},
        {"score": 55},
        leads,
        LeadPut,
        LeadIn,
    ),
]
BY_NAME = {e.name: e for e in ENTITIES}
each_entity = pytest.mark.parametrize("entity", ENTITIES, ids=lambda e: e.name)


# --- create, then update ---------------------------------------------------------------------


@each_entity
def test_the_first_put_creates_and_the_next_updates_the_same_record(api, entity) -> None:
    # Given a body an ERP posts
    body = {**entity.required(api, None), **entity.more}

    # When it is put once
    first = entity.put(api, "erp-1", body)

    # Then the record is created with the path's external id, and Location points at it
    assert first.status_code == 201, first.text
    created = first.json()
    assert created["external_id"] == "erp-1"
    assert first.headers["location"] == f"{entity.url}/{created['id']}"
    assert api.get(first.headers["location"]).json() == created

    # When it is put again with a change
    second = entity.put(api, "erp-1", {**body, **entity.change})

    # Then the same record is updated
    assert second.status_code == 200, second.text
    assert "location" not in second.headers
    updated = second.json()
    assert updated["id"] == created["id"]
    assert {k: updated[k] for k in entity.change} == entity.change
    assert [r["id"] for r in entity.listed(api)] == [created["id"]]


@each_entity
def test_the_same_body_twice_leaves_one_unchanged_record(api, entity) -> None:
    body = {**entity.required(api, None), **entity.more, "external_id": "erp-1"}
    created = entity.put(api, "erp-1", body)
    assert created.status_code == 201, created.text

    again = entity.put(api, "erp-1", body)

    assert again.status_code == 200, again.text
    assert again.json() == created.json()
    assert len(entity.listed(api)) == 1


@each_entity
def test_fields_left_out_of_the_body_keep_their_values(api, entity) -> None:
    # Given a record created with optional fields
    required = entity.required(api, None)
    created = entity.put(api, "erp-1", {**required, **entity.more}).json()

    # When an ERP puts a projection with only the required fields and another custom key
    resp = entity.put(api, "erp-1", {**required, "custom": {"region": "emea"}})

    # Then the fields it left out are unchanged, and custom is merged key by key
    assert resp.status_code == 200, resp.text
    updated = resp.json()
    for name in entity.more:
        if name != "custom":
            assert updated[name] == created[name], name
    assert updated["custom"] == {"tier": "gold", "region": "emea"}
    assert updated["updated_at"] >= created["updated_at"]


def test_a_null_that_asks_for_the_server_default_keeps_the_value_on_update(api, team) -> None:
    # Given a deal created with null stage, owner and outreach: the server chose them
    body = {"title": "TPS reports", "stage": None, "owner_id": None, "outreach_id": None}
    created = BY_NAME["deal"].put(api, "erp-1", body)
    assert created.status_code == 201, created.text
    assert (created.json()["stage"], created.json()["owner_id"]) == ("new", team.user_id)
    api.patch(f"{API}/deals/{created.json()['id']}", json={"stage": "proposal"})

    # When the same body is put again
    again = BY_NAME["deal"].put(api, "erp-1", body)

    # Then the nulls did not clear or reset anything
    assert again.status_code == 200, again.text
    assert (again.json()["stage"], again.json()["owner_id"]) == ("proposal", team.user_id)


def test_a_lead_stage_put_on_update_must_be_an_allowed_move(api) -> None:
    lead = BY_NAME["lead"]
    body = lead.required(api, None)
    assert lead.put(api, "erp-1", {**body, "stage": "sal"}).status_code == 201

    assert_problem(lead.put(api, "erp-1", {**body, "stage": "lead"}), 422, "stage")
    assert lead.put(api, "erp-1", {**body, "stage": "opportunity"}).json()["stage"] == "opportunity"


def test_a_lead_put_on_update_cannot_move_it_to_another_contact(api) -> None:
    lead = BY_NAME["lead"]
    body = lead.required(api, None)
    created = lead.put(api, "erp-1", body).json()

    resp = lead.put(api, "erp-1", {"contact_id": new_contact(api)})

    assert_problem(resp, 422, "contact_id")
    assert api.get(f"{lead.url}/{created['id']}").json() == created


# --- validation ------------------------------------------------------------------------------


@each_entity
@pytest.mark.parametrize("given", ["erp-2", None, ""])
def test_a_body_external_id_other_than_the_path_is_refused(api, entity, given) -> None:
    body = {**entity.required(api, None), "external_id": given}

    resp = entity.put(api, "erp-1", body)

    assert_problem(resp, 422, "external_id")
    assert entity.listed(api) == []


@each_entity
def test_the_path_external_id_has_the_fields_length_rules(api, entity) -> None:
    body = entity.required(api, None)

    assert entity.put(api, "x" * 200, body).status_code == 201
    assert_problem(entity.put(api, "x" * 201, body), 422, "external_id")
    assert [r["external_id"] for r in entity.listed(api)] == ["x" * 200]


@each_entity
@pytest.mark.parametrize("path", ["external/", "external"])
def test_an_empty_path_external_id_is_a_422_naming_it(api, entity, path) -> None:
    resp = api.put(f"{entity.url}/{path}", json=entity.required(api, None))

    assert_problem(resp, 422, "external_id")
    assert entity.listed(api) == []


def test_an_external_id_with_reserved_characters_is_percent_encoded(api) -> None:
    resp = api.put(f"{API}/contacts/external/SO%20%232024%3F1", json={"name": "Bill"})

    assert resp.status_code == 201, resp.text
    assert resp.json()["external_id"] == "SO #2024?1"
    again = api.put(f"{API}/contacts/external/SO%20%232024%3F1", json={"name": "William"})
    assert (again.status_code, again.json()["id"]) == (200, resp.json()["id"])


@each_entity
def test_an_unknown_body_field_is_refused(api, entity) -> None:
    resp = entity.put(api, "erp-1", {**entity.required(api, None), "colour": "red"})

    assert_problem(resp, 422, "colour")


# --- list filter -----------------------------------------------------------------------------


@each_entity
def test_lists_filter_by_external_id(api, entity) -> None:
    for external_id in ("erp-1", "erp-10", "ERP-1"):
        assert entity.put(api, external_id, entity.required(api, None)).status_code == 201

    found = entity.listed(api, external_id="erp-1")

    assert [r["external_id"] for r in found] == ["erp-1"]  # exact, case-sensitive
    assert entity.listed(api, external_id="erp-%") == []
    assert_problem(api.get(entity.url, params={"external_id": "x" * 201}), 422, "external_id")


# --- events and workflows --------------------------------------------------------------------


@each_entity
def test_workflows_see_created_then_updated_and_fields_filters_hold(api, entity) -> None:
    # Given a workflow for every save and one only for changes of custom.tier
    for key, trigger in (
        ("any-save", {"type": "record_saved"}),
        ("tier-change", {"type": "record_saved", "fields": ["custom.tier"]}),
    ):
        document = {
            "id": key, "name": key, "entity": entity.name, "trigger": trigger, "actions": []
        }
        assert api.post(f"{API}/workflows", json=document).status_code == 201
    body = {**entity.required(api, None), **entity.more}

    # When the same body is put twice, then once with another tier
    record = entity.put(api, "erp-1", body).json()
    assert entity.put(api, "erp-1", body).status_code == 200
    assert entity.put(api, "erp-1", {**body, "custom": {"tier": "silver"}}).status_code == 200
    # (and, to compare, a PATCH that changes nothing)
    assert api.patch(f"{entity.url}/{record['id']}", json={}).status_code == 200

    # Then the first save is `created`, the second an `updated` with nothing changed that
    # only the unfiltered workflow heard, exactly like the empty PATCH; the third both
    resp = api.get(f"{API}/runs", params={"entity": entity.name, "record_id": record["id"]})
    runs = resp.json()["items"]
    seen = [(r["op"], r["changed"], [e["workflow"] for e in r["evaluations"]]) for r in runs]
    assert seen[0][0] == "created"
    assert seen[0][2] == ["any-save", "tier-change"]
    assert seen[1:] == [
        ("updated", [], ["any-save"]),
        ("updated", ["custom.tier"], ["any-save", "tier-change"]),
        ("updated", [], ["any-save"]),
    ]


# --- teams -----------------------------------------------------------------------------------


@each_entity
def test_another_team_put_creates_its_own_record(api, client, make_team, entity) -> None:
    # Given team A's record with external id erp-1
    mine = entity.put(api, "erp-1", {**entity.required(api, None), **entity.more}).json()
    other = make_team("Globex").headers
    theirs_body = entity.required(client, other)

    # When team B puts erp-1, twice
    first = entity.put(client, "erp-1", theirs_body, headers=other)
    second = entity.put(client, "erp-1", {**theirs_body, **entity.change}, headers=other)

    # Then B created then updated its own record, and A's is untouched and not listed for B
    assert first.status_code == 201, first.text
    assert second.status_code == 200, second.text
    assert first.json()["id"] == second.json()["id"] != mine["id"]
    assert api.get(f"{entity.url}/{mine['id']}").json() == mine
    resp = client.get(entity.url, params={"external_id": "erp-1"}, headers=other)
    assert [r["id"] for r in resp.json()["items"]] == [first.json()["id"]]
    assert [r["id"] for r in entity.listed(api, external_id="erp-1")] == [mine["id"]]


# --- races -----------------------------------------------------------------------------------


@each_entity
def test_an_insert_losing_the_race_becomes_an_update(api, entity, monkeypatch) -> None:
    # Given a record another request committed after this request looked the id up
    body = entity.required(api, None)
    winner = entity.put(api, "erp-1", body).json()
    real_find = upsert_module.find
    looks: list[int | None] = []

    def late_find(scope: TeamScope, model: Any, external_id: str) -> int | None:
        found = real_find(scope, model, external_id)
        looks.append(found)
        return None if len(looks) == 1 else found

    monkeypatch.setattr(upsert_module, "find", late_find)

    # When this request inserts and the unique constraint refuses it
    resp = entity.put(api, "erp-1", {**body, **entity.change})

    # Then it rolls back and updates the winner's record instead: no 409, no second record
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == winner["id"]
    assert {k: resp.json()[k] for k in entity.change} == entity.change
    assert looks == [winner["id"], winner["id"]]
    assert [r["id"] for r in entity.listed(api)] == [winner["id"]]


@pytest.mark.parametrize("entity", [BY_NAME["contact"], BY_NAME["deal"]], ids=lambda e: e.name)
def test_two_concurrent_puts_of_a_new_external_id_make_one_record(
    app, api, team, entity, monkeypatch
) -> None:
    # Given two requests that both look the id up before either inserts
    runtime = app.state.runtime
    real_find = upsert_module.find
    both_looked = threading.Barrier(2)
    first_look = threading.local()
    looks: list[int | None] = []

    def find_then_wait(scope: TeamScope, model: Any, external_id: str) -> int | None:
        found = real_find(scope, model, external_id)
        looks.append(found)
        if not getattr(first_look, "done", False):
            first_look.done = True
            both_looked.wait(timeout=10)
        return found

    monkeypatch.setattr(upsert_module, "find", find_then_wait)
    body = entity.required(api, None)

    def put(n: int) -> tuple[int, bool]:
        with runtime.sessions() as session:
            scope = TeamScope(session, Actor(team.team_id, team.user_id), runtime.engine)
            data = entity.put_type(**body, custom={f"from_{n}": True})
            record, created = entity.service.put(scope, "erp-race", data)
            return record.id, created

    # When they run at the same time
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(put, n) for n in (1, 2)]
        results = [f.result(timeout=30) for f in futures]

    # Then one created the record; the other's insert failed, and it looked again and updated
    (first_id, _), (second_id, _) = results
    assert first_id == second_id
    assert looks == [None, None, first_id]
    assert sorted(created for _, created in results) == [False, True]
    (record,) = entity.listed(api, external_id="erp-race")
    assert record["custom"] == {"from_1": True, "from_2": True}
    assert len(entity.listed(api)) == 1


# --- OpenAPI ---------------------------------------------------------------------------------


@each_entity
def test_openapi_documents_the_upsert_with_the_create_body(client, entity) -> None:
    doc = client.get("/schema/openapi.json").json()
    schemas = doc["components"]["schemas"]

    operations = doc["paths"][f"{entity.url}/external/{{external_id}}"]

    assert set(operations) - {"parameters"} == {"put"}
    operation = operations["put"]
    assert {"200", "201"} <= set(operation["responses"])
    (param,) = [p for p in operation["parameters"] if p["name"] == "external_id"]
    assert (param["in"], param["schema"]["minLength"], param["schema"]["maxLength"]) == (
        "path",
        1,
        200,
    )
    assert operation["requestBody"]["required"] is True
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    put_schema = schemas[ref.rsplit("/", 1)[1]]
    create_schema = schemas[entity.in_type.__name__]
    # The same fields and requirements as the create body (the defaults differ: a field left
    # out keeps its value on update).
    assert set(put_schema["properties"]) == set(create_schema["properties"])
    assert put_schema.get("required") == create_schema.get("required")
    listing = doc["paths"][entity.url]["get"]
    assert "external_id" in {p["name"] for p in listing["parameters"]}
