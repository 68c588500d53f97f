"""Reader of Inspect logs (``.eval`` zips and ``.json``), with inspect_ai's own log reader.

inspect_ai is imported only when needed (the optional extra ``evalport[inspect]``): ``.eval``
entries are Zstandard-compressed, which Python's zipfile cannot open before 3.14. Aggregates come
from the log header, never the samples (read by inspect_header when it can, else with
``read_eval_log(header_only=True)``); ``samples()`` streams them with ``read_eval_log_samples``.
One log is one invocation with one job. Mapping: docs/formats/inspect.md.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from evalport.adapters.formats.harness_files import (
    iso_seconds,
    mapping,
    number_or_none,
    stable_id,
    with_samples,
)
from evalport.adapters.formats.inspect_header import fast_header, json_cut_short
from evalport.domain.errors import ResultError, UsageError
from evalport.domain.model import JobState, Metric, TaskResult
from evalport.domain.samples import Sample

HARNESS = "inspect_ai"
#: ``<created, ':' and '+' as '-'>_<task>_<task id>.{eval,json}``, the names ``inspect eval`` gives.
LOG_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}[^_]*_.+_[A-Za-z0-9]+\.(eval|json)$")
_STATES = {
    "success": JobState.SUCCEEDED,
    "error": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
    "started": JobState.RUNNING,
}
_STDERR = "stderr"


def log_files(path: Path) -> list[Path]:
    """The Inspect logs in a folder, or ``path`` itself when it is one (``.eval`` by suffix alone)."""
    if path.is_file():
        return [path] if path.suffix == ".eval" or LOG_NAME.match(path.name) else []
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if LOG_NAME.match(p.name) and p.is_file())


def _inspect_log() -> Any:
    try:
        return importlib.import_module("inspect_ai.log")
    except ImportError:
        raise UsageError(
            "reading Inspect logs needs inspect_ai; install it with: pip install 'evalport[inspect]'"
        ) from None


def scorer_metrics(task: str, scores: Any) -> list[Metric]:
    """``<task>_<scorer>_<metric>`` for each metric of each ``results.scores[]``; a sibling ``stderr``
    metric becomes the ``stderr`` statistic of the scorer's other metrics. A scorer listed once per
    epoch reducer is named ``<scorer>_<reducer>``."""
    out: list[Metric] = []
    listed = [s for s in scores if isinstance(s, Mapping)] if isinstance(scores, list) else []
    names = [str(s.get("name")) for s in listed]
    for score, scorer in zip(listed, names, strict=True):
        if names.count(scorer) > 1 and score.get("reducer"):  # one scorer under several epoch reducers
            scorer = f"{scorer}_{score['reducer']}"
        metrics = {
            str(n): number_or_none(m.get("value") if isinstance(m, Mapping) else None)
            for n, m in mapping(score.get("metrics")).items()
        }
        stderr = metrics.get(_STDERR)
        others = {n: v for n, v in metrics.items() if n != _STDERR and v is not None}
        stats = {_STDERR: stderr} if stderr is not None else {}
        for name, value in others.items():
            out.append(Metric(f"{task}_{scorer}_{name}", value, stats))
        if not others and stderr is not None:
            out.append(Metric(f"{task}_{scorer}_{_STDERR}", stderr))
    return out


class InspectLogReader:
    name = "inspect"
    looks_for = "Inspect logs: <time>_<task>_<id>.eval or .json (or one .eval file)"

    def matches(self, path: Path) -> bool:
        return bool(log_files(path))

    def units(self, path: Path) -> list[Path]:
        """The independent runs in ``path``: its logs (read one by one when one is broken)."""
        return log_files(path)

    def read(self, path: Path) -> list[TaskResult]:
        files = log_files(path)
        if not files:
            raise ResultError(f"no {self.looks_for} here; is this an Inspect --log-dir?", path=path)
        base = path if path.is_dir() else path.parent
        return [with_samples(self.read_log(f), self, base) for f in files]

    def read_log(self, log_file: Path) -> TaskResult:
        header = read_header(log_file)
        spec = mapping(header.get("eval"))
        task, status = str(spec.get("task")), str(header.get("status"))
        inv = stable_id(HARNESS, spec.get("eval_id") or log_file.name, task)
        notes: list[str] = []
        if status != "success":
            message = mapping(header.get("error")).get("message")
            notes.append(f"Inspect status {status!r}" + (f": {message}" if message else ""))
        return TaskResult(
            job_id=f"{inv}.0",
            invocation_id=inv,
            task=task,
            harness=HARNESS,
            model_id=str(spec.get("model")),
            executor="local",
            metrics=tuple(scorer_metrics(task, mapping(header.get("results")).get("scores"))),
            state=_STATES.get(status, JobState.UNKNOWN),
            timestamp=iso_seconds(mapping(header.get("stats")).get("started_at"))
            or iso_seconds(spec.get("created")),
            config=_config(header),
            artifacts=(log_file.name,),
            notes=tuple(notes),
            results_dir=str(log_file.parent),
        )

    def samples(self, result: TaskResult, directory: Path) -> Iterator[Sample]:
        log_file = directory / result.artifacts[0]
        try:
            stream = _inspect_log().read_eval_log_samples(str(log_file), all_samples_required=False)
            for sample in stream:
                yield _sample(sample)
        except ResultError:
            raise
        except Exception as exc:  # inspect_ai raises many kinds: zip, JSON, validation
            raise ResultError(
                f"cannot read its samples: {type(exc).__name__}: {exc}", job_id=result.job_id, path=log_file
            ) from None


def read_header(log_file: Path) -> Mapping[str, Any]:
    """The log without its samples, as JSON data: the fast path when it can, else inspect_ai's reader."""
    if log_file.suffix == ".json" and json_cut_short(log_file):
        raise ResultError(
            "is truncated (no closing brace); re-run the eval or restore the file", path=log_file
        )
    fast = fast_header(log_file)
    if fast is not None:
        return fast
    header = _read(log_file, header_only=True)
    dumped: Mapping[str, Any] = header.model_dump(mode="json", exclude={"samples", "reductions"})
    return dumped


def _read(log_file: Path, *, header_only: bool) -> Any:
    reader = _inspect_log()
    try:
        return reader.read_eval_log(str(log_file), header_only=header_only)
    except Exception as exc:  # a truncated zip, bad JSON, a schema error: all mean the file is unusable
        raise ResultError(
            f"is not a readable Inspect log ({type(exc).__name__}: {_short(exc)}); "
            "re-run the eval or restore the file",
            path=log_file,
        ) from None


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


def _config(header: Mapping[str, Any]) -> dict[str, Any]:
    spec = mapping(header.get("eval"))
    results = mapping(header.get("results"))
    config: dict[str, Any] = {
        "task_args": dict(mapping(spec.get("task_args"))),
        "model_args": dict(mapping(spec.get("model_args"))),
        "run_id": spec.get("run_id"),
        "eval_id": spec.get("eval_id"),
        "task_id": spec.get("task_id"),
        "dataset": mapping(spec.get("dataset")).get("name"),
        "inspect_ai": mapping(spec.get("packages")).get("inspect_ai"),
        "status": header.get("status"),
        "total_samples": results.get("total_samples"),
        "completed_samples": results.get("completed_samples"),
    }
    return {k: v for k, v in config.items() if v is not None}


def _sample(sample: Any) -> Sample:
    output = getattr(sample.output, "completion", None) if sample.output is not None else None
    scores: Mapping[str, Any] = {name: score.value for name, score in (sample.scores or {}).items()}
    metadata = dict(sample.metadata or {})
    metadata["epoch"] = sample.epoch
    if sample.error is not None:
        metadata["error"] = getattr(sample.error, "message", str(sample.error))
    return Sample(
        id=f"{sample.id}" if sample.epoch in (None, 1) else f"{sample.id}#{sample.epoch}",
        input=sample.input if isinstance(sample.input, str) else [_message(m) for m in sample.input],
        target=sample.target,
        output=output,
        scores=scores,
        metadata=metadata,
    )


def _message(message: Any) -> dict[str, Any]:
    return {"role": getattr(message, "role", None), "content": getattr(message, "text", None)}
