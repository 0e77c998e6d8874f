"""Exclusive groups over HTTP: refused overlapping saves, the group check, re-checks on domain
changes, the runtime conflict guard, closed-deal rules, and the shipped probability ladder's
matrix, impact preview, recompute and compiled table — each checked against values computed
here, independently of the validator."""

from __future__ import annotations

import itertools
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import jmespath
import pytest
from sqlalchemy import Engine, update

from server.core.models import Deal
from server.core.starter import STARTER_DOMAINS, shipped_documents

WORKFLOWS = "/api/v1/workflows"
DEALS = "/api/v1/deals"
LADDER = "deal_probability"
DOMAINS = {
    "deal.stage": ["qualification", "proposal", "negotiation"],
    "deal.custom.kind": ["firm", "budgetary"],
}
CENT = Decimal("0.01")


def member(
    key: str, condition: str, probability: int = 10, group: str = "g", **fields: Any
) -> dict[str, Any]:
    """A probability workflow of an exclusive group."""
    return {
        "id": key,
        "name": key,
        "entity": "deal",
        "trigger": {"type": "record_saved", "on": ["created", "updated"]},
        "group": group,
        "exclusive": True,
        "condition": condition,
        "actions": [{"type": "field_update", "set": {"probability": probability}}],
        **fields,
    }


def save(api: Any, document: dict[str, Any]) -> dict[str, Any]:
    resp = api.post(WORKFLOWS, json=document)
    assert resp.status_code in (200, 201), resp.text
    return resp.json()


def set_domains(api: Any, domains: dict[str, list[str]]) -> dict[str, Any]:
    resp = api.put("/api/v1/team", json={"field_domains": domains})
    assert resp.status_code == 200, resp.text
    return resp.json()


def new_deal(api: Any, **fields: Any) -> dict[str, Any]:
    resp = api.post(DEALS, json={"title": "Initech TPS portal", **fields})
    assert resp.status_code == 201, resp.text
    return resp.json()


def patch_deal(api: Any, deal_id: int, **fields: Any) -> dict[str, Any]:
    resp = api.patch(f"{DEALS}/{deal_id}", json=fields)
    assert resp.status_code == 200, resp.text
    return resp.json()


def read_deal(api: Any, deal_id: int) -> dict[str, Any]:
    resp = api.get(f"{DEALS}/{deal_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def runs_of(api: Any, deal_id: int) -> list[dict[str, Any]]:
    resp = api.get("/api/v1/runs", params={"entity": "deal", "record_id": deal_id})
    assert resp.status_code == 200, resp.text
    return resp.json()["items"]


def assert_problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    return resp.json()


def load_ladder(api: Any) -> None:
    """The shipped ladder, as an admin would load it: its domains, then each workflow."""
    set_domains(api, STARTER_DOMAINS)
    for document in shipped_documents():
        save(api, document)


def ladder_step(
    stage: str, kind: str, relationship: str, status: str = "open"
) -> tuple[str, int] | None:
    """The shipped workflow whose condition matches this deal, and the probability it sets,
    found by evaluating every condition here with jmespath (not through the validator)."""
    record = {
        "status": status,
        "stage": stage,
        "custom": {"proposal_type": kind, "relationship": relationship},
    }
    hits = [
        (d["id"], d["actions"][0]["set"]["probability"])
        for d in shipped_documents()
        if d.get("group") == LADDER and jmespath.search(d["condition"], {"record": record})
    ]
    assert len(hits) <= 1, hits
    return hits[0] if hits else None


def weighted(amount: Any, probability: int | None) -> Decimal:
    """amount × probability / 100 to the cent, half a cent rounded up (the deal rule)."""
    return (Decimal(str(amount)) * (probability or 0) / 100).quantize(CENT, rounding=ROUND_HALF_UP)


# (title, amount, currency, stage, proposal type, relationship, expected close)
LADDER_DEALS = [
    ("Initech portal", 24000, "USD", "qualification", "firm", "high", "2026-03-05"),  # 40
    ("Initech printers", 1500.5, "USD", "discovery", "firm", "medium", "2026-03-20"),  # 40
    ("Globex audit", 9999.99, "USD", "discovery", "budgetary", "high", "2026-04-02"),  # 40
    ("Globex staff", 333.33, "USD", "proposal", "budgetary", "low", "2026-04-30"),  # 40
    ("Umbrella retainer", 12345.67, "EUR", "proposal", "budgetary", "low", "2026-03-11"),  # 40
    ("Umbrella training", 800, "USD", "negotiation", "firm", "high", "2026-03-12"),  # 90
    ("Hooli intro", 5000, "USD", "qualification", "budgetary", "low", "2026-04-15"),  # 10
    ("Hooli no date", 7000, "USD", "proposal", "firm", "medium", None),  # 60
    (
        "Hooli seats",
        333,
        "USD",
        "qualification",
        "firm",
        "high",
        "2026-05-02",
    ),  # 40, a whole amount
]


def make_ladder_deals(api: Any) -> list[dict[str, Any]]:
    """The open deals of :data:`LADDER_DEALS`, plus a won and a lost one in a 40 % combination."""
    made = [
        new_deal(
            api,
            title=title,
            amount=amount,
            currency=currency,
            stage=stage,
            expected_close_date=close,
            custom={"proposal_type": kind, "relationship": relationship},
        )
        for title, amount, currency, stage, kind, relationship, close in LADDER_DEALS
    ]
    for status in ("won", "lost"):
        made.append(
            new_deal(
                api,
                title=f"Vandelay {status}",
                amount=1000,
                status=status,
                stage="qualification",
                expected_close_date="2026-03-01",
                custom={"proposal_type": "firm", "relationship": "high"},
            )
        )
    return made


def step_of(deal: dict[str, Any]) -> tuple[str, int] | None:
    return ladder_step(
        deal["stage"],
        deal["custom"]["proposal_type"],
        deal["custom"]["relationship"],
        deal["status"],
    )


# --- refused saves ----------------------------------------------------------------------------


def test_a_save_that_would_overlap_a_group_member_is_refused_with_the_report(api) -> None:
    # Given a group member claiming every deal in negotiation
    set_domains(api, DOMAINS)
    save(api, member("negotiation", "record.stage == 'negotiation'"))
    # When a second member claims every firm deal
    resp = api.post(WORKFLOWS, json=member("firm", "record.custom.kind == 'firm'"))
    # Then: 409 with the report naming the combination and both workflows
    problem = assert_problem(resp, 409)
    report = problem["report"]
    assert report["ok"] is False
    assert report["overlap_count"] == 1
    assert report["overlaps"][0]["combination"] == {
        "deal.custom.kind": "firm",
        "deal.stage": "negotiation",
    }
    assert sorted(report["overlaps"][0]["workflows"]) == ["firm", "negotiation"]
    assert "1 overlap(s)" in problem["detail"]
    # and nothing is stored
    assert api.get(f"{WORKFLOWS}/firm").status_code == 404


def test_a_save_that_does_not_overlap_is_accepted(api) -> None:
    # Given
    set_domains(api, DOMAINS)
    save(api, member("negotiation", "record.stage == 'negotiation'"))
    # When a second member claims firm deals outside negotiation only
    resp = api.post(
        WORKFLOWS,
        json=member("firm-early", "record.custom.kind == 'firm' && record.stage != 'negotiation'"),
    )
    # Then
    assert resp.status_code == 201, resp.text
    check = api.get("/api/v1/groups/g/check").json()
    assert check["ok"] is True
    assert check["overlap_count"] == 0
    assert check["workflows"] == ["firm-early", "negotiation"]


def test_a_new_version_that_would_overlap_is_refused_and_the_old_one_kept(api) -> None:
    # Given two members that split the stages
    set_domains(api, DOMAINS)
    save(api, member("early", "record.stage != 'negotiation'"))
    save(api, member("late", "record.stage == 'negotiation'"))
    # When "late" is widened to proposal as well
    resp = api.put(
        f"{WORKFLOWS}/late",
        json=member("late", "contains(['proposal', 'negotiation'], record.stage)"),
    )
    # Then
    report = assert_problem(resp, 409)["report"]
    assert report["overlap_count"] == 1
    assert report["overlaps"][0]["combination"] == {"deal.stage": "proposal"}
    assert sorted(report["overlaps"][0]["workflows"]) == ["early", "late"]
    stored = api.get(f"{WORKFLOWS}/late").json()
    assert (stored["version"], stored["document"]["condition"]) == (
        1,
        "record.stage == 'negotiation'",
    )


# --- the group check ------------------------------------------------------------------------


def test_group_check_returns_the_report(api) -> None:
    # Given a group that leaves qualification uncovered
    set_domains(api, DOMAINS)
    save(api, member("late", "record.stage == 'negotiation'"))
    save(api, member("middle", "record.stage == 'proposal'"))
    # When
    resp = api.get("/api/v1/groups/g/check")
    # Then
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["group"] == "g"
    assert report["entity"] == "deal"
    assert report["factors"] == ["deal.stage"]
    assert report["combinations"] == 3
    assert (report["ok"], report["gap_count"], report["gaps"]) == (
        True,
        1,
        [{"deal.stage": "qualification"}],
    )
    assert "gap(s) (warning)" in report["summary"]


def test_group_check_of_an_unknown_group_is_not_found(api) -> None:
    assert_problem(api.get("/api/v1/groups/nope/check"), 404)


def test_group_check_of_another_teams_group_is_not_found(api, client, make_team) -> None:
    # Given team B's exclusive group
    other = make_team("Initech")
    resp = client.post(
        WORKFLOWS,
        json=member("theirs", "record.stage == 'x'", group="theirs"),
        headers=other.headers,
    )
    assert resp.status_code == 201, resp.text
    # When team A asks for it / Then
    assert_problem(api.get("/api/v1/groups/theirs/check"), 404)
    assert_problem(api.get("/api/v1/groups/theirs/matrix"), 404)
    assert api.get("/api/v1/groups/theirs/check", headers=other.headers).status_code == 200


# --- domain changes re-check the groups -----------------------------------------------------


def test_adding_a_stage_to_an_exhaustive_groups_domain_reports_the_gap_it_makes(api) -> None:
    # Given an exhaustive group covering each declared stage
    set_domains(api, DOMAINS)
    for stage in DOMAINS["deal.stage"]:
        save(api, member(f"at-{stage}", f"record.stage == '{stage}'", exhaustive=True))
    # When a stage is added
    team = set_domains(api, {**DOMAINS, "deal.stage": [*DOMAINS["deal.stage"], "closing"]})
    # Then the change is kept, and the group it broke is reported
    assert team["field_domains"]["deal.stage"][-1] == "closing"
    assert [c["group"] for c in team["group_checks"]] == ["g"]
    check = team["group_checks"][0]
    assert (check["ok"], check["gap_count"], check["gaps"]) == (
        False,
        1,
        [{"deal.stage": "closing"}],
    )


def test_dropping_a_factor_domain_reports_the_field_the_group_can_no_longer_prove(api) -> None:
    # Given a group over stage and kind
    set_domains(api, DOMAINS)
    save(api, member("firm", "record.custom.kind == 'firm'"))
    save(api, member("budgetary", "record.custom.kind == 'budgetary'"))
    # When the kind domain is dropped
    team = set_domains(api, {"deal.stage": DOMAINS["deal.stage"]})
    # Then
    assert [c["group"] for c in team["group_checks"]] == ["g"]
    assert {u["field"] for u in team["group_checks"][0]["unprovable"]} == {"record.custom.kind"}


def test_widening_a_domain_onto_an_overlap_reports_it(api) -> None:
    # Given members that overlap only on a value not yet declared
    set_domains(api, {"deal.custom.kind": ["a", "b"]})
    save(api, member("wa", "record.custom.kind == 'a' || record.custom.kind == 'zzz'"))
    save(api, member("wb", "record.custom.kind == 'b' || record.custom.kind == 'zzz'"))
    # When that value is declared
    team = set_domains(api, {"deal.custom.kind": ["a", "b", "zzz"]})
    # Then
    check = team["group_checks"][0]
    assert check["overlaps"] == [
        {"combination": {"deal.custom.kind": "zzz"}, "workflows": ["wa", "wb"]}
    ]


def test_an_unrelated_domain_change_reports_no_group(api) -> None:
    # Given a proven group
    set_domains(api, DOMAINS)
    for stage in DOMAINS["deal.stage"]:
        save(api, member(f"at-{stage}", f"record.stage == '{stage}'", exhaustive=True))
    # When a domain the group does not read is added and another is narrowed
    team = set_domains(
        api,
        {
            "deal.stage": DOMAINS["deal.stage"],
            "deal.custom.kind": ["firm"],
            "deal.custom.region": ["emea", "apac"],
        },
    )
    # Then
    assert team.get("group_checks", []) == []
    assert team["field_domains"]["deal.custom.region"] == ["emea", "apac"]


# --- the runtime guard ------------------------------------------------------------------------


def test_two_members_matching_a_value_outside_the_domains_apply_nothing_and_the_run_is_a_conflict(
    api,
) -> None:
    # The deal API refuses a value outside a declared domain, and a save refuses an overlap
    # inside the domains. The real path to a conflict is a domain that changed: the deal got
    # kind "zzz" while "zzz" was declared, then the domain was narrowed (stored deals keep
    # their values), and the members were saved against the narrowed domain, on which they
    # do not overlap. The next save of that deal finds "zzz" outside the compiled table, so
    # the engine evaluates the conditions and both match.
    # Given
    set_domains(api, {"deal.custom.kind": ["a", "b", "zzz"]})
    deal = new_deal(api, amount=1000, custom={"kind": "zzz"})
    set_domains(api, {"deal.custom.kind": ["a", "b"]})
    save(
        api,
        member("wa", "record.custom.kind == 'a' || record.custom.kind == 'zzz'", probability=10),
    )
    save(
        api,
        member("wb", "record.custom.kind == 'b' || record.custom.kind == 'zzz'", probability=20),
    )
    # When the deal is saved again
    after = patch_deal(api, deal["id"], title="Initech TPS portal, phase 2")
    # Then neither member's action applied
    assert (after["probability"], after["weighted_amount"]) == (None, None)
    run = runs_of(api, deal["id"])[-1]
    assert run["status"] == "conflict"
    assert run["notes"] == [{"conflict": "g", "workflows": ["wa", "wb"]}]
    evaluations = {e["workflow"]: e for e in run["evaluations"]}
    assert evaluations["wa"]["matched"] and evaluations["wa"]["conflict"] == ["wb"]
    assert evaluations["wb"]["matched"] and evaluations["wb"]["conflict"] == ["wa"]
    assert evaluations["wa"]["actions"] == evaluations["wb"]["actions"] == []


def test_a_value_inside_the_domains_is_assigned_by_the_group_table_without_conflict(api) -> None:
    # Given the same members on the narrowed domain
    set_domains(api, {"deal.custom.kind": ["a", "b"]})
    save(
        api,
        member("wa", "record.custom.kind == 'a' || record.custom.kind == 'zzz'", probability=10),
    )
    save(
        api,
        member("wb", "record.custom.kind == 'b' || record.custom.kind == 'zzz'", probability=20),
    )
    # When
    deal = new_deal(api, amount=1000, custom={"kind": "b"})
    # Then
    assert (deal["probability"], deal["weighted_amount"]) == (20, 200.0)
    run = runs_of(api, deal["id"])[0]
    assert run["status"] == "ok"
    assert {e["workflow"]: e.get("failed") for e in run["evaluations"]} == {
        "wa": "the group's table assigns this combination to wb",
        "wb": None,
    }


def test_a_step_reading_the_previous_record_is_evaluated_not_assigned_by_a_table(api) -> None:
    # Given a step that applies only when a deal enters negotiation: its condition reads
    # ``previous``, which no domain enumerates, so no table may decide for it
    set_domains(api, {"deal.stage": ["proposal", "negotiation"]})
    save(
        api,
        member(
            "entered",
            "record.stage == 'negotiation' && previous.stage != 'negotiation'",
            probability=70,
        ),
    )
    save(api, member("proposal", "record.stage == 'proposal'", probability=40))
    check = api.get("/api/v1/groups/g/check").json()
    assert {"workflow": "entered", "field": "previous.stage"} in check["unprovable"]
    deal = new_deal(api, amount=1000, stage="proposal")
    assert patch_deal(api, deal["id"], stage="negotiation")["probability"] == 70
    # When the rep overrides the probability of a deal already in negotiation
    after = patch_deal(api, deal["id"], probability=55)
    # Then the step's condition is false and it does not overwrite the rep's value
    assert (after["probability"], after["weighted_amount"]) == (55, 550.0)
    run = runs_of(api, deal["id"])[-1]
    assert {e["workflow"]: e["matched"] for e in run["evaluations"]} == {
        "entered": False,
        "proposal": False,
    }


# --- closed deals and weighted amounts ------------------------------------------------------


def test_closed_deals_keep_their_fixed_probability_whatever_a_ladder_step_sets(api) -> None:
    # Given a step that sets 40 % on every proposal deal, whatever its status
    save(api, member("p40", "record.stage == 'proposal'", probability=40))
    # When won, lost and cancelled deals are created in proposal
    won, lost, cancelled = (
        new_deal(api, amount=2500, stage="proposal", status=status)
        for status in ("won", "lost", "cancelled")
    )
    # Then the step ran, but the closed-deal rule wins
    assert runs_of(api, won["id"])[0]["evaluations"][0]["actions"][0]["status"] == "ok"
    assert (won["probability"], won["weighted_amount"]) == (100, 2500.0)
    assert (lost["probability"], lost["weighted_amount"]) == (0, 0.0)
    assert (cancelled["probability"], cancelled["weighted_amount"]) == (0, 0.0)


def test_closing_an_open_deal_overrides_the_ladder_probability(api) -> None:
    # Given an open proposal deal at 40 %
    save(api, member("p40", "record.stage == 'proposal'", probability=40))
    deal = new_deal(api, amount=2500, stage="proposal")
    assert (deal["probability"], deal["weighted_amount"]) == (40, 1000.0)
    # When it is won, then lost
    won = patch_deal(api, deal["id"], status="won")
    lost = patch_deal(api, deal["id"], status="lost")
    # Then
    assert (won["probability"], won["weighted_amount"]) == (100, 2500.0)
    assert (lost["probability"], lost["weighted_amount"]) == (0, 0.0)


def test_weighted_amount_follows_amount_and_ladder_probability_changes(api) -> None:
    # Given the shipped ladder and a deal on it
    load_ladder(api)
    custom = {"proposal_type": "firm", "relationship": "medium"}
    deal = new_deal(api, amount=1000, stage="proposal", custom=custom)
    assert (deal["probability"], deal["weighted_amount"]) == (60, 600.0)
    # When the amount changes
    deal = patch_deal(api, deal["id"], amount=2500.5)
    # Then
    assert (deal["probability"], deal["weighted_amount"]) == (60, float(weighted("2500.5", 60)))
    # When the stage moves up the ladder (the probability changes through the workflow)
    deal = patch_deal(api, deal["id"], stage="negotiation")
    # Then
    assert deal["probability"] == ladder_step("negotiation", "firm", "medium")[1] == 80
    assert deal["weighted_amount"] == float(weighted("2500.5", 80))


# --- the shipped ladder: matrix -------------------------------------------------------------


def test_the_matrix_of_the_shipped_ladder_assigns_each_combination_to_the_workflow_matching_it(
    api,
) -> None:
    # Given
    load_ladder(api)
    # When
    resp = api.get(f"/api/v1/groups/{LADDER}/matrix")
    # Then
    assert resp.status_code == 200, resp.text
    matrix = resp.json()
    assert matrix["factors"] == sorted(STARTER_DOMAINS)
    assert len(matrix["rows"]) == 24
    probabilities = {
        d["id"]: d["actions"][0]["set"]["probability"]
        for d in shipped_documents()
        if d.get("group") == LADDER
    }
    seen = set()
    for row in matrix["rows"]:
        values = row["values"]
        combination = (
            values["deal.stage"],
            values["deal.custom.proposal_type"],
            values["deal.custom.relationship"],
        )
        seen.add(combination)
        assert row["state"] == "ok", row
        assert len(row["workflows"]) == 1
        assert row["sets"]["probability"] == probabilities[row["workflows"][0]]
        assert ladder_step(*combination) == (row["workflows"][0], row["sets"]["probability"])
    assert seen == set(itertools.product(*STARTER_DOMAINS.values()))
    assert "exclusive over" in matrix["summary"]


def test_the_matrix_of_an_unknown_group_is_not_found(api) -> None:
    assert_problem(api.get("/api/v1/groups/nope/matrix"), 404)


def test_the_matrix_marks_overlaps_and_gaps(api) -> None:
    # Given a group with a gap, and a widened domain that makes an overlap
    set_domains(api, {"deal.custom.kind": ["a", "b"]})
    save(
        api,
        member("wa", "record.custom.kind == 'a' || record.custom.kind == 'zzz'", probability=10),
    )
    save(
        api,
        member("wb", "record.custom.kind == 'b' || record.custom.kind == 'zzz'", probability=20),
    )
    set_domains(api, {"deal.custom.kind": ["a", "b", "zzz", "new"]})
    # When
    rows = api.get("/api/v1/groups/g/matrix").json()["rows"]
    # Then
    assert [
        (r["values"]["deal.custom.kind"], r["workflows"], r["sets"], r["state"]) for r in rows
    ] == [
        ("a", ["wa"], {"probability": 10}, "ok"),
        ("b", ["wb"], {"probability": 20}, "ok"),
        ("zzz", ["wa", "wb"], {}, "overlap"),
        ("new", [], {}, "gap"),
    ]


# --- the shipped ladder: impact preview -----------------------------------------------------


def test_preview_of_a_changed_step_lists_its_open_deals_and_the_forecast_move_and_writes_nothing(
    api,
) -> None:
    # Given the ladder, open deals across steps, and closed deals in a 40 % combination
    load_ladder(api)
    deals = make_ladder_deals(api)
    open_deals = [d for d in deals if d["status"] == "open"]
    in_step = [d for d in open_deals if step_of(d) == ("deal-probability-40", 40)]
    assert len(in_step) == 6  # the fixture's premise
    draft = next(d for d in shipped_documents() if d["id"] == "deal-probability-40")
    draft["actions"] = [{"type": "field_update", "set": {"probability": 45}}]
    # When
    resp = api.post(f"/api/v1/groups/{LADDER}/preview", json={"workflows": [draft]})
    # Then exactly the open deals of that step change, 40 → 45
    assert resp.status_code == 200, resp.text
    preview = resp.json()
    assert preview["report"]["ok"] is True
    assert preview["deals_scanned"] == len(open_deals)
    assert preview["deals_changed"] == len(in_step)
    assert sorted((c["id"], c["title"], c["changes"]) for c in preview["changes"]) == sorted(
        (d["id"], d["title"], {"probability": [40, 45]}) for d in in_step
    )
    # and the forecast per month and currency moves by 5 % of those deals' amounts
    before: dict[tuple[str | None, str], Decimal] = defaultdict(Decimal)
    move: dict[tuple[str | None, str], Decimal] = defaultdict(Decimal)
    for d in open_deals:
        key = (d["expected_close_date"][:7] if d["expected_close_date"] else None, d["currency"])
        before[key] += weighted(d["amount"], step_of(d)[1])
        if d in in_step:
            move[key] += weighted(d["amount"], 45) - weighted(d["amount"], 40)
    got = {(m["month"], m["currency"]): m for m in preview["forecast"]}
    assert set(got) == set(before)
    for key, row in got.items():
        assert Decimal(str(row["weighted_before"])) == before[key], key
        assert Decimal(str(row["weighted_after"])) == before[key] + move[key], key
    assert move[("2026-03", "USD")] == Decimal(
        "1275.03"
    )  # 24000 and 1500.50 at +5 %, per deal to the cent
    # and "before" is the forecast as it stands
    current = api.get("/api/v1/forecast").json()["rows"]
    assert {(r["month"], r["currency"]): r["weighted_amount"] for r in current} == {
        key: row["weighted_before"] for key, row in got.items()
    }
    # and nothing was written
    assert [read_deal(api, d["id"]) for d in deals] == deals
    assert api.get(f"{WORKFLOWS}/deal-probability-40").json()["version"] == 1


def test_preview_with_a_removed_step_leaves_its_deals_unassigned(api) -> None:
    # Given the ladder and its deals
    load_ladder(api)
    deals = make_ladder_deals(api)
    # When the 90 % step is dropped from the draft
    resp = api.post(
        f"/api/v1/groups/{LADDER}/preview",
        json={"workflows": [], "remove": ["deal-probability-90"]},
    )
    # Then the group report shows the gap, and no deal changes (nothing assigns a new value)
    preview = resp.json()
    assert resp.status_code == 200, resp.text
    assert preview["report"]["ok"] is False
    assert preview["report"]["gap_count"] == 1
    assert preview["deals_changed"] == 0
    assert [read_deal(api, d["id"]) for d in deals] == deals


def test_preview_refuses_an_invalid_draft(api) -> None:
    load_ladder(api)
    resp = api.post(f"/api/v1/groups/{LADDER}/preview", json={"workflows": [{"id": "x"}]})
    assert resp.status_code == 422, resp.text


# --- the shipped ladder: recompute ----------------------------------------------------------


def test_recompute_after_a_ladder_change_fixes_every_open_deal(api, engine: Engine) -> None:
    # Given the ladder and deals on it
    load_ladder(api)
    deals = make_ladder_deals(api)
    open_deals = [d for d in deals if d["status"] == "open"]
    # and a new version of the 40 % step (saving it does not touch stored deals)
    step = next(d for d in shipped_documents() if d["id"] == "deal-probability-40")
    step["actions"] = [{"type": "field_update", "set": {"probability": 45}}]
    resp = api.put(f"{WORKFLOWS}/deal-probability-40", json=step)
    assert resp.status_code == 200, resp.text
    # and a 90 % deal whose stored probability is wrong
    corrupt = next(d for d in open_deals if step_of(d)[1] == 90)
    with engine.begin() as conn:
        conn.execute(
            update(Deal).where(Deal.id == corrupt["id"]).values(probability=5, weighted_amount=1)
        )
    assert read_deal(api, corrupt["id"])["probability"] == 5
    # When
    resp = api.post(f"/api/v1/groups/{LADDER}/recompute")
    # Then
    assert resp.status_code == 200, resp.text
    in_step = [d for d in open_deals if step_of(d)[0] == "deal-probability-40"]
    assert resp.json() == {
        "group": LADDER,
        "deals_scanned": len(open_deals),
        "deals_changed": len(in_step) + 1,
        "conflicts": 0,
        "conflict_ids": [],
        "errors": [],
    }
    for d in deals:
        now = read_deal(api, d["id"])
        if d["status"] != "open":
            assert now == d
            continue
        expected = 45 if d in in_step else step_of(d)[1]
        assert now["probability"] == expected, d["title"]
        assert now["weighted_amount"] == float(weighted(d["amount"], expected)), d["title"]


def test_recompute_again_changes_nothing(api) -> None:
    load_ladder(api)
    deals = make_ladder_deals(api)
    resp = api.post(f"/api/v1/groups/{LADDER}/recompute")
    assert resp.status_code == 200, resp.text
    assert resp.json()["deals_changed"] == 0
    assert resp.json()["deals_scanned"] == len([d for d in deals if d["status"] == "open"])


def test_recompute_of_an_unknown_group_is_not_found(api) -> None:
    assert_problem(api.post("/api/v1/groups/nope/recompute"), 404)


def test_recompute_of_a_group_over_the_currency_domain(api) -> None:
    # Given deals made before a group keyed on currency existed
    set_domains(api, {"deal.currency": ["USD", "EUR"]})
    usd = new_deal(api, amount=1000, currency="USD")
    eur = new_deal(api, amount=3000, currency="EUR")
    save(api, member("usd", "record.currency == 'USD'", probability=30))
    save(api, member("eur", "record.currency == 'EUR'", probability=60))
    # When
    resp = api.post("/api/v1/groups/g/recompute")
    # Then
    assert resp.status_code == 200, resp.text
    assert resp.json()["deals_changed"] == 2
    assert (
        read_deal(api, usd["id"])["probability"],
        read_deal(api, usd["id"])["weighted_amount"],
    ) == (30, 300.0)
    assert (
        read_deal(api, eur["id"])["probability"],
        read_deal(api, eur["id"])["weighted_amount"],
    ) == (60, 1800.0)


def deals_off_the_table(api: Any, **sets: Any) -> dict[str, dict[str, Any]]:
    """Deals the group's table has no entry for, made before the group existed: a kind
    outside the narrowed domain (both members match it: a conflict), no kind at all (only
    ``wb`` matches it), and two on the table. ``sets`` adds to what each member sets."""
    set_domains(api, {"deal.custom.kind": ["a", "b", "zzz"]})
    made = {
        "outside": new_deal(api, amount=1000, custom={"kind": "zzz"}),
        "missing": new_deal(api, amount=3000),
        "a": new_deal(api, amount=500, custom={"kind": "a"}),
        "b": new_deal(api, amount=700, custom={"kind": "b"}),
    }
    set_domains(api, {"deal.custom.kind": ["a", "b"]})
    wa = member("wa", "record.custom.kind == 'a' || record.custom.kind == 'zzz'", probability=10)
    wb = member("wb", "record.custom.kind != 'a'", probability=20)
    for document, extra in ((wa, sets.get("wa")), (wb, sets.get("wb"))):
        if extra:
            document["actions"][0]["set"].update(extra)
        save(api, document)
    return made


def engine_result(api: Any, deal_id: int) -> tuple[Any, Any, str]:
    """What the engine makes of the deal on its next save: probability, weighted, run status."""
    after = patch_deal(api, deal_id, title="saved again")
    return after["probability"], after["weighted_amount"], runs_of(api, deal_id)[-1]["status"]


@pytest.mark.parametrize(
    "sets",
    [{}, {"wa": {"custom.tier": "A"}, "wb": {"custom.tier": "B"}}],
    ids=["probability-ladder", "other-fields"],
)
def test_recompute_and_preview_evaluate_deals_off_the_table_as_the_engine_does(
    api, sets: dict[str, Any]
) -> None:
    # Given deals whose factor values miss the group's table (one of them a conflict)
    made = deals_off_the_table(api, **sets)
    outside = made["outside"]["id"]
    # When the group is previewed, then recomputed
    preview = api.post("/api/v1/groups/g/preview", json={"workflows": []})
    resp = api.post("/api/v1/groups/g/recompute")
    # Then both give the missing kind wb's value and report the conflict instead of a silence
    assert preview.status_code == 200, preview.text
    assert resp.status_code == 200, resp.text
    body = preview.json()
    assert {c["id"]: c["changes"]["probability"] for c in body["changes"]} == {
        made["missing"]["id"]: [None, 20],
        made["a"]["id"]: [None, 10],
        made["b"]["id"]: [None, 20],
    }
    assert (body["deals_changed"], body["conflicts"], body["conflict_ids"]) == (3, 1, [outside])
    assert resp.json() == {
        "group": "g",
        "deals_scanned": 4,
        "deals_changed": 3,
        "conflicts": 1,
        "conflict_ids": [outside],
        "errors": [],
    }
    stored = {name: read_deal(api, d["id"]) for name, d in made.items()}
    assert {name: d["probability"] for name, d in stored.items()} == {
        "outside": None,
        "missing": 20,
        "a": 10,
        "b": 20,
    }
    if sets:
        assert stored["missing"]["custom"] == {"tier": "B"}
    # and the engine, on each deal's next save, agrees with what recompute wrote
    for name, deal in made.items():
        probability, weighted_amount, status = engine_result(api, deal["id"])
        assert (probability, weighted_amount) == (
            stored[name]["probability"],
            stored[name]["weighted_amount"],
        ), name
        assert status == ("conflict" if name == "outside" else "ok"), name


# --- the shipped ladder: the demo flow on the compiled table -------------------------------


def test_deals_created_after_loading_the_ladder_get_its_probability_from_the_compiled_table(
    api,
) -> None:
    # Given the loaded ladder
    load_ladder(api)
    # When deals are created in every open combination
    for stage, kind, relationship in itertools.product(*STARTER_DOMAINS.values()):
        deal = new_deal(
            api,
            amount=1000,
            stage=stage,
            custom={"proposal_type": kind, "relationship": relationship},
        )
        # Then each has the probability of the step whose condition matches it
        key, probability = ladder_step(stage, kind, relationship)
        assert (deal["probability"], deal["weighted_amount"]) == (
            probability,
            float(probability * 10),
        ), deal
        # and the run says the group's table assigned it: the other steps were not evaluated
        run = runs_of(api, deal["id"])[0]
        assert run["status"] == "ok"
        for evaluation in run["evaluations"]:
            if evaluation["workflow"] == key:
                assert evaluation["matched"] is True
                assert [a["status"] for a in evaluation["actions"]] == ["ok"]
            else:
                assert evaluation["matched"] is False
                assert (
                    evaluation["failed"] == f"the group's table assigns this combination to {key}"
                )
        assert len(run["evaluations"]) == 9
