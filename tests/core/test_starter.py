"""The shipped starter set: valid workflows whose probability ladder is exclusive and exhaustive."""

from __future__ import annotations

import itertools

from server.core.conditions import truthy
from server.core.definitions import validate
from server.core.exclusivity import check_group, exclusive_groups, record_for
from server.core.expressions import compile_expression
from server.core.plugins import load_registry
from server.core.starter import STARTER_DOMAINS, shipped_documents


def test_every_shipped_workflow_is_valid() -> None:
    documents = shipped_documents()
    assert documents, "workflows/ ships no workflow"
    registry = load_registry()
    for document in documents:
        assert validate(document, registry) == [], document["id"]
    assert len({d["id"] for d in documents}) == len(documents)


def test_the_probability_ladder_is_exclusive_and_exhaustive() -> None:
    # Given the shipped ladder and the domains it is written against
    groups = exclusive_groups(shipped_documents())
    ladder = groups["deal_probability"]
    # When the validator enumerates the combinations
    report = check_group("deal_probability", ladder, STARTER_DOMAINS)
    # Then every open combination is covered exactly once, and nothing is left unproven
    assert report.exhaustive
    assert report.ok, report.summary()
    assert (report.overlap_count, report.gap_count, report.unprovable) == (0, 0, [])
    open_combinations = 1
    for values in STARTER_DOMAINS.values():
        open_combinations *= len(values)
    assert len(report.table or {}) == open_combinations


def test_the_ladder_assigns_one_probability_per_open_combination_independently_checked() -> None:
    # Evaluate every condition directly (not through the validator) on every combination.
    ladder = exclusive_groups(shipped_documents())["deal_probability"]
    seen = {}
    paths = list(STARTER_DOMAINS)
    for values in itertools.product(*STARTER_DOMAINS.values()):
        record = {**record_for("deal", dict(zip(paths, values, strict=True))), "status": "open"}
        hits = [d for d in ladder if truthy(compile_expression(d["condition"]).search({"record": record}))]
        assert len(hits) == 1, (values, [d["id"] for d in hits])
        seen[values] = hits[0]["actions"][0]["set"]["probability"]
        # A closed deal matches no ladder step (its probability is fixed by the deal rules).
        closed = {**record, "status": "won"}
        assert not any(truthy(compile_expression(d["condition"]).search({"record": closed})) for d in ladder)
    # Higher stages never lower the probability, all else equal.
    stages = STARTER_DOMAINS["deal.stage"]
    for kind, relationship in itertools.product(*list(STARTER_DOMAINS.values())[1:]):
        ladder_values = [seen[(stage, kind, relationship)] for stage in stages]
        assert ladder_values == sorted(ladder_values)
