"""Deals through the HTTP API: lead source, weighted amount, status, stage, currency, lists."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from helpers import assert_problem, at
from sqlalchemy import Engine

from server.core.db import make_session_factory, transaction
from server.core.models import Team
from server.core.services.teams import ensure_user

URL = "/api/v1/deals"




def create(api: Any, **fields: Any) -> dict[str, Any]:
    resp = api.post(URL, json={"title": "Initech TPS portal", **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


def patch(api: Any, deal_id: int, **fields: Any) -> dict[str, Any]:
    resp = api.patch(f"{URL}/{deal_id}", json=fields)
    assert resp.status_code == 200, resp.text
    return resp.json()


def read(api: Any, deal_id: int) -> dict[str, Any]:
    resp = api.get(f"{URL}/{deal_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def ids(resp: Any) -> list[int]:
    assert resp.status_code == 200, resp.text
    return [item["id"] for item in resp.json()["items"]]


def set_domains(api: Any, domains: dict[str, list[str]]) -> None:
    resp = api.put("/api/v1/team", json={"field_domains": domains})
    assert resp.status_code == 200, resp.text


def new_outreach(api: Any) -> int:
    resp = api.post("/api/v1/outreach", json={"type": "call", "phone": "+1 555 0100"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def new_contact(api: Any, **fields: Any) -> int:
    resp = api.post("/api/v1/contacts", json={"name": "Bill Lumbergh", **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def add_member(engine: Engine, team_id: int, email: str = "rep@acme.test") -> int:
    """Another user of the same team (there is no HTTP endpoint for users)."""
    with transaction(make_session_factory(engine)) as session:
        team = session.get(Team, team_id)
        return ensure_user(session, team, email, name="Rep", role="member").id


# --- create, read, delete -------------------------------------------------------------------


def test_create_returns_the_deal_with_defaults(api, team) -> None:
    created = create(api)

    assert created["title"] == "Initech TPS portal"
    assert created["status"] == "open"
    assert created["currency"] == "USD"
    assert created["amount"] == 0
    assert created["probability"] is None
    assert created["weighted_amount"] is None
    assert created["closed_at"] is None
    assert created["owner_id"] == team.user_id
    assert created["created_by_id"] == team.user_id
    assert created["custom"] == {}
    assert read(api, created["id"]) == created


def test_delete_answers_204_and_the_deal_is_gone(api) -> None:
    # Given
    created = create(api)

    # When
    resp = api.delete(f"{URL}/{created['id']}")

    # Then
    assert resp.status_code == 204, resp.text
    assert_problem(api.get(f"{URL}/{created['id']}"), 404)
    assert_problem(api.delete(f"{URL}/{created['id']}"), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "x", "status": "pending"}, "status"),
        ({"title": "x", "amount": "lots"}, "amount"),
        ({"title": "x", "expected_close_date": "soon"}, "expected_close_date"),
        ({"title": "x", "colour": "red"}, "colour"),
    ],
)
def test_create_with_a_bad_field_is_refused_naming_it(api, body, field) -> None:
    assert_problem(api.post(URL, json=body), 422, field)


# --- lead source ----------------------------------------------------------------------------


def test_deal_inherits_the_contact_outreach_when_none_is_given(api) -> None:
    # Given
    outreach_id = new_outreach(api)
    contact_id = new_contact(api, outreach_id=outreach_id)

    # When
    created = create(api, contact_id=contact_id)

    # Then
    assert created["contact_id"] == contact_id
    assert created["outreach_id"] == outreach_id
    assert read(api, created["id"])["outreach_id"] == outreach_id


def test_explicit_outreach_wins_over_the_contact_outreach(api) -> None:
    # Given
    contact_source, deal_source = new_outreach(api), new_outreach(api)
    contact_id = new_contact(api, outreach_id=contact_source)

    # When
    created = create(api, contact_id=contact_id, outreach_id=deal_source)

    # Then
    assert created["outreach_id"] == deal_source


def test_contact_without_outreach_leaves_the_deal_without_one(api) -> None:
    created = create(api, contact_id=new_contact(api))

    assert created["outreach_id"] is None


@pytest.mark.parametrize("field", ["contact_id", "outreach_id", "owner_id"])
def test_reference_that_does_not_exist_is_not_found_naming_it(api, field) -> None:
    assert_problem(api.post(URL, json={"title": "x", field: 424242}), 404, field)


def test_contact_of_another_team_is_not_found_naming_contact_id(api, client, make_team) -> None:
    # Given
    other = make_team("Globex")
    theirs = client.post("/api/v1/contacts", json={"name": "Hank"}, headers=other.headers)
    assert theirs.status_code == 201, theirs.text

    # When
    resp = api.post(URL, json={"title": "x", "contact_id": theirs.json()["id"]})

    # Then
    assert_problem(resp, 404, "contact_id")


def test_owner_of_the_same_team_is_kept(api, team, engine) -> None:
    member_id = add_member(engine, team.team_id)

    created = create(api, owner_id=member_id)

    assert created["owner_id"] == member_id
    assert created["created_by_id"] == team.user_id


# --- weighted amount ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "probability", "weighted"),
    [(1000, 30, 300.0), (250.5, 40, 100.2), (0, 80, 0.0), (12345.67, 100, 12345.67), (999, 0, 0.0)],
)
def test_weighted_amount_is_amount_times_probability(api, amount, probability, weighted) -> None:
    created = create(api, amount=amount, probability=probability)

    assert created["weighted_amount"] == weighted
    assert read(api, created["id"])["weighted_amount"] == weighted


def test_weighted_amount_is_recomputed_when_amount_changes(api) -> None:
    # Given
    created = create(api, amount=1000, probability=30)

    # When
    patched = patch(api, created["id"], amount=2000)

    # Then
    assert patched["amount"] == 2000
    assert patched["weighted_amount"] == 600.0
    assert read(api, created["id"])["weighted_amount"] == 600.0


def test_weighted_amount_is_recomputed_when_probability_changes(api) -> None:
    # Given
    created = create(api, amount=1000, probability=30)

    # When
    patched = patch(api, created["id"], probability=75)

    # Then
    assert patched["weighted_amount"] == 750.0
    assert read(api, created["id"])["weighted_amount"] == 750.0


def test_clearing_probability_clears_the_weighted_amount(api) -> None:
    created = create(api, amount=1000, probability=30)

    patched = patch(api, created["id"], probability=None)

    assert patched["probability"] is None
    assert patched["weighted_amount"] is None


def test_patch_of_another_field_keeps_the_weighted_amount(api) -> None:
    created = create(api, amount=1000, probability=30)

    patched = patch(api, created["id"], title="Initech TPS portal, phase 2")

    assert patched["title"] == "Initech TPS portal, phase 2"
    assert (patched["amount"], patched["probability"], patched["weighted_amount"]) == (
        1000,
        30,
        300.0,
    )


@pytest.mark.parametrize("probability", [-1, 101, 1000])
def test_probability_outside_0_to_100_is_refused(api, probability) -> None:
    assert_problem(
        api.post(URL, json={"title": "x", "probability": probability}), 422, "probability"
    )


@pytest.mark.parametrize("probability", [-5, 150])
def test_patch_probability_outside_0_to_100_is_refused(api, probability) -> None:
    # Given
    created = create(api, amount=100, probability=50)

    # When
    resp = api.patch(f"{URL}/{created['id']}", json={"probability": probability})

    # Then
    assert_problem(resp, 422, "probability")
    assert read(api, created["id"])["probability"] == 50


@pytest.mark.parametrize("amount", [-1, -0.01])
def test_negative_amount_is_refused(api, amount) -> None:
    assert_problem(api.post(URL, json={"title": "x", "amount": amount}), 422, "amount")


def test_patch_negative_amount_is_refused(api) -> None:
    created = create(api, amount=100)

    assert_problem(api.patch(f"{URL}/{created['id']}", json={"amount": -100}), 422, "amount")
    assert read(api, created["id"])["amount"] == 100


def test_absurdly_large_amount_is_refused(api) -> None:
    assert_problem(api.post(URL, json={"title": "x", "amount": 1e13}), 422, "amount")


def test_amount_is_kept_to_the_cent(api) -> None:
    created = create(api, amount=1999.99, probability=50)

    assert created["amount"] == 1999.99
    assert read(api, created["id"])["amount"] == 1999.99


# --- status ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", [None, 0, 20, 100])
def test_won_deal_has_probability_100_whatever_is_sent(api, sent) -> None:
    created = create(api, amount=500, probability=sent, status="won")

    assert created["probability"] == 100
    assert created["weighted_amount"] == 500.0


@pytest.mark.parametrize("status", ["lost", "cancelled"])
@pytest.mark.parametrize("sent", [None, 60, 100])
def test_lost_or_cancelled_deal_has_probability_0(api, status, sent) -> None:
    created = create(api, amount=500, probability=sent, status=status)

    assert created["probability"] == 0
    assert created["weighted_amount"] == 0.0


@pytest.mark.parametrize(("status", "probability"), [("won", 100), ("lost", 0), ("cancelled", 0)])
def test_closing_a_deal_sets_probability_and_closed_at(api, status, probability) -> None:
    # Given
    created = create(api, amount=800, probability=40)
    before = dt.datetime.now(dt.UTC)

    # When
    closed = patch(api, created["id"], status=status)

    # Then
    after = dt.datetime.now(dt.UTC)
    slack = dt.timedelta(seconds=1)
    assert closed["status"] == status
    assert closed["probability"] == probability
    assert closed["weighted_amount"] == 800 * probability / 100
    assert closed["closed_at"] is not None
    assert before - slack <= at(closed["closed_at"]) <= after + slack
    assert read(api, created["id"])["closed_at"] is not None


def test_probability_of_a_won_deal_cannot_be_lowered(api) -> None:
    created = create(api, amount=800, status="won")

    patched = patch(api, created["id"], probability=10)

    assert patched["probability"] == 100
    assert patched["weighted_amount"] == 800.0


def test_closed_at_stays_when_a_closed_deal_is_edited(api) -> None:
    # Given
    created = create(api, status="won")

    # When
    patched = patch(api, created["id"], title="Renamed")

    # Then
    assert at(patched["closed_at"]) == at(created["closed_at"])


def test_reopening_a_deal_clears_closed_at(api) -> None:
    # Given
    created = create(api, amount=800, status="lost")
    assert created["closed_at"] is not None

    # When
    reopened = patch(api, created["id"], status="open", probability=25)

    # Then
    assert reopened["status"] == "open"
    assert reopened["closed_at"] is None
    assert reopened["probability"] == 25
    assert reopened["weighted_amount"] == 200.0
    assert read(api, created["id"])["closed_at"] is None


def test_open_deal_has_no_closed_at(api) -> None:
    assert create(api, status="open", probability=50)["closed_at"] is None


# --- stage ----------------------------------------------------------------------------------


def test_stage_defaults_to_new_without_a_domain(api) -> None:
    assert create(api)["stage"] == "new"


def test_stage_defaults_to_the_first_value_of_the_team_domain(api) -> None:
    set_domains(api, {"deal.stage": ["qualification", "discovery", "proposal"]})

    assert create(api)["stage"] == "qualification"


def test_stage_without_domain_is_free(api) -> None:
    assert create(api, stage="whatever-we-call-it")["stage"] == "whatever-we-call-it"


def test_stage_inside_the_domain_is_accepted(api) -> None:
    set_domains(api, {"deal.stage": ["qualification", "discovery", "proposal"]})

    assert create(api, stage="proposal")["stage"] == "proposal"


def test_stage_outside_the_domain_is_refused(api) -> None:
    # Given
    set_domains(api, {"deal.stage": ["qualification", "discovery", "proposal"]})

    # When
    resp = api.post(URL, json={"title": "x", "stage": "negotiation"})

    # Then
    problem = assert_problem(resp, 422, "stage")
    assert "negotiation" in problem["detail"]
    assert api.get(URL).json()["items"] == []


def test_patch_stage_outside_the_domain_is_refused(api) -> None:
    # Given
    set_domains(api, {"deal.stage": ["qualification", "proposal"]})
    created = create(api)

    # When
    resp = api.patch(f"{URL}/{created['id']}", json={"stage": "closing"})

    # Then
    assert_problem(resp, 422, "stage")
    assert read(api, created["id"])["stage"] == "qualification"


def test_patch_stage_inside_the_domain_is_accepted(api) -> None:
    set_domains(api, {"deal.stage": ["qualification", "proposal"]})
    created = create(api)

    assert patch(api, created["id"], stage="proposal")["stage"] == "proposal"


# --- custom fields --------------------------------------------------------------------------


def test_custom_value_outside_the_deal_domain_is_refused(api) -> None:
    set_domains(api, {"deal.custom.proposal_type": ["firm", "budgetary"]})

    resp = api.post(URL, json={"title": "x", "custom": {"proposal_type": "rough"}})

    assert_problem(resp, 422, "custom.proposal_type")


def test_custom_value_inside_the_deal_domain_is_accepted(api) -> None:
    set_domains(api, {"deal.custom.proposal_type": ["firm", "budgetary"]})

    created = create(api, custom={"proposal_type": "firm", "relationship": "medium"})

    assert created["custom"] == {"proposal_type": "firm", "relationship": "medium"}


def test_contact_domain_does_not_apply_to_deals(api) -> None:
    set_domains(api, {"contact.custom.proposal_type": ["firm"]})

    created = create(api, custom={"proposal_type": "budgetary"})

    assert created["custom"] == {"proposal_type": "budgetary"}


def test_patch_custom_merges_and_checks_the_domain(api) -> None:
    # Given
    set_domains(api, {"deal.custom.proposal_type": ["firm", "budgetary"]})
    created = create(api, custom={"proposal_type": "firm", "relationship": "medium"})

    # When
    refused = api.patch(f"{URL}/{created['id']}", json={"custom": {"proposal_type": "rough"}})
    merged = patch(api, created["id"], custom={"proposal_type": "budgetary", "relationship": None})

    # Then
    assert_problem(refused, 422, "custom.proposal_type")
    assert merged["custom"] == {"proposal_type": "budgetary"}
    assert read(api, created["id"])["custom"] == {"proposal_type": "budgetary"}


# --- currency -------------------------------------------------------------------------------


@pytest.mark.parametrize("currency", ["usd", "Eur", "US", "EURO", "U5D", "", "€€€"])
def test_currency_must_be_three_upper_case_letters(api, currency) -> None:
    assert_problem(api.post(URL, json={"title": "x", "currency": currency}), 422, "currency")


def test_patch_currency_must_be_three_upper_case_letters(api) -> None:
    created = create(api, currency="EUR")

    assert_problem(api.patch(f"{URL}/{created['id']}", json={"currency": "eur"}), 422, "currency")
    assert read(api, created["id"])["currency"] == "EUR"


def test_currency_is_kept(api) -> None:
    assert create(api, currency="JPY")["currency"] == "JPY"


def test_currency_outside_the_team_domain_is_refused(api) -> None:
    set_domains(api, {"deal.currency": ["EUR", "USD"]})

    assert_problem(api.post(URL, json={"title": "x", "currency": "GBP"}), 422, "currency")
    assert create(api, currency="EUR")["currency"] == "EUR"


# --- external_id ----------------------------------------------------------------------------


def test_duplicate_external_id_in_the_team_is_a_conflict(api) -> None:
    # Given
    create(api, external_id="erp-42")

    # When
    resp = api.post(URL, json={"title": "Another", "external_id": "erp-42"})

    # Then
    assert_problem(resp, 409, "external_id")
    assert len(api.get(URL).json()["items"]) == 1


def test_patch_to_a_taken_external_id_is_a_conflict(api) -> None:
    # Given
    create(api, external_id="erp-42")
    other = create(api, external_id="erp-43")

    # When
    resp = api.patch(f"{URL}/{other['id']}", json={"external_id": "erp-42"})

    # Then
    assert_problem(resp, 409, "external_id")
    assert read(api, other["id"])["external_id"] == "erp-43"


def test_same_external_id_in_another_team_is_fine(api, client, make_team) -> None:
    # Given
    other = make_team("Globex")
    theirs = client.post(
        URL, json={"title": "Theirs", "external_id": "erp-42"}, headers=other.headers
    )
    assert theirs.status_code == 201, theirs.text

    # When
    mine = create(api, external_id="erp-42")

    # Then
    assert mine["external_id"] == "erp-42"


def test_deals_without_external_id_do_not_conflict(api) -> None:
    create(api)

    assert create(api)["external_id"] is None


# --- lists ----------------------------------------------------------------------------------


def test_list_filters_by_stage_and_status(api) -> None:
    # Given
    proposal = create(api, stage="proposal")
    create(api, stage="discovery")
    won = create(api, stage="proposal", status="won")

    # When / Then
    assert ids(api.get(URL, params={"stage": "proposal"})) == [proposal["id"], won["id"]]
    assert ids(api.get(URL, params={"status": "won"})) == [won["id"]]
    assert ids(api.get(URL, params={"stage": "proposal", "status": "open"})) == [proposal["id"]]


def test_list_with_an_unknown_status_is_refused(api) -> None:
    assert_problem(api.get(URL, params={"status": "pending"}), 422, "status")


def test_list_filters_by_contact_and_owner(api, team, engine) -> None:
    # Given
    member_id = add_member(engine, team.team_id)
    bill, peter = new_contact(api), new_contact(api, name="Peter")
    for_bill = create(api, contact_id=bill)
    for_peter = create(api, contact_id=peter, owner_id=member_id)

    # When / Then
    assert ids(api.get(URL, params={"contact_id": bill})) == [for_bill["id"]]
    assert ids(api.get(URL, params={"owner_id": member_id})) == [for_peter["id"]]
    assert ids(api.get(URL, params={"owner_id": team.user_id})) == [for_bill["id"]]


def test_list_filters_by_outreach(api) -> None:
    source = new_outreach(api)
    sourced = create(api, contact_id=new_contact(api, outreach_id=source))
    create(api)

    assert ids(api.get(URL, params={"outreach_id": source})) == [sourced["id"]]


def test_list_filters_by_expected_close_window(api) -> None:
    # Given
    march = create(api, expected_close_date="2026-03-10")
    april = create(api, expected_close_date="2026-04-10")
    may = create(api, expected_close_date="2026-05-10")
    create(api)

    # When / Then
    assert ids(api.get(URL, params={"close_from": "2026-04-01"})) == [april["id"], may["id"]]
    assert ids(api.get(URL, params={"close_to": "2026-04-30"})) == [march["id"], april["id"]]
    assert ids(api.get(URL, params={"close_from": "2026-04-01", "close_to": "2026-04-30"})) == [
        april["id"]
    ]


def test_close_from_includes_the_day_itself(api) -> None:
    created = create(api, expected_close_date="2026-04-10")

    assert ids(api.get(URL, params={"close_from": "2026-04-10"})) == [created["id"]]
    assert ids(api.get(URL, params={"close_from": "2026-04-11"})) == []


def test_list_with_a_bad_close_date_is_refused(api) -> None:
    assert_problem(api.get(URL, params={"close_from": "next month"}), 422, "close_from")


def test_list_pages_through_deals(api) -> None:
    # Given
    created = [create(api, title=f"D{n}")["id"] for n in range(3)]

    # When
    first = api.get(URL, params={"limit": 2}).json()
    second = api.get(URL, params={"limit": 2, "cursor": first["next_cursor"]}).json()

    # Then
    assert [d["id"] for d in first["items"] + second["items"]] == created
    assert first["next_cursor"] is not None
    assert second["next_cursor"] is None
