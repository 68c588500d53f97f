"""Bar charts (one per task, with error bars) as small inline SVG, drawn by matplotlib.

matplotlib is imported here lazily (only when an HTML report is made) and used through its
object-oriented API with the Agg canvas: no pyplot, no global backend switch, and rcParams only
inside an ``rc_context`` so an application embedding evalport keeps its own settings. Text stays
text (``svg.fonttype: none``: no glyph paths, no embedded fonts), which keeps each chart a few KB.
"""

from __future__ import annotations

import io
import math
import re

from evalport.adapters.report.formatting import fmt_value
from evalport.domain.comparison import Comparison, TaskColumn

BAR, BEST, BASELINE, ERR = "#7a9cc6", "#2e7d32", "#b26a00", "#333333"

_RC = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.image_inline": True,
}

_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


class ChartError(RuntimeError):
    """matplotlib is missing (or failed); the message says how to install it."""


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ChartError(
            f"HTML reports draw their charts with matplotlib, which is not installed ({exc}); "
            "run: pip install 'evalport[report]' (or use --format md)"
        ) from None
    return matplotlib, Figure, FigureCanvasAgg


def task_chart(comparison: Comparison, column: TaskColumn, salt: str) -> str | None:
    """An inline ``<svg>`` for one task (None when no model has a value for it)."""
    rows = []
    for model in comparison.models:
        cell = comparison.cell(model, column.key)
        if cell.value is not None and math.isfinite(cell.value):
            rows.append((model, cell))
    if not rows:
        return None
    matplotlib, Figure, FigureCanvasAgg = _matplotlib()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": salt}):
        height = 0.8 + 0.27 * len(rows)
        fig = Figure(figsize=(7.0, height))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ys = list(range(len(rows)))[::-1]
        values = [float(c.value) for _, c in rows if c.value is not None]
        errs = [c.stderr if c.stderr is not None and math.isfinite(c.stderr) else 0.0 for _, c in rows]
        colors = [BEST if c.best else BASELINE if c.is_baseline else BAR for _, c in rows]
        edges = [BASELINE if c.is_baseline else "none" for _, c in rows]
        ax.barh(
            ys,
            values,
            xerr=errs,
            color=colors,
            edgecolor=edges,
            linewidth=1.6,
            height=0.7,
            error_kw={"ecolor": ERR, "capsize": 2.5},
        )
        ax.set_yticks(ys, [_short(m) for m, _ in rows])
        for y, value, err in zip(ys, values, errs, strict=True):
            end = value + err if value >= 0 else value - err
            ax.annotate(
                fmt_value(value),
                (end, y),
                xytext=(3 if value >= 0 else -3, 0),
                textcoords="offset points",
                va="center",
                ha="left" if value >= 0 else "right",
                fontsize=7.5,
            )
        ax.set_xlabel(column.metric or "")
        ax.set_title(column.label, loc="left", fontsize=10, fontweight="bold")
        lo = min(0.0, *(v - e for v, e in zip(values, errs, strict=True)))
        hi = max(0.0, *(v + e for v, e in zip(values, errs, strict=True)))
        pad = (hi - lo) * 0.12 or 1.0
        ax.set_xlim(lo - (pad if lo < 0 else 0), hi + pad)
        ax.grid(axis="x", linewidth=0.4, alpha=0.5)
        ax.set_axisbelow(True)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    return _clean(buf.getvalue())


def _short(model: str, limit: int = 42) -> str:
    return model if len(model) <= limit else "…" + model[-(limit - 1) :]


def _clean(svg: str) -> str:
    """The bare ``<svg>`` element: no XML prologue, DOCTYPE or metadata, less whitespace."""
    svg = _PROLOGUE.sub("", svg, count=1)
    svg = _METADATA.sub("", svg)
    return re.sub(r">\s+<", "><", svg).strip()
