"""The local sink's sample store: a Parquet dataset, one file per job, replaced on re-export.

Layout: ``<output_dir>/samples/model=<model>/task=<task>/<job_id>.parquet`` (hive partitions, the
values percent-encoded so ``acme/7b`` stays one folder; DuckDB, pyarrow, pandas, polars and Spark
decode them). Each file is streamed from the job's samples in record batches to a temp file beside
it and renamed over the old one, so a reader sees the old rows or the new ones and a re-export
never appends. The columns are documented in docs/sinks/local.md (``SCHEMA`` below is the truth).
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from evalport.adapters.staging import StageResult
from evalport.domain.errors import EvalportError
from evalport.domain.filters import MetricFilter
from evalport.domain.model import TaskResult
from evalport.domain.ports import ExportItem
from evalport.domain.sample_rows import SampleOptions, SampleRow, has_samples, sample_rows

if TYPE_CHECKING:
    import pyarrow as pa

SAMPLES_DIR = "samples"
#: Rows per record batch: big enough for pyarrow to be fast, small enough to keep memory flat.
BATCH_ROWS = 2048
_NAME_MAX = 255
#: Columns that repeat within a file; dictionary-encoding the unique text columns only costs time.
_DICTIONARY_COLUMNS = ["job_id", "invocation_id", "harness"]


class SampleStoreError(ValueError):
    """The job's samples could not be stored (the message names the job and what to do)."""


def schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("job_id", pa.string()),
            ("invocation_id", pa.string()),
            ("harness", pa.string()),
            ("sample_id", pa.string()),
            ("input", pa.string()),
            ("target", pa.string()),
            ("output", pa.string()),
            ("score", pa.float64()),
            ("scores", pa.map_(pa.string(), pa.float64())),
            ("labels", pa.map_(pa.string(), pa.string())),
            ("metadata", pa.string()),
            ("truncated", pa.bool_()),
        ]
    )


def partition_name(key: str, value: str) -> str:
    """``model=acme%2F7b``: one plain folder name whatever the value holds."""
    name = f"{key}={quote(value, safe='')}"
    if len(name.encode()) > _NAME_MAX:
        raise SampleStoreError(
            f"the {key} {value[:60]!r}... is too long to name a samples folder ({len(name)} characters "
            f"encoded, at most {_NAME_MAX}); the job's samples were not stored"
        )
    return name


def job_file(output_dir: Path, result: TaskResult) -> Path:
    folder = output_dir / SAMPLES_DIR / partition_name("model", result.model_id)
    return folder / partition_name("task", result.task) / f"{result.job_id}.parquet"


def _maps(rows: list[SampleRow]) -> tuple[pa.Array, pa.Array]:
    """``scores`` (numbers) and ``labels`` (text scores) as two map arrays, built from offsets."""
    import pyarrow as pa

    num_offsets, num_keys, num_values = [0], [], []
    txt_offsets, txt_keys, txt_values = [0], [], []
    for row in rows:
        for name, value in row.scores.items():
            if isinstance(value, str):
                txt_keys.append(name)
                txt_values.append(value)
            else:
                num_keys.append(name)
                num_values.append(value)
        num_offsets.append(len(num_keys))
        txt_offsets.append(len(txt_keys))
    scores = pa.MapArray.from_arrays(
        pa.array(num_offsets, pa.int32()), pa.array(num_keys, pa.string()), pa.array(num_values, pa.float64())
    )
    labels = pa.MapArray.from_arrays(
        pa.array(txt_offsets, pa.int32()), pa.array(txt_keys, pa.string()), pa.array(txt_values, pa.string())
    )
    return scores, labels


def _batch(rows: list[SampleRow], schema: pa.Schema) -> pa.RecordBatch:
    import pyarrow as pa

    scores, labels = _maps(rows)
    text = pa.string()
    arrays = [
        pa.array([r.job_id for r in rows], text),
        pa.array([r.invocation_id for r in rows], text),
        pa.array([r.harness for r in rows], text),
        pa.array([r.sample_id for r in rows], text),
        pa.array([r.input for r in rows], text),
        pa.array([r.target for r in rows], text),
        pa.array([r.output for r in rows], text),
        pa.array([r.score for r in rows], pa.float64()),
        scores,
        labels,
        pa.array([r.metadata for r in rows], text),
        pa.array([r.truncated for r in rows], pa.bool_()),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _chunks(rows: Iterable[SampleRow], size: int) -> Iterator[list[SampleRow]]:
    chunk: list[SampleRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _temp_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")


def _remove_stale(output_dir: Path, result: TaskResult, keep: Path) -> None:
    """Removes the job's file from other partitions (its model or task was named otherwise before)."""
    pattern = os.path.join(glob.escape(str(output_dir / SAMPLES_DIR)), "*", "*", glob.escape(keep.name))
    for other in glob.glob(pattern):
        if Path(other) != keep:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(other)


@dataclass(frozen=True)
class SampleWrite:
    """What storing one job's samples did: the file (None when the job has none) and the notes."""

    path: Path | None
    rows: int
    notes: tuple[str, ...]


def write_job_samples(
    output_dir: Path, result: TaskResult, options: SampleOptions, metric_filter: MetricFilter
) -> SampleWrite:
    """Streams the job's samples into its Parquet file, replacing the old one atomically.

    A job without samples (or with none left after the cut) leaves no file; an old one is removed.
    """
    if not has_samples(result, options):
        return SampleWrite(None, 0, ())
    try:
        import pyarrow.parquet as pq
    except ImportError:
        missing = "samples not stored: pyarrow is not installed (pip install 'evalport[samples]')"
        return SampleWrite(None, 0, (missing,))

    path = job_file(output_dir, result)
    fresh = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    stream = sample_rows(result, options, metric_filter)
    table_schema = schema()
    tmp = _temp_beside(path)
    writer = None
    try:
        for chunk in _chunks(stream, BATCH_ROWS):
            if writer is None:
                writer = pq.ParquetWriter(str(tmp), table_schema, use_dictionary=_DICTIONARY_COLUMNS)
            writer.write_batch(_batch(chunk, table_schema))
        if writer is not None:
            writer.close()
            writer = None
            os.replace(tmp, path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    except EvalportError as exc:
        raise SampleStoreError(f"samples not stored: {exc}") from None
    finally:
        if writer is not None:
            writer.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    if fresh:
        _remove_stale(output_dir, result, path)
    return SampleWrite(path if stream.rows else None, stream.rows, stream.notes)


@dataclass(frozen=True)
class NotedStage(StageResult):
    """A StageResult whose note also says what the sample store cut or masked."""

    sample_notes: tuple[str, ...] = ()

    @property
    def note(self) -> str:
        return "; ".join(n for n in (StageResult.note.fget(self), *self.sample_notes) if n)  # type: ignore[attr-defined]


class SampleSink(Protocol):
    """What the store needs of the local sink."""

    @property
    def output_dir(self) -> Path: ...

    @property
    def sample_options(self) -> SampleOptions: ...

    @property
    def metric_filter(self) -> MetricFilter: ...


def store_samples(sink: SampleSink, item: ExportItem, stage: StageResult) -> StageResult:
    """The local sink's call: stores ``item``'s samples and returns ``stage`` carrying their notes."""
    written = write_job_samples(sink.output_dir, item.result, sink.sample_options, sink.metric_filter)
    if not written.notes:
        return stage
    return NotedStage(stage.files, stage.changed, stage.withheld, written.notes)
