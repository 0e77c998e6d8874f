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


def section(markdown: str, heading_text: str) -> str:
    """The text under the heading containing ``heading_text``, up to the next heading."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#") and heading_text in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return "\n".join(lines[start + 1:end])


def flat(text: str) -> str:
    return " ".join(text.replace("``", "`").split())


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_section_says_what_its_docstring_says(hook: str) -> None:
    """The reference is checked against the hookspecs: its first sentence is the docstring's
    summary, word for word, and it names every argument and what the return value means."""
    spec = getattr(hookspecs, hook)
    text = flat(section(PLUGINS_MD, f"`{signature(spec)}`"))
    summary = flat(inspect.getdoc(spec).split("\n\n")[0])
    assert text.startswith(summary), (
        f"docs/plugins.md's section for {hook} must open with its docstring's summary:\n"
        f"{summary}\nit opens with:\n{text[:len(summary) + 40]}"
    )
    for name in inspect.signature(spec).parameters:
        assert f"`{name}`" in text, f"the section for {hook} does not describe `{name}`"
    assert "Return value" in text, f"the section for {hook} does not say what it returns"


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


def _example_plugin(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The example plugin of docs/plugins.md, imported as ``dealflow_pingback``."""
    (python,) = [block for block in code_blocks(PLUGINS_MD, "python") if "@hookimpl" in block]
    module = types.ModuleType("dealflow_pingback")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(python, "docs/plugins.md", "exec"), module.__dict__)  # noqa: S102
    return module


def test_the_guides_plugin_tests_pass_and_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """The "Testing a plugin" example, run as written against the example plugin, and run
    again against a broken copy of it (no idempotency key sent), which it must catch."""
    (tests,) = [b for b in code_blocks(PLUGINS_MD, "python") if "def test_pingback" in b]

    def run(plugin: types.ModuleType) -> None:
        namespace: dict[str, Any] = {}
        exec(compile(tests, "docs/plugins.md#testing-a-plugin", "exec"), namespace)  # noqa: S102
        fixture = namespace["receiver"].__wrapped__()
        try:
            namespace["test_pingback_posts_once_per_execution_and_retries_only_5xx"](
                next(fixture))
        finally:
            fixture.close()
        namespace["test_a_workflow_without_a_path_is_refused_at_save"]()

    plugin = _example_plugin(monkeypatch)
    run(plugin)
    original = plugin.body

    def forgetful_send(config: Any, context: ActionContext) -> dict[str, Any]:
        from server.plugin import http_client

        response = http_client(context.settings, timeout=10).post(
            plugin.BASE_URL + config["path"], json=original(config, context))
        return {"status": response.status_code}

    monkeypatch.setattr(plugin, "send", forgetful_send)
    with pytest.raises((AssertionError, KeyError)):
        run(plugin)


def test_every_picture_the_docs_show_is_shipped() -> None:
    """Each image a page of docs/ links to exists (the console's are made by its browser tests,
    written to docs/img when DEALFLOW_SCREENSHOTS=docs/img)."""
    missing = [
        f"{page.name}: {target}"
        for page in sorted(DOCS.glob("*.md"))
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text())
        if not (DOCS / target).is_file()
    ]
    assert missing == []


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
