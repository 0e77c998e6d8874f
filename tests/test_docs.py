"""The documentation keeps up with the code: every hook, trigger and built-in action is in it,
and its examples are valid."""

from __future__ import annotations

import inspect
import json
import re
import sys
import tomllib
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.core import hookspecs
from server.core.action import ActionContext
from server.core.builtin import BUILTIN_PLUGINS
from server.core.definitions import validate
from server.core.plugins import build_registry, get_plugin_manager, load_registry
from server.settings import Settings
from server.triggers import TRIGGERS

DOCS = Path(__file__).resolve().parent.parent / "docs"
PLUGINS_MD = (DOCS / "plugins.md").read_text()
WORKFLOWS_MD = (DOCS / "workflows.md").read_text()

HOOKS = sorted(name for name in dir(get_plugin_manager().hook) if not name.startswith("_"))
BUILTIN_ACTIONS = sorted(
    name for name, plugin in load_registry().action_plugins.items() if plugin in BUILTIN_PLUGINS
)


def signature(function: Callable[..., Any]) -> str:
    """``name(arg: Type, ...) -> Return`` as the hookspec source spells it."""

    def text(annotation: Any) -> str:
        # Annotations are strings (postponed evaluation): show them as written.
        return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)

    sig = inspect.signature(function)
    params = []
    for param in sig.parameters.values():
        part = param.name
        if param.annotation is not param.empty:
            part += f": {text(param.annotation)}"
        if param.default is not param.empty:
            part += f" = {param.default!r}"
        params.append(part)
    result = "" if sig.return_annotation is sig.empty else f" -> {text(sig.return_annotation)}"
    return f"{function.__name__}({', '.join(params)}){result}"


def headings(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("#")]


def code_blocks(markdown: str, language: str) -> Iterator[str]:
    yield from re.findall(rf"^```{language}\n(.*?)^```", markdown, re.DOTALL | re.MULTILINE)


# --- plugins.md ------------------------------------------------------------------------------


def test_every_hook_is_found() -> None:
    assert HOOKS, "the plugin manager has no hooks: is server.core.hookspecs registered?"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_headed_by_its_signature(hook: str) -> None:
    spec = getattr(hookspecs, hook, None)
    assert spec is not None, f"{hook} is a hook but not a function of server.core.hookspecs"
    wanted = f"`{signature(spec)}`"
    assert any(wanted in line for line in headings(PLUGINS_MD)), (
        f"docs/plugins.md needs a section for the hook {hook}, headed: ### {wanted}"
    )


def test_the_plugin_example_loads_registers_and_previews(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given: the example's entry point and module, as docs/plugins.md shows them
    (toml,) = code_blocks(PLUGINS_MD, "toml")
    entry_points = tomllib.loads(toml)["project"]["entry-points"]["dealflow.plugins"]
    (python,) = [block for block in code_blocks(PLUGINS_MD, "python") if "@hookimpl" in block]
    module = types.ModuleType(entry_points["pingback"])
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(python, "docs/plugins.md", "exec"), module.__dict__)  # noqa: S102
    # When: registered beside the built-ins, as the entry point would be
    pm = get_plugin_manager()
    pm.register(module, name="pingback")
    registry = build_registry(pm)
    module.dealflow_startup(settings=Settings(extra={"pingback_base_url": "http://x"}))
    # Then: its action type and filter are there, its schema is enforced, its preview works
    assert registry.action_plugins["pingback"] == "pingback"
    assert registry.template_filters["money"](1234.5) == "1,234.50 EUR"
    workflow = {
        "id": "pingback-won",
        "name": "Ping the partner when a deal is won",
        "entity": "deal",
        "trigger": {"type": "stage_changed", "to": "won"},
        "actions": [{"type": "pingback", "path": "/deals/won", "note": "won"}],
    }
    assert validate(workflow, registry) == []
    workflow["actions"][0].pop("path")
    assert [str(p) for p in validate(workflow, registry)] == ["$.actions[0].path: is required"]
    context = ActionContext(
        team_id=1,
        workflow_id="pingback-won",
        workflow_version=1,
        action_index=0,
        document={"record": {"id": 7, "stage": "won"}},
    )
    preview = registry.actions["pingback"].preview({"path": "/deals/won"}, context)  # type: ignore[misc]
    assert preview == {
        "url": "http://x/deals/won",
        "body": {"workflow": "pingback-won", "record_id": 7, "stage": "won", "note": ""},
    }


# --- workflows.md ----------------------------------------------------------------------------


@pytest.mark.parametrize("action", BUILTIN_ACTIONS)
def test_every_builtin_action_is_documented(action: str) -> None:
    assert f"`{action}`" in WORKFLOWS_MD, f"docs/workflows.md does not mention the action {action}"


@pytest.mark.parametrize("trigger", sorted(TRIGGERS))
def test_every_trigger_is_documented(trigger: str) -> None:
    assert f"`{trigger}`" in WORKFLOWS_MD, (
        f"docs/workflows.md does not mention the trigger {trigger}"
    )


def _examples() -> list[dict[str, Any]]:
    found = []
    for block in code_blocks(WORKFLOWS_MD, "json"):
        value = json.loads(block)
        if isinstance(value, dict) and "trigger" in value and "actions" in value:
            found.append(value)
    return found


@pytest.mark.parametrize("example", _examples(), ids=lambda e: e["id"])
def test_workflow_examples_are_valid(example: dict[str, Any]) -> None:
    assert [str(p) for p in validate(example, load_registry())] == []


def test_every_trigger_has_an_example() -> None:
    shown = {example["trigger"]["type"] for example in _examples()}
    assert shown >= set(TRIGGERS), f"no example workflow for {sorted(set(TRIGGERS) - shown)}"


def test_every_setting_is_documented() -> None:
    from server.settings import _ENV_NAMES

    readme = (DOCS.parent / "README.md").read_text() + (DOCS / "operations.md").read_text()
    missing = [var for var in _ENV_NAMES.values() if f"`{var}`" not in readme and var not in readme]
    assert missing == [], f"settings not documented in README.md or docs/operations.md: {missing}"


def test_a_plain_install_draws_the_consoles_charts() -> None:
    """`make run` installs the distribution without extras; the console's charts need
    matplotlib, so it is one of the distribution's own requirements, not an extra's."""
    from importlib.metadata import requires

    plain = [r for r in requires("dealflow") or [] if "extra ==" not in r]
    assert any(r.startswith("matplotlib") for r in plain), plain
