"""A model x task comparison of headline scores, built from TaskResults (pure: no I/O).

Rows are models, columns are tasks; each cell holds the task's *headline* metric for that model.

The headline metric of a task is chosen once per task (so every model is compared on the same
metric), by the first of these rules that applies:

1. a configured one (``headline={"gsm8k": "exact_match_strict-match"}``), given as the full flat
   name (``gsm8k_exact_match_strict-match``) or the part after ``<task>_``; a configured name no
   job of the task has is reported in ``notes`` and the rules below choose instead;
2. the first name of :data:`HEADLINE_NAMES` for which ``<task>_<name>`` is a metric of the task;
3. the alphabetically first *task-level* metric starting with ``<task>_`` (else of any name).
   A metric is sub-group level, not task-level, when it is ``<task>_<group>_<rest>`` and
   ``<task>_<rest>`` is a metric too (``mmlu_stem_acc`` next to ``mmlu_acc``). Alphabetical rather
   than file order, so the choice is the same whether results come from result files or from a
   JSON summary (which stores metrics sorted).

The rules look at the union of the metric names of every job of the task, so the choice does not
depend on the order of the results. When one model ran a task several times, the cell shows the
latest run (by timestamp, then job id) and counts the others.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from evalport.domain.errors import UsageError
from evalport.domain.model import TaskResult

#: Metric names (after ``<task>_``) that are a task's headline, in priority order.
HEADLINE_NAMES: tuple[str, ...] = (
    "score_micro",
    "score",
    "acc",
    "accuracy",
    "exact_match_strict-match",
    "exact_match",
    "exact_match_flexible-extract",
    "pass@1",
    "prompt_level_strict_acc",
    "f1",
    "acc_norm",
)

#: A headline whose name matches this is "lower is better" (the best cell is the smallest value).
LOWER_IS_BETTER = re.compile(r"(loss|perplexity|ppl|error|(^|_)wer($|_)|(^|_)cer($|_))", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TaskColumn:
    """One task of the matrix and the headline metric chosen for it (and why)."""

    key: str
    task: str
    harness: str
    label: str
    metric: str | None
    rule: str
    higher_is_better: bool = True

    @property
    def metric_short(self) -> str:
        """The headline's name without the ``<task>_`` prefix (what a header has room for)."""
        if self.metric is None:
            return ""
        prefix = f"{self.task}_"
        return self.metric[len(prefix) :] if self.metric.startswith(prefix) else self.metric


@dataclass(frozen=True, slots=True)
class Cell:
    """A model's headline score on a task; ``value`` is None when the model has no such result."""

    model: str
    task_key: str
    value: float | None = None
    stderr: float | None = None
    job_id: str | None = None
    runs: int = 0
    best: bool = False
    delta: float | None = None
    is_baseline: bool = False


@dataclass(frozen=True)
class Comparison:
    """The matrix: ``cell(model, task_key)`` for every model in ``models`` and task in ``tasks``."""

    models: tuple[str, ...]
    tasks: tuple[TaskColumn, ...]
    cells: Mapping[tuple[str, str], Cell]
    results: tuple[TaskResult, ...]
    baseline: str | None = None
    notes: tuple[str, ...] = field(default=())

    def cell(self, model: str, task_key: str) -> Cell:
        return self.cells[(model, task_key)]

    def task(self, key: str) -> TaskColumn:
        return next(t for t in self.tasks if t.key == key)


def task_key(result: TaskResult) -> str:
    return f"{result.harness}/{result.task}"


def is_subgroup_metric(name: str, task: str, names: Iterable[str]) -> bool:
    """``<task>_<group>_<rest>`` is a sub-group metric when ``<task>_<rest>`` exists too."""
    prefix = f"{task}_"
    if not name.startswith(prefix):
        return False
    rest = name[len(prefix) :]
    for other in names:
        if other != name and other.startswith(prefix):
            tail = other[len(prefix) :]
            if rest.endswith(f"_{tail}"):
                return True
    return False


def choose_headline(task: str, names: Iterable[str], configured: str | None = None) -> tuple[str | None, str]:
    """(metric name or None, the rule that chose it) for a task with these metric names."""
    pool = set(names)
    if configured:
        for candidate in (configured, f"{task}_{configured}"):
            if candidate in pool:
                return candidate, "configured"
    for preferred in HEADLINE_NAMES:
        if f"{task}_{preferred}" in pool:
            return f"{task}_{preferred}", f"preferred name {preferred!r}"
    task_level = sorted(n for n in pool if not is_subgroup_metric(n, task, pool))
    own = [n for n in task_level if n.startswith(f"{task}_")]
    if own or task_level:
        return (own or task_level)[0], "first task-level metric by name"
    return None, "no metric"


def _headline_value(result: TaskResult, metric: str | None) -> tuple[float | None, float | None]:
    if metric is None:
        return None, None
    value: float | None = None
    stderr: float | None = None
    for m in result.metrics:
        if m.name == metric:
            value = m.value
            stderr = m.stats.get("stderr")
        elif m.name == f"{metric}_stderr" and stderr is None:
            stderr = m.value
    return value, stderr


def _latest(results: Sequence[TaskResult]) -> TaskResult:
    return max(results, key=lambda r: (r.timestamp is not None, r.timestamp or 0.0, r.job_id))


def _labels(keys: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """Task name as the label, or ``harness/task`` when two harnesses ran a task of the same name."""
    keys = list(keys)
    harnesses: dict[str, set[str]] = {}
    for _key, task, harness in keys:
        harnesses.setdefault(task, set()).add(harness)
    return {key: task if len(harnesses[task]) == 1 else key for key, task, _h in keys}


def build_comparison(
    results: Iterable[TaskResult],
    *,
    headline: Mapping[str, str] | None = None,
    baseline: str | None = None,
) -> Comparison:
    """Builds the matrix. ``headline`` maps a task name (or ``harness/task``) to its metric;
    ``baseline`` is a model id, which must be among the results' models (else UsageError)."""
    headline = dict(headline or {})
    ordered = tuple(sorted(results, key=lambda r: (r.model_id, r.task, r.harness, r.job_id)))
    models = sorted({r.model_id for r in ordered})
    if baseline is not None:
        if baseline not in models:
            known = ", ".join(models) or "none"
            raise UsageError(f"baseline model {baseline!r} is not among the reported models ({known})")
        models = [baseline, *(m for m in models if m != baseline)]

    by_task: dict[str, list[TaskResult]] = {}
    for r in ordered:
        by_task.setdefault(task_key(r), []).append(r)
    labels = _labels((k, rs[0].task, rs[0].harness) for k, rs in by_task.items())
    notes: list[str] = []
    known_tasks = {r.task for r in ordered} | set(by_task)
    for name in sorted(set(headline) - known_tasks):
        notes.append(f"headline for {name!r} ignored: no reported job ran that task")

    columns: list[TaskColumn] = []
    cells: dict[tuple[str, str], Cell] = {}
    for key in sorted(by_task, key=lambda k: (labels[k], k)):
        column = _column(key, labels[key], by_task[key], headline, notes)
        columns.append(column)
        cells.update(_cells(column, by_task[key], models, baseline))
    return Comparison(tuple(models), tuple(columns), cells, ordered, baseline, tuple(notes))


def _column(
    key: str, label: str, group: Sequence[TaskResult], headline: Mapping[str, str], notes: list[str]
) -> TaskColumn:
    """A task's column: its headline metric (configured, else chosen) and which way is better."""
    task, harness = group[0].task, group[0].harness
    configured = headline.get(key, headline.get(task))
    names = {m.name for r in group for m in r.metrics}
    metric, rule = choose_headline(task, names, configured)
    if configured and rule != "configured":
        notes.append(
            f"{label}: configured headline {configured!r} is not a metric of this task; "
            f"used {metric!r} ({rule})"
        )
    higher = not (metric and LOWER_IS_BETTER.search(metric))
    return TaskColumn(key, task, harness, label, metric, rule, higher)


def _cells(
    column: TaskColumn, group: Sequence[TaskResult], models: Sequence[str], baseline: str | None
) -> dict[tuple[str, str], Cell]:
    """One cell per model in a column: the latest run's headline value, the best marked, the delta."""
    per_model: dict[str, list[TaskResult]] = {}
    for r in group:
        per_model.setdefault(r.model_id, []).append(r)
    raw: dict[str, tuple[float | None, float | None, str | None, int]] = {}
    for model in models:
        model_runs = per_model.get(model, [])
        if not model_runs:
            raw[model] = (None, None, None, 0)
            continue
        latest = _latest(model_runs)
        value, stderr = _headline_value(latest, column.metric)
        raw[model] = (value, stderr, latest.job_id, len(model_runs))

    finite = [v for v, *_ in raw.values() if v is not None and math.isfinite(v)]
    best_value = (max(finite) if column.higher_is_better else min(finite)) if len(finite) >= 2 else None
    base_value = raw[baseline][0] if baseline is not None else None
    cells: dict[tuple[str, str], Cell] = {}
    for model in models:
        value, stderr, job_id, runs = raw[model]
        delta = None
        if value is not None and base_value is not None and model != baseline:
            delta = value - base_value if math.isfinite(value) and math.isfinite(base_value) else None
        cells[(model, column.key)] = Cell(
            model=model,
            task_key=column.key,
            value=value,
            stderr=stderr,
            job_id=job_id,
            runs=runs,
            best=best_value is not None and value == best_value,
            delta=delta,
            is_baseline=model == baseline,
        )
    return cells
