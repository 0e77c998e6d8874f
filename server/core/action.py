"""The action types plugins register, and what an action is handed when it runs."""

from __future__ import annotations

import datetime as dt
import email.utils
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ActionKind = Literal["record", "side_effect"]


@dataclass(frozen=True)
class ActionContext:
    """Everything an action may read while it runs or previews.

    ``document`` is the condition context (``record``, ``previous``, ``changed``, ``event``,
    ``team``, ``payload``). ``idempotency_key`` is stable across retries of one execution:
    pass it downstream (e.g. as an ``Idempotency-Key`` header) so a retry never acts twice.
    ``credentials`` is the team's decrypted set named by ``Action.credentials`` when a
    side-effect execution runs, and empty otherwise (dry-run previews never get the values).
    """

    team_id: int
    workflow_id: str
    workflow_version: int
    action_index: int
    document: Mapping[str, Any]
    idempotency_key: str = ""
    settings: Any = None
    credentials: Mapping[str, str] = field(default_factory=dict)
    template_filters: Mapping[str, Callable[..., Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Action:
    """An action type.

    ``execute(config, context)`` does the work. A ``record`` action returns the field changes
    to make (``{"probability": 70, "custom.relationship": "high"}``), applied in the
    transaction of the change that triggered it. A ``side_effect`` action runs after commit
    on a worker and returns a JSON-able result to record. ``preview(config, context)``
    returns what ``execute`` would do (the changes, the rendered message, the HTTP body)
    without doing it. ``config_schema`` is the JSON Schema of the action's config: the
    action's object in a workflow minus its ``type``. ``credentials`` names the team
    credential set the action reads (see the field).
    """

    name: str
    kind: ActionKind
    config_schema: Mapping[str, Any]
    execute: Callable[[Mapping[str, Any], ActionContext], Any]
    preview: Callable[[Mapping[str, Any], ActionContext], Any] | None = None
    check: Callable[[Mapping[str, Any]], list[tuple[str, str]]] | None = None
    """Save-time checks beyond the schema (expressions, templates): ``(config path, message)``
    pairs, empty when the config is fine."""
    description: str = ""
    max_attempts: int = 5
    """Attempts before a failing side-effect execution is dead."""
    credentials: str | None = None
    """The name of the team credential set a side-effect action reads (``"slack"``), which an
    admin stores with ``PUT /api/v1/team/credentials/slack``. When set, each execution gets
    the team's decrypted values as ``context.credentials``; a team without the set makes the
    execution dead at once. Every value is replaced by ``••••`` in the recorded result,
    error and logs. None: the action needs no credentials."""


class ActionError(Exception):
    """Raised by an action that failed; retried (for side effects) unless ``permanent``."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


def retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from an HTTP ``Retry-After`` header (delay-seconds or an HTTP date),
    never negative; None when there is none or it cannot be read. For ``ActionError``'s
    ``retry_after``."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None
