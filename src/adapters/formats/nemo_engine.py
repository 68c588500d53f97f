"""Reader of NeMo Evaluator engine (``nel eval run``) output: ``eval-*.json`` bundles and ``results.jsonl``.

A run folder holds ``nel_run.json``, ``checkpoint.json`` and one subfolder per benchmark with its
bundle; a benchmark that failed has no bundle, only its error in ``checkpoint.json`` (a failed job).
A run is one invocation, each benchmark one job (sorted by name). A bundle folder (or file) read
alone belongs to its run when ``nel_run.json`` sits beside it, else it is its own invocation.
Mapping, names and ids: docs/formats/nemo_engine.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalport.adapters.formats.harness_files import (
    iso_seconds,
    json_object,
    load_json_file,
    mapping,
    number_or_none,
    stable_id,
    stream_jsonl,
    with_samples,
)
from evalport.domain.errors import ResultError
from evalport.domain.model import JobState, Metric, TaskResult
from evalport.domain.samples import Sample

HARNESS = "nemo-evaluator"
RUN_FILE = "nel_run.json"
CHECKPOINT = "checkpoint.json"
ROWS = "results.jsonl"
_BUNDLE_GLOB = "eval-*.json"
_SCORE_STATS = ("ci_lower", "ci_upper", "bootstrap_ci_lower", "bootstrap_ci_upper", "correct", "total")
_SUMMARY_STATS = ("std", "min", "max", "median", "n")


def bundle_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.match(_BUNDLE_GLOB) else []
    if not path.is_dir():
        return []
    return sorted(p for p in [*path.glob(_BUNDLE_GLOB), *path.glob(f"*/{_BUNDLE_GLOB}")] if p.is_file())


def _name(relative: str) -> str:
    return relative.rsplit("/", 1)[-1]


def score_metrics(task: str, scores: Mapping[str, Any]) -> list[Metric]:
    """``benchmark.scores`` flat: ``<task>_pass@1`` (ci bounds as statistics), ``<task>_scorer_<name>``
    for ``scorer:<name>``, ``<task>_summary_mean`` (std/min/max/median/n), ``<task>_failure_rate``."""
    out: list[Metric] = []
    for key, score in scores.items():
        if not isinstance(score, Mapping):
            continue
        key = str(key)
        if "value" in score:
            value = number_or_none(score["value"])
            if value is None:
                continue
            name = f"scorer_{key[len('scorer:') :]}" if key.startswith("scorer:") else key
            out.append(Metric(f"{task}_{name}", value, _stats(score, _SCORE_STATS)))
        elif key == "summary" and number_or_none(score.get("mean")) is not None:
            out.append(Metric(f"{task}_summary_mean", float(score["mean"]), _stats(score, _SUMMARY_STATS)))
        elif key == "failures" and number_or_none(score.get("failure_rate")) is not None:
            out.append(Metric(f"{task}_failure_rate", float(score["failure_rate"])))
    return out


def _stats(block: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, float]:
    return {k: v for k in keys if (v := number_or_none(block.get(k))) is not None}


def category_metrics(task: str, categories: Any) -> list[Metric]:
    if not isinstance(categories, Mapping):
        return []
    out = []
    for name, entry in sorted(categories.items()):
        value = number_or_none(entry.get("mean_reward")) if isinstance(entry, Mapping) else None
        if value is not None:
            out.append(Metric(f"{task}_category_{name}_mean_reward", value, _stats(entry, ("n",))))
    return out


@dataclass(frozen=True)
class _Run:
    root: Path
    run: Mapping[str, Any]
    failed: Mapping[str, Any]


def _run_of(path: Path) -> _Run | None:
    for root in (path, path.parent) if path.is_dir() else (path.parent.parent,):
        run_file = root / RUN_FILE
        if run_file.is_file():
            run = json_object(load_json_file(run_file), run_file, "nel_run.json")
            checkpoint_file = root / CHECKPOINT
            failed: Mapping[str, Any] = {}
            if checkpoint_file.is_file():
                checkpoint = json_object(load_json_file(checkpoint_file), checkpoint_file, "checkpoint.json")
                block = checkpoint.get("failed_benchmarks")
                failed = block if isinstance(block, Mapping) else {}
            return _Run(root, run, failed)
    return None


def _benchmark_name(spec: str) -> str:
    """``/x/tiny_bench.py:tiny-qa`` -> ``tiny-qa`` (the name a bundle folder gets)."""
    return spec.rsplit(":", 1)[-1]


class NemoEngineReader:
    name = "nemo_engine"
    looks_for = "eval-*.json bundles (in the folder or its benchmark subfolders), or nel_run.json"

    def matches(self, path: Path) -> bool:
        return bool(bundle_files(path)) or (path.is_dir() and (path / RUN_FILE).is_file())

    def read(self, path: Path) -> list[TaskResult]:
        bundles = bundle_files(path)
        run = _run_of(path)
        base = path if path.is_dir() else path.parent
        if not bundles and run is None:
            raise ResultError(f"no {self.looks_for} here; is this a `nel eval run` output folder?", path=path)
        return [
            with_samples(r, self, base) if ROWS in map(_name, r.artifacts) else r
            for r in self._read(path, base)
        ]

    def _read(self, path: Path, base: Path) -> list[TaskResult]:
        bundles = bundle_files(path)
        run = _run_of(path)
        if run is None:
            return [self._bundle_result(b, base, *self._standalone(b), "local") for b in bundles]
        everything = bundle_files(run.root)
        wanted = set(bundles) if run.root != path else set(everything)
        named = {b.parent.name if b.parent != run.root else b.stem: b for b in everything}
        for spec in run.failed:
            named.setdefault(_benchmark_name(str(spec)), Path())
        inv = stable_id(HARNESS, run.run.get("run_id"), run.run.get("started_at"))
        executor = str(run.run.get("executor") or "local")
        out = []
        for index, name in enumerate(sorted(named)):
            bundle = named[name]
            if bundle != Path() and bundle in wanted:
                out.append(self._bundle_result(bundle, base, inv, f"{inv}.{index}", executor))
            elif bundle == Path() and run.root == path:
                out.append(self._failed(run, name, inv, f"{inv}.{index}", executor))
        return out

    def _standalone(self, bundle: Path) -> tuple[str, str]:
        doc = json_object(load_json_file(bundle), bundle, "the bundle")
        inv = stable_id(HARNESS, doc.get("run_id"), doc.get("config_hash"), bundle.name)
        return inv, f"{inv}.0"

    def _bundle_result(self, bundle: Path, base: Path, inv: str, job_id: str, executor: str) -> TaskResult:
        doc = json_object(load_json_file(bundle, job_id), bundle, "the bundle", job_id)
        benchmark = json_object(doc.get("benchmark"), bundle, "'benchmark'", job_id)
        config = mapping(doc.get("config"))
        task = str(benchmark.get("name") or bundle.parent.name)
        scores = benchmark.get("scores")
        metrics = score_metrics(task, scores) if isinstance(scores, Mapping) else []
        metrics += category_metrics(task, benchmark.get("categories"))
        artifacts = [bundle.relative_to(base).as_posix()]
        if (bundle.parent / ROWS).is_file():
            artifacts.append((bundle.parent / ROWS).relative_to(base).as_posix())
        return TaskResult(
            job_id=job_id,
            invocation_id=inv,
            task=task,
            harness=HARNESS,
            model_id=str(config.get("model") or "unknown"),
            executor=executor,
            metrics=tuple(metrics),
            state=JobState.SUCCEEDED,
            timestamp=iso_seconds(doc.get("timestamp")),
            config={
                **config,
                "run_id": doc.get("run_id"),
                "config_hash": doc.get("config_hash"),
                "sdk_version": doc.get("sdk_version"),
                "samples": benchmark.get("samples"),
                "repeats": benchmark.get("repeats"),
                "n_results": doc.get("n_results"),
            },
            artifacts=tuple(artifacts),
            results_dir=str(bundle.parent),
        )

    def _failed(self, run: _Run, name: str, inv: str, job_id: str, executor: str) -> TaskResult:
        error = next((e for spec, e in run.failed.items() if _benchmark_name(str(spec)) == name), None)
        message = mapping(error).get("error")
        return TaskResult(
            job_id=job_id,
            invocation_id=inv,
            task=name,
            harness=HARNESS,
            model_id="unknown",
            executor=executor,
            metrics=(),
            state=JobState.FAILED,
            timestamp=iso_seconds(run.run.get("started_at")),
            config={"run_id": run.run.get("run_id")},
            notes=(f"benchmark failed: {message}" if message else "benchmark failed",),
            results_dir=str(run.root),
        )

    def samples(self, result: TaskResult, directory: Path) -> Iterator[Sample]:
        rows = [a for a in result.artifacts if Path(a).name == ROWS]
        if not rows:
            return
        path = directory / rows[0]
        for number, row in stream_jsonl(path, result.job_id):
            if "problem_idx" not in row:
                raise ResultError(
                    f"line {number}: no 'problem_idx'; is this an engine results.jsonl?",
                    job_id=result.job_id,
                    path=path,
                )
            repeat = row.get("repeat") or 0
            scores: dict[str, Any] = {"reward": row.get("reward")}
            rewards = row.get("scorer_rewards")
            if isinstance(rewards, Mapping):
                scores.update(rewards)
            yield Sample(
                id=str(row["problem_idx"]) if repeat == 0 else f"{row['problem_idx']}#{repeat}",
                input=row.get("prompt"),
                target=row.get("expected_answer"),
                output=row.get("model_response"),
                scores=scores,
                metadata={
                    "repeat": repeat,
                    "extracted_answer": row.get("extracted_answer"),
                    "scoring_details": row.get("scoring_details"),
                    "metadata": row.get("metadata"),
                    "tokens": row.get("tokens"),
                    "latency_ms": row.get("latency_ms"),
                },
            )
