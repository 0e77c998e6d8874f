"""Per-team caps, each a setting with a clear error when reached: workflows per team,
actions per workflow, and the size of a webhook's body."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from helpers import assert_problem
from server.core.definitions import MAX_ACTIONS
from server.settings import Settings, load_settings

URL = "/api/v1/workflows"


def workflow(key: str = "w", actions: int = 1) -> dict[str, Any]:
    return {
        "id": key,
        "name": key,
        "entity": "deal",
        "trigger": {"type": "record_saved", "on": ["created"]},
        "actions": [{"type": "field_update", "set": {"probability": 70}}] * actions,
    }


@pytest.fixture
def caps(app: Litestar, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``caps(name=value, ...)`` sets caps on the app's settings for this test."""

    def set_caps(**values: int) -> None:
        engine = app.state.runtime.engine
        monkeypatch.setattr(engine, "settings", dataclasses.replace(engine.settings, **values))
        settings = dataclasses.replace(app.state.settings, **values)
        monkeypatch.setattr(app.state, "settings", settings)

    return set_caps


def test_the_caps_are_settings() -> None:
    defaults = Settings()
    assert (defaults.max_workflows_per_team, defaults.max_actions_per_workflow) == (500, 50)
    settings = load_settings(
        {
            "DEALFLOW_MAX_WORKFLOWS_PER_TEAM": "7",
            "DEALFLOW_MAX_ACTIONS_PER_WORKFLOW": "9",
            "DEALFLOW_WEBHOOK_MAX_BODY_SIZE": "1024",
        }
    )
    assert settings.max_workflows_per_team == 7
    assert settings.max_actions_per_workflow == 9
    assert settings.webhook_max_body_size == 1024


# --- actions per workflow --------------------------------------------------------------------


def test_more_actions_than_the_default_cap_is_422_naming_actions(api: TestClient[Litestar]) -> None:
    # When a workflow lists one action more than the default allows
    resp = api.post(URL, json=workflow(actions=MAX_ACTIONS + 1))

    # Then it is refused at $.actions, saying the cap and the setting, and nothing is saved
    body = assert_problem(resp, 422, "$.actions")
    message = body["errors"][0]["message"]
    assert f"{MAX_ACTIONS + 1} actions" in message and f"the {MAX_ACTIONS} " in message
    assert "DEALFLOW_MAX_ACTIONS_PER_WORKFLOW" in message
    assert body["errors"] == [body["errors"][0]]  # one problem, not one per action
    assert api.get(URL).json() == []

    # And exactly the cap is fine
    assert api.post(URL, json=workflow(actions=MAX_ACTIONS)).status_code == 201


def test_the_action_cap_follows_the_setting(api: TestClient[Litestar], caps) -> None:
    # Given a server allowing 2 actions per workflow
    caps(max_actions_per_workflow=2)

    # When a definition with 3 is validated, saved, or read in the published schema
    checked = api.post(f"{URL}/validate", json=workflow(actions=3))
    saved = api.post(URL, json=workflow(actions=3))
    schema = api.get(f"{URL}/schema").json()

    # Then each says 2
    assert checked.json()["valid"] is False
    assert checked.json()["errors"][0]["field"] == "$.actions"
    assert "the 2 a workflow may have" in checked.json()["errors"][0]["message"]
    assert_problem(saved, 422, "$.actions")
    assert schema["properties"]["actions"]["maxItems"] == 2
    assert api.post(URL, json=workflow(actions=2)).status_code == 201


# --- workflows per team ----------------------------------------------------------------------


def test_a_team_at_its_workflow_cap_cannot_create_another(
    api: TestClient[Litestar], caps, make_team
) -> None:
    # Given a server allowing 2 workflows per team, and a team that has 2
    caps(max_workflows_per_team=2)
    for key in ("one", "two"):
        assert api.post(URL, json=workflow(key)).status_code == 201

    # When it creates a third
    resp = api.post(URL, json=workflow("three"))

    # Then it is a 409 saying the cap and the setting, and nothing was saved
    body = assert_problem(resp, 409)
    assert "already has 2 workflows" in body["detail"]
    assert "max_workflows_per_team" in body["detail"]
    assert "DEALFLOW_MAX_WORKFLOWS_PER_TEAM" in body["detail"]
    assert [w["id"] for w in api.get(URL).json()] == ["one", "two"]

    # But a new version of an existing workflow is no new workflow
    changed = api.put(f"{URL}/two", json={**workflow("two"), "name": "Two"})
    assert changed.status_code == 200, changed.text

    # And another team has room of its own
    other = make_team("Beta")
    assert api.post(URL, json=workflow("three"), headers=other.headers).status_code == 201

    # And deleting one makes room again
    assert api.delete(f"{URL}/one").status_code == 204
    assert api.post(URL, json=workflow("three")).status_code == 201


# --- webhook bodies --------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["named", "public"])
def test_a_webhook_body_over_the_cap_is_413_naming_the_setting(
    api: TestClient[Litestar], caps, team, route: str
) -> None:
    # Given a server taking webhook bodies of up to 100 bytes
    caps(webhook_max_body_size=100)
    path = "/api/v1/hooks/lead-form"
    if route == "public":
        path = f"/api/v1/hooks/{team.team_id}/lead-form"

    # When a body of 101 bytes comes (signed or not: the size is checked first)
    resp = api.post(path, content=b"{" + b" " * 99 + b"}")

    # Then it is a 413 naming the limit and its setting
    body = assert_problem(resp, 413)
    assert "at most 100 bytes" in body["detail"]
    assert "DEALFLOW_WEBHOOK_MAX_BODY_SIZE" in body["detail"]

    # And a body of 100 bytes gets past the size check (to the signature check)
    assert api.post(path, content=b"{" + b" " * 98 + b"}").status_code == 401
