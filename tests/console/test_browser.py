"""The console in a real browser (Debian's Chromium through Playwright) against a live
server with the demo team: sign in, catch an overlap while typing, find a deal's run, retry
a dead execution. Each page's screenshot is what docs/console.md shows."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from console.browser import CHROMIUM, INSTALL_HINT, VIEWPORT, LiveServer, screenshot, serve
from playwright.sync_api import Browser, Page, expect, sync_playwright

from server.app import create_app
from server.core.db import make_engine
from server.core.demo import load_demo
from server.migrations import upgrade
from server.settings import Settings

LADDER = "deal-probability-60"
WAIT = 10_000  # ms: the longest any expectation waits


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, str]]:
    """The app on a SQLite file holding the demo team, served on a free port; the demo key."""
    url = f"sqlite:///{tmp_path_factory.mktemp('live') / 'dealflow.db'}"
    engine = make_engine(url)
    upgrade(engine)
    app = create_app(
        Settings(database_url=url, secret_key="browser-test-secret",
                 outbound_allow=("127.0.0.1",), rate_limit_per_second=0, relay_interval=0.1),
        engine=engine,
    )
    # Retries of a failing side effect come within a second, not after 1 s, 2 s, ...
    app.state.runtime.runner.backoff_base = 0.05
    key = load_demo(app.state.runtime.sessions).key
    server = serve(app)
    yield server, key
    server.stop()
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(INSTALL_HINT.format(path=CHROMIUM), pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, live: tuple[LiveServer, str]) -> Iterator[Page]:
    """A fresh browser context (no cookies) signed in with the demo admin's key."""
    server, key = live
    context = browser.new_context(viewport=VIEWPORT, base_url=server.url)
    context.set_default_timeout(WAIT)
    page = context.new_page()
    page.goto("/console")
    expect(page).to_have_url(server.url + "/console/sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in with key").click()
    expect(page.get_by_role("heading", name="Workflows")).to_be_visible()
    yield page
    context.close()


def api(live: tuple[LiveServer, str]) -> httpx.Client:
    server, key = live
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"},
                        timeout=10)


def test_sign_in_page(browser: Browser, live: tuple[LiveServer, str], tmp_path: Path) -> None:
    server, _ = live
    context = browser.new_context(viewport=VIEWPORT, base_url=server.url)
    page = context.new_page()
    response = page.goto("/console/sign-in")
    assert response is not None
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    page.get_by_label("Email").fill("admin@demo.local")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("the email or the password is wrong")
    assert not [c for c in context.cookies() if c["name"] == "dealflow_session"]
    screenshot(page, "sign-in", tmp_path)
    context.close()


def test_workflows_page_shows_the_apis_figures(
    page: Page, live: tuple[LiveServer, str], tmp_path: Path
) -> None:
    with api(live) as client:
        runs = client.get("/api/v1/runs", params={"workflow": LADDER, "limit": 200}).json()
    row = page.locator(f'tr[data-workflow="{LADDER}"]')
    expect(row.locator("[data-runs]")).to_have_text(str(len(runs["items"])))
    expect(page.get_by_role("heading", name="Group deal_probability")).to_be_visible()
    screenshot(page, "workflows", tmp_path)


def test_an_overlap_is_named_while_typing_and_the_save_refused(
    page: Page, tmp_path: Path
) -> None:
    page.get_by_role("link", name=LADDER, exact=True).click()
    expect(page.locator("#valid")).to_be_visible()
    editor = page.get_by_label("Definition (JSON)")
    document = json.loads(editor.input_value())

    # When the condition is changed to claim proposal/firm/high, which is 70's
    document["condition"] = document["condition"].replace(
        "proposal_type == 'firm' && record.custom.relationship == 'medium'",
        "proposal_type == 'firm' && record.custom.relationship == 'high'",
    )
    editor.fill(json.dumps(document, indent=2))

    # Then, before saving, the overlapping combination is named
    overlap = page.locator("li.overlap")
    expect(overlap).to_contain_text('deal.custom.relationship = "high"')
    expect(overlap).to_contain_text("deal-probability-70")
    screenshot(page, "workflow-editor", tmp_path, focus=page.locator("#save"))
    # ... and saving anyway is refused with the same combination
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.locator("#failed")).to_contain_text("overlap")
    expect(page.locator("li.overlap")).to_contain_text('deal.custom.proposal_type = "firm"')


def test_a_deals_run_is_found_in_the_explorer(
    page: Page, live: tuple[LiveServer, str], tmp_path: Path
) -> None:
    with api(live) as client:
        deal = client.post("/api/v1/deals", json={
            "title": "Browser Ltd", "stage": "proposal",
            "custom": {"proposal_type": "budgetary", "relationship": "high"},
        }).json()
    page.get_by_role("link", name="Runs").click()
    page.get_by_label("Entity").select_option("deal")
    page.get_by_label("Record id").fill(str(deal["id"]))
    page.get_by_role("button", name="Filter").click()
    first = page.locator("tr[data-run]").filter(has_text="created")  # the deal's creation
    expect(first).to_have_count(1)
    screenshot(page, "runs", tmp_path)
    first.get_by_role("link").click()
    expect(page.locator(f'tr[data-evaluation="{LADDER}"]')).to_contain_text("yes")
    expect(page.locator('tr[data-evaluation="deal-probability-70"]')).to_contain_text("no")
    screenshot(page, "run", tmp_path)


def test_a_dead_execution_is_retried_from_the_page(
    page: Page, live: tuple[LiveServer, str], receiver: Any, tmp_path: Path
) -> None:
    # Given a workflow posting deals to a partner failing with 500 until the retries run out
    for _ in range(3):  # post_to's limit of attempts
        receiver.respond("/browser-hook", 500)
    with api(live) as client:
        assert client.put("/api/v1/workflows/browser-post", json={
            "id": "browser-post", "name": "Tell the partner", "entity": "deal",
            "trigger": {"type": "record_saved", "on": ["created"]},
            "actions": [{"type": "post_to", "url": receiver.url + "/browser-hook"}],
        }).status_code in (200, 201)
        deal = client.post("/api/v1/deals", json={"title": "Dead Letter GmbH"}).json()
        runs = client.get("/api/v1/runs", params={"entity": "deal", "record_id": deal["id"]})
        run_id = runs.json()["items"][0]["id"]  # the creation (oldest first)
    assert len(receiver.wait_for(3, "/browser-hook")) == 3
    page.goto(f"/console/runs/{run_id}")
    row = page.locator("tr[data-execution]").filter(has_text="post_to")
    for _ in range(50):  # the third failure is recorded just after the peer answered it
        if row.locator("[data-status]").inner_text() == "dead":
            break
        page.wait_for_timeout(100)
        page.reload()
    expect(row.locator("[data-status]")).to_have_text("dead")
    expect(row).to_contain_text("500")
    screenshot(page, "run-dead", tmp_path, focus=row)

    # When Retry is pressed (the partner answers 200 now)
    row.get_by_role("button", name="Retry").click()

    # Then the partner gets it again and the execution succeeds
    expect(page.locator("#retried")).to_be_visible()
    assert len(receiver.wait_for(4, "/browser-hook")) == 4
    page.reload()
    expect(page.locator("tr[data-execution]").filter(has_text="post_to").locator(
        "[data-status]")).to_have_text("succeeded")


def test_pages_fit_a_phone_and_work_from_the_keyboard(
    browser: Browser, live: tuple[LiveServer, str]
) -> None:
    server, key = live
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=server.url)
    context.set_default_timeout(WAIT)
    page = context.new_page()
    page.goto("/console/sign-in")
    # Signing in with the keyboard alone: the key field is the first one Tab reaches
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Workflows")).to_be_visible()
    for path in ("/console/workflows", f"/console/workflows/{LADDER}", "/console/runs",
                 f"/console/workflows/{LADDER}/versions", "/console/groups/deal_probability"):
        page.goto(path)
        # Wide tables scroll inside their box; the page itself never scrolls sideways
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    context.close()


def test_a_members_key_sees_the_editor_read_only_and_a_forged_save_is_refused(
    browser: Browser, live: tuple[LiveServer, str]
) -> None:
    # Given a key of a demo sales user (a member), signed in to the console
    server, _ = live
    with api(live) as client:
        member_id = client.get("/api/v1/team").json()["settings"]["sales_users"][0]
        member_key = client.post("/api/v1/team/keys", json={
            "name": "member in the browser", "user_id": member_id}).json()["key"]
        before = client.get(f"/api/v1/workflows/{LADDER}").json()["version"]
    context = browser.new_context(viewport=VIEWPORT, base_url=server.url)
    context.set_default_timeout(WAIT)
    page = context.new_page()
    page.goto("/console/sign-in")
    page.get_by_label("API key").fill(member_key)
    page.get_by_role("button", name="Sign in with key").click()
    expect(page.get_by_role("heading", name="Workflows")).to_be_visible()

    # When the member opens a ladder step
    page.goto(f"/console/workflows/{LADDER}")

    # Then the definition is read-only, with no save button, while the dry run is offered
    expect(page.get_by_label("Definition (JSON) — read-only: only an admin can save")).to_have_attribute(
        "readonly", "")
    expect(page.get_by_role("button", name="Save as a new version")).to_have_count(0)
    expect(page.get_by_role("button", name="Dry run")).to_be_visible()

    # When the page posts a save anyway, with the session's CSRF token, and without it
    token = page.locator("#editor").get_attribute("data-csrf")
    document = page.get_by_label("Definition (JSON) — read-only: only an admin can save").input_value()
    forged = page.evaluate(
        """async ([token, document, path]) => {
             const post = async (body) => (await fetch(path, {method: "POST", body,
               headers: {"Content-Type": "application/x-www-form-urlencoded"}})).status;
             const form = (t) => new URLSearchParams(t === null ? {document} : {csrf_token: t, document});
             return [await post(form(token)), await post(form(null))];
           }""",
        [token, document, f"/console/workflows/{LADDER}"],
    )

    # Then both are refused (403) and the workflow keeps its version
    assert forged == [403, 403]
    with api(live) as client:
        assert client.get(f"/api/v1/workflows/{LADDER}").json()["version"] == before
    context.close()


def test_an_admins_form_without_its_csrf_token_is_refused(
    page: Page, live: tuple[LiveServer, str]
) -> None:
    # Given the admin's editor, signed in
    page.goto(f"/console/workflows/{LADDER}")
    with api(live) as client:
        before = client.get(f"/api/v1/workflows/{LADDER}").json()["version"]

    # When the form's CSRF token is removed (as a cross-site form would lack it) and it is sent
    page.evaluate("document.querySelector('#editor input[name=csrf_token]').remove()")
    editor = page.get_by_label("Definition (JSON)")
    document = json.loads(editor.input_value())
    document["name"] = "Saved without a token"
    editor.fill(json.dumps(document, indent=2))
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name="Save as a new version").click()

    # Then the server refuses it and nothing is saved
    assert answer.value.status == 403
    expect(page.get_by_text("CSRF token is missing")).to_be_visible()
    with api(live) as client:
        assert client.get(f"/api/v1/workflows/{LADDER}").json()["version"] == before


def test_every_page_fits_1280_pixels_and_every_control_has_a_name(
    page: Page, live: tuple[LiveServer, str]
) -> None:
    # Given the admin signed in at 1280 × 800 (the fixture's viewport)
    paths = ["/console/workflows", f"/console/workflows/{LADDER}", "/console/runs",
             f"/console/workflows/{LADDER}/versions", "/console/groups/deal_probability",
             "/console/forecast?group_by=owner", "/console/analytics", "/console/settings"]
    for path in paths:
        # When each page is opened
        page.goto(path)
        # Then it never scrolls sideways, and every form control has an accessible name
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
        unnamed = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                 .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                              && !e.getAttribute('aria-labelledby') && !e.title)
                 .map(e => e.outerHTML.slice(0, 120))"""
        )
        assert unnamed == [], (path, unnamed)
