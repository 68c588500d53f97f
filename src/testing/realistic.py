"""Launcher homes of realistic size: the ``"realistic"`` profile of :func:`write_launcher_home`.

What a team's launcher home holds, per job: five artifacts (results.yml carrying ``command``,
``config``, ``target`` and ``metadata.versioning``; run_config.yml; metadata.yaml with
``launcher_resolved_config`` and ``launcher_command``; eval_factory_metrics.json; progress), a
client log of 200 lines (about 18 KB), the ``stage.*`` markers and a ``run.sh``; per invocation a
``run_all.sequential.sh``. Tasks are drawn from 16 common benchmarks with 1 to 10 metrics each
(subgroups included), every score with its stats. Deterministic for a seed; no secrets.

Sizes match ``make_launcher_home.py``'s defaults (the project's shared generator), so benchmarks
measure what users get without reading that tool.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evalport.testing.factory import BASE_EPOCH, LauncherHome, WrittenJob, _ts, append_records

LAUNCHER_VERSION = "0.2.6"
EVALUATOR_VERSION = "0.2.8"
ENDPOINT_URL = "https://example.invalid/v1/chat/completions"

REALISTIC_MODELS = (
    "meta/llama-3.2-3b-instruct",
    "meta/llama-3.1-8b-instruct",
    "meta/llama-3.3-70b-instruct",
    "nvidia/llama-3.1-nemotron-nano-8b-v1",
    "nvidia/llama-3.3-nemotron-super-49b-v1",
    "qwen/qwen2.5-7b-instruct",
    "mistralai/mistral-7b-instruct-v0.3",
    "deepseek-ai/deepseek-r1-distill-llama-8b",
)


@dataclass(frozen=True)
class Benchmark:
    """One task as the launcher runs it: its harness, container, endpoint, size and metrics."""

    name: str
    harness: str
    container: str
    endpoint: str
    samples: int
    metrics: tuple[tuple[str, tuple[str, ...]], ...]
    subgroups: tuple[str, ...] = ()

    @property
    def package(self) -> str:
        return self.harness.replace("-", "_")


_SE, _LM, _BC = "simple_evals", "lm-evaluation-harness", "bigcode-evaluation-harness"
_FOUR = ("stem", "humanities", "social_sciences", "other")


def _same(*names: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Metrics whose only score is named as the metric (the lm-evaluation-harness way)."""
    return tuple((n, (n,)) for n in names)


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("gpqa_diamond", _SE, "simple-evals", "chat", 198, (("score", ("micro",)),)),
    Benchmark("mmlu_pro", _SE, "simple-evals", "chat", 12032, (("score", ("micro", "macro")),), _FOUR),
    Benchmark("aime_2025", _SE, "simple-evals", "chat", 30, (("score", ("micro",)),)),
    Benchmark("math_test_500", _SE, "simple-evals", "chat", 500, (("score", ("micro",)),)),
    Benchmark(
        "simpleqa",
        _SE,
        "simple-evals",
        "chat",
        4326,
        (("correct", ("micro",)), ("not_attempted", ("micro",)), ("f1", ("micro",))),
    ),
    Benchmark("mmlu", _LM, _LM, "completions", 14042, (("acc", ("acc",)),), _FOUR),
    Benchmark(
        "gsm8k", _LM, _LM, "completions", 1319, (("exact_match", ("strict-match", "flexible-extract")),)
    ),
    Benchmark("hellaswag", _LM, _LM, "completions", 10042, _same("acc", "acc_norm")),
    Benchmark("arc_challenge", _LM, _LM, "completions", 1172, _same("acc", "acc_norm")),
    Benchmark("winogrande", _LM, _LM, "completions", 1267, _same("acc")),
    Benchmark(
        "ifeval",
        _LM,
        _LM,
        "chat",
        541,
        _same(
            "prompt_level_strict_acc",
            "inst_level_strict_acc",
            "prompt_level_loose_acc",
            "inst_level_loose_acc",
        ),
    ),
    Benchmark("humaneval", _BC, _BC, "chat", 164, (("pass@1", ("pass@1",)),)),
    Benchmark("mbpp", _BC, _BC, "chat", 500, (("pass@1", ("pass@1",)),)),
    Benchmark(
        "livecodebench_0724_0125",
        "livecodebench",
        "livecodebench",
        "chat",
        315,
        (("pass@1", ("pass@1",)),),
        ("easy", "medium", "hard"),
    ),
    Benchmark(
        "bfcl_v3",
        "bfcl",
        "bfcl",
        "chat",
        4441,
        (("accuracy", ("overall", "non_live", "live", "multi_turn")),),
    ),
    Benchmark("mt_bench", "mtbench", "mtbench", "chat", 80, (("score", ("turn_1", "turn_2", "average")),)),
)

_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _yaml(doc: Any, *, sort_keys: bool = True) -> str:
    return yaml.dump(doc, Dumper=_DUMPER, sort_keys=sort_keys)


def _score(rng: random.Random, score: str, n: int) -> dict[str, Any]:
    """A score with its stats; mt_bench-style turns are on a 1-10 scale, the rest in [0, 1]."""
    ten_scale = score.startswith("turn") or score == "average"
    value = round(rng.uniform(5.0, 9.5) if ten_scale else rng.uniform(0.05, 0.95), 4)
    variance = abs(value) * 0.25 if ten_scale else value * (1 - value)
    sd = math.sqrt(variance)
    stats = {"count": n, "mean": value, "stddev": round(sd, 6), "stderr": round(sd / math.sqrt(max(n, 1)), 6)}
    return {"stats": stats, "value": value}


def _metrics(rng: random.Random, bench: Benchmark, n: int) -> dict[str, Any]:
    return {m: {"scores": {s: _score(rng, s, n) for s in scores}} for m, scores in bench.metrics}


def _copy(doc: Any) -> Any:
    return json.loads(json.dumps(doc))


def _results(rng: random.Random, bench: Benchmark, n: int) -> dict[str, Any]:
    """results.yml's ``results``: the task under groups and tasks, each subgroup under both too."""
    own = _metrics(rng, bench, n)
    tasks: dict[str, Any] = {bench.name: {"metrics": _copy(own)}}
    group: dict[str, Any] = {"metrics": _copy(own)}
    if bench.subgroups:
        group["groups"] = {}
        for sub in bench.subgroups:
            sub_metrics = _metrics(rng, bench, max(n // len(bench.subgroups), 1))
            group["groups"][sub] = {"metrics": _copy(sub_metrics)}
            tasks[f"{bench.name}_{sub}"] = {"metrics": _copy(sub_metrics)}
    return {"groups": {bench.name: group}, "tasks": tasks}


def _resolved_config(results_root: Path, model_id: str, tasks: list[Benchmark], limit: int | None) -> dict:
    params: dict[str, Any] = {"parallelism": 8, "request_timeout": 3600, "max_retries": 5}
    if limit is not None:
        params["limit_samples"] = limit
    return {
        "execution": {
            "type": "local",
            "output_dir": str(results_root),
            "extra_docker_args": "",
            "mode": "sequential",
            "endpoint_readiness_timeout": 600,
        },
        "deployment": {"type": "none"},
        "env_vars": {},
        "target": {
            "api_endpoint": {"url": ENDPOINT_URL, "model_id": model_id, "api_key_name": "NGC_API_KEY"}
        },
        "auxiliary_deployments": {},
        "evaluation": {
            "nemo_evaluator_config": {"config": {"params": params}},
            "tasks": [{"name": t.name} for t in tasks],
        },
    }


@dataclass(frozen=True)
class _Invocation:
    invocation_id: str
    directory: Path
    timestamp: float
    model_id: str
    limit: int | None
    resolved: dict[str, Any]
    launcher_command: str


def _eval_factory_metrics(rng: random.Random, n: int, start: float) -> tuple[dict[str, Any], float]:
    runtime = round(rng.uniform(30, 580), 3)
    inference = round(runtime * rng.uniform(0.6, 0.95), 3)
    prompt, completion = rng.randint(80, 2500), rng.randint(20, 3000)
    iso = "%Y-%m-%dT%H:%M:%S.000000+00:00"
    doc = {
        "response_stats": {
            "description": "Response statistics for saving",
            "avg_prompt_tokens": float(prompt),
            "avg_total_tokens": float(prompt + completion),
            "avg_completion_tokens": float(completion),
            "avg_latency_ms": round(inference * 8000 / max(n, 1), 3),
            "max_prompt_tokens": prompt * 3,
            "max_total_tokens": (prompt + completion) * 3,
            "max_completion_tokens": completion * 4,
            "count": n,
            "successful_count": n,
            "finish_reason": {"stop": n},
            "stop_reason": {},
            "status_codes": {"200": n},
            "inference_time": inference,
        },
        "evaluation": {
            "runtime_seconds": runtime,
            "start_time": _ts(start, iso),
            "end_time": _ts(start + runtime, iso),
            "peak_memory_bytes": rng.randint(200, 900) << 20,
            "peak_tree_memory_bytes": rng.randint(900, 4000) << 20,
            "total_runs": 1,
            "inference_time_seconds": inference,
            "scoring_time_seconds": round(runtime - inference, 3),
        },
    }
    return doc, runtime


def _client_log(rng: random.Random, task: str, start: float, runtime: float, lines: int) -> str:
    step = runtime / max(lines, 1)
    return "".join(
        f"{_ts(start + step * k, '%Y-%m-%dT%H:%M:%SZ')} [I] {task}: processed request {k + 1}/{lines} "
        f"status=200 latency_ms={rng.randint(50, 5000)}\n"
        for k in range(lines)
    )


def _write_realistic_job(
    inv: _Invocation, index: int, bench: Benchmark, rng: random.Random, log_lines: int
) -> WrittenJob:
    job_id = f"{inv.invocation_id}.{index}"
    job_dir = inv.directory / f"{bench.name}.{index}"
    art, logs = job_dir / "artifacts", job_dir / "logs"
    art.mkdir(parents=True)
    logs.mkdir()
    n = inv.limit if inv.limit is not None else bench.samples
    image = f"nvcr.io/nvidia/eval-factory/{bench.container}:26.03"
    params: dict[str, Any] = {
        "limit_samples": inv.limit,
        "max_retries": 5,
        "parallelism": 8,
        "request_timeout": 3600,
        "extra": {},
    }
    ecfg = {
        "output_dir": "/results",
        "params": params,
        "supported_endpoint_types": [bench.endpoint],
        "type": bench.name,
    }
    endpoint = {
        "api_key_name": "NGC_API_KEY",
        "model_id": inv.model_id,
        "stream": False,
        "type": bench.endpoint,
        "url": ENDPOINT_URL,
    }
    target = {"api_endpoint": endpoint}
    command = (
        f"{bench.harness} --model {inv.model_id} --eval_name {bench.name} --url {ENDPOINT_URL} "
        "--out_dir /results --num_threads 8 --max_retries 5 --timeout 3600"
        + (f" --first_n {inv.limit}" if inv.limit is not None else "")
    )
    versioning = {"nemo_evaluator_launcher": LAUNCHER_VERSION, "nemo_evaluator": EVALUATOR_VERSION}
    results = _results(rng, bench, n)
    results_doc = {
        "command": command,
        "config": ecfg,
        "git_hash": "",
        "metadata": {
            "versioning": versioning,
            "__skipped_fields": "see metadata.yaml for the rest of the fields",
        },
        "results": results,
        "target": target,
    }
    (art / "results.yml").write_text(_yaml(results_doc))
    run_config = {
        "command": command,
        "config": ecfg,
        "framework_name": bench.harness,
        "pkg_name": bench.package,
        "target": target,
    }
    (art / "run_config.yml").write_text(_yaml(run_config))
    metadata = {
        "launcher_resolved_config": inv.resolved,
        "versioning": versioning,
        "launcher_command": inv.launcher_command,
    }
    (art / "metadata.yaml").write_text(_yaml(metadata, sort_keys=False))
    start = inv.timestamp + 5 + index * 600
    factory_metrics, runtime = _eval_factory_metrics(rng, n, start)
    (art / "eval_factory_metrics.json").write_text(json.dumps(factory_metrics, indent=2))
    (art / "progress").write_text(f"{n}\n")
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    (logs / "stage.pre-start").write_text(_ts(start, stamp) + "\n")
    (logs / "stage.running").write_text(_ts(start + 3, stamp) + "\n")
    (logs / "stage.exit").write_text(f"{_ts(start + runtime, stamp)} 0\n")
    (logs / "client_stdout.log").write_text(_client_log(rng, bench.name, start, runtime, log_lines))
    (job_dir / "run.sh").write_text(f"#!/bin/bash\n# synthetic job {job_id}\n# image: {image}\n{command}\n")
    record = {
        "invocation_id": inv.invocation_id,
        "job_id": job_id,
        "timestamp": inv.timestamp + index * 0.001,
        "executor": "local",
        "data": {
            "output_dir": str(job_dir),
            "container": f"client-{bench.name}-{index}-{inv.invocation_id[:8]}",
            "eval_image": image,
        },
        "config": inv.resolved,
    }
    return WrittenJob(
        inv.invocation_id, job_id, bench.name, bench.harness, inv.model_id, job_dir, results, record
    )


def write_realistic_home(
    root: Path, invocations: int, tasks_per_invocation: int, *, seed: int = 0, log_lines: int = 200
) -> LauncherHome:
    """``invocations`` x ``tasks_per_invocation`` succeeded jobs of realistic size, and their exec DB."""
    root = Path(root)
    rng = random.Random(seed)
    results_root = root / "nel-results"
    exec_db = root / ".nemo-evaluator" / "exec-db" / "exec.v1.jsonl"
    exec_db.parent.mkdir(parents=True, exist_ok=True)
    home = LauncherHome(root, exec_db)
    seen: set[str] = set()
    for i in range(invocations):
        inv_id = f"{rng.getrandbits(64):016x}"
        while inv_id in seen:
            inv_id = f"{rng.getrandbits(64):016x}"
        seen.add(inv_id)
        ts = BASE_EPOCH + i * 3600 + rng.randint(0, 3599)
        model_id = rng.choice(REALISTIC_MODELS)
        if tasks_per_invocation <= len(BENCHMARKS):
            chosen = rng.sample(BENCHMARKS, tasks_per_invocation)
        else:
            chosen = [rng.choice(BENCHMARKS) for _ in range(tasks_per_invocation)]
        limit = rng.choice([None, None, 10, 100])
        inv = _Invocation(
            inv_id,
            results_root / f"{_ts(ts, '%Y%m%d_%H%M%S')}-{inv_id}",
            ts,
            model_id,
            limit,
            _resolved_config(results_root, model_id, chosen, limit),
            f"nemo-evaluator-launcher run --config configs/bench_{i % 7}.yaml "
            f"-o execution.output_dir={results_root}",
        )
        inv.directory.mkdir(parents=True)
        for index, bench in enumerate(chosen):
            home.jobs.append(_write_realistic_job(inv, index, bench, rng, log_lines))
        steps = "".join(f"bash {b.name}.{k}/run.sh\n" for k, b in enumerate(chosen))
        (inv.directory / "run_all.sequential.sh").write_text(f"#!/bin/bash\nset -e\n{steps}")
    append_records(exec_db, [j.record for j in home.jobs])
    return home
