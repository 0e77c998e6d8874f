"""Workflow files: gathering them, parsing JSON with positions, and validating them offline."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.core.errors import DealflowError

if TYPE_CHECKING:
    from server.core.plugins import Registry


@dataclass(frozen=True)
class Source:
    """A workflow file: the name messages use for it, and its text."""

    label: str
    text: str


@dataclass
class Checked:
    """Valid documents with the source each came from, and one line per problem found."""

    documents: list[tuple[Source, dict[str, Any]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _read(path: Path, label: str) -> Source:
    try:
        return Source(label, path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DealflowError(f"{label}: cannot read: not UTF-8 text") from None
    except OSError as exc:
        raise DealflowError(f"{label}: cannot read: {exc.strerror or exc}") from None


def collect(paths: Sequence[str]) -> tuple[list[Source], list[str]]:
    """The files named and the ``*.json`` files of the directories named, or why not."""
    sources, problems = [], []
    for given in paths:
        path = Path(given)
        try:
            if path.is_dir():
                found = sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
                if not found:
                    problems.append(f"{given}: no *.json files in this directory")
                sources += [_read(p, str(Path(given) / p.name)) for p in found]
            else:
                sources.append(_read(path, given))
        except DealflowError as exc:
            problems.append(exc.message)
    return sources, problems


def shipped() -> tuple[str, list[Source]]:
    """Where the installed ``workflows`` package lives, and its ``*.json`` files."""
    try:
        root = resources.files("workflows")
    except ModuleNotFoundError:
        return "the workflows package (not installed)", []
    entries = sorted(
        (e for e in root.iterdir() if e.name.endswith(".json") and e.is_file()),
        key=lambda e: e.name,
    )
    return str(root), [Source(str(e), e.read_text(encoding="utf-8")) for e in entries]


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse(source: Source) -> tuple[Any, str | None]:
    """The JSON value of ``source``, or the problem line saying where it is not JSON."""
    try:
        return json.loads(source.text, parse_constant=_no_constants), None
    except json.JSONDecodeError as exc:
        return (
            None,
            f"{source.label}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}",
        )
    except (ValueError, RecursionError) as exc:
        return None, f"{source.label}: invalid JSON: {exc}"


def read_object(path: str, what: str) -> dict[str, Any]:
    """A JSON object read from ``path`` (a sample record, say), or :class:`DealflowError`."""
    value, problem = parse(_read(Path(path), path))
    if problem:
        raise DealflowError(problem)
    if not isinstance(value, dict):
        raise DealflowError(f"{path}: the {what} must be a JSON object")
    return value


def check(sources: Iterable[Source], registry: Registry) -> Checked:
    """Parse and validate every source; an id given by two files is a problem of the second.

    The action cap is the environment's ``DEALFLOW_MAX_ACTIONS_PER_WORKFLOW``, as the server's."""
    from server.core.definitions import validate
    from server.settings import load_settings

    max_actions = load_settings().max_actions_per_workflow
    checked = Checked()
    seen: dict[str, str] = {}
    for source in sources:
        document, problem = parse(source)
        if problem:
            checked.problems.append(problem)
            continue
        problems = [
            f"{source.label}: {p}"
            for p in validate(document, registry, max_actions=max_actions)
        ]
        key = document.get("id") if isinstance(document, dict) else None
        if isinstance(key, str):
            if key in seen:
                problems.append(f"{source.label}: $.id: duplicate id {key!r} (also in {seen[key]})")
            else:
                seen[key] = source.label
        if problems:
            checked.problems += problems
        else:
            checked.documents.append((source, document))
    return checked


__all__ = ["Checked", "Source", "check", "collect", "parse", "read_object", "shipped"]
