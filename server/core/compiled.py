"""Compiled JMESPath: the common conditions turned once into Python closures.

Fields, comparisons, ``&&``, ``||``, ``!``, a filter over a short list and a few functions
evaluate about ten times faster as closures than through the interpreter, and return exactly
what the interpreter would. Where that would take more than a fixed amount of code (equality
of lists and objects, which the interpreter measures; a function's type error; a loop longer
than its share of the budget) a closure raises :class:`Fallback` and the interpreter
(:mod:`server.core.expressions`) evaluates the expression again; the compiled subset has no
side effects. Each closure's work is bounded at compile time (``_Part.steps``), so an
expression only compiles when the interpreter could not go past MAX_STEPS on it either.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, NamedTuple

from jmespath import functions as jfunctions
from jmespath.visitor import _equals, _is_actual_number, _is_comparable

from server.core.limits import MAX_STEPS, MAX_VALUE_SIZE

Compiled = Callable[[Any], Any]
"""A compiled expression: the document in, the value the interpreter would give out."""

FILTER_STEPS = 20_000
"""Most steps one compiled filter may take (elements times the steps of one element); a
longer list is left to the interpreter and its budget."""

CONTAINS_ITEMS = 1_000
"""Longest list a compiled ``contains()`` searches; a longer one is left to the interpreter."""

COMPILED_DEPTH = 100
"""Deepest tree compiled: deeper ones stay with the interpreter, which turns running out of
stack into a LimitError."""

_SCALARS = frozenset({str, int, float, bool, type(None)})
_WITHOUT_GET = frozenset({str, int, float, bool, list})
_CONTAINERS = (list, dict)
_ORDERINGS = {"lt": operator.lt, "lte": operator.le, "gt": operator.gt, "gte": operator.ge}
_NOT_LITERAL = object()
_to_number = jfunctions.Functions._func_to_number


class Fallback(Exception):
    """Raised by a closure meeting a value it does not evaluate itself; the interpreter
    evaluates the whole expression instead."""


class _NotCompiled(Exception):
    """Raised at compile time by a node outside the compiled subset."""


class _Part(NamedTuple):
    """One compiled node: its closure, the most steps the interpreter could charge for it,
    and its value when it is a literal (else ``_NOT_LITERAL``)."""

    fn: Compiled
    steps: int
    literal: Any = _NOT_LITERAL


def _is_false(value: Any) -> bool:
    """TreeInterpreter._is_false, with the JSON types first."""
    kind = type(value)
    if kind is bool or kind is str or kind is list or kind is dict or value is None:
        return not value
    if kind is int or kind is float:
        return False
    return value == "" or value == [] or value == {} or value is None or value is False


def _get(value: Any, key: str) -> Any:
    try:
        return value.get(key)
    except AttributeError:
        return None


def _equal(left: Any, right: Any) -> bool:
    """``_equals``, except that lists and objects (which the interpreter measures against
    the budget) fall back."""
    if isinstance(left, list | dict) or isinstance(right, list | dict):
        raise Fallback
    return _equals(left, right)  # type: ignore[no-any-return]


def _ordered(op: Callable[[Any, Any], bool], left: Any, right: Any) -> bool | None:
    """An ordering comparison: numbers with numbers, strings with strings, else null; mixed
    pairs (which raise in the interpreter) fall back."""
    kinds = type(left), type(right)
    if kinds[0] in (int, float) and kinds[1] in (int, float) or kinds == (str, str):
        return op(left, right)
    if not (_is_comparable(left) and _is_comparable(right)):
        return None
    raise Fallback


def _contains(subject: Any, search: Any, checked: bool = False) -> bool:
    """``contains()`` where the interpreter would charge at most CONTAINS_ITEMS + 1 steps
    and measure nothing past a scalar; ``checked`` when ``subject``'s items are known to be
    scalars."""
    if type(subject) is str and type(search) is str:
        return search in subject
    if (
        type(subject) is list
        and type(search) in _SCALARS
        and (type(search) is not str or len(search) + 2 <= MAX_VALUE_SIZE)
        and len(subject) <= CONTAINS_ITEMS
        and (checked or all(type(item) in _SCALARS for item in subject))
    ):
        return search in subject
    raise Fallback


def _sequence(fns: list[Compiled]) -> Compiled:
    """Each closure applied to the result of the one before (subexpression, index, pipe)."""
    if len(fns) == 2:
        first, second = fns

        def pair(value: Any) -> Any:
            return second(first(value))

        return pair

    def chain(value: Any) -> Any:
        for fn in fns:
            value = fn(value)
        return value

    return chain


def _keys(keys: tuple[str, ...]) -> Compiled:
    """``a.b.c``: each key looked up in turn; null once a value is not an object."""

    def lookup(value: Any) -> Any:
        for key in keys:
            if type(value) is dict:
                value = value.get(key)
            elif value is None or type(value) in _WITHOUT_GET:
                return None
            else:
                value = _get(value, key)
        return value

    return lookup


def _field(node: dict[str, Any]) -> _Part:
    key = node["value"]

    def field(value: Any) -> Any:
        if type(value) is dict:
            return value.get(key)
        if value is None or type(value) in _WITHOUT_GET:
            return None
        return _get(value, key)

    return _Part(field, 1)


def _chain(node: dict[str, Any]) -> _Part:
    children = node["children"]
    if all(child["type"] == "field" for child in children):
        return _Part(_keys(tuple(child["value"] for child in children)), 1 + len(children))
    parts = [_build(child) for child in children]
    return _Part(_sequence([p.fn for p in parts]), 1 + sum(p.steps for p in parts))


def _current(node: dict[str, Any]) -> _Part:
    return _Part(lambda value: value, 1)


def _literal(node: dict[str, Any]) -> _Part:
    literal = node["value"]
    return _Part(lambda value: literal, 1, literal)


def _index(node: dict[str, Any]) -> _Part:
    position = node["value"]

    def index(value: Any) -> Any:
        if not isinstance(value, list):
            return None
        try:
            return value[position]
        except IndexError:
            return None

    return _Part(index, 1)


def _comparator(node: dict[str, Any]) -> _Part:
    left, right = (_build(child) for child in node["children"])
    steps = 1 + left.steps + right.steps
    lfn, rfn, literal = left.fn, right.fn, right.literal
    if node["value"] == "eq":
        if type(literal) in _SCALARS:
            kind = type(literal)

            def equals_literal(value: Any) -> bool:
                found = lfn(value)
                if type(found) is kind:
                    return found == literal  # type: ignore[no-any-return]
                return _equal(found, literal)

            return _Part(equals_literal, steps)
        return _Part(lambda value: _equal(lfn(value), rfn(value)), steps)
    if node["value"] == "ne":
        return _Part(lambda value: not _equal(lfn(value), rfn(value)), steps)
    op = _ORDERINGS[node["value"]]
    if type(literal) in (int, float):

        def order_literal(value: Any) -> Any:
            found = lfn(value)
            if type(found) is int or type(found) is float:
                return op(found, literal)
            return _ordered(op, found, literal)

        return _Part(order_literal, steps)

    def order(value: Any) -> Any:
        return _ordered(op, lfn(value), rfn(value))

    return _Part(order, steps)


def _and(node: dict[str, Any]) -> _Part:
    left, right = (_build(child) for child in node["children"])
    lfn, rfn = left.fn, right.fn

    def both(value: Any) -> Any:
        found = lfn(value)
        if found is True or not _is_false(found):
            return rfn(value)
        return found

    return _Part(both, 1 + left.steps + right.steps)


def _or(node: dict[str, Any]) -> _Part:
    left, right = (_build(child) for child in node["children"])
    lfn, rfn = left.fn, right.fn

    def either(value: Any) -> Any:
        found = lfn(value)
        if found is not True and _is_false(found):
            return rfn(value)
        return found

    return _Part(either, 1 + left.steps + right.steps)


def _not(node: dict[str, Any]) -> _Part:
    child = _build(node["children"][0])
    fn = child.fn

    def negate(value: Any) -> bool:
        found = fn(value)
        kind = type(found)
        if kind is int or kind is float:
            return False  # !0 is false as well: 0 is not false in JMESPath
        if kind is bool or kind is str or kind is list or kind is dict or found is None:
            return not found
        if _is_actual_number(found) and found == 0:
            return False
        return not found

    return _Part(negate, 1 + child.steps)


def _multi_select_list(node: dict[str, Any]) -> _Part:
    parts = [_build(child) for child in node["children"]]
    fns = [p.fn for p in parts]

    def collect(value: Any) -> Any:
        if value is None:
            return None
        return [fn(value) for fn in fns]

    return _Part(collect, 1 + sum(p.steps for p in parts))


def _filter_projection(node: dict[str, Any]) -> _Part:
    base, project, condition = (_build(child) for child in node["children"])
    longest = FILTER_STEPS // (project.steps + condition.steps)
    bfn, pfn, cfn = base.fn, project.fn, condition.fn

    def select(value: Any) -> Any:
        items = bfn(value)
        if not isinstance(items, list):
            return None
        if len(items) > longest:
            raise Fallback
        collected = []
        for item in items:
            if not _is_false(cfn(item)):
                current = pfn(item)
                if current is not None:
                    collected.append(current)
        return collected

    return _Part(select, 1 + base.steps + FILTER_STEPS)


def _function(node: dict[str, Any]) -> _Part:
    name = node["value"]
    parts = [_build(child) for child in node["children"]]
    steps = 1 + sum(p.steps for p in parts)
    fns = [p.fn for p in parts]
    if name == "not_null" and fns:

        def not_null(value: Any) -> Any:
            found = [fn(value) for fn in fns]
            return next((item for item in found if item is not None), None)

        return _Part(not_null, steps)
    if name == "contains" and len(fns) == 2:
        return _compile_contains(node["children"][0], parts, steps)
    if name in ("starts_with", "ends_with") and len(fns) == 2:
        sfn, afn = fns
        method = str.startswith if name == "starts_with" else str.endswith

        def affix(value: Any) -> bool:
            subject, part = sfn(value), afn(value)
            if type(subject) is str and type(part) is str:
                return method(subject, part)
            raise Fallback

        return _Part(affix, steps)
    if len(fns) != 1 or name not in _UNARY:
        raise _NotCompiled(name)
    fn, check = fns[0], _UNARY[name]
    return _Part(lambda value: check(fn(value)), steps)


def _compile_contains(subject: dict[str, Any], parts: list[_Part], steps: int) -> _Part:
    sfn, vfn = (p.fn for p in parts)
    steps += 1 + CONTAINS_ITEMS
    items = subject["children"] if subject["type"] == "multi_select_list" else []
    if items and all(i["type"] == "literal" and type(i["value"]) in _SCALARS for i in items):
        # contains(['a', 'b'], x): the list built once (null where the current value is).
        constant = [i["value"] for i in items]
        if len(constant) <= CONTAINS_ITEMS:

            def within(value: Any) -> bool:
                return _contains(constant if value is not None else None, vfn(value), True)

            return _Part(within, steps)

    def contains(value: Any) -> bool:
        return _contains(sfn(value), vfn(value))

    return _Part(contains, steps)


def _length(arg: Any) -> int:
    kind = type(arg)
    if kind is str or kind is list or kind is dict:
        return len(arg)
    raise Fallback


def _abs(arg: Any) -> Any:
    if type(arg) is int or type(arg) is float:
        return abs(arg)
    raise Fallback


def _number(arg: Any) -> Any:
    kind = type(arg)
    if kind is int or kind is float:
        return arg
    if kind is str:
        return _to_number(None, arg)
    if kind is bool or kind is list or kind is dict or arg is None:
        return None
    raise Fallback


_UNARY: dict[str, Callable[[Any], Any]] = {"length": _length, "abs": _abs, "to_number": _number}
_BUILDERS: dict[str, Callable[[dict[str, Any]], _Part]] = {
    "field": _field,
    "subexpression": _chain,
    "index_expression": _chain,
    "pipe": _chain,
    "current": _current,
    "identity": _current,
    "literal": _literal,
    "index": _index,
    "comparator": _comparator,
    "and_expression": _and,
    "or_expression": _or,
    "not_expression": _not,
    "multi_select_list": _multi_select_list,
    "filter_projection": _filter_projection,
    "function_expression": _function,
}


def _build(node: dict[str, Any]) -> _Part:
    builder = _BUILDERS.get(node["type"])
    if builder is None:
        raise _NotCompiled(node["type"])
    return builder(node)


def _depth(node: dict[str, Any]) -> int:
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        children = current.get("children", [])
        stack.extend((child, level + 1) for child in children if isinstance(child, dict))
    return deepest


def compile_tree(node: dict[str, Any]) -> Compiled | None:
    """The closure for a parsed expression, or None when part of it is outside the compiled
    subset, it is nested past COMPILED_DEPTH, or the interpreter could go past MAX_STEPS."""
    if _depth(node) > COMPILED_DEPTH:
        return None
    try:
        part = _build(node)
    except _NotCompiled:
        return None
    return part.fn if part.steps <= MAX_STEPS else None
