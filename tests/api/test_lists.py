"""Work lists through the HTTP API: leads by priority, leads one profile field short of
qualifying (naming it), and the follow-up queue measured in the team's timezone."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from helpers import assert_problem

URL = "/api/v1/lists"
BERLIN = ZoneInfo("Europe/Berlin")
AS_OF = dt.date(2030, 1, 15)


def contact(api: Any, name: str, **fields: Any) -> int:
    resp = api.post("/api/v1/contacts", json={"name": name, **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def lead(api: Any, contact_id: int | None = None, **fields: Any) -> int:
    if contact_id is None:
        contact_id = contact(api, "Someone", email="someone@example.com")
    resp = api.post("/api/v1/leads", json={"contact_id": contact_id, **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def walk(api: Any, path: str, **params: Any) -> list[Any]:
    """Every item of a list, page by page."""
    items, cursor = [], None
    while True:
        resp = api.get(f"{URL}/{path}", params={**params, **({"cursor": cursor} if cursor else {})})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def berlin(day: dt.date, hour: int, minute: int = 0) -> str:
    return dt.datetime.combine(day, dt.time(hour, minute), BERLIN).isoformat()


# --- leads by priority -----------------------------------------------------------------------


def test_leads_by_priority_are_by_score_then_oldest_first_without_customers(api) -> None:
    # Given leads with scores 10, 50, 90, another 50 created later, and a customer at 100
    low = lead(api, score=10)
    older = lead(api, score=50)
    high = lead(api, score=90)
    newer = lead(api, score=50)
    lead(api, score=100, stage="customer")

    # When the list is read whole, and two at a time
    whole = api.get(f"{URL}/leads-by-priority").json()
    paged = walk(api, "leads-by-priority", limit=2)

    # Then the order is score first, age second, and paging walks the same order
    assert [item["id"] for item in whole["items"]] == [high, older, newer, low]
    assert whole["next_cursor"] is None
    assert [item["id"] for item in paged] == [high, older, newer, low]


def test_leads_by_priority_of_one_stage(api) -> None:
    lead(api, score=5)
    customer = lead(api, score=100, stage="customer")

    items = walk(api, "leads-by-priority", stage="customer")

    assert [item["id"] for item in items] == [customer]


def test_a_page_boundary_between_equal_scores_loses_and_repeats_nothing(api) -> None:
    ids = [lead(api, score=50) for _ in range(5)]

    assert [item["id"] for item in walk(api, "leads-by-priority", limit=2)] == ids


def test_a_bad_cursor_is_refused_naming_cursor(api) -> None:
    assert_problem(api.get(f"{URL}/leads-by-priority", params={"cursor": "abc"}), 422, "cursor")
    assert_problem(api.get(f"{URL}/follow-up", params={"cursor": "aWQ6Mw"}), 422, "cursor")


def test_lists_only_show_the_callers_team(api, client, make_team) -> None:
    # Given a lead of another team
    other = make_team("Globex")
    theirs = client.post("/api/v1/contacts", json={"name": "Hank"}, headers=other.headers)
    client.post(
        "/api/v1/leads",
        json={"contact_id": theirs.json()["id"], "score": 99},
        headers=other.headers,
    )
    mine = lead(api, score=1)

    # When / Then
    assert [item["id"] for item in walk(api, "leads-by-priority")] == [mine]
    due = [item["contact_id"] for item in walk(api, "follow-up", days=0)]
    assert theirs.json()["id"] not in due and len(due) == 1


# --- missing exactly one field ---------------------------------------------------------------

RULE = {
    "score_threshold": 50,
    "required_fields": ["contact.email", "contact.phone", "lead.custom.industry"],
}


def test_leads_missing_exactly_one_field_name_it(api) -> None:
    # Given the rule, and leads above and below the threshold with 0, 1 and 2 fields missing
    assert api.put("/api/v1/team", json={"settings": {"qualification": RULE}}).status_code == 200
    full = {"email": "a@x.example", "phone": "+49 30 123456"}
    no_industry = lead(api, contact(api, "A", **full), score=60)
    it = {"industry": "it"}
    no_phone = lead(api, contact(api, "B", email="b@x.example"), score=70, custom=it)
    lead(api, contact(api, "C", email="c@x.example"), score=80)  # two missing
    lead(api, contact(api, "D", email="d@x.example"), score=40, custom={"industry": "it"})
    lead(api, contact(api, "E", **full), score=90, custom={"industry": "it"})  # complete
    lead(api, contact(api, "F", email="f@x.example"), score=65, stage="sal", custom=it)
    blank = lead(api, contact(api, "G", email="g@x.example", phone=" +1 555 0100"), score=55,
                 custom={"industry": ""})

    # When
    items = walk(api, "leads-missing-one-field")

    # Then only marketing leads above the threshold with one gap, by score, each naming it
    assert [(i["lead"]["id"], i["missing_field"]) for i in items] == [
        (no_phone, "contact.phone"),
        (no_industry, "lead.custom.industry"),
        (blank, "lead.custom.industry"),
    ]
    assert items[0]["lead"]["score"] == 70


def test_without_a_rule_no_lead_misses_a_field(api) -> None:
    lead(api, score=99)

    assert walk(api, "leads-missing-one-field") == []


# --- follow-up -------------------------------------------------------------------------------


@pytest.fixture
def in_berlin(api) -> Any:
    resp = api.put("/api/v1/team", json={"timezone": "Europe/Berlin"})
    assert resp.status_code == 200, resp.text
    return api


def test_follow_up_counts_calendar_days_in_the_teams_timezone(in_berlin) -> None:
    api = in_berlin
    # Given, three days before 15 January (Berlin): one contact reached at 23:30 on the 12th
    # local time, one at 00:30 on the 13th (still the 12th in UTC), one on the 14th
    late = contact(api, "Late", last_contacted_at=berlin(dt.date(2030, 1, 12), 23, 30))
    early = contact(api, "Early", last_contacted_at=berlin(dt.date(2030, 1, 13), 0, 30))
    contact(api, "Recent", last_contacted_at=berlin(dt.date(2030, 1, 14), 9))

    # When the queue for 3 days is read as of the 15th
    items = walk(api, "follow-up", days=3, as_of=AS_OF.isoformat())

    # Then the 23:30 contact is 3 days ago and due; the 00:30 one is 2 days ago and is not
    due = {i["contact_id"]: i for i in items}
    assert late in due and early not in due
    assert due[late]["days_since_contact"] == 3
    # and with 2 days both are due, the early one 2 days ago
    due2 = {i["contact_id"]: i["days_since_contact"] for i in walk(
        api, "follow-up", days=2, as_of=AS_OF.isoformat())}
    assert (due2[late], due2[early]) == (3, 2)


def test_follow_up_is_ordered_by_open_deal_value_then_score_then_wait(in_berlin) -> None:
    api = in_berlin
    day = dt.date(2030, 1, 1)
    # Given contacts all due, with open deals (won ones do not count), leads and waits
    x = contact(api, "X", last_contacted_at=berlin(day, 10))
    y = contact(api, "Y", last_contacted_at=berlin(day, 12))
    z = contact(api, "Z", last_contacted_at=berlin(day, 9))
    w = contact(api, "W", last_contacted_at=berlin(dt.date(2029, 12, 1), 9))
    v = contact(api, "V", last_contacted_at=berlin(dt.date(2029, 12, 20), 9))
    never = contact(api, "Never")
    for contact_id, amount, status, currency in (
            (x, 5000, "open", "EUR"), (x, 9999, "won", "EUR"), (y, 3000, "open", "EUR"),
            (y, 2000, "open", "USD"), (z, 100, "lost", "EUR")):
        resp = api.post("/api/v1/deals", json={"title": "D", "contact_id": contact_id,
                                                "amount": amount, "status": status,
                                                "currency": currency})
        assert resp.status_code == 201, resp.text
    lead(api, x, score=30)
    lead(api, y, score=80)
    lead(api, z, score=90)
    lead(api, z, score=95, stage="customer")  # a customer lead does not count

    # When
    items = walk(api, "follow-up", days=7, as_of=AS_OF.isoformat(), limit=2)

    # Then: open value (5000 each; Y's lead scores higher), then score (Z's 90; its
    # customer lead's 95 does not count), then the longest wait: the contact never contacted
    # counts from its creation (today, years before 2030), then W, then V
    order = [i["contact_id"] for i in items]
    assert order == [y, x, z, never, w, v]
    by_id = {i["contact_id"]: i for i in items}
    assert (by_id[y]["open_deal_value"], by_id[y]["lead_score"]) == (5000.0, 80)
    assert (by_id[x]["open_deal_value"], by_id[x]["lead_score"]) == (5000.0, 30)
    assert (by_id[z]["open_deal_value"], by_id[z]["lead_score"]) == (0.0, 90)
    # and each shows its open deals per currency, never added up across them
    assert by_id[y]["open_deal_values"] == {"EUR": 3000.0, "USD": 2000.0}
    assert by_id[x]["open_deal_values"] == {"EUR": 5000.0}
    assert by_id[z]["open_deal_values"] == {}
    assert by_id[never]["last_contacted_at"] is None
    assert by_id[w]["days_since_contact"] == 45


def test_follow_up_pages_through_ties_of_summed_cents(in_berlin) -> None:
    api = in_berlin
    # Given four due contacts whose open deals each add up to 0.10 + 0.20
    people = [contact(api, f"P{n}", last_contacted_at=berlin(dt.date(2029, 12, 1), 9))
              for n in range(4)]
    for contact_id in people:
        for amount in (0.10, 0.20):
            resp = api.post("/api/v1/deals", json={"title": "D", "contact_id": contact_id,
                                                    "amount": amount})
            assert resp.status_code == 201, resp.text
    # When the queue is read one contact per page
    items = walk(api, "follow-up", days=7, as_of=AS_OF.isoformat(), limit=1)
    # Then every page follows the last (a sum in floating point would lose the ties)
    assert [i["contact_id"] for i in items] == people
    assert {i["open_deal_value"] for i in items} == {0.3}


def test_follow_up_defaults_to_today(in_berlin) -> None:
    api = in_berlin
    now = dt.datetime.now(BERLIN)
    old = contact(api, "Old", last_contacted_at=(now - dt.timedelta(days=10)).isoformat())
    contact(api, "Fresh", last_contacted_at=(now - dt.timedelta(days=1)).isoformat())

    items = walk(api, "follow-up", days=7)

    assert [(i["contact_id"], i["days_since_contact"]) for i in items] == [(old, 10)]


@pytest.mark.parametrize("days", [-1, 3651, "x"])
def test_follow_up_refuses_bad_days(api, days) -> None:
    assert_problem(api.get(f"{URL}/follow-up", params={"days": days}), 422, "days")
