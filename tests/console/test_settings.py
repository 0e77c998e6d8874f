"""The console's settings page: field domains checked against the groups before saving,
notification channels, write-only credentials shown masked, API keys shown once; the same
services as the API's, admins only, CSRF on every form."""

from __future__ import annotations

import json
import re
from typing import Any

from console.console_forms import form_token, sign_in
from litestar import Litestar
from litestar.testing import TestClient

from server.core.starter import STARTER_DOMAINS

SECRET = "xoxb-very-secret-token-1234"
PAGES = ("/console/settings", "/console/workflows", "/console/runs", "/console/forecast",
         "/console/analytics")


def token(console: TestClient[Litestar]) -> str:
    return form_token(console.get("/console/settings").text)


def without_relationship() -> str:
    return json.dumps({k: v for k, v in STARTER_DOMAINS.items()
                       if k != "deal.custom.relationship"})


# --- field domains ----------------------------------------------------------------------------


def test_a_domain_change_that_breaks_the_ladder_is_shown_before_saving(
    console: TestClient[Litestar], starter: None, team: Any
) -> None:
    page = console.get("/console/settings").text
    assert json.loads(re.search(r'<textarea id="domains-text"[^>]*>(.*?)</textarea>', page,
                                re.S).group(1).replace("&#34;", '"')) == STARTER_DOMAINS

    # When the relationship domain is dropped and checked
    resp = console.post("/console/settings/domains/check",
                        data={"csrf_token": form_token(page), "domains": without_relationship()})

    # Then the page names the group it would break and the field, and nothing is saved
    assert resp.status_code == 200
    assert "would break 1 group(s); nothing is saved yet" in resp.text
    assert 'data-group="deal_probability"' in resp.text
    assert "<code>record.custom.relationship</code> has no domain" in resp.text
    api = console.get("/api/v1/team", headers=team.headers).json()
    assert api["field_domains"] == STARTER_DOMAINS
    # ... the same report the API's PUT gives once saved
    saved = console.post("/console/settings/domains",
                         data={"csrf_token": form_token(page), "domains": without_relationship()})
    assert saved.status_code == 200 and "Saved; this change broke 1 group(s)" in saved.text
    api = console.get("/api/v1/team", headers=team.headers).json()
    assert "deal.custom.relationship" not in api["field_domains"]


def test_a_harmless_domain_change_is_saved_and_a_bad_one_refused(
    console: TestClient[Litestar], starter: None, team: Any
) -> None:
    domains = {**STARTER_DOMAINS, "lead.custom.segment": ["smb", "enterprise"]}
    checked = console.post("/console/settings/domains/check",
                           data={"csrf_token": token(console), "domains": json.dumps(domains)})
    assert 'id="nothing-broken"' in checked.text

    resp = console.post("/console/settings/domains", follow_redirects=False,
                        data={"csrf_token": token(console), "domains": json.dumps(domains)})

    assert resp.status_code == 303
    assert console.get("/api/v1/team", headers=team.headers).json()["field_domains"] == domains
    for bad, message in (('{"deal.title": ["x"]}', "field_domains.deal.title"),
                         ('{"deal.stage": "x"}', "field_domains"), ("{", "not JSON")):
        refused = console.post("/console/settings/domains",
                               data={"csrf_token": token(console), "domains": bad})
        assert refused.status_code == 422 and message in refused.text, bad
    assert console.get("/api/v1/team", headers=team.headers).json()["field_domains"] == domains


# --- notification channels --------------------------------------------------------------------


def test_saving_channels_changes_the_teams_settings(
    console: TestClient[Litestar], team: Any
) -> None:
    resp = console.post("/console/settings/channels", follow_redirects=False,
                        data={"csrf_token": token(console), "channel_slack": "on",
                              "channel_email": "on"})

    assert resp.status_code == 303
    settings = console.get("/api/v1/team", headers=team.headers).json()["settings"]
    assert settings["notification_channels"] == ["slack", "email"]
    page = console.get("/console/settings").text
    assert re.search(r'name="channel_slack" value="on" checked', page)
    assert not re.search(r'name="channel_telegram" value="on" checked', page)


# --- credentials ------------------------------------------------------------------------------


def test_a_credential_is_stored_shown_masked_and_never_echoed(
    console: TestClient[Litestar], team: Any, starter: None
) -> None:
    # When the admin saves a set through the page
    resp = console.post("/console/settings/credentials", follow_redirects=False, data={
        "csrf_token": token(console), "plugin": "slack", "name_1": "token", "value_1": SECRET,
        "name_2": "channel", "value_2": "#sales",
    })

    # Then it is stored, masked on the API and on the page, and its value is on no page
    assert resp.status_code == 303
    api = console.get("/api/v1/team/credentials/slack", headers=team.headers).json()
    assert api["values"] == {"token": "••••1234", "channel": "••••"}
    page = console.get("/console/settings").text
    row = re.search(r'data-credential="slack">(.*?)</tr>', page, re.S).group(1)
    assert "••••1234" in row and 'type="password"' in page
    for path in PAGES:
        assert SECRET not in console.get(path).text, path
    # ... a refused set names the key, not the value
    bad = console.post("/console/settings/credentials", data={
        "csrf_token": token(console), "plugin": "slack", "name_1": "Token", "value_1": SECRET,
    })
    assert bad.status_code == 422 and "not a credential name" in bad.text
    assert SECRET not in bad.text
    # ... and deleting it works
    deleted = console.post("/console/settings/credentials/slack/delete", follow_redirects=False,
                           data={"csrf_token": token(console)})
    assert deleted.status_code == 303
    gone = console.get("/api/v1/team/credentials/slack", headers=team.headers)
    assert gone.status_code == 404


# --- API keys ---------------------------------------------------------------------------------


def test_a_key_is_shown_once_then_only_its_prefix_and_can_be_revoked(
    console: TestClient[Litestar], client: TestClient[Litestar], team: Any
) -> None:
    # When a read key is created
    resp = console.post("/console/settings/keys",
                        data={"csrf_token": token(console), "name": "BI export", "scope": "read"})

    # Then the answer shows it once (and is not cached)
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"
    key = re.search(r'<code id="new-key">(dfk_[^<]+)</code>', resp.text).group(1)
    listing = console.get("/api/v1/team/keys", headers=team.headers).json()
    (made,) = [k for k in listing if k["name"] == "BI export"]
    assert made["scope"] == "read" and key.startswith(made["prefix"])
    page = console.get("/console/settings").text
    assert key not in page and f"<code>{made['prefix']}…</code>" in page
    headers = {"Authorization": f"Bearer {key}"}
    assert console.get("/api/v1/team", headers=headers).status_code == 200

    # When it is revoked
    revoked = console.post(f"/console/settings/keys/{made['id']}/revoke", follow_redirects=False,
                           data={"csrf_token": token(console)})

    # Then the API refuses it
    assert revoked.status_code == 303
    assert console.get("/api/v1/team", headers=headers).status_code == 401
    row = re.search(rf'data-key="{made["id"]}">(.*?)</tr>', console.get("/console/settings").text,
                    re.S).group(1)
    assert "Revoke</button>" not in row


# --- roles and CSRF ---------------------------------------------------------------------------


FORMS = {
    "/console/settings/domains/check": {"domains": "{}"},
    "/console/settings/domains": {"domains": "{}"},
    "/console/settings/channels": {"channel_slack": "on"},
    "/console/settings/credentials": {"plugin": "slack", "name_1": "token", "value_1": SECRET},
    "/console/settings/keys": {"name": "sneaky"},
    "/console/settings/keys/1/revoke": {},
    "/console/settings/credentials/slack/delete": {},
}


def test_a_member_sees_the_settings_read_only_and_cannot_post(
    client: TestClient[Litestar], member_key: str, team: Any, starter: None
) -> None:
    assert sign_in(client, key=member_key).status_code == 303
    page = client.get("/console/settings").text
    assert 'id="read-only"' in page
    assert 'action="/console/settings' not in page and "<textarea" not in page
    assert "Only admins see the team's keys" in page
    csrf = form_token(page)  # the sign-out form's: a valid token of the member's session

    for path, fields in FORMS.items():
        resp = client.post(path, data={"csrf_token": csrf, **fields})
        assert resp.status_code == 403 and "Only an admin" in resp.text, path
    api = client.get("/api/v1/team", headers=team.headers).json()
    assert api["field_domains"] == STARTER_DOMAINS
    assert api["settings"]["notification_channels"] == []
    assert [k["name"] for k in client.get("/api/v1/team/keys", headers=team.headers).json()] == [
        "initial admin key", "member key"]


def test_a_post_without_the_csrf_token_is_refused(
    console: TestClient[Litestar], team: Any
) -> None:
    for path, fields in FORMS.items():
        resp = console.post(path, data=fields)
        assert resp.status_code == 403 and "CSRF" in resp.text, path
    assert console.get("/api/v1/team", headers=team.headers).json()["settings"][
        "notification_channels"] == []
    assert console.get("/api/v1/team/credentials/slack", headers=team.headers).status_code == 404
