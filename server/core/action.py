"""The action types plugins register, and what an action is handed when it runs."""

from __future__ import annotations

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
    action's object in a workflow minus its ``type``.
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


class ActionError(Exception):
    """Raised by an action that failed; retried (for side effects) unless ``permanent``."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
