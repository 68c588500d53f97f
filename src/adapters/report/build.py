"""Glue shared by the CLI and the local sink: links to staged files, summaries back to results."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from evalport.adapters.files import list_files
from evalport.domain.comparison import Comparison
from evalport.domain.model import JobState, Metric, TaskResult

REPORT_FORMATS = ("html", "md")


def format_for(path: str | Path | None, explicit: str | None = None) -> str:
    """The explicit format, else from the file's suffix (``.md``/``.markdown``), else HTML."""
    if explicit:
        return explicit
    if path is not None and str(path) != "-" and Path(path).suffix.lower() in (".md", ".markdown"):
        return "md"
    return "html"


def render(
    comparison: Comparison,
    fmt: str,
    *,
    title: str,
    links: Mapping[str, Any] | None = None,
    samples: str | Path | None = None,
) -> str:
    """``samples``: the local sink's folder whose sample store adds, per task, the samples two models
    disagree on (the baseline, else the first model, against each other model)."""
    disagreements = disagreements_from(Path(samples), comparison) if samples is not None else []
    if fmt == "md":
        from evalport.adapters.report.markdown import render_markdown

        return render_markdown(comparison, title=title, disagreements=disagreements)
    from evalport.adapters.report.html import render_html

    return render_html(comparison, title=title, links=links, disagreements=disagreements)


def disagreements_from(folder: Path, comparison: Comparison) -> list[Any]:
    """The TaskDisagreements of the comparison's jobs in the store under ``folder``."""
    from evalport.adapters.sinks.local_sample_query import SampleStore, report_pairs

    store = SampleStore(folder)
    jobs = [r.job_id for r in comparison.results]
    out: list[Any] = []
    for model_a, model_b in report_pairs(comparison.models, comparison.baseline):
        out += store.disagreements(model_a, model_b, jobs)
    return out


def staged_links(
    report_dir: Path,
    results: Iterable[TaskResult],
    *,
    root: Path | None = None,
    files: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[tuple[str, str]]]:
    """Relative links from ``report_dir`` to each job's staged files, when they exist.

    Staged files live at ``<root>/<invocation>/<job>/...`` (the local sink's layout; ``root``
    defaults to ``report_dir``); ``files`` gives them per job (from the sink's summary), else the
    job's folder is listed when it exists.
    """
    report_dir = Path(report_dir)
    root = report_dir if root is None else Path(root)
    out: dict[str, list[tuple[str, str]]] = {}
    for r in results:
        job_dir = root / r.invocation_id / r.job_id
        names = list(files.get(r.job_id, ())) if files is not None else None
        if names is None:
            if not job_dir.is_dir():
                continue
            names = [n for n in list_files(job_dir) if not n.startswith("result.")]
        rel = Path(os.path.relpath(job_dir, report_dir)).as_posix()
        out[r.job_id] = [(name, quote(f"{rel}/{name}")) for name in names]
    return out


def _number(value: Any) -> float:
    if isinstance(value, str):
        return float(value)  # "nan", "inf", "-inf": how the summary writes non-finite values
    return float(value)


def results_from_summary(runs: Iterable[Mapping[str, Any]]) -> list[TaskResult]:
    """TaskResults back from the local sink's JSON summary entries (metrics, stats, identity)."""
    out = []
    for run in runs:
        stats = run.get("stats") or {}
        metrics = tuple(
            Metric(name, _number(value), {s: _number(v) for s, v in (stats.get(name) or {}).items()})
            for name, value in (run.get("metrics") or {}).items()
        )
        try:
            state = JobState(run.get("state") or "unknown")
        except ValueError:
            state = JobState.UNKNOWN
        stamp = run.get("timestamp")
        out.append(
            TaskResult(
                job_id=str(run["job_id"]),
                invocation_id=str(run.get("invocation_id") or ""),
                task=str(run.get("task") or ""),
                harness=str(run.get("harness") or ""),
                model_id=str(run.get("model_id") or ""),
                executor=str(run.get("executor") or ""),
                metrics=metrics,
                state=state,
                container=run.get("container"),
                timestamp=float(stamp) if isinstance(stamp, (int, float)) and math.isfinite(stamp) else None,
            )
        )
    return out
