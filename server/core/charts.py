"""Charts of the reports, drawn with matplotlib: one implementation for
``dealflow report --chart`` and the console's pictures.

matplotlib is imported only when a chart is drawn, with the Agg backend (no display). SVG
keeps text as text (small files, labels searchable) and the same data gives the same bytes.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

CHARTED = ("volume", "funnel", "forecast")
FORMATS = ("png", "svg")
TYPE_ORDER = ["platform", "email", "call", "social", "messenger"]
INSTALL_HINT = "charts need matplotlib: pip install 'matplotlib==3.11.*'"

_LOCK = threading.Lock()
"""Guards the cache of drawn charts."""
_DRAWING = threading.Lock()
"""pyplot keeps global state: the server draws one chart at a time."""
CACHED = 32
_CACHE: dict[tuple[Any, ...], bytes] = {}


def available() -> bool:
    """Whether matplotlib can be imported (a dependency; an installation may still lack it)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def render(kind: str, report: Any, fmt: str = "svg", *,
           owners: dict[int, str] | None = None) -> bytes:
    """The chart ``kind`` (volume, funnel, forecast) of ``report`` as PNG or SVG bytes;
    ``owners`` names the owner ids of a forecast grouped by owner. The same data gives the
    same bytes, so the last few charts are kept and drawn again only when their data change."""
    import msgspec

    key = (kind, fmt, msgspec.json.encode(report), tuple(sorted((owners or {}).items())))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    content = _render(kind, report, fmt, owners)
    with _LOCK:
        _CACHE[key] = content
        while len(_CACHE) > CACHED:
            _CACHE.pop(next(iter(_CACHE)))
    return content


def _render(kind: str, report: Any, fmt: str, owners: dict[int, str] | None) -> bytes:
    if kind not in CHARTED:
        raise ValueError(f"charts are drawn for {', '.join(CHARTED)}, not {kind}")
    if fmt not in FORMATS:
        raise ValueError(f"charts are PNG or SVG, not {fmt}")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    buffer = io.BytesIO()
    with _DRAWING, plt.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": "dealflow", "font.size": 9}
    ):
        fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
        try:
            if kind == "forecast":
                _forecast(ax, report, owners)
            else:
                {"volume": _volume, "funnel": _funnel}[kind](ax, report)
            ax.spines[["top", "right"]].set_visible(False)
            stamp = {"Date": None} if fmt == "svg" else None
            fig.savefig(buffer, format=fmt, dpi=100, metadata=stamp)
        finally:
            plt.close(fig)
    return buffer.getvalue()


def write(kind: str, report: Any, path: Path) -> None:
    """Write the chart of ``report`` to ``path`` (PNG or SVG by its suffix)."""
    path.write_bytes(render(kind, report, path.suffix.lower().lstrip(".")))


def _volume(ax: Any, report: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    labels = report.buckets
    series: dict[tuple[int, str], dict[str, int]] = {}
    for row in report.rows:
        # One colour per type (in code order) or user (in id order), whatever the data.
        if row.type:
            key = (TYPE_ORDER.index(row.type) if row.type in TYPE_ORDER else 99, row.type)
        elif row.user_id is not None:
            key = (row.user_id, row.user or str(row.user_id))
        else:
            key = (0, "outreach")
        series.setdefault(key, {})[row.bucket] = row.outreach
    bottom = [0] * len(labels)
    for (_, name), counts in sorted(series.items()):
        values = [counts.get(label, 0) for label in labels]
        ax.bar(range(len(labels)), values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    step = max(1, len(labels) // 12)
    ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=45, ha="right")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("outreach")
    ax.set_title(f"Outreach per {report.bucket} ({report.timezone})")
    if len(series) > 1:
        ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))


def _funnel(ax: Any, report: Any) -> None:
    stages = [s for s in report.stages if s.stage != "recycled"]
    names = [s.stage for s in stages][::-1]
    values = [s.entered for s in stages][::-1]
    bars = ax.barh(names, values, color="#4c72b0")
    notes = []
    for s in stages:
        note = f"{s.entered}"
        if s.conversion_rate is not None:
            note += f"  → {s.conversion_rate:.0%}"
        if s.sla_compliance is not None:
            note += f"  SLA {s.sla_compliance:.0%}"
        notes.append(note)
    ax.bar_label(bars, notes[::-1], padding=3)
    ax.set_xlabel("leads that entered the stage")
    ax.set_title(f"Lead funnel, {report.date_from} to {report.date_to} ({report.timezone})")
    ax.margins(x=0.25)


def _group_label(row: Any, names: dict[int, str]) -> str:
    if row.owner_id is not None:
        return names.get(row.owner_id, f"owner {row.owner_id}")
    if row.stage is not None:
        return str(row.stage)
    return "no owner"


def _forecast(ax: Any, report: Any, names: dict[int, str] | None = None) -> None:
    """Per close month and currency: the total pipeline (light bar) and the weighted amount in
    front of it, stacked by owner or stage when the report is grouped."""
    names = names or {}
    dated = [r for r in report.rows if r.month]
    months = sorted({r.month for r in dated})
    currencies = sorted({r.currency for r in dated})
    groups: list[str] = []
    if report.group_by:
        for row in dated:
            label = _group_label(row, names)
            if label not in groups:
                groups.append(label)
    width = 0.8 / max(1, len(currencies))
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3"]
    for n, currency in enumerate(currencies):
        rows = [r for r in dated if r.currency == currency]
        xs = [i + n * width for i in range(len(months))]
        totals = {m: sum(r.amount for r in rows if r.month == m) for m in months}
        suffix = f" {currency}" if len(currencies) > 1 else ""
        ax.bar(xs, [totals[m] for m in months], width=width * 0.95, color="#d0d7de",
               label=f"total{suffix}")
        if not groups:
            weighted = {m: sum(r.weighted_amount for r in rows if r.month == m) for m in months}
            ax.bar(xs, [weighted[m] for m in months], width=width * 0.6,
                   color=colors[n % len(colors)], label=f"weighted{suffix}")
            continue
        bottom = [0.0] * len(months)
        for g, group in enumerate(groups):
            values = [
                sum(r.weighted_amount for r in rows
                    if r.month == m and _group_label(r, names) == group)
                for m in months
            ]
            if not any(values):
                continue
            ax.bar(xs, values, bottom=bottom, width=width * 0.6, color=colors[g % len(colors)],
                   label=f"weighted, {group}{suffix}")
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks([i + width * (len(currencies) - 1) / 2 for i in range(len(months))], months)
    ax.set_ylabel("amount")
    by = f" by {report.group_by}" if report.group_by else ""
    ax.set_title(
        f"Forecast of open deals per expected close month{by} ({report.timezone}): "
        "weighted vs total"
    )
    ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
