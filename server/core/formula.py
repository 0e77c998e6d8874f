"""Workflow formulas: bounded arithmetic over record fields, parsed and run without eval."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "Formula", "FormulaError", "compile_formula"]

MAX_LENGTH = 1000
"""Longest expression accepted, in characters."""

MAX_DEPTH = 50
"""Deepest AST nesting accepted; deeper formulas are refused before they are evaluated."""

MAX_EXPONENT = 100
"""Largest absolute exponent of ``**``: keeps ``9**9**9`` from eating the worker."""

MAX_POWER_BASE = 1e12
"""Largest absolute base of ``**``."""

MAX_ROUND_DIGITS = 15
"""Largest absolute ``ndigits`` of ``round``: a huge negative one would build a huge integer."""

_LARGEST = 10**308  # past this an int no longer fits a float, so it is not a usable field value

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_ARITY = {"round": (1, 2), "min": (1, None), "max": (1, None), "abs": (1, 1)}

# The message for each refused node; others get "<NodeType> expressions are not allowed".
_REFUSED = {
    ast.Attribute: "attribute access is not allowed (only custom.<field>)",
    ast.Subscript: "subscripts are not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.IfExp: "conditional expressions are not allowed",
    ast.Compare: "comparisons are not allowed",
    ast.BoolOp: "boolean operators are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.JoinedStr: "strings are not allowed",
    ast.Starred: "starred arguments are not allowed",
    ast.NamedExpr: "assignment expressions are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.Set: "sets are not allowed",
}


class FormulaError(Exception):
    """Raised when a formula cannot be compiled or evaluated; the message says why and where.

    ``column`` is the 0-based character offset in the expression (``ast`` ``col_offset``),
    or ``None`` when the problem is not at one place (a missing field, a bad result).
    """

    def __init__(self, message: str, column: int | None = None) -> None:
        text = f"formula: {message}" + (f" (column {column})" if column is not None else "")
        super().__init__(text)
        self.message = text
        self.reason = message
        self.column = column


@dataclass(frozen=True)
class Formula:
    """A checked formula; evaluate it against as many records as you like.

    ``names`` are the fields it reads, custom fields as ``custom.<name>``.
    """

    expression: str
    names: frozenset[str]
    tree: ast.expr = field(repr=False, compare=False)

    def evaluate(self, record: Mapping[str, Any]) -> Number:
        """Compute the formula over ``record`` (custom fields come from ``record["custom"]``)."""
        return _finite(_Evaluator(record).run(self.tree))


def compile_formula(expression: str) -> Formula:
    """Parse and check ``expression`` once, when a workflow is saved or first run.

    Raises :class:`FormulaError` for anything beyond numbers, field names, ``custom.<name>``,
    ``+ - * / // % **``, unary ``+ -``, parentheses and ``round``/``min``/``max``/``abs``.
    """
    if not isinstance(expression, str):
        raise FormulaError("the expression must be a string")
    if len(expression) > MAX_LENGTH:
        raise FormulaError(f"the expression is longer than {MAX_LENGTH} characters")
    if not expression.strip():
        raise FormulaError("the expression is empty")
    # Eval mode refuses leading blanks as an indent; strip them and shift columns back.
    source = expression.lstrip()
    shift = len(expression) - len(source)
    try:
        tree = ast.parse(source, mode="eval").body
        names: set[str] = set()
        _check(tree, names, depth=1)
    except FormulaError as exc:
        if not shift or exc.column is None:
            raise
        raise FormulaError(exc.reason, exc.column + shift) from None
    except SyntaxError as exc:
        if "too many nested" in str(exc.msg):
            raise FormulaError("the expression is nested too deeply") from None
        column = exc.offset - 1 + shift if exc.offset else None
        raise FormulaError(f"syntax error: {exc.msg}", column) from None
    except (RecursionError, MemoryError):
        # CPython's parser gives up on very deep nesting with these rather than SyntaxError.
        raise FormulaError("the expression is nested too deeply") from None
    return Formula(expression, frozenset(names), tree)


def _check(node: ast.AST, names: set[str], depth: int) -> None:
    """Walk the tree, refusing any node outside the language and any nesting past MAX_DEPTH."""
    column = getattr(node, "col_offset", None)
    if depth > MAX_DEPTH:
        raise FormulaError(f"the expression is nested too deeply (over {MAX_DEPTH} levels)", column)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str | bytes):
            raise FormulaError("strings are not allowed", column)
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise FormulaError(f"the constant {node.value!r} is not allowed; use numbers", column)
        return
    if isinstance(node, ast.Name):
        if node.id == "custom":
            raise FormulaError(
                "'custom' must be followed by a field name, as in custom.discount", column
            )
        names.add(node.id)
        return
    if isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id == "custom":
            names.add(f"custom.{node.attr}")
            return
        raise FormulaError(_REFUSED[ast.Attribute], column)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, names, depth + 1)
        _check(node.right, names, depth + 1)
        return
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check(node.operand, names, depth + 1)
        return
    if isinstance(node, ast.Call):
        _check_call(node, names, depth)
        return
    if isinstance(node, ast.BinOp | ast.UnaryOp):
        raise FormulaError(f"the operator {type(node.op).__name__} is not allowed", column)
    raise FormulaError(
        _REFUSED.get(type(node), f"{type(node).__name__} expressions are not allowed"), column
    )


def _check_call(node: ast.Call, names: set[str], depth: int) -> None:
    """Allow only round/min/max/abs, called by name with positional arguments."""
    if not isinstance(node.func, ast.Name) or node.func.id not in _ARITY:
        raise FormulaError("calls are not allowed except round, min, max and abs", node.col_offset)
    name = node.func.id
    if node.keywords:
        raise FormulaError(f"keyword arguments are not allowed in {name}()", node.col_offset)
    low, high = _ARITY[name]
    count = len(node.args)
    if count < low or (high is not None and count > high):
        wanted = f"{low}" if low == high else f"{low} or {high}" if high else f"at least {low}"
        raise FormulaError(f"{name}() takes {wanted} argument(s), got {count}", node.col_offset)
    for arg in node.args:
        _check(arg, names, depth + 1)


class _Evaluator:
    """Interprets a checked tree over one record; every node type here was allowed by _check."""

    def __init__(self, record: Mapping[str, Any]) -> None:
        self.record = record

    def run(self, node: ast.expr) -> Number:
        if isinstance(node, ast.Constant):
            return node.value  # type: ignore[no-any-return]
        if isinstance(node, ast.Name):
            return self._field(node.id, self.record.get(node.id))
        if isinstance(node, ast.Attribute):
            custom = self.record.get("custom")
            value = custom.get(node.attr) if isinstance(custom, Mapping) else None
            return self._field(f"custom.{node.attr}", value)
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self.run(node.operand))  # type: ignore[no-any-return]
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        return self._call(node.func.id, [self.run(arg) for arg in node.args], node.col_offset)

    @staticmethod
    def _field(name: str, value: Any) -> Number:
        if value is None:
            raise FormulaError(f"field '{name}' is missing/null")
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise FormulaError(f"field '{name}' is not a number (got {type(value).__name__})")
        # Money columns arrive as Decimal; formulas compute in float like the rest.
        return _finite(float(value) if isinstance(value, Decimal) else value)

    def _binary(self, node: ast.BinOp) -> Number:
        left, right = self.run(node.left), self.run(node.right)
        if isinstance(node.op, ast.Pow):
            if abs(right) > MAX_EXPONENT:
                raise FormulaError(
                    f"the exponent of ** must be between -{MAX_EXPONENT} and "
                    f"{MAX_EXPONENT}, got {right}",
                    node.col_offset,
                )
            if abs(left) > MAX_POWER_BASE:
                raise FormulaError(
                    f"the base of ** must be between -{MAX_POWER_BASE:g} and "
                    f"{MAX_POWER_BASE:g}, got {left}",
                    node.col_offset,
                )
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise FormulaError("division by zero") from None
        except OverflowError:
            raise FormulaError("the result is too large", node.col_offset) from None
        return _finite(result, node.col_offset)

    @staticmethod
    def _call(name: str, args: list[Number], column: int) -> Number:
        if name == "abs":
            return abs(args[0])
        if name == "min":
            return min(args)
        if name == "max":
            return max(args)
        if len(args) == 1:
            return round(args[0])
        digits = args[1]
        if not isinstance(digits, int) or abs(digits) > MAX_ROUND_DIGITS:
            raise FormulaError(
                f"round() digits must be a whole number from -{MAX_ROUND_DIGITS} to "
                f"{MAX_ROUND_DIGITS}",
                column,
            )
        return round(args[0], digits)


def _finite(value: Any, column: int | None = None) -> Number:
    """Refuse complex, infinite, NaN or float-overflowing results: fields get real numbers."""
    if isinstance(value, complex):
        raise FormulaError("the result is not a real number", column)
    if isinstance(value, float) and not math.isfinite(value):
        raise FormulaError("the result is not a finite number", column)
    if isinstance(value, int) and abs(value) > _LARGEST:
        raise FormulaError("the result is too large", column)
    return value  # type: ignore[no-any-return]
