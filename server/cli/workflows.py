"""``dealflow workflows``: validate, import, export, list and dry-run workflow files."""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from server.cli.common import admin_scope, atomic, offline_registry, runtime, settings, table, teams
from server.cli.files import Checked, Source, check, collect, read_object, shipped
from server.core.db import make_engine, make_session_factory
from server.core.errors import DealflowError

if TYPE_CHECKING:
    from server.core.models import Team
    from server.core.runtime import Runtime
    from server.core.scope import TeamScope
    from server.core.services.dryrun import DryRunOut


class _Refused(Exception):
    """A save refused during an import; carries the problem lines to print."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _report(problems: Sequence[str], tail: str) -> int:
    for line in problems:
        print(line, file=sys.stderr)
    print(tail, file=sys.stderr)
    return 1


def _read_scope(session: Session, team: Team) -> TeamScope:
    from server.core.scope import Actor, TeamScope

    # Reading needs no acting user; user id 0 is never stamped on anything.
    return TeamScope(session, Actor(team.id, 0))


# --- validate --------------------------------------------------------------------------------


def _domains(args: argparse.Namespace) -> dict[str, list[Any]] | None:
    """Field domains to prove exclusive groups against: a file, a team's, or none."""
    if args.domains:
        data = read_object(args.domains, "field domains")
        return {str(k): list(v) if isinstance(v, list) else [v] for k, v in data.items()}
    if args.team:
        from server.core.services.common import domains

        config = settings()
        with make_session_factory(make_engine(config.database_url))() as session:
            return dict(domains(admin_scope(session, args.team)))
    return None


def check_groups(
    documents: list[dict[str, Any]], domains: dict[str, list[Any]] | None
) -> tuple[list[str], list[str]]:
    """Exclusivity of the groups among ``documents``: (errors, warnings) as printable lines."""
    from server.core.exclusivity import check_group, exclusive_groups

    errors: list[str] = []
    warnings: list[str] = []
    for group, members in sorted(exclusive_groups(documents).items()):
        report = check_group(group, members, domains or {})
        line = report.summary()
        if report.overlap_count or report.errors or (report.exhaustive and report.gap_count):
            errors.append(line)
        elif report.gap_count or report.unprovable:
            warnings.append(line)
        else:
            print(line)
    if warnings and domains is None:
        warnings.append(
            "no field domains given (--team or --domains): picklist fields cannot be enumerated"
        )
    return errors, warnings


def cmd_validate(args: argparse.Namespace) -> int:
    sources, problems = collect(args.paths)
    checked = check(sources, offline_registry(settings()))
    problems += checked.problems
    if problems:
        files = len({line.split(": ", 1)[0] for line in problems})
        return _report(problems, f"{len(problems)} problem(s) in {files} file(s)")
    errors, warnings = check_groups([doc for _, doc in checked.documents], _domains(args))
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    if errors:
        return _report(errors, f"{len(errors)} exclusive group(s) fail")
    print(f"{len(checked.documents)} workflow(s) valid")
    return 0


# --- import ----------------------------------------------------------------------------------


def save_all(
    rt: Runtime, team_ref: str | int, documents: list[tuple[Source, dict[str, Any]]]
) -> tuple[str, list[tuple[str, str, int]]]:
    """Save every document for the team in one transaction: all of them, or none.

    Returns the team's name and ``(id, created|updated|unchanged, version)`` per document.
    """
    from server.core.models import Workflow
    from server.core.services import workflows as store

    results = []
    with atomic(rt) as session:
        scope = admin_scope(session, team_ref, rt)
        for source, document in documents:
            before = session.scalar(
                scope.select(Workflow, Workflow.version).where(Workflow.key == document["id"])
            )
            try:
                saved, created = store.save(scope, copy.deepcopy(document))
            except DealflowError as exc:
                # Leaving the block rolls back the documents saved before this one.
                lines = [f"{source.label}: {e['field']}: {e['message']}" for e in exc.errors or []]
                raise _Refused(lines or [f"{source.label}: {exc.message}"]) from None
            outcome = (
                "created" if created else "unchanged" if saved.version == before else "updated"
            )
            results.append((saved.id, outcome, saved.version))
        return scope.team.name, results


def import_checked(rt: Runtime, team_ref: str | int, checked: Checked) -> int:
    """Save checked documents for a team and print what happened to each; the exit status."""
    if checked.problems:
        return _report(checked.problems, "nothing was saved")
    try:
        name, results = save_all(rt, team_ref, checked.documents)
    except _Refused as exc:
        return _report(exc.lines, "nothing was saved")
    for key, outcome, version in results:
        print(f"{key}: {outcome} (version {version})")
    counts = {
        o: sum(1 for _, x, _ in results if x == o) for o in ("created", "updated", "unchanged")
    }
    print(
        f"team {name!r}: {counts['created']} created, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged"
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    with runtime() as rt:
        sources, problems = collect(args.paths)
        checked = check(sources, rt.registry)
        checked.problems[:0] = problems
        return import_checked(rt, args.team, checked)


def load_starter(team_id: int) -> int:
    """Load the shipped workflows (``workflows/*.json`` of the installed package) for a team."""
    where, sources = shipped()
    if not sources:
        print(f"no shipped workflows in {where}")
        return 0
    with runtime() as rt:
        from server.core.starter import declare_starter_domains

        with rt.sessions() as session:
            added = declare_starter_domains(admin_scope(session, team_id, rt))
        if added:
            print(f"declared the starter field domains: {', '.join(added)}")
        checked = check(sources, rt.registry)
        status = import_checked(rt, team_id, checked)
    if status == 0:
        print(f"loaded {len(sources)} shipped workflow(s) from {where}")
    return status


# --- export and list -------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from server.core.services import workflows as store

    target = Path(args.directory)
    factory = make_session_factory(make_engine(settings().database_url))
    with factory() as session:
        (team,) = teams(session, args.team)
        found = store.list_(_read_scope(session, team))
    try:
        target.mkdir(parents=True, exist_ok=True)
        for workflow in found:
            text = json.dumps(workflow.document, indent=2, sort_keys=True, ensure_ascii=False)
            (target / f"{workflow.id}.json").write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise DealflowError(
            f"{exc.filename or target}: cannot write: {exc.strerror or exc}"
        ) from None
    for workflow in found:
        print(f"{target / (workflow.id + '.json')} (version {workflow.version})")
    print(f"exported {len(found)} workflow(s) of team {team.name!r} to {target}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from server.core.services import workflows as store

    factory = make_session_factory(make_engine(settings().database_url))
    rows = []
    with factory() as session:
        for team in teams(session, args.team):
            for w in store.list_(_read_scope(session, team)):
                enabled = "yes" if w.enabled else "no"
                rows.append(
                    (team.name, w.id, w.entity, w.trigger_type, w.group, enabled, w.version)
                )
    print(table(("team", "id", "entity", "trigger", "group", "enabled", "version"), rows))
    return 0


# --- test (dry run) --------------------------------------------------------------------------


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _value_at(record: dict[str, Any] | None, name: str) -> Any:
    record = record or {}
    if name.startswith("custom."):
        return (record.get("custom") or {}).get(name.removeprefix("custom."))
    return record.get(name)


def _preview_lines(preview: Any) -> list[str]:
    if not isinstance(preview, dict):
        return [_show(preview)]
    lines = []
    for key, value in preview.items():
        if isinstance(value, str) and "\n" in value:
            lines.append(f"{key}: |")
            lines += [f"  {line}" for line in value.splitlines()]
        else:
            lines.append(f"{key}: {_show(value)}")
    return lines


def render_dry_run(
    result: DryRunOut,
    document: dict[str, Any],
    record: dict[str, Any],
    op: str,
    changed: Sequence[str] = (),
) -> str:
    """The dry run as an admin reads it: verdict, trigger, condition, changes, each action."""
    trigger = document["trigger"]
    condition = result.condition
    if result.matched:
        verdict = "matched: the workflow would run"
    elif not result.trigger_fires:
        verdict = "not matched: the trigger does not fire"
    elif condition.get("error"):
        verdict = "not matched: the condition failed with an error"
    else:
        verdict = "not matched: the condition is false"
    lines = [f"{result.workflow}: {verdict}"]
    filters = {k: v for k, v in trigger.items() if k != "type"}
    trigger_text = trigger["type"] + (f" {_show(filters)}" if filters else "")
    fires = "fires" if result.trigger_fires else "does not fire"
    seen = f"this {op} {document.get('entity') or 'record'}"
    if op == "updated":
        seen += f" (changed: {', '.join(changed) or 'nothing'})"
    lines.append(f"trigger: {trigger_text} {fires} on {seen}")
    if not document.get("condition"):
        lines.append("condition: none (always matches)")
    elif condition.get("error"):
        lines.append(f"condition: error: {condition['error']}")
    elif condition.get("matched"):
        lines.append(f"condition: true: {document['condition']}")
    else:
        lines.append(f"condition: false at: {condition.get('failed')}")
        for expression, value in (condition.get("values") or {}).items():
            lines.append(f"  {expression} = {_show(value)}")
    if not result.matched:
        lines.append("actions: none run")
        return "\n".join(lines)
    if result.changes:
        lines.append("changes:")
        for name, value in result.changes.items():
            lines.append(f"  {name}: {_show(_value_at(record, name))} -> {_show(value)}")
    else:
        lines.append("changes: none")
    lines.append("actions:")
    for action in result.actions:
        head = f"  [{action.index}] {action.type} ({action.kind.replace('_', ' ')})"
        if action.error:
            lines.append(f"{head}: error: {action.error}")
            continue
        lines.append(head)
        lines += [f"      {line}" for line in _preview_lines(action.preview)]
    return "\n".join(lines)


def cmd_test(args: argparse.Namespace) -> int:
    from server.core.change import diff
    from server.core.services.dryrun import DryRunIn, dry_run

    with runtime() as rt:
        sources, problems = collect([args.file])
        checked = check(sources, rt.registry)
        problems += checked.problems
        if problems:
            return _report(problems, "fix the workflow before testing it")
        ((_, document),) = checked.documents
        record = read_object(args.record, "record")
        previous = read_object(args.previous, "previous record") if args.previous else None
        op = args.op or ("created" if previous is None else "updated")
        with rt.sessions() as session:
            scope = admin_scope(session, args.team, rt)
            result = dry_run(
                scope,
                DryRunIn(workflow=copy.deepcopy(document), record=record, previous=previous, op=op),
            )
            session.rollback()  # a dry run writes nothing; make sure of it
    print(render_dry_run(result, document, record, op, diff(previous, record)))
    return 0


# --- parser ----------------------------------------------------------------------------------


def add_commands(commands: Any) -> Any:
    """Add ``workflows validate|import|export|list|test`` to the ``dealflow`` parser."""
    group = commands.add_parser(
        "workflows", help="validate, import, export, list and test workflows"
    )
    actions = group.add_subparsers(dest="workflows_command", required=True, metavar="ACTION")

    validate = actions.add_parser(
        "validate", help="check workflow JSON files against the loaded plugins (no database)"
    )
    validate.add_argument(
        "paths", nargs="+", metavar="FILE|DIR", help="*.json files or directories of them"
    )
    validate.add_argument(
        "--domains",
        default=None,
        metavar="DOMAINS.json",
        help='field domains to prove exclusive groups against: {"deal.stage": [...], ...}',
    )
    validate.add_argument(
        "--team", default=None, help="prove exclusive groups against this team's field domains"
    )
    validate.set_defaults(func=cmd_validate)

    imp = actions.add_parser(
        "import", help="validate, then save every file for a team (all of them or none)"
    )
    imp.add_argument("--team", required=True, help="team name or id")
    imp.add_argument(
        "paths", nargs="+", metavar="FILE|DIR", help="*.json files or directories of them"
    )
    imp.set_defaults(func=cmd_import)

    export = actions.add_parser("export", help="write a team's workflows as DIR/<id>.json")
    export.add_argument("--team", required=True, help="team name or id")
    export.add_argument("directory", metavar="DIR")
    export.set_defaults(func=cmd_export)

    lst = actions.add_parser("list", help="list workflows with trigger, group, state and version")
    lst.add_argument("--team", default=None, help="team name or id (default: every team)")
    lst.set_defaults(func=cmd_list)

    test = actions.add_parser(
        "test", help="dry-run a workflow file on a sample record; nothing is written or sent"
    )
    test.add_argument("file", metavar="FILE")
    test.add_argument(
        "--record", required=True, metavar="REC.json", help="the record after the change"
    )
    test.add_argument(
        "--previous", default=None, metavar="PREV.json", help="the record before it (an update)"
    )
    test.add_argument(
        "--op",
        choices=["created", "updated", "deleted"],
        default=None,
        help="the kind of save (default: created, or updated with --previous)",
    )
    test.add_argument(
        "--team",
        default=None,
        help="team whose settings the context shows (default: the first team)",
    )
    test.set_defaults(func=cmd_test)
    return actions
