"""Change: one saved record (or posted webhook), as the triggers and conditions see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Op = Literal["created", "updated", "deleted", "received", "scheduled"]
IGNORED = frozenset({"updated_at", "created_at", "contact"})
"""Keys :func:`diff` leaves out: timestamps, and the related contact (it follows ``contact_id``)."""


@dataclass
class Change:
    """A record after and before a save, the fields that changed, and where it came from.

    ``source`` is ``api`` for a save by a user or key, ``workflow`` for a save made by a
    workflow's record action (``depth`` counts those steps), ``webhook`` for a posted event
    (at the depth its ``Dealflow-Hops`` header gives: side effects that led to it),
    ``schedule`` for a due schedule occurrence (op ``scheduled``).
    """

    team_id: int
    entity: str | None
    op: Op
    record: dict[str, Any] | None
    previous: dict[str, Any] | None
    changed: list[str] = field(default_factory=list)
    payload: dict[str, Any] | None = None
    name: str | None = None
    """The hook name of a webhook event."""
    source: str = "api"
    depth: int = 0
    user_id: int | None = None

    @property
    def record_id(self) -> int | None:
        doc = self.record or self.previous
        return doc.get("id") if doc else None


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """Names of the fields that differ (``custom.x`` for custom fields), ignoring timestamps
    and the ``contact`` a document may carry (it follows ``contact_id``)."""
    if before is None or after is None:
        return sorted((after or before or {}).keys() - IGNORED)
    changed = []
    for key in after.keys() | before.keys():
        if key in IGNORED:
            continue
        if key == "custom":
            old, new = before.get("custom") or {}, after.get("custom") or {}
            changed += [f"custom.{k}" for k in old.keys() | new.keys() if old.get(k) != new.get(k)]
        elif before.get(key) != after.get(key):
            changed.append(key)
    return sorted(changed)
