"""``dealflow plugins list``: the installed plugins, their versions and what they register."""

from __future__ import annotations

import argparse
from importlib.metadata import entry_points
from typing import Any

from server.cli.common import settings, table


def _entry_points() -> dict[str, tuple[str, str]]:
    """Entry-point name → (distribution, version) for the ``dealflow.plugins`` group."""
    from server.core.plugins import ENTRY_POINT_GROUP

    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        found[ep.name] = (dist.name, dist.version) if dist is not None else ("-", "-")
    return found


def cmd_plugins_list(args: argparse.Namespace) -> int:
    from server import __version__
    from server.core.builtin import BUILTIN_PLUGINS
    from server.core.plugins import build_registry, get_plugin_manager

    config = settings()
    disabled = set(config.plugins_disable)
    registry = build_registry(get_plugin_manager(disabled))
    sources = _entry_points()
    rows = []
    for name, action in sorted(registry.actions.items()):
        plugin = registry.action_plugins[name]
        if plugin in BUILTIN_PLUGINS:
            plugin = "builtin"
        dist, version = sources.get(plugin, ("dealflow (built in)", __version__))
        rows.append(
            (name, action.kind, action.credentials or "-", plugin, dist, version,
             action.description or "")
        )
    print(table(("action", "kind", "credentials", "plugin", "package", "version", "description"), rows))
    filters = sorted(registry.template_filters)
    if filters:
        print(f"\ntemplate filters: {', '.join(filters)}")
    if disabled:
        listed = sorted(disabled & set(sources))
        if listed:
            print(f"disabled (DEALFLOW_PLUGINS_DISABLE): {', '.join(listed)}")
    return 0


def add_commands(commands: Any) -> None:
    """Register ``plugins list``."""
    plugins = commands.add_parser("plugins", help="installed plugins and their action types")
    sub = plugins.add_subparsers(dest="plugins_command", required=True, metavar="COMMAND")
    sub.add_parser(
        "list", help="action types with their plugin, package and version"
    ).set_defaults(func=cmd_plugins_list)
