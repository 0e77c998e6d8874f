"""``score_threshold``: a numeric field crossed a threshold, once per crossing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from server.core.change import Change
from server.triggers.base import Trigger


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class ScoreThreshold(Trigger):
    name = "score_threshold"
    config_schema = {
        "field": {
            "type": "string",
            "minLength": 1,
            "description": "Numeric field (default score).",
        },
        "threshold": {"type": "number"},
        "direction": {
            "enum": ["up", "down"],
            "description": "Crossing upward (default) or downward.",
        },
    }
    required = ("threshold",)

    def relevant(self, change: Change) -> bool:
        return change.entity is not None and change.op in ("created", "updated")

    def fires(self, config: Mapping[str, Any], change: Change) -> bool:
        field = config.get("field", "score")
        if change.op == "updated" and field not in change.changed:
            return False
        threshold = float(config["threshold"])
        new = _number((change.record or {}).get(field))
        old = _number((change.previous or {}).get(field)) if change.previous else None
        if new is None:
            return False
        if config.get("direction", "up") == "up":
            # Created at or above the threshold counts as crossing it from nothing.
            return new >= threshold and (old is None or old < threshold)
        return new < threshold and old is not None and old >= threshold


TRIGGER = ScoreThreshold()
