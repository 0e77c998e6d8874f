"""The forecast through the HTTP API, checked against sums computed here from the deals made."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from server.core.db import make_session_factory, transaction
from server.core.models import Team
from server.core.services.teams import ensure_user

URL = "/api/v1/forecast"
DEALS = "/api/v1/deals"

# (title, amount, currency, probability, stage, owner ("admin" | "rep"), expected close, status)
OPEN_DEALS = [
    ("Initech TPS portal", 24000, "USD", 40, "proposal", "admin", "2026-03-01", "open"),
    ("Initech printers", 1500.5, "USD", 70, "negotiation", "rep", "2026-03-31", "open"),
    ("Initech cents a", 0.1, "USD", 10, "proposal", "rep", "2026-03-15", "open"),
    ("Initech cents b", 0.2, "USD", 30, "proposal", "rep", "2026-03-16", "open"),
    ("Initech cents c", 0.1, "USD", 50, "proposal", "rep", "2026-03-17", "open"),
    ("Globex staff aug", 9999999999.99, "USD", 90, "negotiation", "admin", "2026-04-01", "open"),
    ("Globex staff aug 2", 9999999999.99, "USD", 20, "negotiation", "admin", "2026-04-30", "open"),
    ("Umbrella audit", 12345.67, "EUR", 33, "proposal", "admin", "2026-03-20", "open"),
    ("Umbrella retainer", 800, "EUR", None, "qualification", "rep", "2026-03-21", "open"),
    ("Umbrella training", 3333.33, "EUR", 67, "proposal", "rep", "2026-05-01", "open"),
    ("Hooli year end", 50000, "USD", 15, "qualification", "rep", "2025-12-31", "open"),
    ("Hooli no date", 7000, "USD", 25, "qualification", "admin", None, "open"),
    ("Hooli no date EUR", 4200.42, "EUR", 60, "proposal", "rep", None, "open"),
    # Closed deals: never in the forecast.
    ("Vandelay won", 100000, "USD", 80, "negotiation", "admin", "2026-03-10", "won"),
    ("Vandelay lost", 200000, "USD", 10, "proposal", "rep", "2026-03-11", "lost"),
    ("Vandelay cancelled", 300000, "EUR", 10, "proposal", "rep", "2026-04-11", "cancelled"),
]


def add_member(engine: Engine, team_id: int, email: str = "rep@acme.test") -> int:
    """Another user of the same team (there is no HTTP endpoint for users)."""
    with transaction(make_session_factory(engine)) as session:
        team = session.get(Team, team_id)
        return ensure_user(session, team, email, name="Rep", role="member").id


def create(api: Any, headers: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    resp = api.post(DEALS, json=fields, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()


def read(api: Any, deal_id: int) -> dict[str, Any]:
    resp = api.get(f"{DEALS}/{deal_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def forecast(api: Any, **params: str) -> dict[str, Any]:
    resp = api.get(URL, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture
def deals(api, team, engine) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Every deal of :data:`OPEN_DEALS` as the API reads it back (closed ones included)."""
    owners = {"admin": team.user_id, "rep": add_member(engine, team.team_id)}
    made = []
    for title, amount, currency, probability, stage, owner, close, status in OPEN_DEALS:
        created = create(
            api,
            title=title,
            amount=amount,
            currency=currency,
            probability=probability,
            stage=stage,
            owner_id=owners[owner],
            expected_close_date=close,
        )
        if status != "open":
            resp = api.patch(f"{DEALS}/{created['id']}", json={"status": status})
            assert resp.status_code == 200, resp.text
        made.append(read(api, created["id"]))
    return made


def expected(
    deals: list[dict[str, Any]],
    group_by: str | None = None,
    close_from: str | None = None,
    close_to: str | None = None,
) -> dict[str, Any]:
    """The forecast computed here, in plain Python, from the deals as the API returned them."""
    key_field = {"owner": "owner_id", "stage": "stage", None: None}[group_by]
    sums: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    totals: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    for deal in deals:
        if deal["status"] != "open":
            continue
        close = deal["expected_close_date"]
        if (close_from or close_to) and close is None:
            continue
        if close_from and close < close_from:
            continue
        if close_to and close >= close_to:
            continue
        month = close[:7] if close else None
        key = (month, deal["currency"], deal[key_field] if key_field else None)
        amount = Decimal(str(deal["amount"]))
        weighted = Decimal(str(deal["weighted_amount"] or 0))
        for acc in (sums[key], totals[deal["currency"]]):
            acc[0] += 1
            acc[1] += amount
            acc[2] += weighted

    def order(key: tuple[Any, ...]) -> tuple[Any, ...]:
        month, currency, group = key
        return (month is None, month or "", currency, group is None, group or 0)

    rows = []
    for key in sorted(sums, key=order):
        month, currency, group = key
        count, amount, weighted = sums[key]
        rows.append(
            {
                "month": month,
                "currency": currency,
                "owner_id": group if group_by == "owner" else None,
                "stage": group if group_by == "stage" else None,
                "deals": count,
                "amount": float(amount),
                "weighted_amount": float(weighted),
            }
        )
    return {
        "rows": rows,
        "totals": [
            {
                "currency": currency,
                "deals": count,
                "amount": float(amount),
                "weighted_amount": float(weighted),
            }
            for currency, (count, amount, weighted) in sorted(totals.items())
        ],
    }


def assert_matches(body: dict[str, Any], want: dict[str, Any]) -> None:
    assert body["rows"] == want["rows"]
    assert body["totals"] == want["totals"]


# --- sums ------------------------------------------------------------------------------------


def test_forecast_per_month_and_currency_matches_an_independent_sum(api, deals) -> None:
    body = forecast(api)

    assert body["group_by"] is None
    assert body["timezone"] == "UTC"
    assert_matches(body, expected(deals))
    months = [row["month"] for row in body["rows"]]
    assert months == [
        "2025-12",
        "2026-03",
        "2026-03",
        "2026-04",
        "2026-05",
        None,
        None,
    ]


def test_forecast_rows_are_what_the_deals_say(api, deals) -> None:
    """A few rows spelled out, so that the independent sum cannot share a mistake with the server."""
    body = forecast(api)
    rows = {(r["month"], r["currency"]): r for r in body["rows"]}

    march_usd = rows[("2026-03", "USD")]
    assert march_usd["deals"] == 5
    assert march_usd["amount"] == 25500.9  # 24000 + 1500.5 + 0.1 + 0.2 + 0.1: cents stay exact
    # 9600 + 1050.35 + 0.01 + 0.06 + 0.05
    assert march_usd["weighted_amount"] == 10650.47
    march_eur = rows[("2026-03", "EUR")]
    # 800 EUR without a probability counts in the amount, as 0 in the weighted amount.
    assert (march_eur["deals"], march_eur["amount"], march_eur["weighted_amount"]) == (
        2,
        13145.67,
        4074.07,
    )
    april = rows[("2026-04", "USD")]
    assert (april["deals"], april["amount"], april["weighted_amount"]) == (
        2,
        19999999999.98,
        10999999999.99,
    )


def test_forecast_leaves_out_closed_deals(api, deals) -> None:
    body = forecast(api)

    open_count = sum(1 for d in deals if d["status"] == "open")
    assert sum(row["deals"] for row in body["rows"]) == open_count == 13
    assert sum(total["deals"] for total in body["totals"]) == open_count
    # Closing an open deal takes it out.
    tps = next(d for d in deals if d["title"] == "Initech TPS portal")
    assert api.patch(f"{DEALS}/{tps['id']}", json={"status": "won"}).status_code == 200
    after = forecast(api)
    march_usd = next(r for r in after["rows"] if r["month"] == "2026-03" and r["currency"] == "USD")
    assert march_usd["deals"] == 4
    assert march_usd["amount"] == 1500.9


def test_currencies_are_never_summed_together(api, deals) -> None:
    body = forecast(api)

    for row in body["rows"]:
        currencies = {
            d["currency"]
            for d in deals
            if d["status"] == "open"
            and (d["expected_close_date"] or "")[:7] == (row["month"] or "")
        }
        assert row["currency"] in currencies
    keys = [(row["month"], row["currency"]) for row in body["rows"]]
    assert len(keys) == len(set(keys))
    assert ("2026-03", "USD") in keys and ("2026-03", "EUR") in keys
    assert [t["currency"] for t in body["totals"]] == ["EUR", "USD"]
    eur = body["totals"][0]
    assert eur["amount"] == float(
        sum(
            Decimal(str(d["amount"]))
            for d in deals
            if d["status"] == "open" and d["currency"] == "EUR"
        )
    )


def test_forecast_by_owner(api, team, deals) -> None:
    body = forecast(api, group_by="owner")

    assert body["group_by"] == "owner"
    assert_matches(body, expected(deals, "owner"))
    assert {row["owner_id"] for row in body["rows"]} == {
        d["owner_id"] for d in deals if d["status"] == "open"
    }
    assert all(row["stage"] is None for row in body["rows"])
    # Rows of one month and currency come in owner order.
    march_usd = [
        r["owner_id"] for r in body["rows"] if (r["month"], r["currency"]) == ("2026-03", "USD")
    ]
    assert march_usd == sorted(march_usd) and len(march_usd) == 2
    assert team.user_id in march_usd


def test_forecast_by_stage(api, deals) -> None:
    body = forecast(api, group_by="stage")

    assert body["group_by"] == "stage"
    assert_matches(body, expected(deals, "stage"))
    assert all(row["owner_id"] is None for row in body["rows"])
    march_usd = [
        r["stage"] for r in body["rows"] if (r["month"], r["currency"]) == ("2026-03", "USD")
    ]
    assert march_usd == ["negotiation", "proposal"]
    # Totals do not depend on the grouping.
    assert body["totals"] == forecast(api)["totals"]


@pytest.mark.parametrize("group_by", [None, "owner", "stage"])
def test_forecast_window_includes_close_from_and_excludes_close_to(api, deals, group_by) -> None:
    params = {"close_from": "2026-03-01", "close_to": "2026-05-01"}
    if group_by:
        params["group_by"] = group_by

    body = forecast(api, **params)

    assert_matches(body, expected(deals, group_by, "2026-03-01", "2026-05-01"))
    months = {row["month"] for row in body["rows"]}
    # 2026-03-01 is in (inclusive), 2026-05-01 is out (exclusive), undated deals are out.
    assert months == {"2026-03", "2026-04"}
    titles_in = {
        d["title"]
        for d in deals
        if d["status"] == "open"
        and d["expected_close_date"]
        and "2026-03-01" <= d["expected_close_date"] < "2026-05-01"
    }
    assert "Initech TPS portal" in titles_in and "Umbrella training" not in titles_in
    assert sum(t["deals"] for t in body["totals"]) == len(titles_in)


def test_forecast_with_only_one_bound(api, deals) -> None:
    assert_matches(forecast(api, close_from="2026-04-01"), expected(deals, close_from="2026-04-01"))
    assert_matches(forecast(api, close_to="2026-03-16"), expected(deals, close_to="2026-03-16"))


def test_forecast_of_a_team_without_deals_is_empty(api) -> None:
    body = forecast(api)

    assert body == {"timezone": "UTC", "group_by": None, "rows": [], "totals": []}


def test_forecast_echoes_the_team_timezone(api) -> None:
    assert api.put("/api/v1/team", json={"timezone": "Europe/Berlin"}).status_code == 200
    create(api, title="x", amount=10, probability=50, expected_close_date="2026-03-31")

    body = forecast(api)

    assert body["timezone"] == "Europe/Berlin"
    # A date has no time of day: the last day of the month stays in that month.
    assert [(r["month"], r["deals"], r["weighted_amount"]) for r in body["rows"]] == [
        ("2026-03", 1, 5.0)
    ]


def test_another_teams_deals_never_appear(api, make_team, deals) -> None:
    # Given: team B has deals in the same months and currencies
    other = make_team("Globex")
    for amount, currency, close in (
        (1000, "USD", "2026-03-05"),
        (2000, "EUR", "2026-03-06"),
        (3000, "GBP", "2026-04-07"),
        (4000, "USD", None),
    ):
        create(
            api,
            headers=other.headers,
            title="B",
            amount=amount,
            currency=currency,
            probability=50,
            expected_close_date=close,
        )

    # When
    mine = forecast(api)
    theirs = api.get(URL, headers=other.headers).json()

    # Then
    assert_matches(mine, expected(deals))
    assert "GBP" not in {row["currency"] for row in mine["rows"]}
    assert [(t["currency"], t["deals"], t["amount"]) for t in theirs["totals"]] == [
        ("EUR", 1, 2000.0),
        ("GBP", 1, 3000.0),
        ("USD", 2, 5000.0),
    ]


# --- bad parameters ----------------------------------------------------------------------------


def assert_problem(resp: Any, status: int, field: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["field"] == field, body
    assert body["errors"][0]["field"] == field, body


@pytest.mark.parametrize("value", ["month", "currency", "OWNER", ""])
def test_an_unknown_group_by_is_refused(api, value) -> None:
    assert_problem(api.get(URL, params={"group_by": value}), 422, "group_by")


@pytest.mark.parametrize("param", ["close_from", "close_to"])
def test_a_bad_close_date_is_refused(api, param) -> None:
    assert_problem(api.get(URL, params={param: "next month"}), 422, param)


def test_a_window_that_ends_before_it_starts_is_refused(api) -> None:
    resp = api.get(URL, params={"close_from": "2026-05-01", "close_to": "2026-04-01"})
    assert_problem(resp, 422, "close_to")


def test_the_forecast_needs_a_key(client) -> None:
    assert client.get(URL).status_code == 401


def test_the_forecast_answers_csv_when_asked(api) -> None:
    # Given two open deals closing in one month and one without a date
    for title, amount, close in [("A", 1000, "2026-12-03"), ("B", 500, "2026-12-20"), ("C", 70, None)]:
        body = {"title": title, "amount": amount, **({"expected_close_date": close} if close else {})}
        assert api.post("/api/v1/deals", json=body).status_code == 201
    # When the forecast is asked for as CSV, grouped by stage
    resp = api.get("/api/v1/forecast", params={"group_by": "stage"}, headers={"Accept": "text/csv"})
    # Then it is one header row and one line per row of the JSON answer
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    lines = resp.text.splitlines()
    rows = api.get("/api/v1/forecast", params={"group_by": "stage"}).json()["rows"]
    assert lines[0] == "month,currency,stage,deals,amount,weighted_amount"
    assert len(lines) == 1 + len(rows) and lines[1].startswith("2026-12,USD,")
    assert lines[1].split(",")[3] == "2" and lines[-1].startswith(",USD,")
