"""Shared fixtures: a real SQLite file and a real PostgreSQL database for every data test, the
real app and a client per team on it, and a real SMTP server (aiosmtpd on a local port)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from server.app import create_app
from server.core.db import make_engine, make_session_factory, normalize_url, transaction
from server.core.models import Base
from server.core.services.teams import create_team
from server.migrations import upgrade
from server.settings import Settings
from processes import RedisServer
from receiver import Receiver, start_receiver

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
                # The append-only audit log refuses DELETE: its rows go with their team.
                if table.name != "audit_log":
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


# --- the app ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def shared_app(database: str, shared_engine: Engine) -> Litestar:
    """One app per backend: building it is the slow part of a test's set-up."""
    return create_app(
        Settings(
            database_url=database,
            max_body_size=64 * 1024,
            secret_key="test-secret-key",
            outbound_allow=("127.0.0.1",),  # the tests' receivers
            # Off here: tests/api/test_rate_limits.py puts its own buckets in app.state.
            rate_limit_per_second=0,
        ),
        engine=shared_engine,
    )


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


# --- SMTP ------------------------------------------------------------------------------------


def _free_port() -> int:
    # aiosmtpd's Controller cannot take port 0, so ask the OS for a free port first.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def free_port() -> Callable[[], int]:
    """``free_port()`` gives a local port nothing listens on (for "cannot reach" cases)."""
    return _free_port


@dataclass
class SmtpRecorder:
    """An aiosmtpd handler keeping every envelope; refuses recipients listed in ``refuse``."""

    envelopes: list[Any] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def message(self, index: int = 0) -> Message:
        """The ``index``-th message received, parsed."""
        return message_from_bytes(self.envelopes[index].content)


@dataclass
class SmtpServer:
    """A running SMTP server: its recorder, its port and an SMTP_URL pointing at it."""

    recorder: SmtpRecorder
    port: int

    @property
    def envelopes(self) -> list[Any]:
        return self.recorder.envelopes

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on a free local port for the test, stopped afterwards."""
    server = SmtpServer(SmtpRecorder(), _free_port())
    controller = Controller(server.recorder, hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


# --- a recording HTTP server -----------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP server on 127.0.0.1 that records what side-effect actions sent it."""
    server = start_receiver()
    yield server
    server.close()


# --- Redis -----------------------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own on a free local port (never the machine's shared
    one), killed afterwards; ``redis_server.url`` is its REDIS_URL."""
    server = RedisServer(tmp_path).start()
    yield server
    server.kill()
