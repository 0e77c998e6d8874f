"""The exclusivity validator on hand-made groups over hand-made domains: overlaps (two- and
three-way), gaps, fields it cannot enumerate, readable counts, the fields a condition reads,
and the lookup tables compiled from proven groups."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from server.core.exclusivity import check_group, context_reads, referenced_fields
from server.core.matching import compile_groups, compile_workflow
from server.core.plugins import load_registry

STAGES = ["qualification", "proposal", "negotiation"]
KINDS = ["firm", "budgetary"]
DOMAINS: dict[str, list[Any]] = {"deal.stage": STAGES, "deal.custom.kind": KINDS}


def member(key: str, condition: str | None, **fields: Any) -> dict[str, Any]:
    """A workflow of the exclusive group ``g``."""
    return {
        "id": key,
        "name": key,
        "entity": "deal",
        "trigger": {"type": "record_saved"},
        "group": "g",
        "exclusive": True,
        "condition": condition,
        "actions": [{"type": "field_update", "set": {"probability": 10}}],
        **fields,
    }


def combination(kind: str, stage: str) -> dict[str, str]:
    """A combination as the report names it: every factor, in factor (name) order."""
    return {"deal.custom.kind": kind, "deal.stage": stage}


# --- exclusive and exhaustive ----------------------------------------------------------------


def test_a_group_partitioning_the_space_is_ok_with_one_table_entry_per_combination() -> None:
    # Given one workflow per stage
    group = [member(f"at-{s}", f"record.stage == '{s}'") for s in STAGES]
    # When
    report = check_group("g", group, DOMAINS)
    # Then
    assert report.ok, report.summary()
    assert report.factors == ["deal.stage"]
    assert report.combinations == 3
    assert (report.overlap_count, report.gap_count, report.unprovable, report.errors) == (
        0,
        0,
        [],
        [],
    )
    assert report.table == {(s,): f"at-{s}" for s in STAGES}
    assert len(report.table) == report.combinations
    assert report.summary() == "group g: exclusive over 3 combination(s) of deal.stage"


def test_the_table_of_a_two_factor_group_is_keyed_by_the_factor_values_in_factor_order() -> None:
    # Given a firm/budgetary split at each stage
    group = [
        member(f"{s}-{k}", f"record.stage == '{s}' && record.custom.kind == '{k}'")
        for s, k in itertools.product(STAGES, KINDS)
    ]
    # When
    report = check_group("g", group, DOMAINS)
    # Then
    assert report.ok, report.summary()
    assert report.factors == ["deal.custom.kind", "deal.stage"]
    assert report.combinations == len(report.table or {}) == 6
    assert report.table == {(k, s): f"{s}-{k}" for s, k in itertools.product(STAGES, KINDS)}


# --- overlaps ---------------------------------------------------------------------------------


def test_a_two_way_overlap_names_the_combination_and_both_workflows() -> None:
    # Given "negotiation" and "firm negotiation" both claim firm deals in negotiation
    group = [
        member("early", "record.stage != 'negotiation'"),
        member("negotiation", "record.stage == 'negotiation'"),
        member("firm-negotiation", "record.stage == 'negotiation' && record.custom.kind == 'firm'"),
    ]
    # When
    report = check_group("g", group, DOMAINS)
    # Then
    assert not report.ok
    assert report.overlap_count == 1
    assert report.overlaps == [
        {
            "combination": combination("firm", "negotiation"),
            "workflows": ["negotiation", "firm-negotiation"],
        }
    ]
    assert report.table is None
    assert (
        "1 overlap(s); first 1: deal.custom.kind = 'firm', deal.stage = 'negotiation' → "
        "negotiation, firm-negotiation" in report.summary()
    )


def test_a_three_way_overlap_names_all_three_workflows() -> None:
    # Given three workflows that all claim firm deals in proposal, and one for the rest
    group = [
        member("proposal", "record.stage == 'proposal'"),
        member("firm", "record.custom.kind == 'firm' && record.stage != 'qualification'"),
        member("firm-proposal", "record.custom.kind == 'firm' && record.stage == 'proposal'"),
        member(
            "rest",
            "record.stage == 'qualification' || (record.stage == 'negotiation' && record.custom.kind == 'budgetary')",
        ),
    ]
    # When
    report = check_group("g", group, DOMAINS)
    # Then: the three-way overlap, and the two-way one "firm" has with nobody else is absent
    overlaps = {tuple(o["combination"].values()): o["workflows"] for o in report.overlaps}
    assert overlaps == {
        ("firm", "proposal"): ["proposal", "firm", "firm-proposal"],
    }
    assert report.overlap_count == 1
    assert report.gap_count == 0
    assert "→ proposal, firm, firm-proposal" in report.summary()


def test_contains_over_a_list_is_enumerated_value_by_value() -> None:
    # Given a workflow for two stages through contains(), and one for the remaining stage
    group = [
        member("late", "contains(['proposal', 'negotiation'], record.stage)"),
        member("early", "record.stage == 'qualification'"),
    ]
    # When
    report = check_group("g", group, DOMAINS)
    # Then
    assert report.ok, report.summary()
    assert report.table == {
        ("qualification",): "early",
        ("proposal",): "late",
        ("negotiation",): "late",
    }


def test_contains_overlapping_another_condition_is_reported_per_combination() -> None:
    # Given contains() claims firm deals in proposal, which a plain comparison claims as well
    group = [
        member(
            "late",
            "contains(['proposal', 'negotiation'], record.stage) && record.custom.kind == 'firm'",
        ),
        member("proposal", "record.stage == 'proposal'"),
    ]
    # When
    report = check_group("g", group, DOMAINS)
    # Then only firm deals in proposal are claimed twice
    assert [o["combination"] for o in report.overlaps] == [combination("firm", "proposal")]
    assert report.overlaps[0]["workflows"] == ["late", "proposal"]


def test_an_or_condition_is_enumerated_on_both_branches() -> None:
    # Given a workflow claiming "proposal OR firm" and one claiming negotiation
    group = [
        member("proposal-or-firm", "record.stage == 'proposal' || record.custom.kind == 'firm'"),
        member("negotiation", "record.stage == 'negotiation'"),
    ]
    # When
    report = check_group("g", group, DOMAINS)
    # Then: firm deals in negotiation are claimed by both; budgetary qualification by none
    assert report.overlaps == [
        {
            "combination": combination("firm", "negotiation"),
            "workflows": ["proposal-or-firm", "negotiation"],
        }
    ]
    assert report.gaps == [combination("budgetary", "qualification")]
    assert (report.overlap_count, report.gap_count) == (1, 1)


def test_an_or_condition_that_splits_the_space_cleanly_is_exclusive() -> None:
    group = [
        member("a", "record.stage == 'qualification' || record.custom.kind == 'budgetary'"),
        member("b", "record.stage != 'qualification' && record.custom.kind == 'firm'"),
    ]
    report = check_group("g", group, DOMAINS)
    assert report.ok, report.summary()
    expected = {
        (k, s): "a" if s == "qualification" or k == "budgetary" else "b"
        for k, s in itertools.product(KINDS, STAGES)
    }
    assert report.table == expected


# --- gaps -------------------------------------------------------------------------------------


def test_gaps_are_a_warning_when_no_member_declares_the_group_exhaustive() -> None:
    # Given nothing covers negotiation
    group = [
        member("q", "record.stage == 'qualification'"),
        member("p", "record.stage == 'proposal'"),
    ]
    # When
    report = check_group("g", group, DOMAINS)
    # Then
    assert report.ok
    assert not report.exhaustive
    assert report.gap_count == 1
    assert report.gaps == [{"deal.stage": "negotiation"}]
    assert "1 gap(s) (warning); first 1: deal.stage = 'negotiation'" in report.summary()
    assert report.table == {("qualification",): "q", ("proposal",): "p"}


def test_gaps_are_an_error_when_one_member_declares_the_group_exhaustive() -> None:
    # Given the same group, with one member declaring "exhaustive": true
    group = [
        member("q", "record.stage == 'qualification'", exhaustive=True),
        member("p", "record.stage == 'proposal'"),
    ]
    # When
    report = check_group("g", group, DOMAINS)
    # Then
    assert report.exhaustive
    assert not report.ok
    assert report.as_dict()["ok"] is False
    assert "1 gap(s); first 1: deal.stage = 'negotiation'" in report.summary()
    assert "(warning)" not in report.summary()


def test_closed_deal_statuses_are_not_gaps_when_status_is_a_factor() -> None:
    # Given an exhaustive group that only covers open deals
    group = [
        member(f"open-{s}", f"record.status == 'open' && record.stage == '{s}'", exhaustive=True)
        for s in STAGES
    ]
    # When
    report = check_group("g", group, DOMAINS)
    # Then: status is a factor with its four values, but only open combinations are checked
    assert report.factors == ["deal.stage", "deal.status"]
    assert report.combinations == 3 * 4
    assert report.checked == 3
    assert "exclusive over the 3 open-deal combination(s)" in report.summary()
    assert report.ok, report.summary()
    assert report.gap_count == 0
    assert report.table == {(s, "open"): f"open-{s}" for s in STAGES}


def test_a_won_deal_is_not_a_gap_but_an_uncovered_open_one_is() -> None:
    group = [
        member(
            "open-q", "record.status == 'open' && record.stage == 'qualification'", exhaustive=True
        )
    ]
    report = check_group("g", group, {"deal.stage": STAGES})
    assert report.gap_count == 2
    assert report.gaps == [
        {"deal.stage": "proposal", "deal.status": "open"},
        {"deal.stage": "negotiation", "deal.status": "open"},
    ]


# --- what cannot be proven ------------------------------------------------------------------


def test_a_field_without_a_picklist_domain_is_reported_unprovable_and_gets_no_table() -> None:
    # Given a ladder step that reads the amount, which has no domain
    group = [
        member("big", "record.stage == 'proposal' && record.amount > `10000`"),
        member("small", "record.stage == 'proposal' && record.amount <= `10000`"),
        member("other", "record.stage != 'proposal'"),
    ]
    # When
    report = check_group("g", group, DOMAINS)
    # Then
    assert report.unprovable == [
        {"workflow": "big", "field": "record.amount"},
        {"workflow": "small", "field": "record.amount"},
    ]
    assert not report.ok
    assert report.table is None
    assert report.factors == ["deal.stage"]
    assert (
        "cannot prove: record.amount has no picklist domain (read by big, small)"
        in report.summary()
    )


def test_a_custom_field_without_a_domain_is_unprovable_even_next_to_declared_ones() -> None:
    group = [member("a", "record.custom.kind == 'firm' && record.custom.region == 'emea'")]
    report = check_group("g", group, DOMAINS)
    assert report.unprovable == [{"workflow": "a", "field": "record.custom.region"}]
    assert report.factors == ["deal.custom.kind"]
    assert report.table is None


def test_a_field_read_through_an_index_is_not_silently_ignored() -> None:
    # Given a condition reading the first tag of a custom list, which no domain enumerates
    group = [
        member("a", "record.custom.tags[0] == 'vip'"),
        member("b", "record.stage == 'proposal'"),
    ]
    # When
    report = check_group("g", group, DOMAINS)
    # Then
    assert {"workflow": "a", "field": "record.custom.tags"} in report.unprovable
    assert not report.ok
    assert report.table is None


def test_a_condition_reading_outside_the_record_is_unprovable_and_gets_no_table() -> None:
    # Given a step that applies when a deal enters negotiation (it reads ``previous``)
    group = [
        member("entered", "record.stage == 'negotiation' && previous.stage != 'negotiation'"),
        member("other", "record.stage != 'negotiation' && !contains(changed, 'probability')"),
    ]
    # When
    report = check_group("g", group, DOMAINS)
    # Then: the enumeration cannot see those reads, so it proves nothing about them
    assert report.unprovable == [
        {"workflow": "entered", "field": "previous.stage"},
        {"workflow": "other", "field": "changed"},
    ]
    assert report.table is None
    assert not report.ok
    assert (
        "cannot prove: previous.stage is outside the record (read by entered)" in report.summary()
    )


def test_workflows_watching_different_entities_are_an_error() -> None:
    # Given a group mixing a deal workflow and a lead workflow
    group = [
        member("d", "record.stage == 'proposal'"),
        member("l", "record.stage == 'mql'", entity="lead"),
    ]
    # When
    report = check_group("g", group, DOMAINS)
    # Then
    assert report.entity is None
    assert report.errors == ["the workflows of an exclusive group must watch one entity"]
    assert not report.ok
    assert report.table is None
    assert "must watch one entity" in report.summary()


def test_a_condition_that_does_not_compile_is_an_error_naming_the_workflow() -> None:
    report = check_group("g", [member("broken", "record.stage == ")], DOMAINS)
    assert not report.ok
    assert len(report.errors) == 1
    assert report.errors[0].startswith("broken: condition does not compile")


# --- large reports stay readable ------------------------------------------------------------


def test_many_overlaps_are_counted_in_full_and_the_first_five_shown() -> None:
    # Given two workflows that both claim every combination of 3 stages × 2 kinds × 2 regions
    domains = {**DOMAINS, "deal.custom.region": ["emea", "apac"]}
    group = [
        member("every-stage", "record.stage != 'none' && record.custom.region != 'none'"),
        member("every-kind", "record.custom.kind != 'none'"),
    ]
    # When
    report = check_group("g", group, domains)
    # Then
    assert report.combinations == 12
    assert report.overlap_count == 12
    assert len(report.overlaps) == 5
    assert all(o["workflows"] == ["every-stage", "every-kind"] for o in report.overlaps)
    assert len({tuple(o["combination"].values()) for o in report.overlaps}) == 5
    assert "12 overlap(s); first 5: " in report.summary()
    assert report.as_dict()["overlap_count"] == 12
    assert len(report.as_dict()["overlaps"]) == 5


def test_many_gaps_are_counted_in_full_and_the_first_five_shown() -> None:
    domains = {**DOMAINS, "deal.custom.region": ["emea", "apac"]}
    group = [
        member(
            "one",
            "record.stage == 'proposal' && record.custom.kind == 'firm' && record.custom.region == 'emea'",
        )
    ]
    report = check_group("g", group, domains)
    assert report.gap_count == 11
    assert len(report.gaps) == 5
    assert "11 gap(s) (warning); first 5: " in report.summary()


# --- the fields a condition reads -----------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "fields"),
    [
        ("record.stage == 'proposal'", {"stage"}),
        ("record.custom.kind == 'firm' && record.status == 'open'", {"custom.kind", "status"}),
        ("contains(['a', 'b'], record.custom.kind)", {"custom.kind"}),
        ("!(record.stage == 'a') || not_null(record.custom.x, 'y') == 'y'", {"stage", "custom.x"}),
        ("length(record.items[?price > `10`]) > `0`", {"items"}),
        ("record.custom.nested.deep == 'x'", {"custom.nested.deep"}),
        ("[record.stage, record.custom.kind][0] == 'a'", {"stage", "custom.kind"}),
        ("previous.stage == 'a' && changed[0] == 'stage' && team.name == 'x'", set()),
        ("record.custom.tags[0] == 'vip'", {"custom.tags"}),
        ("length(record.lines[*].amount) > `1`", {"lines"}),
        ("record.items[?kind == 'x'] && record.stage == 'a'", {"items", "stage"}),
    ],
)
def test_referenced_fields_lists_the_record_paths_a_condition_reads(
    expression: str, fields: set[str]
) -> None:
    assert referenced_fields(expression) == fields


@pytest.mark.parametrize(
    ("expression", "reads"),
    [
        ("record.stage == 'a'", set()),
        ("previous.stage != record.stage", {"previous.stage"}),
        ("contains(changed, 'stage') && event.op == 'created'", {"changed", "event.op"}),
        (
            "team.settings.region == 'emea' || payload.kind == 'x'",
            {"team.settings.region", "payload.kind"},
        ),
        ("previous == null", {"previous"}),
    ],
)
def test_context_reads_lists_what_a_condition_reads_outside_the_record(
    expression: str, reads: set[str]
) -> None:
    assert context_reads(expression) == reads


# --- compiled groups ------------------------------------------------------------------------


def test_compile_groups_builds_a_table_only_for_proven_groups() -> None:
    # Given a proven group, an overlapping one, an unprovable one and a non-exclusive workflow
    registry = load_registry()
    documents = [member(f"clean-{s}", f"record.stage == '{s}'", group="clean") for s in STAGES] + [
        member("o1", "record.stage == 'proposal'", group="overlapping"),
        member("o2", "record.custom.kind == 'firm'", group="overlapping"),
        member("u1", "record.amount > `5`", group="unprovable"),
        member("free", "record.stage == 'proposal'", group="free", exclusive=False),
    ]
    compiled = [compile_workflow(d, 1, registry) for d in documents]
    # When
    groups = compile_groups(compiled, DOMAINS)
    # Then
    assert set(groups) == {"clean"}
    table = groups["clean"]
    assert table.factors == (("stage",),)
    assert table.table == {(s,): f"clean-{s}" for s in STAGES}


def test_a_compiled_table_looks_records_up_and_cannot_tell_outside_the_domains() -> None:
    # Given a compiled two-factor group
    registry = load_registry()
    documents = [
        member(f"{s}-{k}", f"record.stage == '{s}' && record.custom.kind == '{k}'")
        for s, k in itertools.product(STAGES, KINDS)
    ]
    group = compile_groups([compile_workflow(d, 1, registry) for d in documents], DOMAINS)["g"]
    # When / Then
    assert group.factors == (("custom", "kind"), ("stage",))
    assert group.lookup({"stage": "proposal", "custom": {"kind": "firm"}}) == "proposal-firm"
    assert group.lookup({"stage": "closing", "custom": {"kind": "firm"}}) is None
    assert group.lookup({"stage": "proposal", "custom": {}}) is None
    assert group.lookup(None) is None


def test_a_gap_still_compiles_and_its_combinations_are_left_to_the_conditions() -> None:
    registry = load_registry()
    documents = [
        member("q", "record.stage == 'qualification'"),
        member("p", "record.stage == 'proposal'"),
    ]
    group = compile_groups([compile_workflow(d, 1, registry) for d in documents], DOMAINS)["g"]
    assert group.lookup({"stage": "qualification", "custom": {}}) == "q"
    assert group.lookup({"stage": "negotiation", "custom": {}}) is None


def test_reads_of_the_whole_record_or_document_cannot_be_proven() -> None:
    # Given two steps that differ only through a read of the whole document (@)
    group = [
        {"id": "vip", "entity": "deal", "condition": "record.stage == 's1' && @.record.custom.vip == 'yes'"},
        {"id": "rest", "entity": "deal", "condition": "record.stage == 's1' && @.record.custom.vip != 'yes'"},
    ]
    # When the validator checks them
    report = check_group("g", group, {"deal.stage": ["s1", "s2"]})
    # Then it says what it cannot prove and compiles no table the engine would trust
    assert {u["field"] for u in report.unprovable} >= {"@"}
    assert report.table is None and not report.ok
    assert "@ is read as a whole" in report.summary()
    # Relative reads inside a filter are not whole-document reads
    assert context_reads("record.tags[?@ == 'x'] && record.stage == 's1'") == set()


def test_a_condition_failing_on_the_factor_values_is_an_error_not_a_crash() -> None:
    group = [{"id": "bad", "entity": "deal", "condition": "record.stage == 's1' && abs(record.stage) > `10`"}]
    report = check_group("g", group, {"deal.stage": ["s1", "s2"]})
    assert report.errors and "abs()" in report.errors[0]
    assert not report.ok and report.table is None
