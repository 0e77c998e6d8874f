"""Workflow conditions: evaluate a JMESPath condition and explain a non-match."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jmespath import exceptions as jexc
from jmespath.lexer import Lexer

from server.core.expressions import ExpressionError, compile_expression


@dataclass(frozen=True)
class Outcome:
    """What a condition gave: matched or not, the part that was false and the values it saw,
    or the error that stopped it (an error is never reported as a plain non-match)."""

    matched: bool
    failed_part: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"matched": self.matched}
        if self.failed_part is not None:
            out["failed"] = self.failed_part
            out["values"] = self.values
        if self.error is not None:
            out["error"] = self.error
        return out


def truthy(value: Any) -> bool:
    """JMESPath truth: false, null, empty string, list and object are false."""
    return not (value is None or value is False or value == "" or value == [] or value == {})


@lru_cache(maxsize=4096)
def conjuncts(expression: str) -> tuple[str, ...]:
    """The top-level ``&&`` parts of ``expression``, as text."""
    parts, depth, start = [], 0, 0
    for token in Lexer().tokenize(expression):
        kind = token["type"]
        if kind in ("lparen", "lbracket", "lbrace", "filter"):
            depth += 1
        elif kind in ("rparen", "rbracket", "rbrace"):
            depth -= 1
        elif kind == "and" and depth == 0:
            parts.append(expression[start : token["start"]].strip())
            start = token["start"] + len(token["value"])
    parts.append(expression[start:].strip())
    return tuple(p for p in parts if p)


def _seen(part: str, document: Any) -> dict[str, Any]:
    """The values the sides of a comparison saw (``record.stage`` → ``"proposal"``)."""
    compiled = compile_expression(part)
    node = compiled.parsed
    if node.get("type") != "comparator":
        return {part: compiled.search(document)}
    values = {}
    for child, side in zip(node["children"], _sides(part), strict=False):
        if child.get("type") != "literal":
            values[side] = compiled.visit(child, document)
    return values


def _sides(part: str) -> list[str]:
    for token in Lexer().tokenize(part):
        if token["type"] in ("eq", "ne", "lt", "lte", "gt", "gte"):
            end = token["start"] + len(token["value"])
            return [part[: token["start"]].strip(), part[end:].strip()]
    return [part]


MATCHED = Outcome(matched=True)
"""The outcome of every condition that holds (shared: outcomes are never changed)."""


def evaluate(expression: str | None, document: Any, *, explain: bool = True) -> Outcome:
    """Evaluate a condition. No condition always matches."""
    if not expression:
        return MATCHED
    try:
        if truthy(compile_expression(expression).search(document)):
            return MATCHED
        if not explain:
            return Outcome(matched=False)
        for part in conjuncts(expression):
            if not truthy(compile_expression(part).search(document)):
                return Outcome(matched=False, failed_part=part, values=_seen(part, document))
        return Outcome(matched=False, failed_part=expression, values={})
    except (ExpressionError, jexc.JMESPathError) as exc:
        return Outcome(matched=False, error=f"condition: {exc}")
