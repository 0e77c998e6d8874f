"""A third-party plugin installed as a real distribution (tests/plugins/sample_plugin), used end
to end through its entry point; and the plugin manager's start-up checks."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from typing import Any

import pytest

from server.core.errors import ConfigError
from server.core.plugins import ENTRY_POINT_GROUP, build_registry, get_plugin_manager
from server.plugin import Action, hookimpl

INSTALL_HINT = "install it with `.venv/bin/pip install -e tests/plugins/sample_plugin`"


@pytest.fixture(scope="module", autouse=True)
def sample_plugin_installed() -> None:
    try:
        dist = distribution("dealflow-sample-plugin")
    except PackageNotFoundError:
        pytest.fail(f"the sample plugin distribution is not installed; {INSTALL_HINT}")
    names = {ep.name for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP}
    assert names == {"sample"}, f"unexpected entry points {names}; {INSTALL_HINT}"


def tagging(*actions: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "tag-big-deals",
        "name": "Tag big deals",
        "entity": "deal",
        "trigger": {"type": "record_saved"},
        "condition": "record.amount >= `1000`",
        "actions": list(actions),
    }


def test_the_plugin_action_is_listed_with_its_plugin_and_schema(api) -> None:
    listed = {a["name"]: a for a in api.get("/api/v1/actions").json()}

    assert listed["tag_record"]["plugin"] == "sample"
    assert listed["tag_record"]["kind"] == "record"
    assert listed["tag_record"]["config_schema"] == {
        "type": "object",
        "properties": {"tag": {"type": "string", "minLength": 1}},
        "required": ["tag"],
        "additionalProperties": False,
    }


def test_a_workflow_using_the_plugin_action_runs_end_to_end(api) -> None:
    # Given a workflow with the plugin's action
    resp = api.post("/api/v1/workflows", json=tagging({"type": "tag_record", "tag": "vip"}))
    assert resp.status_code == 201, resp.text

    # When a big and a small deal are saved
    big = api.post("/api/v1/deals", json={"title": "Big", "amount": 5000}).json()
    small = api.post("/api/v1/deals", json={"title": "Small", "amount": 10}).json()

    # Then only the big one is tagged, in the save's own response
    assert big["custom"] == {"tag": "vip"}
    assert small["custom"] == {}
    run = api.get("/api/v1/runs", params={"workflow": "tag-big-deals"}).json()["items"][0]
    (action,) = run["evaluations"][0]["actions"]
    assert (action["type"], action["status"]) == ("tag_record", "ok")


def test_a_plugin_bug_is_recorded_as_its_action_error_and_the_save_succeeds(api) -> None:
    # Given a workflow whose first action is a plugin action that raises an unexpected exception
    workflow = tagging({"type": "explode"}, {"type": "tag_record", "tag": "big"})
    assert api.post("/api/v1/workflows", json=workflow).status_code == 201
    # When a matching deal is saved
    resp = api.post("/api/v1/deals", json={"title": "Big", "amount": 5000})
    # Then the save succeeds, the next action still ran, and the run names the error
    assert resp.status_code == 201, resp.text
    assert resp.json()["custom"] == {"tag": "big"}
    run = api.get("/api/v1/runs", params={"workflow": "tag-big-deals"}).json()["items"][0]
    actions = run["evaluations"][0]["actions"]
    assert run["status"] == "error"
    assert actions[0]["status"] == "error" and "ZeroDivisionError" in actions[0]["error"]
    assert actions[1]["status"] == "ok"
    # And a dry run reports the same error instead of failing
    test = api.post("/api/v1/workflows/test", json={"workflow": workflow, "record": {"amount": 5000}})
    assert test.status_code == 200
    assert "ZeroDivisionError" in test.json()["actions"][0]["error"]


def test_a_plugin_action_config_failing_its_schema_is_refused(api) -> None:
    document = tagging({"type": "tag_record"}, {"type": "tag_record", "tag": "x", "colour": "red"})

    resp = api.post("/api/v1/workflows", json=document)

    assert resp.status_code == 422, resp.text
    errors = {e["field"]: e["message"] for e in resp.json()["errors"]}
    assert errors == {"$.actions[0].tag": "is required", "$.actions[1].colour": "unknown property"}
    assert api.get("/api/v1/workflows").json() == []


def test_the_plugin_template_filter_works_in_an_email_preview(api) -> None:
    email = {
        "type": "email",
        "to": "sales-lead@example.com",
        "subject": "{{ record.title | shout }}",
        "body": "{{ record.stage | shout }}",
    }

    resp = api.post(
        "/api/v1/workflows/test",
        json={
            "workflow": tagging(email),
            "record": {"title": "Initech", "stage": "won", "amount": 2000},
        },
    )

    assert resp.status_code == 200, resp.text
    (action,) = resp.json()["actions"]
    assert (action["preview"]["subject"], action["preview"]["body"]) == ("INITECH!", "WON!")


def _plugin(action_name: str | None = None, filter_name: str | None = None) -> object:
    """A small in-test plugin object registering one action and/or one template filter."""

    class Plugin:
        if action_name:

            @hookimpl
            def dealflow_register_actions(self) -> list[Action]:
                return [Action(action_name, "record", {"type": "object"}, lambda c, x: {})]

        if filter_name:

            @hookimpl
            def dealflow_template_filters(self) -> dict[str, Any]:
                return {filter_name: str}

    return Plugin()


def test_two_plugins_registering_one_name_stop_start_up_naming_both() -> None:
    pm = get_plugin_manager()
    pm.register(_plugin(action_name="dup"), name="first-plugin")
    pm.register(_plugin(action_name="dup"), name="second-plugin")

    with pytest.raises(ConfigError, match="'dup'") as caught:
        build_registry(pm)
    assert "first-plugin" in caught.value.message
    assert "second-plugin" in caught.value.message

    # and a filter name taken twice is refused the same way
    pm = get_plugin_manager()
    pm.register(_plugin(filter_name="shout"), name="loud-plugin")
    with pytest.raises(ConfigError, match="'shout'") as caught:
        build_registry(pm)
    assert "'sample'" in caught.value.message
    assert "'loud-plugin'" in caught.value.message


def test_a_disabled_plugin_is_not_loaded() -> None:
    enabled = build_registry(get_plugin_manager())
    disabled = build_registry(get_plugin_manager(disabled=("sample",)))

    assert "tag_record" in enabled.actions
    assert "shout" in enabled.template_filters
    assert "tag_record" not in disabled.actions
    assert "shout" not in disabled.template_filters
    assert {"field_update", "formula", "email"} <= set(disabled.actions)
