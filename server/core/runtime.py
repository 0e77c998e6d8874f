"""The per-process runtime: plugin registry, workflow engine, broker and runner."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from dramatiq import Broker
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from server.core.broker import make_broker
from server.core.db import Checkpointer, make_engine, make_session_factory
from server.core.engine import WorkflowEngine, hand_over_after_commit
from server.core.errors import ConfigError
from server.core.models import utcnow
from server.core.plugins import Registry, load_registry
from server.core.runner import Runner
from server.settings import Settings, load_settings
from server.triggers.schedule import Scheduler
from server.triggers.schedule.scanner import Clock

Role = Literal["serve", "worker"]


@dataclass
class Runtime:
    """Everything a server, worker or CLI process needs to save records and run workflows."""

    settings: Settings
    db: Engine
    sessions: sessionmaker[Session]
    registry: Registry
    engine: WorkflowEngine
    broker: Broker
    runner: Runner
    scheduler: Scheduler
    checkpointer: Checkpointer

    def start(self) -> None:
        """Start the relay (and the worker) and take up what an earlier process left; start
        scanning for due schedule occurrences; checkpoint SQLite's log in the background."""
        self.checkpointer.start()
        self.runner.start()
        self.scheduler.start()

    def close(self) -> None:
        self.scheduler.close()
        self.runner.close()
        self.checkpointer.close()


def build_runtime(
    settings: Settings,
    db: Engine | None = None,
    *,
    role: Role = "serve",
    backoff_base: float = 1.0,
    clock: Clock = utcnow,
) -> Runtime:
    """Wire the registry, the engine, the broker and the runner for ``settings``.

    A server performs side effects itself unless ``REDIS_URL`` is set (then ``dealflow
    worker`` processes do); a worker needs Redis. Both scan for due schedule occurrences
    every ``schedule_interval`` seconds, reading the time from ``clock``.
    """
    if role == "worker" and not settings.redis_url:
        raise ConfigError(
            "dealflow worker needs REDIS_URL (the broker workers share); without it, "
            "dealflow serve performs side effects in-process"
        )
    db = db or make_engine(settings.database_url)
    sessions = make_session_factory(db)
    registry = load_registry(tuple(settings.plugins_disable))
    registry.pm.hook.dealflow_startup(settings=settings)
    engine = WorkflowEngine(registry, settings)
    broker = make_broker(settings.redis_url)
    runner = Runner(
        sessions,
        registry,
        settings,
        broker,
        worker=role == "worker" or not settings.redis_url,
        backoff_base=backoff_base,
    )
    hand_over_after_commit(sessions, runner.submit, runner.notify)
    scheduler = Scheduler(sessions, engine, settings.schedule_interval, clock)
    return Runtime(
        settings, db, sessions, registry, engine, broker, runner, scheduler, Checkpointer(db)
    )


@lru_cache(maxsize=1)
def default_engine() -> WorkflowEngine:
    """An engine for code that saves records outside a server (the CLI, the demo loader)."""
    settings = load_settings()
    registry = load_registry(tuple(settings.plugins_disable))
    registry.pm.hook.dealflow_startup(settings=settings)
    return WorkflowEngine(registry, settings)
