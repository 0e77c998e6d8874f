"""``dealflow executions``: list side-effect executions and retry dead ones."""

from __future__ import annotations

from typing import Any


def add_commands(commands: Any) -> None:
    """Register the ``executions`` command."""
    del commands
