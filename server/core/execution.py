"""Performing one side-effect execution: claim it, run its action once, record the attempt.

Executions are rows written in the transaction of the change that caused them (the outbox).
Whoever receives an execution id — a dramatiq worker, in this process or another machine —
calls :func:`perform`. The claim is a conditional update, so an execution that succeeded,
died, or is held by a live worker is left alone: a message delivered twice acts once.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from server.core.action import ActionContext, ActionError
from server.core.models import ActionExecution, utcnow
from server.core.outbound import hops
from server.core.plugins import Registry
from server.core.services.credentials import MASK, missing_message
from server.core.services.credentials import load as load_credentials

log = logging.getLogger("dealflow.execution")

MAX_RETRY_DELAY = 3600.0
"""The longest wait before a retry, whatever ``Retry-After`` an action reported."""
RECORD_TRIES = 6
"""Attempts at recording an outcome when the database fails (0.5 s, 1 s, … apart): an
action that was performed must not be performed again for want of a commit."""


def backoff(attempt: int, base: float = 1.0, cap: float = 300.0) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): exponential with full jitter."""
    # The exponent is bounded so that an action type allowing a thousand attempts or more
    # waits the cap rather than overflowing a float (which left its execution unrecorded).
    return random.uniform(0, min(cap, base * 2.0 ** min(attempt - 1, 1000)))


def claimable(now: dt.datetime) -> ColumnElement[bool]:
    """Executions a worker may start now: never started, or due again (a retry whose time
    came, a lease that ran out because its worker died)."""
    return or_(
        ActionExecution.status.in_(("pending", "queued")),
        and_(
            ActionExecution.status.in_(("failed", "running")),
            ActionExecution.next_attempt_at <= now,
        ),
    )


def claim(session: Session, execution_id: int, lease_seconds: float) -> ActionExecution | None:
    """Mark the execution running under a lease and return it (``attempts`` counts this
    attempt), in one statement; None when it is finished, not due, or held by another worker."""
    now = utcnow()
    execution = session.scalars(
        update(ActionExecution)
        .where(ActionExecution.id == execution_id, claimable(now))
        .values(
            status="running",
            attempts=ActionExecution.attempts + 1,
            next_attempt_at=now + dt.timedelta(seconds=lease_seconds),
        )
        .returning(ActionExecution),
        execution_options={"synchronize_session": False},
    ).first()
    session.commit()
    return execution


def scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` with every one of ``secrets`` replaced by ``••••`` in its strings, through
    dicts (keys too) and lists: what an action returned or raised, before it is recorded or
    logged. ``secrets`` are longest first, so a value containing another goes whole."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {scrub(k, secrets): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(item, secrets) for item in value]
    return value


def secret_values(credentials: Mapping[str, str]) -> list[str]:
    """The values :func:`scrub` hides, longest first. Values under 4 characters are left
    out: replacing them would garble every message and hide little."""
    return sorted({v for v in credentials.values() if len(v) >= 4}, key=len, reverse=True)


@dataclass(frozen=True)
class Attempt:
    """What one attempt ended in: ``succeeded``, ``failed`` (retry in ``retry_in`` seconds)
    or ``dead``."""

    status: str
    retry_in: float | None = None


def sent_hops(document: Mapping[str, Any] | None) -> int:
    """The ``Dealflow-Hops`` a side effect's requests carry: its event's depth, plus one."""
    depth = ((document or {}).get("event") or {}).get("depth")
    return (depth if isinstance(depth, int) and not isinstance(depth, bool) else 0) + 1


def perform(
    factory: sessionmaker[Session],
    registry: Registry,
    settings: Any,
    execution_id: int,
    *,
    backoff_base: float = 1.0,
) -> Attempt | None:
    """Run execution ``execution_id`` once if it can be claimed (None when there was nothing
    to do). Database failures propagate to the caller, whose message the broker then
    retries; the action's own failures are recorded on the execution."""
    lease = float(getattr(settings, "execution_lease_seconds", 300))
    with factory() as session:
        execution = claim(session, execution_id, lease)
        if execution is None:
            return None
        attempt = execution.attempts
        lease_until = execution.next_attempt_at
        action = registry.action(execution.action_type)
        started = time.perf_counter()
        entry: dict[str, Any] = {"attempt": attempt, "at": utcnow().isoformat()}
        values: dict[str, Any]
        retry_in: float | None = None
        secrets: list[str] = []
        try:
            if action is not None and attempt > action.max_attempts:
                # Earlier attempts were claimed and never recorded: their workers died in
                # the action (killed, out of memory). Running it again would likely kill
                # another one; stop here, where an operator can see it.
                raise ActionError(
                    f"the worker performing it was lost {attempt - 1} times "
                    f"(max_attempts {action.max_attempts}); retry it once the cause is fixed",
                    permanent=True,
                )
            if action is None:
                raise ActionError(
                    f"action type {execution.action_type!r} is not registered", permanent=True
                )
            credentials: Mapping[str, str] = {}
            if action.credentials:
                loaded = load_credentials(
                    session, execution.team_id, action.credentials, settings
                )
                if loaded is None:
                    raise ActionError(missing_message(action.credentials), permanent=True)
                credentials, secrets = loaded, secret_values(loaded)
            context = ActionContext(
                team_id=execution.team_id,
                workflow_id=execution.workflow_key,
                workflow_version=execution.workflow_version,
                action_index=execution.action_index,
                document=execution.document,
                idempotency_key=execution.idempotency_key,
                settings=settings,
                credentials=credentials,
                template_filters=registry.template_filters,
            )
            # Its requests say how deep a chain led here: a hook they reach stops it in time.
            with hops(sent_hops(execution.document)):
                result = action.execute(execution.config, context)
            values = {
                "status": "succeeded",
                "result": scrub(msgspec.to_builtins(result), secrets)
                if result is not None
                else None,
                "last_error": None,
                "next_attempt_at": None,
            }
            entry["status"] = "succeeded"
        except Exception as exc:  # noqa: BLE001 - a plugin's failure is recorded, never fatal
            permanent = isinstance(exc, ActionError) and exc.permanent
            message = exc.message if isinstance(exc, ActionError) else f"{type(exc).__name__}: {exc}"
            # Scrubbed before it is logged or recorded: plugins put tokens in messages.
            message = scrub(message, secrets)
            if not isinstance(exc, ActionError):
                log.warning("action %s failed: %s", execution.action_type, message)
            limit = action.max_attempts if action else 1
            entry.update(status="error", error=message)
            values = {"last_error": message}
            if permanent or attempt >= limit:
                values.update(status="dead", next_attempt_at=None)
                entry["outcome"] = "dead"
            else:
                hint = exc.retry_after if isinstance(exc, ActionError) else None
                retry_in = min(MAX_RETRY_DELAY, max(hint or 0.0, backoff(attempt, backoff_base)))
                values.update(
                    status="failed", next_attempt_at=utcnow() + dt.timedelta(seconds=retry_in)
                )
                entry["retry_in_s"] = round(retry_in, 3)
        entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        values["attempt_log"] = [*execution.attempt_log, entry]
        values["updated_at"] = utcnow()
        statement = (
            update(ActionExecution)
            .where(
                ActionExecution.id == execution_id,
                ActionExecution.status == "running",
                ActionExecution.attempts == attempt,
                ActionExecution.next_attempt_at == lease_until,  # still this claim's lease
            )
            .values(**values)
        )
        recorded = _record(session, statement, execution_id)
        if not recorded:
            log.warning(
                "execution %s attempt %s outlived its lease; another worker took it over",
                execution_id,
                attempt,
            )
        return Attempt(str(values["status"]), retry_in)


def _record(session: Session, statement: Any, execution_id: int) -> int:
    """Execute and commit the outcome's update, trying again while the database fails."""
    for n in range(RECORD_TRIES):
        try:
            count = int(session.execute(statement).rowcount)
            session.commit()
            return count
        except DBAPIError:
            session.rollback()
            if n == RECORD_TRIES - 1:
                raise
            log.warning("recording execution %s failed; trying again", execution_id, exc_info=True)
            time.sleep(0.5 * 2**n)
    raise AssertionError("unreachable")


def due_ids(session: Session, now: dt.datetime, redelivery_seconds: float, limit: int) -> list[int]:
    """Executions the relay should hand to the broker now (see :func:`dispatchable`)."""
    return list(
        session.scalars(
            select(ActionExecution.id)
            .where(dispatchable(now, redelivery_seconds))
            .order_by(ActionExecution.id)
            .limit(limit)
        )
    )


def dispatchable(now: dt.datetime, redelivery_seconds: float) -> ColumnElement[bool]:
    """Executions with no live message on the broker: new ones, retries that came due,
    leases that ran out, and queued ones no worker took up within ``redelivery_seconds``."""
    return or_(
        ActionExecution.status == "pending",
        and_(
            ActionExecution.status.in_(("failed", "running")),
            ActionExecution.next_attempt_at <= now,
        ),
        and_(
            ActionExecution.status == "queued",
            ActionExecution.dispatched_at <= now - dt.timedelta(seconds=redelivery_seconds),
        ),
    )
