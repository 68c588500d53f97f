"""The report's "where models disagree" section: per task and pair of models, the samples (same task
and sample id, from the local sample store) whose headline scores differ, in Markdown and HTML."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from evalport.adapters.report.formatting import fmt_value

if TYPE_CHECKING:
    from evalport.adapters.sinks.local_sample_query import TaskDisagreements

#: A sample's text is cut to this many characters in a report cell.
CELL_CHARS = 120
TITLE = "Where models disagree"
LEGEND = (
    "Per task, the samples (same task and sample id) whose headline score differs between two models, "
    "from the sample store; the first of them are listed."
)


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= CELL_CHARS else flat[: CELL_CHARS - 1] + "…"


def heading(entry: TaskDisagreements) -> str:
    return (
        f"{entry.task}: {entry.model_a} vs {entry.model_b}, "
        f"{entry.differ} of {entry.shared} shared samples differ"
    )


def columns(entry: TaskDisagreements) -> list[str]:
    a, b = entry.model_a, entry.model_b
    return ["Sample", a, b, "Input", "Target", f"Output of {a}", f"Output of {b}"]


def cells(entry: TaskDisagreements) -> list[list[str]]:
    """The table's text, row by row, as both formats show it."""
    return [
        [
            d.sample_id,
            fmt_value(d.score_a),
            fmt_value(d.score_b),
            _short(d.input),
            _short(d.target),
            _short(d.output_a),
            _short(d.output_b),
        ]
        for d in entry.rows
    ]


def more(entry: TaskDisagreements) -> str:
    left = entry.differ - len(entry.rows)
    return f"… and {left} more (evalport samples --diff lists them all)" if left > 0 else ""


def render_markdown_section(entries: Sequence[TaskDisagreements]) -> list[str]:
    from evalport.adapters.report.markdown import md_code, md_text

    if not entries:
        return []
    lines = ["", f"## {TITLE}", "", LEGEND, ""]
    for entry in entries:
        lines += [f"### {md_text(heading(entry))}", ""]
        if not entry.rows:
            continue
        head = columns(entry)
        lines.append("| " + " | ".join(md_text(h) for h in head) + " |")
        lines.append("|" + "|".join([":---", "---:", "---:", ":---", ":---", ":---", ":---"]) + "|")
        for row in cells(entry):
            lines.append("| " + " | ".join([md_code(row[0]), *(md_text(c) for c in row[1:])]) + " |")
        if tail := more(entry):
            lines += ["", md_text(tail)]
        lines.append("")
    return lines


def render_html_section(entries: Sequence[TaskDisagreements]) -> str:
    if not entries:
        return ""
    parts = [
        '<section id="disagreements" aria-labelledby="disagreements-h">',
        f'<h2 id="disagreements-h">{TITLE}</h2>',
        f'<p class="legend">{escape(LEGEND)}</p>',
    ]
    for entry in entries:
        parts.append(f"<h3>{escape(heading(entry))}</h3>")
        if not entry.rows:
            continue
        head = "".join(f'<th scope="col">{escape(h)}</th>' for h in columns(entry))
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in cells(entry)
        )
        parts.append(
            f'<table class="disagreements"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        )
        if tail := more(entry):
            parts.append(f'<p class="legend">{escape(tail)}</p>')
    parts.append("</section>")
    return "\n".join(parts)
