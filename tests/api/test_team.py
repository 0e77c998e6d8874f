"""The caller's team through the HTTP API: name, timezone, settings and field domains."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import assert_problem

URL = "/api/v1/team"

DEFAULT_STAGE_OWNERS = {
    "lead": "marketing",
    "mql": "marketing",
    "sal": "sales",
    "opportunity": "sales",
    "customer": "sales",
    "recycled": "marketing",
}



def put(api: Any, body: dict[str, Any]) -> dict[str, Any]:
    resp = api.put(URL, json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def read(api: Any) -> dict[str, Any]:
    resp = api.get(URL)
    assert resp.status_code == 200, resp.text
    return resp.json()


# --- GET ------------------------------------------------------------------------------------


def test_get_returns_name_timezone_default_settings_and_no_domains(api, team) -> None:
    body = read(api)

    assert body == {
        "id": team.team_id,
        "name": "Acme",
        "timezone": "UTC",
        "settings": {
            "notification_channels": [],
            "outreach_costs": {},
            "stage_owners": DEFAULT_STAGE_OWNERS,
            "stage_sla_hours": {},
        },
        "field_domains": {},
    }


def test_get_returns_the_team_of_the_key(client, make_team) -> None:
    # Given
    berlin = make_team("Berliner", timezone="Europe/Berlin")

    # When
    resp = client.get(URL, headers=berlin.headers)

    # Then
    assert resp.status_code == 200, resp.text
    assert (resp.json()["id"], resp.json()["name"], resp.json()["timezone"]) == (
        berlin.team_id,
        "Berliner",
        "Europe/Berlin",
    )


def test_get_without_a_key_is_unauthorized(client) -> None:
    resp = client.get(URL)

    assert_problem(resp, 401)
    assert resp.headers["www-authenticate"].startswith("Bearer")


# --- name and timezone ----------------------------------------------------------------------


@pytest.mark.parametrize("timezone", ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"])
def test_put_changes_the_timezone(api, timezone) -> None:
    # When
    body = put(api, {"timezone": timezone})

    # Then
    assert body["timezone"] == timezone
    assert read(api)["timezone"] == timezone


@pytest.mark.parametrize(
    "timezone", ["Mars/Olympus_Mons", "CEST+2", "", "../../etc/passwd", "Europe/Atlantis"]
)
def test_put_invalid_timezone_is_refused_naming_timezone(api, timezone) -> None:
    # Given
    put(api, {"timezone": "Europe/Berlin"})

    # When
    resp = api.put(URL, json={"timezone": timezone})

    # Then
    assert_problem(resp, 422, "timezone")
    assert read(api)["timezone"] == "Europe/Berlin"


def test_put_keeps_what_it_is_not_given(api) -> None:
    # Given
    put(
        api,
        {
            "timezone": "Europe/Berlin",
            "settings": {"notification_channels": ["slack"]},
            "field_domains": {"deal.stage": ["new", "won"]},
        },
    )

    # When
    body = put(api, {"name": "Acme Sales"})

    # Then
    assert body["name"] == "Acme Sales"
    assert body["timezone"] == "Europe/Berlin"
    assert body["settings"]["notification_channels"] == ["slack"]
    assert body["field_domains"] == {"deal.stage": ["new", "won"]}
    assert read(api) == body


def test_put_name_of_another_team_is_a_conflict(api, make_team) -> None:
    # Given
    make_team("Globex")

    # When
    resp = api.put(URL, json={"name": "Globex"})

    # Then
    assert_problem(resp, 409, "name")
    assert read(api)["name"] == "Acme"


def test_put_empty_name_is_refused(api) -> None:
    assert_problem(api.put(URL, json={"name": ""}), 422, "name")


def test_put_unknown_field_is_refused(api) -> None:
    assert_problem(api.put(URL, json={"currency": "EUR"}), 422, "currency")


# --- settings -------------------------------------------------------------------------------


def test_put_settings_keeps_defaults_for_parts_left_out(api) -> None:
    # When
    body = put(api, {"settings": {"notification_channels": ["slack", "email"]}})

    # Then
    assert body["settings"] == {
        "notification_channels": ["slack", "email"],
        "outreach_costs": {},
        "stage_owners": DEFAULT_STAGE_OWNERS,
        "stage_sla_hours": {},
    }
    assert read(api)["settings"] == body["settings"]


def test_put_settings_round_trips_every_part(api) -> None:
    settings = {
        "notification_channels": ["telegram"],
        "outreach_costs": {"email": 0.05, "call": 2.5},
        "stage_owners": {**DEFAULT_STAGE_OWNERS, "sal": "marketing"},
        "stage_sla_hours": {"mql": 24, "sal": 48},
    }

    body = put(api, {"settings": settings})

    assert body["settings"] == settings
    assert read(api)["settings"] == settings


@pytest.mark.parametrize(
    "settings",
    [
        {"colour": "blue"},
        {"notification_channels": ["pager"]},
        {"outreach_costs": {"fax": 1}},
        {"outreach_costs": {"email": -1}},
        {"stage_owners": {"mql": "finance"}},
        {"stage_sla_hours": {"sal": 0}},
        {"stage_sla_hours": {"won": 4}},
    ],
)
def test_put_invalid_settings_are_refused(api, settings) -> None:
    # Given
    put(api, {"settings": {"notification_channels": ["email"]}})

    # When
    resp = api.put(URL, json={"settings": settings})

    # Then
    problem = assert_problem(resp, 422)
    assert problem["field"].startswith("settings"), problem
    assert read(api)["settings"]["notification_channels"] == ["email"]


def test_put_unknown_settings_key_names_it(api) -> None:
    problem = assert_problem(api.put(URL, json={"settings": {"colour": "blue"}}), 422)

    assert problem["field"] == "settings.colour"


# --- field domains --------------------------------------------------------------------------


def test_put_field_domains_are_returned(api) -> None:
    domains = {
        "deal.stage": ["qualification", "discovery", "proposal", "negotiation"],
        "deal.currency": ["EUR", "USD"],
        "deal.custom.proposal_type": ["firm", "budgetary"],
        "contact.custom.segment": ["smb", "enterprise"],
        "lead.custom.source": ["web"],
    }

    body = put(api, {"field_domains": domains})

    assert body["field_domains"] == domains
    assert read(api)["field_domains"] == domains


def test_put_field_domains_replaces_the_whole_map(api) -> None:
    # Given
    put(api, {"field_domains": {"deal.stage": ["a", "b"], "deal.custom.kind": ["x"]}})

    # When
    body = put(api, {"field_domains": {"contact.custom.segment": ["smb"]}})

    # Then
    assert body["field_domains"] == {"contact.custom.segment": ["smb"]}
    assert read(api)["field_domains"] == {"contact.custom.segment": ["smb"]}


def test_put_field_domains_keeps_the_value_order(api) -> None:
    body = put(api, {"field_domains": {"deal.stage": ["zeta", "alpha", "mid"]}})

    assert body["field_domains"]["deal.stage"] == ["zeta", "alpha", "mid"]


def test_put_empty_field_domains_clears_them(api) -> None:
    # Given
    put(api, {"field_domains": {"deal.stage": ["a", "b"]}})

    # When
    body = put(api, {"field_domains": {}})

    # Then
    assert body["field_domains"] == {}
    resp = api.post("/api/v1/deals", json={"title": "x", "stage": "anything"})
    assert resp.status_code == 201, resp.text


def test_replaced_domain_no_longer_applies(api) -> None:
    # Given
    put(api, {"field_domains": {"deal.stage": ["a", "b"]}})
    assert_problem(api.post("/api/v1/deals", json={"title": "x", "stage": "c"}), 422, "stage")

    # When
    put(api, {"field_domains": {"deal.stage": ["c"]}})

    # Then
    resp = api.post("/api/v1/deals", json={"title": "x", "stage": "c"})
    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize(
    "path",
    [
        "deal.nonsense",
        "lead.stage",
        "contact.email",
        "deal.custom.",
        "deal.custom.1st",
        "deal.custom.with-dash",
        "outreach.custom.channel",
        "deal",
        "deal.stage.extra",
    ],
)
def test_put_invalid_domain_path_is_refused(api, path) -> None:
    # When
    resp = api.put(URL, json={"field_domains": {"deal.stage": ["a"], path: ["x"]}})

    # Then
    problem = assert_problem(resp, 422)
    assert problem["field"].startswith("field_domains."), problem
    assert problem["field"] == f"field_domains.{path}"
    assert read(api)["field_domains"] == {}


def test_put_empty_domain_is_refused(api) -> None:
    resp = api.put(URL, json={"field_domains": {"deal.stage": []}})

    assert_problem(resp, 422, "field_domains.deal.stage")
    assert read(api)["field_domains"] == {}


def test_put_repeated_domain_values_are_refused(api) -> None:
    resp = api.put(URL, json={"field_domains": {"deal.custom.kind": ["firm", "rough", "firm"]}})

    problem = assert_problem(resp, 422, "field_domains.deal.custom.kind")
    assert "repeated" in problem["detail"]


def test_put_empty_domain_value_is_refused(api) -> None:
    problem = assert_problem(api.put(URL, json={"field_domains": {"deal.stage": [""]}}), 422)

    assert problem["field"].startswith("field_domains")


def test_refused_domains_keep_the_previous_ones(api) -> None:
    # Given
    put(api, {"field_domains": {"deal.stage": ["a", "b"]}})

    # When
    resp = api.put(URL, json={"field_domains": {"deal.stage": ["c"], "lead.stage": ["x"]}})

    # Then
    assert_problem(resp, 422, "field_domains.lead.stage")
    assert read(api)["field_domains"] == {"deal.stage": ["a", "b"]}


def test_domains_of_one_team_do_not_reach_another(api, client, make_team) -> None:
    # Given
    other = make_team("Globex")
    put(api, {"field_domains": {"deal.stage": ["a", "b"]}})

    # When
    theirs = client.get(URL, headers=other.headers)
    deal = client.post("/api/v1/deals", json={"title": "x"}, headers=other.headers)

    # Then
    assert theirs.json()["field_domains"] == {}
    assert deal.status_code == 201, deal.text
    assert deal.json()["stage"] == "new"
