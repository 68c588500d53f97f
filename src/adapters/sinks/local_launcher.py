"""nemo-evaluator-launcher 0.2.6's local files (``compat: launcher``): ``processed_results.json`` / ``.csv``.

The same names, places, keys and CSV header as the launcher's ``local`` exporter, so scripts and
notebooks that read its files keep working:

* JSON ``{"benchmarks": {<task>: {"models": {<model>: [entry, ...]}}}, "export_timestamp": ...}``,
  each entry ``invocation_id, job_id, harness, container, scores, timestamp, executor, results_dir``;
* CSV ``Model Name, Harness, Task Name, Executor, Container, Invocation ID, Job ID, Results Dir``,
  then every score column, sorted.

``scores`` are the launcher's flat names (``<task>_<metric>[_<score>]``); evalport adds each
statistic as ``<name>_<stat>`` (the launcher drops the statistics nemo-evaluator writes per score).

Where the launcher is wrong, the rules are evalport's: a job already in a file is **replaced** (same
``job_id``, others kept) where the launcher skips it and keeps its stale scores; every write is a
temp file renamed into place; the combined file's read-modify-write holds a lock. An entry equal to
the one in the file rewrites nothing, which is how the sink tells ``unchanged``.
"""

from __future__ import annotations

import csv
import enum
import io
import json
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from evalport.adapters.files import atomic_write_text
from evalport.adapters.sinks.local_layout import csv_cell, read_cell
from evalport.domain.ports import ExportItem
from evalport.domain.report import Status

BASE_COLUMNS = (
    "Model Name",
    "Harness",
    "Task Name",
    "Executor",
    "Container",
    "Invocation ID",
    "Job ID",
    "Results Dir",
)
FORMATS = ("json", "csv")
#: The service stages remote jobs under a temp folder of this prefix: not where the job's results live.
_STAGING_PREFIX = "evalport-stage-"


def default_filename(fmt: str) -> str:
    return f"processed_results.{fmt}"


class Change(enum.Enum):
    NEW = "new"
    REPLACED = "replaced"
    SAME = "same"


@dataclass(frozen=True, slots=True)
class LauncherJob:
    """One job as the launcher's files describe it: where it goes (task, model) and its entry."""

    task: str
    model: str
    entry: dict[str, Any]

    @property
    def job_id(self) -> str:
        return str(self.entry["job_id"])

    def csv_row(self) -> dict[str, str]:
        entry = self.entry
        row = {
            "Model Name": self.model,
            "Harness": entry["harness"],
            "Task Name": self.task,
            "Executor": entry["executor"],
            "Container": entry["container"],
            "Invocation ID": entry["invocation_id"],
            "Job ID": entry["job_id"],
            "Results Dir": entry["results_dir"],
        }
        row.update(entry["scores"])
        return {k: _cell_text(v) for k, v in row.items() if v is not None}


def results_dir(item: ExportItem) -> str | None:
    """Where the job's results are, as the launcher writes it: the result's ``results_dir``
    (``host:path`` for a remote job), else the job directory read.

    Without a recorded place, a job staged from another host sits in a temp folder that is gone
    after the export; its entry then says ``null`` rather than a path that never held the results.
    """
    if item.result.results_dir:
        return item.result.results_dir
    directory = item.directory
    if directory is None or any(part.startswith(_STAGING_PREFIX) for part in directory.parts):
        return None
    return str(directory)


def launcher_job(item: ExportItem) -> LauncherJob:
    result = item.result
    entry = {
        "invocation_id": result.invocation_id,
        "job_id": result.job_id,
        "harness": result.harness,
        "container": result.container,
        "scores": result.flat_metrics(),
        "timestamp": result.timestamp,
        "executor": result.executor,
        "results_dir": results_dir(item),
    }
    return LauncherJob(result.task, result.model_id, entry)


def write_job(path: Path, fmt: str, item: ExportItem) -> Change:
    """The job's own file, in its folder (no lock: one export writes one job's folder)."""
    job = launcher_job(item)
    return upsert_file(path, fmt, [job], lock=False)[job.job_id]


def write_combined(path: Path, fmt: str, items: Sequence[ExportItem], *, batch: int) -> dict[str, Change]:
    """The combined file at ``path``: written, as by the launcher, when the export has more than one
    job (``batch``), and once it exists kept current by every export (the launcher's misses the
    jobs exported one at a time after it). Job id -> what changed; empty when not written."""
    if not items or (batch <= 1 and not path.is_file()):
        return {}
    return upsert_file(path, fmt, [launcher_job(item) for item in items], lock=True)


def status(own: Change | None, combined: Change | None, *, files_changed: bool) -> Status:
    """Exported when the job's own file is new; updated when an entry or a staged file changed."""
    if own is Change.NEW:
        return Status.EXPORTED
    if own is Change.REPLACED or combined in (Change.NEW, Change.REPLACED) or files_changed:
        return Status.UPDATED
    return Status.UNCHANGED


def upsert_file(path: Path, fmt: str, jobs: Sequence[LauncherJob], *, lock: bool) -> dict[str, Change]:
    """Puts ``jobs`` into the ``fmt`` file at ``path`` (created when missing); job id -> what changed.

    Nothing is written when every job is already there as it is. ``lock`` holds ``<path>.lock``
    across the read-modify-write (the combined file, which concurrent exports share). Raises
    ValueError for a file that is not in the launcher's format, OSError when it cannot be written.
    """
    from filelock import FileLock

    guard = FileLock(str(path) + ".lock", timeout=120) if lock else nullcontext()
    with guard:
        document = read_document(path, fmt)
        changes = {job.job_id: document.put(job) for job in jobs}
        if any(change is not Change.SAME for change in changes.values()):
            atomic_write_text(path, document.text())
    return changes


def read_document(path: Path, fmt: str) -> JsonDocument | CsvDocument:
    """The file at ``path`` (empty when missing); ValueError naming the file when it is not the format."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        text = None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text ({exc}); move it aside and export again") from None
    if fmt == "csv":
        return CsvDocument.parse(text or "")
    return JsonDocument.parse(text, path)


def held_job_ids(path: Path, fmt: str) -> set[str] | None:
    """The job ids the file holds; None when it does not exist. ValueError/OSError when unreadable."""
    if not path.is_file():
        return None
    return read_document(path, fmt).job_ids()


# ---- JSON ----------------------------------------------------------------------------------------


class JsonDocument:
    """The launcher's JSON summary, with an index of where each job's entry is."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.benchmarks: dict[str, Any] = data.setdefault("benchmarks", {})

    @classmethod
    def parse(cls, text: str | None, path: Path) -> JsonDocument:
        if text is None:
            return cls({"benchmarks": {}})
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}); move it aside and export again") from None
        if not isinstance(data, dict) or not isinstance(data.get("benchmarks", {}), dict):
            raise ValueError(
                f"{path} is not a launcher summary (no 'benchmarks' mapping); move it aside and export again"
            )
        for task, block in data.get("benchmarks", {}).items():
            models = block.get("models") if isinstance(block, dict) else None
            if not isinstance(models, dict) or not all(isinstance(v, list) for v in models.values()):
                raise ValueError(
                    f"{path}: benchmark {task!r} has no 'models' mapping of lists; "
                    "move it aside and export again"
                )
        return cls(data)

    def _entries(self) -> list[tuple[str, str, list[Any], int]]:
        out: list[tuple[str, str, list[Any], int]] = []
        for task, block in self.benchmarks.items():
            for model, entries in block["models"].items():
                out.extend((task, model, entries, i) for i, e in enumerate(entries) if isinstance(e, dict))
        return out

    def job_ids(self) -> set[str]:
        return {str(entries[i].get("job_id")) for _, _, entries, i in self._entries()}

    def put(self, job: LauncherJob) -> Change:
        found = [(t, m, es, i) for t, m, es, i in self._entries() if es[i].get("job_id") == job.job_id]
        if len(found) == 1 and found[0][:2] == (job.task, job.model):
            entries, index = found[0][2], found[0][3]
            if _same(entries[index], job.entry):
                return Change.SAME
            entries[index] = job.entry
        else:
            # Every copy goes: a re-evaluation may have moved the job to another task or model.
            for task, model, entries, index in reversed(found):
                del entries[index]
                self._prune(task, model)
            block = self.benchmarks.setdefault(job.task, {"models": {}})
            block["models"].setdefault(job.model, []).append(job.entry)
        self.data["export_timestamp"] = datetime.now().isoformat()
        return Change.REPLACED if found else Change.NEW

    def _prune(self, task: str, model: str) -> None:
        block = self.benchmarks.get(task)
        models = block["models"] if block else {}
        if model in models and not models[model]:
            del models[model]
        if block and not models:
            del self.benchmarks[task]

    def text(self) -> str:
        """Indented like the launcher's, except that each entry is one line (the C encoder stays fast)."""
        return _dump(self.data, 0) + "\n"


def _same(old: Any, new: Mapping[str, Any]) -> bool:
    """Equal as JSON (so NaN equals NaN, and 1 equals 1.0 as the launcher's float() makes them)."""
    return json.dumps(old, sort_keys=True) == json.dumps(_plain(new), sort_keys=True)


def _plain(entry: Mapping[str, Any]) -> Any:
    return json.loads(json.dumps(entry))


def _dump(value: Any, depth: int) -> str:
    if isinstance(value, dict) and value:
        pad = "  " * (depth + 1)
        items = [f"{pad}{json.dumps(str(k))}: {_dump(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}"
    if isinstance(value, list) and value:
        pad = "  " * (depth + 1)
        return "[\n" + ",\n".join(pad + json.dumps(v) for v in value) + "\n" + "  " * depth + "]"
    return json.dumps(value)


# ---- CSV -----------------------------------------------------------------------------------------


class CsvDocument:
    """The launcher's CSV summary: its header and rows (cells as text), rows found by ``Job ID``."""

    def __init__(self, header: list[str], rows: list[dict[str, str]]) -> None:
        self.header = header
        self.rows = rows

    @classmethod
    def parse(cls, text: str) -> CsvDocument:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [read_cell(c) for c in next(reader, [])]
        rows = []
        for cells in reader:
            if cells:
                values = (read_cell(c) if c[:1] == "'" else c for c in cells)
                rows.append(dict(zip(header, values, strict=False)))
        return cls(header, rows)

    def job_ids(self) -> set[str]:
        return {row["Job ID"] for row in self.rows if row.get("Job ID")}

    def put(self, job: LauncherJob) -> Change:
        new = job.csv_row()
        found = [i for i, row in enumerate(self.rows) if row.get("Job ID") == job.job_id]
        if len(found) == 1 and {k: v for k, v in self.rows[found[0]].items() if v != ""} == new:
            return Change.SAME
        for index in reversed(found[1:]):
            del self.rows[index]
        if found:
            self.rows[found[0]] = new
        else:
            self.rows.append(new)
        return Change.REPLACED if found else Change.NEW

    def text(self) -> str:
        """The base columns, then every other column (old ones kept, as the launcher does), sorted."""
        others = {k for row in self.rows for k in row} | set(self.header)
        columns = [*BASE_COLUMNS, *sorted(others - set(BASE_COLUMNS))]
        buf = io.StringIO()
        writer = csv.writer(buf)  # the launcher's dialect (excel: \r\n line ends)
        writer.writerow([csv_cell(c) for c in columns])
        for row in self.rows:
            writer.writerow([csv_cell(row.get(c, "")) for c in columns])
        return buf.getvalue()


def _cell_text(value: Any) -> str:
    """A cell as the csv module writes it (floats by repr: ``0.5``, ``nan``, ``inf``)."""
    return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
