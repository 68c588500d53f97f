"""A job's samples in its MLflow run: spooled once, compared by digest, then written as a table.

:func:`spool` streams the core's rows (:func:`evalport.domain.sample_rows.sample_rows`: masked,
capped, filtered) into a local JSON-lines file and hashes them on the way; a run whose samples tag
holds that digest already has these rows, and nothing is sent. Otherwise ``samples: table`` writes
the spool as the table file MLflow's ``log_table`` writes (``{"columns": [...], "data": [...]}``)
and uploads it over the file of the earlier export (``log_table`` itself would append to it), and
``samples: traces`` writes one trace per row (:mod:`.traces`). No mlflow import here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from evalport.adapters.sinks.mlflow.names import mlflow_param_key
from evalport.domain.filters import MetricFilter
from evalport.domain.model import TaskResult
from evalport.domain.sample_rows import SampleOptions, SampleRow, sample_rows

#: The run tag holding the digest of the samples the run holds (``.<task>`` in multi_task).
SAMPLES_TAG = "evalport.samples_digest"
#: MLflow's tag listing a run's table artifacts; the UI shows the files it names as tables.
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"
#: Where a job's table goes in its run.
TABLE_FOLDER = "samples"
#: The table's columns before the scores, and after them.
LEADING_COLUMNS = ("sample_id", "model", "task", "input", "target", "output")
TRAILING_COLUMNS = ("metadata", "truncated")
#: A spooled row's fields, in the order of its JSON list.
ROW_FIELDS = tuple(f.name for f in fields(SampleRow))
#: Bumped whenever what a table or trace holds changes, so runs written before are written again.
FORMAT_VERSION = 1


def samples_tag(result: TaskResult, multi_task: bool) -> str:
    return f"{SAMPLES_TAG}.{mlflow_param_key(result.task)}" if multi_task else SAMPLES_TAG


def table_file(result: TaskResult) -> str:
    """The table's artifact path in the run: ``samples/<harness>.<task>.json`` (one per job, so a
    multi_task run keeps each task's table apart)."""
    name = f"{result.harness}.{result.task}".replace("/", "_").replace("\\", "_").lstrip(".")
    return f"{TABLE_FOLDER}/{name}.json"


def score_column(name: str) -> str:
    """A score's column: its own name, unless that is one of the fixed columns."""
    return f"score.{name}" if name in LEADING_COLUMNS + TRAILING_COLUMNS else name


@dataclass
class Spool:
    """The rows of one job written to ``path`` (one JSON list per line), with their digest, the
    score names in first-seen order, and the core's notes (what was cut or masked)."""

    path: Path
    digest: str
    rows: int
    score_names: list[str] = field(default_factory=list)
    notes: tuple[str, ...] = ()

    def read(self) -> Iterator[SampleRow]:
        """The rows again, one at a time."""
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                job, invocation, model, task, harness, sample, text, target, output, *rest = json.loads(line)
                scores, metadata, truncated = rest
                yield SampleRow(
                    job,
                    invocation,
                    model,
                    task,
                    harness,
                    sample,
                    text,
                    target,
                    output,
                    scores,
                    metadata,
                    truncated,
                )


def spool(
    result: TaskResult, options: SampleOptions, metric_filter: MetricFilter, folder: Path
) -> Spool | None:
    """The job's rows spooled under ``folder`` (None: the job keeps no samples or they are off)."""
    if not options.enabled or result.samples is None:
        return None
    stream = sample_rows(result, options, metric_filter)
    digest = hashlib.sha256(
        json.dumps([FORMAT_VERSION, options.mode, options.max_samples, options.max_chars]).encode()
    )
    names: dict[str, None] = {}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "rows.jsonl"
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        for row in stream:
            line = json.dumps([getattr(row, f) for f in ROW_FIELDS], ensure_ascii=False, allow_nan=True)
            digest.update(line.encode("utf-8"))
            digest.update(b"\n")
            fh.write(line + "\n")
            names.update(dict.fromkeys(row.scores))
            count += 1
    return Spool(path, digest.hexdigest()[:24], count, list(names), stream.notes)


def _cell(value: object) -> object:
    """NaN and infinities as JSON null (the table file must stay JSON that every reader parses)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


def write_table(rows: Spool, path: Path) -> Path:
    """The spooled rows as the ``split`` table JSON ``log_table`` writes, streamed to ``path``."""
    columns = [*LEADING_COLUMNS, *map(score_column, rows.score_names), *TRAILING_COLUMNS]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        fh.write('{"columns":' + json.dumps(columns, ensure_ascii=False) + ',"data":[')
        for index, row in enumerate(rows.read()):
            cells: list[object] = [row.sample_id, row.model, row.task, row.input, row.target, row.output]
            cells += [_cell(row.scores.get(name)) for name in rows.score_names]
            cells += [row.metadata, row.truncated]
            fh.write(("," if index else "") + json.dumps(cells, ensure_ascii=False, allow_nan=False))
        fh.write("]}")
    return path


def logged_artifacts(current: str | None, artifact_file: str) -> str | None:
    """The run's ``mlflow.loggedArtifacts`` tag naming ``artifact_file`` as a table (None: it does)."""
    try:
        entries = json.loads(current) if current else []
    except ValueError:
        entries = []
    if not isinstance(entries, list):
        entries = []
    entry = {"path": artifact_file, "type": "table"}
    if entry in entries:
        return None
    # Non-ASCII kept as it is: load_table finds a table by a LIKE on this tag's text.
    return json.dumps([*entries, entry], ensure_ascii=False)


def sample_tags(state_tags: Mapping[str, str], tag: str, rows: Spool, table: str | None) -> dict[str, str]:
    """The tags to log once the samples are written: the digest, and the table's entry."""
    tags = {tag: rows.digest}
    if table is not None:
        listed = logged_artifacts(state_tags.get(LOGGED_ARTIFACTS_TAG), table)
        if listed is not None:
            tags[LOGGED_ARTIFACTS_TAG] = listed
    return tags
