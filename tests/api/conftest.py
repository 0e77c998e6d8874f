"""API fixtures: the real app on the test database, and a client per team."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine

from server.app import create_app
from server.settings import Settings


@pytest.fixture
def app(engine: Engine, db_url: str) -> Litestar:
    return create_app(Settings(database_url=db_url, max_body_size=64 * 1024), engine=engine)


@pytest.fixture
def client(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def team(make_team):  # type: ignore[no-untyped-def]
    """Team A, whose key most tests use."""
    return make_team("Acme")


@pytest.fixture
def api(client: TestClient[Litestar], team) -> TestClient[Litestar]:  # type: ignore[no-untyped-def]
    """A client that sends team A's key."""
    client.headers.update(team.headers)
    return client
