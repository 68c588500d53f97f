"""The comparison as one self-contained HTML page: matrix, charts, and every job's details.

Every value from results goes through :func:`html.escape`; styles, the sorting script and the
charts (inline SVG) are part of the page, and its Content-Security-Policy forbids any fetch, so it
opens offline and can be mailed or attached as a single file.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING

from evalport import __version__
from evalport.adapters.report.charts import task_chart
from evalport.adapters.report.disagreements import render_html_section
from evalport.adapters.report.formatting import MISSING, counted, fmt_delta, fmt_stderr, fmt_time, fmt_value
from evalport.adapters.report.template import CSP, PAGE, SCRIPT, STYLE
from evalport.domain.comparison import Cell, Comparison, TaskColumn
from evalport.domain.model import TaskResult

if TYPE_CHECKING:
    from evalport.adapters.sinks.local_sample_query import TaskDisagreements

#: job id -> [(label, href)]: links to a job's staged files (relative to the page).
Links = Mapping[str, Sequence[tuple[str, str]]]


def e(value: object) -> str:
    return escape(str(value), quote=True)


def anchor(job_id: str) -> str:
    return "job-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in job_id)


def _header(column: TaskColumn, index: int) -> str:
    tip = f"headline metric: {column.metric} ({column.rule})" if column.metric else "no metric"
    higher = "true" if column.higher_is_better else "false"
    short = e(column.metric_short).replace("_", "_<wbr>")  # wrap long names at their underscores
    metric = f'<span class="metric">{short}</span>' if column.metric else ""
    return (
        f'<th scope="col" aria-sort="none" data-type="number" data-higher="{higher}" '
        f'data-task="{e(column.key)}" title="{e(tip)}">'
        f'<button type="button" data-label="{e(column.label)}" id="sort-{index}">{e(column.label)}{metric}'
        f"</button></th>"
    )


def _cell(cell: Cell, column: TaskColumn) -> str:
    if cell.value is None:
        return f'<td data-value="" data-task="{e(column.key)}"><span class="v">{MISSING}</span></td>'
    raw = repr(cell.value) if math.isfinite(cell.value) else ""
    classes = ' class="best"' if cell.best else ""
    tip = [f"job {cell.job_id}"]
    if cell.runs > 1:
        tip.append(f"latest of {cell.runs} runs")
    parts = [f'<a class="v" href="#{anchor(cell.job_id or "")}">{e(fmt_value(cell.value))}</a>']
    if cell.best:
        parts.append('<span class="mark" aria-hidden="true">★</span><span class="sr-only"> (best)</span>')
    stderr = fmt_stderr(cell.stderr)
    if stderr:
        parts.append(f'<span class="se">{e(stderr)}</span>')
    delta = fmt_delta(cell.delta)
    if delta:
        direction = "up" if (cell.delta or 0) > 0 else "down" if (cell.delta or 0) < 0 else ""
        good = (cell.delta or 0) > 0 if column.higher_is_better else (cell.delta or 0) < 0
        direction = ("up" if good else "down") if direction else ""
        parts.append(f'<span class="d {direction}" title="difference from the baseline">{e(delta)}</span>')
    return (
        f'<td data-value="{e(raw)}" data-task="{e(column.key)}"{classes} title="{e(", ".join(tip))}">'
        + "".join(parts)
        + "</td>"
    )


def render_matrix(comparison: Comparison) -> str:
    if not comparison.tasks:
        return "<p>No results to compare.</p>"
    head = [
        '<th scope="col" class="model" aria-sort="none" data-type="text">'
        '<button type="button" data-label="Model" id="sort-model">Model</button></th>'
    ]
    head += [_header(t, i) for i, t in enumerate(comparison.tasks)]
    rows = []
    for model in comparison.models:
        badge = '<span class="badge">baseline</span>' if model == comparison.baseline else ""
        cells = "".join(_cell(comparison.cell(model, t.key), t) for t in comparison.tasks)
        rows.append(
            f'<tr data-model="{e(model)}"><th scope="row" data-value="{e(model)}">{e(model)}{badge}</th>'
            f"{cells}</tr>"
        )
    return (
        '<div class="table-wrap" role="region" aria-labelledby="matrix-h" tabindex="0">'
        '<table id="matrix-table"><caption class="sr-only">Headline score of each model on each task; '
        "use the column header buttons to sort.</caption>"
        f"<thead><tr>{''.join(head)}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def render_charts(comparison: Comparison) -> str:
    out = []
    for i, column in enumerate(comparison.tasks):
        svg = task_chart(comparison, column, salt=f"evalport-{i}")
        if svg is None:
            continue
        label = f"Bar chart of {column.label} ({column.metric}) by model"
        svg = svg.replace("<svg ", f'<svg role="img" aria-label="{e(label)}" ', 1)
        out.append(
            f'<figure data-task="{e(column.key)}">{svg}'
            f"<figcaption>{e(column.label)}: {e(column.metric or '')}</figcaption></figure>"
        )
    return "\n".join(out) or '<p class="muted">No values to chart.</p>'


def _metrics_table(result: TaskResult) -> str:
    stat_names = sorted({s for m in result.metrics for s in m.stats if s != "stderr"})
    head = "".join(f'<th scope="col">{e(s)}</th>' for s in stat_names)
    rows = []
    for m in result.metrics:
        extra = "".join(f"<td>{e(fmt_value(m.stats[s])) if s in m.stats else ''}</td>" for s in stat_names)
        rows.append(
            f'<tr><th scope="row" class="text">{e(m.name)}</th><td>{e(fmt_value(m.value))}</td>'
            f"<td>{e(fmt_value(m.stats['stderr'])) if 'stderr' in m.stats else ''}</td>{extra}</tr>"
        )
    return (
        '<table class="metrics"><thead><tr><th scope="col" class="text">metric</th>'
        f'<th scope="col">value</th><th scope="col">stderr</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def render_jobs(comparison: Comparison, links: Links) -> str:
    out = []
    for r in comparison.results:
        files = links.get(r.job_id, ())
        items = "".join(f'<li><a href="{e(href)}">{e(label)}</a></li>' for label, href in files)
        file_html = f"<ul>{items}</ul>" if files else '<span class="muted">not staged</span>'

        facts = [
            ("model", r.model_id),
            ("task", r.task),
            ("harness", r.harness),
            ("container", r.container or MISSING),
            ("invocation", r.invocation_id),
            ("job", r.job_id),
            ("executor", r.executor),
            ("state", r.state.value),
            ("timestamp", fmt_time(r.timestamp)),
        ]
        dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts)
        out.append(
            f'<details id="{anchor(r.job_id)}" data-job="{e(r.job_id)}"><summary>'
            f"<strong>{e(r.model_id)}</strong> · {e(r.task)} · <code>{e(r.job_id)}</code></summary>"
            f"<dl>{dl}<dt>artifacts</dt><dd>{file_html}</dd></dl>{_metrics_table(r)}</details>"
        )
    return "\n".join(out) or '<p class="muted">No jobs.</p>'


def render_html(
    comparison: Comparison,
    *,
    title: str = "Model comparison",
    links: Links | None = None,
    generated_at: float | None = None,
    disagreements: Sequence[TaskDisagreements] = (),
) -> str:
    """The whole page as a string (the caller writes it atomically); ``disagreements`` adds the
    section of samples two models scored differently (from the sample store)."""
    n_jobs, n_models, n_tasks = len(comparison.results), len(comparison.models), len(comparison.tasks)
    when = fmt_time(time.time() if generated_at is None else generated_at)
    counts = f"{counted(n_jobs, 'job')} · {counted(n_models, 'model')} · {counted(n_tasks, 'task')}"
    summary = f"{counts} · generated {when}"
    legend = (
        "Each column shows the task's headline metric (named under the task; hover for how it was "
        "chosen). ★ and green mark the best model on the task; ± is the standard error."
    )
    baseline_legend = ""
    if comparison.baseline is not None:
        legend += f" The small signed number is the difference from the baseline, {e(comparison.baseline)}."
        baseline_legend = f"; orange (an orange outline when it is the best): {e(comparison.baseline)}"
    notes = ""
    if comparison.notes:
        notes = (
            '<section aria-label="Notes"><ul class="notes">'
            + "".join(f"<li>{e(n)}</li>" for n in comparison.notes)
            + "</ul></section>"
        )
    return PAGE.substitute(
        csp=CSP,
        version=e(__version__),
        title=e(title),
        style=STYLE,
        summary=e(summary),
        notes=notes,
        legend=legend,
        matrix=render_matrix(comparison),
        charts=render_charts(comparison),
        baseline_legend=baseline_legend,
        jobs=render_jobs(comparison, links or {}),
        disagreements=render_html_section(disagreements),
        disagreements_link='<a href="#disagreements">Disagreements</a>' if disagreements else "",
        script=SCRIPT,
    )
