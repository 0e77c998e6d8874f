"""Conditions: evaluate a JMESPath condition, explain a non-match, and never hide an error."""

from __future__ import annotations

from typing import Any

import pytest

from server.core.conditions import evaluate
from server.core.expressions import compile_expression


def context(**record: Any) -> dict[str, Any]:
    """A condition's context document for a deal with ``record`` fields."""
    deal = {"status": "open", "stage": "proposal", "amount": 5000, "custom": {}, **record}
    return {"record": deal, "previous": None, "changed": [], "event": {}, "team": {}}


@pytest.mark.parametrize("condition", [None, ""])
def test_no_condition_always_matches(condition: str | None) -> None:
    assert evaluate(condition, context()).matched


def test_a_true_condition_matches_without_explanation() -> None:
    outcome = evaluate("record.status == 'open' && record.amount > `1000`", context())

    assert outcome.as_dict() == {"matched": True}


def test_a_non_match_names_the_false_conjunct_and_the_values_it_saw() -> None:
    # Given a deal in proposal, and a condition whose second part asks for negotiation
    condition = "record.status == 'open' && record.stage == 'negotiation' && record.amount > `0`"

    # When
    outcome = evaluate(condition, context(stage="proposal"))

    # Then the explanation is data: the part that was false and what it compared
    assert not outcome.matched
    assert outcome.error is None
    assert outcome.failed_part == "record.stage == 'negotiation'"
    assert outcome.values == {"record.stage": "proposal"}
    assert outcome.as_dict() == {
        "matched": False,
        "failed": "record.stage == 'negotiation'",
        "values": {"record.stage": "proposal"},
    }


def test_a_missing_field_is_a_non_match_that_shows_null() -> None:
    outcome = evaluate("record.custom.relationship == 'high'", context())

    assert not outcome.matched
    assert outcome.values == {"record.custom.relationship": None}


def test_a_runtime_jmespath_error_is_an_error_outcome_not_a_non_match() -> None:
    # abs() of a string is a type error that only shows when the condition runs
    outcome = evaluate("record.status == 'open' && abs(record.stage) > `1`", context())

    assert not outcome.matched
    assert outcome.error is not None
    assert "abs()" in outcome.error
    assert outcome.failed_part is None
    assert outcome.as_dict()["error"] == outcome.error


def test_expressions_are_compiled_once_and_cached() -> None:
    expression = "record.amount > `1234` && record.stage == 'cache-check'"

    first = compile_expression(expression)

    assert compile_expression(expression) is first
    assert compile_expression(expression + " ") is not first
