"""The per-process runtime: plugin registry, workflow engine and side-effect runner."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from server.core.db import make_engine, make_session_factory
from server.core.engine import WorkflowEngine, hand_over_after_commit
from server.core.plugins import Registry, load_registry
from server.core.runner import InProcessRunner
from server.settings import Settings, load_settings


SWEEP_SECONDS = 30.0
"""How often a serving process looks for executions that are due or were abandoned."""


@dataclass
class Runtime:
    """Everything a server, worker or CLI process needs to save records and run workflows."""

    settings: Settings
    db: Engine
    sessions: sessionmaker[Session]
    registry: Registry
    engine: WorkflowEngine
    runner: InProcessRunner

    def start(self) -> None:
        """Start the runner and take up executions left pending by an earlier process."""
        self.runner.start(sweep_seconds=SWEEP_SECONDS)
        self.runner.recover()

    def close(self) -> None:
        self.runner.close()


def build_runtime(
    settings: Settings, db: Engine | None = None, *, backoff_base: float = 1.0
) -> Runtime:
    """Wire the registry, the engine and the in-process runner for ``settings``."""
    db = db or make_engine(settings.database_url)
    sessions = make_session_factory(db)
    registry = load_registry(tuple(settings.plugins_disable))
    registry.pm.hook.dealflow_startup(settings=settings)
    engine = WorkflowEngine(registry, settings)
    runner = InProcessRunner(sessions, registry, settings, backoff_base=backoff_base)
    hand_over_after_commit(sessions, runner.submit, runner.notify)
    return Runtime(settings, db, sessions, registry, engine, runner)


@lru_cache(maxsize=1)
def default_engine() -> WorkflowEngine:
    """An engine for code that saves records outside a server (the CLI, the demo loader)."""
    settings = load_settings()
    registry = load_registry(tuple(settings.plugins_disable))
    registry.pm.hook.dealflow_startup(settings=settings)
    return WorkflowEngine(registry, settings)
