"""Contacts and their communications through the HTTP API."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from helpers import assert_problem, at

URL = "/api/v1/contacts"




def create(api: Any, **fields: Any) -> dict[str, Any]:
    resp = api.post(URL, json={"name": "Bill Lumbergh", **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


def log(api: Any, contact_id: int, **fields: Any) -> dict[str, Any]:
    resp = api.post(f"{URL}/{contact_id}/communications", json={"channel": "email", **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


def read(api: Any, contact_id: int) -> dict[str, Any]:
    resp = api.get(f"{URL}/{contact_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def ids(resp: Any) -> list[int]:
    assert resp.status_code == 200, resp.text
    return [item["id"] for item in resp.json()["items"]]


def set_domains(api: Any, domains: dict[str, list[str]]) -> None:
    resp = api.put("/api/v1/team", json={"field_domains": domains})
    assert resp.status_code == 200, resp.text


def new_outreach(api: Any) -> int:
    resp = api.post("/api/v1/outreach", json={"type": "email", "email": "cto@initech.example"})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


# --- create, read, patch, delete ----------------------------------------------------------


def test_create_returns_the_contact_with_its_creator(api, team) -> None:
    created = create(
        api, email="bill@initech.example", phone="+1 555 0100", company="Initech", external_id="c-1"
    )

    assert created["name"] == "Bill Lumbergh"
    assert created["email"] == "bill@initech.example"
    assert created["phone"] == "+1 555 0100"
    assert created["company"] == "Initech"
    assert created["external_id"] == "c-1"
    assert created["outreach_id"] is None
    assert created["last_contacted_at"] is None
    assert created["custom"] == {}
    assert created["created_by_id"] == team.user_id


def test_read_returns_what_was_created(api) -> None:
    created = create(api, email="bill@initech.example", company="Initech")

    assert read(api, created["id"]) == created


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "Bill", "email": "not-an-email"}, "email"),
        ({"name": "Bill", "phone": "call me maybe"}, "phone"),
        ({"name": "Bill", "nickname": "Billy"}, "nickname"),
        ({"name": "Bill", "last_contacted_at": "last week"}, "last_contacted_at"),
        # Longer than their columns: refused on every backend, never cut short.
        ({"name": "Bill", "company": "c" * 201}, "company"),
        ({"name": "Bill", "phone": "1" * 65}, "phone"),
        ({"name": "Bill", "email": "b" * 310 + "@initech.example"}, "email"),
    ],
)
def test_create_with_a_bad_field_is_refused_naming_it(api, body, field) -> None:
    assert_problem(api.post(URL, json=body), 422, field)


def test_patch_changes_only_the_fields_given(api) -> None:
    # Given
    created = create(api, email="bill@initech.example", company="Initech", custom={"tier": "a"})

    # When
    resp = api.patch(f"{URL}/{created['id']}", json={"company": "Initrode"})

    # Then
    assert resp.status_code == 200, resp.text
    expected = {**created, "company": "Initrode"}
    patched = resp.json()
    assert {k: v for k, v in patched.items() if k != "updated_at"} == {
        k: v for k, v in expected.items() if k != "updated_at"
    }
    assert read(api, created["id"])["company"] == "Initrode"


def test_patch_null_clears_a_nullable_field(api) -> None:
    created = create(api, email="bill@initech.example", phone="+1 555 0100")

    resp = api.patch(f"{URL}/{created['id']}", json={"email": None})

    assert resp.status_code == 200, resp.text
    assert resp.json()["email"] is None
    assert resp.json()["phone"] == "+1 555 0100"


@pytest.mark.parametrize(("body", "field"), [({"email": "nope"}, "email"), ({"name": ""}, "name")])
def test_patch_with_a_bad_field_is_refused_and_changes_nothing(api, body, field) -> None:
    # Given
    created = create(api, email="bill@initech.example")

    # When
    resp = api.patch(f"{URL}/{created['id']}", json=body)

    # Then
    assert_problem(resp, 422, field)
    assert read(api, created["id"]) == created


def test_delete_answers_204_and_the_contact_is_gone(api) -> None:
    # Given
    created = create(api)

    # When
    resp = api.delete(f"{URL}/{created['id']}")

    # Then
    assert resp.status_code == 204, resp.text
    assert_problem(api.get(f"{URL}/{created['id']}"), 404)
    assert_problem(api.delete(f"{URL}/{created['id']}"), 404)


def test_missing_contact_is_not_found(api) -> None:
    assert_problem(api.get(f"{URL}/424242"), 404)
    assert_problem(api.patch(f"{URL}/424242", json={"name": "x"}), 404)


def test_duplicate_external_id_in_the_team_is_a_conflict(api) -> None:
    create(api, external_id="crm-7")

    assert_problem(
        api.post(URL, json={"name": "Other", "external_id": "crm-7"}), 409, "external_id"
    )


def test_patch_to_a_taken_external_id_is_a_conflict(api) -> None:
    # Given
    create(api, external_id="crm-7")
    other = create(api, name="Peter", external_id="crm-8")

    # When
    resp = api.patch(f"{URL}/{other['id']}", json={"external_id": "crm-7"})

    # Then
    assert_problem(resp, 409, "external_id")
    assert read(api, other["id"])["external_id"] == "crm-8"


# --- outreach_id ---------------------------------------------------------------------------


def test_outreach_of_the_same_team_is_kept(api) -> None:
    outreach_id = new_outreach(api)

    created = create(api, outreach_id=outreach_id)

    assert created["outreach_id"] == outreach_id
    assert read(api, created["id"])["outreach_id"] == outreach_id


def test_outreach_of_another_team_is_not_found_naming_outreach_id(api, client, make_team) -> None:
    # Given
    other = make_team("Globex")
    theirs = client.post(
        "/api/v1/outreach",
        json={"type": "call", "phone": "+1 555 0100"},
        headers=other.headers,
    )
    assert theirs.status_code == 201, theirs.text

    # When
    resp = api.post(URL, json={"name": "Bill", "outreach_id": theirs.json()["id"]})

    # Then
    assert_problem(resp, 404, "outreach_id")


def test_patch_outreach_id_checks_it_exists(api) -> None:
    # Given
    created = create(api)
    outreach_id = new_outreach(api)

    # When
    missing = api.patch(f"{URL}/{created['id']}", json={"outreach_id": 424242})
    found = api.patch(f"{URL}/{created['id']}", json={"outreach_id": outreach_id})

    # Then
    assert_problem(missing, 404, "outreach_id")
    assert found.status_code == 200, found.text
    assert found.json()["outreach_id"] == outreach_id


# --- custom fields -------------------------------------------------------------------------


def test_custom_fields_round_trip(api) -> None:
    custom = {"segment": "smb", "seats": 12, "arr": 1250.5, "vip": True, "note": "met at expo"}

    created = create(api, custom=custom)

    assert created["custom"] == custom
    assert read(api, created["id"])["custom"] == custom


def test_patch_merges_custom_key_by_key(api) -> None:
    # Given
    created = create(api, custom={"segment": "smb", "seats": 12})

    # When
    resp = api.patch(f"{URL}/{created['id']}", json={"custom": {"seats": 40, "vip": False}})

    # Then
    assert resp.status_code == 200, resp.text
    assert resp.json()["custom"] == {"segment": "smb", "seats": 40, "vip": False}
    assert read(api, created["id"])["custom"] == {"segment": "smb", "seats": 40, "vip": False}


def test_patch_null_removes_a_custom_key(api) -> None:
    # Given
    created = create(api, custom={"segment": "smb", "seats": 12})

    # When
    resp = api.patch(f"{URL}/{created['id']}", json={"custom": {"segment": None}})

    # Then
    assert resp.status_code == 200, resp.text
    assert resp.json()["custom"] == {"seats": 12}
    assert read(api, created["id"])["custom"] == {"seats": 12}


def test_patch_without_custom_keeps_custom(api) -> None:
    created = create(api, custom={"segment": "smb"})

    resp = api.patch(f"{URL}/{created['id']}", json={"name": "William"})

    assert resp.json()["custom"] == {"segment": "smb"}


def test_custom_value_outside_the_team_domain_is_refused(api) -> None:
    # Given
    set_domains(api, {"contact.custom.segment": ["smb", "enterprise"]})

    # When
    resp = api.post(URL, json={"name": "Bill", "custom": {"segment": "mid-market"}})

    # Then
    problem = assert_problem(resp, 422, "custom.segment")
    assert "mid-market" in problem["detail"]
    assert api.get(URL).json()["items"] == []


def test_custom_value_inside_the_team_domain_is_accepted(api) -> None:
    set_domains(api, {"contact.custom.segment": ["smb", "enterprise"]})

    created = create(api, custom={"segment": "enterprise", "free_text": "anything"})

    assert created["custom"] == {"segment": "enterprise", "free_text": "anything"}


def test_patch_custom_value_outside_the_team_domain_is_refused(api) -> None:
    # Given
    set_domains(api, {"contact.custom.segment": ["smb", "enterprise"]})
    created = create(api, custom={"segment": "smb"})

    # When
    resp = api.patch(f"{URL}/{created['id']}", json={"custom": {"segment": "startup"}})

    # Then
    assert_problem(resp, 422, "custom.segment")
    assert read(api, created["id"])["custom"] == {"segment": "smb"}


def test_a_domain_of_another_record_type_does_not_apply_to_contacts(api) -> None:
    set_domains(api, {"deal.custom.segment": ["smb", "enterprise"]})

    created = create(api, custom={"segment": "mid-market"})

    assert created["custom"] == {"segment": "mid-market"}


@pytest.mark.parametrize("key", ["1segment", "with space", "dash-key", "ümlaut", ""])
def test_invalid_custom_key_name_is_refused(api, key) -> None:
    resp = api.post(URL, json={"name": "Bill", "custom": {key: "x"}})

    problem = assert_problem(resp, 422)
    assert problem["field"] == f"custom.{key}"


@pytest.mark.parametrize("value", [[1, 2], {"nested": "x"}])
def test_custom_value_that_is_not_a_scalar_is_refused(api, value) -> None:
    problem = assert_problem(api.post(URL, json={"name": "Bill", "custom": {"k": value}}), 422)

    assert problem["field"].startswith("custom")


# --- lists ---------------------------------------------------------------------------------


def test_list_filters_by_email_case_insensitively(api) -> None:
    # Given
    bill = create(api, email="Bill@Initech.example")
    create(api, name="Peter", email="peter@initech.example")

    # When / Then
    assert ids(api.get(URL, params={"email": "bill@initech.EXAMPLE"})) == [bill["id"]]
    assert ids(api.get(URL, params={"email": "bill@initech"})) == []


def test_list_filters_by_company(api) -> None:
    # Given
    initech = create(api, company="Initech")
    create(api, name="Hank", company="Globex")
    initech_too = create(api, name="Peter", company="Initech")

    # When
    resp = api.get(URL, params={"company": "Initech"})

    # Then
    assert ids(resp) == [initech["id"], initech_too["id"]]


def test_list_filters_by_outreach(api) -> None:
    # Given
    first, second = new_outreach(api), new_outreach(api)
    found_by_first = create(api, outreach_id=first)
    create(api, name="Hank", outreach_id=second)
    create(api, name="Milton")

    # When
    resp = api.get(URL, params={"outreach_id": first})

    # Then
    assert ids(resp) == [found_by_first["id"]]


@pytest.mark.parametrize(
    ("q", "expected"), [("lumb", [0]), ("INITECH", [0, 1]), ("globex.example", [2])]
)
def test_list_q_matches_part_of_name_email_or_company(api, q, expected) -> None:
    # Given
    contacts = [
        create(api, name="Bill Lumbergh", email="bill@initech.example", company="Initech"),
        create(api, name="Peter Gibbons", email="peter@mail.example", company="Initech"),
        create(api, name="Hank Scorpio", email="hank@globex.example", company="Globex"),
    ]

    # When
    resp = api.get(URL, params={"q": q})

    # Then
    assert ids(resp) == [contacts[i]["id"] for i in expected]


@pytest.mark.parametrize(
    ("q", "expected"), [("%", [0]), ("_", [1]), ("x_y", [1]), ("0% n", [0]), ("\\", [3])]
)
def test_list_q_matches_wildcard_characters_literally(api, q, expected) -> None:
    # Given
    contacts = [
        create(api, name="Ann", company="100% Natural"),
        create(api, name="Ben", company="x_y corp"),
        create(api, name="Cid", company="xzy corp"),
        create(api, name="Dan", company="back\\slash"),
    ]

    # When
    resp = api.get(URL, params={"q": q})

    # Then
    assert ids(resp) == [contacts[i]["id"] for i in expected]


def test_list_contacted_before_keeps_never_and_earlier_contacted(api) -> None:
    # Given
    never = create(api, name="Never")
    early = create(api, name="Early", last_contacted_at="2026-01-10T09:00:00Z")
    create(api, name="Late", last_contacted_at="2026-03-10T09:00:00Z")

    # When
    resp = api.get(URL, params={"contacted_before": "2026-02-01T00:00:00Z"})

    # Then
    assert ids(resp) == [never["id"], early["id"]]


def test_list_contacted_before_follows_logged_communications(api) -> None:
    # Given
    contact = create(api, last_contacted_at="2026-01-10T09:00:00Z")
    log(api, contact["id"], at="2026-03-10T09:00:00Z")

    # When
    resp = api.get(URL, params={"contacted_before": "2026-02-01T00:00:00Z"})

    # Then
    assert ids(resp) == []


def test_list_pages_through_contacts(api) -> None:
    # Given
    created = [create(api, name=f"C{n}")["id"] for n in range(3)]

    # When
    first = api.get(URL, params={"limit": 2}).json()
    second = api.get(URL, params={"limit": 2, "cursor": first["next_cursor"]}).json()

    # Then
    assert [c["id"] for c in first["items"] + second["items"]] == created
    assert second["next_cursor"] is None


def test_list_with_a_garbage_cursor_is_refused(api) -> None:
    assert_problem(api.get(URL, params={"cursor": "not-a-cursor"}), 422, "cursor")


# --- last_contacted_at and communications ---------------------------------------------------


def test_logging_a_communication_moves_last_contacted_forward(api) -> None:
    # Given
    contact = create(api, last_contacted_at="2026-01-10T09:00:00Z")

    # When
    logged = log(api, contact["id"], at="2026-02-20T15:45:00+01:00")

    # Then
    assert at(logged["at"]) == at("2026-02-20T14:45:00Z")
    assert at(read(api, contact["id"])["last_contacted_at"]) == at("2026-02-20T14:45:00Z")


def test_first_communication_sets_last_contacted(api) -> None:
    contact = create(api)

    log(api, contact["id"], at="2026-02-20T14:45:00Z")

    assert at(read(api, contact["id"])["last_contacted_at"]) == at("2026-02-20T14:45:00Z")


def test_an_earlier_dated_communication_does_not_move_last_contacted_back(api) -> None:
    # Given
    contact = create(api)
    log(api, contact["id"], at="2026-03-01T10:00:00Z")

    # When
    log(api, contact["id"], at="2026-02-01T10:00:00Z", note="logged late")

    # Then
    assert at(read(api, contact["id"])["last_contacted_at"]) == at("2026-03-01T10:00:00Z")


def test_communication_without_at_is_now_and_moves_last_contacted(api) -> None:
    # Given
    contact = create(api, last_contacted_at="2026-01-10T09:00:00Z")
    before = dt.datetime.now(dt.UTC)

    # When
    logged = log(api, contact["id"])

    # Then
    after = dt.datetime.now(dt.UTC)
    slack = dt.timedelta(seconds=1)
    assert before - slack <= at(logged["at"]) <= after + slack
    assert at(read(api, contact["id"])["last_contacted_at"]) == at(logged["at"])


def test_naive_communication_time_is_read_in_the_team_timezone(api) -> None:
    # Given
    assert api.put("/api/v1/team", json={"timezone": "Asia/Tokyo"}).status_code == 200
    contact = create(api)

    # When
    logged = log(api, contact["id"], at="2026-02-20T09:00:00")

    # Then
    assert at(logged["at"]) == at("2026-02-20T00:00:00Z")
    assert at(read(api, contact["id"])["last_contacted_at"]) == at("2026-02-20T00:00:00Z")


def test_last_contacted_can_be_set_by_hand_even_earlier(api) -> None:
    # Given
    contact = create(api)
    log(api, contact["id"], at="2026-03-01T10:00:00Z")

    # When
    resp = api.patch(f"{URL}/{contact['id']}", json={"last_contacted_at": "2026-01-05T08:00:00Z"})

    # Then
    assert resp.status_code == 200, resp.text
    assert at(resp.json()["last_contacted_at"]) == at("2026-01-05T08:00:00Z")
    assert at(read(api, contact["id"])["last_contacted_at"]) == at("2026-01-05T08:00:00Z")


def test_last_contacted_can_be_cleared_by_hand(api) -> None:
    contact = create(api, last_contacted_at="2026-01-05T08:00:00Z")

    resp = api.patch(f"{URL}/{contact['id']}", json={"last_contacted_at": None})

    assert resp.status_code == 200, resp.text
    assert read(api, contact["id"])["last_contacted_at"] is None


def test_times_are_answered_in_utc(api) -> None:
    # Given
    contact = create(api, last_contacted_at="2026-01-05T08:00:00+01:00")

    # When
    logged = log(api, contact["id"], at="2026-01-04T08:00:00-05:00")

    # Then
    for value in (
        contact["last_contacted_at"],
        logged["at"],
        read(api, contact["id"])["last_contacted_at"],
    ):
        assert at(value).utcoffset() == dt.timedelta(0), value
    assert at(contact["last_contacted_at"]) == at("2026-01-05T07:00:00Z")
    assert at(logged["at"]) == at("2026-01-04T13:00:00Z")


def test_naive_last_contacted_is_read_in_the_team_timezone(api) -> None:
    # Given
    assert api.put("/api/v1/team", json={"timezone": "Europe/Berlin"}).status_code == 200
    contact = create(api)

    # When
    resp = api.patch(f"{URL}/{contact['id']}", json={"last_contacted_at": "2026-07-01T12:00:00"})

    # Then
    assert resp.status_code == 200, resp.text
    assert at(resp.json()["last_contacted_at"]) == at("2026-07-01T10:00:00Z")


def test_communication_is_returned_as_logged(api, team) -> None:
    contact = create(api)

    logged = log(
        api,
        contact["id"],
        channel="call",
        direction="inbound",
        at="2026-02-01T10:00:00Z",
        note="hi",
    )

    assert logged["contact_id"] == contact["id"]
    assert (logged["channel"], logged["direction"], logged["note"]) == ("call", "inbound", "hi")
    assert logged["created_by_id"] == team.user_id


def test_direction_defaults_to_outbound(api) -> None:
    contact = create(api)

    assert log(api, contact["id"])["direction"] == "outbound"


@pytest.mark.parametrize("channel", ["fax", "EMAIL", "", None])
def test_channel_outside_the_allowed_list_is_refused(api, channel) -> None:
    contact = create(api)

    resp = api.post(f"{URL}/{contact['id']}/communications", json={"channel": channel})

    assert_problem(resp, 422, "channel")
    assert read(api, contact["id"])["last_contacted_at"] is None


def test_direction_outside_the_allowed_list_is_refused(api) -> None:
    contact = create(api)

    resp = api.post(
        f"{URL}/{contact['id']}/communications", json={"channel": "call", "direction": "sideways"}
    )

    assert_problem(resp, 422, "direction")


def test_patch_channel_outside_the_allowed_list_is_refused(api) -> None:
    contact = create(api)
    logged = log(api, contact["id"])

    resp = api.patch(
        f"{URL}/{contact['id']}/communications/{logged['id']}", json={"channel": "fax"}
    )

    assert_problem(resp, 422, "channel")


def test_communication_for_a_missing_contact_is_not_found(api) -> None:
    assert_problem(api.post(f"{URL}/424242/communications", json={"channel": "email"}), 404)


def test_list_communications_of_a_contact_with_filters(api) -> None:
    # Given
    contact = create(api)
    other = create(api, name="Peter")
    email_out = log(api, contact["id"], channel="email")
    call_in = log(api, contact["id"], channel="call", direction="inbound")
    email_in = log(api, contact["id"], channel="email", direction="inbound")
    log(api, other["id"], channel="email")
    base = f"{URL}/{contact['id']}/communications"

    # When / Then
    assert ids(api.get(base)) == [email_out["id"], call_in["id"], email_in["id"]]
    assert ids(api.get(base, params={"channel": "email"})) == [email_out["id"], email_in["id"]]
    assert ids(api.get(base, params={"direction": "inbound"})) == [call_in["id"], email_in["id"]]
    assert ids(api.get(base, params={"channel": "email", "direction": "inbound"})) == [
        email_in["id"]
    ]


def test_list_communications_with_an_unknown_channel_is_refused(api) -> None:
    contact = create(api)

    resp = api.get(f"{URL}/{contact['id']}/communications", params={"channel": "fax"})

    assert_problem(resp, 422, "channel")


def test_list_communications_of_a_missing_contact_is_not_found(api) -> None:
    assert_problem(api.get(f"{URL}/424242/communications"), 404)


def test_get_a_communication(api) -> None:
    contact = create(api)
    logged = log(api, contact["id"], note="first call", at="2026-02-01T10:00:00Z")

    resp = api.get(f"{URL}/{contact['id']}/communications/{logged['id']}")

    assert resp.status_code == 200, resp.text
    assert resp.json() == logged


def test_patch_a_communication_changes_only_the_fields_given(api) -> None:
    # Given
    contact = create(api)
    logged = log(api, contact["id"], channel="call", note="first call", at="2026-02-01T10:00:00Z")

    # When
    resp = api.patch(
        f"{URL}/{contact['id']}/communications/{logged['id']}", json={"note": "voicemail"}
    )

    # Then
    assert resp.status_code == 200, resp.text
    assert resp.json()["note"] == "voicemail"
    assert resp.json()["channel"] == "call"
    assert at(resp.json()["at"]) == at(logged["at"])


def test_patch_a_communication_later_moves_last_contacted_forward(api) -> None:
    # Given
    contact = create(api)
    logged = log(api, contact["id"], at="2026-02-01T10:00:00Z")

    # When
    resp = api.patch(
        f"{URL}/{contact['id']}/communications/{logged['id']}", json={"at": "2026-04-01T10:00:00Z"}
    )

    # Then
    assert resp.status_code == 200, resp.text
    assert at(resp.json()["at"]) == at("2026-04-01T10:00:00Z")
    assert at(read(api, contact["id"])["last_contacted_at"]) == at("2026-04-01T10:00:00Z")


def test_patch_a_communication_earlier_does_not_move_last_contacted_back(api) -> None:
    # Given
    contact = create(api)
    logged = log(api, contact["id"], at="2026-02-01T10:00:00Z")

    # When
    resp = api.patch(
        f"{URL}/{contact['id']}/communications/{logged['id']}", json={"at": "2026-01-01T10:00:00Z"}
    )

    # Then
    assert resp.status_code == 200, resp.text
    assert at(read(api, contact["id"])["last_contacted_at"]) == at("2026-02-01T10:00:00Z")


def test_delete_a_communication(api) -> None:
    # Given
    contact = create(api)
    logged = log(api, contact["id"])
    path = f"{URL}/{contact['id']}/communications/{logged['id']}"

    # When
    resp = api.delete(path)

    # Then
    assert resp.status_code == 204, resp.text
    assert_problem(api.get(path), 404)
    assert ids(api.get(f"{URL}/{contact['id']}/communications")) == []


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_communication_under_another_contact_is_not_found(api, method) -> None:
    # Given
    owner = create(api, name="Owner")
    stranger = create(api, name="Stranger")
    logged = log(api, owner["id"], note="private")

    # When
    kwargs = {"json": {"note": "hijacked"}} if method == "PATCH" else {}
    resp = api.request(method, f"{URL}/{stranger['id']}/communications/{logged['id']}", **kwargs)

    # Then
    assert_problem(resp, 404)
    still = api.get(f"{URL}/{owner['id']}/communications/{logged['id']}")
    assert still.status_code == 200
    assert still.json()["note"] == "private"


def test_deleting_a_contact_deletes_its_communications(api) -> None:
    # Given
    contact = create(api)
    log(api, contact["id"])

    # When
    assert api.delete(f"{URL}/{contact['id']}").status_code == 204

    # Then
    assert_problem(api.get(f"{URL}/{contact['id']}/communications"), 404)


def test_communications_are_paged_with_a_cursor(api) -> None:
    # Given a contact with three logged communications
    contact_id = create(api, name="Paged")["id"]
    logged = [log(api, contact_id, at=f"2026-03-0{n}T10:00:00Z")["id"] for n in (1, 2, 3)]

    # When they are read two a page
    url = f"{URL}/{contact_id}/communications"
    first = api.get(url, params={"limit": 2}).json()
    second = api.get(url, params={"limit": 2, "cursor": first["next_cursor"]}).json()

    # Then each comes once and the last page says so
    assert [c["id"] for c in first["items"] + second["items"]] == logged
    assert second["next_cursor"] is None
    assert_problem(api.get(url, params={"cursor": "nope"}), 422, "cursor")
