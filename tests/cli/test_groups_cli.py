"""``dealflow workflows matrix|preview``, ``forecast`` and ``recompute``, run as real processes
against a SQLite file holding the shipped ladder (``team create --starter``) and deals made
through the real app; every figure is checked against values computed here."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import jmespath
import pytest
from helpers import KEY_RE, Cli, api

from server.core.starter import shipped_documents

LADDER = "deal_probability"
HEADERS = {"PROPOSAL_TYPE", "MONTH", "DEAL"}  # first column of each table the commands print

# (title, amount, currency, stage, proposal type, relationship, expected close). Amounts are
# chosen so that 40 %, 45 % and every ladder step give whole cents.
OPEN_DEALS = [
    ("Initech portal", 24000, "USD", "qualification", "firm", "high", "2026-03-05"),
    ("Initech printers", 1500, "USD", "discovery", "firm", "medium", "2026-03-20"),
    ("Initech training", 800, "USD", "negotiation", "firm", "high", "2026-03-12"),
    ("Globex audit", 333, "USD", "discovery", "budgetary", "high", "2026-04-02"),
    ("Globex staff", 5000, "USD", "qualification", "budgetary", "low", "2026-04-30"),
    ("Umbrella retainer", 12345.6, "EUR", "proposal", "budgetary", "low", "2026-03-11"),
    ("Hooli no date", 7000, "USD", "proposal", "firm", "medium", None),
]
WON = ("Vandelay won", 100000, "USD", "qualification", "firm", "high", "2026-03-01")


def ladder_step(stage: str, kind: str, relationship: str) -> tuple[str, int]:
    """The shipped step whose condition matches an open deal, evaluated here with jmespath."""
    record = {
        "status": "open",
        "stage": stage,
        "custom": {"proposal_type": kind, "relationship": relationship},
    }
    hits = [
        (d["id"], d["actions"][0]["set"]["probability"])
        for d in shipped_documents()
        if d.get("group") == LADDER and jmespath.search(d["condition"], {"record": record})
    ]
    assert len(hits) == 1, (record, hits)
    return hits[0]


def weighted(amount: Any, probability: int) -> Decimal:
    return (Decimal(str(amount)) * probability / 100).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )


def money(value: Decimal) -> str:
    return f"{value:,.2f}"


def stored(db: Path) -> dict[str, tuple[int | None, Decimal | None]]:
    """Each deal's stored probability and weighted amount, read straight from the file."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT title, probability, weighted_amount FROM deals").fetchall()
    return {
        t: (p, None if w is None else Decimal(str(w)).quantize(Decimal("0.01"))) for t, p, w in rows
    }


def data_rows(out: str, header: str) -> list[list[str]]:
    """The whitespace-split rows of the table whose header line starts with ``header``."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip() or line.startswith(("group ", "total ")) or line.split()[0] in HEADERS:
            break
        rows.append(line.split())
    return rows


@pytest.fixture(scope="module")
def acme_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with team Acme (shipped ladder and its domains loaded by ``--starter``) and
    the deals of :data:`OPEN_DEALS` plus a won one, made through the real app."""
    cli = Cli(tmp_path_factory.mktemp("acme"))
    cli.ok("migrate")
    out = cli.ok("team", "create", "Acme", "--starter")
    keys = KEY_RE.findall(out)
    assert len(keys) == 1, out
    headers = {"Authorization": f"Bearer {keys[0]}"}
    with api(cli.url) as client:
        for title, amount, currency, stage, kind, relationship, close in [*OPEN_DEALS, WON]:
            resp = client.post(
                "/api/v1/deals",
                headers=headers,
                json={
                    "title": title,
                    "amount": amount,
                    "currency": currency,
                    "stage": stage,
                    "status": "won" if title == WON[0] else "open",
                    "expected_close_date": close,
                    "custom": {"proposal_type": kind, "relationship": relationship},
                },
            )
            assert resp.status_code == 201, resp.text
    return cli.db


@pytest.fixture
def acme(acme_base: Path, tmp_path: Path) -> Cli:
    """A copy of the Acme database of its own for the test."""
    shutil.copy(acme_base, tmp_path / "x.db")
    return Cli(tmp_path)


def test_the_premise_deals_carry_the_ladder_probability(acme: Cli) -> None:
    # Checked once here so that the other tests can rely on it.
    now = stored(acme.db)
    for title, amount, _, stage, kind, relationship, _ in OPEN_DEALS:
        probability = ladder_step(stage, kind, relationship)[1]
        assert now[title] == (probability, weighted(amount, probability)), title
    assert now[WON[0]] == (100, Decimal("100000.00"))


def test_matrix_prints_one_row_per_open_combination_and_an_unknown_group_fails(acme: Cli) -> None:
    # When
    out = acme.ok("workflows", "matrix", LADDER, "--team", "Acme")
    missing = acme("workflows", "matrix", "nope", "--team", "Acme")
    # Then: 24 rows, each the probability of the step whose condition matches it
    rows = data_rows(out, "PROPOSAL_TYPE")
    assert len(rows) == 24
    seen = set()
    for kind, relationship, stage, probability, workflow, state in rows:
        seen.add((stage, kind, relationship))
        assert (workflow, int(probability)) == ladder_step(stage, kind, relationship)
        assert state == "ok"
    assert len(seen) == 24
    assert f"group {LADDER}: exclusive over" in out
    # and an unknown group is an error naming it
    assert missing.returncode == 1
    assert "nope" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_forecast_prints_per_month_sums_equal_to_an_independent_computation(acme: Cli) -> None:
    # Given the expected rows, computed from the deals made
    expected: dict[tuple[str, str], list[Any]] = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    for title, amount, currency, stage, kind, relationship, close in OPEN_DEALS:
        row = expected[(close[:7] if close else "unscheduled", currency)]
        row[0] += 1
        row[1] += Decimal(str(amount))
        row[2] += weighted(amount, ladder_step(stage, kind, relationship)[1])
    # When
    out = acme.ok("forecast", "--team", "Acme")
    # Then: one row per month and currency, the won deal left out
    rows = data_rows(out, "MONTH")
    got = {
        (month, currency): (int(deals), amount, weighted_)
        for month, currency, deals, amount, weighted_ in rows
    }
    assert got == {key: (n, money(a), money(w)) for key, (n, a, w) in expected.items()}
    assert [r[0] for r in rows][-1] == "unscheduled"


def test_preview_lists_the_deals_a_draft_would_change_and_writes_nothing(acme: Cli) -> None:
    # Given a draft of the 40 % step at 45 %
    draft = next(d for d in shipped_documents() if d["id"] == "deal-probability-40")
    draft["actions"] = [{"type": "field_update", "set": {"probability": 45}}]
    path = acme.cwd / "changed.json"
    path.write_text(json.dumps(draft))
    before = stored(acme.db)
    in_step = [d for d in OPEN_DEALS if ladder_step(*d[3:6])[0] == "deal-probability-40"]
    assert (
        len(in_step) == 4
    )  # the premise: Initech portal, printers, Globex audit, Umbrella retainer
    # When
    out = acme.ok("workflows", "preview", LADDER, path, "--team", "Acme")
    # Then the deals of that step are listed with 40 → 45
    assert f"{len(in_step)} of {len(OPEN_DEALS)} open deal(s) would change" in out
    changes = data_rows(out, "DEAL")
    assert sorted(" ".join(r[1:]) for r in changes) == sorted(
        f"{d[0]} probability 40 45" for d in in_step
    )
    # and the forecast per month moves by 5 % of those deals' amounts
    move: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for title, amount, currency, *_, close in in_step:
        move[(close[:7], currency)] += weighted(amount, 45) - weighted(amount, 40)
    forecast = data_rows(out, "MONTH")
    assert {(m, c) for m, c, *_ in forecast} == {
        (d[6][:7] if d[6] else "unscheduled", d[2]) for d in OPEN_DEALS
    }
    for month, currency, *_, change in forecast:
        assert change == f"{move[(month, currency)]:+,.2f}", (month, currency)
    # and nothing was written
    assert stored(acme.db) == before


def test_recompute_evaluates_deals_off_the_table_and_reports_conflicts(
    acme: Cli, tmp_path: Path
) -> None:
    # Given two steps for a proposal type outside the domain ("legacy"): on the domain's
    # values they match nothing, so the group stays proven; a legacy deal in proposal
    # matches both (a runtime conflict), one in qualification only the first
    steps = tmp_path / "legacy"
    steps.mkdir()
    for key, condition, probability in [
        ("legacy-any", "record.custom.proposal_type == 'legacy'", 15),
        (
            "legacy-proposal",
            "record.custom.proposal_type == 'legacy' && record.stage == 'proposal'",
            25,
        ),
    ]:
        document = {
            "id": key,
            "name": key,
            "entity": "deal",
            "trigger": {"type": "record_saved", "on": ["created", "updated"]},
            "group": LADDER,
            "exclusive": True,
            "condition": condition,
            "actions": [{"type": "field_update", "set": {"probability": probability}}],
        }
        (steps / f"{key}.json").write_text(json.dumps(document))
    acme.ok("workflows", "import", "--team", "Acme", str(steps))
    with sqlite3.connect(acme.db) as conn:
        conn.execute(
            "UPDATE deals SET custom = json_set(custom, '$.proposal_type', 'legacy') "
            "WHERE title IN (?, ?)",
            ("Globex staff", "Umbrella retainer"),
        )
        (conflict,) = conn.execute(
            "SELECT id FROM deals WHERE title = ?", ("Umbrella retainer",)
        ).fetchone()
    # When
    out = acme.ok("recompute", "--team", "Acme", "--group", LADDER)
    # Then the qualification deal took the legacy step, the proposal one kept its value and
    # is reported, and the others are unchanged
    assert f"team 'Acme', group {LADDER}: 1 of {len(OPEN_DEALS)} open deal(s) changed" in out
    assert (
        "  1 deal(s) left as they are: two or more workflows of the group match them "
        f"(a conflict): {conflict}"
    ) in out
    now = stored(acme.db)
    assert now["Globex staff"] == (15, weighted(5000, 15))
    assert now["Umbrella retainer"] == (40, weighted(12345.6, 40))
    for title, amount, _, stage, kind, relationship, _ in OPEN_DEALS:
        if title not in ("Globex staff", "Umbrella retainer"):
            probability = ladder_step(stage, kind, relationship)[1]
            assert now[title] == (probability, weighted(amount, probability)), title


def test_recompute_reports_and_fixes_the_deals_whose_probability_is_wrong(acme: Cli) -> None:
    # Given two open deals whose stored probability was corrupted behind the app's back
    with sqlite3.connect(acme.db) as conn:
        conn.execute(
            "UPDATE deals SET probability = 5, weighted_amount = 1 WHERE title IN (?, ?)",
            ("Initech training", "Umbrella retainer"),
        )
    # When
    out = acme.ok("recompute", "--team", "Acme")
    # Then
    assert f"team 'Acme', group {LADDER}: 2 of {len(OPEN_DEALS)} open deal(s) changed" in out
    now = stored(acme.db)
    for title, amount, _, stage, kind, relationship, _ in OPEN_DEALS:
        probability = ladder_step(stage, kind, relationship)[1]
        assert now[title] == (probability, weighted(amount, probability)), title
    assert now[WON[0]] == (100, Decimal("100000.00"))
