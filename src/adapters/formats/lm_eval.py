"""Reader of lm-evaluation-harness output: ``results_<stamp>.json`` and ``samples_<task>_<stamp>.jsonl``.

A folder is ``--output_path`` itself (model subfolders holding the files) or one model subfolder.
Each results file is one invocation; each entry of its ``results`` (leaf tasks and groups alike,
as lm-eval reports both) is one job. Only the results file is parsed for aggregates; the samples
file is streamed by ``samples()`` when asked. Mapping, names and ids: docs/formats/lm_eval.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from evalport.adapters.formats.harness_files import (
    json_object,
    load_json_file,
    mapping,
    number_or_none,
    stable_id,
    stream_jsonl,
    with_samples,
)
from evalport.domain.errors import MetricConflictError, ResultError
from evalport.domain.model import JobState, Metric, TaskResult
from evalport.domain.samples import Sample

HARNESS = "lm-evaluation-harness"
RESULTS_PREFIX = "results_"
SAMPLES_PREFIX = "samples_"
_NO_FILTER = "none"
_STDERR = "_stderr"
_SAMPLE_METADATA = ("doc", "filter", "resps", "doc_hash", "prompt_hash", "target_hash")


def results_files(path: Path) -> list[Path]:
    """The results files of a folder (and of its model subfolders), or ``path`` itself, sorted.

    One ``scandir`` per folder (detection asks this of every folder under a root of many runs)."""
    if path.is_file():
        return [path] if _is_results_name(path.name) else []
    found: list[str] = []
    subfolders: list[str] = []
    _scan(os.fspath(path), found, subfolders)
    for folder in subfolders:
        _scan(folder, found, None)
    return [Path(p) for p in sorted(found)]


def _scan(folder: str, found: list[str], subfolders: list[str] | None) -> None:
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if _is_results_name(entry.name) and entry.is_file():
                    found.append(entry.path)
                elif subfolders is not None and entry.is_dir():
                    subfolders.append(entry.path)
    except OSError:
        return


def _is_results_name(name: str) -> bool:
    return name.startswith(RESULTS_PREFIX) and name.endswith(".json")


def _stamp(results_file: Path) -> str:
    return results_file.name[len(RESULTS_PREFIX) : -len(".json")]


def metric_name(task: str, key: str) -> tuple[str, str | None] | None:
    """``(flat name, statistic)`` of a ``results.<task>`` key, or None when it is not a metric.

    ``acc,none`` -> (``<task>_acc``, None); ``exact_match,strict-match`` ->
    (``<task>_exact_match_strict-match``, None); ``acc_stderr,none`` -> (``<task>_acc``, ``stderr``).
    The filter ``none`` adds nothing; any other filter is appended verbatim after ``_``.
    """
    metric, comma, filter_name = key.partition(",")
    if not comma or not metric:
        return None
    stat = None
    if metric.endswith(_STDERR) and len(metric) > len(_STDERR):
        metric, stat = metric[: -len(_STDERR)], "stderr"
    name = f"{task}_{metric}" if filter_name == _NO_FILTER else f"{task}_{metric}_{filter_name}"
    return name, stat


def task_metrics(task: str, entry: Mapping[str, Any]) -> tuple[list[Metric], list[str]]:
    """The flat metrics of one ``results.<task>`` entry and notes on values that were not numbers."""
    values: dict[str, float] = {}
    stats: dict[str, dict[str, float]] = {}
    notes: list[str] = []
    for key, raw in entry.items():
        parsed = metric_name(task, str(key))
        if parsed is None:
            continue
        name, stat = parsed
        value = number_or_none(raw)
        if value is None:
            if stat is None:
                notes.append(f"results.{task}[{key!r}] is {raw!r}, not a number; skipped")
            continue
        if stat is None:
            old = values.setdefault(name, value)
            if old != value:
                raise MetricConflictError(name, old, value)
        else:
            stats.setdefault(name, {})[stat] = value
    metrics = [Metric(n, v, stats.get(n, {})) for n, v in values.items()]
    metrics += [Metric(f"{n}_{s}", v) for n, st in stats.items() if n not in values for s, v in st.items()]
    return metrics, notes


def _model(doc: Mapping[str, Any]) -> str:
    config = mapping(doc.get("config"))
    for value in (doc.get("model_name"), _arg(config.get("model_args"), "pretrained"), config.get("model")):
        if isinstance(value, str) and value:
            return value
    return "unknown"


def _arg(model_args: Any, key: str) -> Any:
    if isinstance(model_args, Mapping):
        return model_args.get(key)
    if isinstance(model_args, str):  # older versions keep "pretrained=x,dtype=y"
        for part in model_args.split(","):
            k, _, v = part.partition("=")
            if k.strip() == key:
                return v.strip()
    return None


def invocation_id(results_file: Path, doc: Mapping[str, Any]) -> str:
    """Derived from content alone (the results file's name, the model and lm-eval's ``date``), so a
    copied or renamed output folder keeps its ids."""
    return stable_id(HARNESS, results_file.name, _model(doc), doc.get("date"))


class LmEvalReader:
    name = "lm_eval"
    looks_for = "results_<timestamp>.json (in the folder or its model subfolders)"

    def matches(self, path: Path) -> bool:
        return bool(results_files(path))

    def units(self, path: Path) -> list[Path]:
        """The independent runs in ``path``: its results files (read one by one when one is broken)."""
        return results_files(path)

    def read(self, path: Path) -> list[TaskResult]:
        files = results_files(path)
        if not files:
            raise ResultError(f"no {self.looks_for} here; is this lm-eval's --output_path?", path=path)
        base = path if path.is_dir() else path.parent
        out: list[TaskResult] = []
        for results_file in files:
            out.extend(self.read_file(results_file, base))
        return [with_samples(r, self, base) if len(r.artifacts) > 1 else r for r in out]

    def read_file(self, results_file: Path, base: Path) -> list[TaskResult]:
        doc = json_object(load_json_file(results_file), results_file, "the results file")
        results = json_object(doc.get("results"), results_file, "'results'")
        inv = invocation_id(results_file, doc)
        model = _model(doc)
        groups = mapping(doc.get("group_subtasks"))
        run_config = mapping(doc.get("config"))
        stamp = _stamp(results_file)
        relative = results_file.relative_to(base).as_posix()
        out = []
        for index, task in enumerate(sorted(results)):
            entry = json_object(results[task], results_file, f"results.{task}")
            job_id = f"{inv}.{index}"
            try:
                metrics, notes = task_metrics(task, entry)
            except ResultError as exc:
                raise ResultError(str(exc), job_id=job_id, path=results_file) from None
            samples_file = results_file.with_name(f"{SAMPLES_PREFIX}{task}_{stamp}.jsonl")
            artifacts = [relative]
            if task not in groups and samples_file.is_file():
                artifacts.append(samples_file.relative_to(base).as_posix())
            out.append(
                TaskResult(
                    job_id=job_id,
                    invocation_id=inv,
                    task=task,
                    harness=HARNESS,
                    model_id=model,
                    executor="local",
                    metrics=tuple(metrics),
                    state=JobState.SUCCEEDED,
                    timestamp=number_or_none(doc.get("date")),
                    config=_task_config(doc, task, run_config, groups),
                    artifacts=tuple(artifacts),
                    notes=tuple(notes),
                    results_dir=str(results_file.parent),
                )
            )
        return out

    def samples(self, result: TaskResult, directory: Path) -> Iterator[Sample]:
        for name in result.artifacts[1:]:
            if Path(name).name.startswith(SAMPLES_PREFIX):
                yield from _samples(directory / name, result.job_id)


def _task_config(
    doc: Mapping[str, Any], task: str, run_config: Mapping[str, Any], groups: Mapping[str, Any]
) -> dict[str, Any]:
    def pick(section: str) -> Any:
        block = doc.get(section)
        return block.get(task) if isinstance(block, Mapping) else None

    config: dict[str, Any] = {
        "run": dict(run_config),
        "task": pick("configs"),
        "version": pick("versions"),
        "n-shot": pick("n-shot"),
        "n-samples": pick("n-samples"),
        "higher_is_better": pick("higher_is_better"),
        "lm_eval_version": doc.get("lm_eval_version"),
    }
    if task in groups:
        config["subtasks"] = groups[task]
    return {k: v for k, v in config.items() if v is not None}


def _prompt(arguments: Any) -> Any:
    if isinstance(arguments, Mapping):  # 0.4.x: {"gen_args_0": {"arg_0": prompt, "arg_1": ...}}
        prompts = [a.get("arg_0") for a in arguments.values() if isinstance(a, Mapping)]
    elif isinstance(arguments, list):  # older: [[prompt, continuation], ...]
        prompts = [a[0] for a in arguments if isinstance(a, list) and a]
    else:
        return arguments
    return prompts[0] if len(set(map(str, prompts))) == 1 else prompts


def _samples(path: Path, job_id: str) -> Iterator[Sample]:
    for number, row in stream_jsonl(path, job_id):
        if "doc_id" not in row:
            raise ResultError(
                f"line {number}: no 'doc_id'; is this an lm-eval samples file?", job_id=job_id, path=path
            )
        filter_name = row.get("filter", _NO_FILTER)
        listed = row.get("metrics")
        names: list[Any] = listed if isinstance(listed, list) else []
        yield Sample(
            id=str(row["doc_id"]) if filter_name == _NO_FILTER else f"{row['doc_id']},{filter_name}",
            input=_prompt(row.get("arguments")),
            target=row.get("target"),
            output=row.get("filtered_resps"),
            scores={str(m): row.get(m) for m in names},
            metadata={k: row[k] for k in _SAMPLE_METADATA if k in row},
        )
