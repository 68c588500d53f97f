"""``samples: table``: a job's samples as one ``wandb.Table``, logged under ``samples/<harness>.<task>``.

The rows come from the core (:func:`evalport.domain.sample_rows.sample_rows`: masked, capped,
filtered). A re-export logs the table again under the same key: the run's summary (what the W&B UI
shows) then holds the new table, and its ``run_table`` artifact gets a new version (the ``latest``).
A W&B table holds its rows in memory and ``run.log`` keeps at most ``wandb.Table.MAX_ROWS``
(10,000) of them, so at most that many are sent, with a note when there were more.

:func:`samples_digest` is what a job's fingerprint adds when samples are on: the rows' digest,
read without keeping them, so a job whose samples changed is written again and one whose samples
did not is left alone.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from typing import Any

from evalport.domain.filters import MetricFilter
from evalport.domain.model import TaskResult
from evalport.domain.sample_rows import SampleOptions, SampleRow, sample_rows

#: The most rows ``run.log`` keeps of a table (``wandb.Table.MAX_ROWS`` in wandb 0.31).
MAX_TABLE_ROWS = 10_000
LEADING_COLUMNS = ("sample_id", "model", "task", "input", "target", "output")
TRAILING_COLUMNS = ("metadata", "truncated")
FORMAT_VERSION = 1


def table_key(result: TaskResult) -> str:
    """The key a job's table is logged under (one per job, also in a multi_task run)."""
    return f"samples/{result.harness}.{result.task}"


def score_column(name: str) -> str:
    return f"score.{name}" if name in LEADING_COLUMNS + TRAILING_COLUMNS else name


def capped(options: SampleOptions) -> SampleOptions:
    """The options with ``max_samples`` no higher than a W&B table keeps."""
    if options.max_samples is not None and options.max_samples <= MAX_TABLE_ROWS:
        return options
    return replace(options, max_samples=MAX_TABLE_ROWS)


def samples_digest(result: TaskResult, options: SampleOptions, metric_filter: MetricFilter) -> str:
    """A digest of the rows a job's table holds ('' when samples are off or the job keeps none)."""
    if not options.enabled or result.samples is None:
        return ""
    options = capped(options)
    digest = hashlib.sha256(
        json.dumps([FORMAT_VERSION, options.mode, options.max_samples, options.max_chars]).encode()
    )
    for row in sample_rows(result, options, metric_filter):
        digest.update(json.dumps(_values(row), ensure_ascii=False, allow_nan=True).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:24]


def _values(row: SampleRow) -> list[Any]:
    return [row.sample_id, row.model, row.task, row.input, row.target, row.output, row.scores, row.metadata]


def _cell(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def samples_table(
    result: TaskResult, options: SampleOptions, metric_filter: MetricFilter
) -> tuple[Any, tuple[str, ...]]:
    """(the job's ``wandb.Table``, or None when it has no samples to log; the notes on what was cut)."""
    if not options.enabled or result.samples is None:
        return None, ()
    wanted = options
    options = capped(options)
    stream = sample_rows(result, options, metric_filter)
    rows = list(stream)  # a wandb.Table holds them all; its columns are known only at the end
    notes = stream.notes
    if stream.cut_rows and options.max_samples != wanted.max_samples:
        notes = (*notes, f"samples: a W&B table keeps at most {MAX_TABLE_ROWS:,} rows")
    if not rows:
        return None, notes
    return _table(rows), notes


def _table(rows: list[SampleRow]) -> Any:
    import wandb

    names = list(dict.fromkeys(name for row in rows for name in row.scores))
    columns: list[str | int] = [*LEADING_COLUMNS, *map(score_column, names), *TRAILING_COLUMNS]
    data = [
        [
            row.sample_id,
            row.model,
            row.task,
            row.input,
            row.target,
            row.output,
            *(_cell(row.scores.get(name)) for name in names),
            row.metadata,
            row.truncated,
        ]
        for row in rows
    ]
    return wandb.Table(columns=columns, data=data, allow_mixed_types=True)
