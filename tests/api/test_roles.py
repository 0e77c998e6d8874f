"""Roles: a member's key reads workflows and runs dry runs; only an admin's key changes rules."""

from __future__ import annotations

from typing import Any

import pytest

from server.core.db import make_session_factory, transaction
from server.core.models import Team
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
