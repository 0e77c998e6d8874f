"""Shared fixtures: a real SQLite file and a real PostgreSQL database for every data test."""

from __future__ import annotations

import os
import shutil
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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test instead of migrating again."""
    path = tmp_path_factory.mktemp("template") / "dealflow.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _truncate(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty, migrated database: each test runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "dealflow.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    _truncate(engine)
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


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
