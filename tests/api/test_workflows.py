"""The workflow store over HTTP: saves as versions, enable/disable, validation problems with
JSON paths, the published schema and action types, team isolation."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

URL = "/api/v1/workflows"


def workflow(**fields: Any) -> dict[str, Any]:
    return {
        "id": "deal-probability-70",
        "name": "70%: negotiation",
        "entity": "deal",
        "trigger": {"type": "record_saved", "on": ["created", "updated"]},
        "condition": "record.stage == 'negotiation'",
        "actions": [{"type": "field_update", "set": {"probability": 70}}],
        **fields,
    }


def assert_problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    return resp.json()


def test_each_changed_save_is_a_new_version_kept_in_history(api) -> None:
    # Given a saved workflow
    first = workflow()
    created = api.post(URL, json=first)
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1
    assert created.json()["enabled"] is True

    # When it is saved with a change, then saved again unchanged
    second = workflow(actions=[{"type": "field_update", "set": {"probability": 75}}])
    changed = api.put(f"{URL}/deal-probability-70", json=second)
    same = api.put(f"{URL}/deal-probability-70", json=second)

    # Then the change made version 2, the identical save kept it, and both versions are kept
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert same.status_code == 200
    assert same.json()["version"] == 2
    current = api.get(f"{URL}/deal-probability-70").json()
    assert (current["version"], current["document"]) == (2, second)
    assert current["trigger_type"] == "record_saved"
    history = api.get(f"{URL}/deal-probability-70/versions").json()
    assert [(v["version"], v["document"]) for v in history] == [(1, first), (2, second)]
    assert api.get(f"{URL}/deal-probability-70/versions/1").json()["document"] == first
    assert [w["id"] for w in api.get(URL).json()] == ["deal-probability-70"]


def test_a_deleted_workflow_is_gone_with_its_versions(api) -> None:
    assert api.post(URL, json=workflow()).status_code == 201

    resp = api.delete(f"{URL}/deal-probability-70")

    assert resp.status_code == 204
    assert assert_problem(api.get(f"{URL}/deal-probability-70"), 404)
    assert assert_problem(api.get(f"{URL}/deal-probability-70/versions"), 404)
    assert api.get(URL).json() == []


def test_disable_and_enable_take_effect_on_the_next_save(api) -> None:
    # Given a saved, then disabled, probability workflow
    assert api.post(URL, json=workflow()).status_code == 201
    disabled = api.post(f"{URL}/deal-probability-70/disable")
    assert disabled.status_code == 200
    assert disabled.json()["enabled"] is False
    assert [w["id"] for w in api.get(URL, params={"enabled": "false"}).json()] == [
        "deal-probability-70"
    ]

    # When a deal is saved while it is disabled, and again after it is enabled
    before = api.post("/api/v1/deals", json={"title": "A", "stage": "negotiation"}).json()
    enabled = api.post(f"{URL}/deal-probability-70/enable")
    after = api.post("/api/v1/deals", json={"title": "B", "stage": "negotiation"}).json()

    # Then only the second save was changed by it
    assert enabled.json()["enabled"] is True
    assert before["probability"] is None
    assert after["probability"] == 70


def test_an_invalid_workflow_is_refused_listing_every_problem_by_json_path(api) -> None:
    document = workflow(
        condition="record.stage == ",
        actions=[
            {"type": "formula", "field": "weighted_amount"},
            {"type": "field_update", "set": {"probability": [70]}},
            {"type": "sms"},
        ],
    )

    problem = assert_problem(api.post(URL, json=document), 422)

    fields = [e["field"] for e in problem["errors"]]
    assert sorted(fields) == sorted(
        [
            "$.condition",
            "$.actions[0].expression",
            "$.actions[1].set.probability",
            "$.actions[2].type",
        ]
    )
    messages = {e["field"]: e["message"] for e in problem["errors"]}
    assert "position 16" in messages["$.condition"]
    assert messages["$.actions[1].set.probability"].startswith("expected ")
    assert "field_update" in messages["$.actions[2].type"]
    assert problem["field"] == problem["errors"][0]["field"]
    assert "4 problem(s)" in problem["detail"]
    assert api.get(URL).json() == []


def test_put_with_another_id_in_the_document_is_refused(api) -> None:
    problem = assert_problem(api.put(f"{URL}/other-id", json=workflow()), 422)

    assert problem["field"] == "$.id"
    assert "other-id" in problem["detail"]


def test_validate_reports_problems_without_saving(api) -> None:
    good = api.post(f"{URL}/validate", json=workflow())
    bad = api.post(f"{URL}/validate", json=workflow(exclusive=True, trigger={"type": "nope"}))

    assert good.status_code == 200
    assert good.json() == {"valid": True, "errors": []}
    assert bad.status_code == 200
    assert bad.json()["valid"] is False
    assert {e["field"] for e in bad.json()["errors"]} == {"$.trigger.type", "$.exclusive"}
    assert api.get(URL).json() == []


def test_the_schema_and_the_action_types_are_published(api) -> None:
    # When
    schema = api.get(f"{URL}/schema")
    actions = api.get("/api/v1/actions")

    # Then the schema is a Draft 2020-12 schema that accepts a workflow
    assert schema.status_code == 200
    Draft202012Validator.check_schema(schema.json())
    assert Draft202012Validator(schema.json()).is_valid(workflow())
    # and every action type is listed with its plugin, kind and config schema
    assert actions.status_code == 200
    listed = {a["name"]: a for a in actions.json()}
    assert {"field_update", "formula", "email", "tag_record"} <= set(listed)
    assert listed["formula"]["kind"] == "record"
    assert listed["email"]["kind"] == "side_effect"
    assert listed["formula"]["config_schema"]["required"] == ["field", "expression"]
    assert listed["email"]["plugin"] == "server.core.builtin.email"
    assert listed["tag_record"]["plugin"] == "sample"


def test_another_team_cannot_see_or_change_a_workflow(api, make_team) -> None:
    # Given team A's workflow
    assert api.post(URL, json=workflow()).status_code == 201
    other = make_team("Globex").headers
    url = f"{URL}/deal-probability-70"

    # Then team B is told it does not exist, whatever it tries
    for method, path in (
        ("GET", url),
        ("GET", f"{url}/versions"),
        ("POST", f"{url}/disable"),
        ("DELETE", url),
    ):
        assert_problem(api.request(method, path, headers=other), 404)
    assert api.get(URL, headers=other).json() == []
    # and may use the same id for a workflow of its own, leaving team A's untouched
    own = api.post(URL, json=workflow(name="Globex's own"), headers=other)
    assert own.status_code == 201, own.text
    assert api.get(url).json()["name"] == "70%: negotiation"
    assert api.get(url).json()["enabled"] is True
