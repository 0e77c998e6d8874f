"""The forecast, analytics and settings pages in a real browser against the demo team: the
charts load as images under the console's CSP, the tables show the API's figures, a domain
change is checked before it is saved. Their screenshots are what docs/console.md shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from console.browser import LiveServer, screenshot
from console.test_browser import api, browser, live, page  # noqa: F401 - the shared fixtures
from playwright.sync_api import Page, expect

from server.core.starter import STARTER_DOMAINS


def wait_for_chart(page: Page) -> None:
    """Wait until the chart's <img> is fetched and decoded (a picture the CSP refused, or a
    broken one, never gets a width: the wait fails)."""
    page.wait_for_function(
        "() => { const i = document.querySelector('figure.chart img');"
        " return i !== null && i.complete && i.naturalWidth > 0; }"
    )


def test_forecast_page(
    page: Page, live: tuple[LiveServer, str], tmp_path: Path  # noqa: F811
) -> None:
    page.get_by_role("link", name="Forecast").click()
    page.get_by_label("Split by").select_option("stage")
    page.get_by_role("button", name="Show").click()

    chart = page.locator("figure.chart img")
    expect(chart).to_be_visible()
    wait_for_chart(page)
    with api(live) as client:
        rows = client.get("/api/v1/forecast", params={"group_by": "stage"}).json()["rows"]
    expect(page.locator("tr[data-row]")).to_have_count(len(rows))
    screenshot(page, "forecast", tmp_path)


def test_analytics_page(
    page: Page, live: tuple[LiveServer, str], tmp_path: Path  # noqa: F811
) -> None:
    page.get_by_role("link", name="Analytics").click()

    chart = page.locator("figure.chart img")
    expect(chart).to_be_visible()
    wait_for_chart(page)
    with api(live) as client:
        funnel = client.get("/api/v1/analytics/funnel").json()
    expect(page.locator("tr[data-stage]")).to_have_count(len(funnel["stages"]))
    expect(page.get_by_role("link", name="Download CSV")).to_have_count(2)
    screenshot(page, "analytics", tmp_path)


def test_settings_page(page: Page, tmp_path: Path) -> None:  # noqa: F811
    page.get_by_role("link", name="Settings").click()
    editor = page.get_by_label("Domains (JSON: path → values)")
    domains = json.loads(editor.input_value())
    assert domains["deal.custom.relationship"] == STARTER_DOMAINS["deal.custom.relationship"]

    # When the relationship domain is dropped and checked
    del domains["deal.custom.relationship"]
    editor.fill(json.dumps(domains, indent=2))
    page.get_by_role("button", name="Check").click()

    # Then the ladder's group is named before anything is saved
    expect(page.locator("#group-check")).to_contain_text("would break 1 group(s)")
    expect(page.locator("li.broken")).to_contain_text("record.custom.relationship")
    screenshot(page, "settings", tmp_path)


def test_the_pages_fit_a_phone(browser: Any, live: tuple[LiveServer, str]) -> None:  # noqa: F811
    server, key = live
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=server.url)
    page = context.new_page()
    page.goto("/console/sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in with key").click()
    expect(page.get_by_role("heading", name="Workflows")).to_be_visible()
    for path in ("/console/forecast?group_by=owner", "/console/analytics", "/console/settings"):
        page.goto(path)
        # Wide tables and the charts fit inside their box; the page never scrolls sideways
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    context.close()
