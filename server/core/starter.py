"""The starter set: the shipped workflows and the field domains they are written against."""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

from server.core.scope import TeamScope
from server.core.services import workflows
from server.core.services.common import domains
from server.core.services.teams import set_domains

# The demo pipeline the shipped probability ladder is written against.
STARTER_DOMAINS: dict[str, list[str]] = {
    "deal.stage": ["qualification", "discovery", "proposal", "negotiation"],
    "deal.custom.proposal_type": ["firm", "budgetary"],
    "deal.custom.relationship": ["low", "medium", "high"],
}


def shipped_files() -> list[Traversable]:
    """The shipped workflow files, in name order (package data of ``workflows``)."""
    return sorted(
        (f for f in files("workflows").iterdir() if f.name.endswith(".json")), key=lambda f: f.name
    )


def shipped_documents() -> list[dict[str, Any]]:
    return [json.loads(f.read_text()) for f in shipped_files()]


def declare_starter_domains(scope: TeamScope) -> list[str]:
    """Declare the starter domains the team has not declared itself; the paths added."""
    current = domains(scope)
    missing = {path: values for path, values in STARTER_DOMAINS.items() if path not in current}
    if missing:
        set_domains(scope, {**current, **missing})
        scope.session.commit()
    return sorted(missing)


def load_starter(scope: TeamScope) -> list[tuple[str, str]]:
    """Declare the starter domains the team lacks, then save every shipped workflow.

    Returns ``(workflow id, "created" | "updated" | "unchanged")`` for each.
    """
    declare_starter_domains(scope)
    results = []
    for document in shipped_documents():
        before = workflows.find(scope, document["id"])
        old_version = before.version if before is not None else None
        saved, created = workflows.save(scope, document)
        state = "created" if created else ("unchanged" if saved.version == old_version else "updated")
        results.append((saved.id, state))
    return results
