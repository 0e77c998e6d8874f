"""Real processes for the fault tests: a throwaway redis-server, `dealflow serve` and
`dealflow worker` subprocesses, killed with SIGKILL as a crash would."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from conftest import _empty
from server.core.db import make_engine

DEALFLOW = [sys.executable, "-m", "server.cli"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Process:
    """A subprocess in its own process group, its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        return self

    def kill(self) -> None:
        """SIGKILL the whole group: no shutdown code runs, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class RedisServer(Process):
    """A redis-server of the test's own, on a fixed port so it can be stopped and started."""

    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "the fault tests need redis-server: on Debian/Ubuntu `sudo apt-get install -y "
                "redis-server` (`make test` does this for you)",
                pytrace=False,
            )
        self.port = free_port()
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(tmp)]
        super().__init__("redis", command, dict(os.environ), tmp / "redis.log")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        super().start()
        wait_until(lambda: _listening(self.port), 10, f"redis-server on {self.port}")
        return self


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_until(check: Callable[[], Any], timeout: float, what: str, *logs: Process) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    detail = "".join(f"\n--- {p.name} log ---\n{p.output()[-3000:]}" for p in logs)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{detail}")


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
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    yield server
    server.kill()


@pytest.fixture
def cluster(tmp_path: Path, pg_engine: Engine, postgres_url: str, redis_server: RedisServer) -> Iterator[Cluster]:
    """Servers and workers on PostgreSQL and the test's own Redis."""
    cluster = Cluster(tmp_path, postgres_url, redis_server)
    yield cluster
    cluster.close()
