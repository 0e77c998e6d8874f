"""The admin console over HTTP: sign-in and sessions, CSRF, roles, headers, and each page
showing what the API shows (the browser tests in test_browser.py drive the same pages)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from console.console_forms import form_token, sign_in
from litestar import Litestar
from litestar.testing import TestClient

from server.core.db import make_session_factory, transaction
from server.core.models import ConsoleSession, Team
from server.core.scope import Actor, TeamScope
from server.core.services.activity import workflow_activity
from server.core.services.console_sessions import set_password
from server.core.services.teams import create_key
from server.core.starter import shipped_documents

LADDER = "deal-probability-60"
OVERLAP = ("record.custom.proposal_type == 'firm' && record.custom.relationship == 'medium'",
           "record.custom.proposal_type == 'firm' && record.custom.relationship == 'high'")


def ladder_document(key: str = LADDER) -> dict[str, Any]:
    return next(d for d in shipped_documents() if d["id"] == key)


def overlapping() -> str:
    """deal-probability-60 edited so it also claims proposal/firm/high, which is 70's."""
    document = ladder_document()
    document["condition"] = document["condition"].replace(*OVERLAP)
    return json.dumps(document, indent=2)


def csrf(page: str) -> str:
    match = re.search(r'data-csrf="([^"]+)"', page)
    assert match, page
    return match.group(1)


# --- headers, sign-in, sessions -------------------------------------------------------------


def test_pages_carry_the_security_headers_and_ask_to_sign_in(client: TestClient[Litestar]) -> None:
    # When a page is asked for without a session
    resp = client.get("/console/workflows", follow_redirects=False)

    # Then the browser is sent to sign in, and every answer carries the headers
    assert resp.status_code == 302
    assert resp.headers["location"] == "/console/sign-in"
    page = client.get("/console/sign-in")
    for answer in (resp, page):
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "form-action 'self'" in csp and "base-uri 'none'" in csp
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text  # no inline script: the CSP would refuse it
    assert "/console" not in json.dumps(client.get("/schema/openapi.json").json()["paths"])


def test_signing_in_with_a_key_sets_a_strict_http_only_cookie(
    client: TestClient[Litestar], team: Any, starter: None
) -> None:
    resp = sign_in(client, key=team.key)

    assert resp.status_code == 303 and resp.headers["location"] == "/console/workflows"
    cookie = next(c for c in resp.headers.get_list("set-cookie") if "dealflow_session=" in c)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    page = client.get("/console/workflows")
    assert page.status_code == 200
    assert f'href="/console/workflows/{LADDER}"' in page.text
    assert "admin@acme.test (admin)" in page.text


def test_a_wrong_key_or_password_signs_no_one_in(
    client: TestClient[Litestar], team: Any, engine: Any
) -> None:
    with transaction(make_session_factory(engine)) as session:
        set_password(session, session.get(Team, team.team_id), "admin@acme.test", "correct horse")

    for fields in ({"key": "dfk_notakeyatall000000000000"},
                   {"email": "admin@acme.test", "password": "wrong horse"},
                   {"email": "nobody@acme.test", "password": "correct horse"}):
        resp = sign_in(client, **fields)
        assert resp.status_code == 401, fields
        assert "dealflow_session" not in resp.headers.get("set-cookie", "")
        assert client.get("/console/runs", follow_redirects=False).status_code == 302

    resp = sign_in(client, email="admin@acme.test", password="correct horse")
    assert resp.status_code == 303
    assert client.get("/console/runs").status_code == 200


def test_signing_out_ends_the_session_for_the_old_cookie_too(
    console: TestClient[Litestar],
) -> None:
    cookie = console.cookies.get("dealflow_session")
    page = console.get("/console/workflows").text

    resp = console.post("/console/sign-out", data={"csrf_token": form_token(page)},
                        follow_redirects=False)

    assert resp.status_code == 303
    console.cookies.set("dealflow_session", cookie, path="/console")
    assert console.get("/console/workflows", follow_redirects=False).status_code == 302


def test_revoking_the_key_ends_its_sessions(
    console: TestClient[Litestar], team: Any
) -> None:
    assert console.get("/console/workflows").status_code == 200

    prefix = team.key[:10]
    keys = console.get("/api/v1/team/keys", headers=team.headers).json()
    (own,) = [k for k in keys if k["prefix"] == prefix]
    assert console.delete(f"/api/v1/team/keys/{own['id']}", headers=team.headers).status_code == 204

    assert console.get("/console/workflows", follow_redirects=False).status_code == 302


def test_ingest_keys_cannot_sign_in_and_read_keys_only_read(
    client: TestClient[Litestar], engine: Any, team: Any, starter: None
) -> None:
    with transaction(make_session_factory(engine)) as session:
        admin = session.get(Team, team.team_id)
        assert admin is not None
        from server.core.models import User

        user = session.get(User, team.user_id)
        ingest = create_key(session, user, name="erp", scope="ingest")
        read = create_key(session, user, name="bi", scope="read")

    assert sign_in(client, key=ingest).status_code == 401

    assert sign_in(client, key=read).status_code == 303
    page = client.get(f"/console/workflows/{LADDER}").text
    assert 'id="save"' not in page and "readonly" in page
    resp = client.post(f"/console/workflows/{LADDER}",
                       data={"csrf_token": csrf(page), "document": json.dumps(ladder_document())})
    assert resp.status_code == 403


def test_the_sign_in_form_needs_its_own_token(client: TestClient[Litestar], team: Any) -> None:
    # A sign-in posted from elsewhere (login CSRF) carries neither the form's token nor cookie
    resp = client.post("/console/sign-in", data={"key": team.key}, follow_redirects=False)

    assert resp.status_code == 403
    assert "dealflow_session" not in resp.headers.get("set-cookie", "")


def test_repeated_failed_sign_ins_are_refused_for_a_while(
    client: TestClient[Litestar], app: Litestar, team: Any
) -> None:
    from server.console import SignInLimiter

    now = [0.0]
    app.state.console_sign_in_limiter = SignInLimiter(clock=lambda: now[0])
    try:
        for _ in range(10):
            assert sign_in(client, key="dfk_wrong00000000000000000000").status_code == 401
        sign_in(client, key="dfk_wrong00000000000000000000")

        assert sign_in(client, key=team.key).status_code == 429
        now[0] += 60
        assert sign_in(client, key=team.key).status_code == 303
    finally:
        app.state.console_sign_in_limiter = SignInLimiter()


def test_sessions_are_stored_as_digests(console: TestClient[Litestar], engine: Any) -> None:
    token = console.cookies.get("dealflow_session")
    with make_session_factory(engine)() as session:
        (row,) = session.query(ConsoleSession).all()
    assert token and row.token_hash != token and len(row.token_hash) == 64
    assert row.role == "admin" and row.key_id is not None


# --- CSRF and roles ------------------------------------------------------------------------


def test_a_post_without_the_csrf_token_is_refused(
    console: TestClient[Litestar], starter: None
) -> None:
    document = ladder_document()
    document["name"] = "Renamed"

    resp = console.post(f"/console/workflows/{LADDER}", data={"document": json.dumps(document)})
    assert resp.status_code == 403
    assert "CSRF" in resp.text and resp.headers["content-type"].startswith("text/html")
    resp = console.post(f"/console/workflows/{LADDER}/check", content=json.dumps(document),
                        headers={"content-type": "application/json"})
    assert resp.status_code == 403
    assert console.get(f"/api/v1/workflows/{LADDER}",
                       headers={"Authorization": ""}).status_code == 401


def test_a_member_sees_the_editor_read_only_and_cannot_save(
    client: TestClient[Litestar], member_key: str, starter: None, team: Any
) -> None:
    assert sign_in(client, key=member_key).status_code == 303
    page = client.get(f"/console/workflows/{LADDER}").text
    assert 'id="save"' not in page and "only an admin can save" in page

    document = ladder_document()
    document["name"] = "Renamed by a member"
    resp = client.post(f"/console/workflows/{LADDER}",
                       data={"csrf_token": csrf(page), "document": json.dumps(document)})

    assert resp.status_code == 403
    stored = client.get(f"/api/v1/workflows/{LADDER}", headers=team.headers).json()
    assert stored["version"] == 1
    forged = client.post("/console/executions/1/retry", data={"csrf_token": csrf(page)})
    assert forged.status_code == 403 and "Only an admin" in forged.text


# --- workflows --------------------------------------------------------------------------


def test_an_overlapping_edit_is_named_while_typing_and_refused_at_save(
    console: TestClient[Litestar], starter: None, team: Any
) -> None:
    page = console.get(f"/console/workflows/{LADDER}").text
    assert 'id="valid"' in page

    # When the condition is edited to claim proposal/firm/high too
    resp = console.post(f"/console/workflows/{LADDER}/check", content=overlapping(),
                        headers={"content-type": "application/json", "X-CSRF-Token": csrf(page)})

    # Then the check names the overlapping combination and both workflows
    assert resp.status_code == 200
    result = resp.json()
    assert not result["valid"]
    group = result["group"]
    assert group["overlap_count"] == 1
    (overlap,) = group["overlaps"]
    assert sorted(overlap["workflows"]) == ["deal-probability-60", "deal-probability-70"]
    assert overlap["combination"]["deal.custom.proposal_type"] == "firm"
    assert overlap["combination"]["deal.custom.relationship"] == "high"
    # ... and the same answer as the API's group check would give once saved: a 409 page
    saved = console.post(f"/console/workflows/{LADDER}",
                         data={"csrf_token": csrf(page), "document": overlapping()})
    assert saved.status_code == 409
    assert 'class="overlap"><code>deal.custom.proposal_type = "firm"</code>' in saved.text
    assert '<code>deal.custom.relationship = "high"</code>' in saved.text
    assert "deal-probability-70" in saved.text
    api = console.get(f"/api/v1/workflows/{LADDER}", headers=team.headers).json()
    assert api["version"] == 1


def test_the_check_reports_json_paths_and_jmespath_positions(
    console: TestClient[Litestar], starter: None
) -> None:
    page = console.get(f"/console/workflows/{LADDER}").text
    headers = {"content-type": "application/json", "X-CSRF-Token": csrf(page)}
    document = ladder_document()
    document["condition"] = "record.status == "
    document["actions"][0]["set"] = "not an object"

    result = console.post(f"/console/workflows/{LADDER}/check", content=json.dumps(document),
                          headers=headers).json()
    api = console.post("/api/v1/workflows/validate", json=document,
                       headers={"Authorization": page and ""})  # same validator, same errors

    fields = {e["field"] for e in result["errors"]}
    assert "$.condition" in fields and any(f.startswith("$.actions[0]") for f in fields)
    condition = next(e for e in result["errors"] if e["field"] == "$.condition")
    assert re.search(r"\d", condition["message"]), condition  # a position
    assert api.status_code == 401
    broken = console.post(f"/console/workflows/{LADDER}/check", content="{\"id\": ",
                          headers=headers).json()
    assert broken["errors"][0]["message"].startswith("not JSON")


def test_a_valid_edit_is_saved_as_a_new_version(
    console: TestClient[Litestar], starter: None, team: Any
) -> None:
    page = console.get(f"/console/workflows/{LADDER}").text
    document = ladder_document()
    document["name"] = "60%: edited in the console"

    resp = console.post(f"/console/workflows/{LADDER}",
                        data={"csrf_token": csrf(page), "document": json.dumps(document)},
                        follow_redirects=False)

    assert resp.status_code == 303
    assert resp.headers["location"] == f"/console/workflows/{LADDER}?saved=2"
    assert "Saved as version 2" in console.get(resp.headers["location"]).text
    api = console.get(f"/api/v1/workflows/{LADDER}", headers=team.headers).json()
    assert api["version"] == 2 and api["name"] == "60%: edited in the console"
    # and the audit log says the change came through the console, by the signed-in user
    (entry,) = console.get("/api/v1/audit", params={"action": "workflow.save"},
                           headers=team.headers).json()["items"][-1:]
    assert (entry["via"], entry["user_id"], entry["target"]) == ("console", team.user_id, LADDER)


# --- runs -------------------------------------------------------------------------------


def test_the_workflows_figures_equal_the_apis(
    console: TestClient[Litestar], starter: None, team: Any
) -> None:
    deals = [
        {"title": "A", "stage": "proposal",
         "custom": {"proposal_type": "budgetary", "relationship": "high"}},
        {"title": "B", "stage": "proposal",
         "custom": {"proposal_type": "budgetary", "relationship": "high"}},
        {"title": "C", "stage": "negotiation",
         "custom": {"proposal_type": "firm", "relationship": "low"}},
    ]
    for deal in deals:
        assert console.post("/api/v1/deals", json=deal, headers=team.headers).status_code == 201

    page = console.get("/console/workflows").text

    for key in (LADDER, "deal-probability-70", "deal-probability-10"):
        row = re.search(rf'<tr data-workflow="{key}">(.*?)</tr>', page, re.S)
        assert row, key
        runs = re.search(r"data-runs>(?:<a [^>]*>)?(\d+)", row.group(1))
        errors = re.search(r"data-errors>(\d+)", row.group(1))
        api = console.get("/api/v1/runs", params={"workflow": key, "limit": 200},
                          headers=team.headers).json()["items"]
        api_errors = [r for r in api if r["status"] == "error"]
        assert runs and int(runs.group(1)) == len(api), key
        assert errors and int(errors.group(1)) == len(api_errors), key
    assert int(re.search(rf'data-workflow="{LADDER}">.*?data-runs><a [^>]*>(\d+)', page,
                         re.S).group(1)) >= 2  # both deals (and what their updates caused)


def test_activity_counts_the_window_and_finds_an_older_last_run(
    app: Litestar, console: TestClient[Litestar], starter: None, team: Any
) -> None:
    # Given one deal whose save the 60 % step matched
    deal = {"title": "A", "stage": "proposal",
            "custom": {"proposal_type": "budgetary", "relationship": "high"}}
    assert console.post("/api/v1/deals", json=deal, headers=team.headers).status_code == 201
    runs = console.get("/api/v1/runs", params={"workflow": LADDER},
                       headers=team.headers).json()["items"]
    ran = max(dt.datetime.fromisoformat(r["created_at"]) for r in runs)
    runtime = app.state.runtime
    with runtime.sessions() as session:
        scope = TeamScope(session, Actor(team.team_id, team.user_id), runtime.engine)
        # When the activity is read now, and two days later
        today = workflow_activity(scope, now=ran + dt.timedelta(minutes=1))
        later = workflow_activity(scope, now=ran + dt.timedelta(days=2))
    # Then the run counts in its window only, and stays the last run afterwards
    assert runs and (today[LADDER].runs, today[LADDER].last_run_at) == (len(runs), ran)
    assert (later[LADDER].runs, later[LADDER].last_run_at) == (0, ran)
    assert later["deal-probability-10"].last_run_at is None


def test_a_loop_stopped_run_shows_its_cycle(
    console: TestClient[Litestar], team: Any
) -> None:
    # Given a workflow that increments custom.n whenever custom.n changes, and a deal
    counter = {"id": "self", "name": "self", "entity": "deal",
               "trigger": {"type": "record_saved", "fields": ["custom.n"]},
               "actions": [{"type": "formula", "field": "custom.n", "expression": "custom.n + 1"}]}
    assert console.post("/api/v1/workflows", json=counter, headers=team.headers).is_success
    deal = console.post("/api/v1/deals", json={"title": "Initech"}, headers=team.headers).json()
    # When n is set, and the loop it starts is stopped
    console.patch(f"/api/v1/deals/{deal['id']}", json={"custom": {"n": 0}}, headers=team.headers)
    # Then the explorer lists the loop run, and its page names the cycle
    listing = console.get("/console/runs", params={"status": "loop"}).text
    (run_id,) = set(re.findall(r'href="/console/runs/(\d+)"', listing))
    page = console.get(f"/console/runs/{run_id}").text
    assert "Loop stopped: self set custom.n → self" in page


def test_a_deals_run_is_found_in_the_explorer_and_explained(
    console: TestClient[Litestar], starter: None, team: Any
) -> None:
    deal = console.post("/api/v1/deals", headers=team.headers, json={
        "title": "Initech", "stage": "proposal",
        "custom": {"proposal_type": "budgetary", "relationship": "high"},
    }).json()

    listing = console.get("/console/runs", params={"entity": "deal", "record_id": deal["id"]})
    shown = [int(n) for n in re.findall(r'data-run="(\d+)"', listing.text)]
    api = console.get("/api/v1/runs", params={"entity": "deal", "record_id": deal["id"],
                                              "order": "newest"},
                      headers=team.headers).json()["items"]
    assert shown and [r["id"] for r in api] == shown
    run_id = min(shown)  # the deal's creation (the others follow from its field update)
    page = console.get(f"/console/runs/{run_id}").text

    assert f'data-evaluation="{LADDER}"' in page
    sixty = re.search(rf'data-evaluation="{LADDER}">(.*?)</tr>', page, re.S).group(1)
    assert "<td>yes" in sixty and "field_update" in sixty
    seventy = re.search(r'data-evaluation="deal-probability-70">(.*?)</tr>', page, re.S).group(1)
    assert "<td>no" in seventy
    by_status = console.get("/console/runs", params={"status": "error"}).text
    assert 'data-run="' not in by_status


def test_runs_are_paged_with_a_cursor(console: TestClient[Litestar], team: Any) -> None:
    console.post("/api/v1/workflows", headers=team.headers, json={
        "id": "every-deal", "name": "Every deal", "entity": "deal",
        "trigger": {"type": "record_saved"},
        "actions": [{"type": "field_update", "set": {"description": "seen"}}],
    })
    for n in range(27):
        console.post("/api/v1/deals", headers=team.headers, json={"title": f"D{n}"})

    first = console.get("/console/runs").text
    more = re.search(r'rel="next" href="([^"]+)"', first)
    assert more and len(re.findall(r'data-run="', first)) == 25
    second = console.get(more.group(1).replace("&amp;", "&")).text
    assert len(re.findall(r'data-run="', second)) >= 2
    ids = [int(n) for n in re.findall(r'data-run="(\d+)"', first + second)]
    # newest first, the first page starting at the latest run, no run twice
    every = [r["id"] for r in console.get("/api/v1/runs", params={"limit": 200},
                                          headers=team.headers).json()["items"]]
    assert ids == sorted(ids, reverse=True) and ids[0] == max(every)
    assert len(set(ids)) == len(ids)


def test_a_dead_execution_is_retried_from_its_run(
    console: TestClient[Litestar], team: Any, receiver: Any, app: Litestar
) -> None:
    # Given a partner that refuses the first POST (a permanent failure: the execution is dead)
    receiver.respond("/hook", 400)
    console.post("/api/v1/workflows", headers=team.headers, json={
        "id": "post-deals", "name": "Tell the partner", "entity": "deal",
        "trigger": {"type": "record_saved"},
        "actions": [{"type": "post_to", "url": receiver.url + "/hook"}],
    })
    console.post("/api/v1/deals", headers=team.headers, json={"title": "Initech"})
    assert app.state.runtime.runner.join(10)
    (execution,) = console.get("/api/v1/executions", headers=team.headers).json()["items"]
    assert execution["status"] == "dead"
    page = console.get(f"/console/runs/{execution['run_id']}").text
    assert f'action="/console/executions/{execution["id"]}/retry"' in page

    # When the admin presses Retry (the partner now answers 200)
    resp = console.post(f"/console/executions/{execution['id']}/retry",
                        data={"csrf_token": form_token(page)}, follow_redirects=False)

    # Then the execution is performed again and succeeds
    assert resp.status_code == 303
    assert app.state.runtime.runner.join(10)
    assert len(receiver.wait_for(2, "/hook")) == 2
    again = console.get(f"/api/v1/executions/{execution['id']}", headers=team.headers).json()
    assert again["status"] == "succeeded"
    assert "Retry</button>" not in console.get(resp.headers["location"]).text


def test_runs_are_filtered_by_time(console: TestClient[Litestar], team: Any) -> None:
    console.post("/api/v1/workflows", headers=team.headers, json={
        "id": "every-deal", "name": "Every deal", "entity": "deal",
        "trigger": {"type": "record_saved"},
        "actions": [{"type": "field_update", "set": {"description": "seen"}}],
    })
    console.post("/api/v1/deals", headers=team.headers, json={"title": "Now"})

    past = console.get("/console/runs", params={"since": "2000-01-01T00:00"}).text
    future = console.get("/console/runs", params={"since": "2999-01-01T00:00"}).text
    wrong = console.get("/console/runs", params={"since": "yesterday"})

    assert 'data-run="' in past and 'data-run="' not in future
    assert wrong.status_code == 400 and "not a date and time" in wrong.text


def test_runs_are_filtered_by_a_time_window(console: TestClient[Litestar], team: Any,
                                            engine: Any) -> None:
    # Given two deals' runs, the first moved a day back
    from sqlalchemy import update

    from server.core.models import Run

    for title in ("Old", "New"):
        assert console.post("/api/v1/deals", headers=team.headers,
                            json={"title": title}).status_code == 201
    every = console.get("/api/v1/runs", headers=team.headers).json()["items"]
    oldest = min(r["id"] for r in every)
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    with transaction(make_session_factory(engine)) as session:
        session.execute(update(Run).where(Run.id == oldest).values(created_at=yesterday))
    cut = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")

    # When the explorer is asked for runs before and since an hour ago
    before = console.get("/console/runs", params={"until": cut}).text
    since = console.get("/console/runs", params={"since": cut}).text

    # Then each shows its side of the window, as the API does
    assert re.findall(r'data-run="(\d+)"', before) == [str(oldest)]
    assert str(oldest) not in re.findall(r'data-run="(\d+)"', since)
    api = console.get("/api/v1/runs", params={"until": cut + ":00Z"},
                      headers=team.headers).json()["items"]
    assert [r["id"] for r in api] == [oldest]
    assert console.get("/console/runs", params={"until": "yesterday"}).status_code == 400
