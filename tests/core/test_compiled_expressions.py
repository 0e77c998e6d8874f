"""Compiled expressions: the closures give exactly what the interpreter gives, leave what they
do not handle to it, and keep its limits."""

from __future__ import annotations

import copy
from typing import Any

import jmespath
import pytest

from server.core import expressions
from server.core import compiled as closures
from server.core.expressions import LimitError, compile_expression

MISSING = object()

FIELDS = [
    "record.amount",
    "record.status",
    "record.owner_id",
    "record.custom.proposal_type",
    "record.custom.missing.deeper",
    "record.missing",
    "payload.kind",
    "record.tags[0]",
    "record.tags[-1]",
    "changed[1]",
    "@",
]
COMPARISONS = [
    "== 'open'",
    "!= `null`",
    "> `5000`",
    "<= `5000.0`",
    "== `true`",
    "== `1`",
    "< 'b'",
    ">= record.score",
]
FUNCTIONS = [
    "length({})",
    "contains(['a', 'b', `1`], {})",
    "contains({}, 'a')",
    "starts_with({}, 'op')",
    "ends_with('proposal', {})",
    "to_number({})",
    "abs({})",
    "not_null({}, 'fallback')",
]
CONDITIONS = [
    "record.amount > `5000` && record.status == 'open'",
    "record.stage == 'proposal' && record.custom.proposal_type == 'firm'",
    "contains(['a','b'], record.stage)",
    "changed[?@ == 'stage'] | length(@) > `0`",
    "!record.owner_id",
    "record.score >= `50` || payload.kind == 'demo'",
    "record.tags[?@ != 'a']",
    "record.tags[?@ == 'a'].x",
    "[record.amount, record.status, `null`]",
    "record.amount == `5000` == `true`",
    "!(record.amount > `1`) || !record.status",
    "record.status || record.amount || 'none'",
    "record.owner_id && record.custom",
    "!!record.amount",
    "!`0`",
    "!`0.0`",
    "`1` == `1.0`",
    "`true` == `1`",
    "`false` != `0`",
    "'a' < 'b'",
    "record.custom | proposal_type",
    "length(record.tags[?@ != 'x']) >= `2`",
]


def _expressions() -> list[str]:
    found = [f"{field} {comparison}" for field in FIELDS for comparison in COMPARISONS]
    found += [template.format(field) for field in FIELDS for template in FUNCTIONS]
    for left, right in zip(FIELDS, FIELDS[1:] + FIELDS[:1], strict=True):
        found += [f"{left} && {right}", f"{left} || {right}", f"!{left}", f"!({left})"]
    return found + CONDITIONS


EXPRESSIONS = _expressions()

BASE: dict[str, Any] = {
    "record": {
        "amount": 6000,
        "status": "open",
        "stage": "proposal",
        "owner_id": None,
        "score": 40,
        "custom": {"proposal_type": "firm"},
        "tags": ["a", "b"],
    },
    "changed": ["stage", "amount"],
    "payload": {"kind": "demo"},
}
VALUES: list[Any] = [
    MISSING,
    None,
    True,
    False,
    0,
    1,
    1.0,
    5000,
    5000.0,
    6000.5,
    -7,
    "open",
    "",
    "6000",
    "b",
    [],
    ["a", "b"],
    [1, "a"],
    {},
    {"x": 1},
]


def _with(value: Any) -> dict[str, Any]:
    """BASE with every field the expressions read set to ``value`` (removed for MISSING)."""
    document = copy.deepcopy(BASE)
    record = document["record"]
    places = [(record, k) for k in ("amount", "status", "owner_id", "score", "tags", "stage")]
    places += [(record["custom"], "proposal_type"), (document["payload"], "kind")]
    for holder, key in places:
        if value is MISSING:
            del holder[key]
        else:
            holder[key] = copy.deepcopy(value)
    return document


DOCUMENTS: list[Any] = [
    BASE,
    *(_with(value) for value in VALUES),
    None,
    {},
    {"record": "a string", "changed": "stage", "payload": 3},
    {"record": [1, 2], "changed": [None, "stage"], "payload": None},
    {"record": {"custom": ["firm"]}, "changed": {"1": "x"}, "payload": {"kind": False}},
]


def outcome(run: Any) -> tuple[str, str]:
    """What ``run()`` gave, types included (``1``, ``1.0`` and ``True`` differ), or the type
    and message of what it raised."""
    try:
        return ("value", repr(run()))
    except Exception as exc:  # noqa: BLE001 - compared, not hidden
        return (type(exc).__name__, str(exc))


FELL_BACK = ("fell back", "")


def closure(expression: str, document: Any) -> tuple[str, str]:
    """What the closure alone gives, or FELL_BACK when it left the value to the interpreter."""
    fn = compile_expression(expression).compiled
    assert fn is not None
    try:
        return ("value", repr(fn(document)))
    except closures.Fallback:
        return FELL_BACK
    except Exception as exc:  # noqa: BLE001 - compared, not hidden
        return (type(exc).__name__, str(exc))


def leaves_to_interpreter(expression: str, document: Any) -> bool:
    """Whether the closure is meant to fall back here: the interpreter raised, or an equality
    or ``contains()`` saw a list or object (which the interpreter measures against the
    budget). Comparisons inside a filter or after a pipe see scalars in this corpus."""
    if interpreted(expression, document)[0] != "value":
        return True
    compiled = compile_expression(expression)
    stack = [compiled.parsed]
    while stack:
        node = stack.pop()
        if node["type"] in ("filter_projection", "pipe"):
            stack.append(node["children"][0])
            continue
        seen = [compiled.visit(child, document) for child in node["children"]]
        if node.get("value") == "contains":
            subject, searched = seen
            seen = [searched, *(subject if isinstance(subject, list) else [])]
        if node.get("value") in ("eq", "ne", "contains"):
            if any(isinstance(value, list | dict) for value in seen):
                return True
        stack.extend(node["children"])
    return False


def interpreted(expression: str, document: Any) -> tuple[str, str]:
    """What the bounded interpreter alone gives."""
    parsed = compile_expression(expression).parsed
    budget = expressions._Budget(expression)
    return outcome(lambda: expressions._BoundedInterpreter(budget).visit(parsed, document))


def test_the_corpus_is_large_and_every_expression_in_it_compiles() -> None:
    assert len(EXPRESSIONS) >= 60 and len(DOCUMENTS) >= 15
    assert [e for e in EXPRESSIONS if compile_expression(e).compiled is None] == []


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_a_compiled_expression_gives_exactly_what_the_interpreter_gives(expression: str) -> None:
    compiled = compile_expression(expression)
    assert compiled.compiled is not None
    ran = 0
    for document in DOCUMENTS:
        expected = interpreted(expression, document)
        assert outcome(lambda: jmespath.search(expression, document)) == expected
        assert outcome(lambda: compiled.search(document)) == expected, document
        direct = closure(expression, document)
        if direct == FELL_BACK:
            assert leaves_to_interpreter(expression, document), document
        else:
            ran += 1
            assert direct == expected, document
    # The closure itself answered, not the interpreter behind it, wherever it could.
    assert ran > 0 or all(leaves_to_interpreter(expression, d) for d in DOCUMENTS)


@pytest.mark.parametrize("document", [BASE, _with(5000), _with("open"), _with(None)])
def test_the_closure_answers_plain_documents_without_falling_back(document: Any) -> None:
    for expression in EXPRESSIONS:
        if not leaves_to_interpreter(expression, document):
            assert closure(expression, document) == interpreted(expression, document)


def test_or_and_and_return_the_deciding_value_not_a_boolean() -> None:
    document = {"a": "", "b": [1], "c": 0, "d": {}}

    assert compile_expression("a || b").compiled(document) == [1]  # type: ignore[misc]
    assert compile_expression("d && b").compiled(document) == {}  # type: ignore[misc]
    assert compile_expression("c && a").compiled(document) == ""  # type: ignore[misc]
    assert compile_expression("missing || c").compiled(document) == 0  # type: ignore[misc]


@pytest.mark.parametrize(
    "expression",
    [
        "record.tags[*]",
        "record.*",
        "record.tags[0:1]",
        "{amount: record.amount}",
        "sort(record.tags)",
        "max_by(payload.rows, &qty)",
        "record.tags[]",
        "type(record.amount)",
    ],
)
def test_an_expression_outside_the_subset_is_interpreted(expression: str) -> None:
    compiled = compile_expression(expression)

    assert compiled.compiled is None
    for document in DOCUMENTS:
        expected = interpreted(expression, document)
        assert outcome(lambda: compiled.search(document)) == expected


@pytest.mark.parametrize(
    ("expression", "document", "expected"),
    [
        ("record.tags == `[\"a\", \"b\"]`", BASE, True),
        ("record.custom != `{}`", BASE, True),
        ("record == record", BASE, True),
        ("length(`1`) || `true`", BASE, MISSING),
        ("contains(record.tags, `[1]`)", BASE, False),
        ("record.amount < 'a'", BASE, MISSING),
        ("to_number(`[1]`)", BASE, None),
    ],
)
def test_values_the_closure_leaves_to_the_interpreter_give_the_same(
    expression: str, document: Any, expected: Any
) -> None:
    compiled = compile_expression(expression)
    assert compiled.compiled is not None

    result = outcome(lambda: compiled.search(document))

    assert result == interpreted(expression, document)
    if expected is MISSING:
        assert result[0] != "value"
    else:
        assert result == ("value", repr(expected))


BIG = {"rows": list(range(300_000)), "record": {"note": "x" * 1000}}
STEPS = f"more than {expressions.MAX_STEPS} steps"


@pytest.mark.parametrize(
    ("expression", "limit"),
    [
        ("rows[?@ == `1`]", STEPS),
        ("rows[?@ > `5`] | length(@)", STEPS),
        ("contains(rows, `-1`)", STEPS),
        ("record | " + "[@, @] | " * 60 + "@", "value of over"),
        ("(record | " + "[@, @] | " * 60 + "@) == (record | " + "[@, @] | " * 60 + "@)", "value"),
    ],
)
def test_the_limits_hold_for_compiled_expressions(expression: str, limit: str) -> None:
    compiled = compile_expression(expression)
    assert compiled.compiled is not None

    with pytest.raises(LimitError) as caught:
        compiled.search(BIG)

    assert limit in caught.value.message


@pytest.mark.parametrize("expression", EXPRESSIONS[::5] + CONDITIONS)
def test_the_interpreter_never_charges_more_than_the_compiled_bound(expression: str) -> None:
    parsed = compile_expression(expression).parsed
    bound = closures._build(parsed).steps
    assert bound <= expressions.MAX_STEPS
    for document in [*DOCUMENTS, {"changed": ["stage"] * 4000, "record": {"tags": ["a"] * 900}}]:
        budget = expressions._Budget(expression)
        if closure(expression, document) == FELL_BACK:
            continue  # the interpreter's own budget applies
        try:
            expressions._BoundedInterpreter(budget).visit(parsed, document)
        except (jmespath.exceptions.JMESPathError, TypeError):
            pass
        assert budget.steps <= bound


def test_expressions_that_could_go_past_the_budget_or_the_depth_are_not_compiled() -> None:
    many_filters = " || ".join(f"a{i}[?b == `1`]" for i in range(11))
    deep = "(" * 150 + "a" + ")" * 150
    nested = "!" * closures.COMPILED_DEPTH + "a"

    assert compile_expression(many_filters[: many_filters.index(" || a9")]).compiled is not None
    assert compile_expression(many_filters).compiled is None
    assert compile_expression(deep).compiled is not None  # parentheses add no node
    assert compile_expression(nested[1:]).compiled is not None
    assert compile_expression(nested).compiled is None
    assert compile_expression(nested).search({"a": 1}) is True
