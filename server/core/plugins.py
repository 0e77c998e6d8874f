"""The plugin manager: built-in actions and every ``dealflow.plugins`` entry point."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

import pluggy

from server.core import hookspecs
from server.core.action import Action
from server.core.builtin import BUILTIN_PLUGINS
from server.core.errors import ConfigError

ENTRY_POINT_GROUP = "dealflow.plugins"
log = logging.getLogger("dealflow.plugins")


def get_plugin_manager(disabled: Iterable[str] = ()) -> pluggy.PluginManager:
    """A plugin manager holding the built-ins and every entry point not in ``disabled``."""
    disabled = set(disabled)
    pm = pluggy.PluginManager("dealflow")
    pm.add_hookspecs(hookspecs)
    for module in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module), name=module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in disabled:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise ConfigError(f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        pm.register(plugin, name=ep.name)
    return pm


@dataclass
class Registry:
    """What the loaded plugins registered, with the plugin that registered each name."""

    pm: pluggy.PluginManager
    actions: dict[str, Action] = field(default_factory=dict)
    action_plugins: dict[str, str] = field(default_factory=dict)
    template_filters: dict[str, Callable[..., Any]] = field(default_factory=dict)

    def action(self, name: str) -> Action | None:
        return self.actions.get(name)


def _collect(pm: pluggy.PluginManager, hook_name: str) -> Iterable[tuple[str, Any]]:
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        result = impl.function()
        if result:
            yield impl.plugin_name, result


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Collect actions and template filters; a name registered twice is a start-up error."""
    registry = Registry(pm=pm)
    for plugin, actions in _collect(pm, "dealflow_register_actions"):
        for action in actions:
            if action.name in registry.actions:
                raise ConfigError(
                    f"action type {action.name!r} is registered by both "
                    f"{registry.action_plugins[action.name]!r} and {plugin!r}"
                )
            registry.actions[action.name] = action
            registry.action_plugins[action.name] = plugin
    owners: dict[str, str] = {}
    for plugin, filters in _collect(pm, "dealflow_template_filters"):
        for name, function in filters.items():
            if name in owners:
                raise ConfigError(
                    f"template filter {name!r} is registered by both {owners[name]!r} and {plugin!r}"
                )
            owners[name] = plugin
            registry.template_filters[name] = function
    return registry


@lru_cache(maxsize=8)
def load_registry(disabled: tuple[str, ...] = ()) -> Registry:
    """The process-wide registry for this set of disabled plugins."""
    return build_registry(get_plugin_manager(disabled))
