"""``dealflow hooks secret``: manage a team's webhook signing secrets."""

from __future__ import annotations

from typing import Any


def add_commands(commands: Any) -> None:
    """Register the ``hooks`` command."""
    del commands
