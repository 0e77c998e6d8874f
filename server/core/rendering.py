"""Message templates: Jinja2 in an immutable sandbox, bounded in loops, output size and time."""

from __future__ import annotations

import functools
import re
import string
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from types import MappingProxyType, TracebackType
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.visitor import NodeTransformer

__all__ = [
    "MAX_OUTPUT_BYTES",
    "MAX_RANGE",
    "MAX_RENDER_SECONDS",
    "MAX_SOURCE_LENGTH",
    "TemplateError",
    "check_template",
    "make_environment",
    "render",
]

MAX_OUTPUT_BYTES = 64 * 1024
"""Largest rendered message, in UTF-8 bytes; also the largest string a template may build."""

MAX_RANGE = 10_000
"""Most items ``range()`` may produce in a template."""

MAX_RENDER_SECONDS = 2.0
"""Longest one render may run; checked on every loop step, call and output chunk."""

MAX_SOURCE_LENGTH = 64 * 1024
"""Longest template source accepted, in characters."""

FORBIDDEN_NAMES = frozenset({"self", "config", "lipsum", "cycler", "joiner", "namespace"})
"""Names a template may not use: Jinja internals and helpers that have no place in a message."""

_NO_FILTERS: Mapping[str, Callable[..., Any]] = MappingProxyType({})
_UNSUPPORTED_TAGS = {
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from ... import",
    nodes.Extends: "extends",
}
# Built-in filters and str methods whose integer argument sets how much text they make.
_WIDTH_FILTERS = frozenset({"center", "indent", "batch", "slice"})
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?")
_deadline: ContextVar[float] = ContextVar("dealflow_render_deadline", default=float("inf"))


class TemplateError(Exception):
    """Raised when a template cannot be compiled or rendered; ``line`` is 1-based or None."""

    def __init__(self, message: str, line: int | None = None) -> None:
        text = f"template: {message}" + (f" (line {line})" if line is not None else "")
        super().__init__(text)
        self.message = text
        self.reason = message
        self.line = line


def _tick() -> None:
    """Stop a render that has run past its deadline; called at every loop step and call."""
    if time.monotonic() > _deadline.get():
        raise SecurityError(f"rendering took longer than {MAX_RENDER_SECONDS:g} s")


def _refuse_size(size: int) -> None:
    if size > MAX_OUTPUT_BYTES:
        raise SecurityError(
            f"output too large (a value would be over {MAX_OUTPUT_BYTES} characters)"
        )


def _check_widths(args: Iterable[Any]) -> None:
    """Refuse an integer argument big enough to pad text past the output limit."""
    for arg in args:
        if isinstance(arg, int) and abs(arg) > MAX_OUTPUT_BYTES:
            _refuse_size(abs(arg))


def _check_printf(fmt: str, args: Any) -> None:
    """Refuse ``%``-formatting whose widths or precisions would exceed the output limit."""
    for width, precision in _PRINTF_SPEC.findall(fmt):
        for part in (width, precision):
            if part == "*":
                _check_widths(args if isinstance(args, tuple | list) else (args,))
            elif part:
                _refuse_size(int(part))


def _check_format_spec(fmt: str) -> None:
    """Refuse ``str.format`` specs with nested fields or widths past the output limit."""
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # a malformed format string fails on its own when called
    for _literal, _name, spec, _conversion in fields:
        if spec and "{" in spec:
            raise SecurityError("nested fields in format specs are not allowed")
        for number in re.findall(r"\d+", spec or ""):
            _refuse_size(int(number))


def _check_replace(subject: str, old: str, new: str, count: int = -1) -> None:
    occurrences = subject.count(old) if old else len(subject) + 1
    if count is not None and count >= 0:
        occurrences = min(occurrences, count)
    _refuse_size(len(subject) + occurrences * (len(new) - len(old)))


def _check_join(separator: str, items: list[Any]) -> None:
    _refuse_size(sum(len(str(item)) for item in items) + len(separator) * max(len(items) - 1, 0))


def _bounded_range(*args: int) -> range:
    """``range`` for templates: at most MAX_RANGE items, so a loop cannot run away."""
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise SecurityError(f"range() of more than {MAX_RANGE} items is not allowed")
    _tick()
    return result


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a built-in filter so it cannot build text past the output limit."""

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        values = [a for a in args if not isinstance(a, jinja2.nodes.EvalContext)]
        if name in _WIDTH_FILTERS:
            _check_widths([*values[1:], *kwargs.values()])
        elif name == "format" and isinstance(values[0], str):
            _check_printf(values[0], tuple(values[1:]))
        elif name == "replace" and len(values) >= 3:
            _check_replace(str(values[0]), str(values[1]), str(values[2]), *values[3:4])
        elif name == "join" and "attribute" not in kwargs and len(values) <= 2:
            items = list(values[0])
            _check_join(str(values[1]) if len(values) > 1 else kwargs.get("d", ""), items)
            args = (*args[: len(args) - len(values)], items, *values[1:])
        result = func(*args, **kwargs)
        if isinstance(result, str):
            _refuse_size(len(result))
        return result

    return guarded


class _Guards(NodeTransformer):
    """Rewrites a parsed template so loops and ``~`` go through the environment's guards."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Call(
            nodes.EnvironmentAttribute("guarded_iter"), [node.iter], [], None, None
        ).set_lineno(node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(
            nodes.EnvironmentAttribute("guarded_concat"), node.nodes, [], None, None
        ).set_lineno(node.lineno)


class _MessageEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus refusals: private attributes, runaway loops, huge strings."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for node in tree.find_all((nodes.Name, *_UNSUPPORTED_TAGS)):
            if isinstance(node, nodes.Name) and node.name in FORBIDDEN_NAMES:
                raise jinja2.TemplateSyntaxError(
                    f"'{node.name}' is not available in message templates",
                    node.lineno,
                    name,
                    filename,
                )
            if type(node) in _UNSUPPORTED_TAGS:
                raise jinja2.TemplateSyntaxError(
                    f"{{% {_UNSUPPORTED_TAGS[type(node)]} %}} is not available in message "
                    "templates",
                    node.lineno,
                    name,
                    filename,
                )
        return _Guards().visit(tree)  # type: ignore[no-any-return]

    @staticmethod
    def guarded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
        """Called by every compiled for-loop; checks the deadline on each step."""
        for item in iterable:
            _tick()
            yield item

    @staticmethod
    def guarded_concat(*parts: Any) -> str:
        """Called for every ``~``; refuses a string past the output limit (``s ~ s`` doubles)."""
        texts = [str(part) for part in parts]
        _refuse_size(sum(map(len, texts)))
        return "".join(texts)

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        # Fail loudly rather than render empty: a template reaching for internals is a bug.
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is not allowed"
        )

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            _check_format_spec(value.__self__)
        return wrapped

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        _tick()
        if operator == "+" and isinstance(left, str | list | tuple) and hasattr(right, "__len__"):
            _refuse_size(len(left) + len(right))
        elif operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    _refuse_size(len(seq) * times)
        elif operator == "**" and isinstance(left, int | float) and isinstance(right, int | float):
            if abs(right) > 100 or abs(left) > 1e12:
                raise SecurityError("** is limited to exponents up to 100 and bases up to 1e12")
        elif operator == "%" and isinstance(left, str):
            _check_printf(left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context: jinja2.runtime.Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _tick()
        for arg in (*args, *kwargs.values()):
            if isinstance(arg, str):
                _refuse_size(len(arg))
        owner, method = getattr(obj, "__self__", None), getattr(obj, "__name__", "")
        if isinstance(owner, str):
            if method in _WIDTH_METHODS:
                _check_widths([*args, *kwargs.values()])
            elif method == "replace" and len(args) >= 2:
                _check_replace(owner, str(args[0]), str(args[1]), *args[2:3])
            elif method == "join" and args:
                args = (list(args[0]), *args[1:])
                _check_join(owner, args[0])
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(result, str):
            _refuse_size(len(result))
        return result


def make_environment(
    filters: Mapping[str, Callable[..., Any]] = _NO_FILTERS,
) -> ImmutableSandboxedEnvironment:
    """Build the sandbox message templates render in, with plugin ``filters`` added.

    Undefined values are ``ChainableUndefined`` and ``None`` renders as "": a missing optional
    field (``{{ record.custom.region }}``) renders empty instead of failing the message. The
    price is that a misspelt name renders empty too; using one in arithmetic still fails.
    Autoescape is off: messages are plain text, not HTML.
    """
    env = _MessageEnvironment(
        autoescape=False,
        undefined=jinja2.ChainableUndefined,
        finalize=lambda value: "" if value is None else value,
        keep_trailing_newline=True,
    )
    for name in ("lipsum", "cycler", "joiner", "namespace"):
        env.globals.pop(name, None)
    env.globals["range"] = _bounded_range
    for name in (*_WIDTH_FILTERS, "format", "replace", "join"):
        env.filters[name] = _guard_filter(name, env.filters[name])
    env.filters.update(filters)
    return env


@functools.lru_cache(maxsize=32)
def _environment(filters: tuple[tuple[str, Callable[..., Any]], ...]) -> jinja2.Environment:
    return make_environment(dict(filters))


@functools.lru_cache(maxsize=1024)
def _template(filters: tuple[tuple[str, Callable[..., Any]], ...], source: str) -> jinja2.Template:
    # Workflows render the same few templates for every event: compile each once.
    return _environment(filters).from_string(source)


def _filters_key(
    filters: Mapping[str, Callable[..., Any]],
) -> tuple[tuple[str, Callable[..., Any]], ...]:
    return tuple(sorted(filters.items(), key=lambda item: item[0]))


def check_template(source: str, filters: Mapping[str, Callable[..., Any]] | None = None) -> None:
    """Check a template when a workflow is saved: syntax and forbidden names.

    Pass the plugin ``filters`` to also check that every filter used exists; without them
    unknown filters are not reported (the plugins that define them may not be loaded here).
    """
    if filters is None:
        _compiled(lambda: _environment(()).parse(source), source)
    else:
        _compiled(lambda: _template(_filters_key(filters), source), source)


def _compiled(compile_: Callable[[], Any], source: str) -> Any:
    """Run one parse or compile step, turning every way it can fail into a TemplateError."""
    _check_length(source)
    try:
        return compile_()
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(exc.message or "syntax error", exc.lineno) from None
    except jinja2.TemplateError as exc:
        raise TemplateError(exc.message or type(exc).__name__) from None
    except (RecursionError, MemoryError):
        # Jinja's parser and Python's compiler recurse once per nesting level.
        raise TemplateError("the template is nested too deeply") from None


def render(
    source: str,
    document: Mapping[str, Any],
    filters: Mapping[str, Callable[..., Any]] = _NO_FILTERS,
) -> str:
    """Render ``source`` with the document's top-level keys (``record``, ``event``, ...) as names.

    Every failure, including sandbox refusals, runaway loops and output past
    MAX_OUTPUT_BYTES, is raised as :class:`TemplateError`, never as anything else.
    """
    template = _compiled(lambda: _template(_filters_key(filters), source), source)
    token = _deadline.set(time.monotonic() + MAX_RENDER_SECONDS)
    parts: list[str] = []
    size = 0
    try:
        for chunk in template.generate(dict(document)):
            size += len(chunk) if chunk.isascii() else len(chunk.encode("utf-8"))
            if size > MAX_OUTPUT_BYTES:
                raise TemplateError(f"output too large (over {MAX_OUTPUT_BYTES} bytes)")
            parts.append(chunk)
            _tick()
    except TemplateError:
        raise
    except RecursionError:
        raise TemplateError("recursion too deep") from None
    except Exception as exc:  # noqa: BLE001 - any failure inside a template is the template's
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        if not isinstance(exc, jinja2.TemplateError | SecurityError):
            message = f"{type(exc).__name__}: {message}"
        raise TemplateError(message, _template_line(exc.__traceback__)) from None
    finally:
        _deadline.reset(token)
    return "".join(parts)


def _check_length(source: str) -> None:
    if not isinstance(source, str):
        raise TemplateError("the template must be a string")
    if len(source) > MAX_SOURCE_LENGTH:
        raise TemplateError(f"the template is longer than {MAX_SOURCE_LENGTH} characters")


def _template_line(tb: TracebackType | None) -> int | None:
    """The template line an error came from: Jinja rewrites tracebacks to show it."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
