"""HTTP endpoints for exclusive groups: the exclusivity report."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from server.core.scope import TeamScope
from server.core.services import workflows


class GroupController(Controller):
    path = "/groups"
    tags = ["groups"]

    @get("/{group:str}/check", sync_to_thread=False, summary="Check an exclusive group for overlaps and gaps")
    def check(self, group: FromPath[str], team: NamedDependency[TeamScope]) -> dict[str, Any]:
        return workflows.check_group(team, group).as_dict()
