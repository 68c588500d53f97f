"""Writes launcher-format data (execution DB + job directories) for tests, benchmarks and demos.

Deterministic for a given seed; the layout follows what NeMo Evaluator's launcher writes:
``<root>/<YYYYMMDD_HHMMSS>-<invocation>/<task>.<index>/{artifacts,logs}`` and one execution-DB
line per job.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import yaml

MODELS = (
    "meta/llama-3.1-8b-instruct",
    "meta/llama-3.3-70b-instruct",
    "nvidia/llama-3.3-nemotron-super-49b-v1",
    "qwen/qwen2.5-7b-instruct",
    "mistralai/mistral-7b-instruct-v0.3",
)

# task name -> (harness, container, metrics as (metric, score types), subgroups)
TASKS: dict[str, tuple[str, str, tuple[tuple[str, tuple[str, ...]], ...], tuple[str, ...]]] = {
    "gpqa_diamond": ("simple_evals", "simple-evals", (("score", ("micro",)),), ()),
    "mmlu_pro": ("simple_evals", "simple-evals", (("score", ("micro", "macro")),), ("stem", "humanities")),
    "aime_2025": ("simple_evals", "simple-evals", (("score", ("micro",)),), ()),
    "gsm8k": (
        "lm-evaluation-harness",
        "lm-evaluation-harness",
        (("exact_match", ("strict-match", "flexible-extract")),),
        (),
    ),
    "hellaswag": (
        "lm-evaluation-harness",
        "lm-evaluation-harness",
        (("acc", ("acc",)), ("acc_norm", ("acc_norm",))),
        (),
    ),
    "mmlu": ("lm-evaluation-harness", "lm-evaluation-harness", (("acc", ("acc",)),), ("stem", "other")),
    "ifeval": (
        "lm-evaluation-harness",
        "lm-evaluation-harness",
        (
            ("prompt_level_strict_acc", ("prompt_level_strict_acc",)),
            ("inst_level_loose_acc", ("inst_level_loose_acc",)),
        ),
        (),
    ),
    "humaneval": ("bigcode-evaluation-harness", "bigcode-evaluation-harness", (("pass@1", ("pass@1",)),), ()),
}

BASE_EPOCH = 1767225600.0  # 2026-01-01T00:00:00Z


def _ts(t: float, fmt: str) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime(fmt)


def _stats(value: float, n: int) -> dict[str, float]:
    p = min(max(value, 0.0), 1.0)
    sd = math.sqrt(p * (1 - p))
    return {
        "count": n,
        "mean": round(value, 6),
        "stddev": round(sd, 6),
        "stderr": round(sd / math.sqrt(max(n, 1)), 6),
    }


def metric_block(rng: random.Random, spec: Sequence[tuple[str, Sequence[str]]], n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for metric, scores in spec:
        out[metric] = {"scores": {}}
        for score in scores:
            v = round(rng.uniform(0.05, 0.95), 4)
            out[metric]["scores"][score] = {"stats": _stats(v, n), "value": v}
    return out


@dataclass
class WrittenJob:
    invocation_id: str
    job_id: str
    task: str
    harness: str
    model_id: str
    directory: Path
    results: dict[str, Any]
    record: dict[str, Any]

    def task_scores(self) -> dict[str, float]:
        """The task's own scores and stderrs as written, under the launcher's flat names.

        Computed straight from the written tree, independently of evalport's flattening, so
        tests can use it as an oracle.
        """
        out = {}
        for metric, block in self.results["tasks"][self.task]["metrics"].items():
            for score, entry in block["scores"].items():
                name = f"{self.task}_{metric}" if score == metric else f"{self.task}_{metric}_{score}"
                out[name] = entry["value"]
                out[f"{name}_stderr"] = entry["stats"]["stderr"]
        return out


@dataclass
class LauncherHome:
    """What :func:`write_launcher_home` wrote."""

    root: Path
    exec_db: Path
    jobs: list[WrittenJob] = field(default_factory=list)

    @property
    def invocation_ids(self) -> list[str]:
        return list(dict.fromkeys(j.invocation_id for j in self.jobs))

    def job(self, job_id: str) -> WrittenJob:
        return next(j for j in self.jobs if j.job_id == job_id)


def run_config(
    model_id: str, output_dir: Path, tasks: Sequence[str], *, secrets: bool = True, **extra: Any
) -> dict[str, Any]:
    """A launcher run config; with ``secrets`` it carries fake secret values, to test redaction."""
    cfg: dict[str, Any] = {
        "execution": {"type": "local", "output_dir": str(output_dir), "mode": "sequential"},
        "deployment": {"type": "none"},
        "env_vars": {"HF_TOKEN": "hf_secret_token_value"} if secrets else {"HF_TOKEN": "host:HF_TOKEN"},
        "target": {
            "api_endpoint": {
                "url": "https://example.invalid/v1/chat/completions",
                "model_id": model_id,
                "api_key_name": "NGC_API_KEY",
                **({"api_key": "nvapi-very-secret"} if secrets else {}),
            }
        },
        "evaluation": {
            "nemo_evaluator_config": {"config": {"params": {"parallelism": 8, "limit_samples": 10}}},
            "tasks": [{"name": t} for t in tasks],
        },
    }
    for key, value in extra.items():
        cfg[key] = value
    return cfg


def write_job(
    inv_dir: Path,
    invocation_id: str,
    index: int,
    task: str,
    model_id: str,
    config: Mapping[str, Any],
    rng: random.Random,
    *,
    timestamp: float,
    exit_code: int | None = 0,
    results: dict[str, Any] | None = None,
    log_lines: int = 20,
) -> WrittenJob:
    harness, container, spec, subgroups = TASKS.get(
        task, ("simple_evals", "simple-evals", (("score", ("micro",)),), ())
    )
    job_dir = inv_dir / f"{task}.{index}"
    art, logs = job_dir / "artifacts", job_dir / "logs"
    art.mkdir(parents=True, exist_ok=True)
    logs.mkdir(exist_ok=True)
    n = 100
    if results is None:
        results = _results_block(task, spec, subgroups, rng, n)
    _write_artifacts(art, task, harness, model_id, config, results, rng, n)
    if "api_key" in (config.get("target") or {}).get("api_endpoint", {}):
        (job_dir / ".secrets.env").write_text("NGC_API_KEY=nvapi-very-secret\n")
    _write_logs(logs, task, timestamp + 5, exit_code, log_lines)
    job_id = f"{invocation_id}.{index}"
    record = {
        "invocation_id": invocation_id,
        "job_id": job_id,
        "timestamp": timestamp + index * 0.001,
        "executor": "local",
        "data": {
            "output_dir": str(job_dir),
            "container": f"client-{task}-{index}-{invocation_id[:8]}",
            "eval_image": f"nvcr.io/nvidia/eval-factory/{container}:26.03",
        },
        "config": dict(config),
    }
    return WrittenJob(invocation_id, job_id, task, harness, model_id, job_dir, results, record)


def _results_block(
    task: str, spec: Any, subgroups: Sequence[str], rng: random.Random, n: int
) -> dict[str, Any]:
    """A results.yml ``results`` section: the task's metrics under groups and tasks, subgroups too."""
    task_metrics = metric_block(rng, spec, n)
    tasks_sec: dict[str, Any] = {task: {"metrics": task_metrics}}
    group: dict[str, Any] = {"metrics": json.loads(json.dumps(task_metrics))}
    if subgroups:
        group["groups"] = {}
        for sg in subgroups:
            sg_metrics = metric_block(rng, spec, n // len(subgroups))
            group["groups"][sg] = {"metrics": sg_metrics}
            tasks_sec[f"{task}_{sg}"] = {"metrics": json.loads(json.dumps(sg_metrics))}
    return {"groups": {task: group}, "tasks": tasks_sec}


def _write_artifacts(
    art: Path,
    task: str,
    harness: str,
    model_id: str,
    config: Mapping[str, Any],
    results: dict[str, Any],
    rng: random.Random,
    n: int,
) -> None:
    """results.yml, run_config.yml, metadata.yaml and the files nemo-evaluator leaves beside them."""
    target = {
        "api_endpoint": {
            "api_key_name": "NGC_API_KEY",
            "model_id": model_id,
            "type": "chat",
            "url": "https://example.invalid/v1/chat/completions",
        }
    }
    ecfg = {"output_dir": "/results", "params": {"limit_samples": 10, "parallelism": 8}, "type": task}
    dump = yaml.CSafeDumper if hasattr(yaml, "CSafeDumper") else yaml.SafeDumper
    results_doc = {"config": ecfg, "git_hash": "", "results": results, "target": target}
    (art / "results.yml").write_text(yaml.dump(results_doc, Dumper=dump, sort_keys=True))
    run_config = {
        "config": ecfg,
        "framework_name": harness,
        "pkg_name": harness.replace("-", "_"),
        "target": target,
    }
    (art / "run_config.yml").write_text(yaml.dump(run_config, Dumper=dump, sort_keys=True))
    metadata = {
        "launcher_resolved_config": dict(config),
        "versioning": {"nemo_evaluator_launcher": "0.2.6"},
        "launcher_command": f"nemo-evaluator-launcher run --config run.yaml -o evaluation.tasks.0={task}",
    }
    (art / "metadata.yaml").write_text(yaml.dump(metadata, Dumper=dump, sort_keys=False))
    factory_metrics = {
        "response_stats": {"avg_prompt_tokens": 600.0, "avg_completion_tokens": 900.0, "count": n},
        "evaluation": {"runtime_seconds": round(rng.uniform(30, 500), 3)},
    }
    (art / "eval_factory_metrics.json").write_text(json.dumps(factory_metrics, indent=2))
    (art / "progress").write_text(f"{n}\n")
    (art / "cache").mkdir(exist_ok=True)
    (art / "cache" / "responses.db").write_bytes(b"cached responses")


def _write_logs(logs: Path, task: str, start: float, exit_code: int | None, log_lines: int) -> None:
    """The stage markers (``stage.exit`` only when the job ended) and a client log."""
    (logs / "stage.pre-start").write_text(_ts(start, "%Y-%m-%dT%H:%M:%SZ") + "\n")
    (logs / "stage.running").write_text(_ts(start + 3, "%Y-%m-%dT%H:%M:%SZ") + "\n")
    if exit_code is not None:
        (logs / "stage.exit").write_text(f"{_ts(start + 60, '%Y-%m-%dT%H:%M:%SZ')} {exit_code}\n")
    (logs / "client_stdout.log").write_text(
        "".join(
            f"{_ts(start + k, '%H:%M:%S')} [I] {task}: request {k + 1}/{log_lines} status=200\n"
            for k in range(log_lines)
        )
    )


def write_launcher_home(
    root: Path,
    invocations: int = 2,
    tasks_per_invocation: int = 3,
    *,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    log_lines: int = 20,
    secrets: bool = True,
    profile: Literal["small", "realistic"] = "small",
) -> LauncherHome:
    """``invocations`` x ``tasks_per_invocation`` succeeded jobs plus their execution DB.

    ``profile="realistic"`` writes jobs of the size a team's launcher home holds (see
    :mod:`evalport.testing.realistic`: 16 benchmarks, 200-line logs, no secrets); ``tasks``,
    ``models``, ``log_lines`` and ``secrets`` shape the small profile only.
    """
    if profile == "realistic":
        from evalport.testing.realistic import write_realistic_home

        return write_realistic_home(root, invocations, tasks_per_invocation, seed=seed)
    root = Path(root)
    rng = random.Random(seed)
    results_root = root / "nel-results"
    exec_db = root / ".nemo-evaluator" / "exec-db" / "exec.v1.jsonl"
    exec_db.parent.mkdir(parents=True, exist_ok=True)
    home = LauncherHome(root, exec_db)
    pool = list(tasks or TASKS)
    models = list(models or MODELS)
    for i in range(invocations):
        inv = f"{rng.getrandbits(64):016x}"
        ts = BASE_EPOCH + i * 3600 + rng.randint(0, 3599)
        inv_dir = results_root / f"{_ts(ts, '%Y%m%d_%H%M%S')}-{inv}"
        model = models[i % len(models)]
        chosen = [pool[(i + k) % len(pool)] for k in range(tasks_per_invocation)]
        cfg = run_config(model, results_root, chosen, secrets=secrets)
        for idx, task in enumerate(chosen):
            home.jobs.append(
                write_job(inv_dir, inv, idx, task, model, cfg, rng, timestamp=ts, log_lines=log_lines)
            )
    append_records(exec_db, [j.record for j in home.jobs])
    return home


def append_records(exec_db: Path, records: Sequence[Mapping[str, Any]]) -> None:
    exec_db.parent.mkdir(parents=True, exist_ok=True)
    with open(exec_db, "a", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")
