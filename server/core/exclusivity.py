"""Exclusive groups: prove that at most one workflow matches each combination of factor values."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jmespath import exceptions as jexc

from server.core.conditions import truthy
from server.core.expressions import ExpressionError, compile_expression
from server.core.models.deal import STATUSES
from server.core.models.lead import STAGES

MAX_COMBINATIONS = 250_000
SHOWN = 5
# Fields whose values the product fixes, usable as factors without a team domain.
BUILTIN_DOMAINS: dict[str, list[Any]] = {
    "deal.status": list(STATUSES),
    "lead.stage": list(STAGES),
    "outreach.type": [1, 2, 3, 4, 5],
}


# The other parts of a condition's context: no domain enumerates them, so a condition that
# reads them cannot be decided from the record's factor values alone.
CONTEXT_ROOTS = ("previous", "changed", "event", "team", "payload")


def _paths(expression: str) -> set[tuple[str, ...]]:
    """The context paths an expression reads (``("record", "stage")``, ``("previous", "stage")``)."""
    found: set[tuple[str, ...]] = set()
    # A path may go on through an index or a projection (record.custom.tags[0],
    # record.lines[*].amount): the field names before it are still a path the condition reads.
    through = ("index_expression", "projection")

    def chain(node: Mapping[str, Any]) -> tuple[list[str], bool]:
        """The field names a path starts with, and whether the path is only field names."""
        if node.get("type") == "field":
            return [node["value"]], True
        if node.get("type") in through:
            return chain(node["children"][0])[0], False
        if node.get("type") == "subexpression":
            names: list[str] = []
            for child in node["children"]:
                part, whole = chain(child)
                names += part
                if not whole:
                    return names, False
            return names, True
        return [], False

    def walk(node: Any, relative: bool = False) -> None:
        if not isinstance(node, dict):
            return
        if node.get("type") == "current" and not relative:
            # `@` at the top is the whole context document: anything may be read through it.
            found.add(("@",))
            return
        if node.get("type") in ("field", "subexpression", *through):
            names = chain(node)[0]
            if names and names[0] in ("record", *CONTEXT_ROOTS):
                found.add(tuple(names))
                return
        children = node.get("children", [])
        # Past the first child of a projection or filter, `@` and fields are relative to the
        # items being projected, not to the context document.
        scoped = node.get("type") in ("projection", "filter_projection", "value_projection")
        for index, child in enumerate(children):
            walk(child, relative or (scoped and index > 0))

    walk(compile_expression(expression).parsed)
    return found


def referenced_fields(expression: str) -> set[str]:
    """The ``record.…`` paths an expression reads (``stage``, ``custom.proposal_type``)."""
    return {".".join(p[1:]) for p in _paths(expression) if p[0] == "record" and len(p) > 1}


def context_reads(expression: str) -> set[str]:
    """What an expression reads besides named record fields: other parts of the context
    (``previous.stage``, ``changed``), the whole record (``record``) or the whole document (``@``)."""
    return {
        ".".join(p) for p in _paths(expression) if p[0] in (*CONTEXT_ROOTS, "@") or p == ("record",)
    }


@dataclass
class GroupReport:
    """What the validator found for one group."""

    group: str
    entity: str | None
    workflows: list[str]
    factors: list[str] = field(default_factory=list)
    combinations: int = 0
    checked: int = 0
    """Combinations actually checked: closed deal statuses are skipped."""
    overlaps: list[dict[str, Any]] = field(default_factory=list)
    overlap_count: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    gap_count: int = 0
    unprovable: list[dict[str, str]] = field(default_factory=list)
    exhaustive: bool = False
    errors: list[str] = field(default_factory=list)
    table: dict[tuple[Any, ...], str] | None = None
    """Factor values → the one workflow matching them, when the group is proven exclusive."""

    @property
    def ok(self) -> bool:
        """No overlap, nothing unprovable, no error; and no gap when the group is exhaustive."""
        return not (self.overlap_count or self.errors or self.unprovable or (self.exhaustive and self.gap_count))

    def summary(self) -> str:
        parts = []
        if self.errors:
            parts += self.errors
        if self.overlap_count:
            shown = "; ".join(_describe(o["combination"]) + " → " + ", ".join(o["workflows"]) for o in self.overlaps)
            parts.append(f"{self.overlap_count} overlap(s); first {len(self.overlaps)}: {shown}")
        if self.gap_count:
            kind = "gap(s)" if self.exhaustive else "gap(s) (warning)"
            shown = "; ".join(_describe(g) for g in self.gaps)
            parts.append(f"{self.gap_count} {kind}; first {len(self.gaps)}: {shown}")
        fields: dict[str, list[str]] = {}
        for item in self.unprovable:
            fields.setdefault(item["field"], []).append(item["workflow"])
        for name, users in fields.items():
            if name in ("record", "@"):
                why = "is read as a whole, not field by field"
            elif name.startswith("record."):
                why = "has no picklist domain"
            else:
                why = "is outside the record"
            parts.append(f"cannot prove: {name} {why} (read by {', '.join(users)})")
        if not parts:
            factors = ", ".join(self.factors) or "no factor"
            if self.checked != self.combinations:
                parts.append(f"exclusive over the {self.checked} open-deal combination(s) of {factors} "
                             "(closed statuses have fixed probabilities)")
            else:
                parts.append(f"exclusive over {self.combinations} combination(s) of {factors}")
        return f"group {self.group}: " + " | ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "entity": self.entity,
            "workflows": self.workflows,
            "factors": self.factors,
            "combinations": self.combinations,
            "checked": self.checked,
            "ok": self.ok,
            "exhaustive": self.exhaustive,
            "overlap_count": self.overlap_count,
            "overlaps": self.overlaps,
            "gap_count": self.gap_count,
            "gaps": self.gaps,
            "unprovable": self.unprovable,
            "errors": self.errors,
            "summary": self.summary(),
        }


def _describe(combination: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} = {v!r}" for k, v in combination.items()) or "(any record)"


def record_for(entity: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """A record document carrying ``values`` at their paths (``deal.custom.x`` → custom.x)."""
    record: dict[str, Any] = {"custom": {}}
    for path, value in values.items():
        target = record
        parts = path.split(".")[1:]
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return record


def check_group(
    group: str,
    documents: Sequence[Mapping[str, Any]],
    domains: Mapping[str, Sequence[Any]],
) -> GroupReport:
    """Enumerate the factor combinations the group's conditions read and report overlaps,
    gaps and fields that cannot be enumerated."""
    keys = [str(d.get("id")) for d in documents]
    entities = {d.get("entity") for d in documents}
    entity = next(iter(entities)) if len(entities) == 1 else None
    report = GroupReport(group=group, entity=entity, workflows=keys,
                         exhaustive=any(d.get("exhaustive") for d in documents))
    if entity is None:
        report.errors.append("the workflows of an exclusive group must watch one entity")
        return report
    known = all_domains(domains)
    conditions: list[tuple[str, str | None]] = []
    factors: set[str] = set()
    for doc in documents:
        condition = doc.get("condition") or None
        conditions.append((str(doc.get("id")), condition))
        if not condition:
            continue
        try:
            fields = referenced_fields(condition)
            others = context_reads(condition)
        except ExpressionError as exc:
            report.errors.append(f"{doc.get('id')}: condition does not compile: {exc.message}")
            continue
        for name in sorted(others):
            report.unprovable.append({"workflow": str(doc.get("id")), "field": name})
        for name in sorted(fields):
            path = f"{entity}.{name}"
            if path in known:
                factors.add(path)
            else:
                report.unprovable.append({"workflow": str(doc.get("id")), "field": f"record.{name}"})
    if report.errors:
        return report
    report.factors = sorted(factors)
    spaces = [known[f] for f in report.factors]
    total = 1
    for space in spaces:
        total *= len(space)
    report.combinations = total
    if total > MAX_COMBINATIONS:
        report.errors.append(f"{total} combinations is more than the {MAX_COMBINATIONS} the validator enumerates")
        return report
    table: dict[tuple[Any, ...], str] = {}
    try:
        found = list(combinations(entity, report.factors, known, conditions))
    except jexc.JMESPathError as exc:
        report.errors.append(f"a condition fails on the factor values: {exc}")
        return report
    for values, combination, matched in found:
        report.checked += 1
        if len(matched) > 1:
            report.overlap_count += 1
            if len(report.overlaps) < SHOWN:
                report.overlaps.append({"combination": combination, "workflows": matched})
        elif not matched:
            if report.unprovable:
                continue  # with fields the validator cannot enumerate, a non-match proves nothing
            report.gap_count += 1
            if len(report.gaps) < SHOWN:
                report.gaps.append(combination)
        else:
            table[values] = matched[0]
    if not report.overlap_count and not report.unprovable:
        report.table = table
    return report


def combinations(
    entity: str,
    factors: Sequence[str],
    domains: Mapping[str, Sequence[Any]],
    conditions: Sequence[tuple[str, str | None]],
) -> Iterator[tuple[tuple[Any, ...], dict[str, Any], list[str]]]:
    """Every combination of the factors' values with the workflows whose condition it matches.

    Closed deals are skipped: their probability is fixed, so no workflow needs to cover them.
    """
    compiled = [(key, compile_expression(c) if c else None) for key, c in conditions]
    for values in itertools.product(*(domains[f] for f in factors)):
        combination = dict(zip(factors, values, strict=True))
        if entity == "deal" and combination.get("deal.status", "open") != "open":
            continue
        document = {"record": record_for(entity, combination), "previous": None, "changed": [],
                    "event": {}, "team": {}, "payload": None}
        matched = [key for key, expr in compiled if expr is None or truthy(expr.search(document))]
        yield values, combination, matched


def all_domains(domains: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """The team's domains with the built-in ones beneath them."""
    return {**BUILTIN_DOMAINS, **{k: list(v) for k, v in domains.items()}}


def exclusive_groups(documents: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The documents of each exclusive group, by group name."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for doc in documents:
        if doc.get("group") and doc.get("exclusive"):
            groups.setdefault(str(doc["group"]), []).append(doc)
    return groups
