"""Real processes for the fault tests: a throwaway redis-server, `dealflow serve` and
`dealflow worker` subprocesses, killed with SIGKILL as a crash would."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from conftest import _empty
from processes import DEALFLOW, Process, RedisServer, free_port, wait_until
from server.core.db import make_engine

__all__ = ["DEALFLOW", "Cluster", "Process", "RedisServer", "free_port", "wait_until"]


class Cluster:
    """Servers and workers sharing one database (and Redis, when given)."""

    def __init__(self, tmp: Path, database_url: str, redis: RedisServer | None) -> None:
        self.tmp = tmp
        self.database_url = database_url
        self.redis = redis
        self.processes: list[Process] = []
        self.port = free_port()

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(
            DATABASE_URL=self.database_url,
            DEALFLOW_RELAY_INTERVAL="0.2",
            DEALFLOW_EXECUTION_LEASE_SECONDS="3",
            DEALFLOW_WORKER_THREADS="4",
            DEALFLOW_OUTBOUND_ALLOW="127.0.0.1",
            PYTHONUNBUFFERED="1",
        )
        if self.redis is not None:
            env["REDIS_URL"] = self.redis.url
        env.update(extra)
        return env

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def server(self) -> Process:
        n = sum(p.name.startswith("server") for p in self.processes)
        command = [*DEALFLOW, "serve", "--port", str(self.port), "--log-level", "warning"]
        proc = Process(f"server{n}", command, self.env(), self.tmp / f"server{n}.log").start()
        self.processes.append(proc)
        wait_until(self._healthy, 30, "the server to answer /healthz", proc)
        return proc

    def worker(self) -> Process:
        n = sum(p.name.startswith("worker") for p in self.processes)
        command = [*DEALFLOW, "worker", "--processes", "1"]
        proc = Process(f"worker{n}", command, self.env(), self.tmp / f"worker{n}.log").start()
        self.processes.append(proc)
        wait_until(lambda: "threads on" in proc.output(), 30, "the worker to start", proc)
        return proc

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def logs(self) -> str:
        return "".join(f"\n--- {p.name} ---\n{p.output()[-4000:]}" for p in self.processes)

    def close(self) -> None:
        for proc in self.processes:
            proc.kill()


@pytest.fixture
def pg_engine(postgres_url: str) -> Iterator[Engine]:
    """The session's PostgreSQL database, emptied; the processes under test share it."""
    engine = make_engine(postgres_url)
    _empty(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def cluster(tmp_path: Path, pg_engine: Engine, postgres_url: str, redis_server: RedisServer) -> Iterator[Cluster]:
    """Servers and workers on PostgreSQL and the test's own Redis."""
    cluster = Cluster(tmp_path, postgres_url, redis_server)
    yield cluster
    cluster.close()
