"""The editor's tools in a real browser against the demo team: dry-run a step on a demo deal
and see why not, preview a change's impact, save it and see the matrix and the history change.
The screenshots are what docs/console.md shows."""

from __future__ import annotations

import json
from pathlib import Path

from console.browser import screenshot
from console.test_browser import browser, live, page  # noqa: F401 - the shared fixtures
from playwright.sync_api import Page, expect

NINETY = "deal-probability-90"


def test_dry_run_a_demo_deal_then_save_and_see_the_matrix_change(
    page: Page, tmp_path: Path  # noqa: F811
) -> None:
    # Given the 90 % step's editor (negotiation, firm, high)
    page.goto(f"/console/workflows/{NINETY}")
    expect(page.locator("#valid")).to_be_visible()

    # When it is dry-run on a demo deal found by its title (proposal, budgetary, low)
    page.get_by_label("Find a deal").fill("Greenleaf")
    page.get_by_role("button", name="Greenleaf ordering portal").click()

    # Then it does not match, and the part of the condition that was false is named
    expect(page.locator("#dry-run-verdict")).to_have_text("Not matched.")
    expect(page.locator("#why-not")).to_contain_text("Why not:")
    expect(page.locator("#why-not code").first).not_to_be_empty()
    screenshot(page, "dry-run", tmp_path, focus=page.locator("#dry-run-result"))

    # When the step is changed to 95 %, its impact previewed, and saved
    editor = page.get_by_label("Definition (JSON)")
    document = json.loads(editor.input_value())
    document["actions"][0]["set"]["probability"] = 95
    editor.fill(json.dumps(document, indent=2))
    page.get_by_role("button", name="Preview impact").click()
    northwind = page.locator("table.impact-deals tr").filter(has_text="Northwind route planner")
    expect(northwind).to_contain_text("90")
    expect(northwind).to_contain_text("95")
    expect(page.locator("table.impact-forecast tbody tr").first).to_be_visible()
    screenshot(page, "impact", tmp_path, focus=page.locator("#impact-result"))
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.locator("#saved")).to_contain_text("Saved as version 2")

    # Then the group's matrix shows 95 % for the step's combination, linking to it
    page.get_by_role("link", name="Group matrix").click()
    cell = page.locator(f"tr[data-workflows='[\"{NINETY}\"]'] td.heat")
    expect(cell).to_have_text("probability = 95 %")
    expect(cell).to_have_class("heat band-9")
    screenshot(page, "matrix", tmp_path)
    cell.get_by_role("link").click()
    expect(page).to_have_url(f"{page.url.split('/console')[0]}/console/workflows/{NINETY}")

    # ... and its history the changed line, old beside new
    page.get_by_role("link", name="Version history").click()
    changed = page.locator("#diff tr.changed")
    expect(changed).to_have_count(1)
    expect(changed.locator("td.removed")).to_contain_text('"probability": 90')
    expect(changed.locator("td.added")).to_contain_text('"probability": 95')
    screenshot(page, "versions", tmp_path)
