"""The public plugin API: everything a third-party plugin imports, from one module."""

from __future__ import annotations

import pluggy

from server.core import hookspecs
from server.core.action import Action, ActionContext, ActionError, ActionKind, retry_after
from server.core.outbound import OutboundRefused, RedirectRefused, check_url, http_client

hookimpl = pluggy.HookimplMarker("dealflow")
"""Decorate a plugin's hook implementations with this."""

__all__ = [
    "Action",
    "ActionContext",
    "ActionError",
    "ActionKind",
    "OutboundRefused",
    "RedirectRefused",
    "check_url",
    "hookimpl",
    "hookspecs",
    "http_client",
    "retry_after",
]
