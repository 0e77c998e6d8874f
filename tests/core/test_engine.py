"""The engine through real saves: record actions in the transaction, chains, loops, the depth
limit, which workflows are evaluated, action errors, exclusive conflicts and versions."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import TestClient


def workflow(key: str, actions: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "id": key,
        "name": key,
        "entity": "deal",
        "trigger": {"type": "record_saved"},
        "actions": actions,
        **fields,
    }


def save(client: TestClient[Litestar], document: dict[str, Any]) -> dict[str, Any]:
    resp = client.post("/api/v1/workflows", json=document)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def new_deal(client: TestClient[Litestar], **fields: Any) -> dict[str, Any]:
    resp = client.post("/api/v1/deals", json={"title": "Initech TPS portal", **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


def runs_of(client: TestClient[Litestar], deal_id: int) -> list[dict[str, Any]]:
    resp = client.get("/api/v1/runs", params={"entity": "deal", "record_id": deal_id})
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def evaluated(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["workflow"]: e for e in run["evaluations"]}


def test_a_record_action_runs_in_the_save_and_its_change_triggers_the_next_workflow(api) -> None:
    # Given a probability workflow, and one that listens to probability changes
    save(
        api,
        workflow(
            "prob-70",
            [{"type": "field_update", "set": {"probability": 70}}],
            trigger={"type": "record_saved", "fields": ["stage"]},
            condition="record.stage == 'negotiation'",
        ),
    )
    save(
        api,
        workflow(
            "mark-likely",
            [{"type": "field_update", "set": {"custom.likely": True}}],
            trigger={"type": "record_saved", "on": ["updated"], "fields": ["probability"]},
            condition="record.probability >= `50`",
        ),
    )

    # When a deal in negotiation is created
    deal = new_deal(api, stage="negotiation", amount=1000)

    # Then the response already shows both workflows' changes, made in the same transaction
    assert deal["probability"] == 70
    assert deal["weighted_amount"] == 700.0
    assert deal["custom"] == {"likely": True}
    first, second, third = runs_of(api, deal["id"])
    assert (first["source"], first["depth"], first["op"]) == ("api", 0, "created")
    assert evaluated(first)["prob-70"]["matched"]
    assert "mark-likely" not in evaluated(first)  # it listens to updates only
    assert (second["source"], second["depth"], second["op"]) == ("workflow", 1, "updated")
    assert second["changed"] == ["probability", "weighted_amount"]
    assert evaluated(second)["mark-likely"]["matched"]
    assert second["status"] == "ok"
    # and the chain ends when nothing listens to the last change
    assert (third["depth"], third["changed"], third["evaluations"]) == (2, ["custom.likely"], [])


def test_a_loop_is_stopped_and_recorded_and_the_save_still_succeeds(api) -> None:
    # Given A: y = x + 1 whenever x changes, and B: x = y + 1 whenever y changes
    for key, target, source in (("a-sets-y", "y", "x"), ("b-sets-x", "x", "y")):
        save(
            api,
            workflow(
                key,
                [
                    {
                        "type": "formula",
                        "field": f"custom.{target}",
                        "expression": f"custom.{source} + 1",
                    }
                ],
                trigger={"type": "record_saved", "on": ["updated"], "fields": [f"custom.{source}"]},
            ),
        )
    deal = new_deal(api)

    # When x is set through the API
    resp = api.patch(f"/api/v1/deals/{deal['id']}", json={"custom": {"x": 0}})

    # Then the save succeeds with A and B applied once each, and A's second turn refused
    assert resp.status_code == 200, resp.text
    assert resp.json()["custom"] == {"x": 2, "y": 1}
    runs = [r for r in runs_of(api, deal["id"]) if r["op"] == "updated"]
    assert [(r["depth"], r["status"]) for r in runs] == [(0, "ok"), (1, "ok"), (2, "loop")]
    cycle = ["a-sets-y set custom.y", "b-sets-x set custom.x", "a-sets-y"]
    assert runs[-1]["notes"] == [{"loop": cycle}]
    (action,) = evaluated(runs[-1])["a-sets-y"]["actions"]
    assert action["status"] == "skipped"
    assert action["error"] == "loop: " + " → ".join(cycle) + " …"


def test_a_chain_of_workflow_changes_stops_at_the_depth_limit(api) -> None:
    # Given seven workflows: step i sets custom.f<i> when custom.f<i-1> changes
    for i in range(1, 8):
        save(
            api,
            workflow(
                f"step-{i}",
                [{"type": "field_update", "set": {f"custom.f{i}": i}}],
                trigger={"type": "record_saved", "on": ["updated"], "fields": [f"custom.f{i - 1}"]},
            ),
        )
    deal = new_deal(api)

    # When f0 is changed through the API
    resp = api.patch(f"/api/v1/deals/{deal['id']}", json={"custom": {"f0": 0}})

    # Then steps 1..6 ran (depths 0..5), the sixth change was applied but not followed
    assert resp.status_code == 200, resp.text
    custom = resp.json()["custom"]
    assert custom == {"f0": 0, "f1": 1, "f2": 2, "f3": 3, "f4": 4, "f5": 5, "f6": 6}
    runs = [r for r in runs_of(api, deal["id"]) if r["op"] == "updated"]
    assert [r["depth"] for r in runs] == [0, 1, 2, 3, 4, 5]
    assert runs[-1]["notes"] == [{"depth_limit": 5, "not_followed": ["custom.f6"]}]


def test_only_enabled_workflows_of_the_team_entity_and_trigger_are_evaluated(
    api, make_team
) -> None:
    # Given team A's deal listener, and workflows that must not be evaluated for a deal save
    noop = [{"type": "field_update", "set": {"custom.seen": True}}]
    save(api, workflow("deal-listener", noop))
    save(api, workflow("deal-disabled", noop, enabled=False))
    save(api, workflow("deal-on-delete", noop, trigger={"type": "record_saved", "on": ["deleted"]}))
    save(api, workflow("deal-acquired", noop, trigger={"type": "lead_acquired"}))
    save(api, workflow("contact-listener", noop, entity="contact"))
    team_b = make_team("Globex")
    resp = api.post(
        "/api/v1/workflows", json=workflow("team-b-deals", noop), headers=team_b.headers
    )
    assert resp.status_code == 201, resp.text

    # When team A creates a deal
    deal = new_deal(api)

    # Then only team A's enabled deal listener for this trigger was evaluated
    run = runs_of(api, deal["id"])[0]
    assert [e["workflow"] for e in run["evaluations"]] == ["deal-listener"]


def test_failing_conditions_and_actions_are_recorded_and_the_save_succeeds_unchanged(api) -> None:
    # Given formulas dividing by a zero field and reading a field the deal does not have,
    # and an update the team's stage domain refuses after probability was already set
    failing = {
        "per-unit": {
            "type": "formula",
            "field": "custom.per_unit",
            "expression": "amount / custom.units",
        },
        "discounted": {
            "type": "formula",
            "field": "custom.net",
            "expression": "amount - custom.discount",
        },
        "archive": {"type": "field_update", "set": {"probability": 5, "stage": "archived"}},
    }
    for key, action in failing.items():
        save(api, workflow(key, [action]))
    # and a condition that fails while it runs (abs() of a string)
    save(api, workflow("odd-condition", [failing["archive"]], condition="abs(record.stage) > `1`"))
    resp = api.put("/api/v1/team", json={"field_domains": {"deal.stage": ["new", "won"]}})
    assert resp.status_code == 200, resp.text

    # When a deal with zero units and no discount is created
    resp = api.post("/api/v1/deals", json={"title": "Units", "amount": 100, "custom": {"units": 0}})

    # Then it is saved exactly as sent, and the run says what failed and why
    assert resp.status_code == 201, resp.text
    deal = resp.json()
    assert (deal["custom"], deal["stage"], deal["probability"]) == ({"units": 0}, "new", None)
    assert api.get(f"/api/v1/deals/{deal['id']}").json() == deal
    (run,) = runs_of(api, deal["id"])
    assert run["status"] == "error"
    condition = evaluated(run).pop("odd-condition")
    assert (condition["matched"], condition["actions"]) == (False, [])
    assert "abs()" in condition["error"]
    errors = {k: e["actions"][0] for k, e in evaluated(run).items() if k != "odd-condition"}
    assert {a["status"] for a in errors.values()} == {"error"}
    assert "division by zero" in errors["per-unit"]["error"]
    assert "'custom.discount' is missing" in errors["discounted"]["error"]
    assert "'archived'" in errors["archive"]["error"]


def test_two_matches_in_an_exclusive_group_apply_neither_and_record_a_conflict(api) -> None:
    # Given two exclusive probability workflows whose conditions overlap on big deals
    for key, probability, floor in (("prob-small", 20, 0), ("prob-big", 40, 500)):
        save(
            api,
            workflow(
                key,
                [{"type": "field_update", "set": {"probability": probability}}],
                group="deal_probability",
                exclusive=True,
                condition=f"record.amount >= `{floor}`",
            ),
        )

    # When a big deal is saved
    deal = new_deal(api, amount=1000)

    # Then neither is applied and the run names both
    assert deal["probability"] is None
    (run,) = runs_of(api, deal["id"])
    assert run["status"] == "conflict"
    assert run["notes"] == [
        {"conflict": "deal_probability", "workflows": ["prob-big", "prob-small"]}
    ]
    assert evaluated(run)["prob-big"]["conflict"] == ["prob-small"]
    assert evaluated(run)["prob-big"]["actions"] == []


def test_a_saved_workflow_is_effective_at_once_and_its_new_version_is_used(api) -> None:
    # Given a workflow saved after the engine already ran once for this team
    new_deal(api, title="Before any workflow")
    document = workflow("prob", [{"type": "field_update", "set": {"probability": 10}}])
    save(api, document)

    # When a deal is created, then the workflow is changed, then the deal is saved again
    deal = new_deal(api)
    document["actions"][0]["set"]["probability"] = 20
    resp = api.put("/api/v1/workflows/prob", json=document)
    assert resp.status_code == 200, resp.text
    assert resp.json()["version"] == 2
    updated = api.patch(f"/api/v1/deals/{deal['id']}", json={"title": "Renamed"}).json()

    # Then each save used the version current at its time
    assert deal["probability"] == 10
    assert updated["probability"] == 20
    first, second = [r for r in runs_of(api, deal["id"]) if r["source"] == "api"]
    assert evaluated(first)["prob"]["version"] == 1
    assert evaluated(second)["prob"]["version"] == 2


def test_a_formula_result_with_no_fraction_sets_an_integer_field(api) -> None:
    # Given a formula giving a float (amount / 100 = 70.0) for the integer probability
    save(api, workflow("p-from-amount", [{"type": "formula", "field": "probability", "expression": "amount / 100"}]))
    # When a deal of 7,000 is saved
    deal = new_deal(api, amount=7000)
    # Then its probability is 70 and its weighted amount follows
    assert (deal["probability"], deal["weighted_amount"]) == (70, 4900.0)


def test_a_formula_over_a_field_another_workflow_sets_in_the_same_step_is_not_a_loop(api) -> None:
    # Given a formula that runs first (by id) over the probability that a second workflow sets
    save(api, workflow("a-expected", [{"type": "formula", "field": "custom.expected",
                                       "expression": "amount * probability / 100"}]))
    save(api, workflow("b-probability", [{"type": "field_update", "set": {"probability": 40}}]))
    # When a deal with probability 10 is created
    deal = new_deal(api, amount=1000, probability=10)
    # Then the formula ran again on the new probability, and no loop was recorded
    assert (deal["probability"], deal["custom"]) == (40, {"expected": 400})
    assert all(run["status"] != "loop" for run in runs_of(api, deal["id"]))
