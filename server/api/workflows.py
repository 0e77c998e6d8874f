"""HTTP endpoints for workflows: the store, versions, validation, dry run, and action types."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from server.core.definitions import published_schema
from server.core.scope import TeamScope
from server.core.services import workflows as service
from server.core.services.dryrun import DryRunIn, DryRunOut, dry_run
from server.core.services.workflows import VersionOut, WorkflowOut

Document = dict[str, Any]


class Problem(msgspec.Struct):
    field: str
    message: str


class ValidationOut(msgspec.Struct):
    """The result of validating a definition without saving it."""

    valid: bool
    errors: list[Problem]


class ActionTypeOut(msgspec.Struct):
    """A registered action type and the JSON Schema of its config."""

    name: str
    kind: str
    plugin: str
    description: str
    config_schema: dict[str, Any]


class WorkflowController(Controller):
    path = "/workflows"
    tags = ["workflows"]

    @get("/schema", sync_to_thread=False, summary="The JSON Schema of a workflow definition")
    def schema(self, team: NamedDependency[TeamScope]) -> dict[str, Any]:
        return published_schema(team.engine.registry, max_actions=service.max_actions(team))

    @post(
        "/validate",
        sync_to_thread=False,
        status_code=200,
        summary="Validate a definition without saving it",
    )
    def validate(self, data: JSONBody[Document], team: NamedDependency[TeamScope]) -> ValidationOut:
        from server.core.definitions import validate

        problems = validate(data, team.engine.registry, max_actions=service.max_actions(team))
        return ValidationOut(
            valid=not problems, errors=[Problem(p.path, p.message) for p in problems]
        )

    @post(
        "/test",
        sync_to_thread=False,
        status_code=200,
        summary="Dry-run a workflow on a sample record",
    )
    def test(self, data: JSONBody[DryRunIn], team: NamedDependency[TeamScope]) -> DryRunOut:
        return dry_run(team, data)

    @post(
        "/",
        sync_to_thread=False,
        opt={"access": "admin"},
        summary="Create a workflow (or a new version of it)",
    )
    def create(
        self, data: JSONBody[Document], team: NamedDependency[TeamScope]
    ) -> Response[WorkflowOut]:
        workflow, created = service.save(team, data)
        return Response(workflow, status_code=201 if created else 200)

    @get("/", sync_to_thread=False, summary="List workflows")
    def list(
        self,
        team: NamedDependency[TeamScope],
        entity: FromQuery[str | None] = None,
        group: FromQuery[str | None] = None,
        enabled: FromQuery[bool | None] = None,
    ) -> list[WorkflowOut]:
        return service.list_(team, entity=entity, group=group, enabled=enabled)

    @get("/{key:str}", sync_to_thread=False, summary="Read a workflow")
    def read(self, key: FromPath[str], team: NamedDependency[TeamScope]) -> WorkflowOut:
        return service.get(team, key)

    @put(
        "/{key:str}",
        sync_to_thread=False,
        opt={"access": "admin"},
        summary="Save a new version of a workflow",
    )
    def update(
        self, key: FromPath[str], data: JSONBody[Document], team: NamedDependency[TeamScope]
    ) -> Response[WorkflowOut]:
        workflow, created = service.save(team, data, key=key)
        return Response(workflow, status_code=201 if created else 200)

    @delete(
        "/{key:str}",
        sync_to_thread=False,
        opt={"access": "admin"},
        summary="Delete a workflow and its versions",
    )
    def remove(self, key: FromPath[str], team: NamedDependency[TeamScope]) -> None:
        service.delete(team, key)

    @post(
        "/{key:str}/enable",
        sync_to_thread=False,
        opt={"access": "admin"},
        status_code=200,
        summary="Enable a workflow",
    )
    def enable(self, key: FromPath[str], team: NamedDependency[TeamScope]) -> WorkflowOut:
        return service.set_enabled(team, key, True)

    @post(
        "/{key:str}/disable",
        sync_to_thread=False,
        opt={"access": "admin"},
        status_code=200,
        summary="Disable a workflow",
    )
    def disable(self, key: FromPath[str], team: NamedDependency[TeamScope]) -> WorkflowOut:
        return service.set_enabled(team, key, False)

    @get("/{key:str}/versions", sync_to_thread=False, summary="A workflow's saved versions")
    def versions(self, key: FromPath[str], team: NamedDependency[TeamScope]) -> list[VersionOut]:
        return service.versions(team, key)

    @get("/{key:str}/versions/{number:int}", sync_to_thread=False, summary="One saved version")
    def version(
        self, key: FromPath[str], number: FromPath[int], team: NamedDependency[TeamScope]
    ) -> VersionOut:
        return service.version(team, key, number)


@get(
    "/actions",
    sync_to_thread=False,
    tags=["workflows"],
    summary="Action types and their config schemas",
)
def list_actions(team: NamedDependency[TeamScope]) -> list[ActionTypeOut]:
    registry = team.engine.registry
    return [
        ActionTypeOut(
            name=name,
            kind=action.kind,
            plugin=registry.action_plugins[name],
            description=action.description,
            config_schema=dict(action.config_schema),
        )
        for name, action in sorted(registry.actions.items())
    ]
