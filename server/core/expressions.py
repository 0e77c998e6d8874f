"""JMESPath expressions: compiled once, checked at save time, evaluated under a work budget."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jmespath
from jmespath import exceptions as jexc
from jmespath import functions as jfunctions
from jmespath.parser import ParsedResult
from jmespath.visitor import Options, TreeInterpreter, _equals

from server.core.compiled import Fallback, compile_tree
from server.core.limits import MAX_LENGTH, MAX_STEPS, MAX_VALUE_SIZE

KNOWN_FUNCTIONS = frozenset(
    name.removeprefix("_func_") for name in dir(jfunctions.Functions) if name.startswith("_func_")
)


class ExpressionError(ValueError):
    """Raised when a JMESPath expression does not compile; ``position`` is 0-based or None."""

    def __init__(self, expression: str, message: str, position: int | None = None) -> None:
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where}")
        self.expression = expression
        self.message = f"{message}{where}"
        self.position = position


class LimitError(ExpressionError):
    """Raised when an evaluation goes past MAX_STEPS or MAX_VALUE_SIZE; says which."""


def _functions(node: Any) -> list[str]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "function_expression":
            found.append(node["value"])
        for child in node.get("children", []):
            found.extend(_functions(child))
    return found


def _field_of_negation(node: Any) -> bool:
    """Whether the tree reads a field of a ``!`` (``!record.owner_id``), which is always null."""
    stack = [node]
    while stack:
        item = stack.pop()
        if not isinstance(item, dict):
            continue
        children = item.get("children") or []
        if item.get("type") == "subexpression" and children and children[0].get("type") == "not_expression":
            return True
        stack.extend(children)
    return False


class _Budget:
    """The work left to one evaluation."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.steps = 0

    def charge(self, units: int) -> None:
        self.steps += units
        if self.steps > MAX_STEPS:
            raise LimitError(
                self.expression,
                f"evaluation stopped: more than {MAX_STEPS} steps (the limit of one "
                "evaluation; simplify the expression or the data it walks)",
            )

    def measure(self, value: Any, limit: int = MAX_VALUE_SIZE, *, charge: bool = True) -> int:
        """About the JSON size of ``value`` in characters, each node walked charged as a step
        (unless ``charge`` is false); :class:`LimitError` past ``limit``, before the walk gets
        any longer. Every node adds to the size, so the walk is bounded either way."""
        size, stack = 0, [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                size += len(item) + 2
            elif isinstance(item, dict):
                size += 2 + 2 * len(item)
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list):
                size += 2 + len(item)
                stack.extend(item)
            else:
                size += 4
            if charge:
                self.charge(1)
            if size > limit:
                self.too_large(limit)
        return size

    def too_large(self, limit: int = MAX_VALUE_SIZE) -> None:
        raise LimitError(
            self.expression,
            f"evaluation stopped: a value of over {limit} characters (the limit of one "
            "evaluation)",
        )


class _BoundedFunctions(jfunctions.Functions):
    """The standard functions, refusing to build strings past MAX_VALUE_SIZE or to compare
    values past the budget."""

    def __init__(self, budget: _Budget) -> None:
        self.budget = budget

    @jfunctions.signature({"types": []})
    def _func_to_string(self, arg: Any) -> str:
        if not isinstance(arg, str):
            self.budget.measure(arg, charge=False)
        return super()._func_to_string(arg)  # type: ignore[no-any-return]

    @jfunctions.signature({"types": ["string"]}, {"types": ["array-string"]})
    def _func_join(self, separator: str, array: list[str]) -> str:
        self.budget.charge(len(array))
        size = sum(map(len, array)) + len(separator) * max(len(array) - 1, 0)
        if size > MAX_VALUE_SIZE:
            self.budget.too_large()
        return separator.join(array)

    @jfunctions.signature({"types": ["array", "string"]}, {"types": []})
    def _func_contains(self, subject: Any, search: Any) -> bool:
        if isinstance(subject, list):
            self.budget.measure(search)
            self.budget.charge(len(subject))
            for item in subject:
                if isinstance(item, list | dict):
                    self.budget.measure(item)
        return search in subject


class _BoundedInterpreter(TreeInterpreter):
    """The standard interpreter, charging every node visited and every item flattened."""

    def __init__(self, budget: _Budget) -> None:
        # Not TreeInterpreter.__init__: one of these is made per evaluation, so keep it cheap.
        self._dict_cls = dict
        self._options = _OPTIONS
        self._functions = _BoundedFunctions(budget)
        self.budget = budget

    def visit(self, node: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        budget = self.budget
        budget.steps += 1
        if budget.steps > MAX_STEPS:
            budget.charge(0)  # raises, naming the limit
        return _DISPATCH.get(node["type"], TreeInterpreter.default_visit)(
            self, node, *args, **kwargs
        )

    def visit_flatten(self, node: dict[str, Any], value: Any) -> Any:
        base = self.visit(node["children"][0], value)
        if not isinstance(base, list):
            return None
        self.budget.charge(sum(len(e) if isinstance(e, list) else 1 for e in base))
        merged: list[Any] = []
        for element in base:
            if isinstance(element, list):
                merged.extend(element)
            else:
                merged.append(element)
        return merged

    def visit_comparator(self, node: dict[str, Any], value: Any) -> Any:
        if node["value"] not in self._EQUALITY_OPS:
            return super().visit_comparator(node, value)
        left = self.visit(node["children"][0], value)
        right = self.visit(node["children"][1], value)
        # Equality of nested values walks them: shared sub-values would make it exponential.
        for side in (left, right):
            if isinstance(side, list | dict):
                self.budget.measure(side)
        equal = _equals(left, right)
        return equal if node["value"] == "eq" else not equal


_OPTIONS = Options()
_DISPATCH = {
    name.removeprefix("visit_"): getattr(_BoundedInterpreter, name)
    for name in dir(_BoundedInterpreter)
    if name.startswith("visit_")
}


class Expression(ParsedResult):
    """A compiled expression whose :meth:`search` runs under MAX_STEPS and MAX_VALUE_SIZE.

    ``compiled`` is its closure when the whole tree is in the compiled subset (else None);
    :meth:`search` uses it, and the interpreter otherwise or when the closure falls back."""

    def __init__(self, expression: str, parsed: dict[str, Any]) -> None:
        super().__init__(expression, parsed)
        self.compiled = compile_tree(parsed)

    def search(self, value: Any, options: Any = None) -> Any:
        """Evaluate on ``value``; :class:`LimitError` when it goes past a limit."""
        try:
            if self.compiled is None:
                result = self._interpret(value)
            else:
                try:
                    result = self.compiled(value)
                except Fallback:
                    result = self._interpret(value)
        except RecursionError:
            raise LimitError(self.expression, "evaluation stopped: nested too deeply") from None
        if isinstance(result, list | dict):
            # What the caller will store or serialise: refused if it would expand past the cap.
            _Budget(self.expression).measure(result, charge=False)
        return result

    def _interpret(self, value: Any) -> Any:
        return _BoundedInterpreter(_Budget(self.expression)).visit(self.parsed, value)

    def visit(self, node: dict[str, Any], value: Any) -> Any:
        """Evaluate one node of this expression's tree on ``value``, under a fresh budget
        (used to show what each side of a comparison saw)."""
        return _BoundedInterpreter(_Budget(self.expression)).visit(node, value)


@lru_cache(maxsize=8192)
def compile_expression(expression: str) -> Expression:
    """The compiled expression, cached; :class:`ExpressionError` when it cannot be used."""
    if len(expression) > MAX_LENGTH:
        raise ExpressionError(expression, f"expression is longer than {MAX_LENGTH} characters")
    try:
        parsed = Expression(expression, jmespath.compile(expression).parsed)
    except jexc.ParseError as exc:
        token = f" near {exc.token_value!r}" if exc.token_value else ""
        reason = (
            "incomplete expression"
            if isinstance(exc, jexc.IncompleteExpressionError)
            else "syntax error"
        )
        raise ExpressionError(expression, f"{reason}{token}", exc.lex_position) from exc
    except jexc.JMESPathError as exc:
        raise ExpressionError(expression, str(exc)) from exc
    except RecursionError as exc:
        raise ExpressionError(expression, "expression is nested too deeply") from exc
    for name in _functions(parsed.parsed):
        if name not in KNOWN_FUNCTIONS:
            position = expression.find(name + "(")
            raise ExpressionError(
                expression, f"unknown function {name}()", position if position >= 0 else None
            )
    return parsed


def check_expression(expression: str) -> Expression:
    """:func:`compile_expression` for an expression being saved, also refusing what compiles
    but cannot mean what it says: a field of a negation (``!record.owner_id`` is
    ``(!record).owner_id``, a field of true or false, always null)."""
    compiled = compile_expression(expression)
    if _field_of_negation(compiled.parsed):
        bang = re.search(r"!(?!=)", expression)
        raise ExpressionError(
            expression,
            "'!' applies to what follows it up to the first '.', so `!record.x` reads as "
            "`(!record).x`, a field of true or false: always null. Write `!(record.x)`",
            bang.start() if bang else None,
        )
    return compiled


def search(expression: str, document: Any) -> Any:
    """Evaluate ``expression`` on ``document`` under the limits."""
    return compile_expression(expression).search(document)
