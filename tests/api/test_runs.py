"""The run log over HTTP: what each save evaluated, why a workflow did not match, what ran."""

from __future__ import annotations

from typing import Any

import pytest

URL = "/api/v1/runs"


@pytest.fixture
def two_saves(api) -> dict[str, Any]:
    """A matching save (big deal) and an erroring one (zero units), with their runs."""
    for document in (
        {
            "id": "big-deal",
            "name": "Flag big deals",
            "entity": "deal",
            "trigger": {"type": "record_saved", "fields": ["amount"]},
            "condition": "record.amount >= `1000`",
            "actions": [{"type": "field_update", "set": {"custom.big": True}}],
        },
        {
            "id": "per-unit",
            "name": "Price per unit",
            "entity": "deal",
            "trigger": {"type": "record_saved", "fields": ["amount"]},
            "condition": "record.custom.units != `null`",
            "actions": [
                {
                    "type": "formula",
                    "field": "custom.per_unit",
                    "expression": "amount / custom.units",
                }
            ],
        },
    ):
        assert api.post("/api/v1/workflows", json=document).status_code == 201
    big = api.post("/api/v1/deals", json={"title": "Big", "amount": 5000}).json()
    small = api.post(
        "/api/v1/deals", json={"title": "Small", "amount": 10, "custom": {"units": 0}}
    ).json()
    return {"big": big, "small": small, "runs": listed(api)}


def listed(api: Any, **params: Any) -> list[dict[str, Any]]:
    resp = api.get(URL, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def ids(runs: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in runs]


def test_runs_are_filtered_by_record_workflow_status_and_time(api, two_saves) -> None:
    # Given the big deal's save, the change its workflow made (depth 1), the small deal's save
    runs = two_saves["runs"]
    big_id, small_id = two_saves["big"]["id"], two_saves["small"]["id"]
    assert [(r["record_id"], r["depth"], r["status"]) for r in runs] == [
        (big_id, 0, "ok"),
        (big_id, 1, "no_match"),
        (small_id, 0, "error"),
    ]
    small_run = runs[2]

    # Then each filter keeps exactly the runs it names
    assert ids(listed(api, entity="deal", record_id=small_id)) == [small_run["id"]]
    assert ids(listed(api, entity="deal", record_id=big_id)) == ids(runs[:2])
    assert ids(listed(api, entity="contact")) == []
    assert ids(listed(api, workflow="big-deal")) == [runs[0]["id"]]
    assert ids(listed(api, workflow="per-unit")) == [small_run["id"]]
    assert ids(listed(api, workflow="big_deal")) == []  # an id, not a LIKE pattern
    assert ids(listed(api, workflow="%")) == []
    assert ids(listed(api, status="error")) == [small_run["id"]]
    assert ids(listed(api, status="no_match")) == [runs[1]["id"]]
    assert ids(listed(api, since=small_run["created_at"])) == [small_run["id"]]
    assert ids(listed(api, until=small_run["created_at"])) == ids(runs[:2])
    assert ids(listed(api, since="2999-01-01T00:00:00Z")) == []


def test_a_run_explains_each_evaluation_and_each_action(api, two_saves) -> None:
    # When the two first-level runs are read
    big_run, _, small_run = two_saves["runs"]
    big = api.get(f"{URL}/{big_run['id']}").json()
    small = api.get(f"{URL}/{small_run['id']}").json()

    # Then a match lists its actions, and a non-match names the part that was false
    evaluations = {e["workflow"]: e for e in big["evaluations"]}
    assert evaluations["big-deal"]["matched"] is True
    assert evaluations["big-deal"]["version"] == 1
    (action,) = evaluations["big-deal"]["actions"]
    assert (action["type"], action["status"]) == ("field_update", "ok")
    assert action["result"] == {"changes": {"custom.big": True}}
    assert action["duration_ms"] >= 0
    assert evaluations["per-unit"] == {
        "workflow": "per-unit",
        "version": 1,
        "matched": False,
        "failed": "record.custom.units != `null`",
        "values": {"record.custom.units": None},
        "actions": [],
    }
    assert (big["op"], big["source"], big["depth"], big["executions"]) == ("created", "api", 0, [])
    # and an action error is recorded on its action
    evaluations = {e["workflow"]: e for e in small["evaluations"]}
    assert evaluations["big-deal"]["failed"] == "record.amount >= `1000`"
    assert evaluations["big-deal"]["values"] == {"record.amount": 10}
    (action,) = evaluations["per-unit"]["actions"]
    assert action["status"] == "error"
    assert "division by zero" in action["error"]
    assert action["duration_ms"] >= 0
    assert small["status"] == "error"


def test_another_team_cannot_read_a_run(api, make_team, two_saves) -> None:
    other = make_team("Globex").headers
    run_id = two_saves["runs"][0]["id"]

    resp = api.get(f"{URL}/{run_id}", headers=other)

    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert api.get(URL, headers=other).json()["items"] == []
    assert api.get(f"{URL}/{run_id}").status_code == 200
