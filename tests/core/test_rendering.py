"""Message templates: they render the context, and the sandbox holds against escapes and floods."""

from __future__ import annotations

import time

import pytest

from server.core import rendering
from server.core.rendering import TemplateError, check_template, render

DOCUMENT = {
    "record": {"name": "Acme renewal", "amount": 12000, "custom": {"region": "EMEA"}},
    "changed": ["stage"],
    "event": {"type": "record.updated"},
}


def test_renders_record_fields() -> None:
    out = render("{{ record.name }}: {{ record.amount }} ({{ record.custom.region }})", DOCUMENT)

    assert out == "Acme renewal: 12000 (EMEA)"


def test_missing_optional_fields_and_nulls_render_empty() -> None:
    out = render("[{{ record.owner }}|{{ record.custom.tier.name }}|{{ none }}]", DOCUMENT)

    assert out == "[||]"


@pytest.mark.parametrize(
    "source",
    [
        "{{ record.__class__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ record.items.__globals__ }}",
        "{{ (1).__class__.__base__.__subclasses__() }}",
        "{{ record|attr('__class__') }}",
    ],
)
def test_private_attributes_never_leak_python_internals(source: str) -> None:
    try:
        out = render(source, DOCUMENT)
    except TemplateError as exc:
        assert "not allowed" in exc.message
    else:
        assert "class" not in out


@pytest.mark.parametrize(
    "source",
    [
        "{{ lipsum() }}",
        "{{ cycler }}",
        "{{ namespace() }}",
        "{{ joiner() }}",
        "{{ self }}",
        "{% include 'other' %}",
    ],
)
def test_helpers_and_internals_are_unavailable(source: str) -> None:
    with pytest.raises(TemplateError, match="not available"):
        render(source, DOCUMENT)


def test_huge_ranges_are_refused() -> None:
    with pytest.raises(TemplateError, match="range"):
        render("{% for i in range(10**7) %}x{% endfor %}", DOCUMENT)


def test_small_ranges_work() -> None:
    assert render("{% for i in range(3) %}{{ i }}{% endfor %}", DOCUMENT) == "012"


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(10000) %}{{ 'abcdefgh' }}{% endfor %}",
        "{{ 'x' * 100000 }}",
        "{{ 'x'|center(10**9) }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{% set s = 'x' * 40000 %}{% set s = s ~ s %}{{ s|length }}",
        (
            "{% macro f(s, n) %}{% if n %}{{ f(s ~ s, n - 1) }}{% endif %}{% endmacro %}"
            "{{ f('x', 60) }}"
        ),
    ],
)
def test_output_over_64_kib_is_refused_quickly(source: str) -> None:
    started = time.perf_counter()

    with pytest.raises(TemplateError, match="output too large"):
        render(source, DOCUMENT)

    assert time.perf_counter() - started < 0.5


def test_long_renders_stop_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a render budget of 50 ms
    monkeypatch.setattr(rendering, "MAX_RENDER_SECONDS", 0.05)

    # When a template loops 100 million times without output
    started = time.perf_counter()
    with pytest.raises(TemplateError, match="longer than"):
        render(
            "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
            DOCUMENT,
        )

    # Then it stops close to the budget
    assert time.perf_counter() - started < 0.5


def test_syntax_errors_name_the_line() -> None:
    with pytest.raises(TemplateError) as caught:
        check_template("Hello\n{{ record.name }}\n{% if %}")

    assert caught.value.line == 3
    assert "(line 3)" in caught.value.message


def test_runtime_errors_become_template_errors_with_the_line() -> None:
    with pytest.raises(TemplateError) as caught:
        render("ok\n{{ record.amount / 0 }}", DOCUMENT)

    assert "division by zero" in caught.value.message
    assert caught.value.line == 2


def test_unknown_filters_are_reported_when_filters_are_given() -> None:
    check_template("{{ record.name|shout }}")  # without the plugin filters: syntax only

    with pytest.raises(TemplateError, match="shout"):
        check_template("{{ record.name|shout }}", filters={})


def test_custom_filters_work() -> None:
    out = render("{{ record.name|shout }}", DOCUMENT, {"shout": lambda s: s.upper() + "!"})

    assert out == "ACME RENEWAL!"


def test_same_names_with_different_filters_do_not_share_a_cached_template() -> None:
    source = "{{ record.name|tag }}"

    first = render(source, DOCUMENT, {"tag": lambda s: f"<{s}>"})
    second = render(source, DOCUMENT, {"tag": lambda s: f"[{s}]"})

    assert (first, second) == ("<Acme renewal>", "[Acme renewal]")


def test_deeply_nested_templates_are_refused_not_crashed() -> None:
    with pytest.raises(TemplateError, match="nested too deeply"):
        render("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", DOCUMENT)
