"""Team isolation: another team's records answer 404 everywhere, exactly like missing ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

API = "/api/v1"
MISSING_ID = 987_654_321


def created(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    return resp.json()


def assert_not_found(resp: Any, field: str | None = None) -> dict[str, Any]:
    assert resp.status_code == 404, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == 404
    assert body["type"] and body["title"] and body["detail"]
    if field is None:
        assert "field" not in body
    else:
        assert body["field"] == field
        assert [e["field"] for e in body["errors"]] == [field]
    return body


# --- record makers: each posts with the given headers and returns the created record ---------


def new_outreach(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    body = {"type": "email", "email": "cto@initech.example", "description": "Cold email"}
    return created(client.post(f"{API}/outreach", json=body, headers=headers))


def new_contact(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    body = {"name": "Bill Lumbergh", "email": "bill@initech.example", "company": "Initech"}
    return created(client.post(f"{API}/contacts", json=body, headers=headers))


def new_deal(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    body = {"title": "TPS portal", "amount": 24000, "probability": 40}
    return created(client.post(f"{API}/deals", json=body, headers=headers))


def new_lead(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    contact = new_contact(client, headers)
    body = {"contact_id": contact["id"], "score": 10}
    return created(client.post(f"{API}/leads", json=body, headers=headers))


@dataclass(frozen=True)
class Entity:
    """How to make one record of an entity and where its item and list live."""

    name: str
    make: Callable[[Any, dict[str, str]], tuple[str, str]]  # -> (item url, list url)
    patch: dict[str, Any]

    def __str__(self) -> str:
        return self.name


def _simple(
    collection: str, maker: Callable[..., dict[str, Any]]
) -> Callable[..., tuple[str, str]]:
    def make(client: Any, headers: dict[str, str]) -> tuple[str, str]:
        row = maker(client, headers)
        return f"{API}/{collection}/{row['id']}", f"{API}/{collection}"

    return make


def _communication(client: Any, headers: dict[str, str]) -> tuple[str, str]:
    contact = new_contact(client, headers)
    base = f"{API}/contacts/{contact['id']}/communications"
    row = created(client.post(base, json={"channel": "call", "note": "Intro"}, headers=headers))
    return f"{base}/{row['id']}", base


ENTITIES = [
    Entity("outreach", _simple("outreach", new_outreach), {"description": "hijacked"}),
    Entity("contacts", _simple("contacts", new_contact), {"name": "Hijacked"}),
    Entity("communications", _communication, {"note": "hijacked"}),
    Entity("deals", _simple("deals", new_deal), {"title": "Hijacked"}),
    Entity("leads", _simple("leads", new_lead), {"score": 99}),
]


@pytest.fixture
def other(make_team):  # type: ignore[no-untyped-def]
    """Team B."""
    return make_team("Beta")


# --- reading, changing and deleting another team's records -----------------------------------


@pytest.mark.parametrize("entity", ENTITIES, ids=str)
def test_other_team_cannot_read_a_record(api, other, entity: Entity) -> None:
    # Given
    item, _ = entity.make(api, {})
    # When
    resp = api.get(item, headers=other.headers)
    # Then
    assert_not_found(resp)
    assert api.get(item).status_code == 200


@pytest.mark.parametrize("entity", ENTITIES, ids=str)
def test_other_team_cannot_change_a_record(api, other, entity: Entity) -> None:
    # Given
    item, _ = entity.make(api, {})
    before = api.get(item).json()
    # When
    resp = api.patch(item, json=entity.patch, headers=other.headers)
    # Then
    assert_not_found(resp)
    assert api.get(item).json() == before


@pytest.mark.parametrize("entity", ENTITIES, ids=str)
def test_other_team_cannot_delete_a_record(api, other, entity: Entity) -> None:
    # Given
    item, _ = entity.make(api, {})
    before = api.get(item).json()
    # When
    resp = api.delete(item, headers=other.headers)
    # Then
    assert_not_found(resp)
    after = api.get(item)
    assert after.status_code == 200
    assert after.json() == before


@pytest.mark.parametrize("entity", ENTITIES, ids=str)
def test_own_team_can_change_and_delete_the_same_record(api, entity: Entity) -> None:
    # Given: the record the other team could not touch
    item, _ = entity.make(api, {})
    # When
    changed = api.patch(item, json=entity.patch)
    deleted = api.delete(item)
    # Then
    assert changed.status_code == 200, changed.text
    assert all(changed.json()[k] == v for k, v in entity.patch.items())
    assert deleted.status_code == 204
    assert_not_found(api.get(item))


@pytest.mark.parametrize("entity", ENTITIES, ids=str)
def test_foreign_record_answers_like_a_missing_one(api, other, entity: Entity) -> None:
    # Given
    item, _ = entity.make(api, {})
    missing = item.rsplit("/", 1)[0] + f"/{MISSING_ID}"
    # When
    foreign = assert_not_found(api.get(item, headers=other.headers))
    absent = assert_not_found(api.get(missing, headers=other.headers))
    # Then
    assert set(foreign) == set(absent)
    assert (foreign["type"], foreign["title"]) == (absent["type"], absent["title"])


@pytest.mark.parametrize("entity", ENTITIES, ids=str)
def test_lists_show_only_the_callers_rows(api, other, entity: Entity) -> None:
    # Given
    a_item, a_list = entity.make(api, {})
    b_item, b_list = entity.make(api, other.headers)
    # When
    b_rows = api.get(b_list, headers=other.headers)
    a_rows = api.get(a_list)
    # Then
    assert b_rows.status_code == 200, b_rows.text
    assert [r["id"] for r in b_rows.json()["items"]] == [int(b_item.rsplit("/", 1)[1])]
    assert [r["id"] for r in a_rows.json()["items"]] == [int(a_item.rsplit("/", 1)[1])]


@pytest.mark.parametrize("collection", ["outreach", "contacts", "deals", "leads"])
def test_list_is_empty_for_a_team_without_rows(api, other, collection: str) -> None:
    # Given: only A has rows
    for entity in ENTITIES:
        entity.make(api, {})
    assert api.get(f"{API}/{collection}").json()["items"]
    # When
    resp = api.get(f"{API}/{collection}", headers=other.headers)
    # Then
    assert resp.status_code == 200
    assert resp.json() == {"items": [], "next_cursor": None}


def test_filter_by_foreign_ids_finds_nothing(api, other) -> None:
    # Given
    outreach = new_outreach(api, {})
    contact = created(
        api.post(f"{API}/contacts", json={"name": "Ada", "outreach_id": outreach["id"]})
    )
    created(api.post(f"{API}/deals", json={"title": "Route planner", "contact_id": contact["id"]}))
    created(api.post(f"{API}/leads", json={"contact_id": contact["id"]}))
    # When
    queries = [
        f"{API}/deals?contact_id={contact['id']}",
        f"{API}/deals?outreach_id={outreach['id']}",
        f"{API}/leads?contact_id={contact['id']}",
        f"{API}/contacts?outreach_id={outreach['id']}",
        f"{API}/outreach?user_id={outreach['user_id']}",
    ]
    # Then
    for query in queries:
        assert api.get(query).json()["items"], query
        assert api.get(query, headers=other.headers).json()["items"] == [], query


# --- communications under another team's contact ---------------------------------------------


def test_other_team_cannot_log_a_communication_on_a_foreign_contact(api, other) -> None:
    # Given
    contact = new_contact(api, {})
    url = f"{API}/contacts/{contact['id']}/communications"
    # When
    resp = api.post(url, json={"channel": "email", "note": "sneaky"}, headers=other.headers)
    # Then
    assert_not_found(resp)
    assert api.get(url).json()["items"] == []
    assert api.get(f"{API}/contacts/{contact['id']}").json() == contact


def test_other_team_cannot_list_a_foreign_contacts_communications(api, other) -> None:
    # Given
    _, base = _communication(api, {})
    # When
    resp = api.get(base, headers=other.headers)
    # Then
    assert_not_found(resp)
    assert len(api.get(base).json()["items"]) == 1


def test_foreign_communication_under_own_contact_is_not_found(api, other) -> None:
    # Given: A's communication, and a contact of B's own
    item, _ = _communication(api, {})
    comm_id = item.rsplit("/", 1)[1]
    b_contact = new_contact(api, other.headers)
    smuggled = f"{API}/contacts/{b_contact['id']}/communications/{comm_id}"
    before = api.get(item).json()
    # When
    responses = [
        api.get(smuggled, headers=other.headers),
        api.patch(smuggled, json={"note": "hijacked"}, headers=other.headers),
        api.delete(smuggled, headers=other.headers),
    ]
    # Then
    for resp in responses:
        assert_not_found(resp)
    assert api.get(item).json() == before


# --- references to another team's records ----------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A field of ``collection`` that points at a record of kind ``target``."""

    collection: str
    field: str
    target: str  # "outreach" | "contact" | "user"
    base: Callable[[Any, dict[str, str]], dict[str, Any]]
    patchable: bool = True

    def __str__(self) -> str:
        return f"{self.collection}.{self.field}"


def _with_contact(client: Any, headers: dict[str, str]) -> dict[str, Any]:
    return {"contact_id": new_contact(client, headers)["id"]}


REFERENCES = [
    Reference("contacts", "outreach_id", "outreach", lambda c, h: {"name": "Beta contact"}),
    Reference("deals", "contact_id", "contact", lambda c, h: {"title": "Beta deal"}),
    Reference("deals", "outreach_id", "outreach", lambda c, h: {"title": "Beta deal"}),
    Reference("deals", "owner_id", "user", lambda c, h: {"title": "Beta deal"}),
    # A lead's contact is fixed at creation: LeadPatch has no contact_id to point elsewhere.
    Reference("leads", "contact_id", "contact", lambda c, h: {}, patchable=False),
    Reference("leads", "owner_id", "user", _with_contact),
    Reference(
        "outreach", "user_id", "user", lambda c, h: {"type": "call", "phone": "+49 30 1234567"}
    ),
]


def a_target(api: Any, team: Any, kind: str) -> int:
    """The id of a record of team A of kind ``kind``."""
    if kind == "outreach":
        return new_outreach(api, {})["id"]
    if kind == "contact":
        return new_contact(api, {})["id"]
    return team.user_id


@pytest.mark.parametrize("ref", REFERENCES, ids=str)
def test_create_refuses_a_reference_to_another_team(api, team, other, ref: Reference) -> None:
    # Given
    foreign_id = a_target(api, team, ref.target)
    body = {**ref.base(api, other.headers), ref.field: foreign_id}
    # When
    resp = api.post(f"{API}/{ref.collection}", json=body, headers=other.headers)
    # Then
    problem = assert_not_found(resp, field=ref.field)
    assert str(foreign_id) in problem["detail"]
    b_rows = api.get(f"{API}/{ref.collection}", headers=other.headers).json()["items"]
    assert b_rows == []


@pytest.mark.parametrize("ref", [r for r in REFERENCES if r.patchable], ids=str)
def test_patch_refuses_a_reference_to_another_team(api, team, other, ref: Reference) -> None:
    # Given: B's own record, valid as it is
    own = created(
        api.post(
            f"{API}/{ref.collection}", json=ref.base(api, other.headers), headers=other.headers
        )
    )
    item = f"{API}/{ref.collection}/{own['id']}"
    foreign_id = a_target(api, team, ref.target)
    # When
    resp = api.patch(item, json={ref.field: foreign_id}, headers=other.headers)
    # Then
    assert_not_found(resp, field=ref.field)
    assert api.get(item, headers=other.headers).json() == own


@pytest.mark.parametrize("ref", REFERENCES, ids=str)
def test_create_accepts_a_reference_to_the_own_team(api, team, ref: Reference) -> None:
    # Given: the same body, pointing at a record of the caller's own team
    own_id = a_target(api, team, ref.target)
    body = {**ref.base(api, {}), ref.field: own_id}
    # When
    resp = api.post(f"{API}/{ref.collection}", json=body)
    # Then
    assert created(resp)[ref.field] == own_id


# --- team settings ---------------------------------------------------------------------------


def test_team_update_changes_only_the_callers_team(api, other) -> None:
    # Given: A has settings and field domains of its own
    a_update = {
        "timezone": "Europe/Berlin",
        "settings": {"notification_channels": ["email"]},
        "field_domains": {"deal.stage": ["qualification", "proposal"]},
    }
    assert api.put(f"{API}/team", json=a_update).status_code == 200
    a_before = api.get(f"{API}/team").json()
    # When
    resp = api.put(
        f"{API}/team",
        json={
            "name": "Beta renamed",
            "timezone": "Asia/Tokyo",
            "settings": {"notification_channels": ["slack"], "stage_sla_hours": {"mql": 24}},
            "field_domains": {"deal.stage": ["b1", "b2"], "lead.custom.segment": ["smb"]},
        },
        headers=other.headers,
    )
    # Then
    assert resp.status_code == 200, resp.text
    b_after = api.get(f"{API}/team", headers=other.headers).json()
    assert b_after["id"] == other.team_id
    assert (b_after["name"], b_after["timezone"]) == ("Beta renamed", "Asia/Tokyo")
    assert b_after["field_domains"] == {"deal.stage": ["b1", "b2"], "lead.custom.segment": ["smb"]}
    assert api.get(f"{API}/team").json() == a_before


def test_team_field_domains_do_not_constrain_other_teams(api, other) -> None:
    # Given: B declares a pipeline, A declares another one
    api.put(f"{API}/team", json={"field_domains": {"deal.stage": ["a-stage"]}}, headers={})
    api.put(
        f"{API}/team", json={"field_domains": {"deal.stage": ["b-stage"]}}, headers=other.headers
    )
    # When
    a_deal = api.post(f"{API}/deals", json={"title": "A", "stage": "a-stage"})
    a_refused = api.post(f"{API}/deals", json={"title": "A", "stage": "b-stage"})
    b_default = api.post(f"{API}/deals", json={"title": "B"}, headers=other.headers)
    # Then
    assert created(a_deal)["stage"] == "a-stage"
    assert a_refused.status_code == 422
    assert a_refused.json()["field"] == "stage"
    assert created(b_default)["stage"] == "b-stage"


def test_team_cannot_take_another_teams_name(api, other) -> None:
    # Given
    a_before = api.get(f"{API}/team").json()
    b_before = api.get(f"{API}/team", headers=other.headers).json()
    # When
    resp = api.put(f"{API}/team", json={"name": a_before["name"]}, headers=other.headers)
    # Then
    assert resp.status_code == 409, resp.text
    assert resp.json()["field"] == "name"
    assert api.get(f"{API}/team").json() == a_before
    assert api.get(f"{API}/team", headers=other.headers).json() == b_before
