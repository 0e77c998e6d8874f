"""HTTP endpoints for the caller's team settings."""

from __future__ import annotations

from litestar import Controller, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from server.core.scope import TeamScope
from server.core.services import teams as service
from server.core.services.teams import TeamOut, TeamUpdate


class TeamController(Controller):
    path = "/team"
    tags = ["team"]

    @get("/", sync_to_thread=False, summary="Read the team's settings and field domains")
    def read(self, team: NamedDependency[TeamScope]) -> TeamOut:
        return service.out(team)

    @put(
        "/",
        sync_to_thread=False,
        opt={"access": "admin"},
        summary="Change the team's settings and field domains",
    )
    def update(self, data: JSONBody[TeamUpdate], team: NamedDependency[TeamScope]) -> TeamOut:
        return service.update(team, data)
