"""Workflow definitions: every problem reported with its JSON path, and the published schema."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from server.core.definitions import published_schema, validate
from server.core.plugins import Registry, load_registry


@pytest.fixture
def registry() -> Registry:
    return load_registry()


def workflow(**fields: Any) -> dict[str, Any]:
    """A valid deal workflow, with ``fields`` replacing its keys."""
    document: dict[str, Any] = {
        "id": "deal-probability-70",
        "name": "70%: negotiation, firm proposal",
        "entity": "deal",
        "trigger": {"type": "record_saved", "on": ["created", "updated"]},
        "condition": "record.status == 'open' && record.stage == 'negotiation'",
        "actions": [
            {"type": "field_update", "set": {"probability": 70}},
            {
                "type": "formula",
                "field": "custom.discounted",
                "expression": "amount * 0.9",
            },
        ],
    }
    document.update(fields)
    return document


def problems(document: Any, registry: Registry) -> dict[str, str]:
    return {p.path: p.message for p in validate(document, registry)}


def test_a_valid_workflow_has_no_problems(registry: Registry) -> None:
    assert validate(workflow(), registry) == []


def test_every_problem_is_reported_at_once_with_its_json_path(registry: Registry) -> None:
    # Given a definition with five unrelated mistakes
    document = workflow(
        condition="record.stage == ",
        exclusive=True,
        color="blue",
        actions=[
            {"type": "formula", "field": "weighted_amount"},
            {"type": "field_update", "set": {"probability": {"value": 70}}},
        ],
    )
    del document["name"]

    # When
    found = problems(document, registry)

    # Then each is named by where it is, not only the first one
    assert found == {
        "$.name": "is required",
        "$.color": "unknown property",
        "$.condition": "incomplete expression at position 16",
        "$.exclusive": "an exclusive workflow needs a group",
        "$.actions[0].expression": "is required",
        "$.actions[1].set.probability": "expected a string or a number or true or false or null",
    }
    assert [str(p) for p in validate(document, registry)][-1].startswith(
        "$.actions[1].set.probability: expected "
    )


CASES = {
    "unknown trigger type names the known ones": (
        {"trigger": {"type": "record_moved"}},
        "$.trigger.type",
        ["unknown trigger type 'record_moved'", "record_saved", "stage_changed"],
    ),
    "trigger filter outside its enum": (
        {"trigger": {"type": "record_saved", "on": ["moved"]}},
        "$.trigger.on[0]",
        ["'moved' is not one of"],
    ),
    "score_threshold without threshold": (
        {"trigger": {"type": "score_threshold"}},
        "$.trigger.threshold",
        ["is required"],
    ),
    "unknown action type names the known ones": (
        {"actions": [{"type": "sms", "to": "x"}]},
        "$.actions[0].type",
        ["unknown action type 'sms'", "email", "field_update", "formula"],
    ),
    "formula without expression": (
        {"actions": [{"type": "formula", "field": "weighted_amount"}]},
        "$.actions[0].expression",
        ["is required"],
    ),
    "field_update with neither set nor set_from": (
        {"actions": [{"type": "field_update"}]},
        "$.actions[0]",
        ["'set' is required", "'set_from' is required"],
    ),
    "action config with an extra key": (
        {"actions": [{"type": "field_update", "set": {"probability": 1}, "when": "x"}]},
        "$.actions[0].when",
        ["unknown property"],
    ),
    "set_from expression that does not parse": (
        {"actions": [{"type": "field_update", "set_from": {"owner_id": "record.["}}]},
        "$.actions[0].set_from.owner_id",
        ["position"],
    ),
    "formula that does not parse": (
        {"actions": [{"type": "formula", "field": "x", "expression": "amount *"}]},
        "$.actions[0].expression",
        [],
    ),
    "condition syntax error with its position": (
        {"condition": "record.stage == "},
        "$.condition",
        ["position 16"],
    ),
    "condition calling an unknown function": (
        {"condition": "shout(record.stage) == 'X'"},
        "$.condition",
        ["unknown function shout()", "position 0"],
    ),
    "exclusive without group": ({"exclusive": True}, "$.exclusive", ["needs a group"]),
    "stage_changed on contacts": (
        {"entity": "contact", "trigger": {"type": "stage_changed", "to": "won"}},
        "$.entity",
        ["deal or lead", "not contact"],
    ),
    "unknown entity": ({"entity": "ticket"}, "$.entity", ["'ticket' is not one of"]),
}


@pytest.mark.parametrize(("change", "path", "words"), list(CASES.values()), ids=list(CASES))
def test_each_kind_of_problem_is_refused_at_its_path(
    registry: Registry, change: dict[str, Any], path: str, words: list[str]
) -> None:
    found = problems(workflow(**change), registry)

    assert path in found, found
    for word in words:
        assert word in found[path], found[path]


def test_a_document_that_is_not_an_object_is_one_problem(registry: Registry) -> None:
    assert problems(["not", "a", "workflow"], registry) == {"$": "expected an object"}


def test_the_published_schema_is_draft_2020_12_and_checks_documents(registry: Registry) -> None:
    # Given the schema the API publishes, with every trigger and action type in it
    schema = published_schema(registry)
    Draft202012Validator.check_schema(schema)
    checker = Draft202012Validator(schema)

    # Then a good document passes and bad ones fail, as a third-party tool would see them
    assert list(checker.iter_errors(workflow())) == []
    assert not checker.is_valid(workflow(actions=[{"type": "formula", "field": "x"}]))
    assert not checker.is_valid(workflow(trigger={"type": "record_saved", "on": ["moved"]}))
    assert not checker.is_valid(workflow(actions=[{"type": "sms"}]))
    action_schemas = schema["properties"]["actions"]["items"]["oneOf"]
    names = {a["properties"]["type"]["const"] for a in action_schemas}
    assert {"field_update", "formula", "email"} <= names


def test_record_actions_may_only_set_fields_the_entity_lets_them_set() -> None:
    from server.core.definitions import validate
    from server.core.plugins import load_registry

    document = {
        "id": "w", "name": "w", "entity": "deal", "trigger": {"type": "record_saved"},
        "actions": [
            {"type": "formula", "field": "weighted_amount", "expression": "amount * probability / 100"},
            {"type": "field_update", "set": {"created_by_id": 1, "custom.x": 2, "probability": 3},
             "set_from": {"id": "record.id"}},
        ],
    }
    problems = {p.path: p.message for p in validate(document, load_registry())}
    assert set(problems) == {"$.actions[0].field", "$.actions[1].set.created_by_id", "$.actions[1].set_from.id"}
    assert "weighted_amount is not a field a workflow can set on a deal" in problems["$.actions[0].field"]


def test_literal_values_must_be_what_the_field_takes() -> None:
    from server.core.definitions import validate
    from server.core.plugins import load_registry

    document = {
        "id": "w", "name": "w", "entity": "deal", "trigger": {"type": "record_saved"},
        "actions": [{"type": "field_update", "set": {
            "probability": "high", "amount": -5, "status": "nope", "stage": "proposal", "custom.x": [1][0],
        }}],
    }
    problems = {p.path: p.message for p in validate(document, load_registry())}
    assert set(problems) == {
        "$.actions[0].set.probability", "$.actions[0].set.amount", "$.actions[0].set.status",
    }
    assert "int" in problems["$.actions[0].set.probability"]
    fine = {**document, "actions": [{"type": "field_update", "set": {"probability": 70.0, "owner_id": None}}]}
    assert validate(fine, load_registry()) == []


def test_a_negated_path_without_parentheses_is_refused_where_it_is(registry: Registry) -> None:
    # `!record.owner_id` is `(!record).owner_id` in JMESPath: a field of a boolean, always
    # null, so the condition could never hold. It is refused with the way to write it.
    found = problems(workflow(condition="record.amount > `0` && !record.owner_id"), registry)
    assert list(found) == ["$.condition"]
    assert "Write `!(record.x)`" in found["$.condition"]
    assert found["$.condition"].endswith("at position 23")
    # ... and the parenthesised form is a fine condition
    assert problems(workflow(condition="record.amount > `0` && !(record.owner_id)"), registry) == {}
