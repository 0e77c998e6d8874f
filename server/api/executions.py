"""``/api/v1/executions``: side-effect executions, dead letters and their retry."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter

from server.api.pages import Cursor, IdFilter, Limit, Page, page
from server.core.scope import TeamScope
from server.core.services import executions as service
from server.core.services.executions import STATUSES, ExecutionOut

Status = Annotated[
    str | None,
    QueryParameter(description="Only executions with this status: " + ", ".join(STATUSES) + "."),
]


class ExecutionController(Controller):
    path = "/executions"
    tags = ["executions"]

    @get("/", sync_to_thread=False, summary="List side-effect executions")
    def list(
        self,
        team: NamedDependency[TeamScope],
        limit: Limit = 50,
        cursor: Cursor = None,
        status: Status = None,
        workflow: FromQuery[str | None] = None,
        action_type: FromQuery[str | None] = None,
        run_id: IdFilter = None,
    ) -> Page[ExecutionOut]:
        return page(
            *service.list_(
                team,
                limit=limit,
                cursor=cursor,
                status=status,
                workflow=workflow,
                action_type=action_type,
                run_id=run_id,
            )
        )

    @get("/{execution_id:int}", sync_to_thread=False, summary="Read an execution and its attempts")
    def read(self, execution_id: FromPath[int], team: NamedDependency[TeamScope]) -> ExecutionOut:
        return service.get(team, execution_id)

    @post(
        "/{execution_id:int}/retry",
        sync_to_thread=False,
        opt={"access": "admin"},
        status_code=200,
        summary="Requeue a dead execution",
    )
    def retry(self, execution_id: FromPath[int], team: NamedDependency[TeamScope]) -> ExecutionOut:
        return service.retry(team, execution_id)


HANDLERS: list[object] = [ExecutionController]
