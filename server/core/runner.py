"""The in-process runner: performs side-effect executions after commit, with retries."""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import msgspec
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from server.core.action import ActionContext, ActionError
from server.core.models import ActionExecution, utcnow
from server.core.plugins import Registry

log = logging.getLogger("dealflow.runner")

FINISHED = ("succeeded", "dead")
LEASE_SECONDS = 300
"""How long a running execution is held before another runner may take it over."""


def backoff(attempt: int, base: float = 1.0, cap: float = 300.0) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): exponential with full jitter."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


class InProcessRunner:
    """Runs executions on a small thread pool in this process; failures retry with backoff.

    Executions are rows, so nothing is lost if the process dies: :meth:`recover` picks up
    every execution that is pending or due for a retry.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        registry: Registry,
        settings: Any = None,
        *,
        threads: int = 4,
        backoff_base: float = 1.0,
    ) -> None:
        self.factory = factory
        self.registry = registry
        self.settings = settings
        self.backoff_base = backoff_base
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._futures: set[Future[None]] = set()
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()
        self._closed = True
        self._stop = threading.Event()
        self.start()

    def start(self, sweep_seconds: float | None = None) -> None:
        """Accept work (again, after :meth:`close`); with ``sweep_seconds``, also take up due
        and abandoned executions that often (retries after a restart, other processes' rows)."""
        with self._lock:
            if self._closed:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.threads, thread_name_prefix="dealflow-action"
                )
                self._closed = False
                self._stop = threading.Event()
                if sweep_seconds:
                    threading.Thread(
                        target=self._sweep,
                        args=(sweep_seconds, self._stop),
                        daemon=True,
                        name="dealflow-sweep",
                    ).start()

    def _sweep(self, every: float, stop: threading.Event) -> None:
        while not stop.wait(every):
            try:
                self.recover()
            except Exception:  # noqa: BLE001 - the next sweep tries again
                log.exception("sweeping for due executions failed")

    def submit(self, execution_ids: Iterable[int]) -> None:
        """Run these executions soon (called after the commit that wrote them). While closed,
        nothing is lost: the rows stay pending and :meth:`recover` takes them up."""
        for execution_id in execution_ids:
            with self._lock:
                if self._closed or self._pool is None:
                    return
                future = self._pool.submit(self.run_one, execution_id)
                self._futures.add(future)
            future.add_done_callback(self._futures.discard)

    def notify(self, events: list[tuple[int, dict[str, Any]]]) -> None:
        """Call every plugin's ``dealflow_event`` hook for committed events, off the request."""
        with self._lock:
            if self._closed or self._pool is None:
                return
            future = self._pool.submit(self._call_event_hooks, events)
            self._futures.add(future)
        future.add_done_callback(self._futures.discard)

    def _call_event_hooks(self, events: list[tuple[int, dict[str, Any]]]) -> None:
        impls = self.registry.pm.hook.dealflow_event.get_hookimpls()
        for team_id, document in events:
            for impl in impls:
                # Each plugin in its own try: one broken plugin does not stop the others.
                try:
                    impl.function(event=document, team_id=team_id)
                except Exception:  # noqa: BLE001
                    log.exception("plugin %s failed in dealflow_event", impl.plugin_name)

    def recover(self) -> int:
        """Submit every execution that is pending, or failed and due; return how many."""
        with self.factory() as session:
            ids = session.scalars(
                select(ActionExecution.id).where(
                    ActionExecution.status.in_(("pending", "running", "failed")),
                    ActionExecution.next_attempt_at <= utcnow(),
                )
            ).all()
        self.submit(ids)
        return len(ids)

    def join(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is running or scheduled; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = [f for f in self._futures if not f.done()] or [
                    t for t in self._timers if t.is_alive()
                ]
            if not busy:
                return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        """Stop taking work and wait for what is running; scheduled retries stay in the database."""
        with self._lock:
            self._closed = True
            self._stop.set()
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=False)

    def _retry_later(self, execution_id: int, delay: float) -> None:
        timer = threading.Timer(delay, lambda: self.submit([execution_id]))
        timer.daemon = True
        with self._lock:
            if self._closed:
                return
            self._timers = {t for t in self._timers if t.is_alive()}
            self._timers.add(timer)
        timer.start()

    def claim(self, session: Session, execution_id: int) -> bool:
        """Mark the execution running, unless it finished or another runner holds a live lease."""
        now = utcnow()
        claimed = session.execute(
            update(ActionExecution)
            .where(
                ActionExecution.id == execution_id,
                ActionExecution.status.in_(("pending", "failed", "running")),
                (ActionExecution.status != "running") | (ActionExecution.next_attempt_at <= now),
            )
            .values(status="running", next_attempt_at=now + dt.timedelta(seconds=LEASE_SECONDS))
        ).rowcount
        session.commit()
        return bool(claimed)

    def run_one(self, execution_id: int) -> None:
        """Perform one execution once; a finished or claimed execution is left alone.

        A failure of the runner itself (the database went away mid-way) is logged; the
        execution keeps its lease and the next sweep takes it up again.
        """
        try:
            self._run_one(execution_id)
        except Exception:  # noqa: BLE001 - a pool thread has no caller to raise to
            log.exception("execution %s could not be run; the sweep will retry it", execution_id)

    def _run_one(self, execution_id: int) -> None:
        with self.factory() as session:
            if not self.claim(session, execution_id):
                return
            execution = session.get(ActionExecution, execution_id)
            if execution is None:
                return
            action = self.registry.action(execution.action_type)
            execution.attempts += 1
            attempt = execution.attempts
            started = time.perf_counter()
            entry: dict[str, Any] = {"attempt": attempt, "at": utcnow().isoformat()}
            retry_in: float | None = None
            try:
                if action is None:
                    raise ActionError(
                        f"action type {execution.action_type!r} is not registered", permanent=True
                    )
                context = ActionContext(
                    team_id=execution.team_id,
                    workflow_id=execution.workflow_key,
                    workflow_version=execution.workflow_version,
                    action_index=execution.action_index,
                    document=execution.document,
                    idempotency_key=execution.idempotency_key,
                    settings=self.settings,
                    template_filters=self.registry.template_filters,
                )
                result = action.execute(execution.config, context)
                execution.status = "succeeded"
                execution.result = msgspec.to_builtins(result) if result is not None else None
                execution.last_error = None
                entry["status"] = "succeeded"
            except Exception as exc:  # noqa: BLE001 - a plugin's failure is recorded, never fatal
                permanent = isinstance(exc, ActionError) and exc.permanent
                message = (
                    exc.message if isinstance(exc, ActionError) else f"{type(exc).__name__}: {exc}"
                )
                if not isinstance(exc, ActionError):
                    log.warning("action %s failed: %s", execution.action_type, message)
                limit = action.max_attempts if action else 1
                execution.last_error = message
                entry.update(status="error", error=message)
                if permanent or attempt >= limit:
                    execution.status = "dead"
                    execution.next_attempt_at = None
                else:
                    execution.status = "failed"
                    hint = exc.retry_after if isinstance(exc, ActionError) else None
                    retry_in = max(hint or 0.0, backoff(attempt, self.backoff_base))
                    execution.next_attempt_at = utcnow() + dt.timedelta(seconds=retry_in)
            entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
            execution.attempt_log = [*execution.attempt_log, entry]
            session.commit()
        if retry_in is not None:
            self._retry_later(execution_id, retry_in)
