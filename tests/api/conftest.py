"""API fixtures: the real app on the test database, and a client per team."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine

from server.app import create_app
from server.settings import Settings


@pytest.fixture(scope="session")
def shared_app(database: str, shared_engine: Engine) -> Litestar:
    """One app per backend: building it is the slow part of a test's set-up."""
    return create_app(Settings(database_url=database, max_body_size=64 * 1024), engine=shared_engine)


@pytest.fixture
def app(shared_app: Litestar, db_url: str) -> Iterator[Litestar]:
    runtime = shared_app.state.runtime
    runtime.engine.index.clear()  # ids restart with the emptied database
    yield shared_app
    # Side effects still running must not touch the next test's rows.
    assert runtime.runner.join(10), "side-effect executions still running after 10 s"


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
