"""``/api/v1/hooks``: signed inbound webhooks."""

from __future__ import annotations

HANDLERS: list[object] = []
