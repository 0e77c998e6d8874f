"""The console's forecast and analytics pages: the API's figures, the chart as SVG from the
CLI's drawing code, and CSV downloads equal to the API's ``Accept: text/csv`` answers."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from api.test_analytics import FROM, TO, generate
from litestar import Litestar
from litestar.testing import TestClient

from server.core.db import make_session_factory, transaction
from server.core.models import Team
from server.core.services.teams import ensure_user

DEALS = [  # (title, amount, currency, probability, stage, owner, expected close)
    ("Initech portal", 24000, "USD", 40, "proposal", "admin", "2026-03-01"),
    ("Initech printers", 1500.5, "USD", 70, "negotiation", "rep", "2026-03-31"),
    ("Umbrella audit", 12345.67, "EUR", 33, "proposal", "admin", "2026-03-20"),
    ("Umbrella training", 3333.33, "EUR", 67, "proposal", "rep", "2026-05-01"),
    ("Hooli no date", 7000, "USD", 25, "qualification", "admin", None),
]


def money(value: float) -> str:
    return f"{value:,.2f}"


def share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def opt(value: Any) -> str:
    return "—" if value is None else str(value)


def rows(page: str, marker: str) -> list[list[str]]:
    """The text of each cell of the table rows carrying ``marker`` (``data-row`` ...)."""
    found = []
    for row in re.findall(rf"<tr {marker}[^>]*>(.*?)</tr>", page, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        found.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return found


@pytest.fixture
def deals(console: TestClient[Litestar], team: Any, engine: Any) -> dict[str, int]:
    with transaction(make_session_factory(engine)) as session:
        rep = ensure_user(session, session.get(Team, team.team_id), "rep@acme.test",
                          name="Rita Rep", role="member").id
    owners = {"admin": team.user_id, "rep": rep}
    for title, amount, currency, probability, stage, owner, close in DEALS:
        resp = console.post("/api/v1/deals", headers=team.headers, json={
            "title": title, "amount": amount, "currency": currency, "probability": probability,
            "stage": stage, "owner_id": owners[owner], "expected_close_date": close,
        })
        assert resp.status_code == 201, resp.text
    return owners


# --- forecast ---------------------------------------------------------------------------------


@pytest.mark.parametrize("group_by", [None, "owner", "stage"])
def test_the_forecast_page_shows_the_apis_rows(
    console: TestClient[Litestar], team: Any, deals: dict[str, int], group_by: str | None
) -> None:
    params = {"group_by": group_by} if group_by else {}
    # When
    page = console.get("/console/forecast", params=params)
    # Then every row of the API's forecast is on the page, in order, formatted
    assert page.status_code == 200
    api = console.get("/api/v1/forecast", params=params, headers=team.headers).json()
    names = {deals["admin"]: "Admin", deals["rep"]: "Rita Rep"}
    expected = []
    for r in api["rows"]:
        split = {"owner": [names.get(r["owner_id"], "—")], "stage": [r["stage"]]}
        expected.append([r["month"] or "no date", r["currency"],
                         *split.get(group_by or "", []), str(r["deals"]), money(r["amount"]),
                         money(r["weighted_amount"])])
    assert rows(page.text, "data-row") == expected and len(expected) >= 4
    totals = [[t["currency"], str(t["deals"]), money(t["amount"]), money(t["weighted_amount"])]
              for t in api["totals"]]
    assert rows(page.text, "data-total") == totals
    assert "(UTC)" not in page.text and "UTC" in page.text  # the team's timezone is named
    suffix = f"?group_by={group_by}" if group_by else ""
    assert f'src="/console/forecast/chart.svg{suffix}"' in page.text
    assert f'href="/console/forecast/forecast.csv{suffix}"' in page.text


def test_the_forecast_chart_is_svg_with_weighted_and_total(
    console: TestClient[Litestar], deals: dict[str, int]
) -> None:
    # When
    resp = console.get("/console/forecast/chart.svg", params={"group_by": "owner"})
    # Then
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("image/svg+xml")
    assert "default-src 'self'" in resp.headers["content-security-policy"]
    root = ET.fromstring(resp.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert b"<script" not in resp.content
    for label in (b"weighted vs total", b"Rita Rep", b"2026-03", b"2026-05"):
        assert label in resp.content, label


@pytest.mark.parametrize("group_by", [None, "stage"])
def test_the_forecast_csv_is_the_apis(
    console: TestClient[Litestar], team: Any, deals: dict[str, int], group_by: str | None
) -> None:
    params = {"group_by": group_by} if group_by else {}
    resp = console.get("/console/forecast/forecast.csv", params=params)
    api = console.get("/api/v1/forecast", params=params,
                      headers={**team.headers, "Accept": "text/csv"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert resp.text == api.text and resp.text.count("\n") >= 5


def test_a_bad_split_is_refused(console: TestClient[Litestar]) -> None:
    resp = console.get("/console/forecast", params={"group_by": "planet"})
    assert resp.status_code == 400 and "group_by" in resp.text


# --- analytics --------------------------------------------------------------------------------


@pytest.fixture
def world(engine: Any, team: Any) -> Any:
    return generate(engine, team.team_id, seed=7)


def test_the_analytics_page_shows_the_apis_funnel_and_channels(
    console: TestClient[Litestar], team: Any, world: Any
) -> None:
    span = {"date_from": FROM, "date_to": TO}
    # When
    page = console.get("/console/analytics", params=span)
    # Then
    assert page.status_code == 200
    api = {"from": FROM, "to": TO}
    funnel = console.get("/api/v1/analytics/funnel", params=api, headers=team.headers).json()
    shown = rows(page.text, "data-stage")
    assert shown == [
        [s["stage"], str(s["current"]), str(s["entered"]), opt(s["converted"]),
         share(s["conversion_rate"]), opt(s["median_hours"]), opt(s["sla_hours"]),
         opt(s["sla_met"]), opt(s["sla_missed"]), share(s["sla_compliance"])]
        for s in funnel["stages"]
    ]
    assert any(s["sla_compliance"] is not None for s in funnel["stages"])
    channels = console.get("/api/v1/analytics/channels", params=api,
                           headers=team.headers).json()
    effects = channels["types"] + channels["platforms"]
    assert rows(page.text, "data-channel") == [
        [e["type"], e["value"] or "", str(e["outreach"]), str(e["contacts"]), str(e["deals"]),
         str(e["deals_won"]), money(e["revenue_won"]), money(e["cost"]),
         share(e["contact_rate"]), share(e["deal_rate"]), share(e["win_rate"]),
         share(e["outreach_to_won"]), share(e["roi"])]
        for e in effects
    ]
    assert len(effects) > 5
    assert "Europe/Berlin" in page.text
    query = f"date_from={FROM}&amp;date_to={TO}"
    assert f'src="/console/analytics/funnel.svg?{query}"' in page.text
    assert f'href="/console/analytics/funnel.csv?{query}"' in page.text
    assert f'href="/console/analytics/channels.csv?{query}"' in page.text


def test_the_funnel_chart_is_svg(console: TestClient[Litestar], world: Any) -> None:
    resp = console.get("/console/analytics/funnel.svg",
                       params={"date_from": FROM, "date_to": TO})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("image/svg+xml")
    assert "content-security-policy" in resp.headers
    root = ET.fromstring(resp.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert b"Lead funnel" in resp.content and b"SLA" in resp.content


@pytest.mark.parametrize(("route", "api_path", "extra"), [
    ("funnel.csv", "funnel", {}),
    ("channels.csv", "channels", {}),
    ("channels.csv", "channels", {"currency": "USD"}),
])
def test_the_analytics_csv_is_the_apis(
    console: TestClient[Litestar], team: Any, world: Any, route: str, api_path: str,
    extra: dict[str, str],
) -> None:
    resp = console.get(f"/console/analytics/{route}",
                       params={"date_from": FROM, "date_to": TO, **extra})
    api = console.get(f"/api/v1/analytics/{api_path}", params={"from": FROM, "to": TO, **extra},
                      headers={**team.headers, "Accept": "text/csv"})
    assert resp.status_code == 200 and api.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    assert resp.text == api.text and resp.text.count("\n") > 3


def test_without_matplotlib_the_pages_show_tables_and_how_to_install(
    console: TestClient[Litestar], deals: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    # Given matplotlib cannot be imported
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    # When
    forecast = console.get("/console/forecast")
    analytics = console.get("/console/analytics")
    chart = console.get("/console/forecast/chart.svg")
    # Then
    for page in (forecast, analytics):
        assert page.status_code == 200
        assert 'id="no-charts"' in page.text and "pip install 'matplotlib" in page.text
        assert "<img" not in page.text
    assert len(rows(forecast.text, "data-row")) >= 4
    assert chart.status_code == 404 and "matplotlib==3.11" in chart.text


def test_the_pages_need_a_session(client: TestClient[Litestar]) -> None:
    for path in ("/console/forecast", "/console/forecast/chart.svg", "/console/analytics",
                 "/console/analytics/funnel.csv"):
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 302 and resp.headers["location"] == "/console/sign-in", path
