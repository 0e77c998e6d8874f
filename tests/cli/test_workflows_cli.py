"""``dealflow workflows`` and ``dealflow runs``, run as real processes against a SQLite file."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from helpers import KEY_RE, Cli, api

from server.settings import Settings


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def migrated(cli: Cli) -> Cli:
    cli.ok("migrate")
    return cli


@pytest.fixture
def acme(migrated: Cli) -> str:
    """Team Acme; its admin's API key."""
    keys = KEY_RE.findall(migrated.ok("team", "create", "Acme"))
    assert len(keys) == 1
    return keys[0]


def probability(percent: int, stage: str) -> dict[str, Any]:
    return {
        "id": f"prob-{percent}",
        "name": f"{percent}%: {stage}, firm proposal",
        "entity": "deal",
        "trigger": {"type": "record_saved", "on": ["created", "updated"]},
        "group": "deal_probability",
        "condition": f"record.status == 'open' && record.stage == '{stage}' "
        "&& record.custom.proposal_type == 'firm'",
        "actions": [
            {"type": "field_update", "set": {"probability": percent}},
            {
                "type": "formula",
                "field": "custom.margin",
                "expression": "amount * 0.25",
                "round": 2,
            },
        ],
    }


def big_deal_alert() -> dict[str, Any]:
    return {
        "id": "big-deal-alert",
        "name": "Tell the boss about big deals",
        "entity": "deal",
        "trigger": {"type": "stage_changed", "to": "negotiation"},
        "condition": "record.amount >= `10000`",
        "actions": [
            {
                "type": "email",
                "to": "boss@acme.test",
                "subject": "Big deal: {{ record.title }}",
                "body": "{{ record.title }} is worth {{ record.amount }}",
            }
        ],
    }


def write(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) if not isinstance(value, str) else value)
    return path


def rows(table: str) -> list[list[str]]:
    """The data rows of a printed table, split into cells."""
    return [line.split() for line in table.splitlines()[1:]]


# --- validate --------------------------------------------------------------------------------


def test_validate_accepts_good_files_without_a_database(cli: Cli, tmp_path: Path) -> None:
    # Given: two good files, and no database anywhere
    folder = tmp_path / "wf"
    write(folder / "prob-70.json", probability(70, "negotiation"))
    write(folder / "alert.json", big_deal_alert())
    # When
    out = cli.ok("workflows", "validate", folder / "prob-70.json", folder / "alert.json")
    # Then
    assert "2 workflow(s) valid" in out
    assert not (tmp_path / "x.db").exists()
    assert "1 workflow(s) valid" in cli.ok("workflows", "validate", folder / "alert.json")


def test_validate_names_file_path_and_reason_of_every_problem(cli: Cli, tmp_path: Path) -> None:
    # Given
    schema = probability(10, "new")
    schema["actions"][0]["set"]["probability"] = [10]
    jmespath = probability(20, "proposal")
    jmespath["condition"] = "record.stage == 'proposal' &&"
    unknown = probability(30, "proposal")
    unknown["actions"].append({"type": "fax", "to": "+1 555"})
    broken = '{\n  "id": "broken",\n  "name": "x"\n  "entity": "deal"\n}\n'
    good = write(tmp_path / "good.json", probability(70, "negotiation"))
    duplicate = write(tmp_path / "again.json", probability(70, "negotiation"))
    files = [
        good,
        write(tmp_path / "schema.json", schema),
        write(tmp_path / "jmespath.json", jmespath),
        write(tmp_path / "unknown.json", unknown),
        write(tmp_path / "broken.json", broken),
        duplicate,
    ]
    # When
    err = cli.fails("workflows", "validate", *files)
    # Then: one line per problem, each naming the file, the JSON path and the reason
    lines = err.splitlines()
    assert f"{tmp_path / 'schema.json'}: $.actions[0].set.probability: expected" in err
    jmes = next(line for line in lines if line.startswith(str(tmp_path / "jmespath.json")))
    assert "$.condition:" in jmes
    assert re.search(r"at position \d+", jmes), jmes
    assert f"{tmp_path / 'unknown.json'}: $.actions[2].type: unknown action type 'fax'" in err
    assert f"{tmp_path / 'broken.json'}: line 4 column 3: invalid JSON" in err
    assert f"{duplicate}: $.id: duplicate id 'prob-70' (also in {good})" in err
    assert not [line for line in lines if line.startswith(f"{good}:")]
    assert "valid" not in cli("workflows", "validate", *files).stdout


# --- import, list, export --------------------------------------------------------------------


def test_import_list_reimport_update_and_export(migrated: Cli, acme: str, tmp_path: Path) -> None:
    # Given
    folder = tmp_path / "wf"
    prob = write(folder / "prob-70.json", probability(70, "negotiation"))
    write(folder / "alert.json", big_deal_alert())
    bad = write(tmp_path / "bad.json", {"id": "bad", "name": "x", "entity": "deal"})

    # When: one invalid file among valid ones
    err = migrated.fails("workflows", "import", "--team", "Acme", folder, bad)
    # Then: it is named, and nothing at all was saved
    assert f"{bad}: $.trigger: is required" in err
    assert "nothing was saved" in err
    assert rows(migrated.ok("workflows", "list")) == []

    # When: the valid folder alone
    out = migrated.ok("workflows", "import", "--team", "Acme", folder)
    # Then
    assert "big-deal-alert: created (version 1)" in out
    assert "prob-70: created (version 1)" in out
    assert rows(migrated.ok("workflows", "list")) == [
        ["Acme", "big-deal-alert", "deal", "stage_changed", "-", "yes", "1"],
        ["Acme", "prob-70", "deal", "record_saved", "deal_probability", "yes", "1"],
    ]

    # When: imported again unchanged
    out = migrated.ok("workflows", "import", "--team", "Acme", folder)
    # Then
    assert "big-deal-alert: unchanged (version 1)" in out
    assert "prob-70: unchanged (version 1)" in out

    # When: one file changed
    changed = probability(70, "negotiation")
    changed["name"] = "70 percent"
    write(prob, changed)
    out = migrated.ok("workflows", "import", "--team", "Acme", prob)
    # Then: a new version of that workflow only
    assert "prob-70: updated (version 2)" in out
    listed = {row[1]: row for row in rows(migrated.ok("workflows", "list", "--team", "Acme"))}
    assert listed["prob-70"][-1] == "2"
    assert listed["big-deal-alert"][-1] == "1"

    # When
    target = tmp_path / "exported"
    migrated.ok("workflows", "export", "--team", "Acme", target)
    # Then: one pretty, sorted file per workflow, equal to what was imported last
    assert sorted(p.name for p in target.iterdir()) == ["big-deal-alert.json", "prob-70.json"]
    text = (target / "prob-70.json").read_text()
    assert json.loads(text) == changed
    assert text == json.dumps(changed, indent=2, sort_keys=True) + "\n"
    assert json.loads((target / "big-deal-alert.json").read_text()) == big_deal_alert()

    # And: an unknown team is named, without a traceback
    assert "Nope" in migrated.fails("workflows", "import", "--team", "Nope", folder)


def test_team_create_starter_loads_the_shipped_workflows(migrated: Cli) -> None:
    # Given
    shipped = resources.files("workflows")
    ids = sorted(
        json.loads(entry.read_text())["id"]
        for entry in shipped.iterdir()
        if entry.name.endswith(".json")
    )
    # When
    out = migrated.ok("team", "create", "Acme", "--starter")
    # Then
    if ids:
        assert f"loaded {len(ids)} shipped workflow(s)" in out
    else:
        assert f"no shipped workflows in {shipped}" in out
    assert KEY_RE.search(out)
    assert [row[1] for row in rows(migrated.ok("workflows", "list", "--team", "Acme"))] == ids


# --- test (dry run) --------------------------------------------------------------------------


def test_workflows_test_shows_the_match_or_the_failed_part(migrated: Cli, tmp_path: Path) -> None:
    # Given
    prob = write(tmp_path / "prob-70.json", probability(70, "negotiation"))
    alert = write(tmp_path / "alert.json", big_deal_alert())
    deal = {
        "id": 5,
        "title": "TPS portal",
        "amount": 24000,
        "status": "open",
        "stage": "negotiation",
        "probability": 40,
        "custom": {"proposal_type": "firm"},
    }
    record = write(tmp_path / "rec.json", deal)
    previous = write(tmp_path / "prev.json", {**deal, "stage": "proposal"})

    # When: no team exists yet
    err = migrated.fails("workflows", "test", prob, "--record", record)
    # Then
    assert "no team" in err and "team create" in err
    migrated.ok("team", "create", "Acme")

    # When: the record matches
    out = migrated.ok("workflows", "test", prob, "--record", record)
    # Then: the verdict, the field changes and each action's preview
    assert out.startswith("prob-70: matched")
    assert "probability: 40 -> 70" in out
    assert "custom.margin: null -> 6000.0" in out
    assert "[1] formula" in out

    # When: it does not
    out = migrated.ok("workflows", "test", prob, "--record", previous, "--team", "Acme")
    # Then: the part that failed and the value it saw
    assert out.startswith("prob-70: not matched")
    assert "false at: record.stage == 'negotiation'" in out
    assert 'record.stage = "proposal"' in out
    assert "actions: none run" in out

    # When: a side effect, on an update that moved the stage; then on one that did not
    moved = migrated.ok("workflows", "test", alert, "--record", record, "--previous", previous)
    still = migrated.ok("workflows", "test", alert, "--record", record, "--previous", record)
    # Then: the rendered email is shown, not sent; a trigger that does not fire says so
    assert moved.startswith("big-deal-alert: matched")
    assert "[0] email (side effect)" in moved
    assert 'subject: "Big deal: TPS portal"' in moved
    assert "TPS portal is worth 24000" in moved
    assert still.startswith("big-deal-alert: not matched: the trigger does not fire")
    assert "changed: nothing" in still

    # And: a dry run writes nothing
    assert rows(migrated.ok("runs")) == []


# --- runs ------------------------------------------------------------------------------------


def test_runs_lists_what_saved_records_did(migrated: Cli, acme: str, tmp_path: Path) -> None:
    # Given
    migrated.ok(
        "workflows",
        "import",
        "--team",
        "Acme",
        write(tmp_path / "prob-70.json", probability(70, "negotiation")),
    )
    headers = {"Authorization": f"Bearer {acme}"}
    firm = {
        "title": "TPS portal",
        "amount": 24000,
        "stage": "negotiation",
        "custom": {"proposal_type": "firm"},
    }
    with api(migrated.url) as client:
        # When: one deal the workflow matches, one it does not
        hit = client.post("/api/v1/deals", json=firm, headers=headers)
        miss = client.post("/api/v1/deals", json={**firm, "stage": "new"}, headers=headers)
    assert hit.status_code == 201, hit.text
    assert miss.status_code == 201, miss.text
    assert hit.json()["probability"] == 70
    hit_id, miss_id = hit.json()["id"], miss.json()["id"]

    # Then: newest first, with record, op, status and the matched workflow
    out = migrated.ok("runs", "--team", "Acme")
    assert out.splitlines()[0].split() == [
        "ID",
        "TEAM",
        "TIME",
        "RECORD",
        "OP",
        "STATUS",
        "MATCHED",
        "DURATION",
    ]
    created = {row[3]: row for row in rows(out) if row[4] == "created"}
    assert created[f"deal#{hit_id}"][5:7] == ["ok", "prob-70"]
    assert created[f"deal#{miss_id}"][5:7] == ["no_match", "-"]
    assert rows(out)[0][3] == f"deal#{miss_id}"
    assert [int(row[0]) for row in rows(out)] == sorted(
        (int(row[0]) for row in rows(out)), reverse=True
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows(out)[0][2])
    assert {row[3] for row in rows(migrated.ok("runs", "--workflow", "prob-70"))} == {
        f"deal#{hit_id}"
    }
    assert [
        row[3] for row in rows(migrated.ok("runs", "--status", "no_match", "--limit", "5"))
    ] == [f"deal#{miss_id}"]


# --- all or nothing, on both backends --------------------------------------------------------


def test_an_import_refused_midway_saves_nothing(
    db_url: str, make_team: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import func, select

    from server.cli.common import runtime
    from server.cli.files import Checked, Source
    from server.cli.workflows import import_checked
    from server.core.models import Workflow, WorkflowVersion

    # Given: a valid document first, then one the store refuses (checks skipped on purpose)
    make_team("Acme")
    good = (Source("good.json", ""), probability(70, "negotiation"))
    refused = (Source("refused.json", ""), {"id": "refused", "name": "x", "entity": "deal"})
    with runtime(Settings(database_url=db_url)) as rt:
        # When
        status = import_checked(rt, "Acme", Checked(documents=[good, refused]))
        # Then: the refusal is named and the valid one was rolled back with it
        err = capsys.readouterr().err
        assert status == 1
        assert "refused.json: $.trigger: is required" in err
        assert err.splitlines()[-1] == "nothing was saved"
        with rt.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Workflow)) == 0
            assert session.scalar(select(func.count()).select_from(WorkflowVersion)) == 0

        # When: the valid one alone
        assert import_checked(rt, "Acme", Checked(documents=[good])) == 0
        # Then
        assert "prob-70: created (version 1)" in capsys.readouterr().out
        with rt.sessions() as session:
            assert session.scalars(select(Workflow.key)).all() == ["prob-70"]
            assert session.scalar(select(func.count()).select_from(WorkflowVersion)) == 1


def test_validate_proves_exclusive_groups_against_the_given_domains(
    cli: Cli, tmp_path: Path
) -> None:
    # Given the shipped ladder, its domains in a file, and a copy of one step under another id
    from server.core.starter import STARTER_DOMAINS

    ladder = Path(str(resources.files("workflows")))
    domains = write(tmp_path / "domains.json", STARTER_DOMAINS)
    step = json.loads((ladder / "deal-probability-70.json").read_text())
    copy = write(tmp_path / "copy" / "copy-70.json", {**step, "id": "copy-of-70"})
    # When the ladder alone is validated, then it is proven exclusive
    out = cli.ok("workflows", "validate", "--domains", domains, ladder)
    assert "group deal_probability: exclusive over" in out
    # When the copy joins it, then the overlaps are named with both ids and the exit status is 1
    err = cli.fails("workflows", "validate", "--domains", domains, ladder, copy)
    assert "3 overlap(s)" in err and "deal-probability-70, copy-of-70" in err
    assert "1 exclusive group(s) fail" in err
    # Without domains the picklist fields cannot be proven: a warning, not a failure
    result = cli("workflows", "validate", ladder)
    assert result.returncode == 0 and "cannot prove: record.stage" in result.stderr


def test_validate_reports_gaps_failing_only_an_exhaustive_group(cli: Cli, tmp_path: Path) -> None:
    # Given the shipped ladder (exhaustive) without its 70 % step, and the same as a plain
    # exclusive group
    from server.core.starter import STARTER_DOMAINS

    ladder = Path(str(resources.files("workflows")))
    domains = write(tmp_path / "domains.json", STARTER_DOMAINS)
    steps = [json.loads(p.read_text()) for p in sorted(ladder.glob("deal-probability-*.json"))
             if p.name != "deal-probability-70.json"]
    for step in steps:
        write(tmp_path / "exhaustive" / f"{step['id']}.json", step)
        write(tmp_path / "plain" / f"{step['id']}.json", {**step, "exhaustive": False})

    # When each is validated
    exhaustive = cli("workflows", "validate", "--domains", domains, tmp_path / "exhaustive")
    plain = cli("workflows", "validate", "--domains", domains, tmp_path / "plain")

    # Then both name the combinations the missing step covered; only the exhaustive one fails
    assert exhaustive.returncode == 1, exhaustive.stdout + exhaustive.stderr
    assert plain.returncode == 0, plain.stdout + plain.stderr
    for result in (exhaustive, plain):
        text = result.stdout + result.stderr
        assert re.search(r"\d+ gap\(s\)", text), text
        assert "negotiation" in text and "firm" in text
    assert "1 exclusive group(s) fail" in exhaustive.stderr
