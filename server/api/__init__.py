"""The HTTP API under ``/api/v1``: thin controllers over the core services."""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide

from server.api.analytics import AnalyticsController
from server.api.auth import provide_scope
from server.api.contacts import ContactController
from server.api import audit, credentials, executions, hook_secrets, hooks, keys
from server.api.deals import DealController
from server.api.forecast import ForecastController
from server.api.groups import GroupController
from server.api.leads import LeadController
from server.api.lists import ListController
from server.api.outreach import OutreachController
from server.api.runs import RunController
from server.api.team import TeamController
from server.api.workflows import WorkflowController, list_actions

__all__ = ["api_router"]


def api_router() -> Router:
    return Router(
        path="/api/v1",
        route_handlers=[
            OutreachController,
            ContactController,
            DealController,
            LeadController,
            ListController,
            TeamController,
            *credentials.HANDLERS,
            *keys.HANDLERS,
            *hook_secrets.HANDLERS,
            WorkflowController,
            RunController,
            GroupController,
            ForecastController,
            AnalyticsController,
            list_actions,
            *executions.HANDLERS,
            *hooks.HANDLERS,
            *audit.HANDLERS,
        ],
        dependencies={"team": Provide(provide_scope)},
        security=[{"BearerAuth": []}],
    )
