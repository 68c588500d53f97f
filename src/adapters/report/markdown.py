"""The comparison as a GitHub-flavoured Markdown table, for pull-request comments and terminals."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from evalport.adapters.report.formatting import MISSING, counted, fmt_delta, fmt_stderr, fmt_value
from evalport.domain.comparison import Cell, Comparison, TaskColumn

if TYPE_CHECKING:
    from evalport.adapters.sinks.local_sample_query import TaskDisagreements


def render_markdown_section(disagreements: Sequence[TaskDisagreements]) -> list[str]:
    if not disagreements:
        return []
    from evalport.adapters.report.disagreements import render_markdown_section as section

    return section(disagreements)


_SPECIAL = re.compile(r"([\\|*_`<>\[\]])")


def md_text(text: str) -> str:
    """Plain text safe inside a table cell: Markdown punctuation and ``|`` backslash-escaped."""
    return _SPECIAL.sub(r"\\\1", text.replace("\n", " "))


def md_code(text: str) -> str:
    """A code span; ``|`` still needs its backslash inside a GFM table."""
    return "`" + text.replace("`", "'").replace("|", "\\|").replace("\n", " ") + "`"


def header_cell(column: TaskColumn) -> str:
    label = md_text(column.label)
    return f"{label} {md_code(column.metric_short)}" if column.metric else label


def model_cell(model: str, comparison: Comparison) -> str:
    return md_text(model) + (" (baseline)" if model == comparison.baseline else "")


def value_cell(cell: Cell) -> str:
    """``**0.8123** ± 0.0123 (+0.0100)``: bold when best, stderr when known, delta vs the baseline."""
    if cell.value is None:
        return MISSING
    text = fmt_value(cell.value)
    if cell.best:
        text = f"**{text}**"
    stderr = fmt_stderr(cell.stderr)
    if stderr:
        text += f" {stderr}"
    delta = fmt_delta(cell.delta)
    if delta:
        text += f" ({delta})"
    return text


def render_markdown(
    comparison: Comparison,
    *,
    title: str = "Model comparison",
    disagreements: Sequence[TaskDisagreements] = (),
) -> str:
    lines = [f"# {md_text(title)}", ""]
    n_jobs, n_models, n_tasks = len(comparison.results), len(comparison.models), len(comparison.tasks)
    legend = (
        f"{counted(n_jobs, 'job')}, {counted(n_models, 'model')}, {counted(n_tasks, 'task')}. "
        "Each column shows the task's headline metric; **bold** is the best model on the task; "
        "± is the standard error"
    )
    if comparison.baseline is not None:
        legend += f"; (+x) / (-x) is the difference from the baseline {md_text(comparison.baseline)}"
    lines += [legend + ".", ""]
    if not comparison.tasks:
        lines.append("No results to compare.")
        return "\n".join(lines) + "\n"
    header = ["Model", *(header_cell(t) for t in comparison.tasks)]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join([":---", *("---:" for _ in comparison.tasks)]) + "|")
    for model in comparison.models:
        row = [model_cell(model, comparison)]
        row += [value_cell(comparison.cell(model, t.key)) for t in comparison.tasks]
        lines.append("| " + " | ".join(row) + " |")
    if comparison.notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {md_text(note)}" for note in comparison.notes]
    lines += render_markdown_section(disagreements)
    return "\n".join(lines).rstrip("\n") + "\n"
