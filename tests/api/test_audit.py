"""The audit log over HTTP: every admin change leaves one entry naming who, when, which request
and what changed (never a secret), refused changes leave none, and nothing can alter an entry."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from helpers import assert_problem
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError

from server.core.db import make_session_factory, transaction
from server.core.models import ApiKey, AuditEntry, Team
from server.core.models.audit import AppendOnly
from server.core.scope import Actor, TeamScope
from server.core.services import audit, hooks
from server.core.services.teams import create_key, ensure_user
from server.settings import Settings

URL = "/api/v1/audit"
WORKFLOWS = "/api/v1/workflows"
CREDENTIALS = "/api/v1/team/credentials"
HOOK = "/hook"
SECRET_VALUES = ("xoxb-1234567890-very-secret-token", "https://hooks.slack.test/T000/B000/XYZ")


def workflow(**fields: Any) -> dict[str, Any]:
    return {
        "id": "tag-big",
        "name": "Tag big deals",
        "entity": "deal",
        "trigger": {"type": "record_saved"},
        "condition": "record.amount > `1000`",
        "actions": [{"type": "field_update", "set": {"custom.big": True}}],
        **fields,
    }


def entries(api: Any, **params: Any) -> list[dict[str, Any]]:
    """Every entry of the caller's team (all pages), oldest first."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        resp = api.get(URL, params=query)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        found += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


def key_id(engine: Engine, team: Any) -> int:
    """The id of the team's (only) admin API key."""
    with make_session_factory(engine)() as session:
        return session.scalars(select(ApiKey.id).where(ApiKey.team_id == team.team_id)).one()


class Changes:
    """Makes admin changes with a request id each and returns the entries each one left."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.count = 0

    def __call__(
        self, method: str, path: str, body: Any = None, expect: int = 200
    ) -> list[dict[str, Any]]:
        seen = len(entries(self.api))
        self.count += 1
        request_id = f"req-{self.count}.test_audit"
        resp = self.api.request(method, path, json=body, headers={"X-Request-ID": request_id})
        assert resp.status_code == expect, resp.text
        assert resp.headers["x-request-id"] == request_id
        new = entries(self.api)[seen:]
        for entry in new:
            assert entry["request_id"] == request_id
        return new


@pytest.fixture
def change(api: Any) -> Changes:
    return Changes(api)


@pytest.fixture
def member(engine: Engine, team: Any) -> dict[str, str]:
    """The headers of a member (not an admin) of team A."""
    with transaction(make_session_factory(engine)) as session:
        user = ensure_user(
            session, session.get(Team, team.team_id), "rep@acme.test", name="Rep", role="member"
        )
        key = create_key(session, user, name="member key")
    return {"Authorization": f"Bearer {key}"}


def only(found: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(found) == 1, found
    return found[0]


# --- what each change records ----------------------------------------------------------------


def test_each_workflow_change_leaves_one_entry_naming_who_and_the_versions(
    api: Any, change: Changes, team: Any, engine: Engine
) -> None:
    key = key_id(engine, team)
    # When a workflow is created, changed, saved unchanged, disabled, enabled and deleted
    created = only(change("POST", WORKFLOWS, workflow(), expect=201))
    updated = only(change("PUT", f"{WORKFLOWS}/tag-big", workflow(name="Tag bigger deals")))
    unchanged = change("PUT", f"{WORKFLOWS}/tag-big", workflow(name="Tag bigger deals"))
    disabled = only(change("POST", f"{WORKFLOWS}/tag-big/disable"))
    again = change("POST", f"{WORKFLOWS}/tag-big/disable")
    enabled = only(change("POST", f"{WORKFLOWS}/tag-big/enable"))
    deleted = only(change("DELETE", f"{WORKFLOWS}/tag-big", expect=204))

    # Then each change is one entry by the admin's user and key through the API
    for entry in (created, updated, disabled, enabled, deleted):
        assert (entry["user_id"], entry["key_id"], entry["via"]) == (team.user_id, key, "api")
        assert entry["target"] == "tag-big"
        assert dt.datetime.fromisoformat(entry["at"]).tzinfo is not None
    # with the versions and the keys that changed
    assert created["action"] == "workflow.save"
    assert created["summary"]["before"] is None
    assert created["summary"]["after"]["version"] == 1
    assert updated["summary"] == {
        "before": {"version": 1, "enabled": True},
        "after": {"version": 2, "enabled": True, "changed": ["name"]},
    }
    assert (disabled["action"], disabled["summary"]) == (
        "workflow.disable",
        {"before": {"version": 2, "enabled": True}, "after": {"version": 2, "enabled": False}},
    )
    assert (enabled["action"], enabled["summary"]["after"]["enabled"]) == ("workflow.enable", True)
    assert (deleted["action"], deleted["summary"]) == (
        "workflow.delete",
        {"before": {"version": 2, "enabled": True}, "after": None},
    )
    # and what changed nothing recorded nothing
    assert unchanged == [] and again == []
    assert [e["id"] for e in entries(api)] == sorted(e["id"] for e in entries(api))


def test_settings_and_domains_record_the_changed_keys_with_old_and_new_values(
    change: Changes,
) -> None:
    # When the timezone and one setting change, then the domains
    settings = only(
        change(
            "PUT",
            "/api/v1/team",
            {"timezone": "Europe/Berlin", "settings": {"notification_channels": ["slack"]}},
        )
    )
    domains = only(
        change("PUT", "/api/v1/team", {"field_domains": {"deal.stage": ["lead", "won"]}})
    )
    replaced = only(
        change("PUT", "/api/v1/team", {"field_domains": {"deal.currency": ["EUR"]}})
    )
    # Then only the changed keys are named, with their old and new values
    assert (settings["action"], settings["summary"]) == (
        "team.settings",
        {
            "before": {"timezone": "UTC", "settings.notification_channels": []},
            "after": {"timezone": "Europe/Berlin", "settings.notification_channels": ["slack"]},
        },
    )
    assert (domains["action"], domains["summary"]) == (
        "team.domains",
        {"before": {"deal.stage": None}, "after": {"deal.stage": ["lead", "won"]}},
    )
    assert replaced["summary"] == {
        "before": {"deal.currency": None, "deal.stage": ["lead", "won"]},
        "after": {"deal.currency": ["EUR"], "deal.stage": None},
    }


def test_credentials_record_field_names_and_never_their_values(api: Any, change: Changes) -> None:
    # When a credential set is created, replaced with other keys, and deleted
    first = only(
        change("PUT", f"{CREDENTIALS}/slack", {"token": SECRET_VALUES[0], "url": SECRET_VALUES[1]})
    )
    second = only(change("PUT", f"{CREDENTIALS}/slack", {"webhook_url": SECRET_VALUES[1]}))
    removed = only(change("DELETE", f"{CREDENTIALS}/slack", expect=204))
    # Then the entries name the set and its fields
    assert (first["action"], first["target"], first["summary"]) == (
        "credentials.set",
        "slack",
        {"before": None, "after": {"fields": ["token", "url"]}},
    )
    assert second["summary"] == {
        "before": {"fields": ["token", "url"]},
        "after": {"fields": ["webhook_url"]},
    }
    assert (removed["action"], removed["summary"]) == (
        "credentials.delete",
        {"before": {"fields": ["webhook_url"]}, "after": None},
    )
    # and no value appears anywhere in the log, not even in part
    everything = json.dumps(entries(api))
    for value in SECRET_VALUES:
        assert value not in everything
        assert value[-8:] not in everything


def test_a_retried_execution_records_its_id_and_status(
    api: Any, change: Changes, receiver: Any, app: Any
) -> None:
    # Given a dead execution (the partner refused its one POST)
    receiver.respond(HOOK, 400)
    post = [{"type": "post_to", "url": receiver.url + HOOK}]
    hook = {**workflow(id="post-deals"), "actions": post}
    hook.pop("condition")
    assert api.post(WORKFLOWS, json=hook).status_code == 201
    assert api.post("/api/v1/deals", json={"title": "Initech"}).status_code == 201
    assert app.state.runtime.runner.join(10)
    (execution,) = api.get("/api/v1/executions").json()["items"]
    assert execution["status"] == "dead"
    receiver.respond(HOOK, 200)
    # When it is retried
    entry = only(change("POST", f"/api/v1/executions/{execution['id']}/retry"))
    assert app.state.runtime.runner.join(10)
    # Then
    assert (entry["action"], entry["target"]) == ("execution.retry", str(execution["id"]))
    assert entry["summary"] == {
        "before": {"status": "dead", "attempts": 1, "workflow": "post-deals"},
        "after": {"status": "pending", "attempts": 0},
    }


def test_a_recompute_records_its_outcome(api: Any, change: Changes) -> None:
    # Given an exclusive group of one workflow, and a deal it applies to
    assert api.put(
        "/api/v1/team", json={"field_domains": {"deal.stage": ["proposal", "won"]}}
    ).status_code == 200
    ladder = {
        **workflow(id="p-proposal", group="ladder", exclusive=True),
        "condition": "record.stage == 'proposal'",
        "actions": [{"type": "field_update", "set": {"probability": 40}}],
    }
    assert api.post(WORKFLOWS, json=ladder).status_code == 201
    deal = {"title": "Initech", "stage": "proposal"}
    assert api.post("/api/v1/deals", json=deal).status_code == 201
    # When the group is recomputed
    entry = only(change("POST", "/api/v1/groups/ladder/recompute"))
    # Then
    assert (entry["action"], entry["target"]) == ("group.recompute", "ladder")
    assert entry["summary"]["after"]["deals_scanned"] == 1


def test_hook_secrets_and_keys_record_key_ids_never_secrets(
    engine: Engine, team: Any, api: Any
) -> None:
    # Given an actor acting with its API key
    actor = Actor(team.team_id, team.user_id, key_id=key_id(engine, team))
    settings = Settings(secret_key="test-secret-key")
    # When a hook secret is created and rotated, and a key creation is recorded
    with transaction(make_session_factory(engine)) as session:
        made = hooks.create_secret(session, team.team_id, settings, actor=actor)
        rotated = hooks.rotate_secret(session, team.team_id, settings, actor=actor)
        audit.record(
            TeamScope(session, actor),
            "key.create",
            "7",
            None,
            {"name": "ci", "prefix": "dfk_abcdef", "scope": None},
        )
    # Then each is an entry naming the key ids
    found = entries(api)
    assert [e["action"] for e in found] == [
        "hook_secret.create",
        "hook_secret.rotate",
        "key.create",
    ]
    assert found[0]["summary"] == {"before": None, "after": {"key_id": made.key_id}}
    assert found[1]["summary"]["before"] == {"key_id": made.key_id}
    assert found[1]["summary"]["after"]["key_id"] == rotated.key_id
    assert all(e["via"] == "api" and e["user_id"] == team.user_id for e in found)
    everything = json.dumps(found)
    assert made.secret not in everything and rotated.secret not in everything


def test_issuing_and_revoking_a_key_records_its_prefix_never_the_key(
    api: Any, change: Changes, engine: Engine, team: Any
) -> None:
    # When an admin issues an ingest key, revokes it, and revokes it again
    issued = api.post("/api/v1/team/keys", json={"name": "crm sync", "scope": "ingest"})
    assert issued.status_code == 201, issued.text
    body = issued.json()
    created = only(entries(api, action="key.create"))
    revoked = only(change("DELETE", f"/api/v1/team/keys/{body['id']}", expect=204))
    again = change("DELETE", f"/api/v1/team/keys/{body['id']}", expect=204)
    # Then the issue and the revocation are one entry each, naming the key by id and prefix
    summary = {"name": "crm sync", "prefix": body["prefix"], "scope": "ingest",
               "user_id": team.user_id}
    assert (created["target"], created["key_id"]) == (str(body["id"]), key_id_of(engine, team))
    assert created["summary"] == {"before": None,
                                  "after": {**summary, "user_email": "admin@acme.test"}}
    assert (revoked["action"], revoked["summary"]) == (
        "key.revoke", {"before": summary, "after": {**summary, "revoked": True}}
    )
    assert again == []
    # and neither the key nor its digest is anywhere in the log
    with make_session_factory(engine)() as session:
        digest = session.scalars(select(ApiKey.key_hash).where(ApiKey.id == body["id"])).one()
    everything = json.dumps(entries(api))
    assert body["key"] not in everything and digest not in everything


def key_id_of(engine: Engine, team: Any) -> int:
    """The id of the team's first API key (the admin's, which the ``api`` client sends)."""
    with make_session_factory(engine)() as session:
        return session.scalars(
            select(ApiKey.id).where(ApiKey.team_id == team.team_id).order_by(ApiKey.id)
        ).first()


# --- what records nothing, and who may read -------------------------------------------------


def test_a_refused_change_records_nothing(api: Any, change: Changes) -> None:
    # When changes are refused as invalid
    assert change("PUT", "/api/v1/team", {"timezone": "Mars/Olympus"}, expect=422) == []
    assert change("PUT", "/api/v1/team", {"field_domains": {"deal.stage": []}}, expect=422) == []
    assert change("POST", WORKFLOWS, workflow(trigger={"type": "nope"}), expect=422) == []
    assert change("PUT", f"{CREDENTIALS}/slack", {"token": ""}, expect=422) == []
    assert change("DELETE", f"{CREDENTIALS}/slack", expect=404) == []
    # Then the log is empty, and the team unchanged
    assert entries(api) == []
    assert api.get("/api/v1/team").json()["timezone"] == "UTC"


def test_a_member_cannot_read_the_log(api: Any, member: dict[str, str]) -> None:
    assert api.post(WORKFLOWS, json=workflow()).status_code == 201
    resp = api.get(URL, headers=member)
    assert assert_problem(resp, 403)["required_role"] == "admin"


def test_another_teams_admin_never_sees_the_entries(
    client: Any, make_team: Any, api: Any
) -> None:
    # Given changes in team A
    assert api.post(WORKFLOWS, json=workflow()).status_code == 201
    assert api.put("/api/v1/team", json={"timezone": "Europe/Berlin"}).status_code == 200
    beta = make_team("Beta")
    # When team B's admin reads the log, even filtering by A's actions
    seen = client.get(URL, headers=beta.headers)
    filtered = client.get(URL, params={"action": "workflow.save"}, headers=beta.headers)
    # Then it is empty for B, and A sees both of its own
    assert seen.json() == {"items": [], "next_cursor": None}
    assert filtered.json()["items"] == []
    assert len(entries(api)) == 2


def test_the_log_pages_and_filters_by_action_and_time(api: Any) -> None:
    # Given three changes
    assert api.post(WORKFLOWS, json=workflow()).status_code == 201
    assert api.post(f"{WORKFLOWS}/tag-big/disable").status_code == 200
    assert api.put("/api/v1/team", json={"timezone": "Europe/Berlin"}).status_code == 200
    # When read one at a time
    first = api.get(URL, params={"limit": 1}).json()
    second = api.get(URL, params={"limit": 1, "cursor": first["next_cursor"]}).json()
    # Then the pages follow each other, oldest first
    assert [e["action"] for e in first["items"] + second["items"]] == [
        "workflow.save",
        "workflow.disable",
    ]
    # and the filters narrow the log
    assert [e["action"] for e in entries(api, action="team.settings")] == ["team.settings"]
    assert len(entries(api, since="2000-01-01T00:00:00Z")) == 3
    assert entries(api, since="2999-01-01T00:00:00Z") == []
    assert_problem(api.get(URL, params={"action": "workflow.explode"}), 422, "action")


# --- append-only ------------------------------------------------------------------------------


@pytest.fixture
def logged(api: Any, team: Any) -> int:
    """Team A with one audit entry; its id."""
    assert api.post(WORKFLOWS, json=workflow()).status_code == 201
    (entry,) = entries(api)
    return int(entry["id"])


def test_the_orm_refuses_to_change_or_delete_an_entry(engine: Engine, logged: int) -> None:
    factory = make_session_factory(engine)
    # When an entry is changed through the ORM, then the flush is refused
    with factory() as session:
        row = session.get(AuditEntry, logged)
        assert row is not None
        row.action = "workflow.delete"
        with pytest.raises(AppendOnly):
            session.flush()
    # and so is deleting it
    with factory() as session:
        session.delete(session.get(AuditEntry, logged))
        with pytest.raises(AppendOnly):
            session.flush()
    with factory() as session:
        assert session.get(AuditEntry, logged).action == "workflow.save"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET action = 'workflow.delete' WHERE id = :id",
        "UPDATE audit_log SET summary = '{}' WHERE id = :id",
        "DELETE FROM audit_log WHERE id = :id",
    ],
)
def test_the_database_refuses_to_change_or_delete_an_entry(
    engine: Engine, logged: int, statement: str
) -> None:
    # When / Then
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement), {"id": logged})
    with engine.connect() as conn:
        action = conn.execute(
            text("SELECT action FROM audit_log WHERE id = :id"), {"id": logged}
        ).scalar()
    assert action == "workflow.save"


def test_deleting_a_team_still_takes_its_entries_along(
    engine: Engine, logged: int, team: Any, make_team: Any, client: Any
) -> None:
    # Given another team with an entry of its own
    beta = make_team("Beta")
    assert client.post(WORKFLOWS, json=workflow(), headers=beta.headers).status_code == 201
    # When team A is deleted
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM teams WHERE id = :id"), {"id": team.team_id})
    # Then its entries went with it, and B's stayed
    with engine.connect() as conn:
        left = conn.execute(text("SELECT team_id FROM audit_log")).scalars().all()
    assert left == [beta.team_id]


# --- request ids ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sent",
    [None, "has spaces", "x" * 65, "semi;colon", ""],
    ids=["none", "spaces", "too-long", "semicolon", "empty"],
)
def test_a_missing_or_odd_request_id_is_replaced_by_a_new_one(api: Any, sent: str | None) -> None:
    headers = {} if sent is None else {"X-Request-ID": sent}
    # When
    first = api.post(WORKFLOWS, json=workflow(), headers=headers)
    second = api.get("/api/v1/team", headers=headers)
    # Then each response has its own sane id, and the entry has the request's
    assert first.status_code == 201, first.text
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert ids[0] != ids[1] and sent not in ids
    assert all(len(i) <= 64 and i.replace("-", "").isalnum() for i in ids)
    assert only(entries(api))["request_id"] == ids[0]


def test_a_refused_request_gets_its_request_id_back(client: Any) -> None:
    resp = client.get(URL, headers={"X-Request-ID": "abc.DEF_123-4"})
    assert resp.status_code == 401
    assert resp.headers["x-request-id"] == "abc.DEF_123-4"
