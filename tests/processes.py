"""Real processes for tests: a throwaway redis-server of the test's own, and `dealflow`
subprocesses (`serve`, `worker`) in their own process groups, killed as a crash would."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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
                "these tests need redis-server: on Debian/Ubuntu `sudo apt-get install -y "
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
