"""JMESPath expressions: compiled once, checked at save time with the position of an error."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jmespath
from jmespath import exceptions as jexc
from jmespath import functions as jfunctions
from jmespath.parser import ParsedResult

MAX_LENGTH = 2000
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


def _functions(node: Any) -> list[str]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "function_expression":
            found.append(node["value"])
        for child in node.get("children", []):
            found.extend(_functions(child))
    return found


@lru_cache(maxsize=8192)
def compile_expression(expression: str) -> ParsedResult:
    """The compiled expression, cached; :class:`ExpressionError` when it cannot be used."""
    if len(expression) > MAX_LENGTH:
        raise ExpressionError(expression, f"expression is longer than {MAX_LENGTH} characters")
    try:
        parsed = jmespath.compile(expression)
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


def search(expression: str, document: Any) -> Any:
    """Evaluate ``expression`` on ``document``."""
    return compile_expression(expression).search(document)
