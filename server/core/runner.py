"""The runner: an outbox relay that hands executions to dramatiq, and (optionally) the
dramatiq worker that performs them.

Executions are rows written in the transaction of the change that caused them. After the
commit the relay sends one message per execution and marks them ``queued``; if the broker
is down, they stay ``pending``. Every ``relay_interval`` seconds it also sends what
no message stands for: executions left ``pending`` by a crash or an outage, retries that
came due, leases that ran out (a killed worker), queued ones whose message was lost. A
worker's claim is conditional, so the duplicates this may send act once.

The relay also delivers the ``dealflow_event`` hook for events a crashed process owed
(:mod:`server.core.notifications`), on the same rounds.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import dramatiq
from dramatiq import Broker
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from server.core.broker import ACTOR, QUEUE, in_memory
from server.core.execution import Attempt, dispatchable, due_ids, perform
from server.core.models import ActionExecution, utcnow
from server.core.notifications import Delivery, Notifier
from server.core.plugins import Registry

log = logging.getLogger("dealflow.runner")

SWEEP_BATCH = 500


class Runner:
    """Relay (always) and worker (``worker=True``) of one process.

    ``dealflow serve`` without ``REDIS_URL`` runs both on an in-memory broker (the embedded
    default); with Redis, ``serve`` runs the relay and ``dealflow worker`` processes run the
    workers (and a relay of their own, so retries come due with no server running).
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        registry: Registry,
        settings: Any,
        broker: Broker,
        *,
        worker: bool = True,
        backoff_base: float = 1.0,
    ) -> None:
        self.factory = factory
        self.registry = registry
        self.settings = settings
        self.broker = broker
        self.with_worker = worker
        self.backoff_base = backoff_base
        self.interval = float(getattr(settings, "relay_interval", 1.0))
        self.redelivery = float(getattr(settings, "redelivery_seconds", 600))
        self.threads = int(getattr(settings, "worker_threads", 4))
        self.actor: dramatiq.Actor[[int], None] = dramatiq.Actor(
            self.perform,
            broker=broker,
            actor_name=ACTOR,
            queue_name=QUEUE,
            priority=0,
            options={},
        )
        self._handed: deque[int] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._relay: threading.Thread | None = None
        self._worker: dramatiq.Worker | None = None
        self._hooks: ThreadPoolExecutor | None = None
        self._futures: set[Future[Any]] = set()
        self.notifier = Notifier(factory, registry, settings)
        self._sweeping: Future[Any] | None = None
        self._next_due = float("inf")
        self._outage = False
        self.running = False

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the relay (and the worker); take up what an earlier process left behind."""
        with self._lock:
            if self.running:
                return
            # First what can fail (the database is away): a failed start leaves the runner
            # stopped, so that the next start tries again.
            if in_memory(self.broker):
                self._requeue_lost_messages()
            self.running = True
            self._stop = threading.Event()
            self._hooks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dealflow-hooks")
        if self.with_worker:
            # How long an idle worker thread waits for a message before it looks at its stop
            # flag: short in memory (a test server stops and starts often), longer on Redis.
            poll = 20 if in_memory(self.broker) else 1000
            self._worker = dramatiq.Worker(
                self.broker, worker_threads=self.threads, worker_timeout=poll
            )
            self._worker.start()
        self._relay = threading.Thread(
            target=self._loop, args=(self._stop,), daemon=True, name="dealflow-relay"
        )
        self._relay.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop relaying and let running actions finish (up to ``timeout`` seconds). What
        is left stays in the database for the next process."""
        with self._lock:
            if not self.running:
                return
            self.running = False
            self._stop.set()
            self._wake.set()
            hooks, self._hooks = self._hooks, None
            worker, self._worker = self._worker, None
        if self._relay is not None:
            self._relay.join(timeout)
        if worker is not None:
            worker.stop(timeout=int(timeout * 1000))
            # The worker leaves its middleware on the broker; a restarted runner adds another.
            self.broker.middleware = [
                m for m in self.broker.middleware if getattr(m, "worker", None) is not worker
            ]
        if hooks is not None:
            hooks.shutdown(wait=True)

    def _requeue_lost_messages(self) -> None:
        # An in-memory broker died with the process that queued these: send them again.
        # A message that is in fact still in some other live process acts once anyway.
        with self.factory() as session:
            session.execute(
                update(ActionExecution)
                .where(ActionExecution.status == "queued")
                .values(status="pending", dispatched_at=None)
            )
            session.commit()

    # --- the relay ------------------------------------------------------------------------

    def submit(self, execution_ids: Iterable[int]) -> None:
        """Hand over executions just committed (called after the commit; never blocks)."""
        self._handed.extend(execution_ids)
        self._wake.set()

    def recover(self) -> int:
        """Send everything that is due now; return how many messages were sent."""
        sent = 0
        while True:
            with self.factory() as session:
                ids = due_ids(session, utcnow(), self.redelivery, SWEEP_BATCH)
            if not ids:
                return sent
            done = self.dispatch(ids)
            sent += done
            if done < len(ids) or len(ids) < SWEEP_BATCH:
                return sent

    def dispatch(self, ids: list[int]) -> int:
        """Send a message for each execution, then mark the sent ones queued; return how
        many were sent. On a broker failure the unsent ones simply stay as they were.

        Sending first means a crash at any point leaves nothing unsent and marked: at worst
        a message goes out twice, and the claim makes the second act on nothing. The mark is
        conditional, so it never touches an execution a worker has already claimed."""
        sent: list[int] = []
        failure: Exception | None = None
        for execution_id in sorted(ids):
            try:
                self.actor.send(execution_id)
            except Exception as exc:  # noqa: BLE001 - the broker is down: retry next round
                failure = exc
                break
            sent.append(execution_id)
        if sent:
            now = utcnow()
            with self.factory() as session:
                session.execute(
                    update(ActionExecution)
                    .where(ActionExecution.id.in_(sent), dispatchable(now, self.redelivery))
                    .values(status="queued", dispatched_at=now)
                )
                session.commit()
        if failure is not None:
            if not self._outage:
                log.warning(
                    "broker unavailable (%s); %d executions stay pending until it is back",
                    failure,
                    len(ids) - len(sent),
                )
            self._outage = True
        elif sent:
            if self._outage:
                log.info("broker reachable again; pending executions are being sent")
            self._outage = False
        return len(sent)

    def _loop(self, stop: threading.Event) -> None:
        next_sweep = 0.0
        while not stop.is_set():
            self._wake.clear()
            handed = []
            while self._handed:
                handed.append(self._handed.popleft())
            try:
                if handed:
                    self.dispatch(handed)
                now = time.monotonic()
                if now >= next_sweep or now >= self._next_due:
                    self._next_due = float("inf")
                    next_sweep = now + self.interval
                    self._sweep_events()
                    self.recover()
            except Exception:  # noqa: BLE001 - the database is away; the next round retries
                log.exception("relaying executions failed; retrying in %.1f s", self.interval)
                next_sweep = time.monotonic() + self.interval
            wait = min(next_sweep, self._next_due) - time.monotonic()
            self._wake.wait(max(0.0, wait))

    # --- the worker -----------------------------------------------------------------------

    def perform(self, execution_id: int) -> None:
        """The dramatiq actor: perform one execution (at most once per claim)."""
        attempt: Attempt | None = perform(
            self.factory, self.registry, self.settings, execution_id, backoff_base=self.backoff_base
        )
        if attempt is not None and attempt.retry_in is not None:
            # Wake this process's relay when the retry comes due, not a sweep later.
            self._next_due = min(self._next_due, time.monotonic() + attempt.retry_in)
            self._wake.set()

    # --- the dealflow_event hook ----------------------------------------------------------

    def notify(self, events: list[Delivery]) -> None:
        """Call every plugin's ``dealflow_event`` hook for committed events, off the request
        (called right after the commit). Events this process cannot deliver (it is closed,
        it dies) stay owed in the database, and a relay delivers them later."""
        committed = self.notifier.clock()
        with self._lock:
            if self._hooks is None:
                return
            future = self._hooks.submit(self.notifier.deliver, events, committed)
            self._futures.add(future)
        future.add_done_callback(self._futures.discard)

    def _sweep_events(self) -> None:
        # Off the relay thread (a slow plugin must not hold up executions), one at a time.
        if not self.notifier.listening:
            return
        with self._lock:
            if self._hooks is None or (self._sweeping is not None and not self._sweeping.done()):
                return
            future = self._sweeping = self._hooks.submit(self._sweep_logged)
            self._futures.add(future)
        future.add_done_callback(self._futures.discard)

    def _sweep_logged(self) -> None:
        try:
            self.notifier.sweep(stopping=self._stop.is_set)
        except Exception:  # noqa: BLE001 - the database is away; the next round retries
            log.exception("delivering owed dealflow_event hooks failed; retrying next round")

    # --- for tests and the CLI ------------------------------------------------------------

    def join(self, timeout: float = 10.0) -> bool:
        """Wait until no execution is pending, queued, running or due for a retry within
        ``timeout`` and no event hook is running; False if ``timeout`` passed first. A closed
        runner does nothing more, so it only waits for nothing."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                busy = any(not f.done() for f in self._futures)
            if not busy and (not self.running or not self._handed and not self._unfinished(deadline)):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def _unfinished(self, deadline: float) -> bool:
        horizon = utcnow() + dt.timedelta(seconds=max(0.0, deadline - time.monotonic()))
        with self.factory() as session:
            count = session.scalar(
                select(func.count())
                .select_from(ActionExecution)
                .where(
                    or_(
                        ActionExecution.status.in_(("pending", "queued", "running")),
                        and_(
                            ActionExecution.status == "failed",
                            ActionExecution.next_attempt_at <= horizon,
                        ),
                    )
                )
            )
        return bool(count)

