"""Roles and scoped keys: a member's key reads workflows and dry-runs; only an admin's changes
rules and keys; an ingest key only feeds records and webhooks; a read key only reads."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time
from typing import Any

import pytest
from helpers import assert_problem
from sqlalchemy import select

from server.core.db import make_session_factory, transaction
from server.core.errors import Unauthorized
from server.core.keys import hash_key
from server.core.models import ApiKey, Team
from server.core.services import hooks
from server.core.services.keys import authenticate
from server.core.services.teams import create_key, ensure_user

WORKFLOW = {
    "id": "tag-big", "name": "Tag big deals", "entity": "deal", "trigger": {"type": "record_saved"},
    "condition": "record.amount > `1000`", "actions": [{"type": "field_update", "set": {"custom.big": True}}],
}


@pytest.fixture
def member(engine: Any, team: Any) -> dict[str, str]:
    """The headers of a member of team A."""
    with transaction(make_session_factory(engine)) as session:
        user = ensure_user(session, session.get(Team, team.team_id), "rep@acme.test", name="Rep", role="member")
        key = create_key(session, user, name="member key")
    return {"Authorization": f"Bearer {key}"}


def test_a_member_cannot_change_workflows_settings_or_recompute(api: Any, member: dict[str, str]) -> None:
    # Given a workflow saved by the admin
    assert api.post("/api/v1/workflows", json=WORKFLOW).status_code == 201
    changed = {**WORKFLOW, "name": "Tag bigger deals"}
    # When a member tries each change, then each is a 403 naming the role it needs
    for method, path, body in [
        ("POST", "/api/v1/workflows", {**WORKFLOW, "id": "other"}),
        ("PUT", "/api/v1/workflows/tag-big", changed),
        ("POST", "/api/v1/workflows/tag-big/disable", None),
        ("POST", "/api/v1/workflows/tag-big/enable", None),
        ("DELETE", "/api/v1/workflows/tag-big", None),
        ("PUT", "/api/v1/team", {"timezone": "Europe/Berlin"}),
        ("POST", "/api/v1/groups/any/recompute", None),
    ]:
        resp = api.request(method, path, json=body, headers=member)
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["required_role"] == "admin"
    # Then nothing changed
    stored = api.get("/api/v1/workflows/tag-big").json()
    assert (stored["version"], stored["enabled"]) == (1, True)
    assert api.get("/api/v1/team").json()["timezone"] == "UTC"
    assert [w["id"] for w in api.get("/api/v1/workflows").json()] == ["tag-big"]


def test_a_member_reads_workflows_dry_runs_and_saves_records(api: Any, member: dict[str, str]) -> None:
    assert api.post("/api/v1/workflows", json=WORKFLOW).status_code == 201
    assert api.get("/api/v1/workflows/tag-big", headers=member).status_code == 200
    test = api.post("/api/v1/workflows/test", json={"workflow_id": "tag-big", "record": {"amount": 5000}},
                    headers=member)
    assert test.status_code == 200 and test.json()["matched"] is True
    deal = api.post("/api/v1/deals", json={"title": "Big", "amount": 5000}, headers=member)
    assert deal.status_code == 201 and deal.json()["custom"] == {"big": True}
    assert api.get("/api/v1/runs", headers=member).status_code == 200


# --- scoped keys -------------------------------------------------------------------------------


def issue(api: Any, **body: Any) -> dict[str, Any]:
    """A key issued by team A's admin over the keys API."""
    resp = api.post("/api/v1/team/keys", json={"name": "a key", **body})
    assert resp.status_code == 201, resp.text
    return resp.json()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def signed(app: Any, team_id: int, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers for ``body`` under a new signing secret of the team."""
    with transaction(app.state.session_factory) as session:
        secret = hooks.create_secret(session, team_id, app.state.settings).secret
    msg_id, timestamp = "msg_roles_1", str(int(time.time()))
    mac = hmac.new(
        base64.b64decode(secret.removeprefix("whsec_")),
        f"{msg_id}.{timestamp}.".encode() + body,
        hashlib.sha256,
    )
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
        "content-type": "application/json",
    }


def refused(resp: Any, **needs: str) -> dict[str, Any]:
    assert resp.status_code == 403, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert {name: problem.get(name) for name in needs} == needs, problem
    return problem


def test_an_ingest_key_upserts_and_posts_webhooks_but_reads_nothing(
    app: Any, api: Any, team: Any
) -> None:
    # Given a webhook workflow and a key of team A's admin narrowed to ingest
    hook = {
        "id": "form", "name": "Form", "trigger": {"type": "webhook", "name": "form"},
        "condition": "payload.kind == 'demo'",
        "actions": [],
    }  # fmt: skip
    assert api.post("/api/v1/workflows", json=hook).status_code == 201
    ingest = bearer(issue(api, name="crm sync", scope="ingest")["key"])
    # When it upserts a deal, creates a contact and posts a signed webhook
    upsert = api.put("/api/v1/deals/external/crm-7", json={"title": "From CRM"}, headers=ingest)
    contact = api.post("/api/v1/contacts", json={"name": "Ann"}, headers=ingest)
    body = b'{"kind": "demo"}'
    posted = api.post(
        "/api/v1/hooks/form", content=body, headers={**ingest, **signed(app, team.team_id, body)}
    )
    # Then all three are done
    assert upsert.status_code == 201, upsert.text
    assert contact.status_code == 201, contact.text
    assert posted.status_code == 202, posted.text
    assert posted.json()["runs"][0]["matched"] == ["form"]
    # But it reads nothing, changes nothing else and touches no workflow
    problem = refused(api.get("/api/v1/deals", headers=ingest), required_scope="read")
    assert (problem["key_role"], problem["key_scope"]) == ("admin", "ingest")
    refused(api.get("/api/v1/workflows", headers=ingest), required_scope="read")
    refused(api.get(f"/api/v1/deals/{upsert.json()['id']}", headers=ingest), required_scope="read")
    refused(api.patch(f"/api/v1/deals/{upsert.json()['id']}", json={"title": "x"}, headers=ingest),
            required_role="member")  # fmt: skip
    refused(api.post("/api/v1/workflows", json=hook, headers=ingest), required_role="admin")
    refused(api.post("/api/v1/workflows/test", json={"workflow_id": "form", "record": {}},
                     headers=ingest), required_role="member")  # fmt: skip
    assert api.get(f"/api/v1/deals/{upsert.json()['id']}").json()["title"] == "From CRM"


def test_an_ingest_keys_upsert_answers_the_id_not_the_record(api: Any) -> None:
    # Given a deal an admin filled in, with an external id an ERP knows
    deal = api.post("/api/v1/deals", json={"title": "Initech", "amount": 50000,
                                            "external_id": "erp-1",
                                            "custom": {"note": "private"}}).json()
    ingest = bearer(issue(api, name="erp", scope="ingest")["key"])
    # When the ingest key upserts it and a new one
    updated = api.put("/api/v1/deals/external/erp-1", json={"title": "Initech"}, headers=ingest)
    created = api.put("/api/v1/deals/external/erp-2", json={"title": "Globex"}, headers=ingest)
    # Then the answers name the records, and carry nothing the key may not read
    assert (updated.status_code, updated.json()) == (200, {"id": deal["id"], "external_id": "erp-1"})
    assert created.status_code == 201 and set(created.json()) == {"id", "external_id"}
    assert created.headers["location"] == f"/api/v1/deals/{created.json()['id']}"
    # while an admin's upsert still answers the whole record
    full = api.put("/api/v1/deals/external/erp-1", json={"title": "Initech"})
    assert full.status_code == 200 and full.json()["custom"] == {"note": "private"}


def test_a_read_key_reads_but_changes_nothing(api: Any) -> None:
    # Given a deal and a read key of team A's admin
    deal = api.post("/api/v1/deals", json={"title": "Big", "amount": 5000}).json()
    read = bearer(issue(api, name="dashboard", scope="read")["key"])
    # When it reads, then it may
    assert api.get(f"/api/v1/deals/{deal['id']}", headers=read).status_code == 200
    assert api.get("/api/v1/runs", headers=read).status_code == 200
    assert api.get("/api/v1/forecast", headers=read).status_code == 200
    # When it changes, creates or dry-runs, then it is refused, naming what it would need
    problem = refused(
        api.patch(f"/api/v1/deals/{deal['id']}", json={"title": "x"}, headers=read),
        required_role="member",
    )
    assert problem["key_scope"] == "read" and "read scope" in problem["detail"]
    refused(api.post("/api/v1/deals", json={"title": "New"}, headers=read), required_scope="ingest")
    refused(api.put("/api/v1/deals/external/x", json={"title": "x"}, headers=read),
            required_scope="ingest")  # fmt: skip
    refused(api.post("/api/v1/workflows/validate", json={}, headers=read), required_role="member")
    refused(api.get("/api/v1/team/keys", headers=read), required_role="admin")
    assert api.get(f"/api/v1/deals/{deal['id']}").json()["title"] == "Big"


def test_a_members_key_never_acts_as_an_admin(api: Any, engine: Any, team: Any) -> None:
    # Given a member, and keys the admin issued for them: unscoped and read
    with transaction(make_session_factory(engine)) as session:
        user = ensure_user(session, session.get(Team, team.team_id), "rep@acme.test", name="Rep",
                           role="member")  # fmt: skip
        member_id = user.id
    plain = issue(api, user_id=member_id)
    read = issue(api, user_id=member_id, scope="read")
    assert (plain["user_id"], plain["scope"], read["scope"]) == (member_id, None, "read")
    # When they try an admin's change, then it is refused as the member they are
    problem = refused(api.put("/api/v1/team", json={"timezone": "Europe/Berlin"},
                              headers=bearer(plain["key"])), required_role="admin")  # fmt: skip
    assert (problem["key_role"], problem["key_scope"]) == ("member", None)
    refused(api.post("/api/v1/team/keys", json={"name": "mine"}, headers=bearer(plain["key"])),
            required_role="admin")  # fmt: skip
    # And the read key of a member reads only
    assert api.get("/api/v1/deals", headers=bearer(read["key"])).status_code == 200
    refused(api.post("/api/v1/deals", json={"title": "x"}, headers=bearer(read["key"])),
            required_scope="ingest")  # fmt: skip


# --- the keys API ------------------------------------------------------------------------------


def test_an_admin_issues_lists_and_revokes_keys(api: Any, team: Any) -> None:
    # When the admin issues an ingest key
    created = issue(api, name="crm sync", scope="ingest")
    key = created["key"]
    # Then the key is shown once, with its prefix, scope and user
    assert key.startswith("dfk_") and created["prefix"] == key[:10]
    assert (created["name"], created["scope"], created["user_id"]) == (
        "crm sync", "ingest", team.user_id
    )
    assert created["revoked_at"] is None and created["last_used_at"] is None
    # And it works, and its use is noted
    used = api.post("/api/v1/contacts", json={"name": "Ann"}, headers=bearer(key))
    assert used.status_code == 201, used.text
    # When the admin lists the keys
    listing = api.get("/api/v1/team/keys")
    # Then both keys are there by prefix, and neither key nor digest is anywhere in the answer
    assert listing.status_code == 200, listing.text
    rows = {row["id"]: row for row in listing.json()}
    assert set(rows) == {created["id"], 1}
    assert rows[created["id"]]["last_used_at"] is not None
    assert rows[1]["prefix"] == team.key[:10] and rows[1]["scope"] is None
    assert rows[1]["user_email"] == "admin@acme.test"
    assert all("key" not in row and "key_hash" not in row for row in rows.values())
    for secret in (key, team.key, hashlib.sha256(key.encode()).hexdigest()):
        assert secret not in listing.text
    # When the admin revokes the ingest key
    assert api.delete(f"/api/v1/team/keys/{created['id']}").status_code == 204
    # Then it answers 401 from then on, is listed as revoked, and revoking again changes nothing
    resp = api.post("/api/v1/contacts", json={"name": "Bob"}, headers=bearer(key))
    assert resp.status_code == 401, resp.text
    revoked_at = api.get("/api/v1/team/keys").json()[1]["revoked_at"]
    assert revoked_at is not None
    assert api.delete(f"/api/v1/team/keys/{created['id']}").status_code == 204
    assert api.get("/api/v1/team/keys").json()[1]["revoked_at"] == revoked_at
    assert api.get("/api/v1/team").status_code == 200


def test_only_an_admin_manages_keys(api: Any, member: dict[str, str]) -> None:
    # Given a key of the admin's
    created = issue(api)
    # When a member lists, issues or revokes, then each is refused naming the admin role
    for method, path, body in [
        ("GET", "/api/v1/team/keys", None),
        ("POST", "/api/v1/team/keys", {"name": "mine", "scope": "read"}),
        ("DELETE", f"/api/v1/team/keys/{created['id']}", None),
    ]:
        refused(api.request(method, path, json=body, headers=member), required_role="admin")
    # And the key still works
    assert api.get("/api/v1/team", headers=bearer(created["key"])).status_code == 200


def test_keys_of_another_team_and_bad_input_are_refused(api: Any, make_team: Any) -> None:
    beta = make_team("Beta")
    beta_user = beta.user_id
    # A key of another team is not found, nor is a user of another team
    assert_problem(api.delete("/api/v1/team/keys/2"), 404)  # team Beta's key
    assert_problem(api.post("/api/v1/team/keys", json={"name": "x", "user_id": beta_user}), 404,
                   "user_id")  # fmt: skip
    # A scope other than ingest or read, a missing name and unknown fields are refused
    assert_problem(api.post("/api/v1/team/keys", json={"name": "x", "scope": "admin"}), 422,
                   "scope")  # fmt: skip
    assert_problem(api.post("/api/v1/team/keys", json={}), 422, "name")
    assert_problem(api.post("/api/v1/team/keys", json={"name": "x", "role": "admin"}), 422, "role")
    # Beta's key still works
    assert api.get("/api/v1/team", headers=beta.headers).status_code == 200


# --- looking a key up ---------------------------------------------------------------------------


def test_a_key_with_a_known_prefix_but_a_wrong_rest_is_refused(api: Any, team: Any) -> None:
    forged = team.key[:10] + ("A" if team.key[10] != "A" else "B") + team.key[11:]
    for key in (forged, team.key[:10], team.key + "x", team.key[:-1]):
        resp = api.get("/api/v1/team", headers=bearer(key))
        assert_problem(resp, 401)
    assert api.get("/api/v1/team").status_code == 200


def test_keys_sharing_a_prefix_each_find_their_own_row(api: Any, engine: Any, team: Any) -> None:
    # Given two keys of two users with the same prefix (rare, but the lookup must not mind)
    with transaction(make_session_factory(engine)) as session:
        rep = ensure_user(session, session.get(Team, team.team_id), "rep@acme.test", name="Rep",
                          role="member")  # fmt: skip
        one, two = "dfk_shared" + "a" * 37, "dfk_shared" + "b" * 37
        for user_id, key in ((team.user_id, one), (rep.id, two)):
            session.add(ApiKey(team_id=team.team_id, user_id=user_id, name="", prefix=key[:10],
                               key_hash=hash_key(key)))  # fmt: skip
    # When each is used, then each acts as its own user
    admin = api.put("/api/v1/team", json={"timezone": "UTC"}, headers=bearer(one))
    member = api.put("/api/v1/team", json={"timezone": "UTC"}, headers=bearer(two))
    assert admin.status_code == 200, admin.text
    assert member.status_code == 403 and member.json()["key_role"] == "member"
    assert_problem(api.get("/api/v1/team", headers=bearer("dfk_shared" + "c" * 37)), 401)


def test_authenticate_compares_digests_in_constant_time(
    engine: Any, team: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a spy on the comparison the lookup uses
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr("server.core.keys.hmac.compare_digest", spy)
    # When a right and a wrong key of the same prefix are looked up
    with make_session_factory(engine)() as session:
        assert authenticate(session, team.key).user_id == team.user_id
        with pytest.raises(Unauthorized):
            authenticate(session, team.key[:-1] + ("x" if team.key[-1] != "x" else "y"))
    # Then each candidate's digest went through compare_digest
    assert len(compared) == 2
    assert all(len(a) == len(b) == 64 for a, b in compared)


def test_a_keys_last_use_is_noted_at_most_once_a_minute(engine: Any, team: Any) -> None:
    factory = make_session_factory(engine)
    start = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)

    def used_at(now: dt.datetime) -> dt.datetime | None:
        with factory() as session:
            authenticate(session, team.key, now=now)
        with factory() as session:
            return session.scalars(select(ApiKey.last_used_at)).one()

    # When the key is used, then again within a minute, then a minute later
    assert used_at(start) == start
    assert used_at(start + dt.timedelta(seconds=59)) == start
    assert used_at(start + dt.timedelta(seconds=61)) == start + dt.timedelta(seconds=61)
