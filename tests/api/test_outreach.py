"""Outreach efforts through the HTTP API: types, required fields, times, users, lists, pages."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from helpers import assert_problem, at
from sqlalchemy import Engine

from server.core.db import make_session_factory, transaction
from server.core.models import Team
from server.core.services.teams import ensure_user

URL = "/api/v1/outreach"

# One valid body per type: (code, name, the field that type needs).
VALID_BY_TYPE = [
    (1, "platform", {"value": "Upwork"}),
    (2, "email", {"email": "cto@initech.example"}),
    (3, "call", {"phone": "+49 30 1234567"}),
    (4, "social", {"value": "https://social.example/bill"}),
    (5, "messenger", {"phone": "+1 555 0100"}),
]




def email_outreach(**fields: Any) -> dict[str, Any]:
    return {"type": "email", "email": "cto@initech.example", **fields}


def create(api: Any, body: dict[str, Any]) -> dict[str, Any]:
    resp = api.post(URL, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def ids(resp: Any) -> list[int]:
    assert resp.status_code == 200, resp.text
    return [item["id"] for item in resp.json()["items"]]


def add_member(engine: Engine, team_id: int, email: str = "rep@acme.test") -> int:
    """Another user of the same team (there is no HTTP endpoint for users)."""
    with transaction(make_session_factory(engine)) as session:
        team = session.get(Team, team_id)
        return ensure_user(session, team, email, name="Rep", role="member").id


# --- type ------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "name", "needs"), VALID_BY_TYPE)
def test_type_given_as_code_is_returned_as_code_and_name(api, code, name, needs) -> None:
    created = create(api, {"type": code, **needs})

    assert created["type"] == code
    assert created["type_name"] == name


@pytest.mark.parametrize(("code", "name", "needs"), VALID_BY_TYPE)
def test_type_given_as_name_is_returned_as_code_and_name(api, code, name, needs) -> None:
    # Given
    created = create(api, {"type": name, **needs})

    # When
    read = api.get(f"{URL}/{created['id']}")

    # Then
    assert read.status_code == 200, read.text
    assert read.json()["type"] == code
    assert read.json()["type_name"] == name
    assert created["type"] == code


@pytest.mark.parametrize("bad_type", [0, 6, -1, 42, "fax", "", "EMAIL", None])
def test_unknown_type_is_refused_naming_type(api, bad_type) -> None:
    resp = api.post(URL, json={"type": bad_type, "email": "a@b.example", "value": "x"})

    assert_problem(resp, 422, "type")


def test_missing_type_is_refused_naming_type(api) -> None:
    resp = api.post(URL, json={"email": "a@b.example"})

    assert_problem(resp, 422, "type")


# --- fields each type needs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "email"}, "email"),
        ({"type": 2, "phone": "+1 555 0100", "value": "x"}, "email"),
        ({"type": "call"}, "phone"),
        ({"type": 3, "email": "a@b.example", "value": "x"}, "phone"),
        ({"type": "messenger"}, "phone"),
        ({"type": 5, "email": "a@b.example"}, "phone"),
        ({"type": "platform"}, "value"),
        ({"type": 1, "email": "a@b.example", "phone": "+1 555 0100"}, "value"),
        ({"type": "social"}, "value"),
        ({"type": 4, "value": ""}, "value"),
    ],
)
def test_type_without_the_field_it_needs_is_refused(api, body, field) -> None:
    resp = api.post(URL, json=body)

    problem = assert_problem(resp, 422, field)
    assert problem["detail"].startswith(f"{field}: ")


def test_call_without_phone_names_phone_in_problem(api) -> None:
    problem = assert_problem(api.post(URL, json={"type": "call"}), 422, "phone")

    assert problem["type"] == "urn:dealflow:problem:invalid-input"
    assert problem["title"]
    assert "call" in problem["detail"]
    assert problem["errors"] == [
        {"field": "phone", "message": problem["detail"].removeprefix("phone: ")}
    ]


def test_messenger_with_a_handle_in_value_only_is_accepted(api) -> None:
    created = create(api, {"type": "messenger", "value": "@bill_lumbergh"})

    assert created["type"] == 5
    assert created["value"] == "@bill_lumbergh"
    assert created["phone"] is None


def test_messenger_with_phone_only_is_accepted(api) -> None:
    created = create(api, {"type": "messenger", "phone": "+44 20 7946 0000"})

    assert created["phone"] == "+44 20 7946 0000"
    assert created["value"] is None


@pytest.mark.parametrize(
    "email", ["not-an-email", "bill@", "@initech.example", "bill@initech", "b ill@x.example"]
)
def test_invalid_email_is_refused_naming_email(api, email) -> None:
    resp = api.post(URL, json={"type": "email", "email": email})

    assert_problem(resp, 422, "email")


@pytest.mark.parametrize("phone", ["call me", "12", "+49-abc-123", "555 0100 ext. 7"])
def test_invalid_phone_is_refused_naming_phone(api, phone) -> None:
    resp = api.post(URL, json={"type": "call", "phone": phone})

    assert_problem(resp, 422, "phone")


def test_invalid_email_is_refused_even_when_the_type_does_not_need_it(api) -> None:
    resp = api.post(URL, json={"type": "call", "phone": "+1 555 0100", "email": "nope"})

    assert_problem(resp, 422, "email")


def test_unknown_field_is_refused(api) -> None:
    resp = api.post(URL, json=email_outreach(channel="email"))

    assert_problem(resp, 422, "channel")


def test_negative_cost_is_refused_naming_cost(api) -> None:
    assert_problem(api.post(URL, json=email_outreach(cost=-0.01)), 422, "cost")


def test_cost_is_kept_to_the_cent(api) -> None:
    created = create(api, email_outreach(cost=12.5))

    assert created["cost"] == 12.5
    assert api.get(f"{URL}/{created['id']}").json()["cost"] == 12.5


# --- occurred_at -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sent", ["2026-03-01T09:30:00+05:30", "2026-03-01T09:30:00-08:00", "2026-03-01T04:00:00Z"]
)
def test_occurred_at_with_an_offset_is_stored_as_the_same_instant(api, sent) -> None:
    # Given
    created = create(api, email_outreach(occurred_at=sent))

    # When
    read = api.get(f"{URL}/{created['id']}").json()

    # Then
    assert at(created["occurred_at"]) == at(sent)
    assert at(read["occurred_at"]) == at(sent)


def test_occurred_at_is_answered_in_utc(api) -> None:
    created = create(api, email_outreach(occurred_at="2026-03-01T09:30:00+05:30"))

    assert at(created["occurred_at"]).utcoffset() == dt.timedelta(0)
    assert at(created["occurred_at"]) == dt.datetime(2026, 3, 1, 4, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("naive", "utc"),
    [
        ("2026-03-01T09:30:00", dt.datetime(2026, 3, 1, 8, 30, tzinfo=dt.UTC)),  # CET, +01:00
        ("2026-07-01T09:30:00", dt.datetime(2026, 7, 1, 7, 30, tzinfo=dt.UTC)),  # CEST, +02:00
    ],
)
def test_naive_occurred_at_is_read_in_the_team_timezone(api, naive, utc) -> None:
    # Given
    resp = api.put("/api/v1/team", json={"timezone": "Europe/Berlin"})
    assert resp.status_code == 200, resp.text

    # When
    created = create(api, email_outreach(occurred_at=naive))

    # Then
    assert at(created["occurred_at"]) == utc
    assert at(api.get(f"{URL}/{created['id']}").json()["occurred_at"]) == utc


def test_naive_occurred_at_in_a_utc_team_is_utc(api) -> None:
    created = create(api, email_outreach(occurred_at="2026-03-01T09:30:00"))

    assert at(created["occurred_at"]) == dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)


def test_occurred_at_defaults_to_now(api) -> None:
    # Given
    before = dt.datetime.now(dt.UTC)

    # When
    created = create(api, email_outreach())

    # Then
    after = dt.datetime.now(dt.UTC)
    assert (
        before - dt.timedelta(seconds=1)
        <= at(created["occurred_at"])
        <= after + dt.timedelta(seconds=1)
    )


def test_occurred_at_that_is_not_a_time_is_refused(api) -> None:
    assert_problem(api.post(URL, json=email_outreach(occurred_at="yesterday")), 422, "occurred_at")


# --- users -------------------------------------------------------------------------------


def test_user_defaults_to_the_key_user_who_is_also_the_creator(api, team) -> None:
    created = create(api, email_outreach())

    assert created["user_id"] == team.user_id
    assert created["created_by_id"] == team.user_id


def test_user_of_the_same_team_is_kept_while_creator_is_the_key_user(api, team, engine) -> None:
    # Given
    member_id = add_member(engine, team.team_id)

    # When
    created = create(api, email_outreach(user_id=member_id))

    # Then
    assert created["user_id"] == member_id
    assert created["created_by_id"] == team.user_id


def test_user_of_another_team_is_not_found_naming_user_id(api, make_team) -> None:
    # Given
    other = make_team("Globex")

    # When
    resp = api.post(URL, json=email_outreach(user_id=other.user_id))

    # Then
    assert_problem(resp, 404, "user_id")
    assert api.get(URL).json()["items"] == []


def test_user_that_does_not_exist_is_not_found_naming_user_id(api) -> None:
    assert_problem(api.post(URL, json=email_outreach(user_id=987654)), 404, "user_id")


# --- PATCH -------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_given(api) -> None:
    # Given
    created = create(
        api,
        email_outreach(description="Cold email", cost=3, occurred_at="2026-03-01T09:00:00Z"),
    )

    # When
    resp = api.patch(f"{URL}/{created['id']}", json={"description": "Follow-up"})

    # Then
    assert resp.status_code == 200, resp.text
    patched = resp.json()
    assert patched["description"] == "Follow-up"
    unchanged = ("type", "type_name", "email", "phone", "value", "cost", "user_id", "created_by_id")
    assert {k: patched[k] for k in unchanged} == {k: created[k] for k in unchanged}
    assert at(patched["occurred_at"]) == at(created["occurred_at"])
    assert api.get(f"{URL}/{created['id']}").json()["description"] == "Follow-up"


def test_patch_null_clears_a_nullable_field(api) -> None:
    created = create(api, email_outreach(description="Cold email", cost=3))

    patched = api.patch(f"{URL}/{created['id']}", json={"description": None, "cost": None})

    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] is None
    assert patched.json()["cost"] is None


def test_patch_removing_the_email_of_an_email_outreach_is_refused(api) -> None:
    # Given
    created = create(api, email_outreach())

    # When
    resp = api.patch(f"{URL}/{created['id']}", json={"email": None})

    # Then
    assert_problem(resp, 422, "email")
    assert api.get(f"{URL}/{created['id']}").json()["email"] == "cto@initech.example"


def test_patch_to_a_type_whose_field_is_missing_is_refused(api) -> None:
    # Given
    created = create(api, email_outreach())

    # When
    resp = api.patch(f"{URL}/{created['id']}", json={"type": "call"})

    # Then
    assert_problem(resp, 422, "phone")
    assert api.get(f"{URL}/{created['id']}").json()["type"] == 2


def test_patch_type_by_code_with_the_field_it_needs(api) -> None:
    created = create(api, email_outreach())

    resp = api.patch(f"{URL}/{created['id']}", json={"type": 3, "phone": "+1 555 0100"})

    assert resp.status_code == 200, resp.text
    assert (resp.json()["type"], resp.json()["type_name"]) == (3, "call")
    assert resp.json()["phone"] == "+1 555 0100"


@pytest.mark.parametrize("bad_type", [7, "carrier-pigeon"])
def test_patch_unknown_type_is_refused(api, bad_type) -> None:
    created = create(api, email_outreach())

    assert_problem(api.patch(f"{URL}/{created['id']}", json={"type": bad_type}), 422, "type")


def test_patch_invalid_email_is_refused(api) -> None:
    created = create(api, email_outreach())

    assert_problem(api.patch(f"{URL}/{created['id']}", json={"email": "nope"}), 422, "email")


def test_patch_user_of_another_team_is_not_found_naming_user_id(api, make_team) -> None:
    # Given
    other = make_team("Globex")
    created = create(api, email_outreach())

    # When
    resp = api.patch(f"{URL}/{created['id']}", json={"user_id": other.user_id})

    # Then
    assert_problem(resp, 404, "user_id")
    assert api.get(f"{URL}/{created['id']}").json()["user_id"] == created["user_id"]


def test_patch_naive_occurred_at_is_read_in_the_team_timezone(api) -> None:
    # Given
    assert api.put("/api/v1/team", json={"timezone": "America/New_York"}).status_code == 200
    created = create(api, email_outreach())

    # When
    resp = api.patch(f"{URL}/{created['id']}", json={"occurred_at": "2026-01-15T10:00:00"})

    # Then
    assert resp.status_code == 200, resp.text
    assert at(resp.json()["occurred_at"]) == dt.datetime(2026, 1, 15, 15, 0, tzinfo=dt.UTC)


def test_patch_of_a_missing_outreach_is_not_found(api) -> None:
    assert_problem(api.patch(f"{URL}/424242", json={"description": "x"}), 404)


# --- lists -------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["3", "call"])
def test_list_filters_by_type_code_or_name(api, given) -> None:
    # Given
    create(api, email_outreach())
    call = create(api, {"type": "call", "phone": "+1 555 0100"})
    create(api, {"type": "platform", "value": "Upwork"})
    other_call = create(api, {"type": 3, "phone": "+1 555 0199"})

    # When
    resp = api.get(URL, params={"type": given})

    # Then
    assert ids(resp) == [call["id"], other_call["id"]]


@pytest.mark.parametrize("bad_type", ["0", "6", "fax", "-1"])
def test_list_with_unknown_type_is_refused_naming_type(api, bad_type) -> None:
    assert_problem(api.get(URL, params={"type": bad_type}), 422, "type")


def test_list_filters_by_user(api, team, engine) -> None:
    # Given
    member_id = add_member(engine, team.team_id)
    mine = create(api, email_outreach())
    theirs = create(api, email_outreach(user_id=member_id))

    # When / Then
    assert ids(api.get(URL, params={"user_id": member_id})) == [theirs["id"]]
    assert ids(api.get(URL, params={"user_id": team.user_id})) == [mine["id"]]


def test_list_filters_by_occurred_window(api) -> None:
    # Given
    march = create(api, email_outreach(occurred_at="2026-03-01T12:00:00Z"))
    april = create(api, email_outreach(occurred_at="2026-04-01T12:00:00Z"))
    may = create(api, email_outreach(occurred_at="2026-05-01T12:00:00Z"))

    # When
    from_april = api.get(URL, params={"occurred_from": "2026-03-15T00:00:00Z"})
    to_april = api.get(URL, params={"occurred_to": "2026-04-15T00:00:00Z"})
    only_april = api.get(
        URL, params={"occurred_from": "2026-03-15T00:00:00Z", "occurred_to": "2026-04-15T00:00:00Z"}
    )

    # Then
    assert ids(from_april) == [april["id"], may["id"]]
    assert ids(to_april) == [march["id"], april["id"]]
    assert ids(only_april) == [april["id"]]


def test_occurred_from_includes_the_instant_itself(api) -> None:
    created = create(api, email_outreach(occurred_at="2026-03-01T12:00:00Z"))

    assert ids(api.get(URL, params={"occurred_from": "2026-03-01T12:00:00Z"})) == [created["id"]]
    assert ids(api.get(URL, params={"occurred_from": "2026-03-01T12:00:01Z"})) == []


def test_occurred_window_with_offsets_compares_instants(api) -> None:
    # Given: 12:00 UTC is 17:30 in India
    created = create(api, email_outreach(occurred_at="2026-03-01T12:00:00Z"))

    # When
    before = api.get(URL, params={"occurred_from": "2026-03-01T17:31:00+05:30"})
    after = api.get(URL, params={"occurred_from": "2026-03-01T17:29:00+05:30"})

    # Then
    assert ids(before) == []
    assert ids(after) == [created["id"]]


def test_naive_occurred_window_is_read_in_the_team_timezone(api) -> None:
    # Given: 12:00 UTC is 13:00 in Berlin in March
    assert api.put("/api/v1/team", json={"timezone": "Europe/Berlin"}).status_code == 200
    created = create(api, email_outreach(occurred_at="2026-03-01T12:00:00Z"))

    # When / Then
    assert ids(api.get(URL, params={"occurred_from": "2026-03-01T12:30:00"})) == [created["id"]]
    assert ids(api.get(URL, params={"occurred_from": "2026-03-01T13:30:00"})) == []


def test_list_is_empty_without_outreach(api) -> None:
    resp = api.get(URL)

    assert resp.status_code == 200, resp.text
    assert resp.json() == {"items": [], "next_cursor": None}


def test_cursor_pages_walk_every_outreach_once_in_id_order(api) -> None:
    # Given
    created = [create(api, email_outreach(description=f"#{n}"))["id"] for n in range(5)]

    # When
    seen: list[int] = []
    cursors: list[str | None] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        resp = api.get(URL, params=params)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        cursors.append(cursor)
        if cursor is None:
            break
        assert len(cursors) < 10, "pagination does not end"

    # Then
    assert seen == sorted(created)
    assert len(set(seen)) == 5
    assert len(cursors) == 3 and cursors[-1] is None


def test_a_full_last_page_has_no_next_cursor(api) -> None:
    for _ in range(2):
        create(api, email_outreach())

    page = api.get(URL, params={"limit": 2}).json()

    assert len(page["items"]) == 2
    assert page["next_cursor"] is None


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        _b64("page:2"),
        _b64("id:two"),
        _b64("id:"),
        _b64("id:99999999999999999999999999"),
        "\u00e9t\u00e9",
    ],
)
def test_garbage_cursor_is_refused_naming_cursor(api, cursor) -> None:
    create(api, email_outreach())

    assert_problem(api.get(URL, params={"cursor": cursor}), 422, "cursor")


@pytest.mark.parametrize("limit", [0, 201, -1])
def test_limit_outside_1_to_200_is_refused(api, limit) -> None:
    assert_problem(api.get(URL, params={"limit": limit}), 422, "limit")


# --- delete ------------------------------------------------------------------------------


def test_delete_answers_204_and_the_outreach_is_gone(api) -> None:
    # Given
    created = create(api, email_outreach())

    # When
    resp = api.delete(f"{URL}/{created['id']}")

    # Then
    assert resp.status_code == 204, resp.text
    assert_problem(api.get(f"{URL}/{created['id']}"), 404)
    assert ids(api.get(URL)) == []


def test_delete_twice_is_not_found(api) -> None:
    created = create(api, email_outreach())
    assert api.delete(f"{URL}/{created['id']}").status_code == 204

    assert_problem(api.delete(f"{URL}/{created['id']}"), 404)


def test_deleting_an_outreach_clears_it_from_its_contacts(api) -> None:
    # Given
    created = create(api, email_outreach())
    contact = api.post("/api/v1/contacts", json={"name": "Bill", "outreach_id": created["id"]})
    assert contact.status_code == 201, contact.text

    # When
    assert api.delete(f"{URL}/{created['id']}").status_code == 204

    # Then
    assert api.get(f"/api/v1/contacts/{contact.json()['id']}").json()["outreach_id"] is None


def test_read_of_a_missing_outreach_is_not_found(api) -> None:
    assert_problem(api.get(f"{URL}/424242"), 404)


@pytest.mark.parametrize("outreach_id", [2**63, 10**20])
def test_read_of_an_id_beyond_64_bits_is_not_found(api, outreach_id) -> None:
    assert_problem(api.get(f"{URL}/{outreach_id}"), 404)


def test_user_id_beyond_64_bits_is_not_found_naming_user_id(api) -> None:
    assert_problem(api.post(URL, json=email_outreach(user_id=10**20)), 404, "user_id")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "email", "email": "a" * 310 + "@initech.example"}, "email"),
        ({"type": "call", "phone": "1" * 65}, "phone"),
        ({"type": "platform", "value": "v" * 501}, "value"),
    ],
)
def test_a_value_longer_than_its_column_is_refused_naming_it(api, body, field) -> None:
    assert_problem(api.post(URL, json=body), 422, field)
