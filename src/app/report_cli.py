"""``evalport report``: a model x task comparison (HTML or Markdown) of finished jobs.

Registered lazily in :mod:`evalport.app.cli`, so ``evalport --help`` never imports this module.
Exit codes: 0 report written, 1 some jobs could not be read (the report covers the others),
2 usage error (nothing to report, unknown baseline, bad option).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal

from cyclopts import Parameter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evalport.app.cli import EXIT_FAILED, EXIT_OK, ExecDb, JobDirs, ReaderOpt, _container
from evalport.app.cli_output import count, error, warning
from evalport.domain.errors import ConfigError, UsageError

DEFAULT_HTML = "report.html"


class ReportOptions(BaseModel):
    """The ``report:`` block of ``--config`` (command-line options win over it)."""

    model_config = ConfigDict(extra="forbid")

    headline: dict[str, str] = Field(default_factory=dict, description="task -> headline metric")
    baseline: str | None = None
    title: str = "Model comparison"
    log_metrics: list[str] = Field(default_factory=list)
    samples: str | None = Field(default=None, description="the local sink's folder whose samples/ to compare")

    @field_validator("log_metrics", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value


def parse_headlines(pairs: list[str] | None) -> dict[str, str]:
    """``TASK=METRIC`` options to a mapping (a usage error names the bad one)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        task, sep, metric = pair.partition("=")
        if not sep or not task.strip() or not metric.strip():
            raise UsageError(f"--headline {pair!r}: write TASK=METRIC, e.g. gsm8k=exact_match_strict-match")
        out[task.strip()] = metric.strip()
    return out


def _write_report(
    reporting: Any, comparison: Any, fmt: str, target: str, title: str, samples: str | None
) -> None:
    """The rendered report to stdout (``-``) or to a file (written whole, then renamed into place)."""
    if target == "-":
        sys.stdout.write(reporting.render(comparison, fmt, title=title, samples=samples))
        return
    path = Path(target).expanduser()
    links = reporting.staged_links(path.parent, comparison.results) if fmt == "html" else None
    text = reporting.render(comparison, fmt, title=title, links=links, samples=samples)
    try:
        reporting.write(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}; choose another --output") from None
    print(
        f"report: {count(len(comparison.results), 'job')}, {count(len(comparison.models), 'model')}, "
        f"{count(len(comparison.tasks), 'task')} -> {path.resolve()}"
    )


def _options(config: str | None) -> tuple[ReportOptions, dict]:
    from evalport.app.settings import load_document

    doc = load_document(config)
    try:
        return ReportOptions.model_validate(doc.get("report") or {}), doc
    except ValidationError as exc:
        problems = "; ".join(f"report.{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"--config: {problems}") from None


def _require_charts() -> None:
    """HTML reports draw charts with matplotlib (the ``report`` extra): say so before reading any job."""
    from evalport.app.registry import is_installed

    if not is_installed("matplotlib"):
        raise ConfigError(
            "HTML reports need the report extra (matplotlib): pip install 'evalport[report]'; "
            "or write Markdown with --format md"
        )


def report(
    ids: list[str] | None = None,
    /,
    *,
    output: Annotated[
        str | None,
        Parameter(
            allow_leading_hyphen=True,
            help="file to write ('-' for stdout; default report.html, or stdout for md)",
        ),
    ] = None,
    format: Annotated[
        Literal["html", "md"] | None, Parameter(help="html or md (default: --output's suffix, else html)")
    ] = None,
    log_metrics: Annotated[list[str] | None, Parameter(help="metric patterns to include (default: all)")] = (
        None
    ),
    baseline: Annotated[str | None, Parameter(help="model id to show differences against")] = None,
    headline: Annotated[
        list[str] | None, Parameter(help="TASK=METRIC: the metric a task is compared on (repeatable)")
    ] = None,
    title: Annotated[str | None, Parameter(help="the report's title")] = None,
    config: Annotated[str | None, Parameter(help="YAML/JSON file with a report: block")] = None,
    include_failed: Annotated[bool, Parameter(help="also compare failed jobs (left out by default)")] = False,
    samples: Annotated[
        str | None,
        Parameter(help="the local sink's folder with samples/: add the samples two models disagree on"),
    ] = None,
    exec_db: ExecDb = None,
    job_dir: JobDirs = None,
    reader: ReaderOpt = None,
) -> int:
    """Compare models across tasks: a matrix of headline scores, charts and job details."""
    from evalport.app.request import ExportRequest
    from evalport.domain.comparison import build_comparison
    from evalport.domain.filters import MetricFilter

    opts, doc = _options(config)
    if not ids and not job_dir and not doc.get("job_dirs"):
        raise UsageError("give at least one invocation or job id (or --job-dir); `evalport ls` lists them")
    request = ExportRequest(ids=ids or [], config=doc, include_failed=include_failed)
    container = _container(exec_db, job_dir, request, reader=reader)
    reporting = container.reporting()
    fmt = reporting.format_for(output, format)
    if fmt == "html":
        _require_charts()
    target = output if output is not None else ("-" if fmt == "md" else DEFAULT_HTML)
    metric_filter = MetricFilter.of(log_metrics if log_metrics is not None else opts.log_metrics)

    results, read = container.service().read_results(request, skips_are_problems=False)
    for problem in read.problems:
        error(problem)
    for note in read.notes:
        warning(note)
    if not results:
        if any(p.startswith("job ") for p in read.problems):
            error("no job could be read; no report written")
            return EXIT_FAILED
        raise UsageError("nothing to report: no finished job matches the given ids")

    comparison = build_comparison(
        [metric_filter.apply_to(r) for r in results],
        headline={**opts.headline, **parse_headlines(headline)},
        baseline=baseline if baseline is not None else opts.baseline,
    )
    for note in comparison.notes:
        warning(note)
    folder = samples if samples is not None else opts.samples
    _write_report(reporting, comparison, fmt, target, title or opts.title, folder)
    return EXIT_FAILED if read.problems else EXIT_OK
