"""HTTP endpoints for exclusive groups: exclusivity report, matrix, impact preview, recompute."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from server.core.scope import TeamScope
from server.core.services import groups, workflows
from server.core.services.groups import MatrixOut, PreviewOut, RecomputeOut


class PreviewIn(msgspec.Struct, forbid_unknown_fields=True):
    """Draft workflows for the group (replacing those with the same id) and ids to drop."""

    workflows: list[dict[str, Any]]
    remove: list[str] = []


class GroupController(Controller):
    path = "/groups"
    tags = ["groups"]

    @get(
        "/{group:str}/check",
        sync_to_thread=False,
        summary="Check an exclusive group for overlaps and gaps",
    )
    def check(self, group: FromPath[str], team: NamedDependency[TeamScope]) -> dict[str, Any]:
        return workflows.check_group(team, group).as_dict()

    @get(
        "/{group:str}/matrix",
        sync_to_thread=False,
        summary="Factor combinations → values and workflow",
    )
    def matrix(self, group: FromPath[str], team: NamedDependency[TeamScope]) -> MatrixOut:
        workflows.check_group(team, group)  # 404 for an unknown group
        return groups.matrix(team, group)

    @post(
        "/{group:str}/preview",
        sync_to_thread=False,
        status_code=200,
        summary="What a draft of the group would change on open deals (nothing is written)",
    )
    def preview(
        self, group: FromPath[str], data: JSONBody[PreviewIn], team: NamedDependency[TeamScope]
    ) -> PreviewOut:
        return groups.preview(team, group, data.workflows, data.remove)

    @post(
        "/{group:str}/recompute",
        opt={"access": "admin"},
        sync_to_thread=False,
        status_code=200,
        summary="Apply the group's current workflows to every open deal",
    )
    def recompute(self, group: FromPath[str], team: NamedDependency[TeamScope]) -> RecomputeOut:
        workflows.check_group(team, group)
        return groups.recompute(team, group)
