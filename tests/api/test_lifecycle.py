"""The lead lifecycle as a whole: every pair of stages is allowed or refused as the lifecycle
says (the refusal naming the pair), recycling needs a reason, history keeps time and user,
each stage has an owner side in the team settings, and a lead can be given to the next user
of a side."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from helpers import assert_problem, at

from server.core.db import make_session_factory, transaction
from server.core.models import Team
from server.core.models.lead import STAGES, TRANSITIONS
from server.core.scope import Actor, TeamScope
from server.core.services import leads
from server.core.services.teams import ensure_user

URL = "/api/v1/leads"
# Allowed moves from a new lead to each stage.
PATH_TO = {
    "lead": [],
    "mql": ["mql"],
    "sal": ["mql", "sal"],
    "opportunity": ["mql", "sal", "opportunity"],
    "customer": ["mql", "sal", "opportunity", "customer"],
    "recycled": ["mql", "sal", "recycled"],
}
DEFAULT_OWNERS = {
    "lead": "marketing",
    "mql": "marketing",
    "sal": "sales",
    "opportunity": "sales",
    "customer": "sales",
    "recycled": "marketing",
}


def new_lead(api: Any, **fields: Any) -> dict[str, Any]:
    contact = api.post("/api/v1/contacts", json={"name": "Bill", "email": "bill@initech.example"})
    assert contact.status_code == 201, contact.text
    resp = api.post(URL, json={"contact_id": contact.json()["id"], **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


def lead_at(api: Any, stage: str) -> dict[str, Any]:
    lead = new_lead(api)
    for step in PATH_TO[stage]:
        body = {"stage": step, **({"stage_reason": "no budget"} if step == "recycled" else {})}
        resp = api.patch(f"{URL}/{lead['id']}", json=body)
        assert resp.status_code == 200, resp.text
        lead = resp.json()
    return lead


def history(api: Any, lead_id: int) -> list[dict[str, Any]]:
    resp = api.get(f"{URL}/{lead_id}/history")
    assert resp.status_code == 200, resp.text
    return resp.json()


PAIRS = [(a, b) for a, b in itertools.product(STAGES, STAGES) if a != b]


@pytest.mark.parametrize(("start", "to"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_every_pair_of_stages_is_allowed_or_refused_as_the_lifecycle_says(
    api, team, start: str, to: str
) -> None:
    # Given a lead at ``start``
    lead = lead_at(api, start)
    before = history(api, lead["id"])

    # When it is moved to ``to`` (with a reason, so that only the pair decides)
    resp = api.patch(f"{URL}/{lead['id']}", json={"stage": to, "stage_reason": "because"})

    # Then an allowed move is recorded with time, user and reason; any other is a 422
    # naming both stages, and nothing changed
    if to in TRANSITIONS[start]:
        assert resp.status_code == 200, resp.text
        last = history(api, lead["id"])[-1]
        assert (last["from_stage"], last["to_stage"], last["user_id"], last["reason"]) == (
            start,
            to,
            team.user_id,
            "because",
        )
        assert at(last["at"]) == at(resp.json()["stage_changed_at"])
    else:
        problem = assert_problem(resp, 422, "stage")
        assert f"from {start} to {to}" in problem["detail"]
        assert history(api, lead["id"]) == before


def test_the_allowed_moves_are_the_documented_ones() -> None:
    assert {a: set(b) for a, b in TRANSITIONS.items()} == {
        "lead": {"mql"},
        "mql": {"sal"},
        "sal": {"opportunity", "recycled"},
        "opportunity": {"customer", "recycled"},
        "customer": set(),
        "recycled": {"lead", "mql"},
    }


@pytest.mark.parametrize("start", ["sal", "opportunity"])
def test_recycling_needs_a_reason_and_keeps_it(api, team, start: str) -> None:
    # Given a sales lead
    lead = lead_at(api, start)

    # When it is recycled without, then with a reason
    refused = api.patch(f"{URL}/{lead['id']}", json={"stage": "recycled"})
    moved = api.patch(
        f"{URL}/{lead['id']}", json={"stage": "recycled", "stage_reason": "no budget until Q3"}
    )

    # Then the first is refused naming stage_reason; the second is in the history
    assert_problem(refused, 422, "stage_reason")
    assert moved.status_code == 200, moved.text
    last = history(api, lead["id"])[-1]
    assert (last["from_stage"], last["to_stage"], last["reason"], last["user_id"]) == (
        start,
        "recycled",
        "no budget until Q3",
        team.user_id,
    )


# --- stage owners ------------------------------------------------------------------------------


def test_each_stage_has_an_owner_side_by_default(api) -> None:
    assert api.get("/api/v1/team").json()["settings"]["stage_owners"] == DEFAULT_OWNERS


def test_stage_owners_left_out_keep_their_default_side(api) -> None:
    resp = api.put("/api/v1/team", json={"settings": {"stage_owners": {"sal": "marketing"}}})

    assert resp.status_code == 200, resp.text
    assert resp.json()["settings"]["stage_owners"] == {**DEFAULT_OWNERS, "sal": "marketing"}


def test_an_unknown_side_is_refused(api) -> None:
    resp = api.put("/api/v1/team", json={"settings": {"stage_owners": {"sal": "finance"}}})

    problem = assert_problem(resp, 422)
    assert problem["field"].startswith("settings"), problem


# --- giving a lead to the next user of a side ----------------------------------------------


@pytest.fixture
def sellers(api, team, engine) -> list[int]:
    with transaction(make_session_factory(engine)) as session:
        acme = session.get(Team, team.team_id)
        ids = [
            ensure_user(session, acme, f"{n}@acme.test", name=n, role="member").id
            for n in ("maria", "jonas", "li")
        ]
    resp = api.put("/api/v1/team", json={"settings": {"sales_users": ids}})
    assert resp.status_code == 200, resp.text
    return ids


def test_assign_owner_goes_round_robin_by_load(api, sellers: list[int]) -> None:
    # Given four sales leads
    ids = [lead_at(api, "sal")["id"] for _ in range(4)]

    # When each is given to the next sales user
    owners = []
    for lead_id in ids:
        resp = api.patch(f"{URL}/{lead_id}", json={"assign_owner": "sales"})
        assert resp.status_code == 200, resp.text
        owners.append(resp.json()["owner_id"])

    # Then the three users get one each in list order, and the fourth goes to the first
    assert owners == [*sellers, sellers[0]]


def test_a_lead_leaving_the_sales_stages_frees_its_owner(api, sellers: list[int]) -> None:
    # Given the first two users hold a sales lead each and the third holds one that is won
    first, second, third = (lead_at(api, "opportunity")["id"] for _ in range(3))
    for lead_id in (first, second, third):
        api.patch(f"{URL}/{lead_id}", json={"assign_owner": "sales"})
    # the won lead still counts as sales (customer is a sales stage by default)...
    api.patch(f"{URL}/{third}", json={"stage": "customer"})
    # ...but one recycled back to marketing no longer does
    api.patch(f"{URL}/{first}", json={"stage": "recycled", "stage_reason": "later"})

    # When the next lead is given out
    fresh = lead_at(api, "sal")["id"]
    owner = api.patch(f"{URL}/{fresh}", json={"assign_owner": "sales"}).json()["owner_id"]

    # Then it goes to the user with the fewest sales leads: the first
    assert owner == sellers[0]


def test_assign_owner_without_sales_users_is_refused(api) -> None:
    lead = lead_at(api, "sal")

    resp = api.patch(f"{URL}/{lead['id']}", json={"assign_owner": "sales"})

    problem = assert_problem(resp, 422, "assign_owner")
    assert "settings.sales_users" in problem["detail"]


def test_assign_owner_and_owner_id_together_are_refused(api, sellers: list[int]) -> None:
    lead = lead_at(api, "sal")

    resp = api.patch(
        f"{URL}/{lead['id']}", json={"assign_owner": "sales", "owner_id": sellers[1]}
    )

    assert_problem(resp, 422, "assign_owner")


# --- qualification -------------------------------------------------------------------------


def test_qualifies_names_the_missing_fields(api, team, engine) -> None:
    # Given a rule over the contact and the lead, and a lead missing the phone
    rule = {
        "score_threshold": 50,
        "required_fields": ["contact.email", "contact.phone", "lead.custom.industry"],
        "condition": "lead.custom.industry == 'retail' && contact.email != null",
    }
    assert api.put("/api/v1/team", json={"settings": {"qualification": rule}}).status_code == 200
    lead = new_lead(api, score=60, custom={"industry": "retail"})

    # When the service checks it, before and after the phone is filled in
    with transaction(make_session_factory(engine)) as session:
        scope = TeamScope(session, Actor(team.team_id, team.user_id))
        before = leads.qualifies(scope, lead["id"])
    patched = api.patch(
        f"/api/v1/contacts/{lead['contact_id']}", json={"phone": "+49 30 1234567"}
    )
    assert patched.status_code == 200, patched.text
    with transaction(make_session_factory(engine)) as session:
        scope = TeamScope(session, Actor(team.team_id, team.user_id))
        after = leads.qualifies(scope, lead["id"])

    # Then
    assert before == (False, ["contact.phone"])
    assert after == (True, [])
