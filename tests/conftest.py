"""Shared fixtures: a real SQLite file and a real PostgreSQL database for every data test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from server.core.db import make_engine, make_session_factory, normalize_url, transaction
from server.core.models import Base
from server.core.services.teams import create_team
from server.migrations import upgrade

PG_HOST = os.environ.get("DEALFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
INSTALL_HINT = (
    "the tests need PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) or DATABASE_URL "
    "pointing at one: on Debian/Ubuntu `sudo apt-get install -y postgresql` and start it "
    "(`make test` does this for you)"
)


def _admin_engine() -> Engine:
    engine = make_engine(PG_HOST).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means the server is not usable
        pytest.fail(
            f"PostgreSQL is not reachable ({exc.__class__.__name__}: {exc}); {INSTALL_HINT}",
            pytrace=False,
        )
    return engine


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database for this test session: DATABASE_URL, or one made and dropped here."""
    given = os.environ.get("DATABASE_URL", "")
    if given.startswith(("postgres://", "postgresql")):
        engine = make_engine(given)
        upgrade(engine)
        engine.dispose()
        yield normalize_url(given)
        return
    admin = _admin_engine()
    name = f"dealflow_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalize_url(PG_HOST)).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrated_sqlite(directory: Path) -> str:
    path = directory / "dealflow.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return f"sqlite:///{path}"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database per backend for the whole session; tests empty it before they run."""
    if request.param == "sqlite":
        return _migrated_sqlite(tmp_path_factory.mktemp("sqlite"))
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def shared_engine(database: str) -> Iterator[Engine]:
    engine = make_engine(database)
    yield engine
    engine.dispose()


def _empty(engine: Engine) -> None:
    """Delete every row (ids restart at 1 on both backends)."""
    tables = Base.metadata.sorted_tables
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                conn.execute(table.delete())


@pytest.fixture
def db_url(database: str, shared_engine: Engine) -> str:
    """The URL of an empty, migrated database: each test runs once on SQLite and once on PostgreSQL."""
    _empty(shared_engine)
    return database


@pytest.fixture
def engine(db_url: str, shared_engine: Engine) -> Engine:
    return shared_engine


@dataclass
class TeamKey:
    """A team made for a test, with its admin's id and API key."""

    team_id: int
    user_id: int
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def make_team(engine: Engine):  # type: ignore[no-untyped-def]
    """Create a team (with an admin and an API key) by name."""
    factory = make_session_factory(engine)

    def make(name: str = "Acme", timezone: str = "UTC") -> TeamKey:
        with transaction(factory) as session:
            team, user, key = create_team(
                session, name, admin_email=f"admin@{name.lower()}.test", timezone=timezone
            )
            return TeamKey(team.id, user.id, key)

    return make
