"""Exclusive groups as a whole: the probability matrix, the impact preview of a draft, recompute."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import msgspec
from sqlalchemy import select

from server.core.action import ActionContext, ActionError
from server.core.conditions import evaluate
from server.core.definitions import validate
from server.core.engine import team_document
from server.core.errors import DealflowError, InvalidWorkflow
from server.core.exclusivity import all_domains, check_group, combinations
from server.core.matching import CompiledGroup, CompiledWorkflow, compile_workflow
from server.core.models import Deal
from server.core.scope import TeamScope
from server.core.services import audit, deals
from server.core.services.common import domains
from server.core.services.workflows import group_documents, max_actions

BATCH = 1000
SHOWN_CONFLICTS = 20


class MatrixRow(msgspec.Struct):
    """One combination of factor values, the workflow(s) it matches and what they set."""

    values: dict[str, Any]
    workflows: list[str]
    sets: dict[str, Any]
    state: str
    """``ok``, ``overlap`` or ``gap``."""


class MatrixOut(msgspec.Struct):
    group: str
    factors: list[str]
    rows: list[MatrixRow]
    summary: str


def literal_sets(document: Mapping[str, Any]) -> dict[str, Any]:
    """What a workflow's field_update and formula actions set, as shown in the matrix."""
    out: dict[str, Any] = {}
    for action in document.get("actions", []):
        if action.get("type") == "field_update":
            out.update(action.get("set") or {})
            out.update({k: f"={v}" for k, v in (action.get("set_from") or {}).items()})
        elif action.get("type") == "formula":
            out[action["field"]] = f"={action['expression']}"
    return out


def matrix(
    scope: TeamScope, group: str, documents: list[dict[str, Any]] | None = None
) -> MatrixOut:
    """The table of factor combinations → assigned values and workflow, for a group."""
    documents = documents if documents is not None else group_documents(scope, group)
    team_domains = domains(scope)
    report = check_group(group, documents, team_domains)
    by_id = {str(d["id"]): d for d in documents}
    rows: list[MatrixRow] = []
    if report.entity and not report.errors:
        conditions = [(str(d["id"]), d.get("condition") or None) for d in documents]
        for _, combination, matched in combinations(
            report.entity, report.factors, all_domains(team_domains), conditions
        ):
            sets = literal_sets(by_id[matched[0]]) if len(matched) == 1 else {}
            state = "ok" if len(matched) == 1 else ("gap" if not matched else "overlap")
            shown = {k: v for k, v in combination.items() if k != "deal.status"}
            rows.append(MatrixRow(values=shown, workflows=matched, sets=sets, state=state))
    factors = [f for f in report.factors if f != "deal.status"]
    return MatrixOut(group=group, factors=factors, rows=rows, summary=report.summary())


# --- evaluating a group over stored deals --------------------------------------------------


@dataclass
class GroupRunner:
    """Decides, for one deal document, which workflow of a group applies and what it changes."""

    scope: TeamScope
    workflows: list[CompiledWorkflow]
    table: Mapping[tuple[Any, ...], str] | None
    factors: list[tuple[str, ...]]

    @classmethod
    def build(cls, scope: TeamScope, group: str, documents: list[dict[str, Any]]) -> GroupRunner:
        registry = scope.engine.registry
        report = check_group(group, documents, domains(scope))
        compiled = [compile_workflow(d, 0, registry) for d in documents]
        factors = [tuple(f.split(".")[1:]) for f in report.factors]
        return cls(scope, compiled, report.table, factors)

    def assigned(self, document: dict[str, Any]) -> list[CompiledWorkflow]:
        if self.table is not None:
            key = CompiledGroup(tuple(self.factors), self.table).lookup(document["record"])
            if key is not None:
                return [wf for wf in self.workflows if wf.key == key]
        return [
            wf for wf in self.workflows if evaluate(wf.condition, document, explain=False).matched
        ]

    def changes(
        self, document: dict[str, Any], hits: list[CompiledWorkflow] | None = None
    ) -> dict[str, Any] | None:
        """The record changes the group would make, or None when no single workflow applies
        (``hits``: the workflows :meth:`assigned` already found for the document)."""
        hits = self.assigned(document) if hits is None else hits
        if len(hits) != 1:
            return None
        wf = hits[0]
        out: dict[str, Any] = {}
        for index, action, config in wf.actions:
            if action.kind != "record":
                continue
            context = ActionContext(
                team_id=self.scope.team_id,
                workflow_id=wf.key,
                workflow_version=wf.version,
                action_index=index,
                document=document,
                settings=self.scope.engine.settings,
            )
            try:
                out.update(action.execute(config, context))
            except (ActionError, DealflowError):
                return None
        return out


@dataclass
class Conflicts:
    """Deals on which two or more workflows of the group match, as the engine's runtime
    conflict guard would find them: nothing of the group is applied to them."""

    count: int = 0
    ids: list[int] = field(default_factory=list)
    """The first :data:`SHOWN_CONFLICTS` of them, by id."""

    def add(self, deal_id: int) -> None:
        self.count += 1
        if len(self.ids) < SHOWN_CONFLICTS:
            self.ids.append(deal_id)


def open_deals(scope: TeamScope) -> Iterator[list[Deal]]:
    """The team's open deals in batches, by id."""
    last = 0
    while True:
        rows = scope.session.scalars(
            scope.select(Deal)
            .where(Deal.status == "open", Deal.id > last)
            .order_by(Deal.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        yield list(rows)
        last = rows[-1].id


def _documents(scope: TeamScope, rows: list[Deal]) -> Iterator[tuple[Deal, dict[str, Any]]]:
    team = team_document(scope.team)
    for row in rows:
        record = deals.RECORD.document(row)
        yield (
            row,
            {
                "record": record,
                "previous": None,
                "changed": [],
                "event": {"op": "recompute"},
                "team": team,
                "payload": None,
            },
        )


# --- impact preview -------------------------------------------------------------------------


class DealChange(msgspec.Struct):
    id: int
    title: str
    changes: dict[str, list[Any]]
    """field → [old, new]"""


class MonthForecast(msgspec.Struct):
    month: str | None
    currency: str
    weighted_before: float
    weighted_after: float


class PreviewOut(msgspec.Struct):
    group: str
    report: dict[str, Any]
    deals_scanned: int
    deals_changed: int
    conflicts: int
    """Open deals two or more workflows of the group would match: left as they are."""
    conflict_ids: list[int]
    """The first 20 of them, by id."""
    changes: list[DealChange]
    forecast: list[MonthForecast]


def _weighted(amount: Any, probability: Any) -> Decimal:
    if probability is None:
        return Decimal(0)
    # Rounded as the deal rules round the stored weighted amount, so "before" matches the forecast.
    return (Decimal(str(amount)) * Decimal(str(probability)) / 100).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )


def preview(
    scope: TeamScope, group: str, drafts: list[dict[str, Any]], remove: list[str] = ()
) -> PreviewOut:
    """What the group would change on every open deal if ``drafts`` replaced its workflows of
    the same id (and ``remove`` were deleted) — nothing is written."""
    registry = scope.engine.registry
    problems = [
        (f"workflows[{i}]" + p.path.removeprefix("$"), p.message)
        for i, d in enumerate(drafts)
        for p in validate(d, registry, max_actions=max_actions(scope))
    ]
    if problems:
        raise InvalidWorkflow(problems)
    draft_ids = {d["id"] for d in drafts}
    documents = [
        d
        for d in group_documents(scope, group)
        if d["id"] not in draft_ids and d["id"] not in remove
    ]
    documents += drafts
    runner = GroupRunner.build(scope, group, documents)
    report = check_group(group, documents, domains(scope))
    changed: list[DealChange] = []
    conflicts = Conflicts()
    months: dict[tuple[str | None, str], list[Decimal]] = {}
    scanned = 0
    for batch in open_deals(scope):
        for row, document in _documents(scope, batch):
            scanned += 1
            record = document["record"]
            hits = runner.assigned(document)
            if len(hits) > 1:
                conflicts.add(row.id)
            new = runner.changes(document, hits) or {}
            diff = {
                k: [record.get(k), v]
                for k, v in new.items()
                if not k.startswith("custom.") and record.get(k) != v
            }
            diff.update(
                {
                    k: [(record.get("custom") or {}).get(k[7:]), v]
                    for k, v in new.items()
                    if k.startswith("custom.") and (record.get("custom") or {}).get(k[7:]) != v
                }
            )
            if diff:
                changed.append(DealChange(id=row.id, title=row.title, changes=diff))
            month = row.expected_close_date.strftime("%Y-%m") if row.expected_close_date else None
            sums = months.setdefault((month, row.currency), [Decimal(0), Decimal(0)])
            sums[0] += _weighted(row.amount, record.get("probability"))
            sums[1] += _weighted(row.amount, new.get("probability", record.get("probability")))
    forecast = [
        MonthForecast(month=m, currency=c, weighted_before=float(b), weighted_after=float(a))
        for (m, c), (b, a) in sorted(months.items(), key=lambda kv: (kv[0][0] is None, kv[0]))
    ]
    return PreviewOut(
        group=group,
        report=report.as_dict(),
        deals_scanned=scanned,
        deals_changed=len(changed),
        conflicts=conflicts.count,
        conflict_ids=conflicts.ids,
        changes=changed[:500],
        forecast=forecast,
    )


# --- recompute ------------------------------------------------------------------------------


class RecomputeOut(msgspec.Struct):
    group: str
    deals_scanned: int
    deals_changed: int
    conflicts: int
    """Open deals two or more workflows of the group match (the engine's runtime conflict):
    nothing of the group is applied to them."""
    conflict_ids: list[int]
    """The first 20 of them, by id."""
    errors: list[str]


def recompute(
    scope: TeamScope, group: str, progress: Callable[[int], None] | None = None
) -> RecomputeOut:
    """Apply the group's current workflows to every open deal, in batches (one commit each).

    The deal rules apply as on any save (weighted amount, domains). Recompute writes the
    values directly: it does not raise events for other workflows.
    """
    documents = group_documents(scope, group)
    runner = GroupRunner.build(scope, group, documents)
    probabilities = _probability_steps(runner)
    if probabilities is not None:
        result = _recompute_probabilities(scope, group, runner, probabilities, progress)
    else:
        result = _recompute_deals(scope, group, runner, progress)
    # Recompute commits batch by batch: the entry is its own last commit, with the outcome.
    audit.record(
        scope,
        "group.recompute",
        group,
        None,
        {
            "deals_scanned": result.deals_scanned,
            "deals_changed": result.deals_changed,
            "conflicts": result.conflicts,
            "errors": len(result.errors),
        },
    )
    scope.session.commit()
    return result


def _recompute_deals(
    scope: TeamScope, group: str, runner: GroupRunner, progress: Callable[[int], None] | None
) -> RecomputeOut:
    """Recompute a group deal by deal, through the deal rules, one commit per batch."""
    scanned = changed = 0
    errors: list[str] = []
    conflicts = Conflicts()
    for batch in open_deals(scope):
        for row, document in _documents(scope, batch):
            scanned += 1
            hits = runner.assigned(document)
            if len(hits) > 1:
                conflicts.add(row.id)
            new = runner.changes(document, hits)
            if not new:
                continue
            try:
                fields = deals.RECORD.apply_changes(scope, row, new)
            except DealflowError as exc:
                errors.append(f"deal {row.id}: {exc.message}")
                continue
            changed += bool(fields)
        scope.session.commit()
        if progress is not None:
            progress(len(batch))
    return RecomputeOut(
        group=group,
        deals_scanned=scanned,
        deals_changed=changed,
        conflicts=conflicts.count,
        conflict_ids=conflicts.ids,
        errors=errors[:100],
    )


def count_open(scope: TeamScope) -> int:
    from sqlalchemy import func

    return (
        scope.session.scalar(
            select(func.count())
            .select_from(Deal)
            .where(Deal.team_id == scope.team_id, Deal.status == "open")
        )
        or 0
    )


# The deal columns a factor can be (team domains: stage, currency; built in: status).
_FACTOR_COLUMNS = {("stage",): Deal.stage, ("status",): Deal.status, ("currency",): Deal.currency}


def _probability_steps(runner: GroupRunner) -> dict[str, int] | None:
    """Workflow → probability, when the group is a proven ladder whose record actions only set a
    literal probability (the common case, which recompute can do in bulk); else None."""
    if runner.table is None or not all(
        path in _FACTOR_COLUMNS or (path[:1] == ("custom",) and len(path) == 2) for path in runner.factors
    ):
        return None
    steps: dict[str, int] = {}
    for wf in runner.workflows:
        sets: dict[str, Any] = {}
        for _, action, config in wf.actions:
            if action.kind != "record":
                continue
            if action.name != "field_update" or config.get("set_from"):
                return None
            sets.update(config.get("set") or {})
        try:
            patch = msgspec.convert(sets, deals.DealPatch, strict=False)
        except msgspec.ValidationError:
            return None
        if set(sets) != {"probability"} or patch.probability is None:
            return None
        steps[wf.key] = int(patch.probability)  # type: ignore[arg-type]
    return steps


def _recompute_probabilities(
    scope: TeamScope,
    group: str,
    runner: GroupRunner,
    steps: dict[str, int],
    progress: Callable[[int], None] | None,
) -> RecomputeOut:
    """Recompute a probability ladder with one bulk UPDATE per batch: read the factor columns,
    look each deal up in the group's table, write probability and weighted amount.

    A deal the table has no entry for (a missing field, a value outside a narrowed domain, a
    combination no workflow covers) is loaded and has the group's conditions evaluated, as
    the engine does on a save; only those deals take that slower path.
    """
    from sqlalchemy import func, update

    from server.core.models import utcnow

    table = runner.table or {}
    scanned = changed = 0
    conflicts = Conflicts()
    last = 0
    while True:
        rows = scope.session.execute(
            select(Deal.id, Deal.amount, Deal.probability, *_FACTOR_COLUMNS.values(), Deal.custom)
            .where(Deal.team_id == scope.team_id, Deal.status == "open", Deal.id > last)
            .order_by(Deal.id)
            .limit(BATCH * 5)
        ).all()
        if not rows:
            break
        last = rows[-1].id
        now = utcnow()
        by_probability: dict[int, list[int]] = {}
        off_table: list[int] = []
        for row in rows:
            values = []
            for path in runner.factors:
                if path in _FACTOR_COLUMNS:
                    values.append(getattr(row, path[0]))
                else:
                    values.append((row.custom or {}).get(path[1]))
            key = table.get(tuple(values))
            if key is None:
                off_table.append(row.id)
                continue
            probability = steps[key]
            if probability != row.probability:
                by_probability.setdefault(probability, []).append(row.id)
        for row_id, probability in _evaluated_steps(scope, runner, steps, off_table, conflicts):
            by_probability.setdefault(probability, []).append(row_id)
        scanned += len(rows)
        # One UPDATE per step: the weighted amount is computed by the database, rounded
        # half away from zero like the deal rules.
        for probability, ids in by_probability.items():
            scope.session.execute(
                update(Deal)
                # A deal closed since it was read keeps its fixed probability.
                .where(Deal.id.in_(ids), Deal.team_id == scope.team_id, Deal.status == "open")
                .values(
                    probability=probability,
                    weighted_amount=func.round(Deal.amount * probability / 100, 2),
                    updated_at=now,
                ),
                execution_options={"synchronize_session": False},
            )
            changed += len(ids)
        scope.session.commit()
        if progress is not None:
            progress(len(rows))
    return RecomputeOut(
        group=group,
        deals_scanned=scanned,
        deals_changed=changed,
        conflicts=conflicts.count,
        conflict_ids=conflicts.ids,
        errors=[],
    )


def _evaluated_steps(
    scope: TeamScope,
    runner: GroupRunner,
    steps: dict[str, int],
    ids: list[int],
    conflicts: Conflicts,
) -> Iterator[tuple[int, int]]:
    """(deal id, new probability) of the deals the table has no entry for, found by evaluating
    the group's conditions on each deal's document; two matches are a conflict, none is no
    change."""
    if not ids:
        return
    rows = scope.session.scalars(scope.select(Deal).where(Deal.id.in_(ids)).order_by(Deal.id))
    for row, document in _documents(scope, list(rows)):
        hits = runner.assigned(document)
        if len(hits) > 1:
            conflicts.add(row.id)
        elif hits and steps[hits[0].key] != row.probability:
            yield row.id, steps[hits[0].key]
