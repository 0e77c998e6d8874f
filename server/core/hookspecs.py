"""The plugin contract: every hook Dealflow calls, grouped by when it is called."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pluggy

from server.core.action import Action

hookspec = pluggy.HookspecMarker("dealflow")


# --- start-up -------------------------------------------------------------------------------


@hookspec
def dealflow_startup(settings: Any) -> None:
    """Called once when a server, worker or CLI process has loaded its plugins.

    ``settings`` is the process's :class:`server.settings.Settings`. Use it to read a
    plugin's own keys from ``settings.extra``. The return value is ignored.
    """


# --- registration ---------------------------------------------------------------------------


@hookspec
def dealflow_register_actions() -> Sequence[Action]:
    """Called at start-up to collect action types.

    Return a list of :class:`Action` objects (possibly empty). Every result is used; two
    actions with the same name stop start-up with an error naming both plugins.
    """


@hookspec
def dealflow_template_filters() -> Mapping[str, Callable[..., Any]]:
    """Called at start-up to collect Jinja2 filters for message templates.

    Return a mapping of filter name to function. Every result is used; a name given twice
    stops start-up with an error naming both plugins. Filters run inside the sandbox and
    receive plain values.
    """


# --- per event ------------------------------------------------------------------------------


@hookspec
def dealflow_event(event: Mapping[str, Any], team_id: int) -> None:
    """Called for each event after the change that caused it committed, off the request path.

    ``event`` is the document a workflow condition reads: ``record`` (after the change),
    ``previous`` (before it, or None), ``changed`` (field names), ``event`` (id, op, entity,
    record_id, source, depth, user_id), ``team`` and ``payload``. ``team_id`` is the event's
    team. The return value is ignored; an exception is logged, counts as delivered (it is
    not retried) and does not stop other plugins or the event's workflows.

    Delivery is at least once: whether some plugin listens is recorded with the event, in
    the transaction of the change. A process that dies before it called the hook, or before
    it recorded that it did, leaves the event to a relay of any server or worker, which
    calls it ``event_hook_lease_seconds`` later. So the same event may arrive twice (rarely):
    use ``event["event"]["id"]`` to drop repeats.
    """
