"""What one change may still cause: follow-up events and side-effect executions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.settings import Settings

DEFAULTS = Settings()
"""Where the limits come from when the engine is given no settings (tests, embedding)."""


@dataclass
class Budget:
    """The limits of one change (a save, a webhook delivery, a schedule occurrence) and what
    its cascade has used of them so far. A deliberately recursive set of workflows (a
    self-loop, a ping-pong, a wide fan-out) runs into one of these and stops there."""

    max_events: int
    """``DEALFLOW_MAX_EVENTS_PER_CHANGE``: follow-up events the change may cause."""
    max_executions: int
    """``DEALFLOW_MAX_EXECUTIONS_PER_CHANGE``: side-effect executions it may queue."""
    events: int = 0
    executions: int = 0

    @classmethod
    def of(cls, settings: Any) -> Budget:
        """A fresh budget under ``settings``' limits (the defaults for None)."""
        return cls(
            max_events=getattr(settings, "max_events_per_change", DEFAULTS.max_events_per_change),
            max_executions=getattr(
                settings, "max_executions_per_change", DEFAULTS.max_executions_per_change
            ),
        )

    def take_event(self) -> bool:
        """Count one more follow-up event; False (and nothing counted) past the limit."""
        if self.events >= self.max_events:
            return False
        self.events += 1
        return True

    def take_execution(self) -> bool:
        """Count one more side-effect execution; False (and nothing counted) past the limit."""
        if self.executions >= self.max_executions:
            return False
        self.executions += 1
        return True


def refused_execution(limit: int) -> str:
    """The error recorded on a side effect refused by the execution limit."""
    return (
        f"refused: this change already queued {limit} side-effect executions, the limit "
        "(DEALFLOW_MAX_EXECUTIONS_PER_CHANGE)"
    )


__all__ = ["Budget", "refused_execution"]
