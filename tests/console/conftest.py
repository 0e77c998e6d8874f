"""Console fixtures: the shipped workflows in team A, a signed-in browser-like client, members."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from server.core.db import make_session_factory, transaction
from server.core.models import Team
from server.core.scope import Actor, TeamScope
from server.core.services.teams import create_key, ensure_user
from server.core.starter import load_starter

from console.console_forms import sign_in

@pytest.fixture
def starter(app: Litestar, engine: Any, team: Any) -> None:
    """Team A with the shipped workflows (the deal-probability ladder among them)."""
    with make_session_factory(engine)() as session:
        load_starter(
            TeamScope(session, Actor(team.team_id, team.user_id), app.state.runtime.engine)
        )


@pytest.fixture
def member_key(engine: Any, team: Any) -> str:
    """An API key of a member (not an admin) of team A."""
    with transaction(make_session_factory(engine)) as session:
        user = ensure_user(
            session, session.get(Team, team.team_id), "rep@acme.test", name="Rep", role="member"
        )
        return create_key(session, user, name="member key")


@pytest.fixture
def console(client: TestClient[Litestar], team: Any) -> TestClient[Litestar]:
    """A client signed in to the console with team A's admin key."""
    assert sign_in(client, key=team.key).status_code == 303
    return client
