"""``dealflow worker``: dramatiq worker processes that perform side-effect actions from Redis."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from server.cli.common import settings
from server.core.errors import ConfigError


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _serve_one(threads: int) -> int:
    from dataclasses import replace

    from server.core.runtime import build_runtime

    config = settings()
    if threads:
        config = replace(config, worker_threads=threads)
    runtime = build_runtime(config, role="worker")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    runtime.start()
    print(
        f"Dealflow worker {os.getpid()}: {config.worker_threads} threads on "
        f"{_redacted(config.redis_url or '')}, database {_redacted(config.database_url)}",
        flush=True,
    )
    try:
        while not stop.wait(1.0):
            pass
    finally:
        runtime.close()
        runtime.db.dispose()
    print(f"Dealflow worker {os.getpid()}: stopped", flush=True)
    return 0


def _supervise(processes: int, threads: int) -> int:
    """Start ``processes`` single-process workers and stop them all on SIGTERM/SIGINT."""
    command = [sys.executable, "-m", "server.cli", "worker", "--processes", "1"]
    if threads:
        command += ["--threads", str(threads)]
    children = [subprocess.Popen(command) for _ in range(processes)]
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        for n, child in enumerate(children):
            if child.poll() is not None:
                # A worker that died (killed, out of memory) is replaced: its executions
                # come back when their leases run out, and someone must take them.
                print(
                    f"Dealflow worker {child.pid} exited with {child.returncode}; starting another",
                    file=sys.stderr,
                    flush=True,
                )
                children[n] = subprocess.Popen(command)
    for child in children:
        if child.poll() is None:
            child.terminate()
    return max(child.wait() for child in children)


def cmd_worker(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not settings().redis_url:
        raise ConfigError(
            "dealflow worker needs REDIS_URL (the broker workers share); without it, "
            "dealflow serve performs side effects in-process"
        )
    if args.processes > 1:
        return _supervise(args.processes, args.threads)
    return _serve_one(args.threads)


def add_commands(commands: Any) -> None:
    """Register the ``worker`` command."""
    worker = commands.add_parser(
        "worker",
        help="perform side-effect actions from Redis (needs REDIS_URL; run any number)",
    )
    worker.add_argument("--processes", type=int, default=1, help="worker processes (default 1)")
    worker.add_argument(
        "--threads", type=int, default=0, help="threads per process (default DEALFLOW_WORKER_THREADS, 4)"
    )
    worker.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    worker.set_defaults(func=cmd_worker)
