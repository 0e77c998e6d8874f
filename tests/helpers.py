"""Helpers several test modules share: problem-detail assertions, the CLI runner."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient


def at(value: str) -> dt.datetime:
    """An ISO 8601 timestamp as an aware datetime."""
    parsed = dt.datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{value!r} has no offset"
    return parsed


def assert_problem(resp: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """A problem-details answer with this status, naming ``field`` when given; its body."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status
    if field is not None:
        assert body["field"] == field, body
        assert body["errors"][0]["field"] == field, body
    return body


# --- the `dealflow` command ----------------------------------------------------------------

DEALFLOW = Path(sys.executable).with_name("dealflow")
KEY_RE = re.compile(r"\bdfk_[A-Za-z0-9_-]{20,}")


@dataclass
class Cli:
    """Runs the real ``dealflow`` script in ``cwd`` with DATABASE_URL pointing at ``x.db`` there."""

    cwd: Path

    @property
    def db(self) -> Path:
        return self.cwd / "x.db"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.db}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEALFLOW_")}
        env["DATABASE_URL"] = self.url
        return env

    def __call__(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(DEALFLOW), *map(str, args)],
            check=False,
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ok(self, *args: str | Path) -> str:
        result = self(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        return result.stdout

    def fails(self, *args: str | Path) -> str:
        """Run a command that must fail cleanly; its stderr."""
        result = self(*args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        return result.stderr


@contextmanager
def api(url: str) -> Iterator[TestClient[Litestar]]:
    """The real app on the CLI's database."""
    from server.app import create_app
    from server.core.db import make_engine
    from server.settings import Settings

    engine = make_engine(url)
    try:
        with TestClient(create_app(Settings(database_url=url), engine=engine)) as client:
            yield client
    finally:
        engine.dispose()


def make_due(sessions: Any, execution_id: int) -> None:
    """Move an execution's next attempt to just now: the clock reached its retry's time."""
    from sqlalchemy import update

    from server.core.models import ActionExecution, utcnow

    with sessions() as session:
        session.execute(
            update(ActionExecution)
            .where(ActionExecution.id == execution_id)
            .values(next_attempt_at=utcnow() - dt.timedelta(milliseconds=1))
        )
        session.commit()
