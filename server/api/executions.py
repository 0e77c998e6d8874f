"""``/api/v1/executions``: side-effect executions, dead letters and their retry."""

from __future__ import annotations

HANDLERS: list[object] = []
