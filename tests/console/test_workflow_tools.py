"""The editor's tools over HTTP: dry run and record search, version history with diff and
restore, the group matrix and the impact preview — each answering what the API answers for
the same input (the console calls the same services and holds no logic of its own)."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from console.console_forms import form_token, sign_in
from litestar import Litestar
from litestar.testing import TestClient

from server.core.starter import shipped_documents

LADDER = "deal-probability-60"
GROUP = "deal_probability"


def ladder_document(key: str = LADDER) -> dict[str, Any]:
    return next(d for d in shipped_documents() if d["id"] == key)


def csrf(page: str) -> str:
    match = re.search(r'data-csrf="([^"]+)"', page)
    assert match, page
    return match.group(1)


def new_deal(client: TestClient[Litestar], headers: dict[str, str], title: str,
             **fields: Any) -> dict[str, Any]:
    resp = client.post("/api/v1/deals", headers=headers, json={"title": title, **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


def demo_deal(client: TestClient[Litestar], headers: dict[str, str]) -> dict[str, Any]:
    """A deal as the demo has them: in proposal, budgetary, a high relationship (60 %)."""
    return new_deal(client, headers, "Initech TPS portal", stage="proposal", amount=12000,
                    custom={"proposal_type": "budgetary", "relationship": "high"})


def tool_post(console: TestClient[Litestar], url: str, body: dict[str, Any],
              token: str | None) -> Any:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["X-CSRF-Token"] = token
    return console.post(url, content=json.dumps(body), headers=headers)


# --- dry run --------------------------------------------------------------------------------


def test_a_dry_run_on_a_stored_deal_answers_what_the_api_answers(
    console: TestClient[Litestar], starter: None, team: Any
) -> None:
    # Given a demo-like deal (60 %) and the editor of the 70 % step
    deal = demo_deal(console, team.headers)
    page = console.get("/console/workflows/deal-probability-70").text
    assert 'id="dry-run"' in page and "/console/static/tools.js" in page
    seventy = ladder_document("deal-probability-70")

    # When the draft is dry-run on that deal, and the 60 % step's too
    url = "/console/workflows/deal-probability-70/dry-run"
    not_matched = tool_post(console, url, {"document": json.dumps(seventy),
                                           "record_id": str(deal["id"])}, csrf(page))
    sixty = tool_post(console, f"/console/workflows/{LADDER}/dry-run",
                      {"document": json.dumps(ladder_document()), "record_id": deal["id"]},
                      csrf(page))

    # Then the 70 % step says which part of its condition was false, the 60 % one matches,
    # and both answers are the API's dry run of the same input
    assert not_matched.status_code == 200, not_matched.text
    result = not_matched.json()
    assert (result["trigger_fires"], result["matched"]) == (True, False)
    assert "failed" in result["condition"] and result["changes"] == {}
    assert sixty.json()["matched"] is True
    assert sixty.json()["changes"] == {"probability": 60}
    for key, answer in (("deal-probability-70", result), (LADDER, sixty.json())):
        api = console.post("/api/v1/workflows/test", headers=team.headers, json={
            "workflow": ladder_document(key), "record_id": deal["id"]})
        assert api.status_code == 200 and api.json() == answer, key


def test_a_dry_run_on_a_stored_deal_sees_its_contact(
    console: TestClient[Litestar], starter: None, team: Any
) -> None:
    # Given a deal with a contact, and a draft whose condition reads the contact's company
    contact = console.post("/api/v1/contacts", headers=team.headers,
                           json={"name": "Bill", "company": "Initech"}).json()
    deal = new_deal(console, team.headers, "TPS portal", contact_id=contact["id"])
    draft = ladder_document()
    draft["condition"] = "record.contact.company == 'Initech'"
    page = console.get(f"/console/workflows/{LADDER}").text
    # When it is dry-run on the deal
    answer = tool_post(console, f"/console/workflows/{LADDER}/dry-run",
                       {"document": json.dumps(draft), "record_id": deal["id"]}, csrf(page))
    # Then it matched on the contact, as the API's dry run does
    assert answer.status_code == 200, answer.text
    assert answer.json()["matched"] is True
    assert answer.json()["record_after"]["contact"]["company"] == "Initech"
    api = console.post("/api/v1/workflows/test", headers=team.headers,
                       json={"workflow": draft, "record_id": deal["id"]})
    assert api.status_code == 200 and api.json() == answer.json()


def test_a_dry_run_on_a_pasted_record_and_its_refusals(
    console: TestClient[Litestar], starter: None, team: Any
) -> None:
    page = console.get(f"/console/workflows/{LADDER}").text
    url = f"/console/workflows/{LADDER}/dry-run"
    record = {"title": "Pasted", "status": "open", "stage": "proposal",
              "custom": {"proposal_type": "budgetary", "relationship": "high"}}
    draft = ladder_document()
    draft["actions"][0]["set"]["probability"] = 65

    pasted = tool_post(console, url, {"document": json.dumps(draft),
                                      "record": json.dumps(record)}, csrf(page))

    assert pasted.status_code == 200, pasted.text
    api = console.post("/api/v1/workflows/test", headers=team.headers,
                       json={"workflow": draft, "record": record}).json()
    assert pasted.json() == api and api["changes"] == {"probability": 65}
    # a broken draft names the field, as the API does; a POST without the CSRF header is refused
    draft["condition"] = "record.stage == "
    broken = tool_post(console, url, {"document": json.dumps(draft),
                                      "record": json.dumps(record)}, csrf(page))
    assert broken.status_code == 422
    assert any(e["field"] == "$.condition" for e in broken.json()["errors"])
    assert tool_post(console, url, {"document": json.dumps(draft),
                                    "record": json.dumps(record)}, None).status_code == 403
    neither = tool_post(console, url, {"document": json.dumps(draft)}, csrf(page))
    assert neither.status_code == 422 and "pick a record" in neither.json()["message"]


def test_record_search_finds_the_teams_records_only(
    console: TestClient[Litestar], team: Any, make_team: Any
) -> None:
    # Given a deal named Initech in each of two teams, and a contact and lead in team A
    ours = new_deal(console, team.headers, "Initech TPS portal")
    new_deal(console, team.headers, "Globex")
    other = make_team("Beta")
    theirs = new_deal(console, other.headers, "Initech (team B)")
    contact = console.post("/api/v1/contacts", headers=team.headers,
                           json={"name": "Peter Gibbons", "email": "peter@initech.test"}).json()
    lead = console.post("/api/v1/leads", headers=team.headers,
                        json={"contact_id": contact["id"]}).json()

    # When the console searches deals by title, contacts by name and leads by contact name
    deals = console.get("/console/records", params={"entity": "deal", "q": "initech"}).json()
    contacts = console.get("/console/records", params={"entity": "contact", "q": "gibb"}).json()
    leads = console.get("/console/records", params={"entity": "lead", "q": "Peter"}).json()

    # Then only team A's records are found
    assert [d["id"] for d in deals] == [ours["id"]] and theirs["id"] != ours["id"]
    assert [c["id"] for c in contacts] == [contact["id"]]
    assert [x["id"] for x in leads] == [lead["id"]] and "Peter Gibbons" in leads[0]["label"]
    assert console.get("/console/records", params={"entity": "deal", "q": "team B"}).json() == []
    assert len(console.get("/console/records", params={"entity": "deal"}).json()) == 2


# --- versions ---------------------------------------------------------------------------------


def renamed(name: str) -> dict[str, Any]:
    document = ladder_document()
    document["name"] = name
    return document


def test_the_versions_page_lists_versions_and_diffs_two(
    console: TestClient[Litestar], starter: None, team: Any
) -> None:
    # Given a second version with another name
    resp = console.put(f"/api/v1/workflows/{LADDER}", headers=team.headers,
                       json=renamed("60%: renamed"))
    assert resp.status_code == 200, resp.text

    page = console.get(f"/console/workflows/{LADDER}/versions", params={"a": 1, "b": 2}).text

    assert re.findall(r'data-version="(\d+)"', page) == ["2", "1"]
    assert "admin@acme.test" in page
    removed = re.findall(r'<tr class="changed" data-kind="changed">(.*?)</tr>', page, re.S)
    assert len(removed) == 1, page
    cells = html.unescape(removed[0])
    old_name = ladder_document()["name"]
    assert f'"name": "{old_name}",' in cells and '"name": "60%: renamed",' in cells
    assert 'class="removed"' in removed[0] and 'class="added"' in removed[0]
    assert page.count('data-kind="equal"') > 5


def test_restore_saves_the_old_document_as_the_next_version(
    console: TestClient[Litestar], starter: None, team: Any
) -> None:
    console.put(f"/api/v1/workflows/{LADDER}", headers=team.headers, json=renamed("v2"))
    page = console.get(f"/console/workflows/{LADDER}/versions").text
    url = f"/console/workflows/{LADDER}/versions/1/restore"
    assert f'action="{url}"' in page

    assert console.post(url, data={}).status_code == 403  # no CSRF token
    resp = console.post(url, data={"csrf_token": form_token(page)}, follow_redirects=False)

    assert resp.status_code == 303
    assert resp.headers["location"] == f"/console/workflows/{LADDER}/versions?restored=3"
    assert "Restored as version 3" in console.get(resp.headers["location"]).text
    three = console.get(f"/api/v1/workflows/{LADDER}/versions/3", headers=team.headers).json()
    one = console.get(f"/api/v1/workflows/{LADDER}/versions/1", headers=team.headers).json()
    assert three["document"] == one["document"]
    (entry,) = console.get("/api/v1/audit", params={"action": "workflow.save"},
                           headers=team.headers).json()["items"][-1:]
    assert (entry["via"], entry["target"], entry["summary"]["after"]["version"]) == (
        "console", LADDER, 3)


def test_a_restore_that_would_overlap_is_refused_with_409(
    console: TestClient[Litestar], starter: None, team: Any
) -> None:
    # Given version 2 of the 60 % step that gives up proposal/firm/medium, and 70 % then
    # taking it: version 1 of the 60 % step would now overlap the 70 % step
    sixty, seventy = ladder_document(), ladder_document("deal-probability-70")
    cell = "(record.stage == 'proposal' && record.custom.proposal_type == 'firm' && " \
           "record.custom.relationship == 'medium')"
    assert cell in sixty["condition"]
    sixty["condition"] = sixty["condition"].replace(" || " + cell, "").replace(cell + " || ", "")
    seventy["condition"] = seventy["condition"][:-1] + " || " + cell + ")"
    for document in (sixty, seventy):
        resp = console.put(f"/api/v1/workflows/{document['id']}", headers=team.headers,
                           json=document)
        assert resp.status_code == 200, resp.text
    page = console.get(f"/console/workflows/{LADDER}/versions").text

    resp = console.post(f"/console/workflows/{LADDER}/versions/1/restore",
                        data={"csrf_token": form_token(page)})

    assert resp.status_code == 409
    assert "the group would overlap" in resp.text and 'class="overlap"' in resp.text
    assert console.get(f"/api/v1/workflows/{LADDER}", headers=team.headers).json()["version"] == 2


def test_a_member_cannot_restore(
    client: TestClient[Litestar], member_key: str, starter: None, team: Any
) -> None:
    client.put(f"/api/v1/workflows/{LADDER}", headers=team.headers, json=renamed("v2"))
    assert sign_in(client, key=member_key).status_code == 303
    page = client.get(f"/console/workflows/{LADDER}/versions").text
    assert "Restore</button>" not in page

    resp = client.post(f"/console/workflows/{LADDER}/versions/1/restore",
                       data={"csrf_token": form_token(page)})

    assert resp.status_code == 403 and "Only an admin" in resp.text
    assert client.get(f"/api/v1/workflows/{LADDER}", headers=team.headers).json()["version"] == 2
    # ... while a member may dry-run (read-only)
    dry = tool_post(client, f"/console/workflows/{LADDER}/dry-run", {
        "document": json.dumps(ladder_document()), "record": json.dumps({"stage": "proposal"})},
        csrf(client.get(f"/console/workflows/{LADDER}").text))
    assert dry.status_code == 200 and dry.json()["matched"] is False


# --- the group matrix and the impact preview ----------------------------------------------


def matrix_rows(page: str) -> list[tuple[dict[str, Any], list[str], dict[str, Any], str]]:
    rows = re.findall(
        r"<tr data-values='([^']*)' data-workflows='([^']*)' data-state=\"(\w+)\"(.*?)</tr>",
        page, re.S)
    out = []
    for values, workflows, state, cells in rows:
        sets = re.search(r"data-sets='([^']*)'|data-sets=\"\{\}\"", cells)
        assert sets, cells
        out.append((json.loads(html.unescape(values)), json.loads(html.unescape(workflows)),
                    json.loads(html.unescape(sets.group(1))) if sets.group(1) else {}, state))
    return out


def test_the_matrix_page_shows_the_apis_matrix(
    console: TestClient[Litestar], starter: None, team: Any
) -> None:
    listing = console.get("/console/workflows").text
    assert f'href="/console/groups/{GROUP}"' in listing

    page = console.get(f"/console/groups/{GROUP}").text

    api = console.get(f"/api/v1/groups/{GROUP}/matrix", headers=team.headers).json()
    shown = matrix_rows(page)
    assert len(shown) == 24
    assert shown == [(r["values"], r["workflows"], r["sets"], r["state"]) for r in api["rows"]]
    sixty = [r for r in shown if r[1] == [LADDER]]
    assert sixty and all(s == {"probability": 60} for _, _, s, _ in sixty)
    assert 'class="heat band-6"' in page and 'class="heat band-9"' in page
    assert f'<a href="/console/workflows/{LADDER}">{LADDER}</a>' in page
    assert "style=" not in page  # the CSP forbids style attributes


def test_a_gap_and_an_overlap_stand_out_in_the_matrix(
    console: TestClient[Litestar], team: Any
) -> None:
    # Given a group with a gap and an overlap (a domain widened after the saves)
    def step(key: str, condition: str, probability: int) -> dict[str, Any]:
        return {"id": key, "name": key, "entity": "deal", "trigger": {"type": "record_saved"},
                "group": "g", "exclusive": True, "condition": condition,
                "actions": [{"type": "field_update", "set": {"probability": probability}}]}

    console.put("/api/v1/team", headers=team.headers,
                json={"field_domains": {"deal.custom.kind": ["a", "b"]}})
    for document in (step("wa", "record.custom.kind == 'a' || record.custom.kind == 'z'", 10),
                     step("wb", "record.custom.kind == 'b' || record.custom.kind == 'z'", 20)):
        assert console.post("/api/v1/workflows", headers=team.headers,
                            json=document).status_code == 201
    console.put("/api/v1/team", headers=team.headers,
                json={"field_domains": {"deal.custom.kind": ["a", "b", "z", "new"]}})

    page = console.get("/console/groups/g").text

    assert [(v["deal.custom.kind"], w, s) for v, w, _, s in matrix_rows(page)] == [
        ("a", ["wa"], "ok"), ("b", ["wb"], "ok"), ("z", ["wa", "wb"], "overlap"),
        ("new", [], "gap")]
    assert '<td class="heat gap" data-sets="{}"><strong>gap</strong>' in page
    assert '<td class="heat overlap" data-sets="{}"><strong>overlap</strong>' in page
    assert console.get("/console/groups/nope").status_code == 404


def test_the_impact_preview_answers_what_the_api_answers(
    console: TestClient[Litestar], starter: None, team: Any
) -> None:
    # Given open deals on the 60 % step and elsewhere
    for n in range(3):
        demo_deal(console, team.headers)
    new_deal(console, team.headers, "Elsewhere", stage="negotiation", amount=500,
             expected_close_date="2027-01-15",
             custom={"proposal_type": "firm", "relationship": "high"})
    page = console.get(f"/console/workflows/{LADDER}").text
    assert 'id="impact-button"' in page
    draft = ladder_document()
    draft["actions"][0]["set"]["probability"] = 65

    resp = tool_post(console, f"/console/groups/{GROUP}/preview",
                     {"document": json.dumps(draft)}, csrf(page))

    assert resp.status_code == 200, resp.text
    api = console.post(f"/api/v1/groups/{GROUP}/preview", headers=team.headers,
                       json={"workflows": [draft]}).json()
    assert resp.json() == api
    assert api["deals_changed"] == 3
    assert all(c["changes"] == {"probability": [60, 65]} for c in api["changes"])
    assert tool_post(console, f"/console/groups/{GROUP}/preview",
                     {"document": json.dumps(draft)}, None).status_code == 403


def test_a_read_key_may_not_check_dry_run_or_preview_as_over_the_api(
    client: TestClient[Litestar], engine: Any, starter: None, team: Any
) -> None:
    # Given a read-scoped key of the team's admin, signed in to the console
    from server.core.db import make_session_factory, transaction
    from server.core.models import User
    from server.core.services.teams import create_key

    with transaction(make_session_factory(engine)) as session:
        read = create_key(session, session.get(User, team.user_id), name="bi", scope="read")
    assert sign_in(client, key=read).status_code == 303
    page = client.get(f"/console/workflows/{LADDER}").text
    token = csrf(page)
    draft = json.dumps(ladder_document())

    # When it posts the editor's tools anyway
    answers = {
        "check": client.post(f"/console/workflows/{LADDER}/check", content=draft,
                             headers={"content-type": "application/json", "X-CSRF-Token": token}),
        "dry-run": tool_post(client, f"/console/workflows/{LADDER}/dry-run",
                             {"document": draft, "record": json.dumps({"stage": "proposal"})}, token),
        "preview": tool_post(client, f"/console/groups/{GROUP}/preview", {"document": draft}, token),
    }

    # Then each is refused, as the API refuses the same key, and the page offers none of them
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 403)
    assert "only reads" in answers["dry-run"].text
    headers = {"Authorization": f"Bearer {read}"}
    api = client.post("/api/v1/workflows/test", headers=headers,
                      json={"workflow": ladder_document(), "record": {"stage": "proposal"}})
    assert api.status_code == 403
    assert 'id="dry-run"' not in page and 'id="read-only-tools"' in page


def test_the_tools_draw_on_the_keys_rate_limit_as_the_api_does(
    console: TestClient[Litestar], app: Litestar, starter: None, team: Any
) -> None:
    # Given a burst of 3 on a clock that does not move
    from server.core.ratelimit import LocalBuckets

    before = app.state.rate_limiter
    app.state.rate_limiter = LocalBuckets(0.001, 3, clock=lambda: 1000.0)
    try:
        token = csrf(console.get(f"/console/workflows/{LADDER}").text)
        draft = json.dumps(ladder_document())

        # When the signed-in key previews the group's impact again and again
        answers = [tool_post(console, f"/console/groups/{GROUP}/preview", {"document": draft},
                             token).status_code for _ in range(4)]
        api = console.get("/api/v1/workflows", headers=team.headers)

        # Then its burst is spent in the console and in the API alike: one bucket per key
        assert answers == [200, 200, 200, 429]
        assert api.status_code == 429
    finally:
        app.state.rate_limiter = before


def test_the_heatmap_lays_every_combination_out_once_by_stage(
    console: TestClient[Litestar], starter: None, team: Any
) -> None:
    page = console.get(f"/console/groups/{GROUP}").text
    api = console.get(f"/api/v1/groups/{GROUP}/matrix", headers=team.headers).json()

    heatmap = re.search(r'<table class="matrix heatmap" id="heatmap">(.*?)</table>', page, re.S)
    assert heatmap, "no heatmap"
    lines = re.findall(r'<tr data-line="([^"]+)"><th scope="row">[^<]*</th>(.*?)</tr>',
                       heatmap.group(1), re.S)
    # one line per stage (the factor with the most values), one column per proposal type
    # and relationship: 4 × 6 cells, each the probability the API's matrix assigns
    stages = sorted({r["values"]["deal.stage"] for r in api["rows"]})
    assert sorted(value for value, _ in lines) == stages
    expected = {(r["values"]["deal.stage"], r["sets"]["probability"]) for r in api["rows"]}
    shown = {(value, int(p)) for value, cells in lines
             for p in re.findall(r'>(\d+) %</a>', cells)}
    assert shown == expected
    assert all(len(re.findall(r'<td class="heat', cells)) == 6 for _, cells in lines)
    assert 'href="/console/workflows/deal-probability-90"' in heatmap.group(1)
