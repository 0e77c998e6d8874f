"""Leads through the HTTP API: lifecycle transitions, stage history, reasons, score, lists."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import assert_problem, at

URL = "/api/v1/leads"

# The path from a new lead to each stage, through allowed moves only.
PATH_TO = {
    "lead": [],
    "mql": ["mql"],
    "sal": ["mql", "sal"],
    "opportunity": ["mql", "sal", "opportunity"],
    "customer": ["mql", "sal", "opportunity", "customer"],
}




def new_contact(api: Any, name: str = "Bill Lumbergh") -> int:
    resp = api.post("/api/v1/contacts", json={"name": name})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def create(api: Any, **fields: Any) -> dict[str, Any]:
    if "contact_id" not in fields:
        fields["contact_id"] = new_contact(api)
    resp = api.post(URL, json=fields)
    assert resp.status_code == 201, resp.text
    return resp.json()


def move(api: Any, lead_id: int, stage: str, reason: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"stage": stage}
    if reason is not None:
        body["stage_reason"] = reason
    resp = api.patch(f"{URL}/{lead_id}", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def lead_at(api: Any, stage: str) -> dict[str, Any]:
    """A lead walked to ``stage`` through allowed moves."""
    lead = create(api)
    for step in PATH_TO[stage]:
        lead = move(api, lead["id"], step)
    assert lead["stage"] == stage
    return lead


def history(api: Any, lead_id: int) -> list[dict[str, Any]]:
    resp = api.get(f"{URL}/{lead_id}/history")
    assert resp.status_code == 200, resp.text
    return resp.json()


def read(api: Any, lead_id: int) -> dict[str, Any]:
    resp = api.get(f"{URL}/{lead_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def ids(resp: Any) -> list[int]:
    assert resp.status_code == 200, resp.text
    return [item["id"] for item in resp.json()["items"]]


# --- create ---------------------------------------------------------------------------------


def test_create_starts_at_stage_lead_with_one_history_entry(api, team) -> None:
    # Given
    contact_id = new_contact(api)

    # When
    created = create(api, contact_id=contact_id)

    # Then
    assert created["contact_id"] == contact_id
    assert created["stage"] == "lead"
    assert created["score"] == 0
    assert created["created_by_id"] == team.user_id
    entries = history(api, created["id"])
    assert len(entries) == 1
    assert entries[0]["from_stage"] is None
    assert entries[0]["to_stage"] == "lead"
    assert entries[0]["user_id"] == team.user_id
    assert entries[0]["reason"] is None
    assert at(entries[0]["at"]) == at(created["stage_changed_at"])


def test_create_without_contact_is_refused_naming_contact_id(api) -> None:
    assert_problem(api.post(URL, json={"score": 5}), 422, "contact_id")


def test_create_with_a_missing_contact_is_not_found_naming_contact_id(api) -> None:
    # When
    resp = api.post(URL, json={"contact_id": 424242})

    # Then
    assert_problem(resp, 404, "contact_id")
    assert api.get(URL).json()["items"] == []


def test_create_with_a_contact_of_another_team_is_not_found(api, client, make_team) -> None:
    # Given
    other = make_team("Globex")
    theirs = client.post("/api/v1/contacts", json={"name": "Hank"}, headers=other.headers)
    assert theirs.status_code == 201, theirs.text

    # When
    resp = api.post(URL, json={"contact_id": theirs.json()["id"]})

    # Then
    assert_problem(resp, 404, "contact_id")


def test_create_with_an_unknown_stage_is_refused(api) -> None:
    resp = api.post(URL, json={"contact_id": new_contact(api), "stage": "prospect"})

    assert_problem(resp, 422, "stage")


def test_create_with_a_missing_owner_is_not_found_naming_owner_id(api) -> None:
    resp = api.post(URL, json={"contact_id": new_contact(api), "owner_id": 424242})

    assert_problem(resp, 404, "owner_id")


def test_history_of_a_missing_lead_is_not_found(api) -> None:
    assert_problem(api.get(f"{URL}/424242/history"), 404)


# --- allowed transitions --------------------------------------------------------------------


def test_walk_through_the_lifecycle_is_recorded_in_history(api, team) -> None:
    # Given
    lead = create(api)
    stages = ["mql", "sal", "opportunity", "customer"]

    # When
    for stage in stages:
        moved = move(api, lead["id"], stage)
        assert moved["stage"] == stage

    # Then
    entries = history(api, lead["id"])
    assert [(e["from_stage"], e["to_stage"]) for e in entries] == [
        (None, "lead"),
        ("lead", "mql"),
        ("mql", "sal"),
        ("sal", "opportunity"),
        ("opportunity", "customer"),
    ]
    assert {e["user_id"] for e in entries} == {team.user_id}
    times = [at(e["at"]) for e in entries]
    assert times == sorted(times)
    assert read(api, lead["id"])["stage"] == "customer"


@pytest.mark.parametrize(
    ("start", "to"),
    [("lead", "mql"), ("mql", "sal"), ("sal", "opportunity"), ("opportunity", "customer")],
)
def test_each_forward_move_is_allowed_and_recorded(api, start, to) -> None:
    # Given
    lead = lead_at(api, start)

    # When
    moved = move(api, lead["id"], to)

    # Then
    assert moved["stage"] == to
    assert (
        history(api, lead["id"])[-1]["from_stage"],
        history(api, lead["id"])[-1]["to_stage"],
    ) == (
        start,
        to,
    )


def test_stage_change_moves_stage_changed_at(api) -> None:
    # Given
    lead = create(api)

    # When
    moved = move(api, lead["id"], "mql")

    # Then
    assert at(moved["stage_changed_at"]) >= at(lead["stage_changed_at"])
    assert at(moved["stage_changed_at"]) == at(history(api, lead["id"])[-1]["at"])


def test_move_by_another_user_of_the_team_is_recorded_with_that_user(
    api, team, engine, client
) -> None:
    # Given
    from server.core.db import make_session_factory, transaction
    from server.core.models import Team, User
    from server.core.services.teams import create_key, ensure_user

    with transaction(make_session_factory(engine)) as session:
        member = ensure_user(
            session, session.get(Team, team.team_id), "rep@acme.test", name="Rep", role="member"
        )
        member_id = member.id
        key = create_key(session, session.get(User, member_id))
    lead = create(api)

    # When
    resp = client.patch(
        f"{URL}/{lead['id']}", json={"stage": "mql"}, headers={"Authorization": f"Bearer {key}"}
    )

    # Then
    assert resp.status_code == 200, resp.text
    assert history(api, lead["id"])[-1]["user_id"] == member_id
    assert history(api, lead["id"])[0]["user_id"] == team.user_id


# --- refused transitions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "to"),
    [
        ("lead", "customer"),
        ("lead", "sal"),
        ("lead", "opportunity"),
        ("mql", "lead"),
        ("mql", "opportunity"),
        ("sal", "mql"),
        ("opportunity", "sal"),
        ("customer", "mql"),
        ("customer", "lead"),
        ("customer", "opportunity"),
    ],
)
def test_disallowed_transition_is_refused_naming_both_stages(api, start, to) -> None:
    # Given
    lead = lead_at(api, start)
    before = history(api, lead["id"])

    # When
    resp = api.patch(f"{URL}/{lead['id']}", json={"stage": to})

    # Then
    problem = assert_problem(resp, 422, "stage")
    assert f"from {start} to {to}" in problem["detail"]
    assert read(api, lead["id"])["stage"] == start
    assert history(api, lead["id"]) == before


def test_customer_cannot_be_recycled(api) -> None:
    lead = lead_at(api, "customer")

    resp = api.patch(f"{URL}/{lead['id']}", json={"stage": "recycled", "stage_reason": "churned"})

    assert_problem(resp, 422, "stage")


def test_refused_transition_changes_no_other_field_either(api) -> None:
    # Given
    lead = create(api, score=10)

    # When
    resp = api.patch(f"{URL}/{lead['id']}", json={"stage": "customer", "score": 99})

    # Then
    assert_problem(resp, 422, "stage")
    assert read(api, lead["id"])["score"] == 10


def test_unknown_stage_in_patch_is_refused(api) -> None:
    lead = create(api)

    assert_problem(api.patch(f"{URL}/{lead['id']}", json={"stage": "won"}), 422, "stage")


# --- recycled -------------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["sal", "opportunity"])
def test_recycling_without_a_reason_is_refused_naming_stage_reason(api, start) -> None:
    # Given
    lead = lead_at(api, start)

    # When
    resp = api.patch(f"{URL}/{lead['id']}", json={"stage": "recycled"})

    # Then
    assert_problem(resp, 422, "stage_reason")
    assert read(api, lead["id"])["stage"] == start


def test_recycling_with_an_empty_reason_is_refused(api) -> None:
    lead = lead_at(api, "sal")

    resp = api.patch(f"{URL}/{lead['id']}", json={"stage": "recycled", "stage_reason": ""})

    assert_problem(resp, 422, "stage_reason")


@pytest.mark.parametrize("start", ["sal", "opportunity"])
def test_recycling_with_a_reason_is_allowed_and_the_reason_kept(api, team, start) -> None:
    # Given
    lead = lead_at(api, start)

    # When
    moved = move(api, lead["id"], "recycled", reason="budget frozen until Q3")

    # Then
    assert moved["stage"] == "recycled"
    last = history(api, lead["id"])[-1]
    assert last == {
        "from_stage": start,
        "to_stage": "recycled",
        "at": last["at"],
        "user_id": team.user_id,
        "reason": "budget frozen until Q3",
    }


@pytest.mark.parametrize("start", ["lead", "mql"])
def test_recycling_from_a_marketing_stage_is_refused(api, start) -> None:
    # Given
    lead = lead_at(api, start)

    # When
    resp = api.patch(f"{URL}/{lead['id']}", json={"stage": "recycled", "stage_reason": "not ready"})

    # Then
    problem = assert_problem(resp, 422, "stage")
    assert f"from {start} to recycled" in problem["detail"]
    assert read(api, lead["id"])["stage"] == start


@pytest.mark.parametrize("to", ["lead", "mql"])
def test_recycled_lead_can_return_to_marketing(api, to) -> None:
    # Given
    lead = lead_at(api, "sal")
    move(api, lead["id"], "recycled", reason="no budget")

    # When
    moved = move(api, lead["id"], to)

    # Then
    assert moved["stage"] == to
    assert history(api, lead["id"])[-1]["from_stage"] == "recycled"


@pytest.mark.parametrize("to", ["sal", "opportunity", "customer"])
def test_recycled_lead_cannot_jump_to_sales(api, to) -> None:
    lead = lead_at(api, "sal")
    move(api, lead["id"], "recycled", reason="no budget")

    assert_problem(api.patch(f"{URL}/{lead['id']}", json={"stage": to}), 422, "stage")


def test_reason_is_kept_on_an_ordinary_move(api) -> None:
    lead = create(api)

    move(api, lead["id"], "mql", reason="downloaded the whitepaper")

    assert history(api, lead["id"])[-1]["reason"] == "downloaded the whitepaper"


def test_stage_reason_without_a_stage_change_is_refused(api) -> None:
    # Given
    lead = create(api)

    # When
    resp = api.patch(f"{URL}/{lead['id']}", json={"stage_reason": "just because"})

    # Then
    assert_problem(resp, 422, "stage_reason")
    assert len(history(api, lead["id"])) == 1


def test_stage_reason_with_the_current_stage_is_refused(api) -> None:
    lead = lead_at(api, "mql")

    resp = api.patch(f"{URL}/{lead['id']}", json={"stage": "mql", "stage_reason": "still mql"})

    assert_problem(resp, 422, "stage_reason")


def test_patch_to_the_current_stage_records_nothing(api) -> None:
    # Given
    lead = lead_at(api, "mql")
    before = history(api, lead["id"])

    # When
    moved = move(api, lead["id"], "mql")

    # Then
    assert moved["stage"] == "mql"
    assert at(moved["stage_changed_at"]) == at(lead["stage_changed_at"])
    assert history(api, lead["id"]) == before


# --- score, owner, custom -------------------------------------------------------------------


def test_score_update_keeps_stage_and_history(api) -> None:
    # Given
    lead = create(api, score=5)

    # When
    resp = api.patch(f"{URL}/{lead['id']}", json={"score": 42})

    # Then
    assert resp.status_code == 200, resp.text
    assert resp.json()["score"] == 42
    assert resp.json()["stage"] == "lead"
    assert read(api, lead["id"])["score"] == 42
    assert len(history(api, lead["id"])) == 1


@pytest.mark.parametrize("score", [1_000_001, -1_000_001, "high", 1.5])
def test_score_out_of_range_or_not_an_integer_is_refused(api, score) -> None:
    lead = create(api)

    assert_problem(api.patch(f"{URL}/{lead['id']}", json={"score": score}), 422, "score")


def test_patch_owner_that_does_not_exist_is_not_found(api) -> None:
    lead = create(api)

    assert_problem(api.patch(f"{URL}/{lead['id']}", json={"owner_id": 424242}), 404, "owner_id")


def test_custom_is_checked_against_lead_domains(api) -> None:
    # Given
    resp = api.put("/api/v1/team", json={"field_domains": {"lead.custom.source": ["web", "event"]}})
    assert resp.status_code == 200, resp.text

    # When
    refused = api.post(URL, json={"contact_id": new_contact(api), "custom": {"source": "tv"}})
    accepted = create(api, custom={"source": "event"})

    # Then
    assert_problem(refused, 422, "custom.source")
    assert accepted["custom"] == {"source": "event"}


def test_duplicate_external_id_is_a_conflict(api) -> None:
    create(api, external_id="mkt-1")

    resp = api.post(URL, json={"contact_id": new_contact(api), "external_id": "mkt-1"})

    assert_problem(resp, 409, "external_id")


def test_patch_to_a_taken_external_id_is_a_conflict(api) -> None:
    # Given
    create(api, external_id="mkt-1")
    other = create(api, external_id="mkt-2")

    # When
    resp = api.patch(f"{URL}/{other['id']}", json={"external_id": "mkt-1"})

    # Then
    assert_problem(resp, 409, "external_id")
    assert read(api, other["id"])["external_id"] == "mkt-2"


def test_same_external_id_in_another_team_is_fine(api, client, make_team) -> None:
    # Given
    other = make_team("Globex")
    contact = client.post("/api/v1/contacts", json={"name": "Hank"}, headers=other.headers)
    theirs = client.post(
        URL,
        json={"contact_id": contact.json()["id"], "external_id": "mkt-1"},
        headers=other.headers,
    )
    assert theirs.status_code == 201, theirs.text

    # When
    mine = create(api, external_id="mkt-1")

    # Then
    assert mine["external_id"] == "mkt-1"


def test_delete_answers_204_and_the_lead_and_history_are_gone(api) -> None:
    # Given
    lead = create(api)

    # When
    resp = api.delete(f"{URL}/{lead['id']}")

    # Then
    assert resp.status_code == 204, resp.text
    assert_problem(api.get(f"{URL}/{lead['id']}"), 404)
    assert_problem(api.get(f"{URL}/{lead['id']}/history"), 404)


# --- lists ----------------------------------------------------------------------------------


def test_list_filters_by_stage(api) -> None:
    # Given
    fresh = create(api)
    qualified = lead_at(api, "mql")
    other_fresh = create(api)

    # When / Then
    assert ids(api.get(URL, params={"stage": "lead"})) == [fresh["id"], other_fresh["id"]]
    assert ids(api.get(URL, params={"stage": "mql"})) == [qualified["id"]]
    assert ids(api.get(URL, params={"stage": "customer"})) == []


def test_list_with_an_unknown_stage_is_refused(api) -> None:
    assert_problem(api.get(URL, params={"stage": "won"}), 422, "stage")


def test_list_filters_by_min_score(api) -> None:
    # Given
    cold = create(api, score=5)
    warm = create(api, score=50)
    hot = create(api, score=90)

    # When / Then
    assert ids(api.get(URL, params={"min_score": 50})) == [warm["id"], hot["id"]]
    assert ids(api.get(URL, params={"min_score": 91})) == []
    assert ids(api.get(URL, params={"min_score": -10})) == [cold["id"], warm["id"], hot["id"]]


def test_list_filters_by_stage_and_min_score_together(api) -> None:
    create(api, score=90)
    hot_mql = lead_at(api, "mql")
    api.patch(f"{URL}/{hot_mql['id']}", json={"score": 80})
    lead_at(api, "mql")

    assert ids(api.get(URL, params={"stage": "mql", "min_score": 50})) == [hot_mql["id"]]


def test_list_filters_by_contact(api) -> None:
    contact_id = new_contact(api, "Peter")
    create(api)
    mine = create(api, contact_id=contact_id)

    assert ids(api.get(URL, params={"contact_id": contact_id})) == [mine["id"]]


def test_list_pages_through_leads_with_a_cursor_and_filters(api) -> None:
    # Given five leads, two of them moved to mql
    made = [create(api, contact_id=new_contact(api, f"C{n}"))["id"] for n in range(5)]
    for lead_id in made[1:3]:
        move(api, lead_id, "mql")

    # When every lead is read two a page, and the mql ones one a page
    pages, cursor = [], None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = api.get(URL, params=params).json()
        pages.append([lead["id"] for lead in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    first = api.get(URL, params={"stage": "mql", "limit": 1}).json()
    second = api.get(URL, params={"stage": "mql", "limit": 1, "cursor": first["next_cursor"]}).json()

    # Then every lead comes once, in order, and the filter holds on every page
    assert pages == [made[0:2], made[2:4], made[4:5]]
    assert [first["items"][0]["id"], second["items"][0]["id"]] == made[1:3]
    assert second["next_cursor"] is None
